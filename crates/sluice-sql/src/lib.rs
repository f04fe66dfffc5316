//! `sluice-sql`: PostgreSQL and MySQL/MariaDB statement classification,
//! fail closed.
//!
//! Owns: turning a SQL request text into a [`SqlClassification`] (kind,
//! tables read and written, functions, risk flags, fingerprint), for
//! PostgreSQL ([`Classifier::classify_postgres`]) and MySQL/MariaDB
//! ([`Classifier::classify_mysql`]), and the cache of classifications.
//! Does not own: deciding anything (that is `sluice-policy`), or tracking
//! session settings (the adapter passes [`PgStringMode`] or [`MySqlMode`]).
//!
//! # Layout
//!
//! - PostgreSQL: `classify.rs` (pipeline, fingerprint), `walk.rs`
//!   (queries), `expr.rs`, `stmts.rs`, `ddl.rs`, `settings.rs`,
//!   `routines.rs` (function bodies), `names.rs`, `string_mode.rs`.
//! - MySQL: `mysql/mod.rs` (pipeline, [`MySqlMode`], fingerprint),
//!   `mysql/lexer.rs` (statement splitting, quoting, comments),
//!   `mysql/prescan.rs` (keyword rules), `mysql/walk.rs`, `mysql/expr.rs`,
//!   `mysql/stmts.rs`.
//! - Shared: `findings.rs` (request-wide rules), `security_functions.rs`
//!   (both tables), `names.rs` (name rendering), `cache.rs`.
//!
//! ```
//! use sluice_sql::{Classifier, PgStringMode, StatementKind};
//!
//! let classifier = Classifier::new(10_000);
//! let c = classifier.classify_postgres("DELETE FROM patients", PgStringMode::default());
//! assert_eq!(c.kind, StatementKind::Write);
//! assert!(c.flags.where_less_write);
//! assert_eq!(c.tables_written, ["patients"]);
//! ```
//!
//! # How a request is read
//!
//! The text is parsed with `pg_query`, the PostgreSQL 18 grammar itself, in
//! the session's string mode. The parse tree is walked by this crate over an
//! **allow-list** of node types: every node type is handled explicitly, and
//! any other node type makes the statement `Admin`. `pg_query`'s own
//! `tables()`/`summary()` helpers are not used (they miss tables in PREPARE
//! bodies and DECLARE CURSOR).
//!
//! **Fail closed.** Whatever cannot be parsed is `Admin` with `unparseable`.
//! That includes absurd nesting: `pg_query` refuses it (its protobuf decoder
//! stops at 100 levels of nested messages, which in practice means about 45
//! nested sub-selects or a left-deep chain of about 45 binary operators such
//! as `a + b + c + ...`), and the walker stops at its own depth bound too.
//! Whatever parses but is not understood is `Admin`.
//!
//! # Kinds
//!
//! A request with several statements has the most dangerous kind among them
//! (order: `Read < Transaction < Session < Utility < Write < Ddl < Admin`).
//! An empty request (only comments or whitespace) is `Read` with zero
//! statements.
//!
//! | statement | kind |
//! | --- | --- |
//! | `SELECT`, `VALUES`, `TABLE t`, `SHOW`, plain `EXPLAIN` | `Read` |
//! | `EXPLAIN ANALYZE x` | the kind of `x` (it runs) |
//! | `SELECT ... FOR UPDATE / NO KEY UPDATE / SHARE / KEY SHARE` | `Write` (locked tables are also written) |
//! | `INSERT`, `UPDATE`, `DELETE`, `MERGE`, `COPY ... FROM STDIN`, `LOCK` | `Write` |
//! | `COPY t TO STDOUT` | `Read`; `COPY (query) TO STDOUT` has the query's kind |
//! | `COPY` to or from a server file / a program | `Admin` + `copy_file` / `copy_program` |
//! | `SELECT ... INTO t`, `CREATE TABLE AS` | `Ddl` (creates a table) |
//! | `CREATE/ALTER/DROP` of tables, views, indexes, sequences, types, domains, schemas, functions; `TRUNCATE`, `COMMENT`, `REINDEX`, `CLUSTER`, `VACUUM` (any), `REFRESH MATERIALIZED VIEW`, `ALTER ... RENAME/SET SCHEMA` | `Ddl` |
//! | `ANALYZE` (alone) | `Utility` |
//! | `GRANT`, `REVOKE`, roles, `ALTER ... OWNER`, `ALTER SYSTEM`, `SET ROLE`, `SET SESSION AUTHORIZATION`, `RESET ROLE`, `DISCARD ALL`, `set_config('role', ...)`, `CREATE RULE/TRIGGER/EVENT TRIGGER/POLICY/EXTENSION/LANGUAGE/CAST/...`, foreign servers, user mappings, `IMPORT FOREIGN SCHEMA`, foreign tables, databases, tablespaces, publications, subscriptions, `SECURITY LABEL`, `LOAD`, `CHECKPOINT`, `DO`, `CALL`, `EXECUTE`, two-phase commit | `Admin` |
//! | `BEGIN`, `START TRANSACTION`, `COMMIT`, `ROLLBACK`, `SAVEPOINT`, `RELEASE`, `ROLLBACK TO`, `SET CONSTRAINTS` | `Transaction` |
//! | `SET`/`RESET` of a harmless setting, `RESET ALL`, `SET TRANSACTION ...` | `Session` (see [`HARMLESS_SETTINGS`]); any other `SET` is `Admin` |
//! | `LISTEN`, `UNLISTEN`, `NOTIFY`, `DISCARD PLANS/SEQUENCES/TEMP`, `DEALLOCATE`, `CLOSE`, `FETCH`, `MOVE` | `Utility` |
//! | `PREPARE x AS y` | the kind of `y`, plus `prepare_body`; `y`'s tables are counted |
//! | `EXECUTE x` | `Admin`: the body was prepared elsewhere and cannot be resolved here |
//! | `DECLARE c CURSOR FOR q` | the kind of `q`; `q`'s tables are counted |
//!
//! Decisions worth knowing:
//! - `LOCK` is `Write`, with the locked tables written: PostgreSQL requires
//!   write privileges for the strong lock modes, and a lock can stall every
//!   writer.
//! - `CALL` is `Admin`: a procedure can do anything, including transaction
//!   control.
//! - `DISCARD ALL` is `Admin` + `set_role`: it includes
//!   `SET SESSION AUTHORIZATION DEFAULT`.
//! - `CREATE FUNCTION` is `Ddl` unless `SECURITY DEFINER`, `LEAKPROOF`,
//!   a `SUPPORT` function, a non-harmless `SET`, a language other than
//!   `sql`/`plpgsql`, or a body that calls a security function or is
//!   `Admin`: then `Admin`. Bodies are parsed (see `routines.rs`).
//! - `ALTER TABLE` is `Ddl`, but `Admin` for owner, trigger, rule, row-level
//!   security, replica identity and foreign-data option changes. `DROP` of
//!   triggers, policies, rules, extensions, foreign servers, languages and
//!   similar guards is `Admin`.
//! - `REINDEX SYSTEM/DATABASE` is `Admin`; `PREPARE TRANSACTION`,
//!   `COMMIT PREPARED`, `ROLLBACK PREPARED` are `Admin`.
//! - `nextval`/`setval` make a statement at least `Write`; `pg_notify` at
//!   least `Utility`.
//! - `CREATE OPERATOR/AGGREGATE/TYPE` and `ALTER OPERATOR/TYPE` record the
//!   support functions they name (`FUNCTION = f`, `SFUNC = f`, ...) as
//!   functions, so an operator over `pg_read_file` is `Admin` like a wrapper
//!   function would be.
//!
//! # Flags
//!
//! - `where_less_write`: an UPDATE or DELETE with no WHERE clause, anywhere
//!   (also inside a CTE or `EXPLAIN ANALYZE`). Any WHERE clause counts, even
//!   `WHERE true`: the flag is syntactic. MERGE never sets it (it always has
//!   a join condition), so treat MERGE as bulk-capable.
//! - `multi_statement`: more than one statement in the text.
//! - `writes_in_cte`: INSERT/UPDATE/DELETE/MERGE as a WITH item.
//! - `copy_program`, `copy_file`: COPY to/from a program or server file.
//! - `dynamic_sql`: `DO`; `EXECUTE` of a string in a PL/pgSQL body; a
//!   routine body that cannot be parsed; functions that run SQL given as
//!   text (`query_to_xml`, ...).
//! - `prepare_body`: `PREPARE name AS ...`.
//! - `set_role`: `SET ROLE`, `SET SESSION AUTHORIZATION`, `RESET ROLE`,
//!   `RESET SESSION AUTHORIZATION`, `DISCARD ALL`, and `set_config` whose
//!   first argument is `'role'`, `'session_authorization'` or anything but a
//!   string constant.
//! - `alter_system`: `ALTER SYSTEM`.
//! - `security_function`: a call of a function in [`SECURITY_FUNCTIONS`]
//!   (documented in `security_functions.rs`).
//! - `unparseable`: the text did not parse.
//!
//! `security_function`, `set_role`, `alter_system`, `copy_program`,
//! `copy_file` and `unparseable` always make the request `Admin`.
//!
//! # Tables and functions
//!
//! - Names are written as the text qualifies them (`patients`,
//!   `public.patients`, `db.public.patients`) and folded as PostgreSQL folds
//!   them: unquoted identifiers lower-cased, quoted ones kept (`"Patients"`
//!   is `Patients`), `U&"..."` escapes decoded. A part containing `.`, `"`,
//!   whitespace or control characters is written double-quoted, so one
//!   table named `"a.b"` never looks like table `b` in schema `a`. Lists are
//!   sorted and de-duplicated.
//! - An unqualified name matching a CTE visible at that point is the CTE,
//!   not a table (without RECURSIVE, a CTE sees only earlier CTEs, so
//!   `WITH patients AS (SELECT * FROM patients)` still reads `patients`).
//!   Tables inside CTEs, sub-selects, PREPARE bodies, DECLARE CURSOR,
//!   EXPLAIN, `COPY (query)`, views and `CREATE TABLE AS` are counted.
//! - Written: targets of INSERT, UPDATE, DELETE, MERGE, TRUNCATE, COPY FROM,
//!   LOCK, `SELECT ... FOR UPDATE`; relations created, altered, dropped,
//!   renamed, commented on, indexed, vacuumed, clustered, reindexed,
//!   refreshed, granted on, or given triggers, rules or policies; the parents
//!   of a new inheriting or partition table. UPDATE, DELETE and MERGE
//!   targets (and INSERT targets with RETURNING or ON CONFLICT) are also
//!   read. A plain EXPLAIN lists its statement's tables as read.
//! - Referenced but only read by DDL: `REFERENCES` targets, `LIKE` sources.
//! - Functions: every function call, named as written (schema-qualified when
//!   written so; the grammar itself qualifies SQL-syntax forms such as
//!   `EXTRACT` as `pg_catalog.extract`), folded like identifiers (unquoted
//!   names are lower-case). For CREATE FUNCTION and DO, the functions their
//!   bodies call. For `Admin` statements the lists may be incomplete (the
//!   kind is already the most dangerous).
//!
//! # `standard_conforming_strings`
//!
//! With it off, backslashes in ordinary `'...'` literals are escapes, and
//! the same bytes can split into different statements. `pg_query` exposes
//! the scanner flag, so Sluice parses in the session's mode
//! ([`PgStringMode`]) and classifies exactly the statements the server will
//! run; the cache is keyed by mode and text. The adapter must keep the mode
//! current (the server reports it in `ParameterStatus`); a text without a
//! backslash reads the same in both modes ([`PgStringMode::affects`]), and a
//! message that must be classified before the mode is known should be
//! classified in both when it does contain one. `SET
//! client_encoding` to anything but UTF-8 is `Admin`, because the server
//! would then read the bytes differently from how Sluice does.
//!
//! # Fingerprint
//!
//! `pg_query`'s fingerprint (hex), the same for statements that differ only
//! in constants, computed with relation names, schemas and digits
//! significant and aliases ignored (the PostgreSQL 18 default would let an
//! alias hide which table is read). Unparseable text gets `raw-` and an
//! FNV-1a hash of the mode and the bytes.
//!
//! # Cache
//!
//! [`Classifier`] keeps a bounded LRU keyed by (mode, text) of
//! `Arc<SqlClassification>`; see `cache.rs` for the exact bounds.
//!
//! # Known limits
//!
//! - A user-defined function called from a SELECT can do anything; the
//!   classification lists its name in `functions` but cannot see inside it.
//!   Policies for read-only principals should allow-list functions.
//! - A view, or a custom operator, reads what its definition reads; the
//!   classification sees the view's name (as a table) and not the operator's
//!   function. Both come from `Ddl`, where their definitions are checked.
//! - Unqualified table names resolve through the session's `search_path`,
//!   which `SET search_path` (a harmless setting) changes. Policies should
//!   name tables schema-qualified or pin `search_path`.
//! - PL/pgSQL bodies are analysed with `standard_conforming_strings` as the
//!   defining session has it; a body is compiled in the calling session.
//! - Trigger functions (`RETURNS trigger`) in PL/pgSQL are not parsed by
//!   `pg_query` 18.1 (its JSON output is invalid for them), so creating one
//!   is `Admin` + `dynamic_sql`.
//!
//! # MySQL and MariaDB
//!
//! ```
//! use sluice_sql::{Classifier, MySqlMode, StatementKind};
//!
//! let classifier = Classifier::new(10_000);
//! let c = classifier.classify_mysql("SELECT 1 /*! ; DELETE FROM Patients */", MySqlMode::DEFAULT);
//! assert_eq!(c.kind, StatementKind::Write);
//! assert!(c.flags.multi_statement && c.flags.where_less_write);
//! assert_eq!(c.tables_written, ["patients"]);
//! ```
//!
//! How a request is read, in order:
//! 1. **Lexed** by this crate (`mysql/lexer.rs`) as the server lexes it in
//!    the session's [`MySqlMode`]: `'...'` and `"..."` strings (backslash
//!    escapes unless `NO_BACKSLASH_ESCAPES`; `"..."` is an identifier under
//!    `ANSI_QUOTES`), `` `...` `` identifiers, `#`, `-- ` (a space or
//!    control character after the dashes; `--1` is not a comment) and
//!    `/* */` comments. **Executable comments** `/*! ... */`,
//!    `/*!50001 ... */` and MariaDB's `/*M! ... */` are executed by the
//!    server, so their contents are classified as code, whatever the
//!    version number (a statement for a newer server is still counted).
//!    The text is split at `;` into statements. Anything the lexer is not
//!    sure how the server reads is `Admin` + `unparseable`: unterminated
//!    strings, identifiers or comments, NUL bytes, Unicode whitespace
//!    outside quotes, a comment inside an executable comment.
//! 2. **Pre-scanned** (`mysql/prescan.rs`) by leading keywords, for the
//!    statements `sqlparser` cannot parse and those whose meaning does not
//!    depend on the rest. Anywhere in a statement, `INTO OUTFILE` /
//!    `INTO DUMPFILE` set `copy_file`, and a call of a MySQL security
//!    function sets `security_function`, parsed or not.
//! 3. **Parsed** with `sqlparser` 0.64 (`MySqlDialect`, its recursion
//!    limit of 50 kept), one statement at a time, from a normalised text
//!    (comments removed, executable-comment markers removed, backslashes
//!    doubled under `NO_BACKSLASH_ESCAPES`, `"..."` rewritten as
//!    `` `...` `` under `ANSI_QUOTES`). If `sqlparser`'s tokenizer finds a
//!    comment the lexer did not, or a different number of quoted tokens,
//!    the two disagree about the text and the statement is `Admin` +
//!    `unparseable`. A statement whose longest run of tokens at one
//!    parenthesis level exceeds 8,192 is not parsed (`Admin` +
//!    `unparseable`): `sqlparser` builds operator chains without counting
//!    them, and dropping one 50,000 deep overflows a 2 MiB stack.
//! 4. **Walked** over an allow-list of `sqlparser` node types
//!    (`mysql/walk.rs`, `expr.rs`, `stmts.rs`); any other node, or a field
//!    only another dialect uses, makes the statement `Admin`. The walker
//!    stops at 200 nested nodes (`Admin`).
//!
//! | statement | kind |
//! | --- | --- |
//! | `SELECT`, `VALUES`, `SHOW ...`, `DESCRIBE`, plain `EXPLAIN` | `Read` |
//! | `EXPLAIN ANALYZE x` | the kind of `x` (it runs) |
//! | `SELECT ... FOR UPDATE / FOR SHARE` | `Write` (locked tables are also written) |
//! | `INSERT`, `REPLACE`, `INSERT ... ON DUPLICATE KEY UPDATE`, `UPDATE`, `DELETE` (single- and multi-table), `LOCK TABLES` | `Write` |
//! | `CREATE/ALTER/DROP TABLE`, `CREATE/DROP VIEW`, `CREATE/DROP INDEX`, `TRUNCATE`, `RENAME TABLE`, `CREATE TABLE ... SELECT/LIKE` | `Ddl` |
//! | `ANALYZE TABLE`, `UNLOCK TABLES`, `DEALLOCATE PREPARE`, `DROP PREPARE` | `Utility` |
//! | `BEGIN`, `START TRANSACTION [WITH CONSISTENT SNAPSHOT / READ ONLY / READ WRITE]`, `COMMIT`, `ROLLBACK`, `SAVEPOINT`, `RELEASE SAVEPOINT`, `ROLLBACK TO` | `Transaction` |
//! | `SET` of a setting in [`MYSQL_HARMLESS_SETTINGS`] (no scope, `SESSION`, `LOCAL`, `@@x`, `@@session.x`), `SET NAMES` / `SET CHARACTER SET` with a UTF-8 charset, `SET TRANSACTION ...`, `SET @user_var = ...`, `SELECT ... INTO @var`, `@v := x`, `USE db` | `Session` |
//! | `LOAD DATA`, `LOAD XML`, `SELECT ... INTO OUTFILE/DUMPFILE`, `LOAD_FILE()` | `Admin` + `copy_file` |
//! | `PREPARE s FROM ...` | `Admin` + `dynamic_sql` + `prepare_body`; a literal body is classified too (its tables and flags are added) |
//! | `EXECUTE s` | `Admin` + `dynamic_sql` |
//! | `SET ROLE`, `SET DEFAULT ROLE` | `Admin` + `set_role` |
//! | `GRANT`, `REVOKE`, `CREATE/ALTER/DROP/RENAME USER`, `CREATE/DROP ROLE`, `SET PASSWORD`, `SET GLOBAL/PERSIST/PERSIST_ONLY`, `@@global.x`, `SET` of any other variable, `SET NAMES` with another charset, `CALL`, `HANDLER`, `XA`, `INSTALL/UNINSTALL`, `KILL`, `FLUSH`, `RESET`, `PURGE`, `CHANGE MASTER/REPLICATION`, `START/STOP REPLICA/SLAVE`, `SHUTDOWN`, `RESTART`, `BINLOG`, `CLONE`, `CACHE INDEX`, `LOAD INDEX`, `IMPORT TABLE`, `LOCK/UNLOCK INSTANCE`; `CREATE/ALTER/DROP` of databases, schemas, procedures, functions, triggers, events, servers, tablespaces, resource groups; anything with an explicit `DEFINER`; MariaDB `SET STATEMENT ... FOR` | `Admin` |
//!
//! Decisions worth knowing:
//! - **Table names are folded to lower case** (`` `Clinic`.`Patients` ``
//!   is `clinic.patients`), quoted or not, as a server with
//!   `lower_case_table_names = 1` (or 2) compares them. On a server with
//!   `lower_case_table_names = 0` (Linux default) `Patients` and
//!   `patients` are different tables; policies there should name tables
//!   in lower case and not rely on case to tell tables apart. Names are
//!   `db.table` as written (unqualified names resolve through `USE`), and
//!   rendered like PostgreSQL names (a part with a dot is double-quoted).
//!   Unqualified `DUAL` is not a table. Function names are lower-case.
//! - `USE db` and `SET sql_mode` are `Session` (like `search_path` and
//!   `standard_conforming_strings` for PostgreSQL): the adapter must track
//!   the current database and the `NO_BACKSLASH_ESCAPES`/`ANSI_QUOTES`
//!   flags ([`MySqlMode::from_sql_mode`]; the OK packet's status flags
//!   carry `NO_BACKSLASH_ESCAPES`). [`MySqlMode::affects`] says when the
//!   mode can matter at all.
//! - `foreign_key_checks`, `unique_checks` and `sql_log_bin` are not
//!   harmless (`Admin`), so `mysqldump`'s preamble is `Admin`.
//! - A multi-table `UPDATE` writes every table it joins (which columns
//!   belong to which table needs the schema). A multi-table `DELETE`
//!   writes its named targets, resolved through the FROM list's aliases.
//! - `where_less_write` is syntactic: `DELETE ... LIMIT 10` without WHERE
//!   sets it; a JOIN's ON condition does not count as a WHERE.
//! - `REPLACE` and `ON DUPLICATE KEY UPDATE` also read their target.
//! - `sleep()` and `benchmark()` are not security functions (see
//!   `security_functions.rs` for the MySQL table).
//! - Stored-program bodies (`CREATE PROCEDURE ... BEGIN ...; END`) are
//!   split at their inner `;`, as a client without `DELIMITER` would send
//!   them; the statement is `Admin` anyway, but `statements` counts the
//!   pieces.
//! - Fingerprint: SHA-256 (first 16 bytes, hex) of the mode and the
//!   executed tokens (comments dropped, executable comments' contents
//!   kept, words lower-cased). Literals count as `?` only in data
//!   statements (`SELECT`, `INSERT`, `REPLACE`, `UPDATE`, `DELETE`,
//!   `WITH`, `VALUES`, `TABLE`); elsewhere (`SET`, `PREPARE`, `GRANT`, ...)
//!   they are significant. Text the lexer refuses gets `raw-` and FNV-1a,
//!   as for PostgreSQL.
//!
//! Known limits (all fail closed, as `Admin`): `sqlparser` 0.64 does not
//! parse `LOCK IN SHARE MODE`, comma-joined multi-table `UPDATE t1, t2`,
//! `LOCK TABLES db.t`, `DIV`/`MOD` operators, `NEXT VALUE FOR`, `TABLE t`,
//! `DO`, `OPTIMIZE/CHECK/REPAIR TABLE` and `SET @v := x`; nor
//! `ALTER VIEW`. Functions called in column definitions of
//! `CREATE TABLE` are not listed (security functions there are still
//! caught by the token rule).
mod cache;
mod classify;
mod ddl;
mod expr;
mod findings;
mod mysql;
mod names;
mod routines;
mod security_functions;
mod settings;
mod stmts;
mod string_mode;
mod walk;

