//! MySQL statements other than queries and DML: DDL, transactions, SHOW,
//! EXPLAIN, LOCK TABLES, USE, SET.
//!
//! Owns: the statement allow-list (anything not matched here is `Admin`),
//! [`MYSQL_HARMLESS_SETTINGS`] and the `SET` rules.
//! Does not own: statements the pre-scan already decided (`prescan.rs`),
//! queries and DML (`walk.rs`), expressions (`expr.rs`).

use sluice_model::sql::StatementKind;
use sqlparser::ast::{
    ContextModifier, CreateTableLikeKind, Expr, ObjectName, ObjectType, Set, ShowStatementFilter,
    ShowStatementFilterPosition, ShowStatementOptions, Statement, Value,
};

use super::walk::{QueryCtx, Walker, object_name};

/// MySQL session variables that change neither privilege nor the server,
/// nor what the data means to other sessions (compared ASCII
/// case-insensitively). `SET` of one of these (`SESSION`/`LOCAL` scope, or
/// none) is `Session`; any other variable is `Admin`, including
/// `sql_log_bin` (hides writes from replicas and the binary log),
/// `foreign_key_checks` and `unique_checks` (integrity), and every
/// `GLOBAL`/`PERSIST` assignment.
///
/// `sql_mode` is here: it can turn `NO_BACKSLASH_ESCAPES` and
/// `ANSI_QUOTES` on or off, which the adapter must track (see
/// [`crate::MySqlMode`]). The `character_set_*` variables (and `SET NAMES`)
/// are harmless only with a UTF-8 character set: another one changes how
/// the server reads the bytes of later statements.
pub const MYSQL_HARMLESS_SETTINGS: &[&str] = &[
    "autocommit",
    "time_zone",
    "sql_mode",
    "character_set_client",
    "character_set_connection",
    "character_set_results",
    "collation_connection",
    "transaction_isolation",
    "tx_isolation",
    "transaction_read_only",
    "tx_read_only",
    "wait_timeout",
    "interactive_timeout",
    "net_read_timeout",
    "net_write_timeout",
    "max_execution_time",
    "max_statement_time",
    "lock_wait_timeout",
    "innodb_lock_wait_timeout",
    "sql_select_limit",
    "sql_safe_updates",
    "group_concat_max_len",
    "sql_auto_is_null",
    "div_precision_increment",
    "lc_time_names",
    "default_week_format",
    "sql_notes",
    "sql_warnings",
    "sql_quote_show_create",
];

fn is_harmless(name: &str) -> bool {
    MYSQL_HARMLESS_SETTINGS.iter().any(|s| s.eq_ignore_ascii_case(name))
}

/// Whether a character-set name keeps the client's bytes UTF-8.
pub(crate) fn utf8_charset(name: &str) -> bool {
    let norm: String = name.chars().filter(|c| *c != '-' && *c != '_').collect::<String>().to_ascii_lowercase();
    matches!(norm.as_str(), "utf8" | "utf8mb3" | "utf8mb4" | "default")
}

