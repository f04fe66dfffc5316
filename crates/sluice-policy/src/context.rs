//! The Cedar context of a SQL request, built from restricted expressions
//! (no JSON) and only with the attributes some loaded policy reads.
//!
//! Owns: the context attribute names, table qualification, the flag table.
//! Does not: decide which attributes are read (see `analyze`).

use crate::SqlRequest;
use crate::analyze::ContextUse;
use cedar_policy::{Context, RestrictedExpression};
use chrono::{Datelike, Timelike};
use sluice_model::SqlFlags;
use std::net::IpAddr;

/// Every context attribute, in the order of `ContextUse`'s bits: the table
/// and function sets, the flags (named once, by `SqlFlags::NAMES`), then
/// the rest.
pub(crate) const ATTRS: [&str; 10 + SqlFlags::NAMES.len()] = {
    const HEAD: [&str; 5] = ["tables_read", "tables_written", "tables", "functions", "statements"];
    const TAIL: [&str; 5] = ["fingerprint", "now", "hour", "weekday", "client_ip"];
    let mut attrs = [""; 10 + SqlFlags::NAMES.len()];
    let mut i = 0;
    while i < HEAD.len() {
        attrs[i] = HEAD[i];
        attrs[HEAD.len() + SqlFlags::NAMES.len() + i] = TAIL[i];
        i += 1;
    }
    let mut f = 0;
    while f < SqlFlags::NAMES.len() {
        attrs[HEAD.len() + f] = SqlFlags::NAMES[f];
        f += 1;
    }
    attrs
};
const FIRST_FLAG: usize = 5;
/// The first attribute after the flags (`fingerprint`).
const FIRST_TAIL: usize = FIRST_FLAG + SqlFlags::NAMES.len();

/// The Bool flags of the context, in the order of `SqlFlags::values`.
pub(crate) const FLAG_NAMES: [&str; SqlFlags::NAMES.len()] = SqlFlags::NAMES;

/// `patients` → `public.patients` when the session's schema is known.
pub(crate) fn qualify(table: &str, default_schema: Option<&str>) -> String {
    match default_schema {
        Some(schema) if !table.contains('.') => format!("{schema}.{table}"),
        _ => table.to_owned(),
    }
}

fn strings<'a>(items: impl Iterator<Item = &'a String>) -> RestrictedExpression {
    RestrictedExpression::new_set(items.map(|s| RestrictedExpression::new_string(s.clone())))
}

pub(crate) fn build(r: &SqlRequest<'_>, used: &ContextUse) -> Result<Context, String> {
    let c = r.classification;
    let mut pairs: Vec<(String, RestrictedExpression)> = Vec::with_capacity(24);
    let mut put = |attr: usize, value: &dyn Fn() -> RestrictedExpression| {
        if used.wants(attr) {
            pairs.push((ATTRS[attr].to_owned(), value()));
        }
    };
    if used.wants(0) || used.wants(1) || used.wants(2) {
        let read: Vec<String> = c.tables_read.iter().map(|t| qualify(t, r.default_schema)).collect();
        let written: Vec<String> = c.tables_written.iter().map(|t| qualify(t, r.default_schema)).collect();
        put(0, &|| strings(read.iter()));
        put(1, &|| strings(written.iter()));
        put(2, &|| strings(read.iter().chain(&written)));
    }
    put(3, &|| strings(c.functions.iter()));
    put(4, &|| RestrictedExpression::new_long(i64::from(c.statements)));
    for (i, value) in c.flags.values().into_iter().enumerate() {
        put(FIRST_FLAG + i, &|| RestrictedExpression::new_bool(value));
    }
    put(FIRST_TAIL, &|| RestrictedExpression::new_string(c.fingerprint.clone()));
    put(FIRST_TAIL + 1, &|| RestrictedExpression::new_datetime(r.now.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()));
    put(FIRST_TAIL + 2, &|| RestrictedExpression::new_long(i64::from(r.now.hour())));
    put(FIRST_TAIL + 3, &|| RestrictedExpression::new_long(i64::from(r.now.weekday().number_from_monday())));
    if let Some(ip) = r.client_addr {
        put(FIRST_TAIL + 4, &|| RestrictedExpression::new_ip(ip_text(ip)));
    }
    Context::from_pairs(pairs).map_err(|e| e.to_string())
}

/// An address as Cedar's `ip()` reads it: IPv4-mapped IPv6 becomes IPv4, and
/// IPv6 is written in full (Cedar refuses embedded dotted quads).
fn ip_text(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => v6.segments().iter().map(|s| format!("{s:x}")).collect::<Vec<_>>().join(":"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_attribute_is_declared_in_the_schema() {
        assert!(ATTRS.iter().all(|a| !a.is_empty()), "{ATTRS:?}");
        for attr in ATTRS {
            let declared = format!("    {attr}:");
            let optional = format!("    {attr}?:");
            assert!(
                crate::schema::SCHEMA_TEXT.contains(&declared) || crate::schema::SCHEMA_TEXT.contains(&optional),
                "{attr} not in the schema"
            );
        }
    }

    #[test]
    fn attribute_slots_match_their_names() {
        assert_eq!(ATTRS[FIRST_FLAG], SqlFlags::NAMES[0]);
        assert_eq!(ATTRS[FIRST_TAIL - 1], SqlFlags::NAMES[SqlFlags::NAMES.len() - 1]);
        assert_eq!(ATTRS[FIRST_TAIL..], ["fingerprint", "now", "hour", "weekday", "client_ip"]);
    }
}
