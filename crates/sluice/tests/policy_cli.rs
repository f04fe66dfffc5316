//! `sluice policy test` and `sluice policy explain` against the built binary:
//! exit codes 0/1/2, the report's rows and summary, errors naming the case,
//! and the config's environments and `[policy.groups]` reaching decisions.

mod support;

use std::path::PathBuf;
use std::process::Output;
use support::sluice_cli;

const POLICIES: &str = r#"
@id("readers-read-notes")
permit (principal in Sluice::Group::"readers", action == Sluice::Action::"sql:read", resource == Sluice::Connection::"patients")
when { ["notes"].containsAll(context.tables_read) };

@id("analysts-write-staging")
permit (principal in Sluice::Group::"analysts", action == Sluice::Action::"sql:write", resource)
when { resource.environment == "staging" };

@id("clinic-read-visits-masked")
@mask("phi")
@budget("rows_per_statement=100, rows_per_hour=1_000")
permit (principal in Sluice::Group::"clinic", action == Sluice::Action::"sql:read", resource == Sluice::Connection::"patients")
when { ["visits"].containsAll(context.tables_read) };

@id("where-less-write-needs-approval")
@hold("UPDATE or DELETE without WHERE changes every row of the table")
forbid (principal, action, resource) when { context.where_less_write };

@id("no-night-writes")
@reason("no writes between 22:00 and 06:00 UTC")
@remedy("retry during the day")
forbid (principal, action == Sluice::Action::"sql:write", resource)
when { context.hour >= 22 || context.hour < 6 };
"#;

const CASES: &str = r#"
[defaults]
connection = "patients"
principal = { subject = "bot-1", kind = "agent", groups = ["analysts"] }
time = "2026-11-04T10:00:00Z"

[[case]]
name = "analysts read notes via readers"
sql = "select count(*) from notes"
expect = "allow"
policies = ["readers-read-notes"]

[[case]]
name = "secrets are not readable"
sql = "select * from secrets"
expect = "deny"

[[case]]
name = "writes on staging"
connection = "scratch"
sql = "insert into notes values (1, 'x')"
expect = "allow"
policies = ["analysts-write-staging"]

[[case]]
name = "writes on production"
sql = "insert into notes values (1, 'x')"
expect = "deny"

[[case]]
name = "where-less delete on staging is held"
connection = "scratch"
sql = "delete from notes"
expect = "hold"
policies = ["where-less-write-needs-approval", "analysts-write-staging"]

[[case]]
name = "night writes"
connection = "scratch"
sql = "update notes set body = 'y' where id = 1"
time = "2026-11-04T23:30:00Z"
client_ip = "10.1.2.3"
expect = "deny"
policies = ["no-night-writes"]
"#;

/// A policy folder, a config naming it, and a cases file, in a temp dir.
struct Fixture {
    dir: tempfile::TempDir,
    config: PathBuf,
    cases: PathBuf,
}

