//! Sluice's own login to the target, end to end against a private PostgreSQL
//! cluster: every authentication method (trust, cleartext, md5, SCRAM) and
//! TLS mode (disable, prefer, require, verify-full), passwords from the
//! environment and from a file, the refusals a client sees when that login
//! fails (without a secret in them), startup without a password, and
//! `sluice check`.

mod support;

use std::path::Path;
use support::cluster::{Ca, Cluster, free_port};
use support::raw;
use support::{Sluice, api_key, psql, serve_expecting_exit, sluice_cli_with_env};

/// One rule per user, so the method each login used is known.
const HBA: &str = "\
local     all  all         trust
hostssl   all  u_tls_only  127.0.0.1/32  scram-sha-256
hostnossl all  u_tls_only  127.0.0.1/32  reject
host      all  u_scram     127.0.0.1/32  scram-sha-256
host      all  u_md5       127.0.0.1/32  md5
host      all  u_plain     127.0.0.1/32  password
host      all  u_trust     127.0.0.1/32  trust
";

/// The target passwords, random per test.
struct Passwords {
    scram: String,
    md5: String,
    plain: String,
    tls_only: String,
}

impl Passwords {
    fn all(&self) -> [&str; 4] {
        [&self.scram, &self.md5, &self.plain, &self.tls_only]
    }
}

fn password(label: &str) -> String {
    format!("pw_{label}_{}", hex::encode(rand::random::<[u8; 8]>()))
}

/// A cluster with the users of `HBA` and a database `clinic` they can read.
fn cluster() -> (Cluster, Passwords) {
    let cluster = Cluster::start(HBA);
    let pw = Passwords {
        scram: password("scram"),
        md5: password("md5"),
        plain: password("plain"),
        tls_only: password("tls_only"),
    };
    cluster.sql("postgres", "CREATE DATABASE clinic");
    cluster.sql(
        "clinic",
        &format!(
            "CREATE ROLE u_scram LOGIN PASSWORD '{}';
             SET password_encryption = 'md5';
             CREATE ROLE u_md5 LOGIN PASSWORD '{}';
             RESET password_encryption;
             CREATE ROLE u_plain LOGIN PASSWORD '{}';
             CREATE ROLE u_tls_only LOGIN PASSWORD '{}';
             CREATE ROLE u_trust LOGIN;
             CREATE TABLE patients (id int, name text);
             INSERT INTO patients VALUES (1, 'Ada'), (2, 'Grace');
             GRANT SELECT ON patients TO PUBLIC;",
            pw.scram, pw.md5, pw.plain, pw.tls_only
        ),
    );
    let stored = cluster.sql(
        "postgres",
        "select string_agg(rolname || '=' || case when rolpassword like 'md5%' then 'md5' \
         else split_part(rolpassword, '$', 1) end, ',' order by rolname) \
         from pg_authid where rolname like 'u\\_%' and rolpassword is not null",
    );
    assert_eq!(stored, "u_md5=md5,u_plain=SCRAM-SHA-256,u_scram=SCRAM-SHA-256,u_tls_only=SCRAM-SHA-256");
    (cluster, pw)
}

/// The Sluice config head: listeners on port 0, SQLite audit, one API key.
fn head(key_sha256: &str) -> String {
    format!(
        r#"
[server]
api_listen = "127.0.0.1:0"
shutdown_grace = "5s"
[listeners]
postgres = "127.0.0.1:0"
[storage]
url = "sqlite://data/audit.db"
[[identity.api_keys]]
name = "test-agent"
kind = "agent"
groups = ["analysts"]
key_sha256 = "{key_sha256}"
"#
    )
}

/// One `[[connections]]` block to database `clinic`; `extra` adds
/// `password_env`, `password_file` or `ca_file` lines.
fn connection(name: &str, upstream: &str, user: &str, tls: &str, extra: &str) -> String {
    format!(
        r#"
[[connections]]
name = "{name}"
kind = "postgres"
upstream = "{upstream}"
database = "clinic"
user = "{user}"
tls = "{tls}"
{extra}
"#
    )
}

