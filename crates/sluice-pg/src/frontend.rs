//! The client side of a connection, from accept to a running session.
//!
//! Owns: TLS negotiation with the client, the startup packet, taking the
//! token as a cleartext password (only over TLS or from loopback, unless
//! config allows otherwise), handing it to the pipeline's identify phase,
//! opening the upstream, and the session's close record.
//! Does not: validate tokens (identity does) or relay queries (relay does).

use crate::PgContext;
use crate::codec::{self, FrontendMessage, Severity, StartupPacket, encode};
use crate::relay::{self, SessionEnd};
use crate::stream::PgStream;
use bytes::BytesMut;
use sluice_config::PlaintextAuth;
use sluice_pipeline::GatewayError;
use sluice_pipeline::gateway::ClientHello;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A client gets this long to finish startup and authentication.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// The password message carries a token; a JWT is a few KiB at most.
const MAX_PASSWORD_FRAME: usize = 64 * 1024;

/// An error the client is told about before its connection is closed.
#[derive(Debug)]
struct Fatal {
    code: &'static str,
    message: String,
}

fn fatal(code: &'static str, message: impl Into<String>) -> Fatal {
    Fatal { code, message: message.into() }
}

/// How the startup phase ended.
enum Startup {
    Ready(PgStream, Vec<(String, String)>),
    Refused(PgStream, Fatal),
    /// A cancel request (handled), or a client that went away.
    Gone,
}

/// Serves one accepted client connection to its end.
pub async fn serve_client(ctx: Arc<PgContext>, tcp: TcpStream, peer: SocketAddr) {
    let _ = tcp.set_nodelay(true);
    let mut buf = BytesMut::with_capacity(8192);
    let admitted = tokio::time::timeout(STARTUP_TIMEOUT, async {
        match read_startup(&ctx, PgStream::Plain(tcp), &mut buf).await {
            Startup::Ready(stream, params) => admit(&ctx, stream, &mut buf, peer, params).await,
            other => other.into(),
        }
    })
    .await;
    let admitted = match admitted {
        Ok(Admitted::Session(admitted)) => admitted,
        Ok(Admitted::Refused(mut stream, f)) => {
            tracing::debug!(%peer, code = f.code, message = %f.message, "connection refused");
            return send_fatal(&mut stream, &f).await;
        }
        Ok(Admitted::Gone) | Err(_) => return,
    };
    let Session { session, client, upstream, target, cancel_key: _cancel_key } = *admitted;
    // The upstream reported the session's string mode at startup.
    let standard_conforming_strings = !upstream.startup_frames.iter().any(|frame| {
        matches!(
            codec::BackendMessage::decode(frame),
            Ok(codec::BackendMessage::ParameterStatus { name: "standard_conforming_strings", value: "off" })
        )
    });
    let settings = relay::SessionSettings {
        standard_conforming_strings,
        default_schema: upstream.default_schema.as_deref().map(Arc::from),
        tables: upstream.tables,
        target,
    };
    let end = relay::relay(
        &session,
        &ctx.classifier,
        settings,
        client,
        buf,
        upstream.stream,
        upstream.leftover,
        ctx.max_frame,
        session.gateway().shutdown_token(),
    )
    .await;
    if let SessionEnd::UpstreamLost(why) = &end {
        session.gateway().metrics().upstream_errors.inc();
        tracing::warn!(session = session.id(), connection = %session.connection().name, why, "upstream lost");
    }
    session.close(end.reason());
}

/// A session ready to relay, or why there is none.
enum Admitted {
    Session(Box<Session>),
    Refused(PgStream, Fatal),
    Gone,
}

impl From<Startup> for Admitted {
    fn from(startup: Startup) -> Admitted {
        match startup {
            Startup::Refused(stream, f) => Admitted::Refused(stream, f),
            Startup::Ready(..) | Startup::Gone => Admitted::Gone,
        }
    }
}

