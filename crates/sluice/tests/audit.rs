//! The audit guarantees end to end: every statement recorded, tampering
//! named, fail closed when the store fails, no result before its record is
//! durable, and a chain that survives kill -9.

mod support;

use std::collections::HashSet;
use std::io::{Read, Write};
use std::process::Command;
use std::time::{Duration, Instant};
use support::raw::{self, RawClient};
use support::{ScratchDb, Sluice, admin_sql, api_key, config, sqlite, unique};

fn records(sluice: &Sluice, kind: &str) -> Vec<serde_json::Value> {
    let out = sluice.cli(&["audit", "search", "--kind", kind, "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn statements(sluice: &Sluice) -> Vec<String> {
    records(sluice, "request").iter().map(|r| r["event"]["statement"].as_str().unwrap().to_string()).collect()
}

fn healthz(sluice: &Sluice) -> (u16, String) {
    let mut stream = std::net::TcpStream::connect(sluice.api).unwrap();
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: sluice\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, response)
}

fn run(client: &mut RawClient, sql: &str) -> Vec<(u8, Vec<u8>)> {
    client.send(&raw::query(sql));
    client.read_until_ready()
}

#[test]
fn every_statement_is_searchable_and_an_edited_record_is_named() {
    let db = ScratchDb::create("sluice_audit");
    let (key, hash) = api_key();
    let sluice = Sluice::start(&config(&hash, "patients", &db.name, "sqlite://data/audit.db", ""));
    let mut client = RawClient::login(sluice.port(), "patients", &key);
    let sent: Vec<String> = (0..20).map(|i| format!("select {i} as n, 'marker-{i}'")).collect();
    for sql in &sent {
        run(&mut client, sql);
    }
    run(&mut client, "alter system reset all");
    let recorded = statements(&sluice);
    for sql in &sent {
        assert!(recorded.contains(sql), "{sql} missing from the audit trail");
    }
    let denied =
        records(&sluice, "request").into_iter().find(|r| r["event"]["statement"] == "alter system reset all").unwrap();
    assert_eq!(denied["event"]["decision"]["verdict"], "deny");
    assert_eq!(denied["event"]["classification"]["kind"], "admin");
    assert_eq!(denied["event"]["classification"]["flags"]["alter_system"], true);
    let read = records(&sluice, "request").into_iter().find(|r| r["event"]["statement"] == sent[3]).unwrap();
    assert_eq!(read["event"]["classification"]["kind"], "read", "{read}");
    assert_eq!(denied["event"]["principal"], "test-agent");
    let found = sluice.cli(&["audit", "search", "--kind", "request", "--contains", "'marker-1", "--json"]);
    assert!(found.status.success(), "{}", String::from_utf8_lossy(&found.stderr));
    let found: Vec<String> = String::from_utf8_lossy(&found.stdout)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["event"]["statement"].as_str().unwrap().into())
        .collect();
    let expected: Vec<&String> = sent.iter().filter(|s| s.contains("'marker-1")).collect();
    assert_eq!(found.iter().collect::<Vec<_>>(), expected, "marker-1 and marker-10..19, in order");

    let verify = sluice.cli(&["audit", "verify"]);
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stdout));

    // Edit one stored record, as an operator with file access could.
    let victim = records(&sluice, "request").into_iter().find(|r| r["event"]["statement"] == sent[7]).unwrap();
    let seq = victim["seq"].as_u64().unwrap();
    let store = sluice.dir.path().join("data/audit.db");
    sqlite(&store, &format!("UPDATE audit_records SET body = replace(body, 'marker-7', 'marker-8') WHERE seq = {seq}"));
    let verify = sluice.cli(&["audit", "verify"]);
    let report = String::from_utf8_lossy(&verify.stdout);
    assert!(!verify.status.success(), "verify passed an edited log:\n{report}");
    assert!(report.contains(&format!("BROKEN at record {seq}")), "{report}");
}

