//! The security-function table: functions whose call alone makes a statement
//! `Admin`, and the few functions that make a `SELECT` a write.
//!
//! Owns: [`SECURITY_FUNCTIONS`], [`is_security_function`],
//! [`MYSQL_SECURITY_FUNCTIONS`], [`is_mysql_security_function`] and the
//! minimum kind a function call implies.
//! Does not own: finding the calls (the walker does that).
//!
//! A name matches on its last part (`pg_catalog.pg_read_file` and
//! `evil.pg_read_file` both match `pg_read_file`), compared ASCII
//! case-insensitively (so a quoted `"PG_READ_FILE"` matches too). Both
//! choices can over-report a user function that merely shares a name; that is
//! the fail-closed direction.
//!
//! | name (or prefix*)            | why it is a security function |
//! | ---                          | --- |
//! | `pg_read_file`, `pg_read_binary_file`, `pg_stat_file`, `pg_ls_dir`, `pg_ls_*dir`, `pg_current_logfile` | read the server's file system |
//! | `pg_file_write`, `pg_file_rename`, `pg_file_unlink`, `pg_file_sync`, `pg_file_read`, `pg_file_length`, `pg_logdir_ls` | adminpack: write or list server files |
//! | `lo_*`, `loread`, `lowrite`  | large objects: `lo_import`/`lo_export` touch server files; all of them read or write data outside the table model |
//! | `dblink*`                    | dblink: connect elsewhere, run SQL there (`dblink_exec`) |
//! | `postgres_fdw*`              | postgres_fdw connection management |
//! | `pg_terminate_backend`, `pg_cancel_backend`, `pg_reload_conf`, `pg_rotate_logfile`, `pg_log_backend_memory_contexts`, `pg_promote`, `pg_switch_wal`, `pg_create_restore_point`, `pg_backup_*`, `pg_start_backup`, `pg_stop_backup`, `pg_wal_replay_*` | signal other sessions or control the server |
//! | `pg_create_*_replication_slot`, `pg_drop_replication_slot`, `pg_copy_*_replication_slot`, `pg_replication_slot_advance`, `pg_logical_*`, `pg_replication_origin_*` | replication: stream every change in the database |
//! | `set_config`                 | changes any setting, including `role` (then `set_role` is set too) |
//! | `query_to_xml*`, `query_to_xmlschema`, `table_to_xml*`, `schema_to_xml*`, `database_to_xml*`, `cursor_to_xml*`, `ts_stat`, `ts_rewrite` | run SQL given as text, so the tables they read are hidden from the classification (also sets `dynamic_sql`) |
//! | `pg_stat_reset*`, `pg_stat_statements_reset` | erase monitoring evidence |
//! | `pg_import_system_collations`, `pg_truncate_visibility_map` | server maintenance |
//!
//! Decided *not* to be security functions: `current_setting` (PostgreSQL
//! already hides settings a role may not read, and reading changes nothing),
//! `pg_sleep` and advisory locks (resource use, not privilege).
//!
//! Minimum kinds: a security function makes the statement `Admin`;
//! `nextval` and `setval` change a sequence, so they make it at least
//! `Write`; `pg_notify` is `NOTIFY`, so at least `Utility`.
//!
//! # MySQL / MariaDB
//!
//! [`MYSQL_SECURITY_FUNCTIONS`], matched the same way (MySQL function names
//! are case-insensitive, quoted or not):
//!
//! | name                         | why it is a security function |
//! | ---                          | --- |
//! | `load_file`                  | reads any file the server can read (also sets `copy_file`) |
//! | `sys_exec`, `sys_eval`, `sys_bineval`, `sys_get`, `sys_set` | `lib_mysqludf_sys` UDFs: run operating-system commands, read and set the server's environment |
//! | `do_system`                  | the classic "raptor" UDF: runs a shell command |
//! | `http_get`, `http_post`, `http_put`, `http_delete` | `mysql-udf-http`: connect elsewhere from the server |
//!
//! Decided *not* to be security functions, as for PostgreSQL: `sleep`,
//! `benchmark`, `get_lock` and the other lock functions (resource use, not
//! privilege; a statement timeout is the remedy), and reads of system
//! variables (`@@x`, which the server itself guards). MariaDB's
//! `nextval`/`setval` (and `NEXT VALUE FOR`) make a statement at least
//! `Write`.

