//! Load-time analysis of policy conditions, to keep `decide` cheap without
//! changing any decision.
//!
//! Owns: (1) which context attributes any loaded policy reads, so `decide`
//! builds only those (an attribute no policy mentions can change nothing);
//! (2) a policy's *guard flag*: when its first `when` clause starts with
//! `context.<flag> && …` (or is just `context.<flag>`), Cedar evaluates that
//! flag first and stops if it is false, so the policy cannot be satisfied
//! and cannot fail while the flag is false; `index` then skips it.
//! Does not: evaluate; it reads Cedar's JSON form (EST) of each policy, and
//! any shape it does not recognise makes it conservative (all attributes,
//! no guard).

use crate::context::ATTRS;
use cedar_policy::Policy;
use serde_json::Value;

/// The context attributes some policies may read: a bit per entry of
/// `context::ATTRS`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ContextUse {
    bits: u32,
}

const ALL: u32 = (1 << ATTRS.len()) - 1;

impl ContextUse {
    pub fn of(policy: &Policy) -> ContextUse {
        let mut used = ContextUse::default();
        match policy.to_json() {
            Ok(json) => walk(&json, &mut used),
            Err(_) => used.bits = ALL,
        }
        used
    }

    pub fn all() -> ContextUse {
        ContextUse { bits: ALL }
    }

    pub fn wants(&self, attr: usize) -> bool {
        self.bits & (1 << attr) != 0
    }

    pub fn union(&mut self, other: ContextUse) {
        self.bits |= other.bits;
    }

    fn insert(&mut self, attr: &str) {
        // A name outside the schema cannot pass validation; be safe anyway.
        self.bits |= ATTRS.iter().position(|a| *a == attr).map_or(ALL, |i| 1 << i);
    }
}

fn is_context(v: &Value) -> bool {
    v.get("Var").and_then(Value::as_str) == Some("context")
}

fn walk(v: &Value, out: &mut ContextUse) {
    match v {
        Value::Object(map) => {
            for (key, inner) in map {
                let left_is_context = inner.get("left").is_some_and(is_context);
                match (key.as_str(), left_is_context) {
                    (".", true) => match inner.get("attr").and_then(Value::as_str) {
                        Some(a) => out.insert(a),
                        None => out.bits = ALL,
                    },
                    ("has", true) => match inner.get("attr") {
                        Some(Value::String(a)) => out.insert(a),
                        Some(Value::Array(path)) => match path.first().and_then(Value::as_str) {
                            Some(a) => out.insert(a),
                            None => out.bits = ALL,
                        },
                        _ => out.bits = ALL,
                    },
                    ("Var", _) if inner.as_str() == Some("context") => out.bits = ALL,
                    _ => walk(inner, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
        _ => {}
    }
}

/// The flag that must be true for `policy` to be satisfied or to fail, if
/// it leads the policy's first `when` clause.
pub(crate) fn guard_flag(policy: &Policy, flags: &[&'static str]) -> Option<&'static str> {
    let json = policy.to_json().ok()?;
    let first = json.get("conditions")?.as_array()?.first()?;
    if first.get("kind")?.as_str()? != "when" {
        return None;
    }
    // `a && b && c` is `(a && b) && c`: the leftmost conjunct runs first.
    let mut expr = first.get("body")?;
    while let Some(and) = expr.get("&&") {
        expr = and.get("left")?;
    }
    let get = expr.get(".")?;
    if !get.get("left").is_some_and(is_context) {
        return None;
    }
    let attr = get.get("attr")?.as_str()?;
    flags.iter().copied().find(|f| *f == attr)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    const FLAGS: &[&str] = &["multi_statement", "copy_program"];

    fn policy(text: &str) -> Policy {
        Policy::from_str(text).unwrap()
    }

    #[test]
    fn attributes_read() {
        let at = |name: &str| ATTRS.iter().position(|a| *a == name).unwrap();
        let mut u = ContextUse::of(&policy(
            r#"permit(principal, action, resource) when { ["a"].containsAll(context.tables_read) && context has client_ip };"#,
        ));
        let wanted: Vec<&str> = (0..ATTRS.len()).filter(|&i| u.wants(i)).map(|i| ATTRS[i]).collect();
        assert_eq!(wanted, ["tables_read", "client_ip"]);
        u.union(ContextUse::of(&policy(r#"permit(principal, action, resource) when { context == {} };"#)));
        assert!(u.wants(at("hour")) && u.wants(at("fingerprint")));
        assert_eq!(ContextUse::of(&policy("permit(principal, action, resource);")), ContextUse::default());
    }

    #[test]
    fn guards() {
        let g = |t: &str| guard_flag(&policy(t), FLAGS);
        assert_eq!(g("forbid(principal, action, resource) when { context.multi_statement };"), Some("multi_statement"));
        assert_eq!(
            g("forbid(principal, action, resource) when { context.copy_program && context.hour > 3 && true };"),
            Some("copy_program")
        );
        assert_eq!(g("forbid(principal, action, resource) when { context.hour > 3 && context.copy_program };"), None);
        assert_eq!(g("forbid(principal, action, resource) when { context.copy_program || true };"), None);
        assert_eq!(g("forbid(principal, action, resource) unless { context.copy_program };"), None);
        assert_eq!(g("forbid(principal, action, resource) when { context.unparseable };"), None);
        assert_eq!(g("forbid(principal, action, resource);"), None);
    }
}
