//! The crate's one error type.
//!
//! Owns: `MaskError`.

/// What can go wrong configuring a profile or running the JSONL driver.
#[derive(Debug, thiserror::Error)]
pub enum MaskError {
    #[error("unknown masking profile {0:?} (built in: safe_harbor, unmasked)")]
    UnknownProfile(String),
    #[error("unknown masking strategy {0:?} (expected redact, partial, pseudonym, generalize or keep)")]
    UnknownStrategy(String),
    #[error("profile {0:?} uses the pseudonym strategy but has no key")]
    NoPseudonymKey(String),
    #[error("line {line}: not a record with a string \"text\": {reason}")]
    BadRecord { line: usize, reason: String },
    #[error("line {line}: cannot read input: {source}")]
    Read {
        line: usize,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write output: {0}")]
    Write(#[source] serde_json::Error),
    #[error("cannot write output: {0}")]
    Io(#[source] std::io::Error),
}
