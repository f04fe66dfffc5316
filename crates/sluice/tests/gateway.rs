//! The PostgreSQL gateway end to end: real clients through a real `sluice
//! serve` to the machine's PostgreSQL, and the inputs that must fail cleanly.

mod support;

use std::process::Command;
use support::raw::{self, RawClient};
use support::{ScratchDb, Sluice, UNMASKED, api_key, config, psql, workspace_root};

fn start(db: &ScratchDb) -> (Sluice, String) {
    let (key, hash) = api_key();
    let sluice = Sluice::start(&config(&hash, "patients", &db.name, "sqlite://data/audit.db", UNMASKED));
    (sluice, key)
}

/// Runs one of tests/clients' scenario scripts; they compare every result
/// through Sluice with the direct connection's and print `N passed, M failed`.
fn scenario(program: &str, script: &str, direct: &str, via: &str) {
    let out = Command::new(program)
        .arg(workspace_root().join("tests/clients").join(script))
        .args(["--direct", direct, "--via", via])
        .output()
        .unwrap_or_else(|e| panic!("{program} {script}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{script} failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("8 passed, 0 failed"), "{script}:\n{stdout}");
}

#[test]
fn psql_psycopg_and_node_postgres_match_the_direct_connection() {
    let db = ScratchDb::create("sluice_gw");
    let (sluice, key) = start(&db);
    let via = sluice.dsn("patients", &key);
    scenario("python3", "pg_scenario.py", &db.direct_dsn(), &via);
    scenario("node", "pg_scenario.mjs", &db.direct_dsn(), &via);
    scenario("bash", "psql_scenario.sh", &db.direct_dsn(), &via);
}

#[test]
fn wrong_database_and_wrong_token_get_clear_fatal_errors() {
    let db = ScratchDb::create("sluice_gw");
    let (sluice, key) = start(&db);
    let (ok, _, err) = psql(&sluice.dsn("nope", &key), "select 1");
    assert!(!ok);
    assert!(err.contains("no connection named \"nope\""), "{err}");
    assert!(!err.contains(&db.name) && !err.contains("root"), "leaks target details: {err}");

    let (ok, _, err) = psql(&sluice.dsn("patients", "not-the-key"), "select 1");
    assert!(!ok);
    assert!(err.contains("password authentication failed"), "{err}");

    // The SQLSTATEs themselves, from the raw protocol.
    assert_eq!(raw::login_error(sluice.port(), "patients", "not-the-key").0, "28P01");
    assert_eq!(raw::login_error(sluice.port(), "nope", &key).0, "3D000");
}

#[test]
fn garbage_and_huge_lengths_end_only_their_own_connection() {
    let db = ScratchDb::create("sluice_gw");
    let (sluice, key) = start(&db);
    let mut bystander = RawClient::login(sluice.port(), "patients", &key);

    let attacks: Vec<Vec<u8>> = vec![
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        vec![0x7f, 0xff, 0xff, 0xff, 0, 3, 0, 0], // 2 GB startup length
        vec![0, 0, 0, 8, 0x12, 0x34, 0x56, 0x78], // unknown request code
        vec![0xff; 64],
    ];
    for attack in attacks {
        let mut client = RawClient::connect(sluice.port());
        client.send(&attack);
        let messages = client.read_to_end(); // a clean close, maybe after a FATAL
        assert!(messages.iter().all(|(tag, _)| *tag == b'E'), "{messages:?}");
    }

    // After login: a 2 GB length prefix, and an unknown message type.
    for attack in [vec![b'Q', 0x80, 0, 0, 0], raw::message(b'?', b"")] {
        let mut victim = RawClient::login(sluice.port(), "patients", &key);
        victim.send(&attack);
        let messages = victim.read_to_end();
        let (tag, body) = messages.last().expect("a FATAL before the close");
        assert_eq!((*tag, raw::sqlstate(body).as_str()), (b'E', "08P01"));
    }

    bystander.send(&raw::query("select 41 + 1"));
    let messages = bystander.read_until_ready();
    assert!(messages.iter().any(|(tag, body)| *tag == b'D' && body.ends_with(b"42")), "{messages:?}");
    assert!(sluice.log().contains("sluice is listening"));
}

#[test]
fn a_refused_statement_keeps_the_session_and_extended_mode_discards_to_sync() {
    let db = ScratchDb::create("sluice_gw");
    let (sluice, key) = start(&db);
    let mut client = RawClient::login(sluice.port(), "patients", &key);

    // Simple query: ErrorResponse 42501, then ReadyForQuery.
    client.send(&raw::query("ALTER SYSTEM SET work_mem = '1GB'"));
    let messages = client.read_until_ready();
    let tags: Vec<u8> = messages.iter().map(|(t, _)| *t).collect();
    assert_eq!(tags, b"EZ");
    assert_eq!(raw::sqlstate(&messages[0].1), "42501");
    assert!(raw::error_message(&messages[0].1).contains("builtin.alter_system"));

    // Extended: Parse/Bind/Execute allowed, then a refused Execute, then more
    // messages that must be discarded up to Sync, all in one write.
    let mut batch = Vec::new();
    batch.extend(raw::parse("", "select 1"));
    batch.extend(raw::bind("", ""));
    batch.extend(raw::execute(""));
    batch.extend(raw::parse("s2", "alter system reset all"));
    batch.extend(raw::bind("p2", "s2"));
    batch.extend(raw::execute("p2"));
    batch.extend(raw::parse("", "select 3"));
    batch.extend(raw::bind("", ""));
    batch.extend(raw::execute(""));
    batch.extend(raw::sync());
    client.send(&batch);
    let messages = client.read_until_ready();
    let tags: String = messages.iter().map(|(t, _)| *t as char).collect();
    // 1 2 D C for select 1; 1 2 for the second Parse/Bind; E for the refusal; Z.
    assert_eq!(tags, "12DC12EZ", "{messages:?}");
    assert_eq!(raw::sqlstate(&messages[6].1), "42501");

    // The session is alive, and the discarded "select 3" never ran.
    client.send(&raw::query("select 'alive'"));
    let messages = client.read_until_ready();
    assert!(messages.iter().any(|(t, b)| *t == b'D' && b.ends_with(b"alive")));
    let search = sluice.cli(&["audit", "search", "--kind", "request", "--json"]);
    let text = String::from_utf8_lossy(&search.stdout);
    assert!(!text.contains("select 3"), "a discarded statement was recorded as a request:\n{text}");
}

#[test]
fn sigterm_lets_the_running_statement_finish_then_closes() {
    let db = ScratchDb::create("sluice_gw");
    let (mut sluice, key) = start(&db);
    let mut client = RawClient::login(sluice.port(), "patients", &key);
    client.send(&raw::query("select pg_sleep(1.5), 'finished'"));
    std::thread::sleep(std::time::Duration::from_millis(300));
    let pid = sluice.pid();
    Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap();
    let messages = client.read_until_ready();
    assert!(messages.iter().any(|(t, b)| *t == b'D' && b.ends_with(b"finished")), "{messages:?}");
    let rest = client.read_to_end();
    assert!(rest.iter().any(|(t, b)| *t == b'E' && raw::sqlstate(b) == "57P01"), "{rest:?}");
    assert!(sluice.terminate().success());
    let verify = sluice.cli(&["audit", "verify"]);
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stdout));
    let search =
        String::from_utf8_lossy(&sluice.cli(&["audit", "search", "--kind", "outcome", "--json"]).stdout).to_string();
    assert!(search.contains("\"status\":\"ok\""), "{search}");
}

