//! Accounting of disclosures in the real gateway, on the quickstart's demo
//! table: two agents and a privacy officer (`unmasked`) read patients A and
//! B in different combinations; `sluice audit subject` lists exactly the
//! requests that returned A (or B), by MRN and by name, in a table and as
//! JSON; under another key it finds nothing; and no clear MRN or name is in
//! the audit store's files.

mod support;

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use support::raw::{self, RawClient};
use support::{ScratchDb, Sluice, api_key, api_key_entry, config, psql, sluice_cli_with_env, workspace_root};

const POLICIES: &str = r#"
@id("agents-read-patients")
permit (principal in Sluice::Group::"analysts", action == Sluice::Action::"sql:read", resource == Sluice::Connection::"patients");

@id("privacy-officers-read-clear")
@mask("unmasked")
permit (principal in Sluice::Group::"privacy-officers", action == Sluice::Action::"sql:read", resource == Sluice::Connection::"patients");
"#;

const KEY_ENV: &str = "SLUICE_TEST_PSEUDONYM_KEY";
const KEY: &str = "a-test-key-of-32-bytes-for-hmac!";

struct Setup {
    db: ScratchDb,
    sluice: Sluice,
    agent: String,
    second: String,
    officer: String,
    _policies: tempfile::TempDir,
}

fn setup() -> Setup {
    let db = ScratchDb::create("sluice_disclosures");
    db.sql(&std::fs::read_to_string(workspace_root().join("scripts/demo/patients.sql")).unwrap());
    let policies = tempfile::tempdir().unwrap();
    std::fs::write(policies.path().join("team.cedar"), POLICIES).unwrap();
    let (agent, agent_hash) = api_key();
    let (second, second_hash) = api_key();
    let (officer, officer_hash) = api_key();
    let extra = format!(
        // Session recording is on (the default): an `unmasked` session is
        // recorded without its values, so the store search below covers it.
        "[policy]\ndir = \"{}\"\n[masking]\npseudonym_key_env = \"{KEY_ENV}\"\n{}",
        policies.path().display(),
        [
            api_key_entry("second-agent", "agent", &["analysts"], &second_hash),
            api_key_entry("privacy-officer", "human", &["privacy-officers"], &officer_hash),
        ]
        .concat()
    );
    let config = config(&agent_hash, "patients", &db.name, "sqlite://data/audit.db", &extra);
    let sluice = Sluice::start_with_env(&config, &[(KEY_ENV, KEY)]);
    Setup { db, sluice, agent, second, officer, _policies: policies }
}

/// (mrn, first_name, last_name) of the patient with this id, as stored.
fn patient(db: &ScratchDb, id: u32) -> (String, String, String) {
    let row = db.sql(&format!("SELECT mrn, first_name, last_name FROM patients WHERE id = {id}"));
    let mut parts = row.split('|').map(str::to_string);
    (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap())
}

fn run(s: &Setup, statement: &str, token: &str) {
    let (ok, _, stderr) = psql(&s.sluice.conninfo("patients", token), statement);
    assert!(ok, "{statement}: {stderr}");
}

