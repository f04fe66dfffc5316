//! Exfiltration budgets in the real gateway: a statement gets at most its
//! `@budget` of rows or bytes (simple query, extended query, a portal read in
//! parts, COPY OUT, psql and psycopg), ends with SQLSTATE 54000 and leaves the session usable; an
//! hourly budget stops a loop of small statements and stays spent across a
//! restart, because its window is read back from the audit store.

mod support;

use std::process::Command;
use support::raw::{self, RawClient};
use support::{ScratchDb, Sluice, api_key, config};

const STATEMENT_BUDGET: &str = r#"
@id("analysts-read-big")
@budget("rows_per_statement=1000")
permit (principal in Sluice::Group::"analysts", action == Sluice::Action::"sql:read", resource == Sluice::Connection::"patients")
when { ["public.big"].containsAll(context.tables_read) };
"#;

const HOURLY_BUDGET: &str = r#"
@id("analysts-read-small")
@budget("rows_per_statement=100, rows_per_hour=50")
permit (principal in Sluice::Group::"analysts", action == Sluice::Action::"sql:read", resource == Sluice::Connection::"patients")
when { ["public.big"].containsAll(context.tables_read) };
"#;

struct Setup {
    db: ScratchDb,
    key: String,
    config: String,
    _dir: tempfile::TempDir,
}

/// A database with `big` (100,000 rows), a policy dir holding `policies`,
/// and a config whose audit store lives outside Sluice's own temp dir, so a
/// second Sluice can be started on the same store.
fn setup(policies: &str) -> Setup {
    let db = ScratchDb::create("sluice_budget");
    db.sql("CREATE TABLE big AS SELECT g AS id, md5(g::text) AS body FROM generate_series(1, 100000) g");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("team.cedar"), policies).unwrap();
    let (key, hash) = api_key();
    let extra = format!("[policy]\ndir = \"{}\"\n", dir.path().display());
    let store = format!("sqlite://{}", dir.path().join("audit.db").display());
    let config = config(&hash, "patients", &db.name, &store, &extra);
    Setup { db, key, config, _dir: dir }
}

fn rows(messages: &[(u8, Vec<u8>)], tag: u8) -> usize {
    messages.iter().filter(|(t, _)| *t == tag).count()
}

fn error(messages: &[(u8, Vec<u8>)]) -> Option<(String, String)> {
    messages.iter().find(|(t, _)| *t == b'E').map(|(_, b)| (raw::sqlstate(b), raw::error_message(b)))
}

fn query(client: &mut RawClient, sql: &str) -> Vec<(u8, Vec<u8>)> {
    client.send(&raw::query(sql));
    client.read_until_ready()
}

#[test]
fn a_statement_gets_at_most_its_budget_and_the_session_goes_on() {
    let setup = setup(STATEMENT_BUDGET);
    let sluice = Sluice::start(&setup.config);
    let mut client = RawClient::login(sluice.port(), "patients", &setup.key);

    // Simple query: 1,000 rows, then the budget error in place of the tag.
    let answer = query(&mut client, "SELECT * FROM big");
    assert_eq!(rows(&answer, b'D'), 1000);
    assert_eq!(rows(&answer, b'C'), 0, "the command tag of a truncated result is withheld");
    let (code, message) = error(&answer).expect("the budget error");
    assert_eq!(code, "54000");
    assert!(message.contains("analysts-read-big") && message.contains("1000 rows per statement"), "{message}");
    assert_eq!(answer.last().unwrap().0, b'Z');

    // Within the budget nothing changes.
    let answer = query(&mut client, "SELECT * FROM big WHERE id <= 1000");
    assert_eq!((rows(&answer, b'D'), error(&answer)), (1000, None));

    // Extended query: the same, and the batch after the error is discarded
    // up to Sync as PostgreSQL would.
    let mut batch = raw::parse("", "SELECT id FROM big");
    batch.extend(raw::bind("", ""));
    batch.extend(raw::execute(""));
    batch.extend(raw::parse("", "SELECT 1 FROM big LIMIT 1"));
    batch.extend(raw::bind("", ""));
    batch.extend(raw::execute(""));
    batch.extend(raw::sync());
    client.send(&batch);
    let answer = client.read_until_ready();
    assert_eq!(rows(&answer, b'D'), 1000);
    assert_eq!(error(&answer).unwrap().0, "54000");
    assert_eq!(rows(&answer, b'E'), 1);

    // A portal read 600 rows at a time is still one statement: the second
    // Execute gets the 400 rows left, then the budget error.
    // (Flush, not Sync, in between: Sync would end the implicit transaction
    // and with it the portal.)
    let mut batch = raw::parse("", "SELECT id FROM big");
    batch.extend(raw::bind("p", ""));
    batch.extend(raw::execute_rows("p", 600));
    batch.extend(raw::message(b'H', &[]));
    client.send(&batch);
    let mut answer = Vec::new();
    while answer.last().is_none_or(|(tag, _)| !matches!(tag, b's' | b'E')) {
        answer.push(client.read_message().expect("the first part of the portal"));
    }
    assert_eq!((rows(&answer, b'D'), rows(&answer, b's'), error(&answer)), (600, 1, None));
    let mut batch = raw::execute_rows("p", 600);
    batch.extend(raw::sync());
    client.send(&batch);
    let answer = client.read_until_ready();
    assert_eq!(rows(&answer, b'D'), 400);
    assert_eq!(error(&answer).unwrap().0, "54000");

    // COPY OUT rows count too.
    let answer = query(&mut client, "COPY (SELECT * FROM big) TO STDOUT");
    assert_eq!(rows(&answer, b'd'), 1000);
    assert_eq!(error(&answer).unwrap().0, "54000");

    // The next statement of the same session works.
    let answer = query(&mut client, "SELECT count(*) FROM big");
    assert_eq!((rows(&answer, b'D'), error(&answer)), (1, None));

    // The audit record says what happened: truncated, 1,000 rows returned.
    let out = sluice.cli(&["audit", "search", "--kind", "outcome", "--json"]);
    let truncated = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["event"]["status"] == "truncated")
        .collect::<Vec<_>>();
    assert_eq!(truncated.len(), 4, "simple, extended, the portal and COPY were truncated");
    assert!(truncated.iter().all(|r| r["event"]["sqlstate"] == "54000"));
    // Each records the rows it returned: the portal's second Execute 400.
    let mut returned: Vec<u64> = truncated.iter().map(|r| r["event"]["rows"].as_u64().unwrap()).collect();
    returned.sort();
    assert_eq!(returned, [400, 1000, 1000, 1000]);
}

