//! The parse-tree walker: its state, and the query statements (SELECT,
//! INSERT, UPDATE, DELETE, MERGE) with their WITH clauses and FROM items.
//!
//! Owns: [`Walker`] (kind, tables, functions, flags found so far), CTE name
//! scoping, the recursion bound, and the query-statement rules.
//! Does not own: expressions (`expr.rs`), utility and DDL statements
//! (`stmts.rs`), settings (`settings.rs`), routine bodies (`routines.rs`).
//!
//! Every walk is bounded: past [`MAX_DEPTH`] nested nodes the walker stops
//! and the statement is `Admin`. (`pg_query` itself refuses absurd nesting
//! first; the bound makes the walker safe on any tree.)

use pg_query::NodeEnum;
use pg_query::protobuf::{self as pb, Node};
use sluice_model::sql::{SqlFlags, StatementKind};

use crate::findings::{Findings, merge_flags};
use crate::names;
use crate::string_mode::PgStringMode;

/// The deepest nesting of nodes the walker follows before giving up
/// (`Admin`). Real trees are far shallower: `pg_query`'s protobuf decoder
/// already refuses more than 100 levels of messages.
pub(crate) const MAX_DEPTH: u32 = 160;

/// Where a query statement sits; it decides `writes_in_cte`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum QueryCtx {
    /// A statement of its own, or the body of PREPARE/EXPLAIN/COPY/DECLARE.
    Plain,
    /// The body of a WITH item.
    Cte,
    /// A sub-select inside an expression or FROM (must be a SELECT).
    Subquery,
}

/// What the walk has found so far.
#[derive(Debug)]
pub(crate) struct Walker {
    pub(crate) mode: PgStringMode,
    pub(crate) kind: StatementKind,
    pub(crate) read: Vec<String>,
    pub(crate) written: Vec<String>,
    pub(crate) functions: Vec<String>,
    pub(crate) flags: SqlFlags,
    /// CTE names visible at this point, innermost last.
    ctes: Vec<String>,
    depth: u32,
    /// Inside the FROM of a `SELECT ... FOR UPDATE/SHARE`: tables are locked.
    locking: bool,
}

impl Walker {
    pub(crate) fn new(mode: PgStringMode) -> Walker {
        Walker {
            mode,
            kind: StatementKind::Read,
            read: Vec::new(),
            written: Vec::new(),
            functions: Vec::new(),
            flags: SqlFlags::default(),
            ctes: Vec::new(),
            depth: 0,
            locking: false,
        }
    }

    /// A fresh walker for an embedded body (EXPLAIN target, routine body)
    /// that shares this walker's depth budget but nothing else.
    pub(crate) fn child(&self) -> Walker {
        let mut w = Walker::new(self.mode);
        w.depth = self.depth;
        w
    }

    /// At least this kind.
    pub(crate) fn raise(&mut self, kind: StatementKind) {
        if kind > self.kind {
            self.kind = kind;
        }
    }

    /// Something the walker does not understand: the most dangerous kind.
    pub(crate) fn unknown(&mut self) {
        self.kind = StatementKind::Admin;
    }

    /// Runs `f` one level deeper, or marks the statement `Admin` when the
    /// bound is reached.
    pub(crate) fn deeper(&mut self, f: impl FnOnce(&mut Walker)) {
        if self.depth >= MAX_DEPTH {
            self.unknown();
            return;
        }
        self.depth += 1;
        f(self);
        self.depth -= 1;
    }

    pub(crate) fn add_read(&mut self, name: String) {
        self.read.push(name);
    }

    pub(crate) fn add_written(&mut self, name: String) {
        self.written.push(name);
    }

    /// A relation written by the statement.
    pub(crate) fn write_target(&mut self, rv: Option<&pb::RangeVar>) {
        match rv {
            Some(rv) => self.add_written(names::range_var(rv)),
            None => self.unknown(),
        }
    }

    /// A relation the statement both inspects and changes (UPDATE, DELETE,
    /// MERGE targets; INSERT targets with RETURNING or ON CONFLICT).
    fn read_write_target(&mut self, rv: Option<&pb::RangeVar>) {
        match rv {
            Some(rv) => {
                let name = names::range_var(rv);
                self.add_read(name.clone());
                self.add_written(name);
            }
            None => self.unknown(),
        }
    }

