//! Cedar policy in the real gateway: a principal gets what a permit allows
//! and nothing else, a WHERE-less DELETE is held as "requires approval", and
//! a broken policy file stops startup and `sluice check` with its file and line.
//! The same through psql and psycopg.

mod support;

use support::raw::{self, RawClient};
use support::{ScratchDb, Sluice, api_key, config, sluice_cli};

const POLICIES: &str = r#"
@id("analysts-read-notes")
permit (principal in Sluice::Group::"analysts", action == Sluice::Action::"sql:read", resource == Sluice::Connection::"patients")
when { ["public.notes"].containsAll(context.tables_read) };

@id("analysts-write-notes")
permit (principal in Sluice::Group::"analysts", action == Sluice::Action::"sql:write", resource == Sluice::Connection::"patients")
when { ["public.notes"].containsAll(context.tables_written) && ["public.notes"].containsAll(context.tables_read) };

@id("where-less-write-needs-approval")
@hold("UPDATE or DELETE without WHERE changes every row of the table")
forbid (principal, action, resource) when { context.where_less_write };
"#;

fn start_with_policies(db: &ScratchDb, policies: &str) -> (Sluice, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("team.cedar"), policies).unwrap();
    let (key, hash) = api_key();
    let extra = format!("[policy]\ndir = \"{}\"\n", dir.path().display());
    (Sluice::start(&config(&hash, "patients", &db.name, "sqlite://data/audit.db", &extra)), key, dir)
}

fn run(client: &mut RawClient, sql: &str) -> Vec<(u8, Vec<u8>)> {
    client.send(&raw::query(sql));
    client.read_until_ready()
}

fn error(messages: &[(u8, Vec<u8>)]) -> Option<(String, String)> {
    messages.iter().find(|(t, _)| *t == b'E').map(|(_, b)| (raw::sqlstate(b), raw::error_message(b)))
}

#[test]
fn permits_allow_only_what_they_name_and_where_less_deletes_are_held() {
    let db = ScratchDb::create("sluice_policy");
    db.sql("CREATE TABLE notes (id int, body text); INSERT INTO notes VALUES (1, 'a'), (2, 'b'); CREATE TABLE secrets (x int)");
    let (sluice, key, _policies) = start_with_policies(&db, POLICIES);
    let mut client = RawClient::login(sluice.port(), "patients", &key);

    assert_eq!(error(&run(&mut client, "select count(*) from notes")), None);

    let (code, message) = error(&run(&mut client, "select * from secrets")).expect("reading secrets is refused");
    assert_eq!(code, "42501");
    assert!(message.contains("no policy permits sql:read"), "{message}");

    let (code, message) = error(&run(&mut client, "delete from notes")).expect("a WHERE-less delete is held");
    assert_eq!(code, "42501");
    assert!(message.contains("requires approval") && message.contains("where-less-write-needs-approval"), "{message}");
    assert_eq!(db.sql("select count(*) from notes"), "2", "the held delete ran");

    assert_eq!(error(&run(&mut client, "delete from notes where id = 1")), None);
    assert_eq!(db.sql("select count(*) from notes"), "1");

    let (code, _) = error(&run(&mut client, "insert into secrets values (1)")).expect("writing secrets is refused");
    assert_eq!(code, "42501");
    assert_eq!(db.sql("select count(*) from secrets"), "0");

    // Every decision is in the audit record, with the policies that made it.
    let out = sluice.cli(&["audit", "search", "--kind", "request", "--json"]);
    let records: Vec<serde_json::Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let decision =
        |sql: &str| records.iter().find(|r| r["event"]["statement"] == sql).unwrap()["event"]["decision"].clone();
    assert_eq!(decision("select count(*) from notes")["policies"], serde_json::json!(["analysts-read-notes"]));
    assert_eq!(decision("delete from notes")["verdict"], "hold");
    assert_eq!(decision("select * from secrets")["verdict"], "deny");
}

#[test]
fn a_broken_policy_stops_serve_and_check_naming_file_and_line() {
    let db = ScratchDb::create("sluice_policy");
    let broken = POLICIES
        .replace("context.tables_read) };\n\n@id(\"analysts-write", "context.tabels_read) };\n\n@id(\"analysts-write");
    assert_ne!(broken, POLICIES);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("team.cedar"), &broken).unwrap();
    let (_, hash) = api_key();
    let config_dir = tempfile::tempdir().unwrap();
    let config_path = config_dir.path().join("sluice.toml");
    let extra = format!("[policy]\ndir = \"{}\"\n", dir.path().display());
    std::fs::write(&config_path, config(&hash, "patients", &db.name, "sqlite://data/audit.db", &extra)).unwrap();

    let check = sluice_cli(&["check"], &config_path);
    let stdout = String::from_utf8_lossy(&check.stdout);
    assert!(!check.status.success(), "{stdout}");
    let fail = stdout.lines().find(|l| l.contains("FAIL")).unwrap_or_else(|| panic!("no FAIL line:\n{stdout}"));
    assert!(fail.contains("team.cedar") && fail.contains("line 4") && fail.contains("tabels_read"), "{fail}");

    let serve = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["serve", "--config"])
        .arg(&config_path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&serve.stderr);
    assert!(!serve.status.success());
    assert!(stderr.contains("team.cedar") && stderr.contains("line 4"), "{stderr}");
}