#[test]
fn psql_and_psycopg_see_the_budget_error_and_go_on() {
    let setup = setup(STATEMENT_BUDGET);
    let sluice = Sluice::start(&setup.config);
    let dsn = sluice.dsn("patients", &setup.key);

    let out = Command::new("psql")
        .args(["-X", "-At", "-v", "VERBOSITY=verbose", &dsn])
        .args(["-c", "SELECT * FROM big", "-c", "SELECT 'still' || 'here'"])
        .output()
        .expect("psql runs");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(stderr.contains("54000") && stderr.contains("analysts-read-big"), "{stderr}");
    assert!(stdout.lines().any(|l| l == "stillhere"), "psql went on after the budget error: {stdout}");

    let script = r#"
import sys, psycopg
with psycopg.connect(sys.argv[1], autocommit=True) as conn:
    cur = conn.cursor()
    try:
        cur.execute("SELECT * FROM big WHERE id > %s", (0,))
        print("no error, rows:", len(cur.fetchall()))
    except psycopg.Error as e:
        print("error", e.sqlstate)
    cur.execute("SELECT count(*) FROM big WHERE id <= %s", (10,))
    print("next", cur.fetchone()[0])
"#;
    let out = Command::new("python3").args(["-c", script, &dsn]).output().expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout.lines().collect::<Vec<_>>(), ["error 54000", "next 10"]);
}

#[test]
fn an_hourly_budget_stops_a_loop_and_stays_spent_across_a_restart() {
    let setup = setup(HOURLY_BUDGET);
    let mut sluice = Sluice::start(&setup.config);
    let mut client = RawClient::login(sluice.port(), "patients", &setup.key);

    // 50 rows an hour: five statements of 10 rows, then refused before
    // anything runs.
    for i in 0..5 {
        let answer = query(&mut client, &format!("SELECT * FROM big WHERE id > {} LIMIT 10", i * 10));
        assert_eq!((rows(&answer, b'D'), error(&answer)), (10, None), "statement {i}");
    }
    let answer = query(&mut client, "SELECT * FROM big LIMIT 1");
    assert_eq!(rows(&answer, b'D'), 0);
    let (code, message) = error(&answer).expect("the hourly budget is spent");
    assert_eq!(code, "54000");
    assert!(message.contains("hourly row budget of 50 rows"), "{message}");
    drop(client);
    assert!(sluice.terminate().success());

    // A restarted Sluice reads the spent window back from the audit store.
    let sluice = Sluice::start(&setup.config);
    let mut client = RawClient::login(sluice.port(), "patients", &setup.key);
    let answer = query(&mut client, "SELECT * FROM big LIMIT 1");
    assert_eq!(rows(&answer, b'D'), 0, "the restart reset the hourly budget");
    assert_eq!(error(&answer).unwrap().0, "54000");
    assert_eq!(setup.db.sql("SELECT count(*) FROM big"), "100000");
}

#[test]
fn a_statement_is_cut_at_what_is_left_of_the_hourly_budget() {
    let setup = setup(HOURLY_BUDGET);
    let sluice = Sluice::start(&setup.config);
    let mut client = RawClient::login(sluice.port(), "patients", &setup.key);
    let answer = query(&mut client, "SELECT * FROM big LIMIT 30");
    assert_eq!(rows(&answer, b'D'), 30);
    let answer = query(&mut client, "SELECT * FROM big LIMIT 30");
    assert_eq!(rows(&answer, b'D'), 20, "only 20 of the 50 rows an hour were left");
    let (code, message) = error(&answer).expect("the hourly budget error");
    assert_eq!(code, "54000");
    assert!(message.contains("hourly row budget") && message.contains("20 were left"), "{message}");
    // Nothing is left now.
    let answer = query(&mut client, "SELECT 1 FROM big LIMIT 1");
    assert_eq!(error(&answer).unwrap().0, "54000");
}

#[test]
fn a_byte_budget_cuts_the_result_at_its_size() {
    let setup = setup(&STATEMENT_BUDGET.replace("rows_per_statement=1000", "bytes_per_statement=4KiB"));
    let sluice = Sluice::start(&setup.config);
    let mut client = RawClient::login(sluice.port(), "patients", &setup.key);
    let answer = query(&mut client, "SELECT * FROM big");
    let relayed: usize = answer.iter().filter(|(t, _)| *t == b'D').map(|(_, body)| body.len() + 5).sum();
    assert!(rows(&answer, b'D') > 0 && relayed <= 4096, "{} rows, {relayed} bytes", rows(&answer, b'D'));
    let (code, message) = error(&answer).expect("the byte budget error");
    assert_eq!(code, "54000");
    assert!(message.contains("byte budget of 4096 bytes per statement"), "{message}");
    let answer = query(&mut client, "SELECT id FROM big WHERE id = 7");
    assert_eq!((rows(&answer, b'D'), error(&answer)), (1, None));
}
