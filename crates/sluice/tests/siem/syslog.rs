//! rsyslogd end to end (part of the `siem` test): RFC 5424 over
//! octet-counted TCP, over UDP, and over TLS through rsyslog's GnuTLS
//! stream driver with a CA made for the run (and refused with the wrong
//! CA). rsyslogd is stopped mid-run and started again, and must end with
//! every audit record and a signed checkpoint, each line well-formed RFC
//! 5424 agreeing with its JSON.
//!
//! Owns: the private rsyslogd (its CA and certificate come from
//! `support::cluster`) and the RFC 5424 parser.

use super::{Gateway, free_port, wait_for_listener};
use crate::support::cluster::Ca;
use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};

const BOM: char = '\u{feff}';

/// rsyslogd with a private config, every raw message appended to
/// `messages.log`: imtcp and imudp on one port of 127.0.0.1, or for `tls`
/// imtcp alone behind the gtls (GnuTLS, package rsyslog-gnutls) stream
/// driver, with a certificate for 127.0.0.1 and localhost issued by a CA
/// made for the run (`ca.crt` in `dir`).
struct Rsyslog {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

impl Rsyslog {
    fn start(transport: &str) -> Rsyslog {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let d = dir.path().display();
        let (global, inputs) = if transport == "tls" {
            let ca = Ca::create(dir.path(), "ca");
            let server = ca.issue(dir.path(), "server", &["IP:127.0.0.1", "DNS:localhost"]);
            (
                format!(
                    " DefaultNetstreamDriver=\"gtls\" DefaultNetstreamDriverCAFile=\"{}\" \
                     DefaultNetstreamDriverCertFile=\"{}\" DefaultNetstreamDriverKeyFile=\"{}\"",
                    ca.cert.display(),
                    server.cert.display(),
                    server.key.display()
                ),
                format!(
                    "module(load=\"imtcp\" StreamDriver.Name=\"gtls\" StreamDriver.Mode=\"1\" StreamDriver.AuthMode=\"anon\")\n\
                     input(type=\"imtcp\" address=\"127.0.0.1\" port=\"{port}\")\n"
                ),
            )
        } else {
            (
                String::new(),
                format!(
                    "module(load=\"imtcp\")\nmodule(load=\"imudp\")\n\
                     input(type=\"imtcp\" address=\"127.0.0.1\" port=\"{port}\")\n\
                     input(type=\"imudp\" address=\"127.0.0.1\" port=\"{port}\")\n"
                ),
            )
        };
        let conf = format!(
            "global(workDirectory=\"{d}\" maxMessageSize=\"256k\"{global})\n{inputs}\
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
        // Without rsyslog-gnutls, rsyslogd runs on with no TLS listener.
        wait_for_listener(self.port, "rsyslogd (over tls it needs rsyslog-gnutls)");
    }

    /// The `[[siem.sinks]]` TOML for this rsyslogd; with `ca_file` (a file
    /// in `dir`) the sink checks rsyslogd's certificate against it, for
    /// 127.0.0.1, the host of `address`.
    fn sink(&self, transport: &str, ca_file: Option<&str>) -> String {
        let mut sink = format!(
            "[[siem.sinks]]\nname = \"rsyslog\"\nkind = \"syslog\"\naddress = \"127.0.0.1:{}\"\ntransport = \"{transport}\"\nbatch = 5\n",
            self.port
        );
        if let Some(ca_file) = ca_file {
            sink.push_str(&format!("ca_file = \"{}\"\n", self.dir.path().join(ca_file).display()));
        }
        sink
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

/// RFC 5425: rsyslogd's gtls driver terminates TLS and takes the same
/// octet-counted frames; Sluice checks its certificate against the run's CA.
#[test]
fn rsyslog_over_tls_gets_every_record_in_rfc5424_across_a_restart() {
    syslog_round_trip("tls");
}

/// A certificate from a CA the sink was not given: the handshake fails,
/// the log says why, and rsyslogd gets nothing.
#[test]
fn rsyslog_over_tls_with_the_wrong_ca_is_refused_and_gets_nothing() {
    let rsyslog = Rsyslog::start("tls");
    Ca::create(rsyslog.dir.path(), "other");
    let gateway = Gateway::start(&rsyslog.sink("tls", Some("other.crt")), &[]);
    gateway.run("refused", 2);
    // Several attempts, each refused.
    for before in 0..3 {
        gateway.wait_for_failure(before);
    }
    let log = gateway.sluice.log();
    let refusals: Vec<&str> = log.lines().filter(|l| l.contains("SIEM sink failed; retrying")).collect();
    for line in &refusals {
        assert!(line.contains("TLS: invalid peer certificate: UnknownIssuer"), "{line}");
    }
    assert!(!log.contains("SIEM sink delivering again"), "{log}");
    assert_eq!(rsyslog.lines(), Vec::<String>::new(), "rsyslogd got records over an unverified connection");
    let rsyslog_err = std::fs::read_to_string(rsyslog.dir.path().join("rsyslogd.err")).unwrap();
    // The sink aborts the handshake with an alert (the bare connections of
    // wait_for_listener leave other handshake errors there).
    assert!(rsyslog_err.contains("TLS fatal alert"), "rsyslogd saw no refused handshake:\n{rsyslog_err}");
    eprintln!("{}", refusals[0]);
}

fn syslog_round_trip(transport: &str) {
    let mut rsyslog = Rsyslog::start(transport);
    let sink = rsyslog.sink(transport, (transport == "tls").then_some("ca.crt"));
    let gateway = Gateway::start(&sink, &[]);
    gateway.run("before", 3);
    let ids = |rsyslog: &Rsyslog| -> Vec<String> {
        rsyslog.lines().iter().map(|l| parse_5424(l).params["event_id"].clone()).collect()
    };
    // Delivered while rsyslogd runs.
    gateway.wait_for_delivery("rsyslogd", || ids(&rsyslog));

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
