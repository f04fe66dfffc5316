//! The statement allow-list: every statement node type and the kind it
//! gives, plus EXPLAIN and COPY.
//!
//! Owns: `Walker::stmt_enum`, the one place a statement type is mapped to a
//! kind; any statement type not named here is `Admin`.
//! Does not own: query statements (`walk.rs`), DDL targets (`ddl.rs`), SET
//! (`settings.rs`), routines and DO (`routines.rs`).

use pg_query::NodeEnum;
use pg_query::protobuf::{self as pb, Node, ObjectType};
use sluice_model::sql::StatementKind;

use crate::names;
use crate::walk::{QueryCtx, Walker};

impl Walker {
    /// One statement of the request.
    pub(crate) fn statement(&mut self, n: Option<&Node>) {
        match n.and_then(|n| n.node.as_ref()) {
            Some(e) => self.deeper(|w| w.stmt_enum(e)),
            None => self.unknown(),
        }
    }

    pub(crate) fn stmt_enum(&mut self, e: &NodeEnum) {
        use NodeEnum as N;
        use StatementKind as K;
        match e {
            // Queries.
            N::SelectStmt(_) | N::InsertStmt(_) | N::UpdateStmt(_) | N::DeleteStmt(_) | N::MergeStmt(_) => {
                self.query_enum(Some(e), QueryCtx::Plain)
            }
            N::VariableShowStmt(_) => self.raise(K::Read),
            N::ExplainStmt(s) => self.explain(s),
            N::CopyStmt(s) => self.copy(s),
            N::PrepareStmt(s) => {
                self.flags.prepare_body = true;
                self.nodes(&s.argtypes);
                self.query(s.query.as_deref(), QueryCtx::Plain);
            }
            // The body of a prepared statement lives in another message or
            // session: it cannot be resolved here.
            N::ExecuteStmt(s) => {
                self.nodes(&s.params);
                self.unknown();
            }
            N::DeclareCursorStmt(s) => self.query(s.query.as_deref(), QueryCtx::Subquery),
            N::LockStmt(s) => {
                self.raise(K::Write);
                self.relations_written(&s.relations);
            }

            // Transactions and session state.
            N::TransactionStmt(t) => {
                self.nodes(&t.options);
                use pb::TransactionStmtKind as T;
                match T::try_from(t.kind).unwrap_or(T::Undefined) {
                    T::TransStmtBegin
                    | T::TransStmtStart
                    | T::TransStmtCommit
                    | T::TransStmtRollback
                    | T::TransStmtSavepoint
                    | T::TransStmtRelease
                    | T::TransStmtRollbackTo => self.raise(K::Transaction),
                    // Two-phase commit acts on transactions other sessions
                    // prepared.
                    T::TransStmtPrepare | T::TransStmtCommitPrepared | T::TransStmtRollbackPrepared | T::Undefined => {
                        self.unknown()
                    }
                }
            }
            N::ConstraintsSetStmt(_) => self.raise(K::Transaction),
            N::VariableSetStmt(s) => self.variable_set(s),
            N::ClosePortalStmt(_)
            | N::FetchStmt(_)
            | N::ListenStmt(_)
            | N::UnlistenStmt(_)
            | N::NotifyStmt(_)
            | N::DeallocateStmt(_) => self.raise(K::Utility),
            N::DiscardStmt(d) => {
                // DISCARD ALL includes SET SESSION AUTHORIZATION DEFAULT.
                if pb::DiscardMode::try_from(d.target) == Ok(pb::DiscardMode::DiscardAll) {
                    self.flags.set_role = true;
                    self.raise(K::Admin);
                } else {
                    self.raise(K::Utility);
                }
            }

            // Routines.
            N::DoStmt(s) => self.do_block(s),
            N::CallStmt(s) => {
                self.raise(K::Admin);
                match s.funccall.as_deref() {
                    Some(f) => self.func_call(f),
                    None => self.unknown(),
                }
                if s.funcexpr.is_some() {
                    self.unknown();
                }
                self.nodes(&s.outargs);
            }
            N::CreateFunctionStmt(s) => self.create_function(s),
            N::AlterFunctionStmt(s) => self.alter_function(s),

            // Schema changes on relations.
            N::CreateStmt(s) => self.create_table(s),
            N::CreateForeignTableStmt(s) => {
                self.raise(K::Admin);
                match s.base_stmt.as_ref() {
                    Some(b) => self.create_table(b),
                    None => self.unknown(),
                }
                self.nodes(&s.options);
            }
            N::AlterTableStmt(s) => self.alter_table(s),
            N::IndexStmt(s) => {
                self.raise(K::Ddl);
                self.write_target(s.relation.as_ref());
                self.nodes(&s.index_params);
                self.nodes(&s.index_including_params);
                self.node_opt(s.where_clause.as_deref());
                self.nodes(&s.options);
            }
            N::ViewStmt(s) => {
                self.raise(K::Ddl);
                self.write_target(s.view.as_ref());
                self.nodes(&s.options);
                self.query(s.query.as_deref(), QueryCtx::Subquery);
            }
            N::CreateTableAsStmt(s) => {
                self.raise(K::Ddl);
                match s.into.as_deref() {
                    Some(into) => {
                        self.write_target(into.rel.as_ref());
                        self.nodes(&into.options);
                    }
                    None => self.unknown(),
                }
                // `CREATE TABLE t AS EXECUTE p` is not a query: Admin.
                self.query(s.query.as_deref(), QueryCtx::Subquery);
            }
            N::RefreshMatViewStmt(s) => {
                self.raise(K::Ddl);
                self.write_target(s.relation.as_ref());
            }
            N::DropStmt(s) => self.drop(s),
            N::TruncateStmt(s) => {
                self.raise(K::Ddl);
                self.relations_written(&s.relations);
            }
            N::CommentStmt(s) => {
                self.raise(K::Ddl);
                self.object_written(s.objtype, s.object.as_deref());
            }
            N::RenameStmt(s) => {
                match ObjectType::try_from(s.rename_type) {
                    Ok(ObjectType::ObjectRole | ObjectType::ObjectDatabase | ObjectType::ObjectTablespace) => {
                        self.raise(K::Admin)
                    }
                    _ => self.raise(K::Ddl),
                }
                if let Some(rv) = s.relation.as_ref() {
                    self.add_written(names::range_var(rv));
                } else {
                    self.object_written(s.rename_type, s.object.as_deref());
                }
            }
            N::AlterObjectSchemaStmt(s) => {
                self.raise(K::Ddl);
                if let Some(rv) = s.relation.as_ref() {
                    self.add_written(names::range_var(rv));
                }
            }
            N::VacuumStmt(s) => self.vacuum(s),
            N::ClusterStmt(s) => {
                self.raise(K::Ddl);
                if let Some(rv) = s.relation.as_ref() {
                    self.add_written(names::range_var(rv));
                }
                self.nodes(&s.params);
            }
            N::ReindexStmt(s) => {
                use pb::ReindexObjectType as R;
                match R::try_from(s.kind) {
                    Ok(R::ReindexObjectIndex | R::ReindexObjectTable | R::ReindexObjectSchema) => self.raise(K::Ddl),
                    _ => self.raise(K::Admin),
                }
                if let Some(rv) = s.relation.as_ref() {
                    self.add_written(names::range_var(rv));
                }
                self.nodes(&s.params);
            }
            N::CreateSeqStmt(s) => {
                self.raise(K::Ddl);
                self.write_target(s.sequence.as_ref());
                self.nodes(&s.options);
            }
            N::AlterSeqStmt(s) => {
                self.raise(K::Ddl);
                self.write_target(s.sequence.as_ref());
                self.nodes(&s.options);
            }
            N::CreateStatsStmt(s) => {
                self.raise(K::Ddl);
                self.nodes(&s.exprs);
                self.relations_written(&s.relations);
            }

            // Schema changes on other objects.
            N::CreateSchemaStmt(s) => {
                self.raise(K::Ddl);
                for elt in &s.schema_elts {
                    self.statement(Some(elt));
                }
            }
            N::CreateDomainStmt(s) => {
                self.raise(K::Ddl);
                self.type_name(s.type_name.as_ref());
                self.nodes(&s.constraints);
            }
            N::AlterDomainStmt(s) => {
                self.raise(K::Ddl);
                self.node_opt(s.def.as_deref());
            }
            N::CompositeTypeStmt(s) => {
                self.raise(K::Ddl);
                self.nodes(&s.coldeflist);
            }
            N::CreateRangeStmt(s) => {
                self.raise(K::Ddl);
                self.definition(&s.params);
            }
            N::AlterTypeStmt(s) => {
                self.raise(K::Ddl);
                self.definition(&s.options);
            }
            N::DefineStmt(s) => {
                self.raise(K::Ddl);
                self.nodes(&s.args);
                self.definition(&s.definition);
            }
            N::AlterOperatorStmt(s) => {
                self.raise(K::Ddl);
                self.definition(&s.options);
            }
            N::CreateEnumStmt(_)
            | N::AlterEnumStmt(_)
            | N::AlterCollationStmt(_)
            | N::AlterStatsStmt(_)
            | N::AlterTsdictionaryStmt(_)
            | N::AlterTsconfigurationStmt(_)
            | N::AlterObjectDependsStmt(_) => self.raise(K::Ddl),

            // Privilege, roles, the server, and code that runs as someone else.
            N::AlterSystemStmt(_) => {
                self.flags.alter_system = true;
                self.raise(K::Admin);
            }
            N::GrantStmt(s) => {
                self.raise(K::Admin);
                for obj in &s.objects {
                    if let Some(NodeEnum::RangeVar(rv)) = obj.node.as_ref() {
                        self.add_written(names::range_var(rv));
                    }
                }
            }
            N::CreateTrigStmt(s) => {
                self.raise(K::Admin);
                self.write_target(s.relation.as_ref());
                if let Some(name) = names::string_list(&s.funcname) {
                    self.record_function(name, &[]);
                }
                self.node_opt(s.when_clause.as_deref());
            }
            N::RuleStmt(s) => {
                self.raise(K::Admin);
                self.write_target(s.relation.as_ref());
                self.node_opt(s.where_clause.as_deref());
                for action in &s.actions {
                    self.statement(Some(action));
                }
            }
            N::CreatePolicyStmt(s) => {
                self.raise(K::Admin);
                self.write_target(s.table.as_ref());
                self.node_opt(s.qual.as_deref());
                self.node_opt(s.with_check.as_deref());
            }
            N::AlterPolicyStmt(s) => {
                self.raise(K::Admin);
                self.write_target(s.table.as_ref());
                self.node_opt(s.qual.as_deref());
                self.node_opt(s.with_check.as_deref());
            }
            N::GrantRoleStmt(_)
            | N::AlterDefaultPrivilegesStmt(_)
            | N::CreateRoleStmt(_)
            | N::AlterRoleStmt(_)
            | N::AlterRoleSetStmt(_)
            | N::DropRoleStmt(_)
            | N::DropOwnedStmt(_)
            | N::ReassignOwnedStmt(_)
            | N::AlterOwnerStmt(_)
            | N::CreateExtensionStmt(_)
            | N::AlterExtensionStmt(_)
            | N::AlterExtensionContentsStmt(_)
            | N::CreateFdwStmt(_)
            | N::AlterFdwStmt(_)
            | N::CreateForeignServerStmt(_)
            | N::AlterForeignServerStmt(_)
            | N::CreateUserMappingStmt(_)
            | N::AlterUserMappingStmt(_)
            | N::DropUserMappingStmt(_)
            | N::ImportForeignSchemaStmt(_)
            | N::CreateEventTrigStmt(_)
            | N::AlterEventTrigStmt(_)
            | N::CreatePlangStmt(_)
            | N::CreateAmStmt(_)
            | N::CreateCastStmt(_)
            | N::CreateTransformStmt(_)
            | N::CreateConversionStmt(_)
            | N::CreateOpClassStmt(_)
            | N::CreateOpFamilyStmt(_)
            | N::AlterOpFamilyStmt(_)
            | N::CreateTableSpaceStmt(_)
            | N::DropTableSpaceStmt(_)
            | N::AlterTableSpaceOptionsStmt(_)
            | N::AlterTableMoveAllStmt(_)
            | N::CreatedbStmt(_)
            | N::AlterDatabaseStmt(_)
            | N::AlterDatabaseRefreshCollStmt(_)
            | N::AlterDatabaseSetStmt(_)
            | N::DropdbStmt(_)
            | N::CreatePublicationStmt(_)
            | N::AlterPublicationStmt(_)
            | N::CreateSubscriptionStmt(_)
            | N::AlterSubscriptionStmt(_)
            | N::DropSubscriptionStmt(_)
            | N::SecLabelStmt(_)
            | N::ReplicaIdentityStmt(_)
            | N::CheckPointStmt(_)
            | N::LoadStmt(_) => self.raise(K::Admin),

            // Everything else, including analyzed-tree nodes a raw parse
            // never produces: not understood.
            _ => self.unknown(),
        }
    }

