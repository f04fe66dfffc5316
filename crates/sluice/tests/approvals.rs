//! Just-in-time approval in the real gateway, with psql as the agent and the
//! reviewer API (curl) as the reviewer: a held WHERE-less DELETE waits and
//! runs in the same session once approved; a denial carries its comment; an
//! approval after the window is a one-time grant for exactly that statement
//! from exactly that agent; nobody approves their own request; a quorum
//! needs distinct reviewers; pending requests survive a restart; webhooks
//! announce holds and blocks, signed, and every delivery is recorded.

mod support;

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};
use support::{ScratchDb, Sluice, api_key, api_key_entry, config, psql, sqlite};

const POLICIES: &str = r#"
@id("agents-use-notes")
permit (principal in Sluice::Group::"analysts", action in [Sluice::Action::"sql:read", Sluice::Action::"sql:write"], resource == Sluice::Connection::"patients");

@id("no-ddl-for-agents")
@reason("agents do not change the schema")
forbid (principal, action == Sluice::Action::"sql:ddl", resource);

@id("where-less-write-needs-approval")
@hold("UPDATE or DELETE without WHERE changes every row of the table")
forbid (principal, action, resource) when { context.where_less_write };
"#;

struct Setup {
    db: ScratchDb,
    sluice: Sluice,
    agent: String,
    other_agent: String,
    reviewer: String,
    second_reviewer: String,
    _policies: tempfile::TempDir,
    config: String,
}

fn setup(hold_window: &str, approvals_required: u32) -> Setup {
    setup_with(&format!("hold_window = \"{hold_window}\"\napprovals_required = {approvals_required}"), "")
}

/// `approvals`: lines of the `[approvals]` table; `more`: tables after it.
fn setup_with(approvals: &str, more: &str) -> Setup {
    let db = ScratchDb::create("sluice_approvals");
    db.sql(
        "CREATE TABLE notes (id int, body text); INSERT INTO notes SELECT g, 'n' || g FROM generate_series(1, 3) g; \
         ANALYZE notes",
    );
    let policies = tempfile::tempdir().unwrap();
    std::fs::write(policies.path().join("team.cedar"), POLICIES).unwrap();
    let (agent, agent_hash) = api_key();
    let (other_agent, other_hash) = api_key();
    let (reviewer, reviewer_hash) = api_key();
    let (second_reviewer, second_hash) = api_key();
    let store = format!("sqlite://{}", policies.path().join("audit.db").display());
    let extra = format!(
        r#"
[policy]
dir = "{dir}"
[approvals]
reviewer_groups = ["reviewers"]
{approvals}
{keys}{more}
"#,
        dir = policies.path().display(),
        keys = [
            api_key_entry("other-agent", "agent", &["analysts"], &other_hash),
            api_key_entry("lead", "human", &["reviewers", "analysts"], &reviewer_hash),
            api_key_entry("second-lead", "human", &["reviewers"], &second_hash),
        ]
        .concat()
    );
    let config = config(&agent_hash, "patients", &db.name, &store, &extra);
    let sluice = Sluice::start(&config);
    Setup { db, sluice, agent, other_agent, reviewer, second_reviewer, _policies: policies, config }
}

/// A reviewer's call to the API: (HTTP status, JSON body).
fn api(sluice: &Sluice, token: &str, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
    let (status, _, body) = sluice.http(method, path, Some(token), body);
    (status, body)
}

/// Waits for the pending approval requests to number `n`; returns their ids.
fn pending(sluice: &Sluice, token: &str, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = api(sluice, token, "GET", "/api/approvals?status=pending", None);
        assert_eq!(status, 200, "{body}");
        let ids: Vec<String> =
            body["items"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().to_string()).collect();
        if ids.len() >= n || Instant::now() > deadline {
            assert_eq!(ids.len(), n, "{body}");
            return ids;
        }
        thread::sleep(Duration::from_millis(100));
    }
}

fn decide(s: &Setup, token: &str, id: &str, ruling: &str, comment: &str) -> (u16, Value) {
    let body = serde_json::json!({ "comment": comment }).to_string();
    api(&s.sluice, token, "POST", &format!("/api/approvals/{id}/{ruling}"), Some(&body))
}

/// psql as the agent, in its own thread, one session running each of
/// `statements` in turn: (ok, stdout, stderr).
fn agent_psql(s: &Setup, token: &str, statements: &[&str]) -> thread::JoinHandle<(bool, String, String)> {
    let mut cmd = Command::new("psql");
    cmd.args(["-X", "-At", "-v", "ON_ERROR_STOP=1", &s.sluice.conninfo("patients", token)]);
    for sql in statements {
        cmd.args(["-c", sql]);
    }
    thread::spawn(move || {
        let out = cmd.output().expect("psql runs");
        let text = |b: &[u8]| String::from_utf8_lossy(b).trim().to_string();
        (out.status.success(), text(&out.stdout), text(&out.stderr))
    })
}