#[test]
fn psql_and_psycopg_get_what_policy_permits_and_named_refusals() {
    let db = ScratchDb::create("sluice_policy");
    db.sql("CREATE TABLE notes (id int, body text); INSERT INTO notes VALUES (1, 'a'), (2, 'b'); CREATE TABLE secrets (x int)");
    let (sluice, key, _policies) = start_with_policies(&db, POLICIES);
    let dsn = sluice.dsn("patients", &key);

    // psql goes on after each refused statement (no ON_ERROR_STOP).
    let out = std::process::Command::new("psql")
        .args(["-X", "-At", "-v", "VERBOSITY=verbose", &dsn])
        .args(["-c", "SELECT count(*) FROM notes", "-c", "SELECT * FROM secrets", "-c", "DELETE FROM notes"])
        .args(["-c", "SELECT 'still' || 'here'"])
        .output()
        .expect("psql runs");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout.lines().collect::<Vec<_>>(), ["2", "stillhere"], "{stderr}");
    assert!(stderr.contains("42501") && stderr.contains("no policy permits sql:read"), "{stderr}");
    assert!(stderr.contains("requires approval") && stderr.contains("where-less-write-needs-approval"), "{stderr}");

    let script = r#"
import sys, psycopg
with psycopg.connect(sys.argv[1], autocommit=True) as conn:
    cur = conn.cursor()
    for sql, params in [("SELECT body FROM notes WHERE id = %s", (1,)), ("SELECT x FROM secrets WHERE x = %s", (1,)),
                        ("DELETE FROM notes", None), ("UPDATE notes SET body = %s WHERE id = %s", ("c", 2))]:
        try:
            cur.execute(sql, params)
            print("ok", cur.fetchall() if cur.description else cur.rowcount)
        except psycopg.Error as e:
            print("error", e.sqlstate, "requires approval" in str(e), "where-less-write-needs-approval" in str(e))
"#;
    let out = std::process::Command::new("python3").args(["-c", script, &dsn]).output().expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        ["ok [('a',)]", "error 42501 False False", "error 42501 True True", "ok 1"],
        "psycopg's view of the policy"
    );
    assert_eq!(db.sql("SELECT string_agg(body, ',' ORDER BY id) FROM notes"), "a,c");
}

#[test]
fn unqualified_names_resolve_to_the_session_schema_until_the_search_path_moves() {
    let db = ScratchDb::create("sluice_policy");
    db.sql("CREATE TABLE notes (id int); INSERT INTO notes VALUES (1); CREATE SCHEMA decoy; CREATE TABLE decoy.notes (secret text)");
    let policies = r#"
@id("analysts-read-public-notes")
permit (principal in Sluice::Group::"analysts", action == Sluice::Action::"sql:read", resource == Sluice::Connection::"patients")
when { ["public.notes"].containsAll(context.tables_read) };

@id("analysts-settings")
permit (principal in Sluice::Group::"analysts", action == Sluice::Action::"sql:session", resource)
when { context.tables.isEmpty() && context.functions.isEmpty() };
"#;
    let (sluice, key, _policies) = start_with_policies(&db, policies);
    let mut client = RawClient::login(sluice.port(), "patients", &key);

    // current_schema() is public: `notes` is public.notes.
    assert_eq!(error(&run(&mut client, "select * from notes")), None);
    // A search path set by the client may put another `notes` first, so
    // from then on unqualified names are not resolved: the allow-list of
    // qualified names no longer matches them.
    assert_eq!(error(&run(&mut client, "set search_path = decoy, public")), None);
    let (code, message) = error(&run(&mut client, "select * from notes")).expect("decoy.notes is not public.notes");
    assert_eq!(code, "42501");
    assert!(message.contains("tables: notes"), "{message}");
    assert_eq!(error(&run(&mut client, "select * from public.notes")), None);
    // In one string the request is decided as a whole, by its most dangerous
    // kind (sql:session here): the settings permit must not carry a read
    // along, which its `tables.isEmpty()` guard sees to.
    let mut fresh = RawClient::login(sluice.port(), "patients", &key);
    let answer = run(&mut fresh, "set search_path = decoy; select * from notes");
    assert_eq!(error(&answer).map(|(code, _)| code).as_deref(), Some("42501"));
}