impl Walker {
    /// One parsed statement.
    pub(crate) fn statement(&mut self, s: &Statement) {
        match s {
            Statement::Query(q) => self.query(q, QueryCtx::Plain),
            Statement::Insert(i) => self.insert(i),
            Statement::Update(u) => self.update(u),
            Statement::Delete(d) => self.delete(d),
            Statement::Explain { analyze, statement, .. } => self.explain(*analyze, statement),
            Statement::ExplainTable { table_name, .. } => self.table_ref(table_name),
            Statement::ShowVariable { .. }
            | Statement::ShowCreate { .. }
            | Statement::ShowProcessList { .. }
            | Statement::ShowCharset(_) => {}
            Statement::ShowFunctions { filter }
            | Statement::ShowCollation { filter }
            | Statement::ShowStatus { filter, .. }
            | Statement::ShowVariables { filter, .. } => self.show_filter(filter.as_ref()),
            Statement::ShowColumns { show_options, .. }
            | Statement::ShowDatabases { show_options, .. }
            | Statement::ShowSchemas { show_options, .. }
            | Statement::ShowTables { show_options, .. }
            | Statement::ShowViews { show_options, .. } => self.show_options(show_options),
            Statement::Use(_) => self.raise(StatementKind::Session),
            Statement::Set(set) => self.set(set),
            Statement::StartTransaction { statements, exception, .. }
                if statements.is_empty() && exception.is_none() =>
            {
                self.raise(StatementKind::Transaction);
            }
            Statement::Commit { .. }
            | Statement::Rollback { .. }
            | Statement::Savepoint { .. }
            | Statement::ReleaseSavepoint { .. } => self.raise(StatementKind::Transaction),
            Statement::LockTables { tables } => {
                self.raise(StatementKind::Write);
                for t in tables {
                    self.written(&ObjectName::from(vec![t.table.clone()]));
                }
            }
            Statement::UnlockTables | Statement::Deallocate { .. } => self.raise(StatementKind::Utility),
            Statement::Analyze(a) => {
                self.raise(StatementKind::Utility);
                match &a.table_name {
                    Some(name) => self.table_ref(name),
                    None => self.unknown(),
                }
            }
            Statement::Truncate(t) => {
                self.raise(StatementKind::Ddl);
                for target in &t.table_names {
                    self.written(&target.name);
                }
            }
            Statement::Drop { object_type, names, table, .. } => self.drop(*object_type, names, table.as_ref()),
            Statement::CreateTable(ct) => {
                self.raise(StatementKind::Ddl);
                self.written(&ct.name);
                if let Some(q) = &ct.query {
                    self.query(q, QueryCtx::Subquery);
                }
                if let Some(CreateTableLikeKind::Plain(like) | CreateTableLikeKind::Parenthesized(like)) = &ct.like {
                    self.table_ref(&like.name);
                }
                if ct.clone.is_some() {
                    self.unknown();
                }
            }
            Statement::CreateView(cv) => {
                self.raise(StatementKind::Ddl);
                self.written(&cv.name);
                self.query(&cv.query, QueryCtx::Subquery);
            }
            Statement::CreateIndex(ci) => {
                self.raise(StatementKind::Ddl);
                self.written(&ci.table_name);
            }
            Statement::AlterTable(at) => {
                self.raise(StatementKind::Ddl);
                self.written(&at.name);
            }
            Statement::RenameTable(renames) => {
                self.raise(StatementKind::Ddl);
                for r in renames {
                    self.written(&r.old_name);
                    self.written(&r.new_name);
                }
            }
            Statement::Execute { .. } | Statement::Prepare { .. } => {
                self.found.flags.dynamic_sql = true;
                self.unknown();
            }
            _ => self.unknown(),
        }
    }

    /// `EXPLAIN ANALYZE x` runs `x`: it has `x`'s kind. Plain `EXPLAIN x`
    /// (and `EXPLAIN FORMAT=...`) is `Read`, listing `x`'s tables as read;
    /// an `x` that is not understood still makes it `Admin`.
    fn explain(&mut self, analyze: bool, statement: &Statement) {
        if analyze {
            self.statement(statement);
            return;
        }
        let mut child = self.child();
        child.statement(statement);
        let found = child.found;
        if found.kind == StatementKind::Admin {
            self.unknown();
        }
        self.found.read.extend(found.read);
        self.found.read.extend(found.written);
        self.found.functions.extend(found.functions);
    }

    fn show_filter(&mut self, filter: Option<&ShowStatementFilter>) {
        if let Some(ShowStatementFilter::Where(e)) = filter {
            self.expr(e);
        }
    }

    fn show_options(&mut self, options: &ShowStatementOptions) {
        if let Some(ShowStatementFilterPosition::Infix(f) | ShowStatementFilterPosition::Suffix(f)) =
            &options.filter_position
        {
            self.show_filter(Some(f));
        }
        self.expr_opt(options.limit.as_ref());
    }