#[test]
fn notifications_notices_and_parameter_status_are_relayed() {
    let db = ScratchDb::create("sluice_gw");
    let (sluice, key) = start(&db);
    let mut client = RawClient::login(sluice.port(), "patients", &key);
    client.send(&raw::query("LISTEN sluice_events"));
    client.read_until_ready();
    db.sql("NOTIFY sluice_events, 'hello'");
    client.send(&raw::query(
        "SET application_name = 'relay-test'; DO $$ BEGIN RAISE NOTICE 'notice-from-upstream'; END $$",
    ));
    let messages = client.read_until_ready();
    let has = |tag: u8, needle: &[u8]| {
        messages.iter().any(|(t, b)| *t == tag && b.windows(needle.len()).any(|w| w == needle))
    };
    assert!(has(b'A', b"hello"), "no NotificationResponse: {messages:?}");
    assert!(has(b'N', b"notice-from-upstream"), "no NoticeResponse: {messages:?}");
    assert!(has(b'S', b"relay-test"), "no ParameterStatus: {messages:?}");
}

#[test]
fn metrics_count_sessions_and_decisions() {
    let db = ScratchDb::create("sluice_gw");
    let (sluice, key) = start(&db);
    let mut client = RawClient::login(sluice.port(), "patients", &key);
    client.send(&raw::query("select 1"));
    client.read_until_ready();
    client.send(&raw::query("alter system reset all"));
    client.read_until_ready();
    let out = Command::new("curl").args(["-sf", &format!("http://{}/metrics", sluice.api)]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for line in [
        "sluice_sessions_active 1",
        "sluice_requests_total{decision=\"allow\"} 1",
        "sluice_requests_total{decision=\"deny\"} 1",
    ] {
        assert!(text.lines().any(|l| l == line), "missing `{line}` in:\n{text}");
    }
    assert!(text.contains("sluice_audit_commit_seconds_count"), "{text}");
}