use sluice_model::sql::StatementKind;

/// How a table entry matches a function name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Match {
    /// The whole name.
    Exact(&'static str),
    /// Every name starting with this.
    Prefix(&'static str),
    /// Every name starting with the first and ending with the second.
    Around(&'static str, &'static str),
}

/// The documented table (see the module header for the reasons).
pub const SECURITY_FUNCTIONS: &[Match] = &[
    // Server files.
    Match::Exact("pg_read_file"),
    Match::Exact("pg_read_binary_file"),
    Match::Exact("pg_stat_file"),
    Match::Exact("pg_ls_dir"),
    Match::Around("pg_ls_", "dir"),
    Match::Exact("pg_current_logfile"),
    // adminpack.
    Match::Exact("pg_file_write"),
    Match::Exact("pg_file_rename"),
    Match::Exact("pg_file_unlink"),
    Match::Exact("pg_file_sync"),
    Match::Exact("pg_file_read"),
    Match::Exact("pg_file_length"),
    Match::Exact("pg_logdir_ls"),
    // Large objects.
    Match::Prefix("lo_"),
    Match::Exact("loread"),
    Match::Exact("lowrite"),
    // Other servers.
    Match::Prefix("dblink"),
    Match::Prefix("postgres_fdw"),
    // Sessions and the server.
    Match::Exact("pg_terminate_backend"),
    Match::Exact("pg_cancel_backend"),
    Match::Exact("pg_reload_conf"),
    Match::Exact("pg_rotate_logfile"),
    Match::Exact("pg_log_backend_memory_contexts"),
    Match::Exact("pg_promote"),
    Match::Exact("pg_switch_wal"),
    Match::Exact("pg_create_restore_point"),
    Match::Prefix("pg_backup_"),
    Match::Exact("pg_start_backup"),
    Match::Exact("pg_stop_backup"),
    Match::Prefix("pg_wal_replay_"),
    // Replication.
    Match::Around("pg_create_", "_replication_slot"),
    Match::Exact("pg_drop_replication_slot"),
    Match::Around("pg_copy_", "_replication_slot"),
    Match::Exact("pg_replication_slot_advance"),
    Match::Prefix("pg_logical_"),
    Match::Prefix("pg_replication_origin_"),
    // Settings.
    Match::Exact("set_config"),
    // SQL given as text.
    Match::Prefix("query_to_xml"),
    Match::Prefix("table_to_xml"),
    Match::Prefix("schema_to_xml"),
    Match::Prefix("database_to_xml"),
    Match::Prefix("cursor_to_xml"),
    Match::Exact("ts_stat"),
    Match::Exact("ts_rewrite"),
    // Evidence.
    Match::Prefix("pg_stat_reset"),
    Match::Exact("pg_stat_statements_reset"),
    // Maintenance.
    Match::Exact("pg_import_system_collations"),
    Match::Exact("pg_truncate_visibility_map"),
];

/// The MySQL/MariaDB table (see the module header for the reasons).
pub const MYSQL_SECURITY_FUNCTIONS: &[Match] = &[
    Match::Exact("load_file"),
    Match::Exact("sys_exec"),
    Match::Exact("sys_eval"),
    Match::Exact("sys_bineval"),
    Match::Exact("sys_get"),
    Match::Exact("sys_set"),
    Match::Exact("do_system"),
    Match::Exact("http_get"),
    Match::Exact("http_post"),
    Match::Exact("http_put"),
    Match::Exact("http_delete"),
];

/// Functions in [`SECURITY_FUNCTIONS`] that run SQL given as text.
const DYNAMIC_SQL_PREFIXES: &[&str] =
    &["query_to_xml", "table_to_xml", "schema_to_xml", "database_to_xml", "cursor_to_xml", "ts_stat", "ts_rewrite"];

/// The last part of a possibly qualified name, lower-cased.
fn base_name(name: &str) -> String {
    name.rsplit('.').next().unwrap_or(name).to_ascii_lowercase()
}

/// Whether `name` (possibly schema-qualified, any case) is in the
/// security-function table.
pub fn is_security_function(name: &str) -> bool {
    in_table(SECURITY_FUNCTIONS, name)
}

/// Whether `name` (possibly database-qualified, any case) is in the MySQL
/// security-function table.
pub fn is_mysql_security_function(name: &str) -> bool {
    in_table(MYSQL_SECURITY_FUNCTIONS, name)
}

fn in_table(table: &[Match], name: &str) -> bool {
    let base = base_name(name);
    let base = base.trim_matches('"');
    table.iter().any(|m| match *m {
        Match::Exact(n) => base == n,
        Match::Prefix(p) => base.starts_with(p),
        Match::Around(p, s) => base.len() >= p.len() + s.len() && base.starts_with(p) && base.ends_with(s),
    })
}

/// Whether the function runs SQL it receives as text.
pub(crate) fn runs_sql_text(name: &str) -> bool {
    let base = base_name(name);
    DYNAMIC_SQL_PREFIXES.iter().any(|p| base.starts_with(p))
}

/// The least dangerous kind a statement calling `name` can have.
pub(crate) fn min_kind(name: &str) -> Option<StatementKind> {
    if is_security_function(name) {
        return Some(StatementKind::Admin);
    }
    match base_name(name).as_str() {
        "nextval" | "setval" => Some(StatementKind::Write),
        "pg_notify" => Some(StatementKind::Utility),
        _ => None,
    }
}

/// The least dangerous kind a MySQL statement calling `name` can have.
pub(crate) fn mysql_min_kind(name: &str) -> Option<StatementKind> {
    if is_mysql_security_function(name) {
        return Some(StatementKind::Admin);
    }
    match base_name(name).as_str() {
        "nextval" | "setval" => Some(StatementKind::Write),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let yes = [
            "pg_read_file",
            "pg_catalog.pg_read_file",
            "PG_READ_FILE",
            "evil.pg_read_binary_file",
            "pg_ls_dir",
            "pg_ls_waldir",
            "pg_ls_tmpdir",
            "pg_stat_file",
            "lo_import",
            "lo_export",
            "lo_from_bytea",
            "lo_get",
            "dblink",
            "dblink_exec",
            "dblink_connect_u",
            "postgres_fdw_disconnect_all",
            "pg_terminate_backend",
            "pg_cancel_backend",
            "pg_reload_conf",
            "pg_rotate_logfile",
            "set_config",
            "pg_catalog.set_config",
            "pg_file_write",
            "pg_create_logical_replication_slot",
            "pg_logical_slot_get_changes",
            "query_to_xml",
            "table_to_xmlschema",
            "pg_stat_reset",
            "pg_backup_start",
        ];
        for name in yes {
            assert!(is_security_function(name), "{name}");
        }
        let no = [
            "now",
            "count",
            "current_setting",
            "pg_sleep",
            "lower",
            "pg_ls",
            "pg_create_",
            "pg_catalog.btrim",
            "pg_stat_get_live_tuples",
            "local_fn",
        ];
        for name in no {
            assert!(!is_security_function(name), "{name}");
        }
    }

    #[test]
    fn kinds() {
        assert_eq!(min_kind("nextval"), Some(StatementKind::Write));
        assert_eq!(min_kind("pg_catalog.setval"), Some(StatementKind::Write));
        assert_eq!(min_kind("pg_notify"), Some(StatementKind::Utility));
        assert_eq!(min_kind("lo_export"), Some(StatementKind::Admin));
        assert_eq!(min_kind("lower"), None);
        assert!(runs_sql_text("query_to_xml_and_xmlschema"));
        assert!(!runs_sql_text("lower"));
    }

    #[test]
    fn mysql_table() {
        for name in ["load_file", "LOAD_FILE", "mysql.sys_exec", "sys_eval", "do_system", "http_get"] {
            assert!(is_mysql_security_function(name), "{name}");
            assert_eq!(mysql_min_kind(name), Some(StatementKind::Admin), "{name}");
        }
        for name in ["sleep", "benchmark", "get_lock", "pg_read_file", "concat", "sys_exec_log"] {
            assert!(!is_mysql_security_function(name), "{name}");
        }
        assert_eq!(mysql_min_kind("NEXTVAL"), Some(StatementKind::Write));
        assert_eq!(mysql_min_kind("now"), None);
    }
}
