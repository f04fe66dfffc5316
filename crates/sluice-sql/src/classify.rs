//! One uncached classification: parse, walk every statement, fingerprint,
//! and apply the rules that hold for the request as a whole.
//!
//! Owns: the PostgreSQL pipeline from text to [`SqlClassification`]; the
//! fingerprint.
//! Does not own: the per-node rules (the walker), the request-wide rules
//! (`findings.rs`) or caching.

use pg_query::FingerprintOptions;
use sluice_model::sql::SqlClassification;

use crate::findings;
use crate::string_mode::PgStringMode;
use crate::walk::Walker;

/// Classifies one request text. Never panics on any input: a panic inside
/// (which would be a bug) is caught and reported as unparseable `Admin`.
pub(crate) fn classify(sql: &str, mode: PgStringMode) -> SqlClassification {
    std::panic::catch_unwind(|| classify_inner(sql, mode)).unwrap_or_else(|_| unparseable(sql, mode))
}

fn classify_inner(sql: &str, mode: PgStringMode) -> SqlClassification {
    let options = mode.parser_options();
    let parsed = match pg_query::parse(sql, options) {
        Ok(parsed) => parsed,
        Err(_) => return unparseable(sql, mode),
    };
    let stmts = &parsed.protobuf.stmts;
    let mut walker = Walker::new(mode);
    for raw in stmts {
        walker.statement(raw.stmt.as_deref());
    }
    if stmts.len() > 1 {
        walker.flags.multi_statement = true;
    }
    let fingerprint = fingerprint(sql, mode).unwrap_or_else(|| raw_fingerprint(sql, mode));
    walker.into_findings().into_classification(u32::try_from(stmts.len()).unwrap_or(u32::MAX), fingerprint)
}

/// `pg_query`'s fingerprint with relation names, schemas and digits all
/// significant and aliases ignored: the PostgreSQL 18 default would let
/// `SELECT * FROM secrets p` share a fingerprint with
/// `SELECT * FROM patients p` (the alias replaces the name), which must not
/// happen for something approvals bind to.
fn fingerprint(sql: &str, mode: PgStringMode) -> Option<String> {
    let options = FingerprintOptions::RANGEVAR_PG17_COMPAT | FingerprintOptions::FULL_RELNAME;
    pg_query::fingerprint(sql, mode.parser_options(), options).ok().map(|f| f.hex)
}

/// The byte naming PostgreSQL and the string mode in a raw fingerprint.
fn mode_tag(mode: PgStringMode) -> u8 {
    u8::from(mode.standard_conforming_strings)
}

fn raw_fingerprint(sql: &str, mode: PgStringMode) -> String {
    findings::raw_fingerprint(mode_tag(mode), sql)
}

fn unparseable(sql: &str, mode: PgStringMode) -> SqlClassification {
    findings::unparseable(mode_tag(mode), sql)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_fingerprint_depends_on_mode_and_text() {
        let a = raw_fingerprint("x", PgStringMode::STANDARD);
        assert_eq!(a, raw_fingerprint("x", PgStringMode::STANDARD));
        assert_ne!(a, raw_fingerprint("x", PgStringMode::BACKSLASH_ESCAPES));
        assert_ne!(a, raw_fingerprint("y", PgStringMode::STANDARD));
        assert!(a.starts_with("raw-"));
    }

    #[test]
    fn fingerprint_keeps_relation_names() {
        let fp = |s| fingerprint(s, PgStringMode::STANDARD).unwrap_or_default();
        assert_eq!(fp("SELECT * FROM t WHERE a = 1"), fp("SELECT * FROM t WHERE a = 2"));
        assert_ne!(fp("SELECT * FROM patients p"), fp("SELECT * FROM secrets p"));
        assert_ne!(fp("SELECT * FROM public.t"), fp("SELECT * FROM private.t"));
        assert_ne!(fp("SELECT * FROM t_2024_01"), fp("SELECT * FROM t_2024_02"));
    }
}