use std::sync::Arc;

pub use mysql::{MYSQL_HARMLESS_SETTINGS, MySqlMode};
pub use security_functions::{
    MYSQL_SECURITY_FUNCTIONS, Match, SECURITY_FUNCTIONS, is_mysql_security_function, is_security_function,
};
pub use settings::HARMLESS_SETTINGS;
pub use sluice_model::sql::{SqlClassification, SqlFlags, StatementKind};
pub use string_mode::PgStringMode;

use cache::Dialect;
pub use cache::MAX_CACHED_TEXT;

/// Default bound on the bytes the cache holds (texts plus classifications).
pub const DEFAULT_CACHE_BYTES: usize = 64 * 1024 * 1024;

/// Classifies SQL requests, with a bounded cache. `Send + Sync`: share one
/// per process.
#[derive(Debug)]
pub struct Classifier {
    cache: Option<cache::Cache>,
}

impl Classifier {
    /// A classifier caching up to `cache_capacity` classifications (and at
    /// most [`DEFAULT_CACHE_BYTES`]). Zero disables the cache.
    pub fn new(cache_capacity: usize) -> Classifier {
        Classifier::with_limits(cache_capacity, DEFAULT_CACHE_BYTES)
    }

    /// A classifier caching up to `cache_capacity` classifications and
    /// `max_bytes` of text and classification.
    pub fn with_limits(cache_capacity: usize, max_bytes: usize) -> Classifier {
        Classifier { cache: cache::Cache::new(cache_capacity, max_bytes) }
    }

