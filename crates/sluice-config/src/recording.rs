//! `[recording]`: session recording for replay (`sluice sessions replay`).
//!
//! Owns: the section's type, its defaults and its checks.
//! Does not: record anything (`sluice-pipeline`'s `recording` does).

use crate::Invalid;
use serde::Deserialize;

/// `[recording]`. Absent: every session is recorded, masked, with at most
/// 1,000 rows and 1 MiB of row data per statement.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recording {
    /// Record each session's exchange, as the client saw it (masked), in
    /// the audit store.
    #[serde(default = "default_enabled")]
    pub enabled: bool,
    /// Result rows kept per statement; the rest are counted, not stored.
    #[serde(default = "default_max_rows")]
    pub max_rows_per_statement: u64,
    /// Bytes of row data kept per statement; the rest are counted, not stored.
    #[serde(default = "default_max_bytes")]
    pub max_bytes_per_statement: u64,
}

impl Default for Recording {
    fn default() -> Self {
        Recording {
            enabled: default_enabled(),
            max_rows_per_statement: default_max_rows(),
            max_bytes_per_statement: default_max_bytes(),
        }
    }
}

fn default_enabled() -> bool {
    true
}

fn default_max_rows() -> u64 {
    1000
}

fn default_max_bytes() -> u64 {
    1 << 20
}

/// The most rows or bytes a statement may keep: the recording is held in
/// memory until it is flushed, so one statement must not hold gigabytes.
const MAX_BYTES_CAP: u64 = 64 << 20;

pub(crate) fn validate(recording: &Recording) -> Result<(), Invalid> {
    if recording.max_bytes_per_statement > MAX_BYTES_CAP {
        return Err(Invalid {
            key: "recording.max_bytes_per_statement".into(),
            message: format!("must be at most {MAX_BYTES_CAP} (64 MiB)"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let parse = |text: &str| toml::from_str::<Recording>(text);
        assert_eq!(parse("").unwrap(), Recording::default());
        let r = parse("enabled = false\nmax_rows_per_statement = 2").unwrap();
        assert!(!r.enabled);
        assert_eq!(r.max_rows_per_statement, 2);
        assert_eq!(r.max_bytes_per_statement, 1 << 20);
        assert!(parse("max_rows = 2").is_err(), "unknown keys are refused");
        let big = Recording { max_bytes_per_statement: 1 << 30, ..Recording::default() };
        assert_eq!(validate(&big).unwrap_err().key, "recording.max_bytes_per_statement");
    }
}
