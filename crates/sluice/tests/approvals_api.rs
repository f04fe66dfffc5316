//! The reviewer API and `sluice approvals` against a real `sluice serve`:
//! the OpenAPI document, bearer authentication, reviewer-only access, the
//! error statuses and bodies, a held WHERE-less DELETE listed, shown,
//! approved (and another denied) from the command line while psql waits,
//! and a request nobody decides expiring on its own.

mod support;

use serde_json::Value;
use std::process::{Command, Output};
use std::thread;
use std::time::{Duration, Instant};
use support::{ScratchDb, Sluice, api_key, api_key_entry, config};

const POLICIES: &str = r#"
@id("analysts-use-notes")
permit (principal in Sluice::Group::"analysts", action in [Sluice::Action::"sql:read", Sluice::Action::"sql:write"], resource == Sluice::Connection::"patients");

@id("where-less-write-needs-approval")
@hold("UPDATE or DELETE without WHERE changes every row of the table")
forbid (principal, action, resource) when { context.where_less_write };
"#;

const UNKNOWN_ID: &str = "0192f0c1-7c9a-7cc0-8b3e-2f4f0c1d2e3f";

/// Sluice with the standard agent (`test-agent`, group `analysts`) and a
/// reviewer (`lead`, group `reviewers`), `extra` config and `windows` (more
/// `[approvals]` keys); returns (sluice, agent key, reviewer key).
fn start(db: &str, extra: &str, windows: &str) -> (Sluice, String, String) {
    let (agent, agent_hash) = api_key();
    let (reviewer, reviewer_hash) = api_key();
    let extra = format!(
        r#"{extra}
[approvals]
reviewer_groups = ["reviewers"]
{windows}
{lead}"#,
        lead = api_key_entry("lead", "human", &["reviewers"], &reviewer_hash)
    );
    let sluice = Sluice::start(&config(&agent_hash, "patients", db, "sqlite://data/audit.db", &extra));
    (sluice, agent, reviewer)
}

