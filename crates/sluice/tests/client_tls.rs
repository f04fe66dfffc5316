//! Clients reaching Sluice over TLS (`[client_tls]`): psql and psycopg with
//! `sslmode=require` and `verify-full`, the refusals a wrong CA or host name
//! gets, what happens without `[client_tls]`, and a client that asks for TLS
//! and then sends garbage.

mod support;

use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use support::cluster::{Ca, Leaf};
use support::raw::{self, RawClient};
use support::{ScratchDb, Sluice, api_key, config};

/// A CA and a certificate for Sluice, valid for 127.0.0.1 and localhost.
fn certificates(dir: &Path) -> (Ca, Leaf) {
    let ca = Ca::create(dir, "client_ca");
    let leaf = ca.issue(dir, "sluice", &["IP:127.0.0.1", "DNS:localhost"]);
    (ca, leaf)
}

fn client_tls(leaf: &Leaf) -> String {
    format!("[client_tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\n", leaf.cert.display(), leaf.key.display())
}

/// Sluice in front of a scratch database, with `extra` config.
fn start(db: &ScratchDb, extra: &str) -> (Sluice, String) {
    let (key, hash) = api_key();
    let sluice = Sluice::start(&config(&hash, "patients", &db.name, "sqlite://data/audit.db", extra));
    (sluice, key)
}

/// libpq conninfo to Sluice's `patients` with `options` (sslmode and friends).
fn conninfo(sluice: &Sluice, key: &str, options: &str) -> String {
    format!("host=127.0.0.1 port={} dbname=patients user=agent password={key} {options}", sluice.port())
}

/// psql running `\conninfo` then `select 40 + 2`: (success, stdout, stderr).
fn psql_conninfo(conninfo: &str) -> (bool, String, String) {
    let out = Command::new("psql")
        .args(["-X", "-At", "-v", "ON_ERROR_STOP=1", conninfo, "-c", "\\conninfo", "-c", "select 40 + 2"])
        .output()
        .expect("psql runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
        String::from_utf8_lossy(&out.stderr).trim().to_string(),
    )
}

/// The `client_tls` flag of every session_open record so far.
fn session_tls_flags(sluice: &Sluice) -> Vec<bool> {
    let out = sluice.cli(&["audit", "search", "--kind", "session_open", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| {
            let record: serde_json::Value = serde_json::from_str(line).unwrap();
            record["event"]["client_tls"].as_bool().unwrap_or_else(|| panic!("no event.client_tls in {record}"))
        })
        .collect()
}

#[test]
fn psql_and_psycopg_reach_sluice_over_verified_tls() {
    let tls = tempfile::tempdir().unwrap();
    let (ca, leaf) = certificates(tls.path());
    let other_ca = Ca::create(tls.path(), "other_ca");
    let db = ScratchDb::create("sluice_ctls");
    let (sluice, key) = start(&db, &client_tls(&leaf));
    let ca = ca.cert.display().to_string();

    for options in [
        "sslmode=require".to_string(),
        format!("sslmode=verify-full sslrootcert={ca}"),
        // The name checked is `host`; the address dialled stays 127.0.0.1.
        format!("host=localhost hostaddr=127.0.0.1 sslmode=verify-full sslrootcert={ca}"),
    ] {
        let (ok, out, err) = psql_conninfo(&conninfo(&sluice, &key, &options));
        assert!(ok, "{options}: {err}\n{}", sluice.log());
        assert!(out.contains("SSL connection (protocol: TLSv1."), "{options}: not TLS:\n{out}");
        assert!(out.ends_with("\n42"), "{options}:\n{out}");
    }

    // psycopg (libpq underneath, but its own driver code) with verify-full.
    let script = "import psycopg, sys\n\
                  with psycopg.connect(sys.argv[1]) as c:\n    \
                  print(c.execute('select 40 + 2').fetchone()[0], c.pgconn.ssl_in_use)";
    let out = Command::new("python3")
        .args(["-c", script, &conninfo(&sluice, &key, &format!("sslmode=verify-full sslrootcert={ca}"))])
        .output()
        .expect("python3 runs");
    assert!(out.status.success(), "psycopg: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "42 True");

    // Verification means something: another CA, or another name, is refused.
    let wrong_ca = format!("sslmode=verify-full sslrootcert={}", other_ca.cert.display());
    let (ok, _, err) = psql_conninfo(&conninfo(&sluice, &key, &wrong_ca));
    assert!(!ok && err.contains("certificate verify failed"), "{err}");
    let wrong_name = format!("host=sluice.invalid hostaddr=127.0.0.1 sslmode=verify-full sslrootcert={ca}");
    let (ok, _, err) = psql_conninfo(&conninfo(&sluice, &key, &wrong_name));
    assert!(!ok && err.contains("does not match host name \"sluice.invalid\""), "{err}");

    // A plaintext client on loopback is still served, and the audit log
    // tells the two apart.
    let (ok, out, err) = psql_conninfo(&conninfo(&sluice, &key, "sslmode=disable"));
    assert!(ok, "{err}");
    assert!(!out.contains("SSL connection"), "{out}");
    assert_eq!(session_tls_flags(&sluice), [true, true, true, true, false]);
}

#[test]
fn without_client_tls_require_fails_and_prefer_or_disable_work() {
    let db = ScratchDb::create("sluice_ctls");
    let (sluice, key) = start(&db, "");

    let (ok, _, err) = psql_conninfo(&conninfo(&sluice, &key, "sslmode=require"));
    assert!(!ok, "sslmode=require worked without [client_tls]");
    assert!(err.contains("server does not support SSL, but SSL was required"), "{err}");

    for mode in ["sslmode=prefer", "sslmode=disable"] {
        let (ok, out, err) = psql_conninfo(&conninfo(&sluice, &key, mode));
        assert!(ok, "{mode}: {err}");
        assert!(!out.contains("SSL connection") && out.ends_with("\n42"), "{mode}:\n{out}");
    }
    assert_eq!(session_tls_flags(&sluice), [false, false]);
}

/// SSLRequest: length 8, code 80877103.
const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];

/// Reads until the server closes the connection (bounded); returns what came.
fn read_until_closed(stream: &mut std::net::TcpStream) -> Vec<u8> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        assert!(Instant::now() < deadline, "the connection was not closed; got {got:?}");
        match stream.read(&mut chunk) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return got,
            Err(e) => panic!("read failed (not closed in time?): {e}"),
        }
    }
}