fn env(var: &str) -> String {
    format!("password_env = \"{var}\"")
}

fn ca_file(path: &Path) -> String {
    format!("ca_file = \"{}\"", path.display())
}

/// Through Sluice: who the target says we are, whether the upstream
/// session is encrypted, and that the data is readable.
const WHO: &str = "select current_user, \
    coalesce((select ssl from pg_stat_ssl where pid = pg_backend_pid()), false), \
    (select count(*) from patients)";

#[test]
fn every_method_and_tls_mode_logs_in_as_the_configured_user() {
    let (cluster, pw) = cluster();
    let (key, hash) = api_key();
    let secrets = tempfile::tempdir().unwrap();
    let scram_file = secrets.path().join("scram.pw");
    std::fs::write(&scram_file, format!("{}\n", pw.scram)).unwrap(); // the newline is trimmed
    let addr = cluster.addr();
    let ca = ca_file(&cluster.ca.cert);
    let config = [
        head(&hash),
        connection("scram_plain", &addr, "u_scram", "disable", &env("PW_SCRAM")),
        connection(
            "scram_file_prefer",
            &addr,
            "u_scram",
            "prefer",
            &format!("password_file = \"{}\"", scram_file.display()),
        ),
        connection("md5_plain", &addr, "u_md5", "disable", &env("PW_MD5")),
        connection("md5_require", &addr, "u_md5", "require", &env("PW_MD5")),
        connection("password_verify", &addr, "u_plain", "verify-full", &format!("{}\n{ca}", env("PW_PLAIN"))),
        connection("trust_plain", &addr, "u_trust", "disable", ""),
        connection("trust_prefer", &addr, "u_trust", "prefer", ""),
        connection("tls_only_verify", &addr, "u_tls_only", "verify-full", &format!("{}\n{ca}", env("PW_TLS_ONLY"))),
        connection("tls_only_require", &addr, "u_tls_only", "require", &env("PW_TLS_ONLY")),
    ]
    .concat();
    let sluice = Sluice::start_with_env(
        &config,
        &[("PW_SCRAM", &pw.scram), ("PW_MD5", &pw.md5), ("PW_PLAIN", &pw.plain), ("PW_TLS_ONLY", &pw.tls_only)],
    );

    let expected = [
        ("scram_plain", "u_scram|f|2"),
        ("scram_file_prefer", "u_scram|t|2"),
        ("md5_plain", "u_md5|f|2"),
        ("md5_require", "u_md5|t|2"),
        ("password_verify", "u_plain|t|2"),
        ("trust_plain", "u_trust|f|2"),
        ("trust_prefer", "u_trust|t|2"),
        ("tls_only_verify", "u_tls_only|t|2"),
        ("tls_only_require", "u_tls_only|t|2"),
    ];
    for (name, want) in expected {
        let (ok, out, err) = psql(&sluice.conninfo(name, &key), WHO);
        assert!(ok, "{name}: {err}\n{}", sluice.log());
        assert_eq!(out, want, "{name}");
    }

    // The target's log names the method each login really used.
    for method in [
        "identity=\"u_scram\" method=scram-sha-256",
        "identity=\"u_md5\" method=md5",
        "identity=\"u_plain\" method=password",
        "identity=\"u_tls_only\" method=scram-sha-256",
    ] {
        assert!(cluster.wait_for_log(method), "no `{method}` in the target's log:\n{}", cluster.log());
    }
    let log = sluice.log();
    for secret in pw.all() {
        assert!(!log.contains(secret), "a target password is in Sluice's log:\n{log}");
    }
}

