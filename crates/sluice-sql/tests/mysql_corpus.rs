//! The MySQL/MariaDB bypass corpus (`mysql_corpus.toml`): every case must be
//! classified at least as dangerous as it says, with the flags it lists;
//! benign cases also bound the kind from above and pin exact tables, so
//! over-classification fails too.

use sluice_sql::{Classifier, MySqlMode, PgStringMode};
use support::{Case, Corpus, assert_covers, run_corpus};

mod support;

/// The techniques the MySQL corpus must cover, plus benign cases.
const REQUIRED_TECHNIQUES: &[&str] = &[
    "executable_comment",
    "hash_comment",
    "dash_comment",
    "backslash_escape",
    "multi_statement",
    "load_data",
    "into_outfile",
    "into_dumpfile",
    "prepare_execute",
    "handler",
    "where_less",
    "replace",
    "on_duplicate_key",
    "for_update",
    "grant",
    "create_user",
    "set_role",
    "call",
    "lock_tables",
    "truncate",
    "quoting_and_case",
    "session",
    "benign",
    "unparseable",
];

fn load() -> Corpus {
    match toml::from_str(include_str!("mysql_corpus.toml")) {
        Ok(c) => c,
        Err(e) => panic!("mysql_corpus.toml does not load: {e}"),
    }
}

fn mode(case: &Case) -> MySqlMode {
    MySqlMode {
        no_backslash_escapes: case.no_backslash_escapes.unwrap_or(false),
        ansi_quotes: case.ansi_quotes.unwrap_or(false),
    }
}

#[test]
fn mysql_bypass_corpus() {
    let classifier = Classifier::new(0);
    run_corpus(&load(), 40, |i, case| {
        assert!(case.standard_conforming_strings.is_none(), "case {i}: a PostgreSQL mode field");
        classifier.classify_mysql(&case.sql, mode(case))
    });
}

#[test]
fn mysql_corpus_covers_every_required_technique() {
    assert_covers(&load(), REQUIRED_TECHNIQUES);
}

/// Without a backslash or a double quote the session's mode cannot change
/// the result.
#[test]
fn mode_is_irrelevant_without_backslashes_or_double_quotes() {
    let classifier = Classifier::new(0);
    for case in &load().case {
        if MySqlMode::affects(&case.sql) {
            continue;
        }
        let base = classifier.classify_mysql(&case.sql, MySqlMode::DEFAULT);
        for ansi_quotes in [false, true] {
            let other = classifier.classify_mysql(&case.sql, MySqlMode { no_backslash_escapes: true, ansi_quotes });
            assert_eq!(base.kind, other.kind, "{}", case.sql);
            assert_eq!(base.flags, other.flags, "{}", case.sql);
            assert_eq!(base.tables_read, other.tables_read, "{}", case.sql);
        }
    }
}

/// The same text classified as PostgreSQL and as MySQL gets two cache
/// entries, never one answer for both.
#[test]
fn dialect_is_part_of_the_cache_key() {
    let classifier = Classifier::new(16);
    let sql = "SELECT 1 # ; DROP TABLE patients";
    let my = classifier.classify_mysql(sql, MySqlMode::DEFAULT);
    let pg = classifier.classify_postgres(sql, PgStringMode::default());
    assert_eq!(my.kind, sluice_sql::StatementKind::Read);
    assert!(pg.flags.unparseable, "PostgreSQL has no # comments: {pg:?}");
    assert_eq!(classifier.cached_entries(), 2);
    let nbe = classifier.classify_mysql(sql, MySqlMode { no_backslash_escapes: true, ansi_quotes: false });
    assert!(!std::sync::Arc::ptr_eq(&my, &nbe));
    assert_eq!(classifier.cached_entries(), 3);
    assert!(std::sync::Arc::ptr_eq(&my, &classifier.classify_mysql(sql, MySqlMode::DEFAULT)));
}
