//! Code that runs later or elsewhere: CREATE FUNCTION / PROCEDURE, ALTER
//! FUNCTION, and DO blocks, with their bodies parsed.
//!
//! Owns: the routine rules and the PL/pgSQL body analysis.
//! Does not own: the statements found inside bodies (the same walker
//! classifies them, in a child walker).
//!
//! Rules:
//! - `CREATE FUNCTION/PROCEDURE` is `Ddl`. It is `Admin` when it is
//!   `SECURITY DEFINER` (runs with the owner's privileges), `LEAKPROOF`, has
//!   a `SUPPORT` function, sets a setting outside the harmless list, or is
//!   written in a language other than `sql` and `plpgsql` (C, untrusted
//!   languages: anything goes).
//! - The body is parsed: `sql` bodies with the SQL grammar (also
//!   `BEGIN ATOMIC ... END` and `RETURN ...`), `plpgsql` bodies with
//!   `pg_query::parse_plpgsql` and every embedded SQL expression with the SQL
//!   grammar. `EXECUTE` of a string (`EXECUTE`, `FOR ... IN EXECUTE`,
//!   `OPEN ... FOR EXECUTE`, `RETURN QUERY EXECUTE`) sets `dynamic_sql`.
//!   A body that cannot be parsed sets `dynamic_sql` and makes it `Admin`.
//! - From the body, the functions it calls are added to `functions`, and
//!   the risk flags it raises (`security_function`, `set_role`,
//!   `alter_system`, `copy_program`, `copy_file`, `dynamic_sql`) are kept: a
//!   function that wraps `pg_read_file` launders it into a plain
//!   `SELECT f()`, so creating it is `Admin`. An `Admin` body statement makes
//!   the creation `Admin`. Tables the body touches are not listed (nothing
//!   is read or written now).
//! - `ALTER FUNCTION`: `Ddl`; `Admin` for `SECURITY DEFINER`, `LEAKPROOF`,
//!   `SUPPORT`, or a non-harmless `SET`.
//! - `DO`: `Admin` + `dynamic_sql` always; a PL/pgSQL body is parsed as
//!   above for its functions and flags.

use pg_query::protobuf::{self as pb, Node};
use pg_query::{NodeEnum, ParserOptions};
use serde_json::Value;
use sluice_model::sql::StatementKind;

use crate::findings::merge_flags;
use crate::walk::Walker;

/// How deep the PL/pgSQL JSON is followed (serde_json itself stops at 128).
const MAX_JSON_DEPTH: u32 = 128;

fn string_arg(d: &pb::DefElem) -> Option<&str> {
    match d.arg.as_deref().and_then(|a| a.node.as_ref()) {
        Some(NodeEnum::String(s)) => Some(s.sval.as_str()),
        _ => None,
    }
}

/// A boolean option: `None` when absent-valued (true in PostgreSQL).
fn bool_arg(d: &pb::DefElem) -> Option<bool> {
    match d.arg.as_deref().and_then(|a| a.node.as_ref()) {
        Some(NodeEnum::Boolean(b)) => Some(b.boolval),
        Some(NodeEnum::Integer(i)) => Some(i.ival != 0),
        _ => None,
    }
}