/// `sluice audit subject <args>` under `key`: (principal, request id) of
/// each JSON line, and the lines.
fn subject(s: &Setup, args: &[&str], key: &str) -> (BTreeSet<(String, String)>, Vec<Value>) {
    let mut all = vec!["audit", "subject", "--json"];
    all.extend_from_slice(args);
    let out = sluice_cli_with_env(&all, &s.sluice.config_path, &[(KEY_ENV, key)]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let hits = lines
        .iter()
        .map(|l| (l["principal"].as_str().unwrap().to_string(), l["request_id"].as_str().unwrap().to_string()))
        .collect();
    (hits, lines)
}

#[test]
fn audit_subject_lists_exactly_the_requests_that_returned_a_patient() {
    let mut s = setup();
    let (a_mrn, a_first, a_last) = patient(&s.db, 1);
    let (b_mrn, _, _) = patient(&s.db, 2);

    // Statements name patients by id, so no clear value is in their text.
    const A: &str = "SELECT mrn, first_name, last_name, diagnosis FROM patients WHERE id = 1";
    const B: &str = "SELECT mrn, diagnosis FROM patients WHERE id = 2";
    const BOTH: &str = "SELECT last_name, mrn, first_name FROM patients WHERE id IN (1, 2) ORDER BY id";
    const NONE: &str = "SELECT diagnosis, birth_date FROM patients WHERE id = 1";
    const OTHER: &str = "SELECT mrn FROM patients WHERE id = 3";
    const OFFICER: &str = "SELECT mrn, first_name, last_name FROM patients WHERE id = 1 AND true";
    run(&s, A, &s.agent);
    run(&s, NONE, &s.agent);
    run(&s, B, &s.second);
    run(&s, BOTH, &s.second);
    run(&s, OTHER, &s.second);
    run(&s, OFFICER, &s.officer);
    // The officer again, over the extended protocol, in text and binary.
    let out = Command::new("python3")
        .arg(workspace_root().join("tests/clients/pg_rows.py"))
        .args([&s.sluice.dsn("patients", &s.officer), "SELECT mrn, first_name, last_name FROM patients WHERE id <= 1"])
        .output()
        .unwrap();
    let rows: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows["binary"][0][0].as_str(), Some(a_mrn.as_str()), "unmasked: {rows}");
    // And with a bare Parse/Bind/Execute (no Describe): Sluice asks for the
    // columns itself, and the client sees only what it asked for.
    const BARE: &str = "SELECT mrn FROM patients WHERE id = 1 AND 1 = 1";
    let mut client = RawClient::login(s.sluice.port(), "patients", &s.officer);
    client.send(&[raw::parse("", BARE), raw::bind("", ""), raw::execute(""), raw::sync()].concat());
    let tags: Vec<u8> = client.read_until_ready().iter().map(|(tag, _)| *tag).collect();
    assert_eq!(tags, b"12DCZ", "{}", String::from_utf8_lossy(&tags));
    drop(client);
    // Every outcome is written once Sluice has stopped.
    assert!(s.sluice.terminate().success());

    // Request ids by statement, from the log.
    let out = s.sluice.cli(&["audit", "search", "--kind", "request", "--json"]);
    let mut ids: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let record: Value = serde_json::from_str(line).unwrap();
        let event = &record["event"];
        let event = event.get("request").unwrap_or(event);
        let statement = event["statement"].as_str().unwrap_or_else(|| panic!("{record}")).trim_end_matches(';');
        let principal = event["principal"].as_str().unwrap().to_string();
        ids.entry(statement.to_string()).or_default().push((principal, event["request_id"].as_str().unwrap().into()));
    }
    let by = |statement: &str| -> Vec<(String, String)> {
        ids.get(statement).cloned().unwrap_or_else(|| panic!("no request {statement}: {ids:?}"))
    };
    let bare = by(BARE);
    let expect_a: BTreeSet<_> =
        [by(A), by(BOTH), by(OFFICER), by("SELECT mrn, first_name, last_name FROM patients WHERE id <= 1")]
            .concat()
            .into_iter()
            .collect();
    assert_eq!(expect_a.len(), 5, "psql A, BOTH, OFFICER, psycopg text and binary: {expect_a:?}");
    let expect_a_by_mrn: BTreeSet<_> = expect_a.iter().cloned().chain(bare).collect();
    let expect_b: BTreeSet<_> = [by(B), by(BOTH)].concat().into_iter().collect();

    let (hits, lines) = subject(&s, &["--mrn", &a_mrn], KEY);
    assert_eq!(hits, expect_a_by_mrn, "requests that returned A: {lines:?}");
    assert!(hits.iter().any(|(p, _)| p == "privacy-officer"), "the unmasked reads are listed");
    let officer = lines.iter().find(|l| l["principal"] == "privacy-officer").unwrap();
    assert_eq!(officer["mask_profile"], "unmasked");
    assert_eq!(officer["class"], "MRN");
    assert_eq!(officer["match"], "recorded");
    assert!(lines.iter().all(|l| l["time"].is_string() && l["statement"].is_string()), "{lines:?}");
    let (hits, _) = subject(&s, &["--mrn", &format!("  {} ", a_mrn.to_lowercase())], KEY);
    assert_eq!(hits, expect_a_by_mrn, "case and spacing do not count");
    let (hits, lines) = subject(&s, &["--mrn", &b_mrn], KEY);
    assert_eq!(hits, expect_b, "requests that returned B: {lines:?}");

    // By name: the row's first and last name columns make the whole name.
    // The NAME-less B request is not listed; BOTH and every A read are.
    let (hits, lines) = subject(&s, &["--name", &format!("{a_last}, {}", a_first.to_uppercase())], KEY);
    assert_eq!(hits, expect_a, "by name: {lines:?}");

    // Under another key, nothing matches.
    let (hits, _) = subject(&s, &["--mrn", &a_mrn], "another-key-of-32-bytes-for-hmac");
    assert!(hits.is_empty(), "{hits:?}");

    // The table names the principals and requests.
    let out = sluice_cli_with_env(&["audit", "subject", "--mrn", &a_mrn], &s.sluice.config_path, &[(KEY_ENV, KEY)]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(table.starts_with("TIME") && table.contains("(6 requests returned this patient's data)"), "{table}");
    for (principal, request) in &expect_a_by_mrn {
        assert!(table.lines().any(|l| l.contains(principal.as_str()) && l.contains(request.as_str())), "{table}");
    }
    assert!(!table.contains(&a_mrn), "the identifier is not printed: {table}");

    // Without a key, the command says so rather than finding nothing.
    let out = sluice_cli_with_env(&["audit", "subject", "--mrn", &a_mrn], &s.sluice.config_path, &[]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(KEY_ENV) && !stderr.contains(&a_mrn), "{stderr}");

    // No clear identifier anywhere in the store's files.
    let data = s.sluice.dir.path().join("data");
    let mut checked = 0;
    for entry in std::fs::read_dir(&data).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        checked += bytes.len();
        for clear in [&a_mrn, &b_mrn, &a_last] {
            let found = bytes.windows(clear.len()).any(|w| w == clear.as_bytes());
            assert!(!found, "{clear} is in {}", path.display());
        }
    }
    assert!(checked > 0, "the audit store is in {}", data.display());
}
