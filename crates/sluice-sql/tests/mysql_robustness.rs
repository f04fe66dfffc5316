//! Fail-closed behaviour of the MySQL classifier on hostile input: deep
//! nesting (on a 2 MiB stack, like a tokio worker thread), malformed text,
//! NUL bytes, garbage.

use sluice_sql::{Classifier, MySqlMode, StatementKind};

mod hostile;
use hostile::{Shape, nested, on_small_stack, soup};

#[test]
fn deep_nesting_is_admin_or_understood_never_a_crash() {
    let shapes: Vec<(&str, Shape)> = vec![
        ("parentheses", Box::new(|d| format!("SELECT {}", nested(d, "(", "1", ")")))),
        ("sub-selects", Box::new(|d| format!("SELECT {}", nested(d, "(SELECT ", "1", ")")))),
        ("plus chain", Box::new(|d| format!("SELECT 1{}", "+1".repeat(d)))),
        ("or chain", Box::new(|d| format!("SELECT * FROM t WHERE a = 0{}", " OR a = 1".repeat(d)))),
        ("is null chain", Box::new(|d| format!("SELECT a{}", " IS NULL".repeat(d)))),
        ("unary minus", Box::new(|d| format!("SELECT {}1", "- ".repeat(d)))),
        ("not", Box::new(|d| format!("SELECT {}1", "NOT ".repeat(d)))),
        ("function calls", Box::new(|d| format!("SELECT {}", nested(d, "lower(", "'x'", ")")))),
        ("from sub-selects", Box::new(|d| format!("SELECT * FROM {}", nested(d, "(SELECT * FROM ", "t", ") s")))),
        ("case", Box::new(|d| format!("SELECT {}", nested(d, "CASE WHEN 1 THEN ", "1", " END")))),
        ("executable comments", Box::new(|d| "/*! SELECT 1 */ ;".repeat(d))),
    ];
    for (name, make) in shapes {
        for depth in [1usize, 10, 45, 100, 1_000, 10_000, 50_000] {
            let sql = make(depth);
            let got = on_small_stack(move || Classifier::new(0).classify_mysql(&sql, MySqlMode::DEFAULT));
            if depth <= 10 {
                assert_ne!(got.kind, StatementKind::Admin, "{name} at depth {depth} should be understood: {got:?}");
            }
            if depth >= 1_000 && name != "executable comments" {
                assert_eq!(got.kind, StatementKind::Admin, "{name} at depth {depth}: {got:?}");
            }
        }
    }
}

#[test]
fn ten_thousand_parentheses_on_a_small_stack() {
    let sql = format!("SELECT {}", nested(10_000, "(", "1", ")"));
    let got = on_small_stack(move || Classifier::new(0).classify_mysql(&sql, MySqlMode::DEFAULT));
    assert_eq!(got.kind, StatementKind::Admin);
    assert!(got.flags.unparseable, "sqlparser's recursion limit refuses it: {got:?}");
}

#[test]
fn deep_nesting_hides_no_write() {
    for depth in [1usize, 5, 20, 40, 80, 200] {
        let sql = format!("DELETE FROM patients WHERE id IN {}", nested(depth, "(SELECT id FROM ", "t", ")"));
        let got = on_small_stack(move || Classifier::new(0).classify_mysql(&sql, MySqlMode::DEFAULT));
        assert!(got.kind >= StatementKind::Write, "depth {depth}: {got:?}");
    }
}

#[test]
fn malformed_input_is_admin_unparseable() {
    let classifier = Classifier::new(16);
    let cases = [
        "SELECT 1 FROM",
        "SELECT 'unterminated",
        "SELECT \"unterminated",
        "SELECT `unterminated",
        "SELECT /* unterminated comment",
        "/*! SELECT 1",
        "SELECT \0 FROM t",
        "DELETE FROM t\0; DROP TABLE x",
        "SELECT\u{a0}1",
        "SELEC 1",
        ")))",
        "SELECT $$ ; $$",
    ];
    for sql in cases {
        let got = classifier.classify_mysql(sql, MySqlMode::DEFAULT);
        assert_eq!(got.kind, StatementKind::Admin, "{sql:?}: {got:?}");
        assert!(got.flags.unparseable, "{sql:?}: {got:?}");
    }
}

#[test]
fn garbage_never_panics() {
    let pieces = [
        "SELECT",
        "DELETE",
        "FROM",
        "WITH",
        "(",
        ")",
        "'",
        "\"",
        "`",
        "\\",
        ";",
        "-- ",
        "--",
        "#",
        "/*",
        "*/",
        "/*!",
        "/*!50001",
        "/*M!",
        "t",
        "load_file",
        ",",
        "*",
        "AS",
        "INTO",
        "OUTFILE",
        "PREPARE",
        "s",
        "FROM",
        "SET",
        "@",
        "@@global.",
        "1",
        "=",
        ":=",
        "WHERE",
        "FOR UPDATE",
        "\n",
        "ROLE",
        "LOAD DATA",
        "$$",
        "?",
    ];
    let classifier = Classifier::new(64);
    for sql in soup(&pieces, 3_000, true) {
        for no_backslash_escapes in [false, true] {
            for ansi_quotes in [false, true] {
                let got = classifier.classify_mysql(&sql, MySqlMode { no_backslash_escapes, ansi_quotes });
                if got.flags.unparseable {
                    assert_eq!(got.kind, StatementKind::Admin);
                }
            }
        }
    }
}
