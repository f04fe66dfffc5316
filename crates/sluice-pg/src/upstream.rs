//! The upstream side: Sluice's own session to the real PostgreSQL server.
//!
//! Owns: connecting (TCP, TLS per the connection's `tls` mode), the startup
//! exchange, authenticating with the credentials only Sluice holds (trust,
//! cleartext, md5, SCRAM-SHA-256), and sending CancelRequests.
//! Does not: relay client traffic (the relay does), or show the client
//! anything secret: errors say what failed, never the credentials.

use crate::codec::{self, BackendMessage, Frame, encode};
use crate::stream::PgStream;
use crate::tls;
use bytes::BytesMut;
use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256};
use sluice_config::{Connection, UpstreamTls};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Startup messages are small; this bounds what a broken server can make us buffer.
const MAX_STARTUP_FRAME: usize = 1 << 20;

/// Client startup parameters passed on to the upstream. Anything else (above
/// all `options`, which can set arbitrary server settings) is dropped.
const FORWARDED_PARAMS: &[&str] =
    &["application_name", "client_encoding", "datestyle", "timezone", "extra_float_digits", "intervalstyle"];

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("cannot reach {addr}: {source}")]
    Connect { addr: String, source: std::io::Error },
    #[error("timed out connecting to {0}")]
    Timeout(String),
    #[error("TLS to the target failed: {0}")]
    Tls(String),
    #[error("the target does not offer TLS, and the connection requires it")]
    TlsRefused,
    #[error("the target refused Sluice's login ({code}): {message}")]
    Refused { code: String, message: String },
    #[error("the target asked for an authentication method Sluice does not support ({0})")]
    UnsupportedAuth(&'static str),
    #[error("the target asked for a password, but none is configured for this connection")]
    NoPassword,
    #[error("the target broke the protocol: {0}")]
    Protocol(String),
    #[error("connection to the target lost: {0}")]
    Io(#[from] std::io::Error),
    #[error("TLS setup: {0}")]
    Setup(#[from] tls::TlsSetupError),
    #[error("password for connection: {0}")]
    Secret(String),
}

impl UpstreamError {
    /// The SQLSTATE the client sees.
    pub fn sqlstate(&self) -> &str {
        match self {
            UpstreamError::Refused { code, .. } if code.starts_with("3D") => code,
            UpstreamError::Refused { .. } | UpstreamError::NoPassword | UpstreamError::Secret(_) => "08004",
            _ => "08006",
        }
    }
}

/// `(process id, secret key)`: identifies a backend for cancellation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BackendKey {
    pub process_id: u32,
    pub secret_key: u32,
}

/// How to reach one configured connection. Built once at startup.
pub struct UpstreamTarget {
    pub connection: Arc<Connection>,
    password: Option<String>,
    tls: Option<tokio_rustls::TlsConnector>,
}

impl std::fmt::Debug for UpstreamTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password.
        f.debug_struct("UpstreamTarget")
            .field("connection", &self.connection.name)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

/// A logged-in upstream session, ready for queries.
#[derive(Debug)]
pub struct Upstream {
    pub stream: PgStream,
    /// ParameterStatus (and any NoticeResponse) frames from the startup, to relay.
    pub startup_frames: Vec<Frame>,
    pub key: Option<BackendKey>,
    /// Bytes that arrived after ReadyForQuery.
    pub leftover: BytesMut,
    /// The schema unqualified table names resolve to at the start of the
    /// session (`current_schema()`), `None` when there is none.
    pub default_schema: Option<String>,
    /// The OIDs of the tables masking overrides name (`table.column`).
    pub tables: HashMap<u32, String>,
}

impl UpstreamTarget {
    /// Resolves the password and TLS settings; fails on what `sluice check`
    /// should report (a missing secret, an unreadable CA file).
    pub fn new(connection: Arc<Connection>) -> Result<UpstreamTarget, UpstreamError> {
        let password = connection.password().map(|s| s.resolve()).transpose().map_err(UpstreamError::Secret)?;
        let tls = tls::upstream_connector(&connection)?;
        Ok(UpstreamTarget { connection, password, tls })
    }

    /// Logs in, then reads the session facts the relay needs: the default
    /// schema, and the OIDs of `override_tables` (for masking overrides).
    pub async fn connect(
        &self,
        client_params: &[(String, String)],
        override_tables: &[String],
    ) -> Result<Upstream, UpstreamError> {
        let conn = &self.connection;
        let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&conn.upstream))
            .await
            .map_err(|_| UpstreamError::Timeout(conn.upstream.clone()))?
            .map_err(|source| UpstreamError::Connect { addr: conn.upstream.clone(), source })?;
        tcp.set_nodelay(true)?;
        let mut stream = self.negotiate_tls(tcp).await?;

        let mut params: Vec<(&str, &str)> = vec![("user", &conn.user), ("database", &conn.database)];
        for (key, value) in client_params {
            if FORWARDED_PARAMS.contains(&key.to_ascii_lowercase().as_str()) {
                params.push((key, value));
            }
        }
        let mut out = BytesMut::new();
        encode::startup(&mut out, &params);
        stream.write_all(&out).await?;

        let mut reader = FrameReader { buf: BytesMut::with_capacity(4096) };
        self.authenticate(&mut stream, &mut reader).await?;

        let mut startup_frames = Vec::new();
        let mut key = None;
        loop {
            let frame = reader.next(&mut stream).await?;
            match BackendMessage::decode(&frame).map_err(|e| UpstreamError::Protocol(e.to_string()))? {
                BackendMessage::BackendKeyData { process_id, secret_key } => {
                    key = Some(BackendKey { process_id, secret_key })
                }
                BackendMessage::ReadyForQuery { .. } => break,
                BackendMessage::Error(fields) => return Err(refused(&fields)),
                _ if frame.tag == b'S' || frame.tag == b'N' => startup_frames.push(frame),
                _ => {
                    return Err(UpstreamError::Protocol(format!(
                        "unexpected message '{}' during startup",
                        frame.tag as char
                    )));
                }
            }
        }
        let facts = session_facts(&mut stream, &mut reader, &mut startup_frames, override_tables).await?;
        Ok(Upstream {
            stream,
            startup_frames,
            key,
            leftover: reader.buf,
            default_schema: facts.default_schema,
            tables: facts.tables,
        })
    }

    /// How many rows the target expects one statement to touch, for the
    /// reviewers of a held request: `EXPLAIN (FORMAT JSON)` (planned, never
    /// run) on a short session of its own, over the extended protocol so a
    /// string of several statements is refused rather than run. `None` when
    /// the target cannot plan it.
    pub async fn explain_rows(&self, sql: &str) -> Result<Option<u64>, UpstreamError> {
        let Upstream { mut stream, leftover, .. } = self.connect(&[], &[]).await?;
        let mut out = BytesMut::new();
        encode::extended_query(&mut out, &format!("EXPLAIN (FORMAT JSON) {sql}"));
        encode::terminate(&mut out);
        stream.write_all(&out).await?;
        let mut reader = FrameReader { buf: leftover };
        let mut plan = None;
        loop {
            let frame = reader.next(&mut stream).await?;
            match frame.tag {
                b'D' => plan = text_columns(frame.body()).into_iter().next().flatten(),
                b'E' => plan = None,
                b'Z' => break,
                _ => {}
            }
        }
        Ok(plan.as_deref().and_then(rows_in_plan))
    }

    async fn negotiate_tls(&self, mut tcp: TcpStream) -> Result<PgStream, UpstreamError> {
        let Some(connector) = &self.tls else { return Ok(PgStream::Plain(tcp)) };
        let mut request = BytesMut::new();
        encode::ssl_request(&mut request);
        tcp.write_all(&request).await?;
        let mut answer = [0u8; 1];
        tcp.read_exact(&mut answer).await?;
        match answer[0] {
            b'S' => {
                let name = tls::server_name(&self.connection)?;
                let tls = connector.connect(name, tcp).await.map_err(|e| UpstreamError::Tls(e.to_string()))?;
                Ok(PgStream::UpstreamTls(Box::new(tls)))
            }
            b'N' if self.connection.tls == UpstreamTls::Prefer => Ok(PgStream::Plain(tcp)),
            b'N' => Err(UpstreamError::TlsRefused),
            other => Err(UpstreamError::Protocol(format!("unexpected answer {other:#x} to SSLRequest"))),
        }
    }

    async fn authenticate(&self, stream: &mut PgStream, reader: &mut FrameReader) -> Result<(), UpstreamError> {
        let mut scram: Option<ScramSha256> = None;
        loop {
            let frame = reader.next(stream).await?;
            let (code, data) =
                match BackendMessage::decode(&frame).map_err(|e| UpstreamError::Protocol(e.to_string()))? {
                    BackendMessage::Authentication { code, data } => (code, data),
                    BackendMessage::Error(fields) => return Err(refused(&fields)),
                    _ => {
                        return Err(UpstreamError::Protocol(format!(
                            "unexpected message '{}' during login",
                            frame.tag as char
                        )));
                    }
                };
            let mut out = BytesMut::new();
            match code {
                0 => return Ok(()),
                3 => encode::password(&mut out, self.password()?),
                5 => {
                    let salt: [u8; 4] = data
                        .get(..4)
                        .and_then(|s| s.try_into().ok())
                        .ok_or(UpstreamError::Protocol("short md5 salt".into()))?;
                    let hash = postgres_protocol::authentication::md5_hash(
                        self.connection.user.as_bytes(),
                        self.password()?.as_bytes(),
                        salt,
                    );
                    encode::password(&mut out, &hash);
                }
                10 => {
                    let offers_scram = data.split(|b| *b == 0).any(|m| m == b"SCRAM-SHA-256");
                    if !offers_scram {
                        return Err(UpstreamError::UnsupportedAuth("SASL without SCRAM-SHA-256"));
                    }
                    let client = ScramSha256::new(self.password()?.as_bytes(), ChannelBinding::unsupported());
                    encode::sasl_initial_response(&mut out, "SCRAM-SHA-256", client.message());
                    scram = Some(client);
                }
                11 => {
                    let client = scram.as_mut().ok_or(UpstreamError::Protocol("SASLContinue before SASL".into()))?;
                    client.update(data).map_err(|e| UpstreamError::Protocol(format!("SCRAM: {e}")))?;
                    encode::sasl_response(&mut out, client.message());
                }
                12 => {
                    let mut client = scram.take().ok_or(UpstreamError::Protocol("SASLFinal before SASL".into()))?;
                    client.finish(data).map_err(|e| UpstreamError::Protocol(format!("SCRAM server signature: {e}")))?;
                    continue;
                }
                2 => return Err(UpstreamError::UnsupportedAuth("Kerberos V5")),
                7 | 8 => return Err(UpstreamError::UnsupportedAuth("GSSAPI")),
                9 => return Err(UpstreamError::UnsupportedAuth("SSPI")),
                _ => return Err(UpstreamError::Protocol(format!("unknown authentication request {code}"))),
            }
            stream.write_all(&out).await?;
        }
    }

    fn password(&self) -> Result<&str, UpstreamError> {
        self.password.as_deref().ok_or(UpstreamError::NoPassword)
    }

    /// Asks the upstream to cancel what `key`'s backend is running. Cancel
    /// requests go over a fresh plain connection, as libpq sends them.
    pub async fn cancel(&self, key: BackendKey) -> Result<(), UpstreamError> {
        let mut tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&self.connection.upstream))
            .await
            .map_err(|_| UpstreamError::Timeout(self.connection.upstream.clone()))?
            .map_err(|source| UpstreamError::Connect { addr: self.connection.upstream.clone(), source })?;
        let mut out = BytesMut::new();
        encode::cancel_request(&mut out, key.process_id, key.secret_key);
        tcp.write_all(&out).await?;
        // The server closes the connection once it has read the request.
        let mut sink = [0u8; 1];
        let _ = tokio::time::timeout(CONNECT_TIMEOUT, tcp.read(&mut sink)).await;
        Ok(())
    }
}