impl Fixture {
    /// `policy` goes under [policy] (after `dir`); `scratch_env` is the
    /// `environment` line of the `scratch` connection, if any.
    fn new(policy: &str, scratch_env: Option<&str>) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("policies")).unwrap();
        std::fs::write(dir.path().join("policies/team.cedar"), POLICIES).unwrap();
        let fixture = Fixture { config: dir.path().join("sluice.toml"), cases: dir.path().join("cases.toml"), dir };
        fixture.write_config(&format!("[policy]\ndir = \"policies\"\n{policy}"), scratch_env);
        std::fs::write(&fixture.cases, CASES).unwrap();
        fixture
    }

    fn write_config(&self, policy: &str, scratch_env: Option<&str>) {
        let env = scratch_env.map(|e| format!("environment = \"{e}\"")).unwrap_or_default();
        let text = format!(
            r#"
[listeners]
postgres = "127.0.0.1:0"
[storage]
url = "sqlite://data/audit.db"
{policy}
[[connections]]
name = "patients"
kind = "postgres"
upstream = "127.0.0.1:5432"
database = "test"
user = "root"
[[connections]]
name = "scratch"
kind = "postgres"
upstream = "127.0.0.1:5432"
database = "scratch"
user = "root"
{env}
"#
        );
        std::fs::write(&self.config, text).unwrap();
    }

    /// The standard fixture: scratch is staging, analysts are readers.
    fn standard() -> Fixture {
        Fixture::new("[policy.groups]\nanalysts = [\"readers\"]\n", Some("staging"))
    }

    fn test(&self) -> Output {
        sluice_cli(&["policy", "test", self.cases.to_str().unwrap()], &self.config)
    }

    /// `policy explain`, at 10:00 UTC unless `args` give a `--time`, so
    /// `no-night-writes` applies only where a test asks for it.
    fn explain(&self, args: &[&str]) -> Output {
        let mut all = vec!["policy", "explain"];
        if !args.contains(&"--time") {
            all.extend(["--time", "2026-11-04T10:00:00Z"]);
        }
        all.extend_from_slice(args);
        sluice_cli(&all, &self.config)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

fn text(out: &Output) -> (Option<i32>, String, String) {
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

/// The value of an `explain` line (`  tables read   visits` → `visits`).
fn field<'a>(stdout: &'a str, label: &str) -> &'a str {
    let line = stdout
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("{label} ")))
        .unwrap_or_else(|| panic!("no `{label}` in:\n{stdout}"));
    line.trim_start()[label.len()..].trim()
}

/// The report row of a case: its first line naming it.
fn row<'a>(stdout: &'a str, case: &str) -> &'a str {
    stdout.lines().find(|l| l.contains(case)).unwrap_or_else(|| panic!("no row for `{case}`:\n{stdout}"))
}

#[test]
fn all_cases_pass_exit_0_with_a_row_each_and_the_summary() {
    let fixture = Fixture::standard();
    let (code, stdout, stderr) = text(&fixture.test());
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert_eq!(stdout.lines().last(), Some("6 passed, 0 failed"), "{stdout}");
    let header = stdout.lines().next().unwrap();
    for column in ["case", "expected", "got", "policies"] {
        assert!(header.contains(column), "{header}");
    }
    let held = row(&stdout, "where-less delete on staging is held");
    assert!(held.starts_with("ok") && held.contains("hold"), "{held}");
    assert!(held.contains("where-less-write-needs-approval, analysts-write-staging"), "{held}");
    assert!(row(&stdout, "analysts read notes").contains("readers-read-notes"), "{stdout}");
}

#[test]
fn a_wrong_expectation_exits_1_and_names_the_failing_case() {
    let fixture = Fixture::standard();
    let wrong = CASES
        .replacen(
            "sql = \"select * from secrets\"\nexpect = \"deny\"",
            "sql = \"select * from secrets\"\nexpect = \"allow\"",
            1,
        )
        .replacen("policies = [\"readers-read-notes\"]", "policies = [\"some-other-policy\"]", 1);
    assert_ne!(wrong, CASES);
    std::fs::write(&fixture.cases, wrong).unwrap();
    let (code, stdout, stderr) = text(&fixture.test());
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    assert_eq!(stdout.lines().last(), Some("4 passed, 2 failed"), "{stdout}");
    let failed = row(&stdout, "secrets are not readable");
    assert!(failed.starts_with("FAIL") && failed.contains("allow") && failed.contains("deny"), "{failed}");
    // The line under a failure says why, with the decision's reason.
    let why = stdout.lines().skip_while(|l| !l.contains("secrets are not readable")).nth(1).unwrap();
    assert!(why.contains("expected allow, got deny") && why.contains("no policy permits sql:read"), "{why}");
    assert!(stdout.contains("expected policies [some-other-policy], got [readers-read-notes]"), "{stdout}");
    assert!(row(&stdout, "writes on staging").starts_with("ok"), "{stdout}");
}