#[test]
fn a_held_delete_waits_and_runs_in_the_same_session_once_approved() {
    let s = setup("60s", 1);
    // The same psql session runs a read, the held delete, and a read after it.
    let waiting =
        agent_psql(&s, &s.agent, &["SELECT count(*) FROM notes", "DELETE FROM notes", "SELECT count(*) FROM notes"]);
    let id = pending(&s.sluice, &s.reviewer, 1).remove(0);
    let (status, shown) = api(&s.sluice, &s.reviewer, "GET", &format!("/api/approvals/{id}"), None);
    assert_eq!(status, 200);
    assert_eq!(shown["statement"], "DELETE FROM notes");
    assert_eq!(shown["principal"]["subject"], "test-agent");
    assert_eq!(shown["row_estimate"], 3, "EXPLAIN's estimate, for the reviewer: {shown}");
    let (status, body) = decide(&s, &s.reviewer, &id, "approve", "ok, cleanup");
    assert_eq!(status, 200, "{body}");
    let (ok, stdout, stderr) = waiting.join().unwrap();
    assert!(ok, "{stderr}");
    assert_eq!(stdout.lines().collect::<Vec<_>>(), ["3", "DELETE 3", "0"], "{stdout}");
    assert!(
        stderr.contains(&id) && stderr.contains("requires approval"),
        "the client was told what it waits on: {stderr}"
    );
    assert!(stderr.contains("estimates it touches 3 rows"), "{stderr}");
    assert_eq!(s.db.sql("SELECT count(*) FROM notes"), "0");
    let (_, shown) = api(&s.sluice, &s.reviewer, "GET", &format!("/api/approvals/{id}"), None);
    assert_eq!(shown["status"], "used", "the approval ran once: {shown}");

    // Who approved, and which grant ran it, are in the audit log.
    let out = s.sluice.cli(&["audit", "search", "--kind", "approval", "--json"]);
    let log = String::from_utf8_lossy(&out.stdout);
    for action in ["\"requested\"", "\"approve\"", "\"granted\"", "\"row_estimate\":3"] {
        assert!(log.contains(action), "{action} missing: {log}");
    }
    assert!(log.contains("\"lead\""), "{log}");
}

#[test]
fn a_denied_request_gets_the_comment() {
    let s = setup("60s", 1);
    let waiting = agent_psql(&s, &s.agent, &["DELETE FROM notes"]);
    let id = pending(&s.sluice, &s.reviewer, 1).remove(0);
    let (status, _) = decide(&s, &s.reviewer, &id, "deny", "not during clinic hours");
    assert_eq!(status, 200);
    let (ok, _, stderr) = waiting.join().unwrap();
    assert!(!ok);
    assert!(stderr.contains("denied by lead: not during clinic hours"), "{stderr}");
    assert_eq!(s.db.sql("SELECT count(*) FROM notes"), "3");
}

#[test]
fn an_approval_after_the_window_is_a_one_time_grant_for_that_statement_and_agent() {
    let s = setup("1s", 1);
    let dsn = s.sluice.conninfo("patients", &s.agent);
    let (ok, _, stderr) = psql(&dsn, "DELETE FROM notes;");
    assert!(!ok);
    assert!(stderr.contains("approval pending: "), "{stderr}");
    let id = pending(&s.sluice, &s.reviewer, 1).remove(0);
    assert!(stderr.contains(&id), "{stderr}");
    let (status, body) = decide(&s, &s.reviewer, &id, "approve", "");
    assert_eq!(status, 200, "{body}");

    // A changed statement, or another agent's identical one, does not match.
    let (ok, _, stderr) = psql(&dsn, "DELETE FROM  notes;");
    assert!(!ok && stderr.contains("approval pending"), "{stderr}");
    let (ok, _, stderr) = psql(&s.sluice.conninfo("patients", &s.other_agent), "DELETE FROM notes;");
    assert!(!ok && stderr.contains("approval pending"), "{stderr}");
    assert_eq!(s.db.sql("SELECT count(*) FROM notes"), "3");

    // The approved statement runs once; the second time it is held again.
    let (ok, stdout, stderr) = psql(&dsn, "DELETE FROM notes;");
    assert!(ok, "{stderr}");
    assert_eq!(stdout, "DELETE 3");
    s.db.sql("INSERT INTO notes VALUES (9, 'again')");
    let (ok, _, stderr) = psql(&dsn, "DELETE FROM notes;");
    assert!(!ok && stderr.contains("approval pending"), "{stderr}");
    assert_eq!(s.db.sql("SELECT count(*) FROM notes"), "1");
}

