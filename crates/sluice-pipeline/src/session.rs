//! `Session` and the one function that owns the phase order, `submit`.
//!
//! Owns: the order describe → decide (with its budget) → record
//! (write-ahead) → forward or refuse, for every request of every protocol.
//! Does not: parse protocols (the adapter describes its request) or relay
//! responses (the adapter does that, through the `Exchange`).

use crate::budget::ResultLimit;
use crate::decide::SessionPolicy;
use crate::exchange::{Exchange, Outcome, Refusal, RefusalKind, RequestMeta};
use crate::gateway::Gateway;
use crate::hold;
use crate::masking::AppliedMask;
use sluice_config::Connection;
use sluice_mask::{Detector, Subjects};
use sluice_model::{
    Action, AuditEvent, Decision, Denial, DenialCause, HoldRule, OutcomeStatus, Plan, Principal, RequestEvent,
    SessionClose,
};
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// What each protocol implements. The pipeline calls these in its own order;
/// an adapter never decides, records or masks by itself.
pub trait Adapter {
    /// One request in the protocol's own terms (a Query message, an Execute).
    type Request;
    type Error;

    /// Describe: the protocol-neutral view of the request that policy and audit see.
    fn describe(&self, request: &Self::Request) -> Action;

    /// Forward: send the admitted request to the target. The adapter relays the
    /// response through `exchange` (mask plan, byte counts) and finishes it
    /// with [`Exchange::complete`]; that may happen later, on another task.
    fn forward(
        &mut self,
        request: Self::Request,
        exchange: Exchange,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Tell the client, in its protocol's own way and while its request
    /// waits, what it waits on (a held request: its approval id and how a
    /// reviewer decides it). Nothing is forwarded.
    fn notice(&mut self, message: &str) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// How many rows the target expects a held write to touch, for its
    /// reviewers (PostgreSQL: `EXPLAIN`, planned, never run); `None` when
    /// the protocol or the target cannot say.
    fn estimate_rows(&mut self, request: &Self::Request) -> impl Future<Output = Option<u64>> + Send;

    /// Refuse: answer with the protocol's native error. The refusal is already
    /// recorded; the session stays open where the protocol allows.
    fn refuse(
        &mut self,
        request: Self::Request,
        refusal: &Refusal,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

/// What an allowed request carries into its exchange.
struct Admitted {
    limit: Option<ResultLimit>,
    mask: AppliedMask,
    /// The identifiers its response discloses, collected for the outcome.
    subjects: Option<(Subjects, Arc<Detector>)>,
}

impl Admitted {
    /// The exchange of a request whose record is durable.
    fn exchange(self, meta: RequestMeta) -> Exchange {
        Exchange::new(meta, self.limit, self.mask.masker).with_subjects(self.subjects)
    }
}

/// What follows a request's record.
enum Next {
    Forward(Admitted),
    Refuse(RefusalKind),
    /// Wait in the session for a reviewer.
    Hold(HoldRule),
}

/// One authenticated client session bound to one connection.
#[derive(Debug)]
pub struct Session {
    gateway: Gateway,
    meta: Arc<SessionMeta>,
    /// Policy state prepared once for this principal and connection.
    policy: SessionPolicy,
    requests: AtomicU64,
    opened: Instant,
}

/// What every request of a session shares, for its audit records.
#[derive(Debug)]
pub(crate) struct SessionMeta {
    pub(crate) id: String,
    pub(crate) principal: Principal,
    pub(crate) connection: Arc<Connection>,
    pub(crate) client_addr: String,
    /// The client's IP, parsed once for policy (`None` if the address is
    /// not an IP socket address).
    pub(crate) client_ip: Option<IpAddr>,
}

impl Session {
    pub(crate) fn new(
        gateway: Gateway,
        id: String,
        principal: Principal,
        connection: Arc<Connection>,
        client_addr: String,
        policy: SessionPolicy,
    ) -> Session {
        Session {
            gateway,
            meta: Arc::new(SessionMeta {
                id,
                principal,
                connection,
                client_ip: client_addr.parse::<SocketAddr>().ok().map(|a| a.ip()),
                client_addr,
            }),
            policy,
            requests: AtomicU64::new(0),
            opened: Instant::now(),
        }
    }

    pub fn id(&self) -> &str {
        &self.meta.id
    }

    pub fn principal(&self) -> &Principal {
        &self.meta.principal
    }

    pub fn connection(&self) -> &Arc<Connection> {
        &self.meta.connection
    }

    pub fn gateway(&self) -> &Gateway {
        &self.gateway
    }

    /// Runs one request through the pipeline. The order lives here and only here:
    ///
    /// 1. describe (adapter) → 2. decide → 3. record the request, durable before
    ///    anything is forwarded (write-ahead; a pure read may be forwarded while
    ///    it commits, its response held until it is durable) → 4. forward
    ///    (adapter), or refuse (adapter) when the decision or the audit store
    ///    says no.
    ///
    /// Mask, the outcome record and the response follow in the `Exchange`.
    pub async fn submit<A: Adapter>(&self, adapter: &mut A, request: A::Request) -> Result<(), A::Error> {
        let started = Instant::now();
        let action = adapter.describe(&request);
        let meta = &self.meta;
        let n = self.requests.fetch_add(1, Ordering::Relaxed) + 1;
        let request_id = format!("{}:{n}", self.meta.id);
        let decision = self.gateway.inner.decider.decide(
            &self.policy,
            &meta.principal,
            &meta.connection.name,
            meta.client_ip,
            &action,
        );
        // A held request that a reviewer already approved runs once, now,
        // with the obligations of the policy that held it.
        let decision = match decision {
            Decision::Hold(rule) => hold::grant_or_hold(self, &action, rule, &request_id).await,
            other => other,
        };
        // What happens after the record: an allowed request is admitted
        // (budget, masking profile), which may still turn it into a denial.
        let (decision, next) = match decision {
            Decision::Allow(plan) => match self.admit(&plan).await {
                Ok(admitted) => (Decision::Allow(plan), Next::Forward(admitted)),
                Err(denial) => (Decision::Deny(denial.clone()), Next::Refuse(RefusalKind::Policy(denial))),
            },
            Decision::Deny(denial) => (Decision::Deny(denial.clone()), Next::Refuse(RefusalKind::Policy(denial))),
            Decision::Hold(rule) => (Decision::Hold(rule.clone()), Next::Hold(rule)),
        };
        let metrics = &self.gateway.inner.metrics;
        metrics.count_decision(decision.verdict());

        let (text, param_count, params_sha256, classification) = match &action {
            Action::Sql(sql) => {
                (sql.text.clone(), sql.param_count, sql.params_sha256.clone(), sql.classification.clone())
            }
        };
        let record = AuditEvent::Request(RequestEvent {
            request_id: request_id.clone(),
            session_id: self.meta.id.clone(),
            principal: self.meta.principal.subject.clone(),
            connection: self.meta.connection.name.clone(),
            client_addr: self.meta.client_addr.clone(),
            statement: text,
            param_count,
            params_sha256,
            decision: decision.summary(),
            classification,
            mask_profile: match &next {
                Next::Forward(admitted) => Some(admitted.mask.profile.to_string()),
                _ => None,
            },
        });
        let meta =
            RequestMeta { session: self.meta.clone(), audit: self.gateway.inner.audit.clone(), request_id, started };
        let durable = self.gateway.inner.audit.append(record);
        // A pure read is forwarded while its record commits, so the fsync
        // overlaps the query's round trip; the Exchange holds its response
        // until the commit is confirmed. Everything else is write-ahead: the
        // record is durable before a byte goes upstream.
        let next = match next {
            Next::Forward(admitted) if action.is_pure_read() => {
                let exchange = Exchange::overlapped(meta, admitted.limit, admitted.mask.masker, durable)
                    .with_subjects(admitted.subjects);
                return adapter.forward(request, exchange).await;
            }
            next => next,
        };
        let refusal_kind = match (next, durable.await) {
            (_, Err(store_error)) => {
                metrics.audit_refusals.inc();
                RefusalKind::AuditUnavailable(store_error.to_string())
            }
            (Next::Forward(admitted), Ok(_)) => return adapter.forward(request, admitted.exchange(meta)).await,
            (Next::Refuse(kind), Ok(_)) => kind,
            (Next::Hold(rule), Ok(_)) => {
                // Recorded as held: wait in the session for a reviewer.
                match hold::wait_for_review(self, adapter, &request, &action, rule, &meta.request_id).await {
                    hold::Review::Run(plan) => match self.admit(&plan).await {
                        Ok(admitted) => return adapter.forward(request, admitted.exchange(meta)).await,
                        Err(denial) => RefusalKind::Policy(denial),
                    },
                    hold::Review::Refuse(kind) => kind,
                }
            }
        };
        let approvals = self.gateway.approvals();
        match &refusal_kind {
            // A forbid or a guardrail said no (not a missing permit, not a budget).
            RefusalKind::Policy(denial) if denial.cause == DenialCause::Policy && denial.policy != "default-deny" => {
                let Action::Sql(sql) = &action;
                let (principal, connection) = (&self.meta.principal.subject, &self.meta.connection.name);
                approvals.alert_blocked(principal, connection, &sql.text, denial, &meta.request_id);
            }
            RefusalKind::AuditUnavailable(why) => approvals.alert_store_unavailable(why),
            _ => {}
        }
        let refusal = Refusal { request_id: meta.request_id.clone(), kind: refusal_kind };
        let result = adapter.refuse(request, &refusal).await;
        meta.record_outcome(
            Outcome { status: OutcomeStatus::Refused, error: Some(refusal.message()), ..Outcome::default() },
            0,
            None,
        );
        result
    }

    /// An allowed request's budget becomes the limit its response must stay
    /// within (a spent hourly budget denies), and its masking profile (the
    /// policy's `@mask`, or the default) is resolved; one that does not
    /// exist denies (fail closed).
    async fn admit(&self, plan: &Plan) -> Result<Admitted, Denial> {
        let inner = &self.gateway.inner;
        let mask =
            inner.masking.resolve(plan.mask_profile.as_deref()).cloned().ok_or_else(|| undefined_profile(plan))?;
        let (principal, connection) = (&self.meta.principal.subject, &self.meta.connection.name);
        let limit = inner.budgets.admit(principal, connection, &plan.policies, plan.budget).await?;
        Ok(Admitted { limit, mask, subjects: inner.masking.subjects() })
    }

    /// Records the end of the session. Called once, by the adapter.
    pub fn close(self, reason: &str) {
        let metrics = &self.gateway.inner.metrics;
        metrics.sessions_active.dec();
        self.gateway.inner.audit.append_lazy(AuditEvent::SessionClose(SessionClose {
            session_id: self.meta.id.clone(),
            principal: self.meta.principal.subject.clone(),
            connection: self.meta.connection.name.clone(),
            reason: reason.to_string(),
            requests: self.requests.load(Ordering::Relaxed),
            duration_us: self.opened.elapsed().as_micros() as u64,
        }));
    }
}

/// The denial for a policy whose `@mask` names no configured profile
/// (startup validation refuses such policies; this is the backstop).
fn undefined_profile(plan: &Plan) -> Denial {
    Denial::by_policy(
        plan.policies.join(","),
        format!(
            "the permitting policy names masking profile \"{}\", which is not defined",
            plan.mask_profile.as_deref().unwrap_or_default()
        ),
        Some("define the profile under [masking.profiles] in sluice.toml".into()),
    )
}
