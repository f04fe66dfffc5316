//! Shared by the corpus tests (`corpus.rs` for PostgreSQL,
//! `mysql_corpus.rs` for MySQL): the case format, the check of one
//! classification against one case, and the run of a whole corpus.

use std::collections::BTreeSet;

use serde::Deserialize;
use sluice_sql::{SqlClassification, SqlFlags, StatementKind};
use std::sync::Arc;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Corpus {
    pub case: Vec<Case>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub sql: String,
    pub min_kind: StatementKind,
    pub max_kind: Option<StatementKind>,
    #[serde(default)]
    pub flags: Vec<String>,
    #[serde(default)]
    pub exact_flags: bool,
    pub tables_read: Option<Vec<String>>,
    pub tables_written: Option<Vec<String>>,
    pub functions: Option<Vec<String>>,
    pub statements: Option<u32>,
    /// PostgreSQL only: the session's `standard_conforming_strings`.
    pub standard_conforming_strings: Option<bool>,
    /// MySQL only: `NO_BACKSLASH_ESCAPES` in the session's `sql_mode`.
    pub no_backslash_escapes: Option<bool>,
    /// MySQL only: `ANSI_QUOTES` in the session's `sql_mode`.
    pub ansi_quotes: Option<bool>,
    pub technique: String,
    pub note: String,
}

/// The names of the flags that are set.
pub fn flag_list(f: &SqlFlags) -> BTreeSet<&'static str> {
    SqlFlags::NAMES.into_iter().zip(f.values()).filter(|(_, on)| *on).map(|(name, _)| name).collect()
}

const FLAG_NAMES: [&str; SqlFlags::NAMES.len()] = SqlFlags::NAMES;

/// Everything wrong with `got` for `case` (empty: it passes).
pub fn check(case: &Case, got: &SqlClassification) -> Vec<String> {
    let mut problems = Vec::new();
    if got.kind < case.min_kind {
        problems.push(format!("kind {:?} is below min_kind {:?}", got.kind, case.min_kind));
    }
    if let Some(max) = case.max_kind
        && got.kind > max
    {
        problems.push(format!("kind {:?} is above max_kind {max:?}", got.kind));
    }
    let flags = flag_list(&got.flags);
    for want in &case.flags {
        if !FLAG_NAMES.contains(&want.as_str()) {
            problems.push(format!("unknown flag name {want:?} in the corpus"));
        } else if !flags.contains(want.as_str()) {
            problems.push(format!("flag {want} missing (got {flags:?})"));
        }
    }
    if case.exact_flags {
        let want: BTreeSet<&str> = case.flags.iter().map(String::as_str).collect();
        if want != flags {
            problems.push(format!("flags {flags:?}, want exactly {want:?}"));
        }
    }
    for (what, want, have) in [
        ("tables_read", &case.tables_read, &got.tables_read),
        ("tables_written", &case.tables_written, &got.tables_written),
        ("functions", &case.functions, &got.functions),
    ] {
        if let Some(want) = want {
            let mut want = want.clone();
            want.sort();
            if &want != have {
                problems.push(format!("{what} {have:?}, want {want:?}"));
            }
        }
    }
    if let Some(n) = case.statements
        && got.statements != n
    {
        problems.push(format!("statements {}, want {n}", got.statements));
    }
    problems
}

/// Classifies every case with `classify` and fails listing every case whose
/// classification does not meet it. The corpus must hold `min_cases`.
pub fn run_corpus(corpus: &Corpus, min_cases: usize, classify: impl Fn(usize, &Case) -> Arc<SqlClassification>) {
    assert!(corpus.case.len() >= min_cases, "the corpus must hold at least {min_cases} cases");
    let mut failures = Vec::new();
    for (i, case) in corpus.case.iter().enumerate() {
        assert!(!case.note.is_empty(), "case {i} has no note");
        let got = classify(i, case);
        let problems = check(case, &got);
        if !problems.is_empty() {
            failures.push(format!(
                "case {i} [{}] {:?}\n    {}\n    got {got:?}",
                case.technique,
                case.sql,
                problems.join("\n    ")
            ));
        }
    }
    assert!(failures.is_empty(), "{} corpus failures:\n{}", failures.len(), failures.join("\n"));
}

/// Fails naming each of `required` that no case of `corpus` exercises.
pub fn assert_covers(corpus: &Corpus, required: &[&str]) {
    let present: BTreeSet<&str> = corpus.case.iter().map(|c| c.technique.as_str()).collect();
    let missing: Vec<&&str> = required.iter().filter(|t| !present.contains(**t)).collect();
    assert!(missing.is_empty(), "techniques without a case: {missing:?}");
}
