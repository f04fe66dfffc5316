//! The MySQL parse-tree walker: its state, and the query statements
//! (SELECT, INSERT, REPLACE, UPDATE, DELETE) with their WITH clauses and
//! FROM items.
//!
//! Owns: [`Walker`], CTE name scoping, the recursion bound, table names
//! (`db.table`, lower-cased), multi-table UPDATE/DELETE targets, and the
//! query-statement rules.
//! Does not own: expressions (`expr.rs`), other statements (`stmts.rs`).
//!
//! Allow-list: every field of a node that MySQL can produce is walked; a
//! field only other dialects use must be empty, or the statement is
//! `Admin`.

use sluice_model::sql::StatementKind;
use sqlparser::ast::{
    Delete, FromTable, Insert, LockClause, ObjectName, ObjectNamePart, OnInsert, Query, Select, SelectFlavor,
    SelectInto, SetExpr, TableFactor, TableObject, TableWithJoins, Update, UpdateTableFromKind,
};

use crate::findings::Findings;
use crate::names;

/// The deepest nesting of nodes the walker follows before giving up
/// (`Admin`). `sqlparser`'s own recursion limit (50, kept as it is) stops
/// most nesting first, but chains of binary operators are built without
/// recursion, so the walker needs its own bound.
pub(crate) const MAX_DEPTH: u32 = 200;

/// Where a query sits; it decides `writes_in_cte`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum QueryCtx {
    Plain,
    Cte,
    Subquery,
}

/// What the walk has found so far.
#[derive(Debug, Default)]
pub(crate) struct Walker {
    pub(crate) found: Findings,
    /// CTE names visible at this point (lower-case), innermost last.
    ctes: Vec<String>,
    depth: u32,
    /// Tables referenced in FROM here are also written: under
    /// `SELECT ... FOR UPDATE/SHARE`, and in a multi-table UPDATE.
    writing_from: bool,
}

/// `db.table` as written, lower-cased (see the crate docs on
/// `lower_case_table_names`). `None` for a part that is not a plain
/// identifier.
pub(crate) fn object_name(name: &ObjectName) -> Option<String> {
    let mut parts = Vec::with_capacity(name.0.len());
    for part in &name.0 {
        match part {
            ObjectNamePart::Identifier(ident) => parts.push(ident.value.to_lowercase()),
            ObjectNamePart::Function(_) => return None,
        }
    }
    if parts.is_empty() {
        return None;
    }
    Some(names::join(parts.iter().map(String::as_str)))
}

impl Walker {
    pub(crate) fn raise(&mut self, kind: StatementKind) {
        self.found.raise(kind);
    }

