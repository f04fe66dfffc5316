//! Syslog: the RFC 5424 message for an event, and its transports: UDP (RFC
//! 5426), TCP with octet-counted framing (RFC 6587) and TLS (RFC 5425).
//!
//! Owns: formatting (header, structured data with its escaping, the JSON
//! MSG), framing, connecting, and deciding when a batch counts as received.
//! Does not: choose what to send or keep the cursor (`runner` does).
//!
//! # The message
//! ```text
//! <PRI>1 TIMESTAMP HOSTNAME sluice PROCID MSGID [sluice@32473 event_id="sluice/7" record="7" ...] BOM{json}
//! ```
//! Facility 13 (log audit); severity from [`SiemEvent::severity`]. MSGID is
//! the event type. `32473` is the private enterprise number RFC 5612
//! reserves for examples: the SD-ID names Sluice's fields without claiming
//! a registered number. MSG is the event's JSON (UTF-8, after a BOM).
//!
//! # When a batch counts as received
//! Syslog has no acknowledgement. After writing a batch the sink waits
//! [`SETTLE`] for the peer to close or refuse (a TCP FIN or reset, a TLS
//! close, an ICMP port-unreachable seen by the connected UDP socket). If it
//! does, the batch failed and is sent again on a new connection, so records
//! are delivered at least once: a collector that stops while a batch is in
//! flight may get part of it twice (the `event_id` tells). A collector that
//! takes a batch into its socket buffer and then dies without reading it
//! (kill -9) loses it; use NATS or HEC where that matters.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::ServerName;
use sluice_config::SyslogTransport;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::SinkError;
use crate::event::SiemEvent;

/// How long after a batch the peer has to close or refuse before the batch
/// counts as received.
pub const SETTLE: Duration = Duration::from_millis(50);

/// Facility 13: log audit (RFC 5424 table 1).
const FACILITY_LOG_AUDIT: u8 = 13;

/// The SD-ID of Sluice's structured data.
pub const SD_ID: &str = "sluice@32473";

/// The RFC 5424 NILVALUE.
const NIL: &str = "-";

/// UTF-8 byte order mark that starts a UTF-8 MSG (RFC 5424 section 6.4).
const BOM: &str = "\u{feff}";

/// Longest message sent over UDP; a datagram cannot carry more.
const UDP_MAX: usize = 65_000;

/// The RFC 5424 message for `event`, without any framing.
pub fn format_message(event: &SiemEvent, hostname: &str, procid: &str) -> String {
    let pri = FACILITY_LOG_AUDIT * 8 + event.severity() as u8;
    let mut out = String::with_capacity(512);
    let _ = write!(
        out,
        "<{pri}>1 {} {} sluice {} {} ",
        header_field(&event.time, 255),
        header_field(hostname, 255),
        header_field(procid, 128),
        header_field(&event.kind, 32),
    );
    out.push('[');
    out.push_str(SD_ID);
    for (name, value) in event.summary() {
        let _ = write!(out, " {name}=\"{}\"", escape_param(&value));
    }
    out.push_str("] ");
    out.push_str(BOM);
    out.push_str(&event.to_json());
    out
}

/// A header field: printable US-ASCII without spaces, at most `max`
/// characters; anything else becomes `_`, an empty value the NILVALUE.
pub fn header_field(value: &str, max: usize) -> String {
    if value.is_empty() {
        return NIL.to_string();
    }
    value.chars().take(max).map(|c| if c.is_ascii_graphic() { c } else { '_' }).collect()
}

/// An SD-PARAM value with `"`, `\` and `]` escaped by a backslash (RFC 5424
/// section 6.3.3).
pub fn escape_param(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// RFC 6587 octet counting: `<length> <message>`, the length in bytes.
pub fn octet_counted(message: &str) -> Vec<u8> {
    let mut frame = format!("{} ", message.len()).into_bytes();
    frame.extend_from_slice(message.as_bytes());
    frame
}

/// This machine's name for the HOSTNAME field, or the NILVALUE.
pub fn local_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| NIL.to_string())
}

/// A syslog destination and its connection, opened when a batch needs it
/// and dropped on any failure.
pub struct SyslogSink {
    address: String,
    transport: SyslogTransport,
    tls: Option<(TlsConnector, ServerName<'static>)>,
    hostname: String,
    procid: String,
    conn: Option<Conn>,
}

impl std::fmt::Debug for SyslogSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyslogSink").field("address", &self.address).field("transport", &self.transport).finish()
    }
}

