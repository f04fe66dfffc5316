//! Slicing: policies are pre-sorted at load into small Cedar policy sets by
//! what their scope pins, so a decision evaluates only policies that can
//! apply to it.
//!
//! Owns: the bucket layout and the lookup of a request's buckets.
//! Does not: evaluate; `engine` runs Cedar over the buckets found here.
//!
//! A policy goes into exactly one bucket per action it names (every SQL
//! action if its action scope is open):
//! - by resource: `resource == Sluice::Connection::"c"` (or `in`) → bucket of
//!   connection `c`; any other resource scope → the any-connection bucket;
//! - by principal: `principal == Sluice::Agent::"x"` (or `in`) → the bucket of
//!   that principal; `principal in Sluice::Group::"g"` (also with `is`) → the
//!   bucket of group `g`; anything else → the any-principal bucket;
//! - by effect: forbids and permits apply separately;
//! - by guard flag: a policy whose first `when` starts with `context.<flag>`
//!   is evaluated only when that flag is set (see `analyze`).
//!
//! A request looks up its action × {any connection, its connection} ×
//! {any principal, itself, each of its groups and their ancestors}. Every
//! bucket key a policy can be in is one its matching requests look up, so
//! slicing never drops a policy that could be satisfied.

use crate::analyze::ContextUse;
use crate::schema::{SQL_ACTIONS, kind_index};
use cedar_policy::{ActionConstraint, Effect, EntityUid, Policy, PolicySet, PrincipalConstraint, ResourceConstraint};
use std::collections::HashMap;

/// Policies of one effect in one bucket, evaluated together. A guarded
/// slice is evaluated only when its flag is true (see `analyze`).
#[derive(Debug)]
pub(crate) struct Slice {
    pub guard: Option<usize>,
    /// The context attributes its policies read.
    pub uses: ContextUse,
    pub effect: Effect,
    pub set: PolicySet,
    pub len: usize,
}

#[derive(Debug, Default)]
pub(crate) struct Bucket {
    slices: Vec<Slice>,
}

#[derive(Debug, Default)]
struct ByPrincipal {
    any: Bucket,
    /// Per principal kind (agent, human, service), by subject.
    entity: [HashMap<String, Bucket>; 3],
    group: HashMap<String, Bucket>,
}

#[derive(Debug, Default)]
struct ByResource {
    any: ByPrincipal,
    connection: HashMap<String, ByPrincipal>,
}

#[derive(Debug)]
pub(crate) struct Index {
    actions: Vec<ByResource>,
}

enum PrincipalKey {
    Any,
    Entity(usize, String),
    Group(String),
}

impl Index {
    /// `guards[i]` is the guard flag (index into `FLAG_NAMES`) of
    /// `policies[i]`, `uses[i]` the context attributes it reads.
    pub fn build(policies: &[Policy], guards: &[Option<usize>], uses: &[ContextUse]) -> Index {
        let mut index = Index { actions: SQL_ACTIONS.iter().map(|_| ByResource::default()).collect() };
        for ((policy, &guard), &used) in policies.iter().zip(guards).zip(uses) {
            let principal = principal_key(policy);
            let connection = connection_key(policy);
            for action in action_indices(policy) {
                let by_resource = &mut index.actions[action];
                let by_principal = match &connection {
                    Some(c) => by_resource.connection.entry(c.clone()).or_default(),
                    None => &mut by_resource.any,
                };
                let bucket = match &principal {
                    PrincipalKey::Any => &mut by_principal.any,
                    PrincipalKey::Entity(kind, id) => by_principal.entity[*kind].entry(id.clone()).or_default(),
                    PrincipalKey::Group(g) => by_principal.group.entry(g.clone()).or_default(),
                };
                let effect = policy.effect();
                let slice = match bucket.slices.iter().position(|s| s.guard == guard && s.effect == effect) {
                    Some(i) => &mut bucket.slices[i],
                    None => {
                        bucket.slices.push(Slice {
                            guard,
                            uses: ContextUse::default(),
                            effect,
                            set: PolicySet::new(),
                            len: 0,
                        });
                        bucket.slices.last_mut().expect("just pushed")
                    }
                };
                // Ids are unique (global indices), so `add` cannot fail.
                let _ = slice.set.add(policy.clone());
                slice.len += 1;
                slice.uses.union(used);
            }
        }
        index
    }

    /// The slices a request must evaluate: those of its buckets whose guard
    /// flag (if any) is set.
    #[allow(clippy::too_many_arguments)]
    pub fn slices<'a>(
        &'a self,
        action: usize,
        connection: &str,
        principal_kind: usize,
        subject: &str,
        groups: &[String],
        flags: &[bool],
        out: &mut Vec<&'a Slice>,
    ) {
        let by_resource = &self.actions[action];
        for by_principal in [Some(&by_resource.any), by_resource.connection.get(connection)].into_iter().flatten() {
            let own = by_principal.entity[principal_kind].get(subject);
            let in_groups = groups.iter().filter_map(|g| by_principal.group.get(g));
            for bucket in std::iter::once(&by_principal.any).chain(own).chain(in_groups) {
                out.extend(bucket.slices.iter().filter(|s| s.guard.is_none_or(|g| flags[g])));
            }
        }
    }
}

fn action_indices(policy: &Policy) -> Vec<usize> {
    let position = |uid: &EntityUid| SQL_ACTIONS.iter().position(|a| uid.id().unescaped() == *a);
    match policy.action_constraint() {
        ActionConstraint::Any => (0..SQL_ACTIONS.len()).collect(),
        ActionConstraint::Eq(uid) => position(&uid).into_iter().collect(),
        ActionConstraint::In(uids) => {
            let mut v: Vec<usize> = uids.iter().filter_map(position).collect();
            v.sort_unstable();
            v.dedup();
            v
        }
    }
}

fn principal_key(policy: &Policy) -> PrincipalKey {
    let entity = |uid: &EntityUid| {
        let ty = uid.type_name().to_string();
        let id = uid.id().unescaped().to_owned();
        match ty.as_str() {
            "Sluice::Agent" => PrincipalKey::Entity(kind_index(sluice_model::PrincipalKind::Agent), id),
            "Sluice::Human" => PrincipalKey::Entity(kind_index(sluice_model::PrincipalKind::Human), id),
            "Sluice::Service" => PrincipalKey::Entity(kind_index(sluice_model::PrincipalKind::Service), id),
            _ => PrincipalKey::Any,
        }
    };
    match policy.principal_constraint() {
        PrincipalConstraint::Eq(uid) => entity(&uid),
        PrincipalConstraint::In(uid) | PrincipalConstraint::IsIn(_, uid) => {
            if uid.type_name().to_string() == "Sluice::Group" {
                PrincipalKey::Group(uid.id().unescaped().to_owned())
            } else {
                entity(&uid)
            }
        }
        PrincipalConstraint::Any | PrincipalConstraint::Is(_) => PrincipalKey::Any,
    }
}

fn connection_key(policy: &Policy) -> Option<String> {
    match policy.resource_constraint() {
        ResourceConstraint::Eq(uid) | ResourceConstraint::In(uid) | ResourceConstraint::IsIn(_, uid)
            if uid.type_name().to_string() == "Sluice::Connection" =>
        {
            Some(uid.id().unescaped().to_owned())
        }
        _ => None,
    }
}
