//! Fail-closed behaviour on hostile input: deep nesting (on a 2 MiB stack,
//! like a tokio worker thread), malformed text, NUL bytes, huge input.

use sluice_sql::{Classifier, PgStringMode, StatementKind};

mod hostile;
use hostile::{Shape, nested, on_small_stack, soup};

#[test]
fn deep_nesting_is_admin_or_understood_never_a_crash() {
    let shapes: Vec<(&str, Shape)> = vec![
        ("sub-selects", Box::new(|d| format!("SELECT {}", nested(d, "(SELECT ", "1", ")")))),
        ("parentheses", Box::new(|d| format!("SELECT {}", nested(d, "(", "1", ")")))),
        ("unary minus", Box::new(|d| format!("SELECT {}x FROM t", "- ".repeat(d)))),
        ("plus chain", Box::new(|d| format!("SELECT 1{}", "+1".repeat(d)))),
        ("function calls", Box::new(|d| format!("SELECT {}", nested(d, "lower(", "'x'", ")")))),
        ("from sub-selects", Box::new(|d| format!("SELECT * FROM {}", nested(d, "(SELECT * FROM ", "t", ") s")))),
        ("arrays", Box::new(|d| format!("SELECT {}", nested(d, "ARRAY[", "1", "]")))),
        ("CTEs", Box::new(|d| nested(d, "WITH a AS (", "SELECT 1", ") SELECT * FROM a"))),
        ("case", Box::new(|d| format!("SELECT {}", nested(d, "CASE WHEN true THEN ", "1", " END")))),
        ("not", Box::new(|d| format!("SELECT {}true", "NOT ".repeat(d)))),
    ];
    for (name, make) in shapes {
        for depth in [1usize, 10, 30, 45, 60, 100, 1_000, 5_000, 20_000, 100_000] {
            let sql = make(depth);
            let got = on_small_stack(move || Classifier::new(0).classify_postgres(&sql, PgStringMode::default()));
            if depth <= 10 {
                assert_ne!(got.kind, StatementKind::Admin, "{name} at depth {depth} should be understood: {got:?}");
            }
            // Parentheses build no nodes: only the grammar's own limit stops them.
            let limit = if name == "parentheses" { 100_000 } else { 1_000 };
            if depth >= limit {
                assert_eq!(got.kind, StatementKind::Admin, "{name} at depth {depth}: {got:?}");
            }
            if got.kind != StatementKind::Admin {
                assert!(!got.flags.unparseable);
            }
        }
    }
}

#[test]
fn deep_nesting_hides_no_write() {
    // Whatever depth, a DELETE in the innermost CTE is never below Write.
    for depth in [1usize, 5, 20, 40, 80, 200] {
        let sql = format!(
            "WITH d AS (DELETE FROM patients RETURNING *) SELECT * FROM {}",
            nested(depth, "(SELECT * FROM ", "d", ") s")
        );
        let got = on_small_stack(move || Classifier::new(0).classify_postgres(&sql, PgStringMode::default()));
        assert!(got.kind >= StatementKind::Write, "depth {depth}: {got:?}");
    }
}

#[test]
fn malformed_input_is_admin_unparseable() {
    let classifier = Classifier::new(16);
    let cases = [
        "SELECT 1 FROM",
        "SELECT 'unterminated",
        "SELECT $$unterminated",
        "SELECT /* unterminated comment",
        "SELECT \0 FROM t",
        "DELETE FROM t\0; DROP TABLE x",
        "\u{feff}SELECT 1",
        "SELEC 1",
        ")))",
    ];
    for sql in cases {
        let got = classifier.classify_postgres(sql, PgStringMode::default());
        assert_eq!(got.kind, StatementKind::Admin, "{sql:?}: {got:?}");
        assert!(got.flags.unparseable, "{sql:?}: {got:?}");
        assert!(got.fingerprint.starts_with("raw-"), "{sql:?}: {got:?}");
    }
}

#[test]
fn garbage_never_panics() {
    // A deterministic pseudo-random soup of SQL fragments.
    let pieces = [
        "SELECT",
        "DELETE",
        "FROM",
        "WITH",
        "(",
        ")",
        "'",
        "$$",
        "E'\\'",
        ";",
        "--",
        "/*",
        "*/",
        "t",
        "pg_read_file",
        ",",
        "*",
        "AS",
        "DO",
        "U&\"",
        "\\",
        "\"",
        "INTO",
        "FOR UPDATE",
        "1",
        "=",
        "WHERE",
        "RETURNING",
        "$1",
        "::",
        "[",
    ];
    let classifier = Classifier::new(64);
    for sql in soup(&pieces, 3_000, false) {
        for mode in [PgStringMode::STANDARD, PgStringMode::BACKSLASH_ESCAPES] {
            let got = classifier.classify_postgres(&sql, mode);
            if got.flags.unparseable {
                assert_eq!(got.kind, StatementKind::Admin);
            }
        }
    }
}

#[test]
fn huge_statement_is_classified_not_cached() {
    let classifier = Classifier::new(16);
    let values: Vec<String> = (0..20_000).map(|i| format!("({i}, 'name {i}')")).collect();
    let sql = format!("INSERT INTO patients (id, name) VALUES {}", values.join(", "));
    assert!(sql.len() > sluice_sql::MAX_CACHED_TEXT);
    let got = classifier.classify_postgres(&sql, PgStringMode::default());
    assert_eq!(got.kind, StatementKind::Write);
    assert_eq!(got.tables_written, ["patients"]);
    assert_eq!(classifier.cached_entries(), 0, "texts above MAX_CACHED_TEXT are not cached");
}
