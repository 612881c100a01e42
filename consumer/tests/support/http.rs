//! One plain HTTP/1.1 GET for the tests of `/health`, `/wait`, `/rounds` and the status page.

use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// GET `path`: the response head and the body.
pub async fn http_get_raw(addr: SocketAddr, path: &str) -> (String, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    (head.to_string(), body.to_string())
}

/// GET `path`: the HTTP status code and the body.
pub async fn http_get_status(addr: SocketAddr, path: &str) -> (u16, String) {
    let (head, body) = http_get_raw(addr, path).await;
    let code = head.split(' ').nth(1).unwrap().parse().unwrap();
    (code, body)
}

/// GET `path`, which must answer 200: the body.
pub async fn http_get_ok(addr: SocketAddr, path: &str) -> String {
    let (code, body) = http_get_status(addr, path).await;
    assert_eq!(code, 200, "{body}");
    body
}
