//! Config loading: the example file loads, and each bad input is refused with
//! a message that names the key and the file.

use sluice_config::{Config, ConfigError, LoadError, UpstreamTls};
use std::path::Path;

const GOOD: &str = r#"
[server]
api_listen = "127.0.0.1:8080"
[listeners]
postgres = "127.0.0.1:15432"
[storage]
url = "sqlite://data/sluice.db"
[[identity.api_keys]]
name = "billing-agent"
kind = "agent"
groups = ["analysts"]
key_sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
[[identity.oidc]]
issuer = "http://127.0.0.1:9000"
audience = "sluice"
[[connections]]
name = "patients"
kind = "postgres"
upstream = "127.0.0.1:5432"
database = "test"
user = "root"
password_env = "PATIENTS_DB_PASSWORD"
tls = "verify-full"
"#;

fn load(text: &str) -> Result<Config, LoadError> {
    Config::from_toml(text, Path::new("/etc/sluice"))
}

#[test]
fn good_config_loads_with_defaults_and_anchored_paths() {
    let config = load(GOOD).unwrap();
    assert_eq!(config.storage.url, "sqlite:///etc/sluice/data/sluice.db");
    assert_eq!(config.connections[0].tls, UpstreamTls::VerifyFull);
    assert_eq!(config.identity.oidc[0].groups_claim, "groups");
    assert_eq!(config.server.shutdown_grace.as_secs(), 30);
}

#[test]
fn the_shipped_example_config_loads() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sluice.example.toml");
    Config::load(&path).unwrap();
}

/// Each row: a replacement applied to GOOD, and words the error must contain.
#[test]
fn bad_values_name_the_key() {
    let cases: &[(&str, &str, &[&str])] = &[
        ("[storage]", "[storage]\ncolour = \"red\"", &["unknown field `colour`"]),
        ("kind = \"agent\"", "kind = \"robot\"", &["unknown variant `robot`"]),
        ("tls = \"verify-full\"", "tls = \"sometimes\"", &["unknown variant `sometimes`"]),
        ("key_sha256 = \"9f86", "key_sha256 = \"zz86", &["identity.api_keys[0].key_sha256", "64 hex"]),
        ("upstream = \"127.0.0.1:5432\"", "upstream = \"127.0.0.1\"", &["connections[0].upstream"]),
        ("password_env = \"PATIENTS_DB_PASSWORD\"", "password = \"hunter2\"", &["connections[0].password", "inline"]),
        ("url = \"sqlite://data/sluice.db\"", "url = \"mysql://x\"", &["storage.url"]),
        ("postgres = \"127.0.0.1:15432\"", "postgres = \"localhost\"", &["invalid socket address"]),
        ("issuer = \"http://127.0.0.1:9000\"", "issuer = \"127.0.0.1:9000\"", &["identity.oidc[0].issuer"]),
        (
            "tls = \"verify-full\"",
            "tls = \"verify-full\"\nretention = { payload_days = 2190, index_days = 30 }",
            &["connections[0].retention.index_days", "less than retention.payload_days (2190)"],
        ),
        (
            "tls = \"verify-full\"",
            "tls = \"verify-full\"\nretention = { statement_days = 90, index_days = 89 }",
            &["connections[0].retention.index_days", "retention.statement_days (90)"],
        ),
        ("tls = \"verify-full\"", "tls = \"verify-full\"\nretention = { index_days = -1 }", &["index_days"]),
    ];
    for (from, to, words) in cases {
        assert!(GOOD.contains(from), "case {from} does not apply");
        let text = GOOD.replacen(from, to, 1);
        let err = load(&text).expect_err(to).to_string();
        for word in *words {
            assert!(err.contains(word), "error for `{to}` was `{err}`, missing `{word}`");
        }
    }
}

#[test]
fn duplicate_connection_is_refused() {
    let dup = GOOD.to_string()
        + "[[connections]]\nname = \"patients\"\nkind = \"postgres\"\nupstream = \"h:1\"\ndatabase = \"d\"\nuser = \"u\"\n";
    let err = load(&dup).unwrap_err().to_string();
    assert!(err.contains("connections[1].name") && err.contains("duplicate"), "{err}");
}

