//! PostgreSQL wire codec: framing, and typed views of the messages Sluice acts on.
//!
//! Owns: splitting a byte stream into messages (check the whole frame is
//! buffered before taking it, refuse lengths over the limit), decoding the
//! startup packet and the frontend/backend messages the gateway reads, and
//! encoding the messages it writes.
//! Does not: touch sockets, policy or audit. Messages the gateway does not act
//! on are relayed as raw frames, untouched.
//!
//! Directions are separate types so the compiler checks them: a
//! [`Frame`] carries a raw tag, and the typed decoders live on
//! [`FrontendMessage`] (client → server) and [`BackendMessage`]
//! (server → client).

mod rows;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use std::borrow::Cow;

/// Protocol 3.0, as sent in the startup packet.
pub const PROTOCOL_3_0: u32 = 196_608;
const SSL_REQUEST: u32 = 80_877_103;
const GSSENC_REQUEST: u32 = 80_877_104;
const CANCEL_REQUEST: u32 = 80_877_102;
/// A startup packet is small; anything bigger is garbage or an attack.
const MAX_STARTUP_LEN: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("message length {len} is outside the accepted range (at most {max} bytes)")]
    BadLength { len: u64, max: usize },
    #[error("malformed {what} message: {why}")]
    Malformed { what: &'static str, why: &'static str },
    #[error("unsupported protocol version {major}.{minor}")]
    UnsupportedVersion { major: u16, minor: u16 },
}

pub use rows::{DataRowValues, FieldDescription, begin_data_row, decode_row_description, finish_message, put_value};

fn malformed(what: &'static str, why: &'static str) -> CodecError {
    CodecError::Malformed { what, why }
}

/// One tagged message: the tag byte and the body after the length word.
/// `bytes` holds the whole frame (tag, length, body) for cheap relaying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub tag: u8,
    pub bytes: Bytes,
}

impl Frame {
    pub fn body(&self) -> &[u8] {
        &self.bytes[5..]
    }
}

/// Takes one whole tagged frame off the front of `buf`, or `None` if more
/// bytes are needed. Nothing is copied; the length is checked before any
/// allocation.
pub fn split_frame(buf: &mut BytesMut, max_len: usize) -> Result<Option<Frame>, CodecError> {
    if buf.len() < 5 {
        return Ok(None);
    }
    let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
    if len < 4 || len > max_len {
        return Err(CodecError::BadLength { len: len as u64, max: max_len });
    }
    if buf.len() < len + 1 {
        buf.reserve(len + 1 - buf.len());
        return Ok(None);
    }
    let tag = buf[0];
    Ok(Some(Frame { tag, bytes: buf.split_to(len + 1).freeze() }))
}

/// The first packet of a connection, which has no tag byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartupPacket {
    SslRequest,
    GssEncRequest,
    Cancel { process_id: u32, secret_key: u32 },
    Startup { minor_version: u16, params: Vec<(String, String)> },
}

pub fn split_startup(buf: &mut BytesMut) -> Result<Option<StartupPacket>, CodecError> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    if !(8..=MAX_STARTUP_LEN).contains(&len) {
        return Err(CodecError::BadLength { len: len as u64, max: MAX_STARTUP_LEN });
    }
    if buf.len() < len {
        return Ok(None);
    }
    let mut packet = buf.split_to(len).freeze();
    packet.advance(4);
    let code = packet.get_u32();
    match code {
        SSL_REQUEST => Ok(Some(StartupPacket::SslRequest)),
        GSSENC_REQUEST => Ok(Some(StartupPacket::GssEncRequest)),
        CANCEL_REQUEST => {
            if packet.remaining() < 8 {
                return Err(malformed("CancelRequest", "too short"));
            }
            Ok(Some(StartupPacket::Cancel { process_id: packet.get_u32(), secret_key: packet.get_u32() }))
        }
        version if version >> 16 == 3 => {
            let mut params = Vec::new();
            let mut rest = &packet[..];
            loop {
                let key = take_cstr(&mut rest).ok_or(malformed("StartupMessage", "unterminated parameter name"))?;
                if key.is_empty() {
                    break;
                }
                let value = take_cstr(&mut rest).ok_or(malformed("StartupMessage", "unterminated parameter value"))?;
                params.push((key.to_string(), value.to_string()));
            }
            Ok(Some(StartupPacket::Startup { minor_version: (version & 0xffff) as u16, params }))
        }
        version => {
            Err(CodecError::UnsupportedVersion { major: (version >> 16) as u16, minor: (version & 0xffff) as u16 })
        }
    }
}

