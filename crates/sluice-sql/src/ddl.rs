//! DDL helpers: the targets and embedded expressions of DROP, CREATE
//! TABLE, ALTER TABLE, VACUUM, and the definition lists of CREATE
//! OPERATOR / AGGREGATE / TYPE.
//!
//! Owns: which relations a DDL statement writes or reads, which ALTER TABLE
//! sub-commands and DROP object types are `Admin`, and the support
//! functions named in definitions.
//! Does not own: the statement allow-list itself (`stmts.rs`).

use pg_query::NodeEnum;
use pg_query::protobuf::{self as pb, Node, ObjectType};
use sluice_model::sql::StatementKind;

use crate::names;
use crate::walk::Walker;

impl Walker {
    /// The `(name = value, ...)` list of CREATE OPERATOR / AGGREGATE / TYPE /
    /// RANGE and ALTER OPERATOR / TYPE. Options that name a support function
    /// (`FUNCTION = f`, `SFUNC = f`, `INPUT = f`, ...) record `f` as a
    /// called function: an operator or aggregate over `pg_read_file`
    /// launders it into `SELECT ### 'x'` as surely as a wrapper function.
    pub(crate) fn definition(&mut self, defs: &[Node]) {
        for def in defs {
            match def.node.as_ref() {
                Some(NodeEnum::DefElem(d)) if FUNCTION_OPTIONS.contains(&d.defname.to_ascii_lowercase().as_str()) => {
                    match d.arg.as_deref().and_then(|a| a.node.as_ref()) {
                        Some(NodeEnum::TypeName(t)) => match names::string_list(&t.names) {
                            Some(name) => self.record_function(name, &[]),
                            None => self.unknown(),
                        },
                        Some(NodeEnum::List(l)) => match names::string_list(&l.items) {
                            Some(name) => self.record_function(name, &[]),
                            None => self.unknown(),
                        },
                        Some(NodeEnum::String(s)) => self.record_function(names::join([s.sval.as_str()]), &[]),
                        _ => self.node_opt(d.arg.as_deref()),
                    }
                }
                _ => self.node(def),
            }
        }
    }

    /// Relations given as a list of `RangeVar` nodes (LOCK, TRUNCATE, ...).
    pub(crate) fn relations_written(&mut self, rels: &[Node]) {
        for rel in rels {
            match rel.node.as_ref() {
                Some(NodeEnum::RangeVar(rv)) => self.add_written(names::range_var(rv)),
                _ => self.unknown(),
            }
        }
    }

    /// The relation named by a DROP/COMMENT/RENAME object, when the object
    /// is a relation (or a column, trigger, policy or rule on one).
    pub(crate) fn object_written(&mut self, objtype: i32, object: Option<&Node>) {
        let Some(NodeEnum::List(list)) = object.and_then(|n| n.node.as_ref()) else {
            return;
        };
        let items: &[Node] = match ObjectType::try_from(objtype) {
            Ok(
                ObjectType::ObjectTable
                | ObjectType::ObjectView
                | ObjectType::ObjectMatview
                | ObjectType::ObjectIndex
                | ObjectType::ObjectSequence
                | ObjectType::ObjectForeignTable,
            ) => &list.items,
            Ok(
                ObjectType::ObjectColumn
                | ObjectType::ObjectTrigger
                | ObjectType::ObjectPolicy
                | ObjectType::ObjectRule
                | ObjectType::ObjectTabconstraint,
            ) if list.items.len() > 1 => &list.items[..list.items.len() - 1],
            _ => return,
        };
        match names::string_list(items) {
            Some(name) => self.add_written(name),
            None => self.unknown(),
        }
    }

    /// DROP: `Ddl`; `Admin` for objects that guard privilege or reach
    /// outside the database (triggers, policies, rules, extensions, foreign
    /// servers, languages, ...).
    pub(crate) fn drop(&mut self, s: &pb::DropStmt) {
        use ObjectType as O;
        match O::try_from(s.remove_type) {
            Ok(
                O::ObjectTrigger
                | O::ObjectEventTrigger
                | O::ObjectPolicy
                | O::ObjectRule
                | O::ObjectExtension
                | O::ObjectFdw
                | O::ObjectForeignServer
                | O::ObjectUserMapping
                | O::ObjectLanguage
                | O::ObjectAccessMethod
                | O::ObjectCast
                | O::ObjectTransform
                | O::ObjectConversion
                | O::ObjectOpclass
                | O::ObjectOpfamily
                | O::ObjectPublication
                | O::ObjectSubscription
                | O::ObjectTablespace
                | O::ObjectDatabase
                | O::ObjectRole,
            ) => self.raise(StatementKind::Admin),
            Ok(O::Undefined) | Err(_) => self.unknown(),
            Ok(_) => self.raise(StatementKind::Ddl),
        }
        for obj in &s.objects {
            self.object_written(s.remove_type, Some(obj));
        }
    }

