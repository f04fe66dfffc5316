//! The receiver behind the `siem` test's HTTP sinks (Splunk HEC in
//! `hec.rs`, OTLP/HTTP logs in `otlp.rs`): a tiny HTTP/1.1 server on a
//! fixed 127.0.0.1 port, one request per connection, that answers 503
//! while set busy and can be stopped and started again on the same port.
//! It stops only between requests, so every answer it sends reaches Sluice.
//!
//! Owns: the server, reading requests, the busy phase and the record of
//! bad requests. What a request must look like and what taking one means
//! belong to each test's [`Handler`].

use super::{Gateway, bind_again, free_port};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A status (`"200 OK"`) and a JSON body to answer with.
pub(super) type Response = (&'static str, &'static str);

/// One request as read off the connection.
#[derive(Debug)]
pub(super) struct Request {
    pub(super) method: String,
    pub(super) path: String,
    pub(super) version: String,
    /// Every header line's name and value, trimmed.
    headers: Vec<(String, String)>,
    pub(super) body: String,
}

impl Request {
    /// `METHOD PATH VERSION`, exactly the request line sent when it had
    /// three parts.
    pub(super) fn line(&self) -> String {
        format!("{} {} {}", self.method, self.path, self.version)
    }

    /// The first header named `name` (any case).
    pub(super) fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// What one test's receiver expects and keeps.
pub(super) trait Handler: Send + 'static {
    /// The body of the 503 answered while busy.
    const BUSY: &'static str;

    /// Checks a request, busy or not, against what the sink configured as
    /// in the test sends: for one it would not send, the 4xx to answer and
    /// what is wrong with it (kept as bad requests).
    fn check(&self, request: &Request) -> Result<(), (Response, Vec<String>)>;

    /// Takes a checked request while not busy, noting in `bad` anything
    /// wrong with its body; returns the answer.
    fn take(&mut self, request: Request, bad: &mut Vec<String>) -> Response;

    /// Every event id taken, repeats included.
    fn ids(&self) -> Vec<String>;
}

/// The handler and what the receiver saw, shared with its thread.
struct Seen<H> {
    handler: H,
    /// Answer 503 to checked requests instead of taking them.
    busy: bool,
    refused_busy: usize,
    /// Anything the sink configured as in the test would not send.
    bad_requests: Vec<String>,
}

pub(super) struct HttpReceiver<H: Handler> {
    pub(super) port: u16,
    seen: Arc<Mutex<Seen<H>>>,
    running: Option<(Arc<AtomicBool>, JoinHandle<()>)>,
}

impl<H: Handler> HttpReceiver<H> {
    pub(super) fn start(handler: H) -> HttpReceiver<H> {
        let seen = Seen { handler, busy: false, refused_busy: 0, bad_requests: Vec::new() };
        let mut receiver = HttpReceiver { port: free_port(), seen: Arc::new(Mutex::new(seen)), running: None };
        receiver.spawn();
        receiver
    }

    /// Listens (again, after `stop`) on the receiver's port.
    pub(super) fn spawn(&mut self) {
        let listener = bind_again(self.port);
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let (seen, halt) = (self.seen.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !halt.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => serve(stream, &seen),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err(e) => panic!("accept: {e}"),
                }
            }
        });
        self.running = Some((stop, thread));
    }

    /// Stops listening, after the request in hand if any.
    pub(super) fn stop(&mut self) {
        let (stop, thread) = self.running.take().unwrap();
        stop.store(true, Ordering::SeqCst);
        thread.join().unwrap();
    }

    pub(super) fn set_busy(&self, busy: bool) {
        self.seen.lock().unwrap().busy = busy;
    }

    /// The handler, to read what it took; held, it holds up requests.
    pub(super) fn handler(&self) -> impl Deref<Target = H> + '_ {
        Held(self.seen.lock().unwrap())
    }

    pub(super) fn ids(&self) -> Vec<String> {
        self.handler().ids()
    }

    pub(super) fn bad_requests(&self) -> Vec<String> {
        self.seen.lock().unwrap().bad_requests.clone()
    }

    /// While busy, waits until Sluice's attempts have been refused twice
    /// and checks nothing was taken; then stops being busy and waits for
    /// record 4 to arrive.
    pub(super) fn wait_out_503s(&self, gateway: &Gateway) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.seen.lock().unwrap().refused_busy < 2 {
            assert!(Instant::now() < deadline, "no retries against a busy receiver:\n{}", gateway.sluice.log());
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(self.ids().is_empty());
        self.set_busy(false);
        gateway.wait_for_delivery("the receiver after its 503s", || self.ids());
    }
}

impl<H: Handler> Drop for HttpReceiver<H> {
    fn drop(&mut self) {
        if let Some((stop, _)) = &self.running {
            stop.store(true, Ordering::SeqCst);
        }
    }
}

/// The locked handler.
struct Held<'a, H>(MutexGuard<'a, Seen<H>>);

impl<H> Deref for Held<'_, H> {
    type Target = H;

    fn deref(&self) -> &H {
        &self.0.handler
    }
}

/// Reads one request; `None` when the connection ends or stalls first.
fn read_request(stream: &mut TcpStream) -> Option<Request> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.lines();
    let mut request_line = lines.next().unwrap_or_default().splitn(3, ' ').map(str::to_string);
    let mut part = || request_line.next().unwrap_or_default();
    let (method, path, version) = (part(), part(), part());
    let headers: Vec<(String, String)> =
        lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_string(), v.trim().to_string())).collect();
    let mut request = Request { method, path, version, headers, body: String::new() };
    let length: usize = request.header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    while buf.len() < head_end + length {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    request.body = String::from_utf8_lossy(&buf[head_end..head_end + length]).to_string();
    Some(request)
}

fn serve<H: Handler>(mut stream: TcpStream, seen: &Mutex<Seen<H>>) {
    stream.set_nonblocking(false).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let Some(request) = read_request(&mut stream) else { return };
    let (status, answer) = {
        let mut guard = seen.lock().unwrap();
        let seen = &mut *guard;
        match seen.handler.check(&request) {
            Err((refusal, wrong)) => {
                seen.bad_requests.extend(wrong);
                refusal
            }
            Ok(()) if seen.busy => {
                seen.refused_busy += 1;
                ("503 Service Unavailable", H::BUSY)
            }
            Ok(()) => seen.handler.take(request, &mut seen.bad_requests),
        }
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
        answer.len()
    );
    let _ = stream.write_all(response.as_bytes());
}