    /// Classifies a PostgreSQL request (a simple-Query string, or the
    /// statement of one Parse). Never panics, never fails: what cannot be
    /// parsed or is not understood is `Admin` (with `flags.unparseable` when
    /// parsing failed).
    pub fn classify_postgres(&self, sql: &str, mode: PgStringMode) -> Arc<SqlClassification> {
        self.cached(sql, Dialect::Postgres(mode), || classify::classify(sql, mode))
    }

    /// Classifies a MySQL or MariaDB request (a `COM_QUERY` text, or the
    /// statement of one `COM_STMT_PREPARE`) in the session's [`MySqlMode`].
    /// Never panics, never fails: what cannot be parsed or is not
    /// understood is `Admin` (with `flags.unparseable` when parsing failed).
    pub fn classify_mysql(&self, sql: &str, mode: MySqlMode) -> Arc<SqlClassification> {
        self.cached(sql, Dialect::MySql(mode), || mysql::classify(sql, mode))
    }

    fn cached(
        &self,
        sql: &str,
        dialect: Dialect,
        classify: impl FnOnce() -> SqlClassification,
    ) -> Arc<SqlClassification> {
        let Some(cache) = &self.cache else {
            return Arc::new(classify());
        };
        let key = cache.key(sql, dialect);
        if let Some(hit) = cache.get(key, sql, dialect) {
            return hit;
        }
        let value = Arc::new(classify());
        cache.insert(key, sql, dialect, Arc::clone(&value));
        value
    }

    /// Entries in the cache now.
    pub fn cached_entries(&self) -> usize {
        self.cache.as_ref().map_or(0, cache::Cache::len)
    }

    /// Bytes the cache accounts for now.
    pub fn cached_bytes(&self) -> usize {
        self.cache.as_ref().map_or(0, cache::Cache::bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifier_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Classifier>();
    }
}
