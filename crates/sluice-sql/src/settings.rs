//! SET, RESET and SHOW: which settings are harmless (`Session`) and which
//! change privilege or the server (`Admin`).
//!
//! Owns: [`HARMLESS_SETTINGS`] and the rules for `VariableSetStmt`.
//! Does not own: tracking the values per session (the adapter does).
//!
//! Rules:
//! - `SET ROLE`, `SET SESSION AUTHORIZATION`, `RESET ROLE`,
//!   `RESET SESSION AUTHORIZATION` (also `SET LOCAL ...`): `Admin` + `set_role`.
//! - `SET`/`RESET` of a setting in [`HARMLESS_SETTINGS`]: `Session`.
//!   `client_encoding` (also `SET NAMES`) is harmless only for `UTF8`
//!   (`UNICODE`) or `DEFAULT`: another encoding changes how the server reads
//!   the bytes of later statements, which Sluice parses as UTF-8.
//! - `SET TRANSACTION ...`, `SET SESSION CHARACTERISTICS AS TRANSACTION ...`,
//!   `SET TRANSACTION SNAPSHOT`: `Session`.
//! - `RESET ALL`: `Session` (PostgreSQL does not reset `role` or
//!   `session_authorization` with it; it does reset
//!   `standard_conforming_strings`, which the adapter tracks).
//! - Any other setting, including custom `app.*` settings (row-level
//!   security policies often read them): `Admin`.
//! - `SHOW x` / `SHOW ALL`: `Read` (PostgreSQL itself hides settings a role
//!   may not read).

use pg_query::NodeEnum;
use pg_query::protobuf::{self as pb, VariableSetKind};
use sluice_model::sql::StatementKind;

use crate::walk::Walker;

/// Settings every driver issues and that change neither privilege nor the
/// server (compared ASCII case-insensitively, as PostgreSQL compares them).
pub const HARMLESS_SETTINGS: &[&str] = &[
    "statement_timeout",
    "lock_timeout",
    "idle_in_transaction_session_timeout",
    "idle_session_timeout",
    "transaction_timeout",
    "search_path",
    "application_name",
    "datestyle",
    "timezone",
    "intervalstyle",
    "extra_float_digits",
    "client_encoding",
    "standard_conforming_strings",
    "client_min_messages",
    "bytea_output",
    "default_transaction_isolation",
    "default_transaction_read_only",
    "default_transaction_deferrable",
    "transaction_isolation",
    "transaction_read_only",
    "transaction_deferrable",
    "lc_monetary",
    "lc_numeric",
    "lc_time",
    "xmloption",
    "xmlbinary",
    "default_text_search_config",
];

/// `VAR_SET_MULTI` forms that only set transaction characteristics.
const TRANSACTION_FORMS: &[&str] = &["TRANSACTION", "SESSION CHARACTERISTICS", "TRANSACTION SNAPSHOT"];

fn is_role_setting(name: &str) -> bool {
    name.eq_ignore_ascii_case("role") || name.eq_ignore_ascii_case("session_authorization")
}

fn is_harmless(name: &str) -> bool {
    HARMLESS_SETTINGS.iter().any(|s| s.eq_ignore_ascii_case(name))
}

/// Whether a `client_encoding` value keeps the client's bytes UTF-8.
fn utf8_encoding(args: &[pb::Node]) -> bool {
    let [arg] = args else { return false };
    match arg.node.as_ref() {
        Some(NodeEnum::AConst(c)) => match c.val.as_ref() {
            Some(pb::a_const::Val::Sval(s)) => {
                let norm: String =
                    s.sval.chars().filter(|c| *c != '-' && *c != '_').collect::<String>().to_ascii_lowercase();
                norm == "utf8" || norm == "unicode"
            }
            _ => false,
        },
        _ => false,
    }
}

impl Walker {
    /// `SET`, `SET LOCAL`, `RESET`, `RESET ALL`, `SET TRANSACTION ...`.
    pub(crate) fn variable_set(&mut self, s: &pb::VariableSetStmt) {
        self.nodes(&s.args);
        if s.name.eq_ignore_ascii_case("search_path") {
            self.flags.set_search_path = true;
        }
        let kind = VariableSetKind::try_from(s.kind).unwrap_or(VariableSetKind::Undefined);
        let class = match kind {
            VariableSetKind::VarResetAll => StatementKind::Session,
            VariableSetKind::VarSetMulti => {
                if TRANSACTION_FORMS.contains(&s.name.as_str()) {
                    StatementKind::Session
                } else {
                    StatementKind::Admin
                }
            }
            VariableSetKind::VarSetValue
            | VariableSetKind::VarSetDefault
            | VariableSetKind::VarSetCurrent
            | VariableSetKind::VarReset => {
                if is_role_setting(&s.name) {
                    self.flags.set_role = true;
                    StatementKind::Admin
                } else if s.name.eq_ignore_ascii_case("client_encoding")
                    && kind == VariableSetKind::VarSetValue
                    && !utf8_encoding(&s.args)
                {
                    StatementKind::Admin
                } else if is_harmless(&s.name) {
                    StatementKind::Session
                } else {
                    StatementKind::Admin
                }
            }
            VariableSetKind::Undefined => StatementKind::Admin,
        };
        self.raise(class);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn harmless_is_case_insensitive() {
        assert!(is_harmless("DateStyle"));
        assert!(is_harmless("TIMEZONE"));
        assert!(!is_harmless("role"));
        assert!(!is_harmless("app.tenant_id"));
        assert!(is_role_setting("ROLE"));
    }
}
