//! The classification cache: a repeated statement returns the same `Arc`,
//! the cache is bounded (entries and bytes), and the string mode is part of
//! the key.

use std::sync::Arc;

use sluice_sql::{Classifier, PgStringMode, StatementKind};

#[test]
fn repeated_statement_returns_the_same_arc() {
    let classifier = Classifier::new(8);
    let sql = "SELECT * FROM patients WHERE id = 1";
    let first = classifier.classify_postgres(sql, PgStringMode::default());
    let second = classifier.classify_postgres(sql, PgStringMode::default());
    assert!(Arc::ptr_eq(&first, &second));
    assert_eq!(classifier.cached_entries(), 1);
}

#[test]
fn cache_is_bounded_by_entries_and_evicts_least_recently_used() {
    let classifier = Classifier::new(2);
    let mode = PgStringMode::default();
    let a = classifier.classify_postgres("SELECT 1", mode);
    let _b = classifier.classify_postgres("SELECT 2", mode);
    // Touch `a`, so `SELECT 2` is the least recently used.
    assert!(Arc::ptr_eq(&a, &classifier.classify_postgres("SELECT 1", mode)));
    let _c = classifier.classify_postgres("SELECT 3", mode);
    assert_eq!(classifier.cached_entries(), 2);
    assert!(Arc::ptr_eq(&a, &classifier.classify_postgres("SELECT 1", mode)), "recently used entry kept");
    let b_again = classifier.classify_postgres("SELECT 2", mode);
    assert!(!Arc::ptr_eq(&_b, &b_again), "evicted entry is classified afresh");
    for i in 0..100 {
        classifier.classify_postgres(&format!("SELECT {i} FROM t"), mode);
        assert!(classifier.cached_entries() <= 2);
    }
}

#[test]
fn cache_is_bounded_by_bytes() {
    let classifier = Classifier::with_limits(1_000, 8 * 1024);
    let mode = PgStringMode::default();
    for i in 0..200 {
        let sql = format!("SELECT {i}, '{}' FROM t", "x".repeat(500));
        classifier.classify_postgres(&sql, mode);
        assert!(classifier.cached_bytes() <= 8 * 1024, "bytes {}", classifier.cached_bytes());
    }
    assert!(classifier.cached_entries() < 200);
    assert!(classifier.cached_entries() > 0);
}

#[test]
fn mode_is_part_of_the_key() {
    let classifier = Classifier::new(8);
    let sql = r"SELECT 'a\''; DROP TABLE patients; --'";
    let on = classifier.classify_postgres(sql, PgStringMode::STANDARD);
    let off = classifier.classify_postgres(sql, PgStringMode::BACKSLASH_ESCAPES);
    assert_eq!(on.kind, StatementKind::Read);
    assert_eq!(off.kind, StatementKind::Ddl);
    assert!(off.flags.multi_statement);
    assert_eq!(classifier.cached_entries(), 2);
    // And both stay correct from the cache.
    assert_eq!(classifier.classify_postgres(sql, PgStringMode::STANDARD).kind, StatementKind::Read);
    assert_eq!(classifier.classify_postgres(sql, PgStringMode::BACKSLASH_ESCAPES).kind, StatementKind::Ddl);
}

#[test]
fn zero_capacity_disables_the_cache() {
    let classifier = Classifier::new(0);
    let a = classifier.classify_postgres("SELECT 1", PgStringMode::default());
    let b = classifier.classify_postgres("SELECT 1", PgStringMode::default());
    assert!(!Arc::ptr_eq(&a, &b));
    assert_eq!(a, b);
    assert_eq!(classifier.cached_entries(), 0);
}

#[test]
fn shared_across_threads() {
    let classifier = Arc::new(Classifier::new(64));
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let classifier = Arc::clone(&classifier);
            std::thread::spawn(move || {
                for i in 0..200 {
                    let sql = format!("SELECT {} FROM t{}", i % 10, t % 2);
                    let got = classifier.classify_postgres(&sql, PgStringMode::default());
                    assert_eq!(got.kind, StatementKind::Read);
                }
            })
        })
        .collect();
    for h in handles {
        assert!(h.join().is_ok());
    }
    assert!(classifier.cached_entries() <= 64);
}

#[test]
fn mode_only_matters_with_a_backslash() {
    let classifier = Classifier::new(0);
    let texts = [
        "SELECT 'a''b'; DELETE FROM t",
        "SELECT $$x$$, E'y', 'z' FROM t WHERE a = 'it''s'",
        "/* c */ SELECT 1 -- d",
        r"SELECT 'a\''; DROP TABLE t; --'",
    ];
    for sql in texts {
        let on = classifier.classify_postgres(sql, PgStringMode::STANDARD);
        let off = classifier.classify_postgres(sql, PgStringMode::BACKSLASH_ESCAPES);
        if !PgStringMode::affects(sql) {
            assert_eq!(on, off, "{sql}");
        } else {
            assert_ne!(on.kind, off.kind, "{sql}");
        }
    }
}