/// Reads a NUL-terminated UTF-8 string and advances past it.
fn take_cstr<'a>(rest: &mut &'a [u8]) -> Option<&'a str> {
    let end = rest.iter().position(|b| *b == 0)?;
    let text = std::str::from_utf8(&rest[..end]).ok()?;
    *rest = &rest[end + 1..];
    Some(text)
}

/// Reads a NUL-terminated SQL string in whatever encoding the client uses.
fn take_sql<'a>(rest: &mut &'a [u8]) -> Option<Cow<'a, str>> {
    let end = rest.iter().position(|b| *b == 0)?;
    let text = String::from_utf8_lossy(&rest[..end]);
    *rest = &rest[end + 1..];
    Some(text)
}

fn take_u16(rest: &mut &[u8]) -> Option<u16> {
    let (head, tail) = rest.split_first_chunk::<2>()?;
    *rest = tail;
    Some(u16::from_be_bytes(*head))
}

fn take_i32(rest: &mut &[u8]) -> Option<i32> {
    let (head, tail) = rest.split_first_chunk::<4>()?;
    *rest = tail;
    Some(i32::from_be_bytes(*head))
}

/// Client → server messages the gateway reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrontendMessage<'a> {
    /// SQL is decoded lossily: the text is for policy and audit, while the
    /// original bytes are what gets relayed.
    Query {
        sql: Cow<'a, str>,
    },
    Parse {
        statement: &'a str,
        sql: Cow<'a, str>,
    },
    /// `params` spans the parameter format codes and values, hashed for audit.
    /// `result_formats`: the result-column format codes (0 text, 1 binary).
    Bind {
        portal: &'a str,
        statement: &'a str,
        param_count: u16,
        params: &'a [u8],
        result_formats: Vec<i16>,
    },
    Execute {
        portal: &'a str,
    },
    Describe {
        statement: bool,
        name: &'a str,
    },
    Close {
        statement: bool,
        name: &'a str,
    },
    Sync,
    Flush,
    Terminate,
    CopyData,
    CopyDone,
    CopyFail,
    FunctionCall,
    Password {
        password: &'a str,
    },
}