#[test]
fn a_broken_cases_file_exits_2_naming_the_case() {
    let fixture = Fixture::standard();
    std::fs::write(&fixture.cases, CASES.replacen("expect = \"hold\"", "expect = \"hold\"\nexpected = \"hold\"", 1))
        .unwrap();
    let (code, stdout, stderr) = text(&fixture.test());
    assert_eq!(code, Some(2), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("cases.toml")
            && stderr.contains("case `where-less delete on staging is held`")
            && stderr.contains("unknown field `expected`"),
        "{stderr}"
    );
    assert!(stdout.is_empty(), "nothing is run from a broken file: {stdout}");

    std::fs::write(&fixture.cases, CASES.replacen("connection = \"scratch\"", "connection = \"scrach\"", 1)).unwrap();
    let (code, _, stderr) = text(&fixture.test());
    assert_eq!(code, Some(2));
    assert!(stderr.contains("case `writes on staging`") && stderr.contains("`scrach` is not configured"), "{stderr}");

    let missing = fixture.path("missing.toml");
    let (code, _, stderr) = text(&sluice_cli(&["policy", "test", missing.to_str().unwrap()], &fixture.config));
    assert_eq!(code, Some(2));
    assert!(stderr.contains("missing.toml"), "{stderr}");
}

#[test]
fn environment_from_config_changes_the_decision() {
    let fixture = Fixture::standard();
    assert_eq!(fixture.test().status.code(), Some(0));
    // Without `environment`, scratch is production: the staging permit no longer applies.
    fixture.write_config("[policy]\ndir = \"policies\"\n[policy.groups]\nanalysts = [\"readers\"]\n", None);
    let (code, stdout, _) = text(&fixture.test());
    assert_eq!(code, Some(1), "{stdout}");
    let staging = row(&stdout, "writes on staging");
    assert!(staging.starts_with("FAIL") && staging.contains("deny"), "{staging}");

    let args =
        ["--principal", "bot-1", "--groups", "analysts", "--connection", "scratch", "insert into notes values (1)"];
    let (code, stdout, _) = text(&fixture.explain(&args));
    assert_eq!(code, Some(0));
    assert_eq!(
        (field(&stdout, "connection"), field(&stdout, "decision")),
        ("scratch (environment production)", "deny")
    );
    fixture.write_config("[policy]\ndir = \"policies\"\n", Some("staging"));
    let (_, stdout, _) = text(&fixture.explain(&args));
    assert_eq!((field(&stdout, "connection"), field(&stdout, "decision")), ("scratch (environment staging)", "allow"));
    assert_eq!(field(&stdout, "policies"), "analysts-write-staging");
}

#[test]
fn group_parents_from_config_grant_through_the_parent() {
    let fixture = Fixture::standard();
    let (code, stdout, _) = text(&fixture.test());
    assert_eq!(code, Some(0), "{stdout}");
    fixture.write_config("[policy]\ndir = \"policies\"\n", Some("staging"));
    let (code, stdout, _) = text(&fixture.test());
    assert_eq!(code, Some(1), "{stdout}");
    assert!(row(&stdout, "analysts read notes via readers").starts_with("FAIL"), "{stdout}");
    assert_eq!(stdout.lines().last(), Some("5 passed, 1 failed"), "{stdout}");
}