#[test]
fn ssl_request_then_garbage_ends_only_that_connection() {
    let tls = tempfile::tempdir().unwrap();
    let (_, leaf) = certificates(tls.path());
    let db = ScratchDb::create("sluice_ctls");
    let (sluice, key) = start(&db, &client_tls(&leaf));
    let mut bystander = RawClient::login(sluice.port(), "patients", &key);

    // SSLRequest, 'S', then bytes that are no TLS ClientHello.
    for garbage in [
        b"this is not a TLS ClientHello at all\r\n\r\n".to_vec(),
        vec![0x16, 0x03, 0x01, 0x00, 0x05, 0xff, 0xff, 0xff, 0xff, 0xff], // a handshake record of nonsense
        vec![0x16, 0x03, 0x01, 0xff, 0xff],                               // a record longer than TLS allows
        raw::query("select 1"),                                           // plaintext PostgreSQL
    ] {
        let mut attacker = RawClient::connect(sluice.port());
        attacker.send(&SSL_REQUEST);
        let mut answer = [0u8; 1];
        attacker.stream.read_exact(&mut answer).unwrap();
        assert_eq!(answer, *b"S");
        attacker.send(&garbage);
        let reply = read_until_closed(&mut attacker.stream);
        // At most a TLS alert record: nothing readable as PostgreSQL.
        assert!(reply.is_empty() || reply[0] == 0x15, "{garbage:?} got {reply:?}");
    }

    // SSLRequest with more bytes behind it in the same write: refused in
    // plaintext (the bytes would otherwise be read outside TLS).
    let mut eager = RawClient::connect(sluice.port());
    let mut bytes = SSL_REQUEST.to_vec();
    bytes.extend_from_slice(&[0x16, 0x03, 0x01, 0x00, 0x01, 0x01]);
    eager.stream.write_all(&bytes).unwrap();
    let messages = eager.read_to_end();
    let (tag, body) = messages.last().expect("a FATAL before the close");
    assert_eq!((*tag, raw::sqlstate(body).as_str()), (b'E', "08P01"), "{messages:?}");
    assert!(raw::error_message(body).contains("after SSLRequest"), "{}", raw::error_message(body));

    // The session that was already up, and a new TLS client, are fine.
    bystander.send(&raw::query("select 41 + 1"));
    let messages = bystander.read_until_ready();
    assert!(messages.iter().any(|(tag, body)| *tag == b'D' && body.ends_with(b"42")), "{messages:?}");
    let (ok, out, err) = psql_conninfo(&conninfo(&sluice, &key, "sslmode=require"));
    assert!(ok && out.contains("SSL connection"), "{err}\n{out}");
}
