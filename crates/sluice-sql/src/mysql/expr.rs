//! MySQL expressions: function calls, sub-queries, and the clauses made of
//! expressions (ORDER BY, LIMIT, GROUP BY, windows, assignments, joins).
//!
//! Owns: the expression allow-list and the function rules (names,
//! security functions, minimum kinds).
//! Does not own: queries and DML (`walk.rs`), statements (`stmts.rs`).
//!
//! Every `Expr` variant MySQL can produce is walked; the others (lambdas,
//! maps, structs, Oracle `PRIOR`, ...) make the statement `Admin`.

use sluice_model::sql::StatementKind;
use sqlparser::ast::{
    Assignment, BinaryOperator, Expr, Function, FunctionArg, FunctionArgExpr, FunctionArgumentClause,
    FunctionArguments, GroupByExpr, InTarget, JoinConstraint, JoinOperator, LimitClause, NamedWindowExpr, OrderBy,
    OrderByExpr, OrderByKind, SelectItem, SelectItemQualifiedWildcardKind, WindowFrameBound, WindowSpec, WindowType,
};

use super::walk::{QueryCtx, Walker, object_name};
use crate::security_functions::{is_mysql_security_function, mysql_min_kind};

impl Walker {
    pub(crate) fn exprs(&mut self, exprs: &[Expr]) {
        for e in exprs {
            self.expr(e);
        }
    }

    pub(crate) fn expr_opt(&mut self, e: Option<&Expr>) {
        if let Some(e) = e {
            self.expr(e);
        }
    }

    /// A sub-query inside an expression: never locked by an outer
    /// `FOR UPDATE`.
    fn subquery(&mut self, q: &sqlparser::ast::Query) {
        self.with_writing_from(false, |w| w.query(q, QueryCtx::Subquery));
    }