#[test]
fn explain_prints_the_classification_and_the_deciding_policies() {
    let fixture = Fixture::standard();
    let (code, stdout, stderr) = text(&fixture.explain(&[
        "--principal",
        "nurse-7",
        "--kind",
        "human",
        "--groups",
        "clinic,staff",
        "--connection",
        "patients",
        "select v.id, upper(v.note) from visits v where v.id = 1",
    ]));
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    for (label, want) in [
        ("principal", "human nurse-7 (clinic, staff; issuer api-key)"),
        ("kind", "read (action sql:read)"),
        ("statements", "1"),
        ("tables read", "visits"),
        ("tables written", "-"),
        ("functions", "upper"),
        ("flags", "-"),
        ("decision", "allow"),
        ("policies", "clinic-read-visits-masked"),
        ("mask profile", "phi"),
        ("budget", "rows_per_statement=100, rows_per_hour=1000"),
    ] {
        assert_eq!(field(&stdout, label), want, "{stdout}");
    }
    assert!(!stdout.contains("reason"), "an allow has no reason: {stdout}");
    let fingerprint = field(&stdout, "fingerprint");
    assert!(fingerprint.len() >= 8 && fingerprint.chars().all(|c| c.is_ascii_hexdigit()), "{stdout}");

    let (code, stdout, _) = text(&fixture.explain(&[
        "--principal",
        "bot-1",
        "--groups",
        "analysts",
        "--connection",
        "scratch",
        "--time",
        "2026-11-04T23:00:00Z",
        "--json",
        "delete from notes where id = 1",
    ]));
    assert_eq!(code, Some(0));
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["classification"]["kind"], "write");
    assert_eq!(report["classification"]["tables_written"], serde_json::json!(["notes"]));
    assert_eq!(report["action"], "sql:write");
    assert_eq!(report["environment"], "staging");
    assert_eq!(report["principal"]["groups"], serde_json::json!(["analysts"]));
    assert_eq!(report["decision"]["verdict"], "deny");
    assert_eq!(report["decision"]["policies"], serde_json::json!(["no-night-writes"]));
    assert_eq!(report["decision"]["reason"], "no writes between 22:00 and 06:00 UTC");
    assert_eq!(report["decision"]["remedy"], "retry during the day");

    let (code, stdout, _) =
        text(&fixture.explain(&["--principal", "bot-1", "--connection", "patients", "select 1; drop table notes"]));
    assert_eq!(code, Some(0));
    assert_eq!((field(&stdout, "statements"), field(&stdout, "flags")), ("2", "multi_statement"), "{stdout}");
    assert_eq!(
        (field(&stdout, "kind"), field(&stdout, "decision"), field(&stdout, "policies")),
        ("ddl (action sql:ddl)", "deny", "-")
    );
    assert!(field(&stdout, "reason").contains("no policy permits sql:ddl"), "{stdout}");
    assert!(field(&stdout, "remedy").starts_with("ask an operator"), "{stdout}");
}

#[test]
fn bad_config_policy_or_arguments_exit_2_with_the_message() {
    let fixture = Fixture::standard();
    let explain_args = ["--principal", "bot-1", "--connection", "patients", "select 1"];

    fixture.write_config("", None);
    for out in [fixture.test(), fixture.explain(&explain_args)] {
        let (code, _, stderr) = text(&out);
        assert_eq!(code, Some(2), "{stderr}");
        assert!(stderr.contains("sluice.toml") && stderr.contains("no `[policy] dir` is set"), "{stderr}");
    }

    fixture.write_config("[policy]\ndir = \"policies\"\n", None);
    std::fs::write(
        fixture.path("policies/team.cedar"),
        POLICIES.replacen("context.tables_read", "context.tabels_read", 1),
    )
    .unwrap();
    let (code, _, stderr) = text(&fixture.test());
    assert_eq!(code, Some(2));
    assert!(stderr.contains("team.cedar") && stderr.contains("line 4") && stderr.contains("tabels_read"), "{stderr}");
    std::fs::write(fixture.path("policies/team.cedar"), POLICIES).unwrap();

    let (code, _, stderr) = text(&fixture.explain(&["--principal", "bot-1", "--connection", "nowhere", "select 1"]));
    assert_eq!(code, Some(2));
    assert!(stderr.contains("--connection nowhere") && stderr.contains("patients, scratch"), "{stderr}");

    let (code, _, stderr) =
        text(&fixture.explain(&["--principal", "bot-1", "--kind", "robot", "--connection", "patients", "select 1"]));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("robot"), "{stderr}");

    std::fs::write(&fixture.config, "[listeners]\npostgres = \"127.0.0.1:0\"\n[storage]\nurl = \"sqlite://x\"\n[policy]\nmask_order = [\"a\", \"a\"]\n").unwrap();
    let (code, _, stderr) = text(&fixture.test());
    assert_eq!(code, Some(2));
    assert!(stderr.contains("policy.mask_order[1]"), "{stderr}");
}

#[test]
fn help_documents_the_cases_format() {
    let out =
        std::process::Command::new(env!("CARGO_BIN_EXE_sluice")).args(["policy", "test", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for want in ["[[case]]", "expect = \"allow\"", "[defaults]", "Exit status"] {
        assert!(help.contains(want), "`{want}` missing from --help:\n{help}");
    }
}
