//! `PolicyEngine`: loaded, validated, sliced policies and `decide`.
//!
//! Owns: turning a `SqlRequest` into a Cedar request (context built from
//! restricted expressions, no JSON), evaluating the request's slices, and
//! combining the satisfied policies into a `PolicyDecision` (see the crate
//! docs for the rules).
//! Does not: IO after load, or keep state between decisions.

mod outcome;

use crate::analyze::{ContextUse, guard_flag};
use crate::context::{self, FLAG_NAMES};
use crate::index::{Index, Slice};
use crate::load::{self, Loaded};
use crate::meta::PolicyMeta;
use crate::schema::{self, Names, SCHEMA_TEXT, action_index, kind_index};
use crate::{PolicyDecision, PolicyError, PolicySettings, Problem, SqlRequest};
use cedar_policy::{
    Authorizer, Effect, Entities, Entity, EntityId, EntityUid, PolicyId, PolicySet, Request, RestrictedExpression,
    Schema,
};
use outcome::Satisfied;
use sluice_model::{Principal, PrincipalKind};
use std::collections::{BTreeSet, HashMap};
use std::path::Path;

/// Validated policies, sliced for `decide`. Immutable after load; `Send + Sync`.
#[derive(Debug)]
pub struct PolicyEngine {
    schema: Schema,
    names: Names,
    metas: Vec<PolicyMeta>,
    index: Index,
    authorizer: Authorizer,
    warnings: Vec<Problem>,
    /// Connection entities built at load, by name.
    connections: HashMap<String, Entity>,
    /// All ancestors of each group that has parents.
    group_ancestors: HashMap<String, Vec<String>>,
    mask_rank: HashMap<String, usize>,
    /// Every policy, by effect, for `decide_unsliced`.
    all_forbids: PolicySet,
    all_permits: PolicySet,
}

/// The Cedar entities of one principal on one connection, built once per
/// session by [`PolicyEngine::prepare`] and reused for each of its requests
/// (building them costs several microseconds).
#[derive(Debug, Clone)]
pub struct PreparedPrincipal {
    kind: PrincipalKind,
    subject: String,
    groups: Vec<String>,
    issuer: String,
    connection: String,
    /// Groups and their configured ancestors, sorted.
    ancestry: Vec<String>,
    principal: EntityUid,
    resource: EntityUid,
    entities: Result<Entities, String>,
}

impl PreparedPrincipal {
    fn matches(&self, r: &SqlRequest<'_>) -> bool {
        let p = r.principal;
        self.kind == p.kind
            && self.subject == p.subject
            && self.connection == r.connection
            && self.groups == p.groups
            && self.issuer == p.issuer
    }
}

impl PolicyEngine {
    /// Loads every `*.cedar` file in `dir` (sorted by name) with default settings.
    pub fn load_dir(dir: &Path) -> Result<PolicyEngine, PolicyError> {
        Self::load_dir_with(dir, &PolicySettings::default())
    }

    pub fn load_dir_with(dir: &Path, settings: &PolicySettings) -> Result<PolicyEngine, PolicyError> {
        Self::from_sources_with(&load::read_dir(dir)?, settings)
    }

    /// Loads policies from `(file name, text)` pairs, in the order given.
    pub fn from_sources(sources: &[(String, String)]) -> Result<PolicyEngine, PolicyError> {
        Self::from_sources_with(sources, &PolicySettings::default())
    }

    pub fn from_sources_with(
        sources: &[(String, String)],
        settings: &PolicySettings,
    ) -> Result<PolicyEngine, PolicyError> {
        let (schema, names) = schema::build()?;
        let Loaded { policies, metas, warnings } = load::load(sources, &schema)?;
        let uses: Vec<ContextUse> = policies.iter().map(ContextUse::of).collect();
        let guards: Vec<Option<usize>> = policies
            .iter()
            .map(|p| guard_flag(p, &FLAG_NAMES).and_then(|f| FLAG_NAMES.iter().position(|n| *n == f)))
            .collect();
        let index = Index::build(&policies, &guards, &uses);
        let (mut all_forbids, mut all_permits) = (PolicySet::new(), PolicySet::new());
        for policy in &policies {
            let set = if policy.effect() == Effect::Forbid { &mut all_forbids } else { &mut all_permits };
            // Ids are unique (global indices), so `add` cannot fail.
            let _ = set.add(policy.clone());
        }
        let mut connections = HashMap::new();
        for (name, attrs) in &settings.connections {
            let entity = connection_entity(&names, name, &attrs.environment).map_err(PolicyError::Schema)?;
            connections.insert(name.clone(), entity);
        }
        let group_ancestors =
            settings.group_parents.keys().map(|g| (g.clone(), ancestors_of(g, &settings.group_parents))).collect();
        let mask_rank = settings.mask_order.iter().enumerate().map(|(i, m)| (m.clone(), i)).collect();
        Ok(PolicyEngine {
            schema,
            names,
            metas,
            index,
            authorizer: Authorizer::new(),
            warnings,
            connections,
            group_ancestors,
            mask_rank,
            all_forbids,
            all_permits,
        })
    }

