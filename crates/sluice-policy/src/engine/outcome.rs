//! Turning the policies a request satisfied into a `PolicyDecision`: forbid
//! first, then default deny, then hold, then allow; obligations; the
//! texts of denials and holds.
//!
//! Owns: the combination rules documented in the crate docs.
//! Does not: evaluate Cedar (see the parent module).

use super::PolicyEngine;
use crate::context::qualify;
use crate::meta::PolicyMeta;
use crate::schema;
use crate::{Budget, PolicyDecision, SqlRequest};
use std::collections::BTreeSet;

/// Policies a request satisfied, by global index, in load order.
#[derive(Default)]
pub(super) struct Satisfied {
    pub hard_forbids: Vec<usize>,
    pub hold_forbids: Vec<usize>,
    pub permits: Vec<usize>,
    pub forbid_errors: Vec<(usize, String)>,
    pub permit_errors: Vec<(usize, String)>,
}

impl PolicyEngine {
    /// Combines satisfied permits (and `@hold` forbids) into allow or hold.
    pub(super) fn granted(&self, mut s: Satisfied) -> PolicyDecision {
        s.permits.sort_unstable();
        s.hold_forbids.sort_unstable();
        let (allowing, held): (Vec<usize>, Vec<usize>) = s.permits.iter().partition(|&&i| self.metas[i].hold.is_none());
        // Obligations come from the permits that grant: the unheld ones, or
        // (when every satisfied permit is held) the held ones.
        let granting = if allowing.is_empty() { &held } else { &allowing };
        let mask_profile = self.pick_mask(granting);
        let mut budget = Budget::default();
        for &i in granting {
            budget.tighten(&self.metas[i].budget);
        }
        let held_by = |m: &PolicyMeta| format!("held for approval by policy {}", m.name);
        if !s.hold_forbids.is_empty() {
            let reason = self.joined(&s.hold_forbids, |m| m.hold.clone(), held_by);
            let policies = self.names_of(s.hold_forbids.iter().chain(granting));
            return PolicyDecision::Hold { policies, reason, mask_profile, budget };
        }
        if allowing.is_empty() {
            let reason = self.joined(&held, |m| m.hold.clone(), held_by);
            return PolicyDecision::Hold { policies: self.names_of(&held), reason, mask_profile, budget };
        }
        PolicyDecision::Allow { policies: self.names_of(&allowing), mask_profile, budget }
    }

    pub(super) fn default_deny(
        &self,
        r: &SqlRequest<'_>,
        groups: &[String],
        errors: &[(usize, String)],
    ) -> PolicyDecision {
        let p = r.principal;
        let action = schema::action_for(r.classification.kind);
        let groups = if groups.is_empty() { "none".to_owned() } else { groups.join(", ") };
        let mut reason = format!(
            "no policy permits {action} on connection {} for {} {} (groups: {groups})",
            r.connection, p.kind, p.subject
        );
        let tables: BTreeSet<String> = r
            .classification
            .tables_read
            .iter()
            .chain(&r.classification.tables_written)
            .map(|t| qualify(t, r.default_schema))
            .collect();
        if !tables.is_empty() {
            reason.push_str(&format!("; tables: {}", tables.into_iter().collect::<Vec<_>>().join(", ")));
        }
        if !errors.is_empty() {
            let failed: Vec<String> = errors.iter().map(|(i, e)| format!("{} ({e})", self.metas[*i].name)).collect();
            reason.push_str(&format!("; policies that failed to evaluate: {}", failed.join(", ")));
        }
        PolicyDecision::Deny {
            policies: Vec::new(),
            reason,
            remedy: format!(
                "ask an operator for a policy that permits {action} on connection {} to one of your groups",
                r.connection
            ),
        }
    }

    pub(super) fn forbidden(&self, mut s: Satisfied) -> PolicyDecision {
        s.hard_forbids.sort_unstable();
        s.forbid_errors.sort();
        let mut reason =
            self.joined(&s.hard_forbids, |m| m.reason.clone(), |m| format!("forbidden by policy {}", m.name));
        for (i, e) in &s.forbid_errors {
            if !reason.is_empty() {
                reason.push_str("; ");
            }
            reason.push_str(&format!("policy {} could not be evaluated, so it denies: {e}", self.metas[*i].name));
        }
        let mut order = s.hard_forbids.clone();
        order.extend(s.forbid_errors.iter().map(|(i, _)| *i));
        order.dedup();
        let remedy = self.joined(&order, |m| m.remedy.clone(), |m| format!("ask an operator about policy {}", m.name));
        PolicyDecision::Deny { policies: self.names_of(&order), reason, remedy }
    }

    /// The distinct texts of `policies` (or their fallbacks), joined by "; ".
    fn joined(
        &self,
        policies: &[usize],
        text: impl Fn(&PolicyMeta) -> Option<String>,
        fallback: impl Fn(&PolicyMeta) -> String,
    ) -> String {
        let mut parts: Vec<String> = Vec::new();
        for &i in policies {
            let m = &self.metas[i];
            let part = text(m).filter(|t| !t.trim().is_empty()).unwrap_or_else(|| fallback(m));
            if !parts.contains(&part) {
                parts.push(part);
            }
        }
        parts.join("; ")
    }

    fn names_of<'a>(&self, policies: impl IntoIterator<Item = &'a usize>) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for &i in policies {
            if !names.contains(&self.metas[i].name) {
                names.push(self.metas[i].name.clone());
            }
        }
        names
    }

    /// Any granting permit's `@mask` applies; among different profiles the
    /// first in `mask_order` wins, then the first by name.
    fn pick_mask(&self, granting: &[usize]) -> Option<String> {
        granting
            .iter()
            .filter_map(|&i| self.metas[i].mask.as_deref())
            .min_by_key(|m| (self.mask_rank.get(*m).copied().unwrap_or(usize::MAX), *m))
            .map(str::to_owned)
    }
}
