//! The `[approvals]` section: defaults, per-connection reviewers, and each
//! bad value refused with a message naming its key.

use sluice_config::{Config, LoadError};
use std::path::Path;
use std::time::Duration;

const BASE: &str = r#"
[listeners]
postgres = "127.0.0.1:15432"
[storage]
url = "sqlite://data/sluice.db"
[[connections]]
name = "patients"
kind = "postgres"
upstream = "127.0.0.1:5432"
database = "test"
user = "root"
"#;

const APPROVALS: &str = r#"
[approvals]
reviewer_groups = ["reviewers", "dba"]
hold_window = "30s"
grant_ttl = "5m"
expires_after = "2h"
approvals_required = 2
[approvals.connections.patients]
reviewer_groups = ["clinical-leads"]
"#;

fn load(text: &str) -> Result<Config, LoadError> {
    Config::from_toml(text, Path::new("/etc/sluice"))
}

#[test]
fn absent_section_gets_the_documented_defaults() {
    let approvals = load(BASE).expect("loads").approvals;
    assert!(approvals.reviewer_groups.is_empty());
    assert_eq!(approvals.hold_window, Duration::from_secs(120));
    assert_eq!(approvals.grant_ttl, Duration::from_secs(15 * 60));
    assert_eq!(approvals.expires_after, Duration::from_secs(24 * 60 * 60));
    assert_eq!(approvals.approvals_required, 1);
    assert!(approvals.reviewer_groups_for("patients").is_empty());
}

#[test]
fn section_loads_with_per_connection_reviewers() {
    let approvals = load(&format!("{BASE}{APPROVALS}")).expect("loads").approvals;
    assert_eq!(approvals.hold_window, Duration::from_secs(30));
    assert_eq!(approvals.grant_ttl, Duration::from_secs(300));
    assert_eq!(approvals.expires_after, Duration::from_secs(7200));
    assert_eq!(approvals.approvals_required, 2);
    assert_eq!(approvals.reviewer_groups_for("patients"), ["clinical-leads"]);
    assert_eq!(approvals.reviewer_groups_for("billing"), ["reviewers", "dba"]);
}

#[test]
fn omitted_keys_keep_their_defaults() {
    let approvals = load(&format!("{BASE}[approvals]\nreviewer_groups = [\"reviewers\"]\n")).expect("loads").approvals;
    assert_eq!(approvals.reviewer_groups, ["reviewers"]);
    assert_eq!(approvals.hold_window, Duration::from_secs(120));
    assert_eq!(approvals.approvals_required, 1);
}

/// Each row: a replacement applied to APPROVALS, and words the error must contain.
#[test]
fn bad_approvals_name_the_key() {
    let cases: &[(&str, &str, &[&str])] = &[
        ("approvals_required = 2", "approvals_required = 0", &["approvals.approvals_required", "at least 1"]),
        ("approvals_required = 2", "approvals_required = -1", &["approvals_required"]),
        ("approvals_required = 2", "quorum = 2", &["unknown field `quorum`"]),
        ("hold_window = \"30s\"", "hold_window = \"soon\"", &["hold_window", "not a duration"]),
        ("hold_window = \"30s\"", "hold_window = \"0s\"", &["approvals.hold_window", "longer than zero"]),
        ("grant_ttl = \"5m\"", "grant_ttl = \"0s\"", &["approvals.grant_ttl", "longer than zero"]),
        ("expires_after = \"2h\"", "expires_after = \"0s\"", &["approvals.expires_after", "longer than zero"]),
        ("expires_after = \"2h\"", "expires_after = \"10s\"", &["approvals.hold_window", "expires_after"]),
        ("[\"reviewers\", \"dba\"]", "[\"reviewers\", \"reviewers\"]", &["approvals.reviewer_groups", "twice"]),
        ("[\"reviewers\", \"dba\"]", "[\" reviewers\"]", &["approvals.reviewer_groups", "leading or trailing"]),
        (
            "approvals.connections.patients]",
            "approvals.connections.billing]",
            &["approvals.connections.billing", "no connection"],
        ),
        ("[\"clinical-leads\"]", "[]", &["approvals.connections.patients.reviewer_groups", "at least one group"]),
        ("[\"clinical-leads\"]", "[\"\"]", &["approvals.connections.patients.reviewer_groups", "non-empty"]),
    ];
    for (from, to, words) in cases {
        assert!(APPROVALS.contains(from), "case {from} does not apply");
        let text = format!("{BASE}{}", APPROVALS.replacen(from, to, 1));
        let err = load(&text).expect_err(to).to_string();
        for word in *words {
            assert!(err.contains(word), "error for `{to}` was `{err}`, missing `{word}`");
        }
    }
}