    /// `DROP TABLE/VIEW/INDEX`: `Ddl`, the tables written. Other objects
    /// reach here only when the pre-scan did not decide them: `Admin`.
    fn drop(&mut self, object_type: ObjectType, names: &[ObjectName], table: Option<&ObjectName>) {
        match object_type {
            ObjectType::Table | ObjectType::View => {
                self.raise(StatementKind::Ddl);
                for name in names {
                    self.written(name);
                }
            }
            ObjectType::Index => {
                self.raise(StatementKind::Ddl);
                match table {
                    Some(t) => self.written(t),
                    None => self.unknown(),
                }
            }
            _ => self.unknown(),
        }
    }

    /// `SET`. `SET ROLE`, `SET PASSWORD` and global scopes are decided by
    /// the pre-scan; what reaches here is checked again (defence in depth).
    fn set(&mut self, set: &Set) {
        match set {
            Set::SingleAssignment { scope, hivevar: false, variable, values } => {
                self.assignment(*scope, variable);
                self.exprs(values);
                if let [value] = &values[..] {
                    self.charset_value(variable, value);
                }
            }
            Set::MultipleAssignments { assignments } => {
                for a in assignments {
                    self.assignment(a.scope, &a.name);
                    self.expr(&a.value);
                    self.charset_value(&a.name, &a.value);
                }
            }
            Set::SetNames { charset_name, .. } => {
                if utf8_charset(&charset_name.value) {
                    self.raise(StatementKind::Session);
                } else {
                    self.unknown();
                }
            }
            Set::SetNamesDefault {} | Set::SetTimeZone { .. } | Set::SetTransaction { .. } => {
                self.raise(StatementKind::Session);
            }
            Set::SetRole { .. } | Set::SetSessionAuthorization(_) => {
                self.found.flags.set_role = true;
                self.unknown();
            }
            _ => self.unknown(),
        }
    }

    /// One `name = value`: a user variable (`@x`) or a harmless session
    /// variable is `Session`; anything else is `Admin`.
    fn assignment(&mut self, scope: Option<ContextModifier>, variable: &ObjectName) {
        if scope == Some(ContextModifier::Global) {
            self.unknown();
            return;
        }
        let Some(name) = object_name(variable) else {
            self.unknown();
            return;
        };
        let bare = match name.split_once('.') {
            Some(("@@session" | "@@local", rest)) => rest,
            Some(_) => {
                self.unknown();
                return;
            }
            None => name.strip_prefix("@@").unwrap_or(&name),
        };
        let user_variable = bare.starts_with('@');
        if user_variable || is_harmless(bare) {
            self.raise(StatementKind::Session);
        } else {
            self.unknown();
        }
    }

    /// A `character_set_*` variable set to anything but UTF-8 is `Admin`.
    fn charset_value(&mut self, variable: &ObjectName, value: &Expr) {
        let name = object_name(variable).unwrap_or_default();
        if !name.rsplit('.').next().unwrap_or_default().trim_start_matches('@').starts_with("character_set_") {
            return;
        }
        let charset = match value {
            Expr::Identifier(i) => Some(i.value.clone()),
            Expr::Value(v) => match &v.value {
                Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => Some(s.clone()),
                Value::Null => Some("default".to_owned()),
                _ => None,
            },
            _ => None,
        };
        if !charset.as_deref().is_some_and(utf8_charset) {
            self.unknown();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn harmless_and_charsets() {
        assert!(is_harmless("AUTOCOMMIT"));
        assert!(is_harmless("time_zone"));
        assert!(!is_harmless("sql_log_bin"));
        assert!(!is_harmless("foreign_key_checks"));
        assert!(utf8_charset("utf8mb4"));
        assert!(utf8_charset("UTF8"));
        assert!(!utf8_charset("gbk"));
        assert!(!utf8_charset("latin1"));
    }
}