impl<'a> FrontendMessage<'a> {
    pub fn decode(frame: &'a Frame) -> Result<FrontendMessage<'a>, CodecError> {
        let mut body = frame.body();
        let message = match frame.tag {
            b'Q' => {
                FrontendMessage::Query { sql: take_sql(&mut body).ok_or(malformed("Query", "unterminated string"))? }
            }
            b'P' => {
                let statement = take_cstr(&mut body).ok_or(malformed("Parse", "bad statement name"))?;
                let sql = take_sql(&mut body).ok_or(malformed("Parse", "unterminated query string"))?;
                FrontendMessage::Parse { statement, sql }
            }
            b'B' => {
                let portal = take_cstr(&mut body).ok_or(malformed("Bind", "bad portal name"))?;
                let statement = take_cstr(&mut body).ok_or(malformed("Bind", "bad statement name"))?;
                let params_start = body;
                let formats = take_u16(&mut body).ok_or(malformed("Bind", "truncated"))?;
                body = body.get(formats as usize * 2..).ok_or(malformed("Bind", "truncated format codes"))?;
                let param_count = take_u16(&mut body).ok_or(malformed("Bind", "truncated"))?;
                for _ in 0..param_count {
                    let len = take_i32(&mut body).ok_or(malformed("Bind", "truncated parameter"))?;
                    match len {
                        -1 => {} // NULL
                        len if len < -1 => return Err(malformed("Bind", "negative parameter length")),
                        len => {
                            body =
                                body.get(len as usize..).ok_or(malformed("Bind", "parameter longer than message"))?;
                        }
                    }
                }
                let params = &params_start[..params_start.len() - body.len()];
                let result_count = take_u16(&mut body).ok_or(malformed("Bind", "truncated result formats"))?;
                let codes =
                    body.get(..result_count as usize * 2).ok_or(malformed("Bind", "truncated result formats"))?;
                let result_formats = codes.chunks_exact(2).map(|c| i16::from_be_bytes([c[0], c[1]])).collect();
                FrontendMessage::Bind { portal, statement, param_count, params, result_formats }
            }
            b'E' => FrontendMessage::Execute {
                portal: take_cstr(&mut body).ok_or(malformed("Execute", "bad portal name"))?,
            },
            b'D' | b'C' => {
                let kind = *body.first().ok_or(malformed("Describe/Close", "empty"))?;
                let statement = match kind {
                    b'S' => true,
                    b'P' => false,
                    _ => return Err(malformed("Describe/Close", "kind must be 'S' or 'P'")),
                };
                body = &body[1..];
                let name = take_cstr(&mut body).ok_or(malformed("Describe/Close", "bad name"))?;
                if frame.tag == b'D' {
                    FrontendMessage::Describe { statement, name }
                } else {
                    FrontendMessage::Close { statement, name }
                }
            }
            b'S' => FrontendMessage::Sync,
            b'H' => FrontendMessage::Flush,
            b'X' => FrontendMessage::Terminate,
            b'd' => FrontendMessage::CopyData,
            b'c' => FrontendMessage::CopyDone,
            b'f' => FrontendMessage::CopyFail,
            b'F' => FrontendMessage::FunctionCall,
            b'p' => FrontendMessage::Password {
                password: take_cstr(&mut body).ok_or(malformed("PasswordMessage", "bad string"))?,
            },
            _ => return Err(malformed("frontend", "unknown message type")),
        };
        Ok(message)
    }
}

/// Server → client messages the gateway reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendMessage<'a> {
    Authentication {
        code: i32,
        data: &'a [u8],
    },
    ParameterStatus {
        name: &'a str,
        value: &'a str,
    },
    BackendKeyData {
        process_id: u32,
        secret_key: u32,
    },
    ReadyForQuery {
        status: u8,
    },
    CommandComplete {
        tag: &'a str,
    },
    Error(ErrorFields<'a>),
    /// Everything else: relayed untouched.
    Other,
}

impl<'a> BackendMessage<'a> {
    pub fn decode(frame: &'a Frame) -> Result<BackendMessage<'a>, CodecError> {
        let mut body = frame.body();
        let message = match frame.tag {
            b'R' => {
                let code = take_i32(&mut body).ok_or(malformed("Authentication", "truncated"))?;
                BackendMessage::Authentication { code, data: body }
            }
            b'S' => {
                let name = take_cstr(&mut body).ok_or(malformed("ParameterStatus", "bad name"))?;
                let value = take_cstr(&mut body).ok_or(malformed("ParameterStatus", "bad value"))?;
                BackendMessage::ParameterStatus { name, value }
            }
            b'K' => {
                let process_id = take_i32(&mut body).ok_or(malformed("BackendKeyData", "truncated"))? as u32;
                let secret_key = take_i32(&mut body).ok_or(malformed("BackendKeyData", "truncated"))? as u32;
                BackendMessage::BackendKeyData { process_id, secret_key }
            }
            b'Z' => BackendMessage::ReadyForQuery { status: *body.first().ok_or(malformed("ReadyForQuery", "empty"))? },
            b'C' => BackendMessage::CommandComplete {
                tag: take_cstr(&mut body).ok_or(malformed("CommandComplete", "bad tag"))?,
            },
            b'E' => BackendMessage::Error(ErrorFields::decode(body)),
            _ => BackendMessage::Other,
        };
        Ok(message)
    }
}

/// The fields of an ErrorResponse or NoticeResponse that Sluice reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorFields<'a> {
    pub severity: &'a str,
    pub code: &'a str,
    pub message: &'a str,
}

impl<'a> ErrorFields<'a> {
    pub fn decode(mut body: &'a [u8]) -> ErrorFields<'a> {
        let mut fields = ErrorFields::default();
        while let Some((&kind, rest)) = body.split_first() {
            if kind == 0 {
                break;
            }
            body = rest;
            let Some(value) = take_cstr(&mut body) else { break };
            match kind {
                b'V' => fields.severity = value,
                b'S' if fields.severity.is_empty() => fields.severity = value,
                b'C' => fields.code = value,
                b'M' => fields.message = value,
                _ => {}
            }
        }
        fields
    }
}

/// Severity of an ErrorResponse Sluice writes itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The statement failed; the session goes on.
    Error,
    /// The session ends.
    Fatal,
}

/// Writers for the messages Sluice originates.
pub mod encode {
    use super::*;

    fn message(out: &mut BytesMut, tag: u8, body: impl FnOnce(&mut BytesMut)) {
        out.put_u8(tag);
        let at = out.len();
        out.put_u32(0);
        body(out);
        let len = (out.len() - at) as u32;
        out[at..at + 4].copy_from_slice(&len.to_be_bytes());
    }

    fn cstr(out: &mut BytesMut, text: &str) {
        // A NUL inside would end the field early; nothing Sluice writes has one.
        out.put_slice(text.replace('\0', "").as_bytes());
        out.put_u8(0);
    }

