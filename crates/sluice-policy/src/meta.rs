//! Sluice's annotations on Cedar policies, read once at load.
//!
//! Owns: checking which annotation may stand on which effect, parsing
//! `@budget(...)`, and the per-policy facts `decide` needs (display name,
//! obligations, denial text).
//! Does not: evaluate anything; see the crate docs for the semantics.

use crate::Budget;
use cedar_policy::{Effect, Policy};

/// Annotations Sluice reads. Anything else is refused, so that a typo such as
/// `@hodl` cannot silently turn a held request into an allowed one.
pub(crate) const KNOWN_ANNOTATIONS: &[&str] =
    &["id", "hold", "mask", "budget", "reason", "remedy", "description", "owner", "note"];

/// What `decide` needs to know about one policy.
#[derive(Debug, Clone)]
pub(crate) struct PolicyMeta {
    /// `@id`, or `file:line` when the policy has none.
    pub name: String,
    /// `@hold`: `Some("")` when present without a reason.
    pub hold: Option<String>,
    pub mask: Option<String>,
    pub budget: Budget,
    pub reason: Option<String>,
    pub remedy: Option<String>,
}

/// Reads the annotations of `policy`; errors are messages (the caller adds
/// the position).
pub(crate) fn read_meta(policy: &Policy, default_name: String) -> Result<PolicyMeta, Vec<String>> {
    let effect = policy.effect();
    let mut errors = Vec::new();
    for (key, _) in policy.annotations() {
        if !KNOWN_ANNOTATIONS.contains(&key) {
            errors.push(format!(
                "unknown annotation @{key}; Sluice reads {}",
                KNOWN_ANNOTATIONS.iter().map(|k| format!("@{k}")).collect::<Vec<_>>().join(", ")
            ));
        }
    }
    let get = |key: &str| policy.annotation(key).map(str::to_owned);
    let (permit_only, forbid_only): (&[&str], &[&str]) = (&["mask", "budget"], &["reason", "remedy"]);
    match effect {
        Effect::Permit => {
            for key in forbid_only {
                if policy.annotation(key).is_some() {
                    errors.push(format!(
                        "@{key} applies to forbid policies (it is the text of a denial); \
                         a permit's reason for holding is @hold(\"...\")"
                    ));
                }
            }
        }
        Effect::Forbid => {
            for key in permit_only {
                if policy.annotation(key).is_some() {
                    errors
                        .push(format!("@{key} is an obligation of a permit; on a forbid policy it would never apply"));
                }
            }
        }
    }
    let name = match policy.annotation("id") {
        Some(id) if id.trim().is_empty() => {
            errors.push("@id must not be empty".into());
            default_name
        }
        Some(id) => id.to_owned(),
        None => default_name,
    };
    let mask = get("mask");
    if mask.as_deref().is_some_and(|m| m.trim().is_empty()) {
        errors.push("@mask needs a profile name, e.g. @mask(\"phi\")".into());
    }
    let budget = match policy.annotation("budget") {
        Some(text) => parse_budget(text).unwrap_or_else(|e| {
            errors.push(e);
            Budget::default()
        }),
        None => Budget::default(),
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(PolicyMeta { name, hold: get("hold"), mask, budget, reason: get("reason"), remedy: get("remedy") })
}

/// Parses `"rows_per_statement=1000, bytes_per_statement=10MiB, rows_per_hour=10000"`.
/// Entries are separated by commas; numbers may use `_`; byte counts may end
/// in `KiB`, `MiB` or `GiB`.
pub(crate) fn parse_budget(text: &str) -> Result<Budget, String> {
    let mut budget = Budget::default();
    let mut any = false;
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let Some((key, value)) = entry.split_once('=') else {
            return Err(format!("@budget entry `{entry}` is not `key=value`"));
        };
        let (key, value) = (key.trim(), value.trim());
        let (slot, allow_units) = match key {
            "rows_per_statement" => (&mut budget.rows_per_statement, false),
            "bytes_per_statement" => (&mut budget.bytes_per_statement, true),
            "rows_per_hour" => (&mut budget.rows_per_hour, false),
            other => {
                return Err(format!(
                    "@budget key `{other}` is unknown; use rows_per_statement, bytes_per_statement, rows_per_hour"
                ));
            }
        };
        if slot.is_some() {
            return Err(format!("@budget names `{key}` twice"));
        }
        *slot = Some(parse_amount(value, allow_units).ok_or_else(|| {
            format!(
                "@budget value `{value}` for `{key}` is not a whole number{}",
                if allow_units { " (optionally with KiB, MiB or GiB)" } else { "" }
            )
        })?);
        any = true;
    }
    if !any {
        return Err("@budget is empty; e.g. @budget(\"rows_per_statement=1000, rows_per_hour=10000\")".into());
    }
    Ok(budget)
}

fn parse_amount(value: &str, allow_units: bool) -> Option<u64> {
    let (digits, scale) = match value {
        v if allow_units && v.ends_with("KiB") => (&v[..v.len() - 3], 1u64 << 10),
        v if allow_units && v.ends_with("MiB") => (&v[..v.len() - 3], 1 << 20),
        v if allow_units && v.ends_with("GiB") => (&v[..v.len() - 3], 1 << 30),
        v => (v, 1),
    };
    let digits: String = digits.trim().chars().filter(|&c| c != '_').collect();
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u64>().ok()?.checked_mul(scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_parses() {
        let b = parse_budget("rows_per_statement=1_000, bytes_per_statement = 2MiB,rows_per_hour=10000").unwrap();
        assert_eq!(b.rows_per_statement, Some(1000));
        assert_eq!(b.bytes_per_statement, Some(2 << 20));
        assert_eq!(b.rows_per_hour, Some(10_000));
    }

    #[test]
    fn budget_refuses_nonsense() {
        for bad in [
            "",
            "rows=5",
            "rows_per_statement",
            "rows_per_statement=-1",
            "rows_per_statement=1MiB",
            "rows_per_hour=1, rows_per_hour=2",
            "bytes_per_statement=99999999999999GiB",
        ] {
            assert!(parse_budget(bad).is_err(), "{bad}");
        }
    }
}
