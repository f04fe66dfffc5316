//! Session recording end to end: a psql session through the real gateway
//! (a masked select on the demo table, an insert, an error, a notice, a
//! select over the recording's row cap) is listed by `sluice sessions
//! list` and replayed by `sluice sessions replay` with its statements and
//! masked values, never a clear one; `--json` parses; a payload altered or
//! deleted in the store makes replay fail and say which chunk.

mod support;

use serde_json::Value;
use std::process::{Command, Output};
use std::time::{Duration, Instant};
use support::{ScratchDb, Sluice, api_key, config, sqlite, workspace_root};

const POLICIES: &str = r#"
@id("agents-use-patients")
permit (principal in Sluice::Group::"analysts", action, resource == Sluice::Connection::"patients");

@id("no-admin")
@reason("no admin statements in this test")
forbid (principal, action == Sluice::Action::"sql:admin", resource);
"#;

/// What the psql session sends, one statement per line.
const SESSION: &str = "\
SELECT mrn, first_name, last_name, diagnosis FROM patients ORDER BY id LIMIT 2;
INSERT INTO rec_notes VALUES (1, 'hello');
SELECT * FROM no_such_table_for_recording;
SELECT rec_hello();
SELECT mrn, last_name FROM patients ORDER BY id LIMIT 5;
DO $$ BEGIN END $$;
";

struct Setup {
    db: ScratchDb,
    sluice: Sluice,
    agent: String,
    _policies: tempfile::TempDir,
}

fn setup() -> Setup {
    let db = ScratchDb::create("sluice_recording");
    db.sql(&std::fs::read_to_string(workspace_root().join("scripts/demo/patients.sql")).unwrap());
    db.sql(
        "CREATE TABLE rec_notes (id int, note text); \
         CREATE FUNCTION rec_hello() RETURNS int LANGUAGE plpgsql AS \
         $$ BEGIN RAISE NOTICE 'recording notice 42'; RETURN 1; END $$",
    );
    let policies = tempfile::tempdir().unwrap();
    std::fs::write(policies.path().join("team.cedar"), POLICIES).unwrap();
    let (agent, agent_hash) = api_key();
    let extra = format!("[policy]\ndir = \"{}\"\n[recording]\nmax_rows_per_statement = 2\n", policies.path().display());
    let config = config(&agent_hash, "patients", &db.name, "sqlite://data/audit.db", &extra);
    let sluice = Sluice::start(&config);
    Setup { db, sluice, agent, _policies: policies }
}

