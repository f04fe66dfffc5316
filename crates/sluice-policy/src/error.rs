//! `PolicyError`: why a policy folder did not load.
//!
//! Owns: the error type and the `file: line N, column M: message` form every
//! load problem is reported in.
//! Does not: find the positions (see `load` and `source`).

use std::fmt;
use std::path::PathBuf;

/// One problem in one policy file, at a position an operator can jump to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file name as given (for `load_dir`, the name inside the folder).
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, counted in characters.
    pub column: usize,
    /// Cedar's own message (with its help, if any), or Sluice's for annotations.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: line {}, column {}: {}", self.file, self.line, self.column, self.message)
    }
}

/// Why policies could not be loaded. Every variant stops startup.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The folder or a file in it could not be read.
    #[error("cannot read policy {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The folder holds no `*.cedar` file: nothing would ever be permitted,
    /// which is more likely a wrong path than an intent.
    #[error("no *.cedar policy files in {0}")]
    NoPolicyFiles(PathBuf),
    /// One or more policies are invalid: syntax, schema validation, or
    /// Sluice's annotations. All problems found are listed, each with its
    /// file, line and column.
    #[error("invalid policy: {}", join_problems(.0))]
    Invalid(Vec<Problem>),
    /// The built-in schema did not parse (a bug in this crate, caught by its tests).
    #[error("built-in Cedar schema is invalid: {0}")]
    Schema(String),
}

impl PolicyError {
    /// The problems of an `Invalid` error (empty for other variants).
    pub fn problems(&self) -> &[Problem] {
        match self {
            PolicyError::Invalid(problems) => problems,
            _ => &[],
        }
    }
}

fn join_problems(problems: &[Problem]) -> String {
    match problems {
        [one] => one.to_string(),
        many => {
            let mut out = format!("{} problems", many.len());
            for p in many {
                out.push_str("\n  ");
                out.push_str(&p.to_string());
            }
            out
        }
    }
}
