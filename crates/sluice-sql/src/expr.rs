//! Expressions and the building blocks of statements (column definitions,
//! constraints, type names, options, JSON and XML constructs).
//!
//! Owns: the allow-list of non-statement node types, function-call
//! recording, `set_config('role', ...)`.
//! Does not own: statements (`walk.rs`, `stmts.rs`); a statement met in an
//! expression position is handed to the statement walker, and every node
//! type not named here makes the statement `Admin` (this includes every
//! "analyzed" node such as `Var`, `FuncExpr` or `Query`, which a raw parse
//! never produces).

use pg_query::NodeEnum;
use pg_query::protobuf::{self as pb, Node};
use sluice_model::sql::StatementKind;

use crate::names;
use crate::security_functions;
use crate::walk::{QueryCtx, Walker};

impl Walker {
    pub(crate) fn nodes(&mut self, ns: &[Node]) {
        for n in ns {
            self.node(n);
        }
    }

    pub(crate) fn node_opt(&mut self, n: Option<&Node>) {
        if let Some(n) = n {
            self.node(n);
        }
    }

    /// Any node in an expression position. An empty node is nothing.
    pub(crate) fn node(&mut self, n: &Node) {
        use NodeEnum as N;
        match n.node.as_ref() {
            None => {}
            // FROM items met outside a FROM list (defensive): read as FROM.
            Some(
                N::RangeVar(_)
                | N::JoinExpr(_)
                | N::RangeSubselect(_)
                | N::RangeFunction(_)
                | N::RangeTableFunc(_)
                | N::RangeTableSample(_)
                | N::JsonTable(_),
            ) => self.range_item(n),
            Some(e) => self.deeper(|w| w.node_enum(e)),
        }
    }