fn refused(fields: &codec::ErrorFields<'_>) -> UpstreamError {
    UpstreamError::Refused { code: fields.code.to_string(), message: fields.message.to_string() }
}

/// Buffers a stream and yields whole frames (startup phase only).
struct FrameReader {
    buf: BytesMut,
}

impl FrameReader {
    async fn next(&mut self, stream: &mut PgStream) -> Result<Frame, UpstreamError> {
        loop {
            if let Some(frame) = codec::split_frame(&mut self.buf, MAX_STARTUP_FRAME)
                .map_err(|e| UpstreamError::Protocol(e.to_string()))?
            {
                return Ok(frame);
            }
            if stream.read_buf(&mut self.buf).await? == 0 {
                return Err(UpstreamError::Protocol("the target closed the connection during startup".into()));
            }
        }
    }
}

/// What Sluice learns of a fresh upstream session before relaying.
struct SessionFacts {
    default_schema: Option<String>,
    tables: HashMap<u32, String>,
}

/// Asks the fresh session for `current_schema()` and, when masking
/// overrides name tables, their OIDs, in one round trip. Notices and
/// parameter changes it provokes are kept for the client.
async fn session_facts(
    stream: &mut PgStream,
    reader: &mut FrameReader,
    startup_frames: &mut Vec<Frame>,
    override_tables: &[String],
) -> Result<SessionFacts, UpstreamError> {
    let mut sql = String::from("SELECT pg_catalog.current_schema()");
    if !override_tables.is_empty() {
        let names: Vec<String> = override_tables.iter().map(|t| format!("'{}'", t.replace('\'', "''"))).collect();
        sql.push_str(&format!(
            "; SELECT c.oid::text, lower(c.relname) FROM pg_catalog.pg_class c WHERE lower(c.relname) IN ({})",
            names.join(", ")
        ));
    }
    let mut out = BytesMut::new();
    encode::query(&mut out, &sql);
    stream.write_all(&out).await?;
    let mut facts = SessionFacts { default_schema: None, tables: HashMap::new() };
    let mut results = 0;
    loop {
        let frame = reader.next(stream).await?;
        match frame.tag {
            b'T' => results += 1,
            b'D' if results == 1 => facts.default_schema = text_columns(frame.body()).into_iter().next().flatten(),
            b'D' => {
                let mut columns = text_columns(frame.body()).into_iter();
                if let (Some(Some(oid)), Some(Some(name))) = (columns.next(), columns.next())
                    && let Ok(oid) = oid.parse()
                {
                    facts.tables.insert(oid, name);
                }
            }
            b'C' => {}
            b'S' | b'N' => startup_frames.push(frame),
            b'Z' => return Ok(facts),
            b'E' => {
                let BackendMessage::Error(fields) =
                    BackendMessage::decode(&frame).map_err(|e| UpstreamError::Protocol(e.to_string()))?
                else {
                    unreachable!("tag E is an error")
                };
                return Err(UpstreamError::Protocol(format!(
                    "reading the session's schema failed: {}",
                    fields.message
                )));
            }
            other => {
                return Err(UpstreamError::Protocol(format!(
                    "unexpected message '{}' answering Sluice's session query",
                    other as char
                )));
            }
        }
    }
}