    pub fn error_response(out: &mut BytesMut, severity: Severity, code: &str, message_text: &str, hint: Option<&str>) {
        let severity = match severity {
            Severity::Error => "ERROR",
            Severity::Fatal => "FATAL",
        };
        message(out, b'E', |out| {
            out.put_u8(b'S');
            cstr(out, severity);
            out.put_u8(b'V');
            cstr(out, severity);
            out.put_u8(b'C');
            cstr(out, code);
            out.put_u8(b'M');
            cstr(out, message_text);
            if let Some(hint) = hint {
                out.put_u8(b'H');
                cstr(out, hint);
            }
            out.put_u8(0);
        });
    }

    pub fn notice(out: &mut BytesMut, message_text: &str) {
        message(out, b'N', |out| {
            for (kind, value) in [(b'S', "NOTICE"), (b'V', "NOTICE"), (b'C', "00000"), (b'M', message_text)] {
                out.put_u8(kind);
                cstr(out, value);
            }
            out.put_u8(0);
        });
    }

    pub fn ready_for_query(out: &mut BytesMut, status: u8) {
        message(out, b'Z', |out| out.put_u8(status));
    }

    pub fn authentication(out: &mut BytesMut, code: i32) {
        message(out, b'R', |out| out.put_i32(code));
    }

    pub fn backend_key_data(out: &mut BytesMut, process_id: u32, secret_key: u32) {
        message(out, b'K', |out| {
            out.put_u32(process_id);
            out.put_u32(secret_key);
        });
    }

    /// NegotiateProtocolVersion: Sluice speaks 3.0 and no protocol options.
    pub fn negotiate_protocol_version(out: &mut BytesMut, unrecognised: &[&str]) {
        message(out, b'v', |out| {
            out.put_u32(PROTOCOL_3_0);
            out.put_u32(unrecognised.len() as u32);
            for option in unrecognised {
                cstr(out, option);
            }
        });
    }

    pub fn startup(out: &mut BytesMut, params: &[(&str, &str)]) {
        let at = out.len();
        out.put_u32(0);
        out.put_u32(PROTOCOL_3_0);
        for (key, value) in params {
            cstr(out, key);
            cstr(out, value);
        }
        out.put_u8(0);
        let len = (out.len() - at) as u32;
        out[at..at + 4].copy_from_slice(&len.to_be_bytes());
    }

    pub fn ssl_request(out: &mut BytesMut) {
        out.put_u32(8);
        out.put_u32(SSL_REQUEST);
    }

    pub fn cancel_request(out: &mut BytesMut, process_id: u32, secret_key: u32) {
        out.put_u32(16);
        out.put_u32(CANCEL_REQUEST);
        out.put_u32(process_id);
        out.put_u32(secret_key);
    }

    pub fn password(out: &mut BytesMut, password: &str) {
        message(out, b'p', |out| cstr(out, password));
    }

    pub fn sasl_initial_response(out: &mut BytesMut, mechanism: &str, data: &[u8]) {
        message(out, b'p', |out| {
            cstr(out, mechanism);
            out.put_i32(data.len() as i32);
            out.put_slice(data);
        });
    }

    pub fn sasl_response(out: &mut BytesMut, data: &[u8]) {
        message(out, b'p', |out| out.put_slice(data));
    }

    pub fn terminate(out: &mut BytesMut) {
        message(out, b'X', |_| {});
    }

    /// A simple Query (Sluice's own, on its upstream session).
    pub fn query(out: &mut BytesMut, sql: &str) {
        message(out, b'Q', |out| cstr(out, sql));
    }

    /// One statement over the extended protocol, without parameters: Parse,
    /// Bind, Execute and Sync on the unnamed statement and portal. Parse
    /// refuses a string of several statements, so only one can run.
    pub fn extended_query(out: &mut BytesMut, sql: &str) {
        message(out, b'P', |out| {
            cstr(out, "");
            cstr(out, sql);
            out.put_u16(0);
        });
        message(out, b'B', |out| {
            cstr(out, "");
            cstr(out, "");
            out.put_u16(0);
            out.put_u16(0);
            out.put_u16(0);
        });
        message(out, b'E', |out| {
            cstr(out, "");
            out.put_u32(0);
        });
        message(out, b'S', |_| {});
    }

