//! SIEM forwarding end to end, against real sinks the test starts: rsyslogd
//! (RFC 5424 over octet-counted TCP and over UDP), the machine's NATS
//! JetStream (through a TCP proxy the test can cut), and an HTTP receiver
//! speaking Splunk HEC. Each sink is stopped mid-run and started again, and
//! must end with every audit record (and a signed checkpoint) at least
//! once, repeats recognisable by event id.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use support::{ScratchDb, Sluice, api_key, config, psql, unique};

const BOM: char = '\u{feff}';

/// A Sluice with one sink (`sink` is its TOML), a signing key so
/// checkpoints are signed every second, and a scratch database.
struct Gateway {
    _db: ScratchDb,
    key: String,
    sluice: Sluice,
    _keys: tempfile::TempDir,
}

impl Gateway {
    fn start(sink: &str, envs: &[(&str, &str)]) -> Gateway {
        let db = ScratchDb::create("sluice_siem");
        let (key, hash) = api_key();
        let keys = tempfile::tempdir().unwrap();
        let key_file = keys.path().join("checkpoint.key");
        let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(["keys", "generate", "--name", "siem-test", "--out"])
            .arg(&key_file)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let extra =
            format!("[audit]\nsigning_key_file = \"{}\"\ncheckpoint_interval = \"1s\"\n{sink}", key_file.display());
        let sluice = Sluice::start_with_env(&config(&hash, "clinic", &db.name, "sqlite://data/audit.db", &extra), envs);
        Gateway { _db: db, key, sluice, _keys: keys }
    }

    /// One psql session per statement: session open, request, outcome and
    /// session close records each.
    fn run(&self, tag: &str, count: usize) {
        for i in 0..count {
            let (ok, out, err) =
                psql(&self.sluice.dsn("clinic", &self.key), &format!("select {i} as n, 'marker-{tag}-{i}' as m"));
            assert!(ok, "{err}");
            assert!(out.contains(&format!("marker-{tag}-{i}")), "{out}");
        }
    }

    /// How often the sink has failed so far.
    fn failures(&self) -> usize {
        self.sluice.log().matches("SIEM sink failed; retrying").count()
    }