    fn node_enum(&mut self, e: &NodeEnum) {
        use NodeEnum as N;
        match e {
            // Leaves: constants, names, placeholders.
            N::AConst(_)
            | N::Integer(_)
            | N::Float(_)
            | N::Boolean(_)
            | N::String(_)
            | N::BitString(_)
            | N::ParamRef(_)
            | N::SqlvalueFunction(_)
            | N::SetToDefault(_)
            | N::CurrentOfExpr(_)
            | N::MergeSupportFunc(_)
            | N::RoleSpec(_)
            | N::AStar(_)
            | N::JsonFormat(_)
            | N::JsonReturning(_)
            | N::ReturningOption(_)
            | N::AccessPriv(_)
            | N::AtalterConstraint(_)
            | N::TriggerTransition(_) => {}
            // `FOR UPDATE OF a, b` names FROM items already counted.
            N::LockingClause(_) => {}
            N::ColumnRef(c) => {
                let plain = c.fields.iter().all(|f| matches!(f.node, Some(N::String(_)) | Some(N::AStar(_))));
                if !plain {
                    self.unknown();
                }
            }
            N::List(l) => self.nodes(&l.items),
            N::AExpr(a) => {
                self.node_opt(a.lexpr.as_deref());
                self.node_opt(a.rexpr.as_deref());
            }
            N::BoolExpr(b) => self.nodes(&b.args),
            N::TypeCast(t) => {
                self.node_opt(t.arg.as_deref());
                self.type_name(t.type_name.as_ref());
            }
            N::CollateClause(c) => self.node_opt(c.arg.as_deref()),
            N::FuncCall(f) => self.func_call(f),
            N::NamedArgExpr(a) => self.node_opt(a.arg.as_deref()),
            N::AIndices(i) => {
                self.node_opt(i.lidx.as_deref());
                self.node_opt(i.uidx.as_deref());
            }
            N::AIndirection(i) => {
                self.node_opt(i.arg.as_deref());
                self.nodes(&i.indirection);
            }
            N::AArrayExpr(a) => self.nodes(&a.elements),
            N::ResTarget(r) => {
                self.nodes(&r.indirection);
                self.node_opt(r.val.as_deref());
            }
            N::MultiAssignRef(m) => self.node_opt(m.source.as_deref()),
            N::SubLink(s) => {
                self.node_opt(s.testexpr.as_deref());
                self.unlocked(|w| w.query(s.subselect.as_deref(), QueryCtx::Subquery));
            }
            N::CaseExpr(c) => {
                self.node_opt(c.arg.as_deref());
                self.nodes(&c.args);
                self.node_opt(c.defresult.as_deref());
            }
            N::CaseWhen(c) => {
                self.node_opt(c.expr.as_deref());
                self.node_opt(c.result.as_deref());
            }
            N::RowExpr(r) => self.nodes(&r.args),
            N::CoalesceExpr(c) => self.nodes(&c.args),
            N::MinMaxExpr(m) => self.nodes(&m.args),
            N::XmlExpr(x) => {
                self.nodes(&x.named_args);
                self.nodes(&x.args);
            }
            N::XmlSerialize(x) => {
                self.node_opt(x.expr.as_deref());
                self.type_name(x.type_name.as_ref());
            }
            N::NullTest(t) => self.node_opt(t.arg.as_deref()),
            N::BooleanTest(t) => self.node_opt(t.arg.as_deref()),
            N::GroupingFunc(g) => self.nodes(&g.args),
            N::GroupingSet(g) => self.nodes(&g.content),
            N::SortBy(s) => self.node_opt(s.node.as_deref()),
            N::WindowDef(d) => self.window_def(d),
            N::TypeName(t) => self.type_name(Some(t)),
            N::DefElem(d) => self.node_opt(d.arg.as_deref()),
            N::ColumnDef(c) => {
                self.type_name(c.type_name.as_ref());
                self.node_opt(c.raw_default.as_deref());
                if c.cooked_default.is_some() {
                    self.unknown();
                }
                if let Some(seq) = c.identity_sequence.as_ref() {
                    self.add_written(names::range_var(seq));
                }
                if let Some(coll) = c.coll_clause.as_deref() {
                    self.node_opt(coll.arg.as_deref());
                }
                self.nodes(&c.constraints);
                self.nodes(&c.fdwoptions);
            }
            N::Constraint(c) => {
                self.node_opt(c.raw_expr.as_deref());
                if !c.cooked_expr.is_empty() {
                    self.unknown();
                }
                self.nodes(&c.exclusions);
                self.nodes(&c.options);
                self.node_opt(c.where_clause.as_deref());
                if let Some(pk) = c.pktable.as_ref() {
                    self.add_read(names::range_var(pk));
                }
            }
            N::IndexElem(i) => {
                self.node_opt(i.expr.as_deref());
                self.nodes(&i.opclassopts);
            }
            N::PartitionSpec(p) => self.nodes(&p.part_params),
            N::PartitionElem(p) => self.node_opt(p.expr.as_deref()),
            N::PartitionBoundSpec(p) => self.partition_bound(p),
            N::PartitionRangeDatum(p) => self.node_opt(p.value.as_deref()),
            N::PartitionCmd(p) => {
                self.write_target(p.name.as_ref());
                if let Some(b) = p.bound.as_ref() {
                    self.partition_bound(b);
                }
            }
            N::TableLikeClause(t) => match t.relation.as_ref() {
                Some(rv) => self.add_read(names::range_var(rv)),
                None => self.unknown(),
            },
            N::FunctionParameter(p) => {
                self.type_name(p.arg_type.as_ref());
                self.node_opt(p.defexpr.as_deref());
            }
            N::ObjectWithArgs(o) => {
                self.nodes(&o.objargs);
                self.nodes(&o.objfuncargs);
            }
            N::StatsElem(s) => self.node_opt(s.expr.as_deref()),
            N::RangeTableFuncCol(c) => {
                self.type_name(c.type_name.as_ref());
                self.node_opt(c.colexpr.as_deref());
                self.node_opt(c.coldefexpr.as_deref());
            }
            N::JsonValueExpr(j) => self.json_value(j),
            N::JsonObjectConstructor(j) => {
                self.nodes(&j.exprs);
                self.json_output(j.output.as_ref());
            }
            N::JsonArrayConstructor(j) => {
                self.nodes(&j.exprs);
                self.json_output(j.output.as_ref());
            }
            N::JsonArrayQueryConstructor(j) => {
                self.unlocked(|w| w.query(j.query.as_deref(), QueryCtx::Subquery));
                self.json_output(j.output.as_ref());
            }
            N::JsonAggConstructor(c) => self.json_agg(c),
            N::JsonObjectAgg(j) => {
                match j.constructor.as_deref() {
                    Some(c) => self.json_agg(c),
                    None => self.unknown(),
                }
                if let Some(kv) = j.arg.as_deref() {
                    self.json_key_value(kv);
                }
            }
            N::JsonArrayAgg(j) => {
                match j.constructor.as_deref() {
                    Some(c) => self.json_agg(c),
                    None => self.unknown(),
                }
                if let Some(v) = j.arg.as_deref() {
                    self.json_value(v);
                }
            }
            N::JsonKeyValue(kv) => self.json_key_value(kv),
            N::JsonIsPredicate(j) => self.node_opt(j.expr.as_deref()),
            N::JsonParseExpr(j) => {
                if let Some(v) = j.expr.as_deref() {
                    self.json_value(v);
                }
                self.json_output(j.output.as_ref());
            }
            N::JsonScalarExpr(j) => {
                self.node_opt(j.expr.as_deref());
                self.json_output(j.output.as_ref());
            }
            N::JsonSerializeExpr(j) => {
                if let Some(v) = j.expr.as_deref() {
                    self.json_value(v);
                }
                self.json_output(j.output.as_ref());
            }
            N::JsonFuncExpr(j) => {
                if let Some(v) = j.context_item.as_deref() {
                    self.json_value(v);
                }
                self.node_opt(j.pathspec.as_deref());
                self.nodes(&j.passing);
                self.json_output(j.output.as_ref());
                self.json_behavior(j.on_empty.as_deref());
                self.json_behavior(j.on_error.as_deref());
            }
            N::JsonArgument(a) => {
                if let Some(v) = a.val.as_deref() {
                    self.json_value(v);
                }
            }
            N::JsonBehavior(b) => self.node_opt(b.expr.as_deref()),
            N::JsonOutput(o) => self.json_output(Some(o)),
            N::JsonTablePathSpec(p) => self.node_opt(p.string.as_deref()),
            N::JsonTableColumn(c) => self.json_table_column(c),
            // Statements in an expression position (schema elements, rule
            // actions): classified as statements. Anything else is unknown.
            other => self.stmt_enum(other),
        }
    }