enum Conn {
    Udp(UdpSocket),
    Tcp(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl SyslogSink {
    /// A sink for `address`; with TLS, the server must present a
    /// certificate for `server_name` (default: the host of `address`)
    /// issued by `ca_file` (default: the system's roots).
    pub fn new(
        address: &str,
        transport: SyslogTransport,
        ca_file: Option<&Path>,
        server_name: Option<&str>,
    ) -> Result<SyslogSink, SinkError> {
        let tls = match transport {
            SyslogTransport::Tls => {
                let roots = root_store(ca_file)?;
                let config = rustls::ClientConfig::builder_with_provider(Arc::new(
                    rustls::crypto::aws_lc_rs::default_provider(),
                ))
                .with_safe_default_protocol_versions()
                .map_err(|e| SinkError::Setup(format!("TLS: {e}")))?
                .with_root_certificates(roots)
                .with_no_client_auth();
                let host = server_name.map(str::to_string).unwrap_or_else(|| host_of(address));
                let name = ServerName::try_from(host.clone())
                    .map_err(|_| SinkError::Setup(format!("`{host}` is not a valid TLS server name")))?;
                Some((TlsConnector::from(Arc::new(config)), name))
            }
            _ => None,
        };
        Ok(SyslogSink {
            address: address.to_string(),
            transport,
            tls,
            hostname: local_hostname(),
            procid: std::process::id().to_string(),
            conn: None,
        })
    }

    /// Sends `events`; `Ok` once the collector has had [`SETTLE`] to refuse
    /// them and did not.
    pub async fn send(&mut self, events: &[SiemEvent]) -> Result<(), SinkError> {
        let result = self.try_send(events).await;
        if result.is_err() {
            self.conn = None;
        }
        result
    }

    async fn try_send(&mut self, events: &[SiemEvent]) -> Result<(), SinkError> {
        if self.conn.is_none() {
            self.conn = Some(self.connect().await?);
        }
        let conn = self.conn.as_mut().expect("connected above");
        let messages = events.iter().map(|e| format_message(e, &self.hostname, &self.procid));
        match conn {
            Conn::Udp(socket) => {
                for message in messages {
                    let bytes = message.as_bytes();
                    socket.send(&bytes[..bytes.len().min(UDP_MAX)]).await.map_err(lost)?;
                }
                // A refused datagram comes back as an ICMP error, which the
                // connected socket reports on its next receive.
                let mut buf = [0u8; 1];
                match tokio::time::timeout(SETTLE, socket.recv(&mut buf)).await {
                    Err(_) => Ok(()),
                    Ok(Err(e)) => Err(lost(e)),
                    Ok(Ok(_)) => Ok(()),
                }
            }
            Conn::Tcp(stream) => write_and_settle(stream, messages).await,
            Conn::Tls(stream) => write_and_settle(stream.as_mut(), messages).await,
        }
    }

    async fn connect(&self) -> Result<Conn, SinkError> {
        let fail = |e: std::io::Error| SinkError::Unavailable(format!("{}: {e}", self.address));
        Ok(match self.transport {
            SyslogTransport::Udp => {
                let target = tokio::net::lookup_host(&self.address)
                    .await
                    .map_err(fail)?
                    .next()
                    .ok_or_else(|| SinkError::Unavailable(format!("{}: no address", self.address)))?;
                let local: std::net::SocketAddr = if target.is_ipv4() {
                    ([0, 0, 0, 0], 0).into()
                } else {
                    (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
                };
                let socket = UdpSocket::bind(local).await.map_err(fail)?;
                socket.connect(target).await.map_err(fail)?;
                Conn::Udp(socket)
            }
            SyslogTransport::Tcp => Conn::Tcp(tcp_connect(&self.address).await.map_err(fail)?),
            SyslogTransport::Tls => {
                let (connector, name) = self.tls.as_ref().expect("TLS sinks have a connector");
                let tcp = tcp_connect(&self.address).await.map_err(fail)?;
                let stream = tokio::time::timeout(CONNECT_TIMEOUT, connector.connect(name.clone(), tcp))
                    .await
                    .map_err(|_| SinkError::Unavailable(format!("{}: TLS handshake timed out", self.address)))?
                    .map_err(|e| SinkError::Unavailable(format!("{}: TLS: {e}", self.address)))?;
                Conn::Tls(Box::new(stream))
            }
        })
    }
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

async fn tcp_connect(address: &str) -> std::io::Result<TcpStream> {
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(address))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))??;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Writes every message octet-counted, then waits [`SETTLE`] for a close or
/// reset. The collector never writes, so any read that returns means the
/// connection is gone.
async fn write_and_settle<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    messages: impl Iterator<Item = String>,
) -> Result<(), SinkError> {
    let mut buf = Vec::with_capacity(16 * 1024);
    for message in messages {
        buf.extend_from_slice(&octet_counted(&message));
    }
    stream.write_all(&buf).await.map_err(lost)?;
    stream.flush().await.map_err(lost)?;
    let mut byte = [0u8; 1];
    match tokio::time::timeout(SETTLE, stream.read(&mut byte)).await {
        Err(_) => Ok(()),
        Ok(Ok(0)) => Err(SinkError::Unavailable("the collector closed the connection".into())),
        Ok(Ok(_)) => Err(SinkError::Unavailable("the collector sent data; syslog collectors send none".into())),
        Ok(Err(e)) => Err(lost(e)),
    }
}

fn lost(e: std::io::Error) -> SinkError {
    SinkError::Unavailable(format!("connection lost: {e}"))
}

fn host_of(address: &str) -> String {
    let host = address.rsplit_once(':').map_or(address, |(host, _)| host);
    host.trim_start_matches('[').trim_end_matches(']').to_string()
}

/// The certificates in `ca_file`, or the system's.
pub(crate) fn root_store(ca_file: Option<&Path>) -> Result<rustls::RootCertStore, SinkError> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let pem = std::fs::read(path)
                .map_err(|e| SinkError::Setup(format!("cannot read ca_file {}: {e}", path.display())))?;
            for cert in rustls_pki_types::pem::PemObject::pem_slice_iter(&pem) {
                let cert: rustls_pki_types::CertificateDer<'static> =
                    cert.map_err(|e| SinkError::Setup(format!("ca_file {}: {e}", path.display())))?;
                roots.add(cert).map_err(|e| SinkError::Setup(format!("ca_file {}: {e}", path.display())))?;
            }
            if roots.is_empty() {
                return Err(SinkError::Setup(format!("ca_file {} holds no certificate", path.display())));
            }
        }
        None => {
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
        }
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::{SyslogSink, escape_param, format_message, header_field, octet_counted};
    use crate::SinkError;
    use crate::event::SiemEvent;
    use sluice_audit::AuditRecord;
    use sluice_config::StatementOption;

    #[test]
    fn sd_param_values_escape_quote_backslash_and_bracket() {
        let cases = [
            ("plain", "plain"),
            ("a\"b", "a\\\"b"),
            ("a\\b", "a\\\\b"),
            ("a]b", "a\\]b"),
            ("[x]=\"y\\\"", "[x\\]=\\\"y\\\\\\\""),
            ("ünïcode", "ünïcode"),
            ("", ""),
        ];
        for (value, escaped) in cases {
            assert_eq!(escape_param(value), escaped, "{value}");
        }
    }

    #[test]
    fn header_fields_use_the_nilvalue_and_printable_ascii() {
        let cases = [("", 32, "-"), ("host-1", 255, "host-1"), ("a b\u{e9}c", 32, "a_b_c"), ("abcdef", 3, "abc")];
        for (value, max, field) in cases {
            assert_eq!(header_field(value, max), field, "{value:?}");
        }
    }

    #[test]
    fn octet_counting_counts_bytes_not_characters() {
        let cases = [("", "0 "), ("abc", "3 abc"), ("é", "2 é"), ("\u{feff}{}", "5 \u{feff}{}")];
        for (message, frame) in cases {
            assert_eq!(octet_counted(message), frame.as_bytes(), "{message:?}");
        }
    }

    fn record(statement: &str, principal: &str) -> AuditRecord {
        let event = serde_json::json!({
            "type": "request", "request_id": "s:1", "session_id": "s", "principal": principal,
            "connection": "db", "client_addr": "127.0.0.1:1", "statement": statement, "param_count": 0,
            "params_sha256": null, "decision": {"verdict": "deny", "policies": ["no-ddl"], "reason": "r"}
        });
        AuditRecord {
            seq: 12,
            time: "2026-11-05T09:30:00.000250Z".parse().unwrap(),
            event: serde_json::from_value(event).unwrap(),
            prev_hash: "00".repeat(32),
            hash: "11".repeat(32),
        }
    }

    #[test]
    fn message_has_the_rfc5424_header_sd_and_json_msg() {
        let event = SiemEvent::from_record(&record("drop table \"x]\"", "svc\"]\\"), StatementOption::Full);
        let message = format_message(&event, "gw-1", "4242");
        // facility 13 * 8 + warning (4): a denied request.
        let expected_head = "<108>1 2026-11-05T09:30:00.000250Z gw-1 sluice 4242 request \
             [sluice@32473 event_id=\"sluice/12\" record=\"12\" principal=\"svc\\\"\\]\\\\\" connection=\"db\" \
             session_id=\"s\" request_id=\"s:1\" verdict=\"deny\"] \u{feff}{";
        assert!(message.starts_with(expected_head), "{message}");
        let json = message.split_once('\u{feff}').unwrap().1;
        let value: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(value["statement"], "drop table \"x]\"");
        assert_eq!(value["event_id"], "sluice/12");
        assert!(!message.contains('\n'));

        let nil = format_message(&event, "", "");
        assert!(nil.starts_with("<108>1 2026-11-05T09:30:00.000250Z - sluice - request ["), "{nil}");
    }

    /// TLS to a real rsyslogd, and its refusal with the wrong CA, are in
    /// `crates/sluice/tests/siem/syslog.rs`.
    #[test]
    fn a_ca_file_without_certificates_is_a_setup_error() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        match SyslogSink::new("127.0.0.1:6514", sluice_config::SyslogTransport::Tls, Some(&empty), None) {
            Err(SinkError::Setup(message)) => assert!(message.contains("no certificate"), "{message}"),
            other => panic!("{other:?}"),
        }
    }
}