    /// A relation referenced where a table is read. An unqualified name that
    /// matches a visible CTE is the CTE, not a table.
    pub(crate) fn table_ref(&mut self, rv: &pb::RangeVar) {
        let is_cte = rv.schemaname.is_empty() && rv.catalogname.is_empty() && self.ctes.contains(&rv.relname);
        if is_cte {
            return;
        }
        let name = names::range_var(rv);
        if self.locking {
            self.add_written(name.clone());
        }
        self.add_read(name);
    }

    /// What the walk found, for the request-wide rules.
    pub(crate) fn into_findings(self) -> Findings {
        Findings {
            kind: self.kind,
            read: self.read,
            written: self.written,
            functions: self.functions,
            flags: self.flags,
        }
    }

    /// Merges everything another walker found.
    pub(crate) fn absorb(&mut self, other: Walker) {
        self.raise(other.kind);
        self.read.extend(other.read);
        self.written.extend(other.written);
        self.functions.extend(other.functions);
        merge_flags(&mut self.flags, &other.flags);
    }

    /// Any query statement: SELECT (with VALUES and set operations), INSERT,
    /// UPDATE, DELETE, MERGE. Anything else here is not understood.
    pub(crate) fn query(&mut self, n: Option<&Node>, ctx: QueryCtx) {
        self.query_enum(n.and_then(|n| n.node.as_ref()), ctx);
    }

    /// [`Walker::query`] on an unwrapped node.
    pub(crate) fn query_enum(&mut self, n: Option<&NodeEnum>, ctx: QueryCtx) {
        self.deeper(|w| match n {
            Some(NodeEnum::SelectStmt(s)) => w.select(s),
            Some(NodeEnum::InsertStmt(s)) if ctx != QueryCtx::Subquery => {
                w.note_cte_write(ctx);
                w.insert(s);
            }
            Some(NodeEnum::UpdateStmt(s)) if ctx != QueryCtx::Subquery => {
                w.note_cte_write(ctx);
                w.update(s);
            }
            Some(NodeEnum::DeleteStmt(s)) if ctx != QueryCtx::Subquery => {
                w.note_cte_write(ctx);
                w.delete(s);
            }
            Some(NodeEnum::MergeStmt(s)) if ctx != QueryCtx::Subquery => {
                w.note_cte_write(ctx);
                w.merge(s);
            }
            _ => w.unknown(),
        });
    }

    fn note_cte_write(&mut self, ctx: QueryCtx) {
        if ctx == QueryCtx::Cte {
            self.flags.writes_in_cte = true;
        }
    }

    /// Walks a WITH clause and returns the scope mark to restore afterwards.
    /// Without RECURSIVE, each CTE sees only the ones before it, so
    /// `WITH patients AS (SELECT * FROM patients)` still reads the table.
    pub(crate) fn with_clause(&mut self, with: Option<&pb::WithClause>) -> usize {
        let mark = self.ctes.len();
        let Some(with) = with else { return mark };
        let ctes: Vec<&pb::CommonTableExpr> = with
            .ctes
            .iter()
            .filter_map(|n| match n.node.as_ref() {
                Some(NodeEnum::CommonTableExpr(c)) => Some(c.as_ref()),
                _ => None,
            })
            .collect();
        if ctes.len() != with.ctes.len() {
            self.unknown();
        }
        if with.recursive {
            self.ctes.extend(ctes.iter().map(|c| c.ctename.clone()));
        }
        for cte in ctes {
            self.query(cte.ctequery.as_deref(), QueryCtx::Cte);
            if let Some(cycle) = cte.cycle_clause.as_deref() {
                self.node_opt(cycle.cycle_mark_value.as_deref());
                self.node_opt(cycle.cycle_mark_default.as_deref());
            }
            if !with.recursive {
                self.ctes.push(cte.ctename.clone());
            }
        }
        mark
    }

    pub(crate) fn end_scope(&mut self, mark: usize) {
        self.ctes.truncate(mark);
    }