/// The values of a DataRow body as text (`None` for NULL or non-UTF-8).
fn text_columns(body: &[u8]) -> Vec<Option<String>> {
    match codec::DataRowValues::new(body) {
        Ok((_, values)) => {
            values.map_while(Result::ok).map(|value| value.and_then(|v| String::from_utf8(v.to_vec()).ok())).collect()
        }
        Err(_) => Vec::new(),
    }
}

/// The rows a plan (`EXPLAIN (FORMAT JSON)` output) expects to touch: for
/// an INSERT, UPDATE or DELETE (a ModifyTable node, which itself reports
/// none) the rows of the node that feeds it.
fn rows_in_plan(json: &str) -> Option<u64> {
    let document: serde_json::Value = serde_json::from_str(json).ok()?;
    let plan = &document.get(0)?["Plan"];
    let node = match plan["Node Type"].as_str() {
        Some("ModifyTable") => plan["Plans"].get(0).unwrap_or(plan),
        _ => plan,
    };
    node["Plan Rows"].as_f64().map(|rows| rows.max(0.0) as u64)
}

#[cfg(test)]
mod tests {
    use super::rows_in_plan;

    #[test]
    fn row_estimates_read_the_node_under_a_modify_table() {
        let delete = r#"[{"Plan": {"Node Type": "ModifyTable", "Plan Rows": 0,
            "Plans": [{"Node Type": "Seq Scan", "Plan Rows": 1270}]}}]"#;
        assert_eq!(rows_in_plan(delete), Some(1270));
        assert_eq!(rows_in_plan(r#"[{"Plan": {"Node Type": "Result", "Plan Rows": 1}}]"#), Some(1));
        assert_eq!(rows_in_plan("not json"), None);
        assert_eq!(rows_in_plan("[]"), None);
    }
}
