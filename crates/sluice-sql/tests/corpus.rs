//! The bypass corpus (`corpus.toml`): every case must be classified at
//! least as dangerous as it says, with the flags it lists; benign cases
//! also bound the kind from above and pin exact tables, so
//! over-classification fails too.

use std::collections::BTreeSet;

use sluice_sql::{Classifier, PgStringMode, StatementKind};
use support::{Case, Corpus, assert_covers, run_corpus};

mod support;

/// The techniques issue 3 section 6 requires for PostgreSQL, plus benign
/// cases. Every one must appear in the corpus.
const REQUIRED_TECHNIQUES: &[&str] = &[
    "dollar_quote",
    "e_string",
    "nested_comment",
    "dml_in_cte",
    "merge_delete",
    "copy_dml",
    "explain_analyze",
    "keyword_cte",
    "prepare_execute",
    "do_execute_format",
    "rule_trigger_definer",
    "role_and_system",
    "select_into",
    "call",
    "lock_truncate_vacuum_grant",
    "large_objects",
    "server_files",
    "dblink_fdw",
    "for_update",
    "on_conflict",
    "case_and_quoting",
    "unicode_escapes",
    "extended_split",
    "scs_off",
    "benign",
];

fn load() -> Corpus {
    let text = include_str!("corpus.toml");
    match toml::from_str(text) {
        Ok(c) => c,
        Err(e) => panic!("corpus.toml does not load: {e}"),
    }
}

fn mode(case: &Case) -> PgStringMode {
    PgStringMode { standard_conforming_strings: case.standard_conforming_strings.unwrap_or(true) }
}

#[test]
fn bypass_corpus() {
    let classifier = Classifier::new(0);
    run_corpus(&load(), 80, |i, case| {
        assert!(case.no_backslash_escapes.is_none() && case.ansi_quotes.is_none(), "case {i}: a MySQL mode field");
        classifier.classify_postgres(&case.sql, mode(case))
    });
}

#[test]
fn corpus_covers_every_required_technique() {
    assert_covers(&load(), REQUIRED_TECHNIQUES);
}

/// `pg_query`'s own helpers are a lower bound: every table and function they
/// report must be in the classification (they miss some, never the other
/// way round).
#[test]
fn never_fewer_names_than_pg_query_helpers() {
    let corpus = load();
    let classifier = Classifier::new(0);
    let mut failures = Vec::new();
    for case in &corpus.case {
        let mode = mode(case);
        let opts = if mode.standard_conforming_strings {
            pg_query::ParserOptions::DEFAULT
        } else {
            pg_query::ParserOptions::DISABLE_STANDARD_CONFORMING_STRINGS
        };
        let Ok(parsed) = pg_query::parse(&case.sql, opts) else {
            continue;
        };
        let got = classifier.classify_postgres(&case.sql, mode);
        if got.kind == StatementKind::Admin {
            continue; // lists may be partial for Admin statements, by design
        }
        // pg_query joins name parts without quoting; compare without quotes.
        let unquote = |s: &str| s.replace('"', "");
        let ours: BTreeSet<String> = got.tables_read.iter().chain(&got.tables_written).map(|t| unquote(t)).collect();
        for table in parsed.tables() {
            if !ours.contains(&unquote(&table)) {
                failures.push(format!("{:?}: table {table} missing from {ours:?}", case.sql));
            }
        }
        // A function being created or dropped is not called.
        let defined = parsed.ddl_functions();
        for function in parsed.functions() {
            if !defined.contains(&function) && !got.functions.contains(&function) {
                failures.push(format!("{:?}: function {function} missing from {:?}", case.sql, got.functions));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Without a backslash the session's string mode cannot change the result
/// (`U&''` literals aside, which the server refuses when the mode is off).
#[test]
fn mode_is_irrelevant_without_backslashes() {
    let corpus = load();
    let classifier = Classifier::new(0);
    for case in &corpus.case {
        if PgStringMode::affects(&case.sql) || case.sql.to_ascii_uppercase().contains("U&'") {
            continue;
        }
        let on = classifier.classify_postgres(&case.sql, PgStringMode::STANDARD);
        let off = classifier.classify_postgres(&case.sql, PgStringMode::BACKSLASH_ESCAPES);
        assert_eq!(on.kind, off.kind, "{}", case.sql);
        assert_eq!(on.flags, off.flags, "{}", case.sql);
        assert_eq!(on.tables_read, off.tables_read, "{}", case.sql);
    }
}
