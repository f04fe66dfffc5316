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