    /// A function call: its name is recorded and checked against the
    /// security-function table.
    pub(crate) fn func_call(&mut self, f: &pb::FuncCall) {
        match names::string_list(&f.funcname) {
            Some(name) => self.record_function(name, &f.args),
            None => self.unknown(),
        }
        self.nodes(&f.args);
        self.nodes(&f.agg_order);
        self.node_opt(f.agg_filter.as_deref());
        if let Some(over) = f.over.as_deref() {
            self.window_def(over);
        }
    }

    /// Records a called function and what its name implies.
    pub(crate) fn record_function(&mut self, name: String, args: &[Node]) {
        if let Some(kind) = security_functions::min_kind(&name) {
            self.raise(kind);
            if kind == StatementKind::Admin {
                self.flags.security_function = true;
            }
        }
        if security_functions::runs_sql_text(&name) {
            self.flags.dynamic_sql = true;
        }
        let base = name.rsplit('.').next().unwrap_or(&name);
        if base.eq_ignore_ascii_case("set_config") && sets_role(args.first()) {
            self.flags.set_role = true;
            self.raise(StatementKind::Admin);
        }
        self.functions.push(name);
    }

    pub(crate) fn type_name(&mut self, t: Option<&pb::TypeName>) {
        if let Some(t) = t {
            self.nodes(&t.typmods);
        }
    }

    fn window_def(&mut self, d: &pb::WindowDef) {
        self.nodes(&d.partition_clause);
        self.nodes(&d.order_clause);
        self.node_opt(d.start_offset.as_deref());
        self.node_opt(d.end_offset.as_deref());
    }

    fn partition_bound(&mut self, p: &pb::PartitionBoundSpec) {
        self.nodes(&p.listdatums);
        self.nodes(&p.lowerdatums);
        self.nodes(&p.upperdatums);
    }

    fn json_value(&mut self, j: &pb::JsonValueExpr) {
        self.node_opt(j.raw_expr.as_deref());
        self.node_opt(j.formatted_expr.as_deref());
    }

    fn json_output(&mut self, o: Option<&pb::JsonOutput>) {
        if let Some(o) = o {
            self.type_name(o.type_name.as_ref());
        }
    }

    fn json_behavior(&mut self, b: Option<&pb::JsonBehavior>) {
        if let Some(b) = b {
            self.node_opt(b.expr.as_deref());
        }
    }

    fn json_agg(&mut self, c: &pb::JsonAggConstructor) {
        self.json_output(c.output.as_ref());
        self.node_opt(c.agg_filter.as_deref());
        self.nodes(&c.agg_order);
        if let Some(over) = c.over.as_deref() {
            self.window_def(over);
        }
    }

    fn json_key_value(&mut self, kv: &pb::JsonKeyValue) {
        self.node_opt(kv.key.as_deref());
        if let Some(v) = kv.value.as_deref() {
            self.json_value(v);
        }
    }

    fn json_table_column(&mut self, c: &pb::JsonTableColumn) {
        self.type_name(c.type_name.as_ref());
        if let Some(p) = c.pathspec.as_deref() {
            self.node_opt(p.string.as_deref());
        }
        self.nodes(&c.columns);
        self.json_behavior(c.on_empty.as_deref());
        self.json_behavior(c.on_error.as_deref());
    }

    /// `JSON_TABLE(...)` in FROM.
    pub(crate) fn json_table(&mut self, t: &pb::JsonTable) {
        if let Some(v) = t.context_item.as_deref() {
            self.json_value(v);
        }
        if let Some(p) = t.pathspec.as_deref() {
            self.node_opt(p.string.as_deref());
        }
        self.nodes(&t.passing);
        self.nodes(&t.columns);
        self.json_behavior(t.on_error.as_deref());
    }
}

/// Whether the first argument of `set_config` can name the role: a string
/// constant naming `role` or `session_authorization`, or anything that is
/// not a plain string constant (fail closed).
fn sets_role(first: Option<&Node>) -> bool {
    match first.and_then(|n| n.node.as_ref()) {
        Some(NodeEnum::AConst(c)) => match c.val.as_ref() {
            Some(pb::a_const::Val::Sval(s)) => {
                let name = s.sval.trim().to_ascii_lowercase();
                name == "role" || name == "session_authorization"
            }
            _ => true,
        },
        _ => true,
    }
}
