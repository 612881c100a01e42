//! A minimal walsender (replication) connection: startup with `replication=database`,
//! authentication, and simple-protocol queries.
//!
//! tokio-postgres cannot open a replication connection, and the one command that needs one
//! here is `CREATE_REPLICATION_SLOT <slot> LOGICAL pgoutput EXPORT_SNAPSHOT` (the exported
//! snapshot is the only way to read the tables at exactly the slot's starting point). So this
//! module frames the protocol itself with tokio-postgres's own `postgres-protocol` crate:
//!
//! ```text
//! -> StartupMessage {user, database, replication=database, client_encoding=UTF8,
//!                    application_name}       (the config's, else source::DEFAULT_APPLICATION_NAME)
//! <- Authentication* (ok | cleartext | md5 | SASL SCRAM-SHA-256)   -> answers
//! <- ParameterStatus* BackendKeyData ReadyForQuery
//! -> Query "CREATE_REPLICATION_SLOT ..."
//! <- RowDescription DataRow CommandComplete ReadyForQuery   (or ErrorResponse ... ReadyForQuery)
//! ```
//!
//! Invariant: the connection stays open as long as its exported snapshot is in use (the
//! snapshot dies with the next command or the connection); `slot.rs` holds it until the
//! snapshot's COPY transaction has imported it. No TLS: a source that requires TLS is refused
//! with an error saying so.

use crate::error::{CaptureError, Result};
use bytes::BytesMut;
use fallible_iterator::FallibleIterator;
use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256, SCRAM_SHA_256};
use postgres_protocol::message::{backend, frontend};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_postgres::config::{Host, SslMode};

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// A server error: SQLSTATE and message.
#[derive(Clone, Debug)]
pub struct ServerError {
    /// SQLSTATE.
    pub code: String,
    /// Message.
    pub message: String,
}

/// An open replication connection.
pub struct WalSender {
    stream: Box<dyn Stream>,
    buf: BytesMut,
}

impl WalSender {
    /// Connects and authenticates as `config`'s user.
    pub async fn connect(config: &tokio_postgres::Config) -> Result<WalSender> {
        if config.get_ssl_mode() == SslMode::Require {
            return Err(CaptureError::Replication(
                "sslmode=require is not supported on the replication connection; use sslmode=prefer or disable".into(),
            ));
        }
        let stream = open(config).await?;
        let mut ws = WalSender {
            stream,
            buf: BytesMut::with_capacity(8192),
        };
        ws.startup(config).await?;
        Ok(ws)
    }

    async fn startup(&mut self, config: &tokio_postgres::Config) -> Result<()> {
        let user = config.get_user().unwrap_or("postgres").to_string();
        let db = config.get_dbname().unwrap_or(&user).to_string();
        let app = config
            .get_application_name()
            .unwrap_or(crate::source::DEFAULT_APPLICATION_NAME);
        let mut out = BytesMut::new();
        let params = [
            ("user", user.as_str()),
            ("database", db.as_str()),
            ("replication", "database"),
            ("client_encoding", "UTF8"),
            ("application_name", app),
        ];
        frontend::startup_message(params.iter().copied(), &mut out)?;
        self.send(&out).await?;
        let password = config.get_password().map(<[u8]>::to_vec);
        let need_password = || {
            password.clone().ok_or_else(|| {
                CaptureError::Replication(
                    "the server asks for a password and none was given".into(),
                )
            })
        };
        let mut scram: Option<ScramSha256> = None;
        loop {
            let mut out = BytesMut::new();
            match self.read().await? {
                backend::Message::AuthenticationOk => {}
                backend::Message::AuthenticationCleartextPassword => {
                    frontend::password_message(&need_password()?, &mut out)?;
                }
                backend::Message::AuthenticationMd5Password(body) => {
                    let hash = postgres_protocol::authentication::md5_hash(
                        user.as_bytes(),
                        &need_password()?,
                        body.salt(),
                    );
                    frontend::password_message(hash.as_bytes(), &mut out)?;
                }
                backend::Message::AuthenticationSasl(body) => {
                    let mut mechs = body.mechanisms();
                    let mut ok = false;
                    while let Some(m) = mechs.next()? {
                        ok |= m == SCRAM_SHA_256;
                    }
                    if !ok {
                        return Err(CaptureError::UnsupportedAuth {
                            method: "a SASL mechanism other than SCRAM-SHA-256",
                        });
                    }
                    let s = ScramSha256::new(&need_password()?, ChannelBinding::unsupported());
                    frontend::sasl_initial_response(SCRAM_SHA_256, s.message(), &mut out)?;
                    scram = Some(s);
                }
                backend::Message::AuthenticationSaslContinue(body) => {
                    let s = scram.as_mut().ok_or_else(|| unexpected("SASL continue"))?;
                    s.update(body.data())?;
                    frontend::sasl_response(s.message(), &mut out)?;
                }
                backend::Message::AuthenticationSaslFinal(body) => {
                    let s = scram.as_mut().ok_or_else(|| unexpected("SASL final"))?;
                    s.finish(body.data())?;
                }
                backend::Message::AuthenticationGss
                | backend::Message::AuthenticationGssContinue(_)
                | backend::Message::AuthenticationSspi => {
                    return Err(CaptureError::UnsupportedAuth { method: "GSS/SSPI" })
                }
                backend::Message::AuthenticationKerberosV5 => {
                    return Err(CaptureError::UnsupportedAuth { method: "Kerberos" })
                }
                backend::Message::AuthenticationScmCredential => {
                    return Err(CaptureError::UnsupportedAuth {
                        method: "SCM credential",
                    })
                }
                backend::Message::ErrorResponse(body) => {
                    return Err(startup_error(&user, server_error(&body)?))
                }
                backend::Message::ReadyForQuery(_) => return Ok(()),
                _ => {}
            }
            if !out.is_empty() {
                self.send(&out).await?;
            }
        }
    }