    /// COPY: table `TO STDOUT` is `Read`; `FROM STDIN` is `Write`;
    /// `(query) TO STDOUT` has the query's kind (at least `Read`); a server
    /// file is `Admin` + `copy_file`; a program is `Admin` + `copy_program`.
    fn copy(&mut self, s: &pb::CopyStmt) {
        self.nodes(&s.options);
        if s.is_program {
            self.flags.copy_program = true;
            self.raise(StatementKind::Admin);
        } else if !s.filename.is_empty() {
            self.flags.copy_file = true;
            self.raise(StatementKind::Admin);
        }
        match (s.relation.as_ref(), s.query.as_deref()) {
            (Some(rv), None) => {
                let name = names::range_var(rv);
                if s.is_from {
                    self.raise(StatementKind::Write);
                    self.add_written(name);
                } else {
                    self.add_read(name);
                }
            }
            (None, Some(q)) if !s.is_from => self.query(Some(q), QueryCtx::Plain),
            _ => self.unknown(),
        }
        self.node_opt(s.where_clause.as_deref());
    }

    /// EXPLAIN ANALYZE runs its statement: it has that statement's kind and
    /// everything else. Plain EXPLAIN only plans: `Read`, with the
    /// statement's tables counted as read, its functions and its flags
    /// (except `where_less_write` and `writes_in_cte`, which describe
    /// writes that do not happen). If the statement is `Admin` (for example
    /// not understood), so is the EXPLAIN.
    fn explain(&mut self, s: &pb::ExplainStmt) {
        self.nodes(&s.options);
        let analyze = s.options.iter().any(|o| match o.node.as_ref() {
            Some(NodeEnum::DefElem(d)) => {
                (d.defname.eq_ignore_ascii_case("analyze") || d.defname.eq_ignore_ascii_case("analyse"))
                    && !is_false(d.arg.as_deref())
            }
            _ => false,
        });
        if analyze {
            self.statement(s.query.as_deref());
            return;
        }
        let mut inner = self.child();
        inner.statement(s.query.as_deref());
        let admin = inner.kind == StatementKind::Admin;
        inner.read.append(&mut inner.written);
        inner.flags.where_less_write = false;
        inner.flags.writes_in_cte = false;
        inner.kind = if admin { StatementKind::Admin } else { StatementKind::Read };
        self.absorb(inner);
    }
}