    /// SELECT: `Read`; `SELECT ... INTO` creates a table (`Ddl`);
    /// `FOR UPDATE/NO KEY UPDATE/SHARE/KEY SHARE` locks rows (`Write`, and
    /// the locked tables count as written).
    pub(crate) fn select(&mut self, s: &pb::SelectStmt) {
        let mark = self.with_clause(s.with_clause.as_ref());
        if let Some(into) = s.into_clause.as_deref() {
            self.raise(StatementKind::Ddl);
            self.write_target(into.rel.as_ref());
            self.nodes(&into.options);
            if into.view_query.is_some() {
                self.unknown();
            }
        }
        let locks = !s.locking_clause.is_empty();
        if locks {
            self.raise(StatementKind::Write);
        }
        match pb::SetOperation::try_from(s.op) {
            Ok(pb::SetOperation::SetopNone) => {
                if s.larg.is_some() || s.rarg.is_some() {
                    self.unknown();
                }
                let saved = self.locking;
                self.locking = saved || locks;
                self.range_items(&s.from_clause);
                self.locking = saved;
                self.nodes(&s.distinct_clause);
                self.nodes(&s.target_list);
                self.node_opt(s.where_clause.as_deref());
                self.nodes(&s.group_clause);
                self.node_opt(s.having_clause.as_deref());
                self.nodes(&s.window_clause);
                for row in &s.values_lists {
                    self.node(row);
                }
            }
            Ok(pb::SetOperation::SetopUnion | pb::SetOperation::SetopIntersect | pb::SetOperation::SetopExcept) => {
                for arm in [s.larg.as_deref(), s.rarg.as_deref()] {
                    match arm {
                        Some(arm) => self.deeper(|w| w.select(arm)),
                        None => self.unknown(),
                    }
                }
            }
            _ => self.unknown(),
        }
        self.nodes(&s.sort_clause);
        self.node_opt(s.limit_offset.as_deref());
        self.node_opt(s.limit_count.as_deref());
        self.nodes(&s.locking_clause);
        self.end_scope(mark);
    }

    /// INSERT: `Write`. ON CONFLICT DO UPDATE and RETURNING also read the
    /// target.
    fn insert(&mut self, s: &pb::InsertStmt) {
        self.raise(StatementKind::Write);
        let mark = self.with_clause(s.with_clause.as_ref());
        if s.on_conflict_clause.is_some() || s.returning_clause.is_some() {
            self.read_write_target(s.relation.as_ref());
        } else {
            self.write_target(s.relation.as_ref());
        }
        self.nodes(&s.cols);
        if let Some(q) = s.select_stmt.as_deref() {
            self.query(Some(q), QueryCtx::Subquery);
        }
        if let Some(oc) = s.on_conflict_clause.as_deref() {
            if let Some(infer) = oc.infer.as_deref() {
                self.nodes(&infer.index_elems);
                self.node_opt(infer.where_clause.as_deref());
            }
            self.nodes(&oc.target_list);
            self.node_opt(oc.where_clause.as_deref());
        }
        self.returning(s.returning_clause.as_ref());
        self.end_scope(mark);
    }

    /// UPDATE: `Write`; no WHERE sets `where_less_write` (any WHERE counts,
    /// even `WHERE true`).
    fn update(&mut self, s: &pb::UpdateStmt) {
        self.raise(StatementKind::Write);
        let mark = self.with_clause(s.with_clause.as_ref());
        self.read_write_target(s.relation.as_ref());
        self.range_items(&s.from_clause);
        self.nodes(&s.target_list);
        match s.where_clause.as_deref() {
            Some(w) => self.node(w),
            None => self.flags.where_less_write = true,
        }
        self.returning(s.returning_clause.as_ref());
        self.end_scope(mark);
    }

    /// DELETE: `Write`; no WHERE sets `where_less_write`.
    fn delete(&mut self, s: &pb::DeleteStmt) {
        self.raise(StatementKind::Write);
        let mark = self.with_clause(s.with_clause.as_ref());
        self.read_write_target(s.relation.as_ref());
        self.range_items(&s.using_clause);
        match s.where_clause.as_deref() {
            Some(w) => self.node(w),
            None => self.flags.where_less_write = true,
        }
        self.returning(s.returning_clause.as_ref());
        self.end_scope(mark);
    }

    /// MERGE: `Write`. It always has a join condition, so it never sets
    /// `where_less_write`, even with `ON true ... THEN DELETE`.
    fn merge(&mut self, s: &pb::MergeStmt) {
        self.raise(StatementKind::Write);
        let mark = self.with_clause(s.with_clause.as_ref());
        self.read_write_target(s.relation.as_ref());
        match s.source_relation.as_deref() {
            Some(src) => self.range_item(src),
            None => self.unknown(),
        }
        self.node_opt(s.join_condition.as_deref());
        for clause in &s.merge_when_clauses {
            match clause.node.as_ref() {
                Some(NodeEnum::MergeWhenClause(c)) => {
                    self.node_opt(c.condition.as_deref());
                    self.nodes(&c.target_list);
                    self.nodes(&c.values);
                }
                _ => self.unknown(),
            }
        }
        self.returning(s.returning_clause.as_ref());
        self.end_scope(mark);
    }