    /// Describe of a portal (Sluice's own, to learn a result's columns).
    pub fn describe_portal(out: &mut BytesMut, portal: &str) {
        message(out, b'D', |out| {
            out.put_u8(b'P');
            cstr(out, portal);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_wait_for_whole_messages_and_refuse_bad_lengths() {
        let mut buf = BytesMut::from(&b"Q\0\0\0\x0dSELECT 1\0Z"[..]);
        let frame = split_frame(&mut buf, 1 << 20).unwrap().unwrap();
        assert_eq!(FrontendMessage::decode(&frame).unwrap(), FrontendMessage::Query { sql: "SELECT 1".into() });
        assert_eq!(split_frame(&mut buf, 1 << 20).unwrap(), None);
        let cases: &[(&[u8], bool)] = &[
            (b"Q\x80\0\0\0", true),  // 2 GB length prefix
            (b"Q\0\0\0\x03", true),  // shorter than the length word
            (b"Q\0\0\0\x04", false), // empty body is fine
            (b"Q\0\0\x10\0", false), // 4 KiB, incomplete
        ];
        for (bytes, refused) in cases {
            let result = split_frame(&mut BytesMut::from(*bytes), 1 << 20);
            assert_eq!(result.is_err(), *refused, "{bytes:?}");
        }
    }

    #[test]
    fn startup_packets() {
        let mut out = BytesMut::new();
        encode::startup(&mut out, &[("user", "agent"), ("database", "patients")]);
        let packet = split_startup(&mut out).unwrap().unwrap();
        assert_eq!(
            packet,
            StartupPacket::Startup {
                minor_version: 0,
                params: vec![("user".into(), "agent".into()), ("database".into(), "patients".into())]
            }
        );
        let mut ssl = BytesMut::new();
        encode::ssl_request(&mut ssl);
        assert_eq!(split_startup(&mut ssl).unwrap(), Some(StartupPacket::SslRequest));
        let mut cancel = BytesMut::new();
        encode::cancel_request(&mut cancel, 7, 9);
        assert_eq!(split_startup(&mut cancel).unwrap(), Some(StartupPacket::Cancel { process_id: 7, secret_key: 9 }));
        for garbage in
            [&b"\x7f\xff\xff\xff"[..], b"\0\0\0\x08\0\x02\0\0", b"GET / HTTP/1.1\r\n\r\n", b"\0\0\0\x0a\0\x03\0\0us"]
        {
            assert!(split_startup(&mut BytesMut::from(garbage)).is_err(), "{garbage:?}");
        }
    }

    #[test]
    fn malformed_frontend_messages_are_errors_not_panics() {
        let bodies: &[(u8, &[u8])] = &[
            (b'Q', b"no terminator"),
            (b'P', b"stmt\0"),
            (b'B', b"\0\0\0"),
            (b'B', b"\0\0\0\x01\0\0\0\x01\xff\xff\xff\x00"),
            (b'B', b"\0\0\0\0\0\x01\0\0\x10\0ab"),
            (b'D', b"X\0"),
            (b'C', b""),
            (b'E', b"portal"),
            (b'?', b""),
        ];
        for (tag, body) in bodies {
            let mut raw = BytesMut::new();
            raw.put_u8(*tag);
            raw.put_u32(body.len() as u32 + 4);
            raw.put_slice(body);
            let frame = split_frame(&mut raw, 1 << 20).unwrap().unwrap();
            assert!(FrontendMessage::decode(&frame).is_err(), "{} {body:?}", *tag as char);
        }
    }

    #[test]
    fn bind_exposes_parameters() {
        let mut raw = BytesMut::new();
        raw.put_u8(b'B');
        let body: &[u8] = b"p1\0s1\0\0\0\0\x02\0\0\0\x0242\xff\xff\xff\xff\0\x02\0\x01\0\0";
        raw.put_u32(body.len() as u32 + 4);
        raw.put_slice(body);
        let frame = split_frame(&mut raw, 1 << 20).unwrap().unwrap();
        match FrontendMessage::decode(&frame).unwrap() {
            FrontendMessage::Bind { portal, statement, param_count, params, result_formats } => {
                assert_eq!((portal, statement, param_count), ("p1", "s1", 2));
                assert_eq!(params, &body[6..body.len() - 6], "result format codes are not parameters");
                assert_eq!(result_formats, [1, 0]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn error_fields_decode() {
        let mut out = BytesMut::new();
        encode::error_response(&mut out, Severity::Error, "42501", "no", Some("ask"));
        let frame = split_frame(&mut out, 1 << 20).unwrap().unwrap();
        match BackendMessage::decode(&frame).unwrap() {
            BackendMessage::Error(fields) => {
                assert_eq!((fields.severity, fields.code, fields.message), ("ERROR", "42501", "no"))
            }
            other => panic!("{other:?}"),
        }
    }
}