#[test]
fn refused_upstream_logins_are_fatal_and_carry_no_secret() {
    let (cluster, pw) = cluster();
    let (key, hash) = api_key();
    let wrong = password("wrong");
    let scratch = tempfile::tempdir().unwrap();
    let other_ca = Ca::create(scratch.path(), "other_ca");
    let addr = cluster.addr();
    let config = [
        head(&hash),
        connection("good", &addr, "u_scram", "require", &env("PW_SCRAM")),
        connection("scram_wrong", &addr, "u_scram", "disable", &env("PW_WRONG")),
        connection("md5_wrong", &addr, "u_md5", "require", &env("PW_WRONG")),
        connection("plain_wrong", &addr, "u_plain", "disable", &env("PW_WRONG")),
        connection("no_password", &addr, "u_scram", "disable", ""),
        connection(
            "wrong_ca",
            &addr,
            "u_scram",
            "verify-full",
            &format!("{}\n{}", env("PW_SCRAM"), ca_file(&other_ca.cert)),
        ),
        // The right CA, but the certificate is for 127.0.0.1, not "localhost".
        connection(
            "wrong_name",
            &format!("localhost:{}", cluster.port),
            "u_scram",
            "verify-full",
            &format!("{}\n{}", env("PW_SCRAM"), ca_file(&cluster.ca.cert)),
        ),
        connection("tls_only_plain", &addr, "u_tls_only", "disable", &env("PW_TLS_ONLY")),
    ]
    .concat();
    let sluice = Sluice::start_with_env(
        &config,
        &[("PW_SCRAM", &pw.scram), ("PW_WRONG", &wrong), ("PW_TLS_ONLY", &pw.tls_only)],
    );

    let cases = [
        ("scram_wrong", "u_scram", "08004", "refused Sluice's login (28P01)"),
        ("md5_wrong", "u_md5", "08004", "refused Sluice's login (28P01)"),
        ("plain_wrong", "u_plain", "08004", "refused Sluice's login (28P01)"),
        ("no_password", "u_scram", "08004", "none is configured"),
        ("wrong_ca", "u_scram", "08006", "TLS to the target failed: invalid peer certificate: UnknownIssuer"),
        ("wrong_name", "u_scram", "08006", "certificate not valid for name \"localhost\""),
        ("tls_only_plain", "u_tls_only", "08004", "refused Sluice's login (28000)"),
    ];
    for (name, user, code, says) in cases {
        let (sqlstate, message) = raw::login_error(sluice.port(), name, &key);
        assert_eq!(sqlstate, code, "{name}: {message}");
        assert!(message.contains(&format!("\"{name}\"")) && message.contains(says), "{name}: {message}");
        assert!(!message.contains(user) && !message.contains("clinic"), "{name} names target details: {message}");
        for secret in pw.all().into_iter().chain([wrong.as_str(), key.as_str()]) {
            assert!(!message.contains(secret), "{name} leaks a secret: {message}");
        }
        // psql shows it as a FATAL, the way a driver user sees it.
        let (ok, _, err) = psql(&sluice.conninfo(name, &key), "select 1");
        assert!(!ok && err.contains("FATAL") && err.contains(says), "{name}: {err}");
    }
    assert!(cluster.wait_for_log("password authentication failed for user \"u_md5\""), "{}", cluster.log());
    assert!(cluster.wait_for_log("no encryption"), "pg_hba reject not in the target's log:\n{}", cluster.log());

    // None of that hurt the gateway.
    let (ok, out, err) = psql(&sluice.conninfo("good", &key), WHO);
    assert!(ok, "{err}");
    assert_eq!(out, "u_scram|t|2");
    let log = sluice.log();
    for secret in pw.all().into_iter().chain([wrong.as_str()]) {
        assert!(!log.contains(secret), "a target password is in Sluice's log:\n{log}");
    }
}