    /// The documented Cedar schema every policy is validated against.
    pub fn schema_text() -> &'static str {
        SCHEMA_TEXT
    }

    /// The parsed schema (for tools that validate entities or requests).
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// Validator warnings (e.g. a policy that can never apply), with positions.
    pub fn warnings(&self) -> &[Problem] {
        &self.warnings
    }

    /// Names (`@id` or `file:line`) of all loaded policies, in load order.
    pub fn policy_names(&self) -> impl Iterator<Item = &str> {
        self.metas.iter().map(|m| m.name.as_str())
    }

    /// `(policy name, profile)` for every policy carrying `@mask`, in load
    /// order, so the caller can check each profile exists.
    pub fn mask_profiles(&self) -> impl Iterator<Item = (&str, &str)> {
        self.metas.iter().filter_map(|m| m.mask.as_deref().map(|profile| (m.name.as_str(), profile)))
    }

    /// How many policies `decide` evaluates for this request (its slice).
    pub fn slice_len(&self, request: &SqlRequest<'_>) -> usize {
        let prepared = self.prepare(request.principal, request.connection);
        let mut slices = Vec::new();
        self.lookup(&prepared, request, &mut slices);
        slices.iter().map(|s| s.len).sum()
    }

    /// Builds the Cedar entities of `principal` on `connection`, for
    /// [`PolicyEngine::decide_prepared`]. Call once per session (or when the
    /// principal or connection changes).
    pub fn prepare(&self, principal: &Principal, connection: &str) -> PreparedPrincipal {
        let mut ancestry = principal.groups.clone();
        for g in &principal.groups {
            if let Some(up) = self.group_ancestors.get(g) {
                ancestry.extend(up.iter().cloned());
            }
        }
        ancestry.sort_unstable();
        ancestry.dedup();
        let principal_uid = EntityUid::from_type_name_and_id(
            self.names.principal_types[kind_index(principal.kind)].clone(),
            EntityId::new(&principal.subject),
        );
        let resource = EntityUid::from_type_name_and_id(self.names.connection.clone(), EntityId::new(connection));
        let entities = self.entities(principal, &principal_uid, connection, &ancestry);
        PreparedPrincipal {
            kind: principal.kind,
            subject: principal.subject.clone(),
            groups: principal.groups.clone(),
            issuer: principal.issuer.clone(),
            connection: connection.to_owned(),
            ancestry,
            principal: principal_uid,
            resource,
            entities,
        }
    }

    fn entities(
        &self,
        p: &Principal,
        uid: &EntityUid,
        connection: &str,
        ancestry: &[String],
    ) -> Result<Entities, String> {
        let parents =
            ancestry.iter().map(|g| EntityUid::from_type_name_and_id(self.names.group.clone(), EntityId::new(g)));
        let attrs = [
            ("kind".to_owned(), RestrictedExpression::new_string(p.kind.as_str().to_owned())),
            ("subject".to_owned(), RestrictedExpression::new_string(p.subject.clone())),
            ("issuer".to_owned(), RestrictedExpression::new_string(p.issuer.clone())),
        ];
        let principal =
            Entity::new_with_tags(uid.clone(), attrs, parents, std::iter::empty()).map_err(|e| e.to_string())?;
        let connection = match self.connections.get(connection) {
            Some(entity) => entity.clone(),
            None => connection_entity(&self.names, connection, "production")?,
        };
        Entities::from_entities([principal, connection], None).map_err(|e| e.to_string())
    }

    /// Decides a request. Pure: no IO, no state. Builds the principal's
    /// entities each time; a session should [`prepare`](Self::prepare) once
    /// and call [`decide_prepared`](Self::decide_prepared).
    pub fn decide(&self, request: &SqlRequest<'_>) -> PolicyDecision {
        self.decide_prepared(&self.prepare(request.principal, request.connection), request)
    }

    /// Decides a request with entities prepared for its principal and
    /// connection. If `prepared` is for another principal or connection, it
    /// is ignored and the entities are built afresh (never a wrong answer).
    pub fn decide_prepared(&self, prepared: &PreparedPrincipal, request: &SqlRequest<'_>) -> PolicyDecision {
        if !prepared.matches(request) {
            return self.decide(request);
        }
        let mut slices = Vec::with_capacity(8);
        self.lookup(prepared, request, &mut slices);
        if slices.is_empty() {
            return self.default_deny(request, &prepared.ancestry, &[]);
        }
        // Build only what the slices to evaluate can read.
        let mut uses = ContextUse::default();
        let (mut forbids, mut permits) = (Vec::new(), Vec::new());
        for slice in &slices {
            uses.union(slice.uses);
            match slice.effect {
                Effect::Forbid => forbids.push(&slice.set),
                Effect::Permit => permits.push(&slice.set),
            }
        }
        self.evaluate(prepared, request, &forbids, &permits, &uses)
    }

    /// The same decision without slicing, guards or context pruning: every
    /// policy evaluated against the full context. For tests that prove
    /// slicing changes nothing, and for the bench's comparison.
    #[doc(hidden)]
    pub fn decide_unsliced(&self, request: &SqlRequest<'_>) -> PolicyDecision {
        let prepared = self.prepare(request.principal, request.connection);
        self.evaluate(&prepared, request, &[&self.all_forbids], &[&self.all_permits], &ContextUse::all())
    }

    fn evaluate(
        &self,
        prepared: &PreparedPrincipal,
        request: &SqlRequest<'_>,
        forbids: &[&PolicySet],
        permits: &[&PolicySet],
        uses: &ContextUse,
    ) -> PolicyDecision {
        let fail = |e: String| PolicyDecision::Deny {
            policies: Vec::new(),
            reason: format!("the request could not be put to policy: {e}"),
            remedy: "report this to the Sluice operator".into(),
        };
        let entities = match &prepared.entities {
            Ok(entities) => entities,
            Err(e) => return fail(e.clone()),
        };
        let context = match context::build(request, uses) {
            Ok(context) => context,
            Err(e) => return fail(e),
        };
        let action = self.names.actions[action_index(request.classification.kind)].clone();
        let cedar_request =
            match Request::new(prepared.principal.clone(), action, prepared.resource.clone(), context, None) {
                Ok(r) => r,
                Err(e) => return fail(e.to_string()),
            };
        let mut s = Satisfied::default();
        for set in forbids {
            let response = self.authorizer.is_authorized(&cedar_request, set, entities);
            for i in response.diagnostics().reason().map(index_of) {
                if self.metas[i].hold.is_some() { s.hold_forbids.push(i) } else { s.hard_forbids.push(i) }
            }
            for e in response.diagnostics().errors() {
                let cedar_policy::AuthorizationError::PolicyEvaluationError(e) = e;
                s.forbid_errors.push((index_of(e.policy_id()), e.inner().to_string()));
            }
        }
        if !s.hard_forbids.is_empty() || !s.forbid_errors.is_empty() {
            return self.forbidden(s);
        }
        for set in permits {
            let response = self.authorizer.is_authorized(&cedar_request, set, entities);
            s.permits.extend(response.diagnostics().reason().map(index_of));
            for e in response.diagnostics().errors() {
                let cedar_policy::AuthorizationError::PolicyEvaluationError(e) = e;
                s.permit_errors.push((index_of(e.policy_id()), e.inner().to_string()));
            }
        }
        if s.permits.is_empty() {
            s.permit_errors.sort();
            return self.default_deny(request, &prepared.ancestry, &s.permit_errors);
        }
        self.granted(s)
    }

    fn lookup<'a>(&'a self, prepared: &PreparedPrincipal, request: &SqlRequest<'_>, out: &mut Vec<&'a Slice>) {
        let action = action_index(request.classification.kind);
        let flags = request.classification.flags.values();
        let kind = kind_index(prepared.kind);
        self.index.slices(action, &prepared.connection, kind, &prepared.subject, &prepared.ancestry, &flags, out);
    }
}

fn index_of(id: &PolicyId) -> usize {
    // Ids are the global indices assigned at load.
    AsRef::<str>::as_ref(id).parse().unwrap_or(usize::MAX)
}

fn connection_entity(names: &Names, name: &str, environment: &str) -> Result<Entity, String> {
    let uid = EntityUid::from_type_name_and_id(names.connection.clone(), EntityId::new(name));
    let attrs = [
        ("name".to_owned(), RestrictedExpression::new_string(name.to_owned())),
        ("environment".to_owned(), RestrictedExpression::new_string(environment.to_owned())),
    ];
    Entity::new_with_tags(uid, attrs, std::iter::empty(), std::iter::empty()).map_err(|e| e.to_string())
}

fn ancestors_of(group: &str, parents: &std::collections::BTreeMap<String, Vec<String>>) -> Vec<String> {
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut stack: Vec<&str> = vec![group];
    while let Some(g) = stack.pop() {
        for p in parents.get(g).into_iter().flatten() {
            if p != group && seen.insert(p.clone()) {
                stack.push(p);
            }
        }
    }
    seen.into_iter().collect()
}