    /// Waits until the sink has failed more than `before` times: it noticed
    /// it is down.
    fn wait_for_failure(&self, before: usize) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.failures() <= before {
            assert!(Instant::now() < deadline, "the sink never noticed it was down:\n{}", self.sluice.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops Sluice cleanly and reads the sink's durable cursor:
    /// (seq, checkpoint_size), and the last seq in the log.
    fn stop_and_read_cursor(mut self, sink: &str) -> ((u64, u64), u64) {
        let status = self.sluice.terminate();
        assert!(status.success(), "{}", self.sluice.log());
        let last = *self.seqs().last().unwrap();
        let out = Command::new("python3")
            .args([
                "-c",
                "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); \
                 print(*c.execute('select seq, checkpoint_size from siem_cursors where sink=?', (sys.argv[2],)).fetchone())",
            ])
            .arg(self.sluice.dir.path().join("data/audit.db"))
            .arg(sink)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8_lossy(&out.stdout);
        let mut numbers = text.split_whitespace().map(|n| n.parse::<u64>().unwrap());
        ((numbers.next().unwrap(), numbers.next().unwrap()), last)
    }

    /// Every seq in the audit log.
    fn seqs(&self) -> BTreeSet<u64> {
        let out = self.sluice.cli(&["audit", "search", "--json"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"].as_u64().unwrap())
            .collect()
    }

    /// Waits until `received` (event ids, repeats allowed) holds every
    /// record in the log and at least one checkpoint; returns how often
    /// each id arrived.
    fn wait_for_everything(&self, sink: &str, received: impl Fn() -> Vec<String>) -> BTreeMap<String, usize> {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let mut counts = BTreeMap::new();
            for id in received() {
                *counts.entry(id).or_insert(0) += 1;
            }
            let seqs = self.seqs();
            let missing: Vec<u64> =
                seqs.iter().copied().filter(|s| !counts.contains_key(&format!("sluice/{s}"))).collect();
            let checkpoints = counts.keys().filter(|id| id.starts_with("sluice/checkpoint/")).count();
            if missing.is_empty() && checkpoints > 0 {
                let log = self.sluice.log();
                assert!(log.contains("SIEM sink failed; retrying"), "{sink} was never seen down:\n{log}");
                assert!(log.contains("SIEM sink delivering again"), "{sink} never recovered:\n{log}");
                for line in log.lines().filter(|l| l.contains("SIEM sink")) {
                    eprintln!("{sink}: {line}");
                }
                for id in counts.keys() {
                    let known = id
                        .strip_prefix("sluice/checkpoint/")
                        .or_else(|| id.strip_prefix("sluice/"))
                        .and_then(|n| n.parse::<u64>().ok())
                        .is_some_and(|n| n >= 1 && n <= *seqs.last().unwrap());
                    assert!(known, "{sink}: an event id that names no record or checkpoint: {id}");
                }
                return counts;
            }
            assert!(
                Instant::now() < deadline,
                "{sink}: records never delivered: {missing:?} (checkpoints: {checkpoints})\n{}",
                self.sluice.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// A port free for TCP and UDP on 127.0.0.1, below the kernel's ephemeral
/// range, so no outgoing connection takes it while a sink is stopped and
/// it is bound again.
fn free_port() -> u16 {
    loop {
        let port = 20_000 + rand::random::<u16>() % 12_000;
        let tcp = TcpListener::bind(("127.0.0.1", port));
        let udp = std::net::UdpSocket::bind(("127.0.0.1", port));
        if tcp.is_ok() && udp.is_ok() {
            return port;
        }
    }
}

/// Listens on `port` again after a stop: the cut connections may hold the
/// port for a moment.
fn bind_again(port: u16) -> TcpListener {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match TcpListener::bind(("127.0.0.1", port)) {
            Ok(listener) => return listener,
            Err(e) if Instant::now() < deadline => {
                eprintln!("port {port} busy ({e}); retrying");
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!("port {port} stayed busy: {e}"),
        }
    }
}

fn wait_for_listener(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what} is not listening on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------- rsyslog

/// rsyslogd with a private config: imtcp and imudp on one port of
/// 127.0.0.1, every raw message appended to `messages.log`.
struct Rsyslog {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

impl Rsyslog {
    fn start() -> Rsyslog {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let d = dir.path().display();
        let conf = format!(
            "global(workDirectory=\"{d}\" maxMessageSize=\"256k\")\n\
             module(load=\"imtcp\")\nmodule(load=\"imudp\")\n\
             input(type=\"imtcp\" address=\"127.0.0.1\" port=\"{port}\")\n\
             input(type=\"imudp\" address=\"127.0.0.1\" port=\"{port}\")\n\
             template(name=\"raw\" type=\"string\" string=\"%rawmsg%\\n\")\n\
             action(type=\"omfile\" file=\"{d}/messages.log\" template=\"raw\")\n"
        );
        std::fs::write(dir.path().join("rsyslog.conf"), conf).unwrap();
        let mut rsyslog = Rsyslog { dir, port, child: None };
        rsyslog.spawn();
        rsyslog
    }

    fn spawn(&mut self) {
        let dir = self.dir.path();
        let child = Command::new("rsyslogd")
            .arg("-n")
            .arg("-f")
            .arg(dir.join("rsyslog.conf"))
            .arg("-i")
            .arg(dir.join("rsyslogd.pid"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("rsyslogd.err")).unwrap())
            .spawn()
            .expect("rsyslogd starts (apt install rsyslog)");
        self.child = Some(child);
        wait_for_listener(self.port, "rsyslogd");
    }

    /// SIGTERM: rsyslogd writes out what it took and exits.
    fn stop(&mut self) {
        let mut child = self.child.take().unwrap();
        Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
        child.wait().unwrap();
    }

    fn lines(&self) -> Vec<String> {
        let text = std::fs::read_to_string(self.dir.path().join("messages.log")).unwrap_or_default();
        text.lines().map(str::to_string).collect()
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// One RFC 5424 message, split into its parts.
#[derive(Debug)]
struct Syslog5424 {
    pri: u8,
    timestamp: String,
    hostname: String,
    app_name: String,
    msgid: String,
    sd_id: String,
    params: BTreeMap<String, String>,
    msg: serde_json::Value,
}

/// Parses `<PRI>1 TIMESTAMP HOST APP PROCID MSGID [SD-ID name="value"...] BOM MSG`,
/// undoing the `\"`, `\\` and `\]` escapes of SD-PARAM values.
fn parse_5424(line: &str) -> Syslog5424 {
    let rest = line.strip_prefix('<').unwrap_or_else(|| panic!("no PRI: {line}"));
    let (pri, rest) = rest.split_once('>').unwrap();
    let pri: u8 = pri.parse().unwrap();
    assert!(pri <= 191, "{line}");
    let rest = rest.strip_prefix("1 ").unwrap_or_else(|| panic!("not version 1: {line}"));
    let fields: Vec<&str> = rest.splitn(6, ' ').collect();
    assert_eq!(fields.len(), 6, "{line}");
    let (timestamp, hostname, app_name, _procid, msgid, rest) =
        (fields[0], fields[1], fields[2], fields[3], fields[4], fields[5]);
    let mut chars = rest.chars().peekable();
    assert_eq!(chars.next(), Some('['), "no structured data: {line}");
    let mut sd_id = String::new();
    while let Some(&c) = chars.peek() {
        if c == ' ' || c == ']' {
            break;
        }
        sd_id.push(c);
        chars.next();
    }
    let mut params = BTreeMap::new();
    loop {
        match chars.next() {
            Some(']') => break,
            Some(' ') => {}
            other => panic!("bad SD at {other:?}: {line}"),
        }
        let name: String = chars.by_ref().take_while(|&c| c != '=').collect();
        assert_eq!(chars.next(), Some('"'), "{line}");
        let mut value = String::new();
        loop {
            match chars.next().unwrap() {
                '\\' => value.push(chars.next().unwrap()),
                '"' => break,
                ']' => panic!("unescaped ] in a param value: {line}"),
                c => value.push(c),
            }
        }
        params.insert(name, value);
    }
    assert_eq!(chars.next(), Some(' '), "{line}");
    assert_eq!(chars.next(), Some(BOM), "MSG does not start with a BOM: {line}");
    let msg: String = chars.collect();
    let msg = serde_json::from_str(&msg).unwrap_or_else(|e| panic!("MSG is not JSON ({e}): {line}"));
    Syslog5424 {
        pri,
        timestamp: timestamp.into(),
        hostname: hostname.into(),
        app_name: app_name.into(),
        msgid: msgid.into(),
        sd_id,
        params,
        msg,
    }
}

#[test]
fn rsyslog_over_tcp_gets_every_record_in_rfc5424_across_a_restart() {
    syslog_round_trip("tcp");
}

#[test]
fn rsyslog_over_udp_gets_every_record_across_a_restart() {
    syslog_round_trip("udp");
}

fn syslog_round_trip(transport: &str) {
    let mut rsyslog = Rsyslog::start();
    let sink = format!(
        "[[siem.sinks]]\nname = \"rsyslog\"\nkind = \"syslog\"\naddress = \"127.0.0.1:{}\"\ntransport = \"{transport}\"\nbatch = 5\n",
        rsyslog.port
    );
    let gateway = Gateway::start(&sink, &[]);
    gateway.run("before", 3);
    let ids = |rsyslog: &Rsyslog| -> Vec<String> {
        rsyslog.lines().iter().map(|l| parse_5424(l).params["event_id"].clone()).collect()
    };
    // Delivered while rsyslogd runs.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ids(&rsyslog).contains(&"sluice/4".to_string()) {
        assert!(Instant::now() < deadline, "nothing reached rsyslogd:\n{}", gateway.sluice.log());
        std::thread::sleep(Duration::from_millis(100));
    }

    // Down mid-run: statements go on, the sink retries.
    let before = gateway.failures();
    rsyslog.stop();
    gateway.run("while-down", 3);
    gateway.wait_for_failure(before);
    let down_seqs = gateway.seqs();
    rsyslog.spawn();
    gateway.run("after", 2);

    let counts = gateway.wait_for_everything("rsyslog", || ids(&rsyslog));
    assert!(down_seqs.iter().all(|s| counts.contains_key(&format!("sluice/{s}"))));

    // Every line is well-formed RFC 5424 and agrees with its JSON.
    let mut statements = 0;
    for line in rsyslog.lines() {
        let message = parse_5424(&line);
        assert_eq!(message.sd_id, "sluice@32473", "{line}");
        assert_eq!(message.app_name, "sluice", "{line}");
        assert!(!message.hostname.is_empty(), "{line}");
        assert_eq!(message.pri / 8, 13, "facility log audit: {line}");
        assert_eq!(message.params["event_id"], message.msg["event_id"].as_str().unwrap(), "{line}");
        assert_eq!(message.msgid, message.msg["type"].as_str().unwrap(), "{line}");
        assert_eq!(message.timestamp, message.msg["time"].as_str().unwrap(), "{line}");
        assert_eq!(message.params["record"], message.msg["record"].to_string(), "{line}");
        if message.msg["type"] == "request" {
            assert_eq!(message.params["principal"], "test-agent", "{line}");
            assert_eq!(message.params["connection"], "clinic", "{line}");
            assert_eq!(message.params["verdict"], "allow", "{line}");
            assert!(message.msg["statement"].as_str().unwrap().contains("marker-"), "statement = full: {line}");
            statements += 1;
        }
        if message.msg["type"] == "outcome" {
            assert_eq!(message.params["status"], "ok", "{line}");
            assert_eq!(message.msg["outcome"]["rows"], 1, "{line}");
        }
        if message.msg["type"] == "checkpoint" {
            let note = message.msg["checkpoint"]["note"].as_str().unwrap();
            assert!(note.starts_with("sluice/"), "a C2SP note: {note}");
            assert!(note.contains("\n\n\u{2014} "), "the note is signed: {note}");
        }
    }
    assert!(statements >= 8, "{statements} request records");
    let repeats: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    eprintln!("rsyslog over {transport}: {} events, repeated: {repeats:?}", counts.len());
}

// ---------------------------------------------------------------- HEC

/// What the HEC receiver saw.
#[derive(Debug, Default)]
struct HecState {
    /// Answer 503 instead of taking the batch.
    busy: bool,
    /// Every accepted HEC event, one JSON object each.
    events: Vec<serde_json::Value>,
    refused_busy: usize,
    bad_requests: Vec<String>,
}

/// A tiny HTTP/1.1 server on a fixed 127.0.0.1 port, one request per
/// connection, that can be stopped and started again on the same port.
struct HecReceiver {
    port: u16,
    token: String,
    state: Arc<Mutex<HecState>>,
    running: Option<(Arc<AtomicBool>, JoinHandle<()>)>,
}

impl HecReceiver {
    fn start(token: &str) -> HecReceiver {
        let mut receiver = HecReceiver { port: free_port(), token: token.into(), state: Arc::default(), running: None };
        receiver.spawn();
        receiver
    }

    fn spawn(&mut self) {
        let listener = bind_again(self.port);
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let (state, token, halt) = (self.state.clone(), self.token.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !halt.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => serve_hec(stream, &token, &state),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err(e) => panic!("accept: {e}"),
                }
            }
        });
        self.running = Some((stop, thread));
    }

    fn stop(&mut self) {
        let (stop, thread) = self.running.take().unwrap();
        stop.store(true, Ordering::SeqCst);
        thread.join().unwrap();
    }

    fn ids(&self) -> Vec<String> {
        let state = self.state.lock().unwrap();
        state.events.iter().map(|e| e["event"]["event_id"].as_str().unwrap().to_string()).collect()
    }
}

impl Drop for HecReceiver {
    fn drop(&mut self) {
        if let Some((stop, _)) = &self.running {
            stop.store(true, Ordering::SeqCst);
        }
    }
}

fn serve_hec(mut stream: TcpStream, token: &str, state: &Mutex<HecState>) {
    stream.set_nonblocking(false).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let header = |name: &str| {
        head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    };
    let length: usize = header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    while buf.len() < head_end + length {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let body = String::from_utf8_lossy(&buf[head_end..head_end + length]).to_string();
    let request_line = head.lines().next().unwrap_or_default().to_string();
    let mut state = state.lock().unwrap();
    let (status, answer) = if request_line != "POST /services/collector/event HTTP/1.1" {
        state.bad_requests.push(request_line);
        ("404 Not Found", r#"{"text":"Not found","code":404}"#)
    } else if header("authorization").as_deref() != Some(&format!("Splunk {token}")) {
        state.bad_requests.push(format!("authorization: {:?}", header("authorization")));
        ("401 Unauthorized", r#"{"text":"Invalid token","code":4}"#)
    } else if state.busy {
        state.refused_busy += 1;
        ("503 Service Unavailable", r#"{"text":"Server is busy","code":9}"#)
    } else {
        for line in body.lines().filter(|l| !l.trim().is_empty()) {
            match serde_json::from_str::<serde_json::Value>(line) {
                Ok(event) => state.events.push(event),
                Err(e) => state.bad_requests.push(format!("not JSON ({e}): {line}")),
            }
        }
        ("200 OK", r#"{"text":"Success","code":0}"#)
    };
    drop(state);
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
        answer.len()
    );
    let _ = stream.write_all(response.as_bytes());
}

#[test]
fn hec_receiver_gets_every_record_through_503s_and_a_restart() {
    let token = format!("hec-{}", unique("token"));
    let mut hec = HecReceiver::start(&token);
    hec.state.lock().unwrap().busy = true;
    let sink = format!(
        "[[siem.sinks]]\nname = \"splunk\"\nkind = \"hec\"\nurl = \"http://127.0.0.1:{}\"\ntoken_env = \"SIEM_TEST_HEC_TOKEN\"\nstatement = \"fingerprint\"\nbatch = 7\n",
        hec.port
    );
    let gateway = Gateway::start(&sink, &[("SIEM_TEST_HEC_TOKEN", &token)]);
    gateway.run("busy", 2);
    // Busy: every attempt is refused, nothing is taken.
    let deadline = Instant::now() + Duration::from_secs(30);
    while hec.state.lock().unwrap().refused_busy < 2 {
        assert!(Instant::now() < deadline, "no retries against a busy receiver:\n{}", gateway.sluice.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(hec.ids().is_empty());
    hec.state.lock().unwrap().busy = false;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !hec.ids().contains(&"sluice/4".to_string()) {
        assert!(Instant::now() < deadline, "nothing delivered after the 503s:\n{}", gateway.sluice.log());
        std::thread::sleep(Duration::from_millis(50));
    }

    // Stopped mid-run, then back on the same port.
    let before = gateway.failures();
    hec.stop();
    gateway.run("while-down", 3);
    gateway.wait_for_failure(before);
    hec.spawn();
    gateway.run("after", 2);
    let counts = gateway.wait_for_everything("hec", || hec.ids());

    let state = hec.state.lock().unwrap();
    assert!(state.bad_requests.is_empty(), "{:?}", state.bad_requests);
    let mut requests = 0;
    for event in &state.events {
        assert_eq!(event["sourcetype"], "sluice", "{event}");
        assert_eq!(event["source"], "sluice", "{event}");
        assert!(event["time"].as_f64().unwrap() > 1.7e9, "{event}");
        let inner = &event["event"];
        assert!(inner["time"].is_string() && inner["type"].is_string() && inner["record"].is_u64(), "{event}");
        if inner["type"] == "request" {
            requests += 1;
            // statement = "fingerprint": the text (with its constants) stays home.
            assert!(inner.get("statement").is_none(), "{event}");
            assert!(!inner.to_string().contains("marker-"), "{event}");
            assert!(inner["fingerprint"].as_str().is_some_and(|f| !f.is_empty()), "{event}");
            assert_eq!(inner["principal"], "test-agent");
            assert_eq!(inner["decision"]["verdict"], "allow");
        }
        if inner["type"] == "checkpoint" {
            assert!(inner["checkpoint"]["note"].as_str().unwrap().starts_with("sluice/"), "{event}");
        }
    }
    assert!(requests >= 7, "{requests} request events");
    let repeats: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    eprintln!("hec: {} events, repeated: {repeats:?}", counts.len());
    drop(state);

    // A clean stop flushes the log, then lets the sink send the rest: its
    // cursor ends at the last record, past a checkpoint.
    let ((seq, checkpoint_size), last) = gateway.stop_and_read_cursor("splunk");
    assert_eq!(seq, last, "the cursor ends at the last record");
    assert!(checkpoint_size > 0 && checkpoint_size <= last, "{checkpoint_size}");
    assert!(hec.ids().contains(&format!("sluice/{last}")));
}

// ---------------------------------------------------------------- NATS

const NATS: &str = "127.0.0.1:4222";

/// A TCP proxy in front of the shared nats-server, so the test can take
/// "the NATS server" away without stopping it.
struct Proxy {
    port: u16,
    running: Option<ProxyRun>,
}

/// A running proxy: its stop flag, its accept thread, and every proxied
/// connection (both sides), to cut them at stop.
type ProxyRun = (Arc<AtomicBool>, JoinHandle<()>, Arc<Mutex<Vec<TcpStream>>>);

impl Proxy {
    fn start() -> Proxy {
        let mut proxy = Proxy { port: free_port(), running: None };
        proxy.spawn();
        proxy
    }

    fn spawn(&mut self) {
        let listener = bind_again(self.port);
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (halt, open) = (stop.clone(), conns.clone());
        let thread = std::thread::spawn(move || {
            while !halt.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        client.set_nonblocking(false).unwrap();
                        let Ok(server) = TcpStream::connect(NATS) else { continue };
                        let mut open = open.lock().unwrap();
                        open.push(client.try_clone().unwrap());
                        open.push(server.try_clone().unwrap());
                        for (mut from, mut to) in
                            [(client.try_clone().unwrap(), server.try_clone().unwrap()), (server, client)]
                        {
                            std::thread::spawn(move || {
                                let _ = std::io::copy(&mut from, &mut to);
                                let _ = to.shutdown(std::net::Shutdown::Both);
                            });
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err(e) => panic!("accept: {e}"),
                }
            }
        });
        self.running = Some((stop, thread, conns));
    }

    /// Stops listening and cuts every proxied connection.
    fn stop(&mut self) {
        let (stop, thread, conns) = self.running.take().unwrap();
        stop.store(true, Ordering::SeqCst);
        thread.join().unwrap();
        for conn in conns.lock().unwrap().drain(..) {
            let _ = conn.shutdown(std::net::Shutdown::Both);
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if self.running.is_some() {
            self.stop();
        }
    }
}

/// A stream's messages: (subject, Nats-Msg-Id, payload).
fn stream_messages(runtime: &tokio::runtime::Runtime, stream: &str) -> Vec<(String, String, serde_json::Value)> {
    runtime.block_on(async {
        let client = async_nats::connect(NATS).await.expect("nats-server runs on 127.0.0.1:4222");
        let js = async_nats::jetstream::new(client);
        let Ok(mut stream) = js.get_stream(stream).await else { return Vec::new() };
        let state = stream.info().await.unwrap().state.clone();
        let mut out = Vec::new();
        if state.messages == 0 {
            return out;
        }
        for seq in state.first_sequence..=state.last_sequence {
            let message = stream.get_raw_message(seq).await.unwrap();
            let id = message.headers.get("Nats-Msg-Id").map(|v| v.as_str().to_string()).unwrap_or_default();
            out.push((message.subject.to_string(), id, serde_json::from_slice(&message.payload).unwrap()));
        }
        out
    })
}

#[test]
fn nats_jetstream_holds_every_record_once_across_a_cut_connection() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let name = unique("SLUICE_SIEM").to_uppercase();
    let prefix = format!("sluicetest.{}", name.to_lowercase());
    let mut proxy = Proxy::start();
    let sink = format!(
        "[[siem.sinks]]\nname = \"bus\"\nkind = \"nats\"\nurl = \"nats://127.0.0.1:{}\"\nstream = \"{name}\"\nsubject_prefix = \"{prefix}\"\nbatch = 6\n",
        proxy.port
    );
    struct DeleteStream<'a>(&'a tokio::runtime::Runtime, String);
    impl Drop for DeleteStream<'_> {
        fn drop(&mut self) {
            self.0.block_on(async {
                if let Ok(client) = async_nats::connect(NATS).await {
                    let _ = async_nats::jetstream::new(client).delete_stream(&self.1).await;
                }
            });
        }
    }
    let _cleanup = DeleteStream(&runtime, name.clone());

    let gateway = Gateway::start(&sink, &[]);
    gateway.run("before", 3);
    let ids = || stream_messages(&runtime, &name).into_iter().map(|(_, id, _)| id).collect::<Vec<_>>();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ids().contains(&"sluice/4".to_string()) {
        assert!(Instant::now() < deadline, "nothing reached the stream:\n{}", gateway.sluice.log());
        std::thread::sleep(Duration::from_millis(100));
    }

    let before = gateway.failures();
    proxy.stop();
    gateway.run("while-down", 3);
    gateway.wait_for_failure(before);
    proxy.spawn();
    gateway.run("after", 2);
    let counts = gateway.wait_for_everything("nats", ids);

    // JetStream dropped any repeat by Nats-Msg-Id: each id once.
    let repeats: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(repeats.is_empty(), "{repeats:?}");
    for (subject, id, event) in stream_messages(&runtime, &name) {
        assert_eq!(event["event_id"], id.as_str());
        assert_eq!(subject, format!("{prefix}.{}", event["type"].as_str().unwrap()));
        if event["type"] == "request" {
            assert!(event["statement"].as_str().unwrap().contains("marker-"), "{event}");
            assert_eq!(event["connection"], "clinic");
        }
    }
}