    fn returning(&mut self, r: Option<&pb::ReturningClause>) {
        if let Some(r) = r {
            self.nodes(&r.options);
            self.nodes(&r.exprs);
        }
    }

    pub(crate) fn range_items(&mut self, items: &[Node]) {
        for item in items {
            self.range_item(item);
        }
    }

    /// One FROM item: a table, a join, a sub-select, a table function,
    /// XMLTABLE, JSON_TABLE or TABLESAMPLE.
    pub(crate) fn range_item(&mut self, item: &Node) {
        self.deeper(|w| match item.node.as_ref() {
            Some(NodeEnum::RangeVar(rv)) => w.table_ref(rv),
            Some(NodeEnum::JoinExpr(j)) => {
                for arm in [j.larg.as_deref(), j.rarg.as_deref()] {
                    match arm {
                        Some(arm) => w.range_item(arm),
                        None => w.unknown(),
                    }
                }
                w.node_opt(j.quals.as_deref());
            }
            // A sub-select in FROM is locked too by an outer FOR UPDATE.
            Some(NodeEnum::RangeSubselect(s)) => w.query(s.subquery.as_deref(), QueryCtx::Subquery),
            Some(NodeEnum::RangeFunction(f)) => {
                w.nodes(&f.functions);
                w.nodes(&f.coldeflist);
            }
            Some(NodeEnum::RangeTableFunc(t)) => {
                w.node_opt(t.docexpr.as_deref());
                w.node_opt(t.rowexpr.as_deref());
                w.nodes(&t.namespaces);
                w.nodes(&t.columns);
            }
            Some(NodeEnum::RangeTableSample(t)) => {
                match t.relation.as_deref() {
                    Some(rel) => w.range_item(rel),
                    None => w.unknown(),
                }
                w.nodes(&t.args);
                w.node_opt(t.repeatable.as_deref());
            }
            Some(NodeEnum::JsonTable(t)) => w.json_table(t),
            _ => w.unknown(),
        });
    }

    /// Leaves the FROM-clause locking context (used by sub-links).
    pub(crate) fn unlocked(&mut self, f: impl FnOnce(&mut Walker)) {
        let saved = self.locking;
        self.locking = false;
        f(self);
        self.locking = saved;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `SELECT (SELECT (SELECT ... 1))` built directly, deeper than any
    /// parse `pg_query` returns, so the walker's own bound is what stops it.
    fn nested_sublinks(depth: usize) -> Node {
        let mut inner = Node { node: Some(NodeEnum::AConst(pb::AConst::default())) };
        for _ in 0..depth {
            let select = pb::SelectStmt {
                op: pb::SetOperation::SetopNone as i32,
                target_list: vec![Node {
                    node: Some(NodeEnum::ResTarget(Box::new(pb::ResTarget {
                        val: Some(Box::new(inner)),
                        ..Default::default()
                    }))),
                }],
                ..Default::default()
            };
            inner = Node {
                node: Some(NodeEnum::SubLink(Box::new(pb::SubLink {
                    subselect: Some(Box::new(Node { node: Some(NodeEnum::SelectStmt(Box::new(select))) })),
                    ..Default::default()
                }))),
            };
        }
        inner
    }

    fn walk_on_small_stack(depth: usize) -> StatementKind {
        let handle = std::thread::Builder::new()
            .stack_size(2 * 1024 * 1024)
            .spawn(move || {
                let tree = nested_sublinks(depth);
                let mut w = Walker::new(PgStringMode::STANDARD);
                w.node(&tree);
                let kind = w.kind;
                // Dropping a deep tree recurses too; leak it in the test.
                std::mem::forget(tree);
                kind
            })
            .expect("spawn");
        match handle.join() {
            Ok(kind) => kind,
            Err(_) => panic!("walker panicked"),
        }
    }

    #[test]
    fn walker_depth_is_bounded() {
        assert_eq!(walk_on_small_stack(10), StatementKind::Read);
        assert_eq!(walk_on_small_stack(MAX_DEPTH as usize), StatementKind::Admin);
        assert_eq!(walk_on_small_stack(5_000), StatementKind::Admin);
    }
}
