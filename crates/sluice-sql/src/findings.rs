//! What a walk has found, whatever the dialect, and the request-wide rules
//! that turn it into a [`SqlClassification`].
//!
//! Owns: [`Findings`] (kind, tables, functions, flags), the rules that hold
//! for every request (flags that always mean `Admin`, sorted and
//! de-duplicated name lists), and the fingerprint of text that did not
//! parse.
//! Does not own: any dialect's parse tree or walk (`walk.rs` for
//! PostgreSQL, `mysql/` for MySQL).

use sluice_model::sql::{SqlClassification, SqlFlags, StatementKind};

/// Kind, names and flags found so far in one request.
#[derive(Debug)]
pub(crate) struct Findings {
    pub(crate) kind: StatementKind,
    pub(crate) read: Vec<String>,
    pub(crate) written: Vec<String>,
    pub(crate) functions: Vec<String>,
    pub(crate) flags: SqlFlags,
}

impl Default for Findings {
    fn default() -> Self {
        Findings {
            kind: StatementKind::Read,
            read: Vec::new(),
            written: Vec::new(),
            functions: Vec::new(),
            flags: SqlFlags::default(),
        }
    }
}

impl Findings {
    /// At least this kind.
    pub(crate) fn raise(&mut self, kind: StatementKind) {
        if kind > self.kind {
            self.kind = kind;
        }
    }

    /// Merges everything another walk found.
    pub(crate) fn absorb(&mut self, other: Findings) {
        self.raise(other.kind);
        self.read.extend(other.read);
        self.written.extend(other.written);
        self.functions.extend(other.functions);
        merge_flags(&mut self.flags, &other.flags);
    }

    /// Request-wide rules: the flags that always make a request `Admin`,
    /// and sorted, de-duplicated name lists.
    pub(crate) fn into_classification(self, statements: u32, fingerprint: String) -> SqlClassification {
        let mut kind = self.kind;
        let f = &self.flags;
        if f.security_function || f.set_role || f.alter_system || f.copy_program || f.copy_file || f.unparseable {
            kind = StatementKind::Admin;
        }
        SqlClassification {
            kind,
            statements,
            tables_read: sorted(self.read),
            tables_written: sorted(self.written),
            functions: sorted(self.functions),
            flags: self.flags,
            fingerprint,
        }
    }
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort_unstable();
    v.dedup();
    v
}

/// ORs every flag of `from` into `into`.
pub(crate) fn merge_flags(into: &mut SqlFlags, from: &SqlFlags) {
    into.where_less_write |= from.where_less_write;
    into.multi_statement |= from.multi_statement;
    into.writes_in_cte |= from.writes_in_cte;
    into.copy_program |= from.copy_program;
    into.copy_file |= from.copy_file;
    into.dynamic_sql |= from.dynamic_sql;
    into.prepare_body |= from.prepare_body;
    into.set_role |= from.set_role;
    into.alter_system |= from.alter_system;
    into.security_function |= from.security_function;
    into.unparseable |= from.unparseable;
}

/// For text that does not parse: `raw-` and the FNV-1a 64 hash of a byte
/// naming the dialect and mode (`tag`), then the exact bytes.
pub(crate) fn raw_fingerprint(tag: u8, sql: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in std::iter::once(tag).chain(sql.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("raw-{hash:016x}")
}

/// The classification of text that could not be parsed (or lexed): `Admin`
/// with `unparseable`, nothing else known.
pub(crate) fn unparseable(tag: u8, sql: &str) -> SqlClassification {
    let flags = SqlFlags { unparseable: true, ..SqlFlags::default() };
    Findings { kind: StatementKind::Admin, flags, ..Findings::default() }
        .into_classification(0, raw_fingerprint(tag, sql))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_fingerprint_depends_on_tag_and_text() {
        let a = raw_fingerprint(1, "x");
        assert_eq!(a, raw_fingerprint(1, "x"));
        assert_ne!(a, raw_fingerprint(0, "x"));
        assert_ne!(a, raw_fingerprint(1, "y"));
        assert!(a.starts_with("raw-"));
    }

    #[test]
    fn admin_flags_win() {
        let mut f = Findings::default();
        f.flags.copy_file = true;
        f.read = vec!["b".into(), "a".into(), "b".into()];
        let c = f.into_classification(1, String::new());
        assert_eq!(c.kind, StatementKind::Admin);
        assert_eq!(c.tables_read, ["a", "b"]);
    }
}