#[test]
fn nobody_approves_their_own_request_and_a_quorum_needs_distinct_reviewers() {
    let s = setup("1s", 2);
    // The lead is also an analyst: their own held delete.
    let (ok, _, _) = psql(&s.sluice.conninfo("patients", &s.reviewer), "DELETE FROM notes;");
    assert!(!ok);
    let own = pending(&s.sluice, &s.reviewer, 1).remove(0);
    let (status, body) = decide(&s, &s.reviewer, &own, "approve", "");
    assert_eq!(status, 403, "self-approval: {body}");

    let (ok, _, _) = psql(&s.sluice.conninfo("patients", &s.agent), "DELETE FROM notes;");
    assert!(!ok);
    let ids = pending(&s.sluice, &s.reviewer, 2);
    let theirs = ids.iter().find(|id| **id != own).unwrap().clone();
    let (status, body) = decide(&s, &s.reviewer, &theirs, "approve", "");
    assert_eq!((status, body["status"].as_str()), (200, Some("pending")), "one of two approvals: {body}");
    let (status, _) = decide(&s, &s.reviewer, &theirs, "approve", "");
    assert_eq!(status, 409, "the same reviewer cannot count twice");
    let (status, body) = decide(&s, &s.second_reviewer, &theirs, "approve", "");
    assert_eq!((status, body["status"].as_str()), (200, Some("approved")), "{body}");
    let (ok, stdout, stderr) = psql(&s.sluice.conninfo("patients", &s.agent), "DELETE FROM notes;");
    assert!(ok, "{stderr}");
    assert_eq!(stdout, "DELETE 3");
}

#[test]
fn pending_requests_survive_a_restart() {
    let mut s = setup("1s", 1);
    let (ok, _, _) = psql(&s.sluice.conninfo("patients", &s.agent), "DELETE FROM notes;");
    assert!(!ok);
    let id = pending(&s.sluice, &s.reviewer, 1).remove(0);
    s.sluice.terminate();
    s.sluice = Sluice::start(&s.config);
    assert_eq!(pending(&s.sluice, &s.reviewer, 1), std::slice::from_ref(&id));
    let (status, _) = decide(&s, &s.reviewer, &id, "approve", "after the restart");
    assert_eq!(status, 200);
    let (ok, stdout, stderr) = psql(&s.sluice.conninfo("patients", &s.agent), "DELETE FROM notes;");
    assert!(ok, "{stderr}");
    assert_eq!(stdout, "DELETE 3");
}

/// One POST a webhook receiver got: headers (lower-case names) and body.
type Delivery = (Vec<(String, String)>, String);

/// A webhook receiver on 127.0.0.1: answers 200 to every POST and passes
/// each on.
fn receiver() -> (String, mpsc::Receiver<Delivery>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream);
            let mut headers = Vec::new();
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line.trim_end() != "" {
                if let Some((name, value)) = line.trim_end().split_once(": ") {
                    headers.push((name.to_ascii_lowercase(), value.to_string()));
                }
                line.clear();
            }
            let len = headers.iter().find(|(n, _)| n == "content-length").map_or(0, |(_, v)| v.parse().unwrap());
            let mut body = vec![0; len];
            if reader.read_exact(&mut body).is_err() {
                continue;
            }
            let mut stream = reader.into_inner();
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            let _ = tx.send((headers, String::from_utf8_lossy(&body).into_owned()));
        }
    });
    (url, rx)
}