struct Session {
    session: sluice_pipeline::Session,
    client: PgStream,
    upstream: crate::upstream::Upstream,
    target: Arc<crate::upstream::UpstreamTarget>,
    /// Held for the session's life; unregisters its cancel key on drop.
    cancel_key: crate::cancel::CancelKey,
}

async fn send_fatal(stream: &mut PgStream, f: &Fatal) {
    let mut out = BytesMut::new();
    encode::error_response(&mut out, Severity::Fatal, f.code, &f.message, None);
    let _ = stream.write_all(&out).await;
    let _ = stream.shutdown().await;
}

/// Negotiates TLS and reads the StartupMessage.
async fn read_startup(ctx: &PgContext, mut stream: PgStream, buf: &mut BytesMut) -> Startup {
    loop {
        let packet = loop {
            match codec::split_startup(buf) {
                Ok(Some(packet)) => break packet,
                Ok(None) => {}
                Err(e) => return Startup::Refused(stream, fatal("08P01", format!("invalid startup packet: {e}"))),
            }
            match stream.read_buf(buf).await {
                Ok(0) | Err(_) => return Startup::Gone,
                Ok(_) => {}
            }
        };
        match packet {
            StartupPacket::SslRequest => {
                if !buf.is_empty() {
                    // Bytes sent after SSLRequest, before the handshake, would be
                    // read as plaintext by us but not by the client: refuse.
                    return Startup::Refused(stream, fatal("08P01", "unexpected data after SSLRequest"));
                }
                stream = match (stream, &ctx.tls_acceptor) {
                    (PgStream::Plain(mut tcp), Some(acceptor)) => {
                        if tcp.write_all(b"S").await.is_err() {
                            return Startup::Gone;
                        }
                        match acceptor.accept(tcp).await {
                            Ok(tls) => PgStream::ClientTls(Box::new(tls)),
                            Err(_) => return Startup::Gone,
                        }
                    }
                    (PgStream::Plain(mut tcp), None) => {
                        if tcp.write_all(b"N").await.is_err() {
                            return Startup::Gone;
                        }
                        PgStream::Plain(tcp)
                    }
                    (other, _) => return Startup::Refused(other, fatal("08P01", "SSLRequest inside TLS")),
                };
            }
            StartupPacket::GssEncRequest => {
                if stream.write_all(b"N").await.is_err() {
                    return Startup::Gone;
                }
            }
            StartupPacket::Cancel { process_id, secret_key } => {
                ctx.cancels.cancel(crate::upstream::BackendKey { process_id, secret_key }).await;
                return Startup::Gone;
            }
            StartupPacket::Startup { minor_version, params } => {
                let unrecognised: Vec<&str> =
                    params.iter().map(|(k, _)| k.as_str()).filter(|k| k.starts_with("_pq_.")).collect();
                if minor_version > 0 || !unrecognised.is_empty() {
                    let mut out = BytesMut::new();
                    encode::negotiate_protocol_version(&mut out, &unrecognised);
                    if stream.write_all(&out).await.is_err() {
                        return Startup::Gone;
                    }
                }
                return Startup::Ready(stream, params);
            }
        }
    }
}