    pub(crate) fn expr(&mut self, e: &Expr) {
        self.deeper(|w| match e {
            Expr::Identifier(_)
            | Expr::CompoundIdentifier(_)
            | Expr::Value(_)
            | Expr::TypedString(_)
            | Expr::Wildcard(_)
            | Expr::QualifiedWildcard(..)
            | Expr::MatchAgainst { .. } => {}
            Expr::JsonAccess { value, .. } => w.expr(value),
            Expr::IsFalse(x)
            | Expr::IsNotFalse(x)
            | Expr::IsTrue(x)
            | Expr::IsNotTrue(x)
            | Expr::IsNull(x)
            | Expr::IsNotNull(x)
            | Expr::IsUnknown(x)
            | Expr::IsNotUnknown(x)
            | Expr::Nested(x)
            | Expr::Collate { expr: x, .. }
            | Expr::Extract { expr: x, .. }
            | Expr::Ceil { expr: x, .. }
            | Expr::Floor { expr: x, .. }
            | Expr::UnaryOp { expr: x, .. }
            | Expr::Cast { expr: x, format: None, .. }
            | Expr::Prefixed { value: x, .. }
            | Expr::Named { expr: x, .. }
            | Expr::IsJson { expr: x, .. }
            | Expr::IsNormalized { expr: x, .. } => w.expr(x),
            Expr::IsDistinctFrom(a, b)
            | Expr::IsNotDistinctFrom(a, b)
            | Expr::AnyOp { left: a, right: b, .. }
            | Expr::AllOp { left: a, right: b, .. }
            | Expr::AtTimeZone { timestamp: a, time_zone: b }
            | Expr::Position { expr: a, r#in: b }
            | Expr::RLike { expr: a, pattern: b, .. } => {
                w.expr(a);
                w.expr(b);
            }
            Expr::BinaryOp { left, op, right } => {
                // `@v := x` sets a user variable.
                if *op == BinaryOperator::Assignment {
                    w.raise(StatementKind::Session);
                }
                w.expr(left);
                w.expr(right);
            }
            Expr::Between { expr, low, high, .. } => {
                w.expr(expr);
                w.expr(low);
                w.expr(high);
            }
            Expr::Like { expr, pattern, escape_char, .. }
            | Expr::ILike { expr, pattern, escape_char, .. }
            | Expr::SimilarTo { expr, pattern, escape_char, .. } => {
                w.expr(expr);
                w.expr(pattern);
                w.expr_opt(escape_char.as_deref());
            }
            Expr::In { expr, target, .. } => {
                w.expr(expr);
                match target {
                    InTarget::List(items) => w.exprs(items),
                    InTarget::Subquery(q) => w.subquery(q),
                    InTarget::Unnest(_) | InTarget::Table { .. } => w.unknown(),
                }
            }
            Expr::Convert { expr, styles, .. } => {
                w.expr(expr);
                w.exprs(styles);
            }
            Expr::Substring { expr, substring_from, substring_for, .. } => {
                w.expr(expr);
                w.expr_opt(substring_from.as_deref());
                w.expr_opt(substring_for.as_deref());
            }
            Expr::Trim { expr, trim_what, trim_characters, .. } => {
                w.expr(expr);
                w.expr_opt(trim_what.as_deref());
                if let Some(chars) = trim_characters {
                    w.exprs(chars);
                }
            }
            Expr::Overlay { expr, overlay_what, overlay_from, overlay_for } => {
                w.expr(expr);
                w.expr(overlay_what);
                w.expr(overlay_from);
                w.expr_opt(overlay_for.as_deref());
            }
            Expr::Function(f) => w.function(f),
            Expr::Case { operand, conditions, else_result, .. } => {
                w.expr_opt(operand.as_deref());
                for when in conditions {
                    w.expr(&when.condition);
                    w.expr(&when.result);
                }
                w.expr_opt(else_result.as_deref());
            }
            Expr::Exists { subquery, .. } | Expr::Subquery(subquery) => w.subquery(subquery),
            Expr::GroupingSets(sets) | Expr::Cube(sets) | Expr::Rollup(sets) => {
                for set in sets {
                    w.exprs(set);
                }
            }
            Expr::Tuple(items) => w.exprs(items),
            Expr::Array(a) => w.exprs(&a.elem),
            Expr::Interval(i) => w.expr(&i.value),
            Expr::MemberOf(m) => {
                w.expr(&m.value);
                w.expr(&m.array);
            }
            _ => w.unknown(),
        });
    }

    /// A function call: named (lower-case, database-qualified when written
    /// so), checked against the security-function table, arguments walked.
    pub(crate) fn function(&mut self, f: &Function) {
        let Some(name) = object_name(&f.name) else {
            self.unknown();
            return;
        };
        if let Some(kind) = mysql_min_kind(&name) {
            self.raise(kind);
        }
        if is_mysql_security_function(&name) {
            self.found.flags.security_function = true;
            if name.rsplit('.').next() == Some("load_file") {
                self.found.flags.copy_file = true;
            }
        }
        self.found.functions.push(name);
        if f.uses_odbc_syntax || f.null_treatment.is_some() || !matches!(f.parameters, FunctionArguments::None) {
            self.unknown();
        }
        self.function_arguments(&f.args);
        self.order_by_exprs(&f.within_group);
        self.expr_opt(f.filter.as_deref());
        match &f.over {
            Some(WindowType::WindowSpec(spec)) => self.window_spec(spec),
            Some(WindowType::NamedWindow(_)) | None => {}
        }
    }

    fn function_arguments(&mut self, args: &FunctionArguments) {
        match args {
            FunctionArguments::None => {}
            FunctionArguments::Subquery(q) => self.subquery(q),
            FunctionArguments::List(list) => {
                for arg in &list.args {
                    let (FunctionArg::Named { arg, .. } | FunctionArg::Unnamed(arg)) = arg else {
                        self.unknown();
                        continue;
                    };
                    if let FunctionArgExpr::Expr(e) = arg {
                        self.expr(e);
                    }
                }
                for clause in &list.clauses {
                    match clause {
                        FunctionArgumentClause::OrderBy(items) => self.order_by_exprs(items),
                        FunctionArgumentClause::Where(e) | FunctionArgumentClause::Limit(e) => self.expr(e),
                        FunctionArgumentClause::Separator(_) | FunctionArgumentClause::IgnoreOrRespectNulls(_) => {}
                        _ => self.unknown(),
                    }
                }
            }
        }
    }

    fn window_spec(&mut self, spec: &WindowSpec) {
        self.exprs(&spec.partition_by);
        self.order_by_exprs(&spec.order_by);
        if let Some(frame) = &spec.window_frame {
            for bound in [Some(&frame.start_bound), frame.end_bound.as_ref()].into_iter().flatten() {
                if let WindowFrameBound::Preceding(e) | WindowFrameBound::Following(e) = bound {
                    self.expr_opt(e.as_deref());
                }
            }
        }
    }

    pub(crate) fn named_window(&mut self, w: &NamedWindowExpr) {
        match w {
            NamedWindowExpr::WindowSpec(spec) => self.window_spec(spec),
            NamedWindowExpr::NamedWindow(_) => {}
        }
    }

    pub(crate) fn select_item(&mut self, item: &SelectItem) {
        match item {
            SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => self.expr(e),
            SelectItem::QualifiedWildcard(SelectItemQualifiedWildcardKind::ObjectName(_), _)
            | SelectItem::Wildcard(_) => {}
            _ => self.unknown(),
        }
    }

    pub(crate) fn group_by(&mut self, g: &GroupByExpr) {
        match g {
            GroupByExpr::All(_) => {}
            GroupByExpr::Expressions(exprs, _) => self.exprs(exprs),
        }
    }

    pub(crate) fn order_by(&mut self, o: &OrderBy) {
        if o.interpolate.is_some() {
            self.unknown();
        }
        match &o.kind {
            OrderByKind::Expressions(items) => self.order_by_exprs(items),
            OrderByKind::All(_) => {}
        }
    }

    pub(crate) fn order_by_exprs(&mut self, items: &[OrderByExpr]) {
        for item in items {
            if item.with_fill.is_some() {
                self.unknown();
            }
            self.expr(&item.expr);
        }
    }

    pub(crate) fn limit_clause(&mut self, l: &LimitClause) {
        match l {
            LimitClause::LimitOffset { limit, offset, limit_by } => {
                self.expr_opt(limit.as_ref());
                self.expr_opt(offset.as_ref().map(|o| &o.value));
                self.exprs(limit_by);
            }
            LimitClause::OffsetCommaLimit { offset, limit } => {
                self.expr(offset);
                self.expr(limit);
            }
        }
    }

    pub(crate) fn assignments(&mut self, assignments: &[Assignment]) {
        for a in assignments {
            self.expr(&a.value);
        }
    }

    pub(crate) fn join_operator(&mut self, op: &JoinOperator) {
        let constraint = match op {
            JoinOperator::Join(c)
            | JoinOperator::Inner(c)
            | JoinOperator::Left(c)
            | JoinOperator::LeftOuter(c)
            | JoinOperator::Right(c)
            | JoinOperator::RightOuter(c)
            | JoinOperator::FullOuter(c)
            | JoinOperator::CrossJoin(c)
            | JoinOperator::StraightJoin(c) => c,
            _ => {
                self.unknown();
                return;
            }
        };
        if let JoinConstraint::On(e) = constraint {
            self.with_writing_from(false, |w| w.expr(e));
        }
    }
}
