//! Inline PHI masking in the real gateway, on the quickstart's demo table:
//! psql (simple query, text) and psycopg (extended query, text and binary)
//! get every PHI column masked by the Safe Harbor profile; a pseudonym
//! profile keeps joins working; a privileged group with `@mask("unmasked")`
//! sees clear values and the audit record says so; upstream errors that
//! echo a value are masked; a biometric column is dropped; a binary column
//! Sluice cannot read is refused.

mod support;

use serde_json::Value;
use std::process::Command;
use support::{ScratchDb, Sluice, api_key, api_key_entry, config, psql, workspace_root};

const POLICIES: &str = r#"
@id("agents-read-patients")
permit (principal in Sluice::Group::"analysts", action == Sluice::Action::"sql:read", resource == Sluice::Connection::"patients");

@id("agents-write-patients")
permit (principal in Sluice::Group::"analysts", action == Sluice::Action::"sql:write", resource == Sluice::Connection::"patients");

@id("researchers-read-pseudonymised")
@mask("research")
permit (principal in Sluice::Group::"researchers", action == Sluice::Action::"sql:read", resource == Sluice::Connection::"patients");

@id("privacy-officers-read-clear")
@mask("unmasked")
permit (principal in Sluice::Group::"privacy-officers", action == Sluice::Action::"sql:read", resource == Sluice::Connection::"patients");
"#;

struct Setup {
    db: ScratchDb,
    sluice: Sluice,
    agent: String,
    researcher: String,
    officer: String,
    _policies: tempfile::TempDir,
}

fn setup() -> Setup {
    let db = ScratchDb::create("sluice_masking");
    db.sql(&std::fs::read_to_string(workspace_root().join("scripts/demo/patients.sql")).unwrap());
    db.sql(
        "CREATE TABLE visits (mrn text, reason text); \
         INSERT INTO visits SELECT mrn, 'follow-up' FROM patients WHERE id <= 3; \
         CREATE TABLE contacts (id int, aliases text[], face_photo bytea); \
         INSERT INTO contacts VALUES (1, ARRAY['Ava Okafor'], '\\x89504e47')",
    );
    let policies = tempfile::tempdir().unwrap();
    std::fs::write(policies.path().join("team.cedar"), POLICIES).unwrap();
    let (agent, agent_hash) = api_key();
    let (researcher, researcher_hash) = api_key();
    let (officer, officer_hash) = api_key();
    let extra = format!(
        r#"
[policy]
dir = "{}"
[masking]
pseudonym_key_env = "SLUICE_TEST_PSEUDONYM_KEY"
[masking.profiles.research]
base = "safe_harbor"
strategies = {{ MRN = "pseudonym", NAME = "pseudonym" }}
{keys}"#,
        policies.path().display(),
        keys = [
            api_key_entry("researcher", "agent", &["researchers"], &researcher_hash),
            api_key_entry("privacy-officer", "human", &["privacy-officers"], &officer_hash),
        ]
        .concat()
    );
    let config = config(&agent_hash, "patients", &db.name, "sqlite://data/audit.db", &extra);
    let sluice = Sluice::start_with_env(&config, &[("SLUICE_TEST_PSEUDONYM_KEY", "a-test-key-of-32-bytes-for-hmac!")]);
    Setup { db, sluice, agent, researcher, officer, _policies: policies }
}

/// psycopg's rows for `sql`, in text and binary format.
fn psycopg_rows(dsn: &str, sql: &str) -> Value {
    let out = Command::new("python3")
        .arg(workspace_root().join("tests/clients/pg_rows.py"))
        .args([dsn, sql])
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!("pg_rows.py printed no JSON ({e}): {stdout}\n{}", String::from_utf8_lossy(&out.stderr))
    })
}

/// The demo rows as stored: (mrn, first_name, last_name, birth_date, zip, phone, diagnosis).
fn clear_rows(db: &ScratchDb) -> Vec<Vec<String>> {
    db.sql("SELECT mrn, first_name, last_name, birth_date, zip, phone, diagnosis FROM patients ORDER BY id LIMIT 5")
        .lines()
        .map(|line| line.split('|').map(str::to_string).collect())
        .collect()
}

/// What Safe Harbor makes of one clear row.
fn safe_harbor(clear: &[String]) -> Vec<String> {
    let zip3 = &clear[4][..3];
    let restricted = [
        "036", "059", "102", "203", "205", "369", "556", "692", "753", "772", "821", "823", "878", "879", "884", "890",
        "893",
    ];
    vec![
        "[MRN]".into(),
        "[NAME]".into(),
        "[NAME]".into(),
        format!("{}-01-01", &clear[3][..4]),
        if restricted.contains(&zip3) { "000".into() } else { zip3.to_string() },
        "[PHONE]".into(),
        clear[6].clone(),
    ]
}

const SELECT: &str =
    "SELECT mrn, first_name, last_name, birth_date, zip, phone, diagnosis FROM patients ORDER BY id LIMIT 5";

