//! A small HTTP endpoint serving a Prometheus registry, for embedders that have none.
//!
//! The sink registers its `cdc_sink_*` (and the spool's `cdc_spool_*`) metrics on the registry
//! the embedder hands to [`crate::Sink::open`]. A service that already serves `/metrics` just
//! keeps doing so; one that does not can call [`serve_metrics`] with the same registry and point
//! Prometheus at it. `cdc-storage generate --metrics-addr` does exactly that.
//!
//! Invariants:
//! - `GET /metrics` answers 200 with the registry gathered at the moment of the request, in the
//!   Prometheus text format (`text/plain; version=0.0.4`); any other path is 404, any other
//!   method 405. Each answer closes its connection (no keep-alive state to track).
//! - A request head larger than [`MAX_HEAD`] or slower than [`READ_TIMEOUT`] is dropped: a
//!   stuck or hostile client holds one task for a bounded time and a bounded buffer.
//! - The listener is bound before [`serve_metrics`] returns (a bind error is returned, naming
//!   the address), and stops accepting when the [`MetricsServer`] is dropped or
//!   [`MetricsServer::shutdown`] is called. Nothing here changes the registry.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let registry = prometheus::Registry::new();
//! // ... Sink::open(uri, config, &registry) ...
//! let server = cdc_sink::serve_metrics(registry.clone(), "127.0.0.1:0".parse().unwrap())
//!     .await
//!     .unwrap();
//! println!("scrape http://{}/metrics", server.local_addr());
//! server.shutdown();
//! # });
//! ```

use prometheus::{Encoder, Registry, TextEncoder};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// Largest request head read (request line and headers).
pub const MAX_HEAD: usize = 16 * 1024;
/// Time a client has to send its request head.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// A running metrics endpoint; stops accepting connections when dropped.
pub struct MetricsServer {
    local_addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
}

impl MetricsServer {
    /// The address actually bound (port 0 resolves to a free port).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting connections (the same as dropping it).
    pub fn shutdown(mut self) {
        self.stop.take();
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// Binds `addr` and serves `registry` at `GET /metrics` on the current tokio runtime until the
/// returned [`MetricsServer`] is dropped.
pub async fn serve_metrics(registry: Registry, addr: SocketAddr) -> std::io::Result<MetricsServer> {
    let listener = TcpListener::bind(addr).await.map_err(|e| {
        std::io::Error::new(e.kind(), format!("metrics endpoint: binding {addr}: {e}"))
    })?;
    let local_addr = listener.local_addr()?;
    let (stop, mut stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = &mut stopped => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        tokio::spawn(answer(stream, registry.clone()));
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "metrics endpoint: accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
            }
        }
    });
    Ok(MetricsServer {
        local_addr,
        stop: Some(stop),
    })
}

/// The request line's method and path, once the whole head has arrived.
async fn read_request_line(stream: &mut TcpStream) -> Option<(String, String)> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    let read = async {
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut buf).await.ok()?;
            if n == 0 || head.len() + n > MAX_HEAD {
                return None;
            }
            head.extend_from_slice(&buf[..n]);
        }
        Some(())
    };
    tokio::time::timeout(READ_TIMEOUT, read).await.ok()??;
    let line = head.split(|&b| b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?.trim_end();
    let mut parts = line.split(' ');
    let method = parts.next()?.to_string();
    let target = parts.next()?;
    let path = target.split('?').next().unwrap_or(target).to_string();
    Some((method, path))
}

/// Status line, content type and body for one request.
fn respond(registry: &Registry, method: &str, path: &str) -> (&'static str, String, Vec<u8>) {
    let text = |s: &str| {
        (
            "text/plain; charset=utf-8".to_string(),
            s.as_bytes().to_vec(),
        )
    };
    if path != "/metrics" {
        let (ct, body) = text("not found: only /metrics is served here\n");
        return ("404 Not Found", ct, body);
    }
    if method != "GET" && method != "HEAD" {
        let (ct, body) = text("method not allowed: use GET\n");
        return ("405 Method Not Allowed", ct, body);
    }
    let encoder = TextEncoder::new();
    let mut body = Vec::new();
    match encoder.encode(&registry.gather(), &mut body) {
        Ok(()) => ("200 OK", encoder.format_type().to_string(), body),
        Err(e) => {
            let (ct, body) = text(&format!("encoding the metrics failed: {e}\n"));
            ("500 Internal Server Error", ct, body)
        }
    }
}

async fn answer(mut stream: TcpStream, registry: Registry) {
    let Some((method, path)) = read_request_line(&mut stream).await else {
        return;
    };
    let (status, content_type, body) = respond(&registry, &method, &path);
    let head = format!(
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes()).await;
    if method != "HEAD" {
        let _ = stream.write_all(&body).await;
    }
    let _ = stream.shutdown().await;
}
