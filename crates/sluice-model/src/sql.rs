//! What a SQL request is, as the classifier (`sluice-sql`) reads it and policy
//! (`sluice-policy`) decides on it.

use serde::{Deserialize, Serialize};

/// The kind of a statement. The order is the order of danger: a string of
/// several statements takes the most dangerous kind among them, and whatever
/// cannot be parsed or understood is `Admin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatementKind {
    /// Reads data and changes nothing (SELECT, SHOW, EXPLAIN without ANALYZE, ...).
    Read,
    /// BEGIN, COMMIT, ROLLBACK, SAVEPOINT, ...
    Transaction,
    /// Harmless session settings every driver issues (`SET statement_timeout`, ...).
    Session,
    /// Statements that neither read nor write data (`LISTEN`, `DISCARD`, `DEALLOCATE`, ...).
    Utility,
    /// Changes rows (INSERT, UPDATE, DELETE, MERGE, COPY FROM, SELECT ... FOR UPDATE locks).
    Write,
    /// Changes schema (CREATE, ALTER, DROP, TRUNCATE, ...).
    Ddl,
    /// Changes privilege or the server, or cannot be understood: the most dangerous.
    Admin,
}

/// Risk flags found anywhere in the request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SqlFlags {
    /// UPDATE or DELETE with no WHERE clause.
    pub where_less_write: bool,
    /// More than one statement in one string.
    pub multi_statement: bool,
    /// A data-modifying statement inside a WITH clause.
    pub writes_in_cte: bool,
    /// `COPY ... TO/FROM PROGRAM`.
    pub copy_program: bool,
    /// `COPY ... TO/FROM 'file'` on the server.
    pub copy_file: bool,
    /// `DO` blocks, `EXECUTE` of dynamic SQL in PL/pgSQL bodies.
    pub dynamic_sql: bool,
    /// `PREPARE name AS ...`: the body runs later by name.
    pub prepare_body: bool,
    /// `SET ROLE`, `SET SESSION AUTHORIZATION`, `RESET ROLE`, `set_config('role', ...)`.
    pub set_role: bool,
    /// `ALTER SYSTEM`.
    pub alter_system: bool,
    /// A call of a function in the security-function table (`pg_read_file`, `lo_export`, `dblink`, ...).
    pub security_function: bool,
    /// The text could not be parsed; the kind is `Admin`.
    pub unparseable: bool,
    /// `SET`/`RESET` of `search_path` (any form, `LOCAL` too): unqualified
    /// table names may resolve to another schema afterwards.
    #[serde(default)]
    pub set_search_path: bool,
}

impl SqlFlags {
    /// Every flag's name, as written in audit records and Cedar contexts, in
    /// the order of [`SqlFlags::values`].
    pub const NAMES: [&'static str; 12] = [
        "where_less_write",
        "multi_statement",
        "writes_in_cte",
        "copy_program",
        "copy_file",
        "dynamic_sql",
        "prepare_body",
        "set_role",
        "alter_system",
        "security_function",
        "unparseable",
        "set_search_path",
    ];

    /// Every flag's value, in the order of [`SqlFlags::NAMES`].
    pub fn values(&self) -> [bool; 12] {
        [
            self.where_less_write,
            self.multi_statement,
            self.writes_in_cte,
            self.copy_program,
            self.copy_file,
            self.dynamic_sql,
            self.prepare_body,
            self.set_role,
            self.alter_system,
            self.security_function,
            self.unparseable,
            self.set_search_path,
        ]
    }
}

/// The classification of one SQL request (a simple Query string, or the
/// statement of one Execute).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SqlClassification {
    /// The most dangerous kind among the statements.
    pub kind: StatementKind,
    /// Number of statements in the string.
    pub statements: u32,
    /// Tables read, schema-qualified where the text qualifies them, folded as
    /// PostgreSQL folds identifiers; sorted and de-duplicated.
    pub tables_read: Vec<String>,
    /// Tables written (inserted, updated, deleted, truncated, altered, dropped).
    pub tables_written: Vec<String>,
    /// Functions called, lower-case, schema-qualified where written so.
    pub functions: Vec<String>,
    pub flags: SqlFlags,
    /// Normalised fingerprint: the same for statements that differ only in
    /// constants.
    pub fingerprint: String,
}

impl SqlClassification {
    /// A request that reads and changes nothing, so its audit commit may
    /// overlap the query's round trip (its result is still held until the
    /// record is durable).
    pub fn is_pure_read(&self) -> bool {
        self.kind == StatementKind::Read && self.flags == SqlFlags::default()
    }
}
