//! One uncached classification: parse, walk every statement, fingerprint,
//! and apply the rules that hold for the request as a whole.
//!
//! Owns: turning a [`Walker`]'s findings into a [`SqlClassification`];
//! the unparseable case; the fingerprint.
//! Does not own: the per-node rules (the walker) or caching.

use pg_query::FingerprintOptions;
use sluice_model::sql::{SqlClassification, SqlFlags, StatementKind};

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
    finish(walker, u32::try_from(stmts.len()).unwrap_or(u32::MAX), fingerprint)
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

/// For text that does not parse: `raw-` and the FNV-1a 64 hash of the mode
/// and the exact bytes.
fn raw_fingerprint(sql: &str, mode: PgStringMode) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mode_byte = u8::from(mode.standard_conforming_strings);
    for byte in std::iter::once(mode_byte).chain(sql.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("raw-{hash:016x}")
}

fn unparseable(sql: &str, mode: PgStringMode) -> SqlClassification {
    SqlClassification {
        kind: StatementKind::Admin,
        statements: 0,
        tables_read: Vec::new(),
        tables_written: Vec::new(),
        functions: Vec::new(),
        flags: SqlFlags { unparseable: true, ..SqlFlags::default() },
        fingerprint: raw_fingerprint(sql, mode),
    }
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort_unstable();
    v.dedup();
    v
}

/// Request-wide rules: the flags that are always `Admin`, and sorted,
/// de-duplicated name lists.
fn finish(walker: Walker, statements: u32, fingerprint: String) -> SqlClassification {
    let mut kind = walker.kind;
    let f = &walker.flags;
    if f.security_function || f.set_role || f.alter_system || f.copy_program || f.copy_file || f.unparseable {
        kind = StatementKind::Admin;
    }
    SqlClassification {
        kind,
        statements,
        tables_read: sorted(walker.read),
        tables_written: sorted(walker.written),
        functions: sorted(walker.functions),
        flags: walker.flags,
        fingerprint,
    }
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