#[test]
fn safe_harbor_masks_every_phi_column_for_psql_and_psycopg_in_both_formats() {
    let s = setup();
    let expected: Vec<Vec<String>> = clear_rows(&s.db).iter().map(|row| safe_harbor(row)).collect();

    let (ok, stdout, stderr) = psql(&s.sluice.conninfo("patients", &s.agent), &format!("{SELECT};"));
    assert!(ok, "{stderr}");
    let got: Vec<Vec<String>> = stdout.lines().map(|l| l.split('|').map(str::to_string).collect()).collect();
    assert_eq!(got, expected, "psql (simple query, text)");

    let rows = psycopg_rows(&s.sluice.dsn("patients", &s.agent), SELECT);
    for format in ["text", "binary"] {
        let got: Vec<Vec<String>> = rows[format]
            .as_array()
            .unwrap_or_else(|| panic!("{rows}"))
            .iter()
            .map(|row| row.as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect())
            .collect();
        assert_eq!(got, expected, "psycopg ({format})");
    }

    // The outcome records count what was masked, per class; no value is kept.
    let out = s.sluice.cli(&["audit", "search", "--kind", "outcome", "--json"]);
    let log = String::from_utf8_lossy(&out.stdout);
    let masked: Vec<Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|r| find(&r, "masked").cloned())
        .collect();
    assert_eq!(masked.len(), 3, "psql, psycopg text, psycopg binary: {log}");
    for counts in &masked {
        assert_eq!(
            (counts["MRN"].as_u64(), counts["NAME"].as_u64(), counts["PHONE"].as_u64()),
            (Some(5), Some(10), Some(5))
        );
    }
    assert!(!log.contains("Okafor") && !log.contains("555-"), "no value reaches the audit log");
}

#[test]
fn pseudonyms_still_join_and_unmasked_is_recorded() {
    let s = setup();
    let dsn = s.sluice.dsn("patients", &s.researcher);
    let patients = psycopg_rows(&dsn, "SELECT mrn, last_name FROM patients WHERE id <= 3 ORDER BY id");
    let visits = psycopg_rows(&dsn, "SELECT mrn FROM visits ORDER BY mrn");
    for format in ["text", "binary"] {
        let patient_mrns: Vec<&str> =
            patients[format].as_array().unwrap().iter().map(|r| r[0].as_str().unwrap()).collect();
        let visit_mrns: Vec<&str> = visits[format].as_array().unwrap().iter().map(|r| r[0].as_str().unwrap()).collect();
        assert!(patient_mrns.iter().all(|m| m.starts_with("[MRN:") && m.len() == 22), "{patient_mrns:?}");
        let mut sorted = patient_mrns.clone();
        sorted.sort();
        let mut visit_sorted = visit_mrns.clone();
        visit_sorted.sort();
        assert_eq!(sorted, visit_sorted, "the same patient gets the same pseudonym in both tables ({format})");
        assert!(patients[format][0][1].as_str().unwrap().starts_with("[NAME:"));
    }
    assert_eq!(patients["text"], patients["binary"]);

    // A privacy officer sees the stored values, and the request says so.
    let clear = clear_rows(&s.db);
    let rows = psycopg_rows(&s.sluice.dsn("patients", &s.officer), SELECT);
    assert_eq!(rows["text"][0][0].as_str(), Some(clear[0][0].as_str()));
    assert_eq!(rows["binary"][0][1].as_str(), Some(clear[0][1].as_str()));
    let out = s.sluice.cli(&["audit", "search", "--kind", "request", "--principal", "privacy-officer", "--json"]);
    let log = String::from_utf8_lossy(&out.stdout);
    let profiles: Vec<String> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|r| find(&r, "mask_profile").and_then(Value::as_str).map(str::to_string))
        .collect();
    assert_eq!(profiles, ["unmasked", "unmasked"], "{log}");
}

#[test]
fn errors_echoing_values_are_masked_and_unreadable_binary_columns_refused() {
    let s = setup();
    s.db.sql("CREATE UNIQUE INDEX ON patients (phone)");
    let existing = s.db.sql("SELECT phone FROM patients WHERE id = 1");
    let dsn = s.sluice.conninfo("patients", &s.agent);
    let (ok, _, stderr) = psql(
        &dsn,
        &format!(
            "INSERT INTO patients (mrn, first_name, last_name, birth_date, zip, phone, diagnosis) VALUES ('x', 'a', 'b', '2000-01-01', '02139', '{existing}', 'none');"
        ),
    );
    assert!(!ok);
    assert!(stderr.contains("duplicate key") && stderr.contains("Key (phone)=([PHONE])"), "{stderr}");
    assert!(!stderr.contains(&existing), "{stderr}");

    // A text[] column in binary format: Sluice cannot rewrite it, so it refuses.
    let rows = psycopg_rows(&s.sluice.dsn("patients", &s.agent), "SELECT aliases FROM contacts");
    let error = &rows["error"];
    assert_eq!(error["sqlstate"], "0A000", "{rows}");
    assert!(error["message"].as_str().unwrap().contains("request text format"), "{rows}");
    // A biometric column is dropped in both formats.
    let rows = psycopg_rows(&s.sluice.dsn("patients", &s.agent), "SELECT id, face_photo FROM contacts");
    assert_eq!(rows["text"], serde_json::json!([[1, null]]), "{rows}");
    assert_eq!(rows["binary"], serde_json::json!([[1, null]]), "{rows}");
    // In text format psql gets the array masked.
    let (ok, stdout, stderr) = psql(&dsn, "SELECT aliases FROM contacts;");
    assert!(ok, "{stderr}");
    assert!(!stdout.contains("Okafor"), "{stdout}");
}

/// The value of `key` anywhere in a JSON record (records nest their event).
fn find<'a>(value: &'a Value, key: &str) -> Option<&'a Value> {
    match value {
        Value::Object(map) => map.get(key).or_else(|| map.values().find_map(|v| find(v, key))),
        Value::Array(items) => items.iter().find_map(|v| find(v, key)),
        _ => None,
    }
}