#[test]
fn an_unwritable_store_refuses_with_53300_and_service_resumes() {
    let db = ScratchDb::create("sluice_audit");
    db.sql("CREATE TABLE writes (n int)");
    let (key, hash) = api_key();
    let sluice = Sluice::start(&config(&hash, "patients", &db.name, "sqlite://data/audit.db", ""));
    let mut client = RawClient::login(sluice.port(), "patients", &key);
    run(&mut client, "insert into writes values (1)");
    assert_eq!(healthz(&sluice).0, 200);

    let store = sluice.dir.path().join("data/audit.db");
    sqlite(
        &store,
        "CREATE TRIGGER block BEFORE INSERT ON audit_records BEGIN SELECT RAISE(ABORT, 'disk is read-only'); END;",
    );
    let messages = run(&mut client, "insert into writes values (2)");
    let (tag, body) = &messages[0];
    assert_eq!((*tag, raw::sqlstate(body).as_str()), (b'E', "53300"), "{messages:?}");
    assert!(raw::error_message(body).contains("disk is read-only"), "{}", raw::error_message(body));
    assert_eq!(db.sql("select count(*) from writes where n = 2"), "0", "an unrecorded statement reached PostgreSQL");
    // A pure read is forwarded while its record commits; when the commit
    // fails its result is withheld and replaced by the same error, in simple
    // and in extended mode (where the rest of the batch is discarded).
    let messages = run(&mut client, "select 'secret-row'");
    let tags: String = messages.iter().map(|(t, _)| *t as char).collect();
    assert_eq!(tags, "EZ", "{messages:?}");
    assert_eq!(raw::sqlstate(&messages[0].1), "53300");
    let mut batch = Vec::new();
    batch.extend(raw::parse("", "select 'secret-row'"));
    batch.extend(raw::bind("", ""));
    batch.extend(raw::execute(""));
    batch.extend(raw::parse("", "insert into writes values (4)"));
    batch.extend(raw::bind("", ""));
    batch.extend(raw::execute(""));
    batch.extend(raw::sync());
    client.send(&batch);
    let messages = client.read_until_ready();
    assert!(!messages.iter().any(|(t, b)| *t == b'D' || b.windows(10).any(|w| w == b"secret-row")), "{messages:?}");
    let (tag, body) = messages.iter().find(|(t, _)| *t == b'E').expect("an error");
    assert_eq!((*tag, raw::sqlstate(body).as_str()), (b'E', "53300"));
    assert_eq!(db.sql("select count(*) from writes where n = 4"), "0", "a statement after the refused read ran");
    let (status, body) = healthz(&sluice);
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("disk is read-only"), "{body}");

    sqlite(&store, "DROP TRIGGER block;");
    run(&mut client, "insert into writes values (3)");
    assert_eq!(db.sql("select string_agg(n::text, ',' order by n) from writes"), "1,3");
    assert_eq!(healthz(&sluice).0, 200);
    let verify = sluice.cli(&["audit", "verify"]);
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stdout));
}

#[test]
fn no_result_byte_reaches_the_client_before_its_record_is_durable() {
    let db = ScratchDb::create("sluice_audit");
    let store = ScratchDb::create("sluice_audit_store");
    let (key, hash) = api_key();
    let url = format!("postgres://root@127.0.0.1:5432/{}", store.name);
    let sluice = Sluice::start(&config(&hash, "patients", &db.name, &url, ""));
    let mut client = RawClient::login(sluice.port(), "patients", &key);
    // From now on every audit commit takes at least 400 ms.
    store.sql(
        "CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(0.4); RETURN NULL; END $$; \
         CREATE TRIGGER slow AFTER INSERT ON audit_records FOR EACH STATEMENT EXECUTE FUNCTION slow();",
    );
    for i in 0..3 {
        let marker = unique("durable");
        let started = Instant::now();
        let messages = run(&mut client, &format!("select '{marker}'"));
        let elapsed = started.elapsed();
        assert!(messages.iter().any(|(t, b)| *t == b'D' && b.ends_with(marker.as_bytes())));
        // The moment the client has its result, the record must be committed.
        let found = admin_sql(&store.name, &format!("select count(*) from audit_records where body like '%{marker}%'"));
        assert_eq!(found, "1", "round {i}: result arrived before its record was durable");
        assert!(
            elapsed >= Duration::from_millis(400),
            "round {i}: result after {elapsed:?}, faster than the store commits"
        );
    }
}

#[test]
fn kill_9_under_load_leaves_a_verifiable_chain_covering_every_statement() {
    let db = ScratchDb::create("sluice_audit");
    db.sql("CREATE TABLE kill_ids (id bigint)");
    let (key, hash) = api_key();
    let mut sluice = Sluice::start(&config(&hash, "patients", &db.name, "sqlite://data/audit.db", ""));
    let script = sluice.dir.path().join("ids.sql");
    std::fs::write(&script, "\\set id random(1, 9000000000000)\nINSERT INTO kill_ids VALUES (:id);\n").unwrap();
    let pgbench = pgbench_binary();
    let mut bench = Command::new(&pgbench)
        .args(["-n", "-c", "4", "-j", "2", "-T", "20", "--protocol=simple", "-f"])
        .arg(&script)
        .args(["-h", "127.0.0.1", "-p", &sluice.port().to_string(), "-U", "agent", "patients"])
        .env("PGPASSWORD", &key)
        .env("PGSSLMODE", "disable")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("pgbench runs");
    // Kill once a good number of statements have run.
    let deadline = Instant::now() + Duration::from_secs(30);
    while db.sql("select count(*) from kill_ids").parse::<u64>().unwrap() < 500 {
        assert!(Instant::now() < deadline, "pgbench made no progress through Sluice:\n{}", sluice.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    sluice.kill9();
    let _ = bench.wait();

    let verify = sluice.cli(&["audit", "verify"]);
    let report = String::from_utf8_lossy(&verify.stdout);
    assert!(verify.status.success(), "chain broken after kill -9:\n{report}");
    let recorded: HashSet<String> = statements(&sluice).into_iter().collect();
    let ids = db.sql("select id from kill_ids");
    let mut checked = 0;
    for id in ids.lines() {
        let statement = format!("INSERT INTO kill_ids VALUES ({id});");
        assert!(recorded.contains(&statement), "{statement} ran in PostgreSQL but has no audit record");
        checked += 1;
    }
    assert!(checked >= 500, "only {checked} statements checked");
}

fn pgbench_binary() -> String {
    if Command::new("pgbench").arg("--version").output().is_ok_and(|o| o.status.success()) {
        return "pgbench".into();
    }
    let debian = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin/pgbench"))
        .find(|p| p.exists());
    debian.expect("pgbench is installed (scripts/test installs it)").display().to_string()
}