/// Runs the session's statements through psql as one session, each its
/// own simple Query as an interactive psql sends them (psql goes on after
/// the error); returns psql's stdout and stderr.
fn run_psql_session(s: &Setup) -> (String, String) {
    let mut cmd = Command::new("psql");
    cmd.args(["-X", "-v", "ON_ERROR_STOP=0", &s.sluice.dsn("patients", &s.agent)]);
    for statement in SESSION.lines() {
        cmd.args(["-c", statement]);
    }
    let out = cmd.output().expect("psql runs");
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn cli(s: &Setup, args: &[&str]) -> Output {
    s.sluice.cli(args)
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The sessions `sessions list --json` shows for the test agent, once the
/// last one's recording is complete (chunks are written lazily).
fn recorded_sessions(s: &Setup, expected: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = cli(s, &["sessions", "list", "--principal", "test-agent", "--json"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let sessions: Vec<Value> = text(&out).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        if sessions.len() >= expected && sessions.iter().all(|s| s["recording_complete"] == true) {
            return sessions;
        }
        assert!(Instant::now() < deadline, "no complete recording in time: {sessions:?}\n{}", s.sluice.log());
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_psql_session_is_listed_and_replayed_with_its_statements_and_masked_results() {
    let s = setup();
    let (stdout, stderr) = run_psql_session(&s);
    assert!(stdout.contains("[MRN]"), "psql got masked rows:\n{stdout}\n{stderr}");
    assert!(stderr.contains("no_such_table_for_recording"), "{stderr}");
    assert!(stderr.contains("recording notice 42"), "{stderr}");

    let sessions = recorded_sessions(&s, 1);
    let session = sessions.last().unwrap();
    let id = session["session_id"].as_str().unwrap().to_string();
    assert_eq!(session["principal"], "test-agent");
    assert_eq!(session["connection"], "patients");
    assert_eq!(session["requests"], 6);
    assert!(session["chunks"].as_u64().unwrap() >= 1);

    let table = cli(&s, &["sessions", "list"]);
    let table = text(&table);
    assert!(table.starts_with("SESSION"), "{table}");
    assert!(table.lines().any(|l| l.starts_with(&id) && l.contains("test-agent") && l.contains("patients")), "{table}");
    let since = cli(&s, &["sessions", "list", "--since", "1h", "--principal", "nobody"]);
    assert!(text(&since).contains("(0 sessions)"), "{}", text(&since));

    let out = cli(&s, &["sessions", "replay", &id]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let replay = text(&out);
    for statement in SESSION.lines() {
        assert!(replay.contains(&format!("test-agent=> {statement}")), "statement {statement:?} missing:\n{replay}");
    }
    // The masked results, as psql showed them (psql's first table and the
    // function's, line by line; the capped one is checked below).
    let trimmed = |text: &str| text.lines().map(str::trim_end).collect::<Vec<_>>().join("\n");
    let (replay_lines, psql_lines) = (trimmed(&replay), trimmed(&stdout));
    let psql_tables: Vec<&str> = psql_lines.split("\n\n").collect();
    assert!(replay_lines.contains(psql_tables[0]), "psql showed:\n{}\nreplay:\n{replay}", psql_tables[0]);
    assert!(psql_tables[0].contains("[MRN] | [NAME]     | [NAME]    |"), "{stdout}");
    let hello = &psql_lines[psql_lines.find(" rec_hello").expect("psql showed rec_hello")..];
    let hello = &hello[..hello.find("(1 row)").unwrap() + "(1 row)".len()];
    assert!(replay_lines.contains(hello), "psql showed:\n{hello}\nreplay:\n{replay}");
    assert!(replay.contains("(2 rows)"), "{replay}");
    assert!(replay.contains("INSERT 0 1"), "{replay}");
    assert!(replay.contains("ERROR:  relation \"no_such_table_for_recording\" does not exist"), "{replay}");
    assert!(replay.contains("NOTICE:  recording notice 42"), "{replay}");
    assert!(replay.contains("... 3 more rows not recorded"), "{replay}");
    assert!(replay.contains("(5 rows)"), "{replay}");
    // A statement Sluice refused, with the refusal the client got.
    assert!(replay.contains("ERROR:  refused by Sluice policy \"no-admin\""), "{replay}");
    // Timestamps as psql-like prompts: [HH:MM:SS.mmm].
    assert!(replay.lines().any(|l| l.len() > 15 && l.as_bytes()[0] == b'[' && &l[13..15] == "] "), "{replay}");
    // Never a clear value.
    for row in s.db.sql("SELECT mrn, first_name, last_name FROM patients ORDER BY id LIMIT 5").lines() {
        for value in row.split('|').filter(|v| *v != "Ben" && *v != "Ava") {
            assert!(!replay.contains(value), "clear value {value:?} in the replay:\n{replay}");
        }
    }

    let out = cli(&s, &["sessions", "replay", &id, "--json"]);
    assert!(out.status.success());
    let entries: Vec<Value> = text(&out).lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect();
    let kinds: Vec<&str> = entries.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds.iter().filter(|k| **k == "statement").count(), 6, "{kinds:?}");
    assert_eq!(kinds.iter().filter(|k| **k == "row").count(), 2 + 1 + 2, "{kinds:?}");
    let omitted: Vec<&Value> = entries.iter().filter(|e| e["kind"] == "rows_omitted").collect();
    assert_eq!(omitted.len(), 1);
    assert_eq!(omitted[0]["rows"], 3);
    let first_row = entries.iter().find(|e| e["kind"] == "row").unwrap();
    assert_eq!(first_row["values"][0], "[MRN]");
    let errors: Vec<&Value> = entries.iter().filter(|e| e["kind"] == "error").collect();
    assert_eq!(errors.iter().map(|e| e["sqlstate"].as_str().unwrap()).collect::<Vec<_>>(), ["42P01", "42501"]);
    assert!(entries.iter().all(|e| e["kind"] != "statement" || e["t"].as_str().unwrap().ends_with('Z')));

    // --speed replays with the recorded gaps (they are short here).
    let out = cli(&s, &["sessions", "replay", &id, "--speed", "1000"]);
    assert!(out.status.success());
    assert_eq!(text(&out), replay);

    // A payload altered in the store: replay names the chunk and refuses.
    let store = s.sluice.dir.path().join("data/audit.db");
    let seq_of_first_chunk = format!(
        "(SELECT seq FROM audit_records WHERE kind = 'recording_chunk' AND session_id = '{id}' ORDER BY seq LIMIT 1)"
    );
    sqlite(&store, &format!("UPDATE audit_payloads SET payload = X'7b7d0a' WHERE seq = {seq_of_first_chunk}"));
    let out = cli(&s, &["sessions", "replay", &id]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("chunk 0 of ") && stderr.contains("altered"), "{stderr}");
    assert!(text(&out).is_empty(), "nothing is replayed from a broken recording");
    sqlite(&store, &format!("DELETE FROM audit_payloads WHERE seq = {seq_of_first_chunk}"));
    let out = cli(&s, &["sessions", "replay", &id]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("chunk 0 of ") && stderr.contains("missing"), "{stderr}");
}

#[test]
fn recording_off_writes_no_chunks_and_replay_says_so() {
    let db = ScratchDb::create("sluice_recording_off");
    let (agent, agent_hash) = api_key();
    let config = config(
        &agent_hash,
        "plain",
        &db.name,
        "sqlite://data/audit.db",
        "[masking]\ndefault_profile = \"unmasked\"\n[recording]\nenabled = false\n",
    );
    let sluice = Sluice::start(&config);
    let (ok, out, err) = support::psql(&sluice.dsn("plain", &agent), "SELECT 1");
    assert!(ok, "{err}");
    assert_eq!(out, "1");
    let deadline = Instant::now() + Duration::from_secs(30);
    let session = loop {
        let out = sluice.cli(&["sessions", "list", "--json"]);
        let listed = String::from_utf8_lossy(&out.stdout).into_owned();
        if let Some(line) = listed.lines().next() {
            let session: Value = serde_json::from_str(line).unwrap();
            if !session["requests"].is_null() {
                break session;
            }
        }
        assert!(Instant::now() < deadline, "session not closed in time: {listed}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(session["chunks"], 0);
    let out = sluice.cli(&["sessions", "replay", session["session_id"].as_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no recording of session"));
}

#[test]
fn extended_protocol_results_and_parameters_are_recorded_masked_in_both_formats() {
    let s = setup();
    let script = r#"
import sys, psycopg
with psycopg.connect(sys.argv[1], autocommit=True) as conn:
    for binary in (False, True):
        with conn.cursor(binary=binary) as cur:
            cur.execute("SELECT mrn, last_name, id FROM patients WHERE last_name = %s ORDER BY id LIMIT 2", ("Okafor",))
            print(cur.fetchall())
"#;
    let out = Command::new("python3")
        .args(["-c", script, &s.sluice.conninfo("patients", &s.agent)])
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("'[MRN]', '[NAME]', 8"), "{stdout}");

    let sessions = recorded_sessions(&s, 1);
    let id = sessions.last().unwrap()["session_id"].as_str().unwrap().to_string();
    let out = cli(&s, &["sessions", "replay", &id, "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let replay = text(&out);
    assert!(!replay.contains("Okafor") && !replay.contains("MRN0100008"), "a clear value was recorded:\n{replay}");
    let entries: Vec<Value> = replay.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let statements: Vec<&Value> = entries.iter().filter(|e| e["kind"] == "statement").collect();
    assert_eq!(statements.len(), 2, "{replay}");
    for statement in &statements {
        assert!(statement["text"].as_str().unwrap().contains("last_name = $1"), "{statement}");
        assert_eq!(statement["param_count"], 1);
        assert_eq!(statement["params"], serde_json::json!(["[NAME]"]), "the parameter is masked: {statement}");
        assert_eq!(statement["params_sha256"].as_str().unwrap().len(), 64);
    }
    let columns: Vec<&Value> = entries.iter().filter(|e| e["kind"] == "columns").collect();
    assert_eq!(columns.len(), 2, "{replay}");
    for c in &columns {
        assert_eq!(c["names"], serde_json::json!(["mrn", "last_name", "id"]));
        assert_eq!(c["numeric"], serde_json::json!([false, false, true]));
    }
    let rows: Vec<&Value> = entries.iter().filter(|e| e["kind"] == "row").collect();
    assert_eq!(rows.len(), 4, "{replay}");
    assert_eq!(rows[0]["values"], serde_json::json!(["[MRN]", "[NAME]", "8"]));
    let hex = |text: &str| text.bytes().map(|b| format!("{b:02x}")).collect::<String>();
    assert_eq!(
        rows[2]["values"],
        serde_json::json!([{"binary": hex("[MRN]")}, {"binary": hex("[NAME]")}, {"binary": "00000008"}]),
        "binary results are recorded as hex"
    );

    let out = cli(&s, &["sessions", "replay", &id]);
    let transcript = text(&out);
    assert!(transcript.contains("  -- parameters: '[NAME]'"), "{transcript}");
    assert!(transcript.contains(" [MRN] | [NAME]    |  8"), "{transcript}");
    assert!(transcript.contains(" \\x5b4d524e5d"), "{transcript}");
}