    /// Something the walker does not understand: the most dangerous kind.
    pub(crate) fn unknown(&mut self) {
        self.found.kind = StatementKind::Admin;
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

    /// A fresh walker for an embedded statement (a plain EXPLAIN target)
    /// sharing this walker's depth budget.
    pub(crate) fn child(&self) -> Walker {
        Walker { depth: self.depth, ..Walker::default() }
    }

    /// A table the statement writes.
    pub(crate) fn written(&mut self, name: &ObjectName) {
        match object_name(name) {
            Some(n) => self.found.written.push(n),
            None => self.unknown(),
        }
    }

    /// A table the statement both reads and writes.
    pub(crate) fn read_written(&mut self, name: &ObjectName) {
        match object_name(name) {
            Some(n) => {
                self.found.read.push(n.clone());
                self.found.written.push(n);
            }
            None => self.unknown(),
        }
    }

    /// A table read. An unqualified name matching a visible CTE is the CTE;
    /// unqualified `DUAL` is MySQL's dummy table, not a table.
    pub(crate) fn table_ref(&mut self, name: &ObjectName) {
        let Some(n) = object_name(name) else {
            self.unknown();
            return;
        };
        if name.0.len() == 1 && (self.ctes.contains(&n) || n == "dual") {
            return;
        }
        if self.writing_from {
            self.found.written.push(n.clone());
        }
        self.found.read.push(n);
    }

    /// Runs `f` with FROM tables also counted as written (or not).
    pub(crate) fn with_writing_from(&mut self, on: bool, f: impl FnOnce(&mut Walker)) {
        let saved = self.writing_from;
        self.writing_from = on;
        f(self);
        self.writing_from = saved;
    }

    /// A query: WITH, body, ORDER BY, LIMIT, locking clauses.
    pub(crate) fn query(&mut self, q: &Query, ctx: QueryCtx) {
        self.deeper(|w| {
            if q.fetch.is_some()
                || q.for_clause.is_some()
                || q.settings.is_some()
                || q.format_clause.is_some()
                || !q.pipe_operators.is_empty()
            {
                w.unknown();
            }
            let mark = w.ctes.len();
            if let Some(with) = &q.with {
                let names: Vec<String> = with.cte_tables.iter().map(|c| c.alias.name.value.to_lowercase()).collect();
                if with.recursive {
                    w.ctes.extend(names.iter().cloned());
                }
                for (cte, name) in with.cte_tables.iter().zip(names) {
                    if cte.from.is_some() {
                        w.unknown();
                    }
                    w.query(&cte.query, QueryCtx::Cte);
                    if !with.recursive {
                        w.ctes.push(name);
                    }
                }
            }
            let locks = !q.locks.is_empty();
            if locks {
                w.raise(StatementKind::Write);
            }
            let writing = w.writing_from || locks;
            w.with_writing_from(writing, |w| w.set_expr(&q.body, ctx));
            w.locks(&q.locks);
            if let Some(order) = &q.order_by {
                w.order_by(order);
            }
            if let Some(limit) = &q.limit_clause {
                w.limit_clause(limit);
            }
            w.ctes.truncate(mark);
        });
    }

    fn locks(&mut self, locks: &[LockClause]) {
        for lock in locks {
            if let Some(of) = &lock.of
                && object_name(of).is_none()
            {
                self.unknown();
            }
        }
    }

    fn set_expr(&mut self, body: &SetExpr, ctx: QueryCtx) {
        self.deeper(|w| match body {
            SetExpr::Select(s) => w.select(s),
            SetExpr::Query(q) => w.query(q, ctx),
            SetExpr::SetOperation { left, right, .. } => {
                w.set_expr(left, ctx);
                w.set_expr(right, ctx);
            }
            SetExpr::Values(values) => {
                for row in &values.rows {
                    w.exprs(&row.content);
                }
            }
            SetExpr::Insert(s) | SetExpr::Update(s) | SetExpr::Delete(s) => {
                if ctx == QueryCtx::Cte {
                    w.found.flags.writes_in_cte = true;
                }
                w.statement(s);
            }
            SetExpr::Table(t) => match (&t.schema_name, &t.table_name) {
                (schema, Some(table)) => {
                    let parts: Vec<_> = schema.iter().chain([table]).cloned().collect();
                    w.table_ref(&ObjectName::from(parts));
                }
                _ => w.unknown(),
            },
            SetExpr::Merge(_) => w.unknown(),
        });
    }

    /// SELECT: `Read`; `INTO @var` sets user variables (`Session`).
    /// `INTO OUTFILE/DUMPFILE` does not parse; the pre-scan catches it.
    fn select(&mut self, s: &Select) {
        let foreign = s.top.is_some()
            || s.exclude.is_some()
            || !s.lateral_views.is_empty()
            || s.prewhere.is_some()
            || !s.connect_by.is_empty()
            || !s.cluster_by.is_empty()
            || !s.distribute_by.is_empty()
            || !s.sort_by.is_empty()
            || s.qualify.is_some()
            || s.value_table_mode.is_some()
            || s.flavor != SelectFlavor::Standard;
        if foreign {
            self.unknown();
        }
        if let Some(into) = &s.into {
            self.select_into(into);
        }
        if let Some(sqlparser::ast::Distinct::On(exprs)) = &s.distinct {
            self.exprs(exprs);
        }
        for item in &s.from {
            self.table_with_joins(item);
        }
        // Sub-queries in expressions are not locked by FOR UPDATE.
        self.with_writing_from(false, |w| {
            for item in &s.projection {
                w.select_item(item);
            }
            w.expr_opt(s.selection.as_ref());
            w.group_by(&s.group_by);
            w.expr_opt(s.having.as_ref());
            for window in &s.named_window {
                w.named_window(&window.1);
            }
        });
    }

    fn select_into(&mut self, into: &SelectInto) {
        let user_vars =
            into.targets.iter().all(|t| matches!(t, sqlparser::ast::Expr::Identifier(i) if i.value.starts_with('@')));
        if into.table || into.temporary || into.unlogged || into.targets.is_empty() || !user_vars {
            self.unknown();
        } else {
            self.raise(StatementKind::Session);
        }
    }

    pub(crate) fn table_with_joins(&mut self, t: &TableWithJoins) {
        self.table_factor(&t.relation);
        for join in &t.joins {
            self.table_factor(&join.relation);
            self.join_operator(&join.join_operator);
        }
    }

    fn table_factor(&mut self, f: &TableFactor) {
        self.deeper(|w| match f {
            TableFactor::Table { name, args, version, json_path, sample, inheritance, with_hints, .. } => {
                if args.is_some()
                    || version.is_some()
                    || json_path.is_some()
                    || sample.is_some()
                    || inheritance.is_some()
                    || !with_hints.is_empty()
                {
                    w.unknown();
                }
                w.table_ref(name);
            }
            TableFactor::Derived { subquery, sample, .. } => {
                if sample.is_some() {
                    w.unknown();
                }
                w.query(subquery, QueryCtx::Subquery);
            }
            TableFactor::NestedJoin { table_with_joins, .. } => w.table_with_joins(table_with_joins),
            TableFactor::JsonTable { json_expr, .. } => w.expr(json_expr),
            _ => w.unknown(),
        });
    }

    /// INSERT and REPLACE: `Write`. `ON DUPLICATE KEY UPDATE` and REPLACE
    /// (which deletes the conflicting rows) also read the target.
    pub(crate) fn insert(&mut self, i: &Insert) {
        self.raise(StatementKind::Write);
        let foreign = i.or.is_some()
            || i.overwrite
            || i.partitioned.is_some()
            || !i.after_columns.is_empty()
            || i.overriding.is_some()
            || i.output.is_some()
            || i.settings.is_some()
            || i.format_clause.is_some()
            || i.multi_table_insert_type.is_some()
            || !i.multi_table_into_clauses.is_empty()
            || !i.multi_table_when_clauses.is_empty()
            || i.multi_table_else_clause.is_some();
        if foreign {
            self.unknown();
        }
        let reads_target = i.replace_into || i.on.is_some() || i.returning.is_some();
        match &i.table {
            TableObject::TableName(name) if reads_target => self.read_written(name),
            TableObject::TableName(name) => self.written(name),
            _ => self.unknown(),
        }
        if let Some(source) = &i.source {
            self.query(source, QueryCtx::Subquery);
        }
        self.assignments(&i.assignments);
        match &i.on {
            Some(OnInsert::DuplicateKeyUpdate(assignments)) => self.assignments(assignments),
            Some(_) => self.unknown(),
            None => {}
        }
        if let Some(items) = &i.returning {
            for item in items {
                self.select_item(item);
            }
        }
    }

    /// UPDATE: `Write`; every table of a multi-table UPDATE counts as read
    /// and written (which columns belong to which table needs the schema).
    /// No WHERE sets `where_less_write`.
    pub(crate) fn update(&mut self, u: &Update) {
        self.raise(StatementKind::Write);
        if u.on_cluster.is_some() || u.output.is_some() || u.or.is_some() || u.settings.is_some() {
            self.unknown();
        }
        self.with_writing_from(true, |w| w.table_with_joins(&u.table));
        if let Some(from) = &u.from {
            let (UpdateTableFromKind::BeforeSet(items) | UpdateTableFromKind::AfterSet(items)) = from;
            self.with_writing_from(false, |w| {
                for item in items {
                    w.table_with_joins(item);
                }
            });
        }
        self.with_writing_from(false, |w| {
            w.assignments(&u.assignments);
            match &u.selection {
                Some(e) => w.expr(e),
                None => w.found.flags.where_less_write = true,
            }
            w.order_by_exprs(&u.order_by);
            w.expr_opt(u.limit.as_ref());
            if let Some(items) = &u.returning {
                for item in items {
                    w.select_item(item);
                }
            }
        });
    }

    /// DELETE: `Write`; no WHERE sets `where_less_write` (even with
    /// LIMIT). Multi-table forms (`DELETE a, b FROM ...`,
    /// `DELETE FROM a USING ...`) write the named targets, resolved through
    /// the aliases of the FROM list, and read every table joined.
    pub(crate) fn delete(&mut self, d: &Delete) {
        self.raise(StatementKind::Write);
        if d.on_cluster.is_some() || d.output.is_some() || d.settings.is_some() {
            self.unknown();
        }
        let (FromTable::WithFromKeyword(from) | FromTable::WithoutKeyword(from)) = &d.from;
        let (targets, source): (Vec<ObjectName>, &[TableWithJoins]) = match (&d.tables[..], &d.using) {
            ([], None) => (from.iter().flat_map(plain_tables).collect(), from),
            ([], Some(using)) => (from.iter().flat_map(plain_tables).collect(), using),
            (named, None) => (named.to_vec(), from),
            (_, Some(_)) => {
                self.unknown();
                (Vec::new(), from)
            }
        };
        for item in source {
            self.table_with_joins(item);
        }
        let aliases: Vec<(String, ObjectName)> = source.iter().flat_map(aliased_tables).collect();
        for target in &targets {
            let resolved = match (&target.0[..], object_name(target)) {
                ([_], Some(n)) => aliases.iter().find(|(alias, _)| *alias == n).map(|(_, table)| table),
                _ => None,
            };
            self.read_written(resolved.unwrap_or(target));
        }
        if targets.is_empty() {
            self.unknown();
        }
        match &d.selection {
            Some(e) => self.expr(e),
            None => self.found.flags.where_less_write = true,
        }
        self.order_by_exprs(&d.order_by);
        self.expr_opt(d.limit.as_ref());
        if let Some(items) = &d.returning {
            for item in items {
                self.select_item(item);
            }
        }
    }
}

/// The plain tables of a FROM item (single-table DELETE targets).
fn plain_tables(t: &TableWithJoins) -> Vec<ObjectName> {
    aliased_tables(t).into_iter().map(|(_, name)| name).collect()
}

/// Every plain table in a FROM item with the name it is known by (its
/// alias, or its own name), lower-cased.
fn aliased_tables(t: &TableWithJoins) -> Vec<(String, ObjectName)> {
    let mut out = Vec::new();
    let mut stack: Vec<&TableFactor> = vec![&t.relation];
    stack.extend(t.joins.iter().map(|j| &j.relation));
    while let Some(f) = stack.pop() {
        match f {
            TableFactor::Table { name, alias, .. } => {
                let known_by = match alias {
                    Some(a) => Some(a.name.value.to_lowercase()),
                    None => object_name(name),
                };
                if let Some(known_by) = known_by {
                    out.push((known_by, name.clone()));
                }
            }
            TableFactor::NestedJoin { table_with_joins, .. } => {
                stack.push(&table_with_joins.relation);
                stack.extend(table_with_joins.joins.iter().map(|j| &j.relation));
            }
            _ => {}
        }
    }
    out
}