#[test]
fn a_missing_password_stops_serve_and_check_naming_connection_and_source() {
    let (_, hash) = api_key();
    let dir = tempfile::tempdir().unwrap();
    let var = format!("SLUICE_TEST_UNSET_{}", hex::encode(rand::random::<[u8; 4]>()).to_uppercase());
    // Nothing listens there; the password is missing before any connect.
    let upstream = format!("127.0.0.1:{}", free_port());
    let config_path = dir.path().join("sluice.toml");

    std::fs::write(
        &config_path,
        [head(&hash), connection("needs_secret", &upstream, "u_scram", "disable", &env(&var))].concat(),
    )
    .unwrap();
    let (status, stderr) = serve_expecting_exit(&config_path, &[]);
    assert!(!status.success(), "{stderr}");
    assert!(stderr.contains("\"needs_secret\"") && stderr.contains(&var), "serve said: {stderr}");
    assert_eq!(stderr.matches("is not set").count(), 1, "the cause is said more than once: {stderr}");

    let out = sluice_cli_with_env(&["check"], &config_path, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    let fail = stdout.lines().find(|l| l.contains("FAIL")).unwrap_or_else(|| panic!("no FAIL line:\n{stdout}"));
    assert!(fail.contains("connection needs_secret") && fail.contains(&var), "{fail}");

    // A password file that is not there: the same, naming the file.
    let missing = dir.path().join("no_such.pw");
    let extra = format!("password_file = \"{}\"", missing.display());
    std::fs::write(
        &config_path,
        [head(&hash), connection("needs_file", &upstream, "u_scram", "disable", &extra)].concat(),
    )
    .unwrap();
    let (status, stderr) = serve_expecting_exit(&config_path, &[]);
    assert!(!status.success(), "{stderr}");
    assert!(stderr.contains("\"needs_file\"") && stderr.contains("no_such.pw"), "serve said: {stderr}");
}

#[test]
fn check_says_ok_per_connection_and_fail_naming_the_wrong_one() {
    let (cluster, pw) = cluster();
    let (_, hash) = api_key();
    let dir = tempfile::tempdir().unwrap();
    let md5_file = dir.path().join("md5.pw");
    std::fs::write(&md5_file, &pw.md5).unwrap();
    let addr = cluster.addr();
    let good = [
        head(&hash),
        connection("scram_plain", &addr, "u_scram", "disable", &env("PW_SCRAM")),
        connection("md5_require", &addr, "u_md5", "require", &format!("password_file = \"{}\"", md5_file.display())),
        connection(
            "password_verify",
            &addr,
            "u_plain",
            "verify-full",
            &format!("{}\n{}", env("PW_PLAIN"), ca_file(&cluster.ca.cert)),
        ),
        connection("trust_plain", &addr, "u_trust", "disable", ""),
    ]
    .concat();
    let wrong = password("wrong");
    let envs = [("PW_SCRAM", pw.scram.as_str()), ("PW_PLAIN", pw.plain.as_str()), ("PW_WRONG", wrong.as_str())];
    // A fresh install: no store exists yet, and `check` must not need one.
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("check.toml");
    std::fs::write(&config_path, &good).unwrap();

    let out = sluice_cli_with_env(&["check"], &config_path, &envs);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    for (name, detail) in [
        ("scram_plain", "logged in"),
        ("md5_require", "logged in over TLS"),
        ("password_verify", "logged in over TLS"),
        ("trust_plain", "logged in"),
    ] {
        let line = format!("ok    connection {name} (Postgres at {addr}): {detail}");
        assert!(stdout.lines().any(|l| l.trim() == line), "no `{line}` in:\n{stdout}");
    }
    assert!(stdout.contains("all checks passed") && !stdout.contains("FAIL"), "{stdout}");

    std::fs::write(
        &config_path,
        format!("{good}{}", connection("bad_pw", &addr, "u_scram", "disable", &env("PW_WRONG"))),
    )
    .unwrap();
    let out = sluice_cli_with_env(&["check"], &config_path, &envs);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(!out.status.success(), "{stdout}");
    let fails: Vec<&str> = stdout.lines().filter(|l| l.contains("FAIL")).collect();
    assert_eq!(fails.len(), 1, "{stdout}");
    assert!(fails[0].contains("connection bad_pw") && fails[0].contains("28P01"), "{}", fails[0]);
    assert!(stdout.contains("ok    connection scram_plain") && stdout.contains("1 check(s) failed"), "{stdout}");
    let all = format!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    for secret in pw.all().into_iter().chain([wrong.as_str()]) {
        assert!(!all.contains(secret), "check printed a password:\n{all}");
    }
}