#[test]
fn webhooks_announce_holds_and_blocks_signed_and_within_a_second() {
    let (url, deliveries) = receiver();
    let webhook = format!(
        "[[alerts.webhooks]]\nurl = \"{url}\"\nsecret = \"webhook-secret\"\nevents = [\"approval.requested\", \"request.blocked\"]\n"
    );
    let s = setup_with("hold_window = \"1s\"", &webhook);
    let dsn = s.sluice.conninfo("patients", &s.agent);

    let (ok, _, stderr) = psql(&dsn, "DROP TABLE notes");
    assert!(!ok && stderr.contains("no-ddl-for-agents"), "{stderr}");
    let (headers, body) = deliveries.recv_timeout(Duration::from_secs(10)).expect("request.blocked delivered");
    let received = chrono::Utc::now();
    let event: Value = serde_json::from_str(&body).unwrap();
    let raised: chrono::DateTime<chrono::Utc> = event["time"].as_str().unwrap().parse().unwrap();
    assert!(received - raised < chrono::Duration::seconds(1), "an alert arrives within a second of its event");
    assert_eq!(
        (event["type"].as_str(), event["policy"].as_str()),
        (Some("request.blocked"), Some("no-ddl-for-agents"))
    );
    assert_eq!(event["statement"], "DROP TABLE notes");
    // The signature is HMAC-SHA256 over "<timestamp>.<body>", checked independently.
    let header = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone()).unwrap();
    let signed = format!("{}.{body}", header("x-sluice-timestamp"));
    let out = Command::new("openssl")
        .args(["dgst", "-sha256", "-hmac", "webhook-secret", "-r"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            child.stdin.take().unwrap().write_all(signed.as_bytes())?;
            child.wait_with_output()
        })
        .expect("openssl runs");
    let digest = String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap().to_string();
    assert_eq!(header("x-sluice-signature"), format!("sha256={digest}"));

    let (ok, _, _) = psql(&dsn, "DELETE FROM notes");
    assert!(!ok);
    let (_, body) = deliveries.recv_timeout(Duration::from_secs(10)).expect("approval.requested delivered");
    let event: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(event["type"], "approval.requested");
    assert_eq!(event["statement"], "DELETE FROM notes");
    assert!(event["link"].as_str().unwrap().contains("/api/approvals/"), "{event}");

    // Each delivery is in the audit log.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = s.sluice.cli(&["audit", "search", "--kind", "alert_delivery", "--json"]);
        let log = String::from_utf8_lossy(&out.stdout);
        if log.matches("\"delivered\"").count() == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "{log}");
        thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn psycopg_waits_over_the_extended_protocol_too() {
    let s = setup("60s", 1);
    let dsn = s.sluice.dsn("patients", &s.agent);
    let script = "import psycopg, sys\n\
                  with psycopg.connect(sys.argv[1], autocommit=True) as conn:\n\
                  \x20   notices = []\n\
                  \x20   conn.add_notice_handler(lambda d: notices.append(d.message_primary))\n\
                  \x20   cur = conn.execute('DELETE FROM notes')\n\
                  \x20   print(cur.rowcount, cur.statusmessage, len(notices))\n";
    let waiting = thread::spawn(move || Command::new("python3").args(["-c", script, &dsn]).output().unwrap());
    let id = pending(&s.sluice, &s.reviewer, 1).remove(0);
    let (status, _) = decide(&s, &s.reviewer, &id, "approve", "");
    assert_eq!(status, 200);
    let out = waiting.join().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout.trim(), "3 DELETE 3 1", "rows, tag, and the one notice that said it waits");
}

#[test]
fn expiry_and_an_unwritable_audit_store_raise_alerts() {
    let (url, deliveries) = receiver();
    let webhook =
        format!("[[alerts.webhooks]]\nurl = \"{url}\"\nevents = [\"approval.expired\", \"audit.store_unavailable\"]\n");
    let s = setup_with("hold_window = \"1s\"\nexpires_after = \"2s\"", &webhook);
    let dsn = s.sluice.conninfo("patients", &s.agent);

    // Nobody decides: the request expires, and the alert says which.
    let (ok, _, _) = psql(&dsn, "DELETE FROM notes");
    assert!(!ok);
    let id = api(&s.sluice, &s.reviewer, "GET", "/api/approvals?status=all", None).1["items"][0]["id"].clone();
    let (_, body) = deliveries.recv_timeout(Duration::from_secs(15)).expect("approval.expired delivered");
    let event: Value = serde_json::from_str(&body).unwrap();
    assert_eq!((event["type"].as_str(), &event["approval_id"]), (Some("approval.expired"), &id), "{event}");

    // The audit store refuses writes: the session is refused (53300), and
    // the operator hears of it.
    let store = s._policies.path().join("audit.db");
    let block =
        "CREATE TRIGGER block BEFORE INSERT ON audit_records BEGIN SELECT RAISE(ABORT, 'disk is read-only'); END;";
    sqlite(&store, block);
    let (ok, _, stderr) = psql(&dsn, "INSERT INTO notes VALUES (7, 'x')");
    assert!(!ok && stderr.contains("disk is read-only"), "{stderr}");
    let (_, body) = deliveries.recv_timeout(Duration::from_secs(10)).expect("audit.store_unavailable delivered");
    let event: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(event["type"], "audit.store_unavailable", "{event}");
    assert!(event["error"].as_str().unwrap().contains("disk is read-only"), "{event}");
    sqlite(&store, "DROP TRIGGER block;");
}