    /// CREATE TABLE: `Ddl`. Inheritance and partition parents count as
    /// written: the new table's rows appear in them.
    pub(crate) fn create_table(&mut self, s: &pb::CreateStmt) {
        self.raise(StatementKind::Ddl);
        self.write_target(s.relation.as_ref());
        self.relations_written(&s.inh_relations);
        self.nodes(&s.table_elts);
        if let Some(b) = s.partbound.as_ref() {
            self.nodes(&b.listdatums);
            self.nodes(&b.lowerdatums);
            self.nodes(&b.upperdatums);
        }
        if let Some(p) = s.partspec.as_ref() {
            self.nodes(&p.part_params);
        }
        self.type_name(s.of_typename.as_ref());
        self.nodes(&s.constraints);
        self.nodes(&s.nnconstraints);
        self.nodes(&s.options);
    }

    /// ALTER TABLE (and ALTER INDEX/VIEW/SEQUENCE/... in the same node):
    /// `Ddl`; `Admin` for sub-commands that change owner, triggers, rules,
    /// row-level security, replica identity or foreign-data options.
    pub(crate) fn alter_table(&mut self, s: &pb::AlterTableStmt) {
        use pb::AlterTableType as A;
        self.raise(StatementKind::Ddl);
        self.write_target(s.relation.as_ref());
        for cmd in &s.cmds {
            let Some(NodeEnum::AlterTableCmd(c)) = cmd.node.as_ref() else {
                self.unknown();
                continue;
            };
            let subtype = A::try_from(c.subtype).unwrap_or(A::Undefined);
            match subtype {
                A::AtChangeOwner
                | A::AtEnableTrig
                | A::AtEnableAlwaysTrig
                | A::AtEnableReplicaTrig
                | A::AtDisableTrig
                | A::AtEnableTrigAll
                | A::AtDisableTrigAll
                | A::AtEnableTrigUser
                | A::AtDisableTrigUser
                | A::AtEnableRule
                | A::AtEnableAlwaysRule
                | A::AtEnableReplicaRule
                | A::AtDisableRule
                | A::AtEnableRowSecurity
                | A::AtDisableRowSecurity
                | A::AtForceRowSecurity
                | A::AtNoForceRowSecurity
                | A::AtReplicaIdentity
                | A::AtGenericOptions
                | A::AtAlterColumnGenericOptions
                | A::Undefined => self.raise(StatementKind::Admin),
                _ => {}
            }
            match (subtype, c.def.as_deref().and_then(|d| d.node.as_ref())) {
                (A::AtAddInherit | A::AtDropInherit, Some(NodeEnum::RangeVar(rv))) => {
                    self.add_written(names::range_var(rv))
                }
                (A::AtReplicaIdentity, _) => {}
                _ => self.node_opt(c.def.as_deref()),
            }
        }
    }

    /// VACUUM: `Ddl` (it rewrites storage; FULL rewrites the table), tables
    /// written. ANALYZE alone: `Utility`, tables read.
    pub(crate) fn vacuum(&mut self, s: &pb::VacuumStmt) {
        self.nodes(&s.options);
        let vacuum = s.is_vacuumcmd;
        self.raise(if vacuum { StatementKind::Ddl } else { StatementKind::Utility });
        for rel in &s.rels {
            match rel.node.as_ref() {
                Some(NodeEnum::VacuumRelation(v)) => {
                    if let Some(rv) = v.relation.as_ref() {
                        let name = names::range_var(rv);
                        if vacuum {
                            self.add_written(name);
                        } else {
                            self.add_read(name);
                        }
                    }
                }
                _ => self.unknown(),
            }
        }
    }
}

/// Definition options whose value names a support function.
const FUNCTION_OPTIONS: &[&str] = &[
    // CREATE OPERATOR
    "function",
    "procedure",
    "restrict",
    "join",
    // CREATE AGGREGATE
    "sfunc",
    "finalfunc",
    "combinefunc",
    "serialfunc",
    "deserialfunc",
    "msfunc",
    "minvfunc",
    "mfinalfunc",
    // CREATE TYPE (base types)
    "input",
    "output",
    "receive",
    "send",
    "typmod_in",
    "typmod_out",
    "analyze",
    "subscript",
    // CREATE TYPE ... AS RANGE
    "canonical",
    "subtype_diff",
    // text search parsers and templates
    "start",
    "gettoken",
    "end",
    "lextypes",
    "headline",
    "init",
    "lexize",
];