#[test]
fn load_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sluice.toml");
    std::fs::write(&path, GOOD.replace("[storage]", "[storage]\nbogus = 1")).unwrap();
    let err = Config::load(&path).unwrap_err();
    assert!(matches!(err, ConfigError::Parse { .. }));
    let text = err.to_string();
    assert!(text.contains("sluice.toml") && text.contains("bogus"), "{text}");
}

const POLICY: &str = r#"
[policy]
dir = "policies"
mask_order = ["strict", "phi"]
[policy.groups]
analysts = ["readers"]
nurses = ["clinical", "readers"]
clinical = ["staff"]
"#;

#[test]
fn policy_settings_load_and_environment_defaults_to_production() {
    let config =
        load(&GOOD.replace("tls = \"verify-full\"", "tls = \"verify-full\"\nenvironment = \"staging\"")).unwrap();
    assert_eq!(config.connections[0].environment, "staging");
    let config = load(&format!("{GOOD}{POLICY}")).unwrap();
    assert_eq!(config.connections[0].environment, "production");
    assert_eq!(config.policy.mask_order, ["strict", "phi"]);
    assert_eq!(config.policy.groups["nurses"], ["clinical", "readers"]);
    assert_eq!(config.policy.groups.len(), 3);
    assert_eq!(config.policy.dir.as_deref(), Some(Path::new("/etc/sluice/policies")));
    let config = load(GOOD).unwrap();
    assert!(config.policy.groups.is_empty() && config.policy.mask_order.is_empty());
}

/// Each row: a replacement applied to GOOD + POLICY, and words the error must contain.
#[test]
fn bad_policy_settings_name_the_key() {
    let text = format!("{GOOD}{POLICY}");
    let env = |value: &str| format!("tls = \"verify-full\"\nenvironment = {value}");
    let cases: Vec<(&str, String, &[&str])> = vec![
        ("tls = \"verify-full\"", env("\"Production\""), &["connections[0].environment", "lower-case"]),
        ("tls = \"verify-full\"", env("\"\""), &["connections[0].environment"]),
        ("tls = \"verify-full\"", env("\"staging \""), &["connections[0].environment"]),
        ("tls = \"verify-full\"", env("1"), &["invalid type", "environment"]),
        (
            "clinical = [\"staff\"]",
            "clinical = [\"staff\"]\nstaff = [\"nurses\"]".into(),
            &["policy.groups.clinical", "cycle", "clinical -> staff -> nurses -> clinical"],
        ),
        (
            "clinical = [\"staff\"]",
            "clinical = [\"clinical\"]".into(),
            &["policy.groups.clinical", "clinical -> clinical"],
        ),
        ("clinical = [\"staff\"]", "clinical = [\"\"]".into(), &["policy.groups.clinical", "parent group"]),
        ("clinical = [\"staff\"]", "\" clinical\" = [\"staff\"]".into(), &["policy.groups. clinical", "spaces"]),
        ("clinical = [\"staff\"]", "clinical = \"staff\"".into(), &["invalid type", "sequence"]),
        (
            "mask_order = [\"strict\", \"phi\"]",
            "mask_order = [\"strict\", \"phi\", \"strict\"]".into(),
            &["policy.mask_order[2]", "listed twice"],
        ),
        (
            "mask_order = [\"strict\", \"phi\"]",
            "mask_order = [\"strict\", \" \"]".into(),
            &["policy.mask_order[1]", "empty"],
        ),
        ("mask_order = [\"strict\", \"phi\"]", "mask_orders = [\"strict\"]".into(), &["unknown field `mask_orders`"]),
    ];
    for (from, to, words) in cases {
        assert!(text.contains(from), "case {from} does not apply");
        let bad = text.replacen(from, &to, 1);
        let err = load(&bad).expect_err(&to).to_string();
        for word in words {
            assert!(err.contains(word), "error for `{to}` was `{err}`, missing `{word}`");
        }
    }
}

#[test]
fn policy_setting_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sluice.toml");
    std::fs::write(&path, format!("{GOOD}{POLICY}").replace("\"phi\"]", "\"strict\"]")).unwrap();
    let err = Config::load(&path).unwrap_err();
    assert!(matches!(err, ConfigError::Invalid { .. }));
    let text = err.to_string();
    assert!(text.contains("sluice.toml") && text.contains("policy.mask_order[1]"), "{text}");
}