impl Walker {
    /// The options shared by CREATE and ALTER FUNCTION. Returns the
    /// language and the `AS` items.
    fn routine_options<'a>(&mut self, options: &'a [Node]) -> (Option<&'a str>, Option<&'a [Node]>) {
        let mut language = None;
        let mut body = None;
        for opt in options {
            let Some(NodeEnum::DefElem(d)) = opt.node.as_ref() else {
                self.unknown();
                continue;
            };
            match d.defname.as_str() {
                "language" => match string_arg(d) {
                    Some(l) => language = Some(l),
                    None => self.unknown(),
                },
                "as" => match d.arg.as_deref().and_then(|a| a.node.as_ref()) {
                    Some(NodeEnum::List(l)) => body = Some(l.items.as_slice()),
                    _ => self.unknown(),
                },
                // SECURITY DEFINER / LEAKPROOF: anything but an explicit
                // false is Admin.
                "security" | "leakproof" => {
                    if bool_arg(d) != Some(false) {
                        self.raise(StatementKind::Admin);
                    }
                }
                "support" => self.raise(StatementKind::Admin),
                "set" => match d.arg.as_deref().and_then(|a| a.node.as_ref()) {
                    Some(NodeEnum::VariableSetStmt(s)) => {
                        let mut probe = self.child();
                        probe.variable_set(s);
                        if probe.kind == StatementKind::Admin {
                            self.raise(StatementKind::Admin);
                        }
                        merge_flags(&mut self.flags, &probe.flags);
                    }
                    _ => self.unknown(),
                },
                "volatility" | "strict" | "cost" | "rows" | "parallel" | "window" | "transform" => {
                    self.node_opt(d.arg.as_deref())
                }
                _ => self.unknown(),
            }
        }
        (language, body)
    }

    pub(crate) fn create_function(&mut self, s: &pb::CreateFunctionStmt) {
        self.raise(StatementKind::Ddl);
        self.nodes(&s.parameters);
        self.type_name(s.return_type.as_ref());
        let (language, body) = self.routine_options(&s.options);
        let language = match language {
            Some(l) => l.to_ascii_lowercase(),
            None if s.sql_body.is_some() => "sql".to_owned(),
            None => {
                self.unknown();
                return;
            }
        };
        match language.as_str() {
            "sql" => {
                let mut b = self.child();
                if let Some(sql_body) = s.sql_body.as_deref() {
                    b.sql_body(sql_body);
                } else {
                    match body_text(body) {
                        Some(text) => match pg_query::parse(text, self.mode.parser_options()) {
                            Ok(parsed) => {
                                for raw in &parsed.protobuf.stmts {
                                    b.statement(raw.stmt.as_deref());
                                }
                            }
                            Err(_) => b.opaque_body(),
                        },
                        None => b.opaque_body(),
                    }
                }
                self.merge_body(b);
            }
            "plpgsql" => {
                if s.sql_body.is_some() {
                    self.unknown();
                }
                let node = NodeEnum::CreateFunctionStmt(Box::new(s.clone()));
                self.plpgsql(&node);
            }
            _ => self.unknown(),
        }
    }

    pub(crate) fn alter_function(&mut self, s: &pb::AlterFunctionStmt) {
        self.raise(StatementKind::Ddl);
        let (language, body) = self.routine_options(&s.actions);
        if language.is_some() || body.is_some() {
            self.unknown();
        }
    }

    pub(crate) fn do_block(&mut self, s: &pb::DoStmt) {
        self.raise(StatementKind::Admin);
        self.flags.dynamic_sql = true;
        let mut language = None;
        for arg in &s.args {
            if let Some(NodeEnum::DefElem(d)) = arg.node.as_ref()
                && d.defname == "language"
            {
                language = string_arg(d);
            }
        }
        if language.is_none_or(|l| l.eq_ignore_ascii_case("plpgsql")) {
            self.plpgsql(&NodeEnum::DoStmt(s.clone()));
        }
    }

    /// A body that cannot be parsed: dynamic and not understood.
    fn opaque_body(&mut self) {
        self.flags.dynamic_sql = true;
        self.unknown();
    }

    /// `BEGIN ATOMIC ... END` (lists of statements) or `RETURN expr`.
    fn sql_body(&mut self, n: &Node) {
        self.deeper(|w| match n.node.as_ref() {
            Some(NodeEnum::List(l)) => {
                for item in &l.items {
                    w.sql_body(item);
                }
            }
            Some(NodeEnum::ReturnStmt(r)) => w.node_opt(r.returnval.as_deref()),
            Some(_) => w.statement(Some(n)),
            None => {}
        });
    }

    /// What a body contributes to the statement that defines it.
    fn merge_body(&mut self, body: Walker) {
        if body.kind == StatementKind::Admin {
            self.raise(StatementKind::Admin);
        }
        self.functions.extend(body.functions);
        let f = &body.flags;
        self.flags.dynamic_sql |= f.dynamic_sql;
        self.flags.security_function |= f.security_function;
        self.flags.set_role |= f.set_role;
        self.flags.alter_system |= f.alter_system;
        self.flags.copy_program |= f.copy_program;
        self.flags.copy_file |= f.copy_file;
    }

    /// Parses a PL/pgSQL routine (its statement deparsed to the canonical
    /// text `parse_plpgsql` reads) and classifies every SQL expression in it.
    fn plpgsql(&mut self, stmt: &NodeEnum) {
        let mut b = self.child();
        let parsed = stmt.deparse(Default::default()).ok().and_then(|text| pg_query::parse_plpgsql(&text).ok());
        match parsed {
            Some(json) => {
                let mut exprs = Vec::new();
                let mut dynamic = false;
                if !collect_plpgsql(&json, 0, &mut exprs, &mut dynamic) {
                    b.opaque_body();
                }
                if dynamic {
                    b.flags.dynamic_sql = true;
                }
                for (mode, query) in exprs {
                    b.plpgsql_expr(mode, query);
                }
            }
            None => b.opaque_body(),
        }
        self.merge_body(b);
    }

    /// One PL/pgSQL expression, parsed in the mode PL/pgSQL records for it.
    fn plpgsql_expr(&mut self, mode: i64, query: &str) {
        let Ok(mode) = i32::try_from(mode) else {
            self.opaque_body();
            return;
        };
        if !(0..=5).contains(&mode) {
            self.opaque_body();
            return;
        }
        let options = ParserOptions::from(mode) | self.mode.parser_options();
        match pg_query::parse(query, options) {
            Ok(parsed) => {
                for raw in &parsed.protobuf.stmts {
                    match raw.stmt.as_deref().and_then(|n| n.node.as_ref()) {
                        // `target := expr` parses to an assignment whose
                        // value is a SELECT.
                        Some(NodeEnum::PlassignStmt(a)) => {
                            self.nodes(&a.indirection);
                            match a.val.as_deref() {
                                Some(v) => self.deeper(|w| w.select(v)),
                                None => self.unknown(),
                            }
                        }
                        _ => self.statement(raw.stmt.as_deref()),
                    }
                }
            }
            Err(_) => self.opaque_body(),
        }
    }
}

