//! A raw PostgreSQL wire client for tests that must send exactly the bytes
//! no well-behaved driver would: garbage, huge length prefixes, and
//! hand-built extended-protocol batches.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

pub struct RawClient {
    pub stream: TcpStream,
}

pub fn message(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    out.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// A protocol 3.0 StartupMessage for user `agent` and `database`.
pub fn startup(database: &str) -> Vec<u8> {
    let mut body = 196_608u32.to_be_bytes().to_vec();
    for part in ["user", "agent", "database", database, ""] {
        body.extend(cstr(part));
    }
    let mut packet = ((body.len() + 4) as u32).to_be_bytes().to_vec();
    packet.extend(body);
    packet
}

pub fn cstr(text: &str) -> Vec<u8> {
    let mut out = text.as_bytes().to_vec();
    out.push(0);
    out
}

impl RawClient {
    pub fn connect(port: u16) -> RawClient {
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        RawClient { stream }
    }

    /// Starts up and authenticates with `token`; panics unless it reaches ReadyForQuery.
    pub fn login(port: u16, database: &str, token: &str) -> RawClient {
        let mut client = RawClient::connect(port);
        client.send(&startup(database));
        let (tag, body) = client.read_message().expect("auth request");
        assert_eq!((tag, &body[..]), (b'R', &3i32.to_be_bytes()[..]), "expected a cleartext password request");
        client.send(&message(b'p', &cstr(token)));
        let messages = client.read_until_ready();
        assert!(messages.iter().any(|(t, _)| *t == b'K'), "no BackendKeyData");
        client
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// One message, or `None` at a clean end of stream.
    pub fn read_message(&mut self) -> Option<(u8, Vec<u8>)> {
        let mut head = [0u8; 5];
        match self.stream.read_exact(&mut head) {
            Ok(()) => {}
            Err(e)
                if e.kind() == std::io::ErrorKind::UnexpectedEof || e.kind() == std::io::ErrorKind::ConnectionReset =>
            {
                return None;
            }
            Err(e) => panic!("read failed: {e}"),
        }
        let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        let mut body = vec![0u8; len - 4];
        self.stream.read_exact(&mut body).unwrap();
        Some((head[0], body))
    }

    pub fn read_until_ready(&mut self) -> Vec<(u8, Vec<u8>)> {
        let mut messages = Vec::new();
        loop {
            let message = self.read_message().expect("connection closed before ReadyForQuery");
            let done = message.0 == b'Z';
            messages.push(message);
            if done {
                return messages;
            }
        }
    }

    /// Everything until the server closes the connection.
    pub fn read_to_end(&mut self) -> Vec<(u8, Vec<u8>)> {
        let mut messages = Vec::new();
        while let Some(message) = self.read_message() {
            messages.push(message);
        }
        messages
    }
}

/// The SQLSTATE of an ErrorResponse body.
pub fn sqlstate(body: &[u8]) -> String {
    field(body, b'C')
}

pub fn error_message(body: &[u8]) -> String {
    field(body, b'M')
}

fn field(body: &[u8], kind: u8) -> String {
    let mut rest = body;
    while let Some((&k, tail)) = rest.split_first() {
        if k == 0 {
            break;
        }
        let end = tail.iter().position(|b| *b == 0).unwrap();
        if k == kind {
            return String::from_utf8_lossy(&tail[..end]).into_owned();
        }
        rest = &tail[end + 1..];
    }
    String::new()
}

pub fn parse(name: &str, sql: &str) -> Vec<u8> {
    let mut body = cstr(name);
    body.extend(cstr(sql));
    body.extend(0u16.to_be_bytes());
    message(b'P', &body)
}

pub fn bind(portal: &str, statement: &str) -> Vec<u8> {
    let mut body = cstr(portal);
    body.extend(cstr(statement));
    body.extend([0, 0, 0, 0, 0, 0]);
    message(b'B', &body)
}

pub fn execute(portal: &str) -> Vec<u8> {
    execute_rows(portal, 0)
}

/// An Execute that returns at most `max_rows` rows (0: all), then
/// PortalSuspended.
pub fn execute_rows(portal: &str, max_rows: u32) -> Vec<u8> {
    let mut body = cstr(portal);
    body.extend(max_rows.to_be_bytes());
    message(b'E', &body)
}

pub fn sync() -> Vec<u8> {
    message(b'S', &[])
}

pub fn query(sql: &str) -> Vec<u8> {
    message(b'Q', &cstr(sql))
}

/// Starts up with `token` and returns the FATAL ErrorResponse's (SQLSTATE,
/// message); panics if the login succeeds.
pub fn login_error(port: u16, database: &str, token: &str) -> (String, String) {
    let mut client = RawClient::connect(port);
    client.send(&startup(database));
    client.read_message().expect("an authentication request");
    client.send(&message(b'p', &cstr(token)));
    let messages = client.read_to_end();
    let (tag, body) = messages.last().expect("an answer before the close");
    assert_eq!(*tag, b'E', "login succeeded: {messages:?}");
    (sqlstate(body), error_message(body))
}