    /// Runs one simple-protocol command; its rows as text (NULL = `None`), or the server's
    /// error.
    pub async fn query(
        &mut self,
        sql: &str,
    ) -> Result<Result<Vec<Vec<Option<String>>>, ServerError>> {
        let mut out = BytesMut::new();
        frontend::query(sql, &mut out)?;
        self.send(&out).await?;
        let mut rows = Vec::new();
        let mut error = None;
        loop {
            match self.read().await? {
                backend::Message::DataRow(body) => {
                    let buf = body.buffer();
                    let mut ranges = body.ranges();
                    let mut row = Vec::new();
                    while let Some(r) = ranges.next()? {
                        row.push(r.map(|r| String::from_utf8_lossy(&buf[r]).into_owned()));
                    }
                    rows.push(row);
                }
                backend::Message::ErrorResponse(body) => error = Some(server_error(&body)?),
                backend::Message::ReadyForQuery(_) => {
                    return Ok(match error {
                        Some(e) => Err(e),
                        None => Ok(rows),
                    })
                }
                _ => {}
            }
        }
    }

    /// Says goodbye (the exported snapshot ends here).
    pub async fn close(mut self) {
        let mut out = BytesMut::new();
        frontend::terminate(&mut out);
        let _ = self.send(&out).await;
    }

    async fn send(&mut self, bytes: &[u8]) -> Result<()> {
        self.stream.write_all(bytes).await?;
        self.stream.flush().await?;
        Ok(())
    }

    async fn read(&mut self) -> Result<backend::Message> {
        loop {
            if let Some(m) = backend::Message::parse(&mut self.buf)? {
                return Ok(m);
            }
            if self.stream.read_buf(&mut self.buf).await? == 0 {
                return Err(CaptureError::Replication(
                    "the server closed the replication connection".into(),
                ));
            }
        }
    }
}

async fn open(config: &tokio_postgres::Config) -> Result<Box<dyn Stream>> {
    let port = config.get_ports().first().copied().unwrap_or(5432);
    match config.get_hosts().first() {
        Some(Host::Tcp(host)) => {
            let s = tokio::net::TcpStream::connect((host.as_str(), port)).await?;
            s.set_nodelay(true)?;
            Ok(Box::new(s))
        }
        #[cfg(unix)]
        Some(Host::Unix(dir)) => {
            let path = dir.join(format!(".s.PGSQL.{port}"));
            Ok(Box::new(tokio::net::UnixStream::connect(path).await?))
        }
        #[allow(unreachable_patterns)]
        _ => {
            let s = tokio::net::TcpStream::connect(("localhost", port)).await?;
            Ok(Box::new(s))
        }
    }
}

fn unexpected(what: &str) -> CaptureError {
    CaptureError::Replication(format!("unexpected {what} message during authentication"))
}

fn server_error(body: &backend::ErrorResponseBody) -> Result<ServerError> {
    let mut fields = body.fields();
    let mut e = ServerError {
        code: String::new(),
        message: String::new(),
    };
    while let Some(f) = fields.next()? {
        let v = String::from_utf8_lossy(f.value_bytes()).into_owned();
        match f.type_() {
            b'C' => e.code = v,
            b'M' => e.message = v,
            _ => {}
        }
    }
    Ok(e)
}

/// Startup refusals that mean a bad set-up.
fn startup_error(user: &str, e: ServerError) -> CaptureError {
    // 42501 insufficient_privilege: "must be superuser or replication role to start walsender".
    if e.code == "42501" || e.message.contains("replication role") {
        return CaptureError::NoReplicationPrivilege {
            user: user.to_string(),
        };
    }
    CaptureError::Replication(format!("{} (SQLSTATE {})", e.message, e.code))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_replication_attribute_is_named() {
        let e = startup_error(
            "app",
            ServerError {
                code: "42501".into(),
                message: "must be superuser or replication role to start walsender".into(),
            },
        );
        assert!(matches!(e, CaptureError::NoReplicationPrivilege { ref user } if user == "app"));
        assert!(e.to_string().contains("ALTER ROLE \"app\" REPLICATION"));
    }
}