/// The body text of `AS '...'` (one item; two items is a C object file).
fn body_text(items: Option<&[Node]>) -> Option<&str> {
    match items? {
        [item] => match item.node.as_ref() {
            Some(NodeEnum::String(s)) => Some(s.sval.as_str()),
            _ => None,
        },
        _ => None,
    }
}

/// Collects every `PLpgSQL_expr` (parse mode, query text) and notes
/// dynamic SQL. Returns false when the JSON is deeper than the bound.
fn collect_plpgsql<'a>(v: &'a Value, depth: u32, exprs: &mut Vec<(i64, &'a str)>, dynamic: &mut bool) -> bool {
    if depth > MAX_JSON_DEPTH {
        return false;
    }
    match v {
        Value::Object(map) => {
            for (key, value) in map {
                match key.as_str() {
                    "PLpgSQL_expr" => {
                        let mode = value.get("parseMode").and_then(Value::as_i64);
                        let query = value.get("query").and_then(Value::as_str);
                        match (mode, query) {
                            (Some(m), Some(q)) => exprs.push((m, q)),
                            _ => return false,
                        }
                    }
                    "PLpgSQL_stmt_dynexecute" | "PLpgSQL_stmt_dynfors" | "dynquery" => *dynamic = true,
                    _ => {}
                }
                if !collect_plpgsql(value, depth + 1, exprs, dynamic) {
                    return false;
                }
            }
            true
        }
        Value::Array(items) => items.iter().all(|i| collect_plpgsql(i, depth + 1, exprs, dynamic)),
        _ => true,
    }
}