/// Whether an option value is a boolean false, as PostgreSQL's `parse_bool`
/// reads it (`false`, `off`, `no`, `0` and their accepted prefixes). No
/// value means true; anything unclear counts as true (fail closed).
fn is_false(arg: Option<&Node>) -> bool {
    match arg.and_then(|a| a.node.as_ref()) {
        Some(NodeEnum::Boolean(b)) => !b.boolval,
        Some(NodeEnum::Integer(i)) => i.ival == 0,
        Some(NodeEnum::String(s)) => false_word(&s.sval),
        Some(NodeEnum::AConst(c)) => match c.val.as_ref() {
            Some(pb::a_const::Val::Boolval(b)) => !b.boolval,
            Some(pb::a_const::Val::Ival(i)) => i.ival == 0,
            Some(pb::a_const::Val::Sval(s)) => false_word(&s.sval),
            _ => false,
        },
        _ => false,
    }
}

fn false_word(word: &str) -> bool {
    let w = word.trim().to_ascii_lowercase();
    !w.is_empty()
        && ("false".starts_with(&w) || "no".starts_with(&w) || (w.len() >= 2 && "off".starts_with(&w)) || w == "0")
}

#[cfg(test)]
mod tests {
    use super::false_word;

    #[test]
    fn bool_words() {
        for w in ["false", "f", "FALSE", "off", "of", "no", "n", "0"] {
            assert!(false_word(w), "{w}");
        }
        for w in ["true", "on", "o", "yes", "1", "", "maybe"] {
            assert!(!false_word(w), "{w}");
        }
    }
}