/// `sluice approvals <args> --server <api> --token <token>`.
fn cli(sluice: &Sluice, token: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("approvals")
        .args(args)
        .args(["--server", &format!("http://{}", sluice.api), "--token", token])
        .env_remove("SLUICE_SERVER")
        .env_remove("SLUICE_TOKEN")
        .output()
        .expect("sluice runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}

#[test]
fn the_api_authenticates_reviewers_and_answers_errors_in_json() {
    let (sluice, agent, reviewer) = start("approvals_api_unused", "", "");

    // The OpenAPI document, without a token.
    let (status, headers, doc) = sluice.http("GET", "/api/openapi.json", None, None);
    assert_eq!(status, 200);
    assert!(headers.contains("content-type: application/json"), "{headers}");
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{doc}");
    for path in ["/api/approvals", "/api/approvals/{id}", "/api/approvals/{id}/approve", "/api/approvals/{id}/deny"] {
        assert!(doc["paths"][path].is_object(), "{path} is not in the OpenAPI paths");
    }

    // No token, a bad token: 401 with a challenge and a JSON error.
    let (status, headers, body) = sluice.http("GET", "/api/approvals", None, None);
    assert_eq!(status, 401, "{body}");
    assert!(headers.contains("www-authenticate: bearer"), "{headers}");
    assert!(body["error"].as_str().unwrap().contains("Bearer"), "{body}");
    let (status, headers, body) = sluice.http("GET", "/api/approvals", Some("sk_test_wrong"), None);
    assert_eq!(status, 401, "{body}");
    assert!(headers.contains("www-authenticate: bearer"), "{headers}");
    assert!(body["error"].is_string(), "{body}");
    assert!(!body.to_string().contains("sk_test_wrong"), "the credential is not echoed: {body}");

    // The reviewer lists (nothing is held yet); statuses are checked.
    let (status, _, body) = sluice.http("GET", "/api/approvals", Some(&reviewer), None);
    assert_eq!((status, body.clone()), (200, serde_json::json!({ "items": [] })));
    let (status, _, _) = sluice.http("GET", "/api/approvals?status=pending", Some(&reviewer), None);
    assert_eq!(status, 200);
    let (status, _, body) = sluice.http("GET", "/api/approvals?status=done", Some(&reviewer), None);
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].as_str().unwrap().contains("done"), "{body}");

    // Unknown and malformed ids; decision bodies.
    let show = format!("/api/approvals/{UNKNOWN_ID}");
    let approve = format!("{show}/approve");
    let deny = format!("{show}/deny");
    let (status, _, body) = sluice.http("GET", &show, Some(&reviewer), None);
    assert_eq!(status, 404, "{body}");
    assert!(body["error"].as_str().unwrap().contains(UNKNOWN_ID), "{body}");
    assert_eq!(sluice.http("GET", "/api/approvals/not-a-uuid", Some(&reviewer), None).0, 400);
    assert_eq!(sluice.http("POST", &approve, Some(&reviewer), Some(r#"{"comment": "ok"}"#)).0, 404);
    assert_eq!(sluice.http("POST", &approve, Some(&reviewer), None).0, 404, "the comment is optional");
    let (status, _, body) = sluice.http("POST", &approve, Some(&reviewer), Some("{not json"));
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].is_string(), "{body}");
    let (status, _, body) = sluice.http("POST", &deny, Some(&reviewer), Some(r#"{"comment": " "}"#));
    assert_eq!(status, 400, "a deny needs a comment: {body}");
    assert_eq!(sluice.http("POST", &deny, Some(&reviewer), Some(r#"{"comment": "no"}"#)).0, 404);
    let (status, _, body) = sluice.http("GET", "/api/nothing-here", Some(&reviewer), None);
    assert_eq!(status, 404);
    assert!(body["error"].is_string(), "{body}");

    // The agent is no reviewer: it sees nothing and decides nothing.
    let (status, _, body) = sluice.http("GET", "/api/approvals", Some(&agent), None);
    assert_eq!((status, body), (200, serde_json::json!({ "items": [] })));
    let (status, _, body) = sluice.http("POST", &approve, Some(&agent), Some("{}"));
    assert_eq!(status, 403, "{body}");
    assert!(body["error"].as_str().unwrap().contains("test-agent"), "{body}");
    assert_eq!(sluice.http("GET", &show, Some(&agent), None).0, 403);

    // The command line: an empty list, JSON, a 404 (exit 1), a refused
    // token (exit 1), and a server that is not there (exit 2).
    let out = cli(&sluice, &reviewer, &["list"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "no pending approval requests");
    let out = cli(&sluice, &reviewer, &["list", "--status", "all", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(serde_json::from_str::<Value>(&stdout(&out)).unwrap(), serde_json::json!({ "items": [] }));
    let out = cli(&sluice, &reviewer, &["show", UNKNOWN_ID]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("404") && stderr(&out).contains("no approval request"), "{}", stderr(&out));
    let out = cli(&sluice, "sk_test_wrong", &["list"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("401"), "{}", stderr(&out));
    let out = cli(&sluice, &agent, &["approve", UNKNOWN_ID]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("403"), "{}", stderr(&out));
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["approvals", "list", "--server", "http://127.0.0.1:9"])
        .env("SLUICE_TOKEN", &reviewer)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("cannot reach Sluice at http://127.0.0.1:9"), "{}", stderr(&out));
}

/// psql as the agent in its own thread: (ok, stdout, stderr).
fn agent_psql(sluice: &Sluice, token: &str, sql: &str) -> thread::JoinHandle<(bool, String, String)> {
    let mut cmd = Command::new("psql");
    cmd.args(["-X", "-At", "-v", "ON_ERROR_STOP=1", &sluice.conninfo("patients", token), "-c", sql]);
    thread::spawn(move || {
        let out = cmd.output().expect("psql runs");
        let text = |b: &[u8]| String::from_utf8_lossy(b).trim().to_string();
        (out.status.success(), text(&out.stdout), text(&out.stderr))
    })
}

/// Waits until `sluice approvals list --json` shows one pending request; its id.
fn one_pending(sluice: &Sluice, reviewer: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = cli(sluice, reviewer, &["list", "--json"]);
        assert!(out.status.success(), "{}", stderr(&out));
        let list: Value = serde_json::from_str(&stdout(&out)).unwrap();
        let items = list["items"].as_array().unwrap();
        if let [item] = items.as_slice() {
            return item["id"].as_str().unwrap().to_string();
        }
        assert!(items.is_empty() && Instant::now() < deadline, "{list}\n{}", sluice.log());
        thread::sleep(Duration::from_millis(100));
    }
}

/// A scratch database with `notes` (two rows), and Sluice deciding with
/// [`POLICIES`]; the policy folder lives as long as the returned guard.
fn start_with_hold(windows: &str) -> (ScratchDb, Sluice, String, String, tempfile::TempDir) {
    let db = ScratchDb::create("sluice_approvals_api");
    db.sql("CREATE TABLE notes (id int, body text); INSERT INTO notes VALUES (1, 'a'), (2, 'b')");
    let policies = tempfile::tempdir().unwrap();
    std::fs::write(policies.path().join("team.cedar"), POLICIES).unwrap();
    let policy = format!("[policy]\ndir = \"{}\"\n", policies.path().display());
    let (sluice, agent, reviewer) = start(&db.name, &policy, windows);
    (db, sluice, agent, reviewer, policies)
}

#[test]
fn a_held_delete_is_listed_shown_and_approved_from_the_command_line() {
    let (db, sluice, agent, reviewer, _policies) = start_with_hold("hold_window = \"60s\"");

    let waiting = agent_psql(&sluice, &agent, "DELETE FROM notes");
    let id = one_pending(&sluice, &reviewer);

    let out = cli(&sluice, &reviewer, &["list"]);
    let table = stdout(&out);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 2, "{table}");
    for column in ["ID", "AGE", "PRINCIPAL", "CONNECTION", "STATEMENT", "REASON"] {
        assert!(lines[0].contains(column), "{table}");
    }
    for cell in [id.as_str(), "test-agent", "patients", "DELETE FROM notes", "UPDATE or DELETE without WHERE"] {
        assert!(lines[1].contains(cell), "{cell} missing: {table}");
    }

    let out = cli(&sluice, &reviewer, &["show", &id]);
    let shown = stdout(&out);
    for text in ["status:         pending", "where-less-write-needs-approval", "statement:\n  DELETE FROM notes"] {
        assert!(shown.contains(text), "{text:?} missing:\n{shown}");
    }

    // The agent cannot approve (it is no reviewer, and it asked).
    let out = cli(&sluice, &agent, &["approve", &id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("403"), "{}", stderr(&out));

    let out = cli(&sluice, &reviewer, &["approve", &id, "--comment", "cleanup is fine"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains(&format!("{id}: approved (1 of 1 approvals)")), "{}", stdout(&out));
    let (ok, out, err) = waiting.join().unwrap();
    assert!(ok, "{err}");
    assert_eq!(out, "DELETE 2");
    assert_eq!(db.sql("SELECT count(*) FROM notes"), "0");

    // Decided once; the request was used by the held session.
    let again = cli(&sluice, &reviewer, &["approve", &id]);
    assert_eq!(again.status.code(), Some(1));
    assert!(stderr(&again).contains("409"), "{}", stderr(&again));
    let (status, _, body) = sluice.http("GET", &format!("/api/approvals/{id}"), Some(&reviewer), None);
    assert_eq!(status, 200);
    assert_eq!(body["status"], "used", "{body}");
    assert_eq!(body["decisions"][0]["reviewer"], "lead");
    assert_eq!(body["decisions"][0]["comment"], "cleanup is fine");
    assert_eq!(body["classification"]["kind"], "write", "{body}");

    // A second held statement, denied from the command line with a comment.
    db.sql("INSERT INTO notes VALUES (3, 'c')");
    let waiting = agent_psql(&sluice, &agent, "UPDATE notes SET body = 'x'");
    let id = one_pending(&sluice, &reviewer);
    let out = cli(&sluice, &reviewer, &["deny", &id, "--comment", "not during clinic hours"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains(&format!("{id}: denied")), "{}", stdout(&out));
    let (ok, _, err) = waiting.join().unwrap();
    assert!(!ok);
    assert!(err.contains("not during clinic hours"), "{err}");
    assert_eq!(db.sql("SELECT body FROM notes"), "c");
    let out = cli(&sluice, &reviewer, &["list", "--status", "denied"]);
    assert!(stdout(&out).contains(&id), "{}", stdout(&out));
}

#[test]
fn an_undecided_request_expires_and_can_no_longer_be_decided() {
    let (db, sluice, agent, reviewer, _policies) = start_with_hold("hold_window = \"1s\"\nexpires_after = \"2s\"");
    let (ok, _, err) = agent_psql(&sluice, &agent, "DELETE FROM notes").join().unwrap();
    assert!(!ok && err.contains("approval pending"), "{err}");
    let deadline = Instant::now() + Duration::from_secs(10);
    let id = loop {
        let out = cli(&sluice, &reviewer, &["list", "--status", "expired", "--json"]);
        let list: Value = serde_json::from_str(&stdout(&out)).unwrap();
        if let Some(id) = list["items"][0]["id"].as_str() {
            break id.to_string();
        }
        assert!(Instant::now() < deadline, "not expired in time: {list}");
        thread::sleep(Duration::from_millis(200));
    };
    let out = cli(&sluice, &reviewer, &["approve", &id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("409"), "{}", stderr(&out));
    assert_eq!(db.sql("SELECT count(*) FROM notes"), "2");
}
