//! SIEM forwarding end to end, against real sinks the test starts: rsyslogd
//! (RFC 5424 over octet-counted TCP, over TLS through rsyslog's GnuTLS
//! stream driver, and over UDP), the machine's NATS
//! JetStream (through a TCP proxy the test can cut), an HTTP receiver
//! speaking Splunk HEC, and one speaking OTLP/HTTP logs (`siem/otlp.rs`,
//! whose requests `opentelemetry-proto` must parse). Each sink is stopped
//! mid-run and started again, and must end with every audit record (and a
//! signed checkpoint) at least once, repeats recognisable by event id.
//!
//! Owns: the gateway under test and the port helpers every sink shares;
//! each sink's tests live in `siem/` (`syslog.rs`, `nats.rs`, `hec.rs`,
//! `otlp.rs`, the last two on `http_receiver.rs`).

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};
use support::{ScratchDb, Sluice, api_key, config, psql};

#[path = "siem/hec.rs"]
mod hec;
#[path = "siem/http_receiver.rs"]
mod http_receiver;
#[path = "siem/nats.rs"]
mod nats;
#[path = "siem/otlp.rs"]
mod otlp;
#[path = "siem/syslog.rs"]
mod syslog;

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

    /// Stops Sluice cleanly, which flushes the log and then lets the sink
    /// send the rest: its durable cursor must end at the last record, past
    /// a checkpoint, and `received` (event ids) must hold that record.
    fn stop_with_everything_sent(mut self, sink: &str, received: impl Fn() -> Vec<String>) {
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
        let (seq, checkpoint_size) = (numbers.next().unwrap(), numbers.next().unwrap());
        assert_eq!(seq, last, "the cursor ends at the last record");
        assert!(checkpoint_size > 0 && checkpoint_size <= last, "{checkpoint_size}");
        assert!(received().contains(&format!("sluice/{last}")));
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

    /// Waits until `received` (event ids) holds record 4: the sink is
    /// delivering (`what` says to where, for the failure message).
    fn wait_for_delivery(&self, what: &str, received: impl Fn() -> Vec<String>) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !received().iter().any(|id| id == "sluice/4") {
            assert!(Instant::now() < deadline, "nothing reached {what}:\n{}", self.sluice.log());
            std::thread::sleep(Duration::from_millis(50));
        }
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

/// `sluice check` sets every sink up as `serve` would, without contacting
/// it: a token variable that is not set, or a CA file that is not there,
/// fails its line by name; the others are ok.
#[test]
fn check_names_the_sink_whose_token_or_ca_file_is_missing() {
    let db = ScratchDb::create("sluice_siem_check");
    let (_, hash) = api_key();
    let dir = tempfile::tempdir().unwrap();
    let missing_ca = dir.path().join("no-such-ca.pem");
    let sinks = format!(
        "[[siem.sinks]]\nname = \"splunk\"\nkind = \"hec\"\nurl = \"http://127.0.0.1:9/services/collector\"\n\
         token_env = \"SLUICE_TEST_UNSET_HEC_TOKEN\"\n\
         [[siem.sinks]]\nname = \"rsyslog\"\nkind = \"syslog\"\naddress = \"127.0.0.1:9\"\ntransport = \"tls\"\n\
         ca_file = \"{}\"\n\
         [[siem.sinks]]\nname = \"collector\"\nkind = \"otlp\"\nurl = \"http://127.0.0.1:9/v1/logs\"\n\
         headers_env = {{ Authorization = \"SLUICE_TEST_OTLP_AUTH\" }}\n\
         [[siem.sinks]]\nname = \"jetstream\"\nkind = \"nats\"\nurl = \"nats://127.0.0.1:9\"\nstream = \"AUDIT\"\n\
         subject_prefix = \"sluice.audit\"\n",
        missing_ca.display()
    );
    let config_path = dir.path().join("sluice.toml");
    std::fs::write(&config_path, config(&hash, "clinic", &db.name, "sqlite://data/audit.db", &sinks)).unwrap();
    let out = support::sluice_cli_with_env(&["check"], &config_path, &[("SLUICE_TEST_OTLP_AUTH", "Bearer t0k3n")]);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(!out.status.success(), "{stdout}");
    let fails: Vec<&str> = stdout.lines().filter(|l| l.contains("FAIL")).collect();
    assert_eq!(fails.len(), 2, "{stdout}");
    assert!(
        fails[0].contains("SIEM sink splunk (hec)") && fails[0].contains("SLUICE_TEST_UNSET_HEC_TOKEN"),
        "{stdout}"
    );
    assert!(fails[1].contains("SIEM sink rsyslog (syslog)") && fails[1].contains("no-such-ca.pem"), "{stdout}");
    for ok in ["SIEM sink collector (otlp): set up", "SIEM sink jetstream (nats): set up"] {
        assert!(stdout.lines().any(|l| l.trim_start().starts_with("ok") && l.contains(ok)), "no `{ok}` in:\n{stdout}");
    }
    assert!(!stdout.contains("t0k3n"), "a header value was printed:\n{stdout}");
}