/// Authenticates the client, opens the session and its upstream, and sends
/// the client everything up to its first ReadyForQuery.
async fn admit(
    ctx: &PgContext,
    mut stream: PgStream,
    buf: &mut BytesMut,
    peer: SocketAddr,
    params: Vec<(String, String)>,
) -> Admitted {
    let param = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    if param("replication").is_some_and(|v| v != "false" && v != "0" && v != "off") {
        return Admitted::Refused(stream, fatal("08P01", "replication connections are not supported through Sluice"));
    }
    let Some(user) = param("user") else {
        return Admitted::Refused(stream, fatal("28000", "no user name in the startup packet"));
    };
    let database = param("database").unwrap_or(user).to_string();
    let plaintext_ok = stream.is_tls() || peer.ip().is_loopback() || ctx.plaintext_auth == PlaintextAuth::Anywhere;
    if !plaintext_ok {
        return Admitted::Refused(
            stream,
            fatal("28000", "Sluice accepts a token without TLS only from loopback; connect with sslmode=require"),
        );
    }

    let mut out = BytesMut::new();
    encode::authentication(&mut out, 3); // AuthenticationCleartextPassword
    if stream.write_all(&out).await.is_err() {
        return Admitted::Gone;
    }
    let password = loop {
        match codec::split_frame(buf, MAX_PASSWORD_FRAME) {
            Ok(Some(frame)) => match FrontendMessage::decode(&frame) {
                Ok(FrontendMessage::Password { password }) => break password.to_string(),
                _ => return Admitted::Refused(stream, fatal("08P01", "expected a password message")),
            },
            Ok(None) => {}
            Err(e) => return Admitted::Refused(stream, fatal("08P01", format!("invalid password message: {e}"))),
        }
        match stream.read_buf(buf).await {
            // psql hangs up here to prompt for the password, then reconnects.
            Ok(0) | Err(_) => return Admitted::Gone,
            Ok(_) => {}
        }
    };

    let hello = ClientHello {
        protocol: "postgres",
        client_addr: peer.to_string(),
        client_tls: stream.is_tls(),
        connection: &database,
    };
    let gateway = &ctx.gateway;
    let (principal, connection) = match gateway.identify(&hello, &password).await {
        Ok(found) => found,
        Err(GatewayError::Unauthenticated(e)) => {
            return Admitted::Refused(stream, fatal("28P01", format!("password authentication failed: {e}")));
        }
        Err(GatewayError::UnknownConnection(name)) => {
            return Admitted::Refused(
                stream,
                fatal(
                    "3D000",
                    format!(
                        "no connection named \"{name}\" is configured in Sluice; the database name picks the connection"
                    ),
                ),
            );
        }
        Err(e) => return Admitted::Refused(stream, fatal("53300", e.to_string())),
    };
    let Some(target) = ctx.targets.get(&connection.name).cloned() else {
        return Admitted::Refused(
            stream,
            fatal("3D000", format!("connection \"{}\" is not a PostgreSQL connection", connection.name)),
        );
    };
    let session = match gateway.open_session(&hello, principal, connection).await {
        Ok(session) => session,
        Err(e) => return Admitted::Refused(stream, fatal("53300", e.to_string())),
    };
    let upstream = match target.connect(&params, gateway.masking().override_tables()).await {
        Ok(upstream) => upstream,
        Err(e) => {
            gateway.metrics().upstream_errors.inc();
            tracing::warn!(connection = %target.connection.name, error = %e, "cannot open upstream session");
            let code = match e.sqlstate() {
                c if c.starts_with("3D") => "3D000",
                "08004" => "08004",
                _ => "08006",
            };
            let message = match &e {
                crate::upstream::UpstreamError::Refused { code, .. } => {
                    format!(
                        "the target of connection \"{}\" refused Sluice's login ({code}); Sluice's log has the details",
                        target.connection.name
                    )
                }
                other => format!("cannot open the target of connection \"{}\": {other}", target.connection.name),
            };
            session.close("upstream_unreachable");
            return Admitted::Refused(stream, fatal(code, message));
        }
    };
    let Some(upstream_key) = upstream.key else {
        session.close("upstream_protocol_error");
        return Admitted::Refused(stream, fatal("08006", "the target sent no BackendKeyData"));
    };
    let cancel_key = ctx.cancels.register(target.clone(), upstream_key);

    let mut out = BytesMut::new();
    encode::authentication(&mut out, 0); // AuthenticationOk
    for frame in &upstream.startup_frames {
        out.extend_from_slice(&frame.bytes);
    }
    encode::backend_key_data(&mut out, cancel_key.key.process_id, cancel_key.key.secret_key);
    encode::ready_for_query(&mut out, b'I');
    if stream.write_all(&out).await.is_err() {
        session.close("client_disconnected");
        return Admitted::Gone;
    }
    Admitted::Session(Box::new(Session { session, client: stream, upstream, target, cancel_key }))
}
