//! `ApprovalStore` end to end, every scenario on SQLite (a temporary file)
//! and on the real PostgreSQL server (127.0.0.1:5432, a throwaway database
//! per test).
//!
//! Owns: the lifecycle, the reviewer rules as the store enforces them,
//! expiry, grants (exactly once, also under a race), restart, bad input.
//! Does not: test the pure rules and the fingerprint bytes (unit tests in
//! `src/`), or time anything.

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sluice_approval::{
    ApprovalError, ApprovalRequest, ApprovalStatus, ApprovalStore, Decided, NewApprovalRequest, Outcome, Ruling,
};
use sluice_config::{Approvals, ConnectionApprovals};
use sluice_model::{HoldRule, Principal, PrincipalKind, SqlClassification, SqlFlags, StatementKind};
use sqlx::Connection;

const PG_ADMIN_URL: &str = "postgres://root@127.0.0.1:5432/postgres";

/// Runs `scenario` against a SQLite file in a folder that does not exist yet.
async fn on_sqlite<F, Fut>(scenario: F)
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("nested").join("sluice.db").display());
    scenario(url).await;
}

/// Runs `scenario` against a fresh PostgreSQL database and drops it after,
/// even when the scenario panics (the panic is then re-raised).
async fn on_postgres<F, Fut>(scenario: F)
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let name = format!("sluice_approval_test_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(PG_ADMIN_URL).await.expect("connect to PostgreSQL");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut admin).await.expect("create");
    let outcome = tokio::spawn(scenario(format!("postgres://root@127.0.0.1:5432/{name}"))).await;
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
        .execute(&mut admin)
        .await
        .expect("drop");
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// One `#[tokio::test]` per scenario per backend: `sqlite::<name>` and `postgres::<name>`.
macro_rules! on_both_backends {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::on_sqlite(super::$scenario).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::on_postgres(super::$scenario).await;
                }
            )*
        }
    };
}

on_both_backends!(
    lifecycle_from_pending_to_used,
    self_approval_and_outsiders_are_refused,
    quorum_of_two_needs_two_distinct_reviewers,
    one_deny_denies,
    pending_requests_expire,
    grant_matches_only_the_identical_request_in_time,
    grant_is_taken_exactly_once_under_a_race,
    concurrent_decisions_are_all_counted,
    requests_survive_reopening,
    bad_input_gets_clear_errors,
);

fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000 + seconds, 0).expect("time")
}

fn principal(subject: &str, groups: &[&str]) -> Principal {
    Principal {
        subject: subject.into(),
        kind: if subject.starts_with("agent") { PrincipalKind::Agent } else { PrincipalKind::Human },
        groups: groups.iter().map(|g| g.to_string()).collect(),
        issuer: "api-key".into(),
        token_id: None,
    }
}

fn agent() -> Principal {
    principal("agent-7", &["analysts"])
}

fn reviewer(subject: &str) -> Principal {
    principal(subject, &["reviewers"])
}

/// Reviewers in `reviewers`, a quorum of `required`, expiry after an hour,
/// grants for 15 minutes.
fn rules(required: u32) -> Approvals {
    Approvals {
        reviewer_groups: vec!["reviewers".into()],
        expires_after: Duration::from_secs(3600),
        grant_ttl: Duration::from_secs(900),
        approvals_required: required,
        ..Approvals::default()
    }
}

fn held(principal: &Principal, statement: &str) -> NewApprovalRequest {
    NewApprovalRequest {
        principal: principal.clone(),
        connection: "clinic".into(),
        statement: statement.into(),
        params_sha256: Some("ab".repeat(32)),
        hold: HoldRule {
            policy: "hold-where-less-writes".into(),
            reason: "DELETE without WHERE".into(),
            ..HoldRule::default()
        },
        classification: Some(SqlClassification {
            kind: StatementKind::Write,
            statements: 1,
            tables_read: vec![],
            tables_written: vec!["visits".into()],
            functions: vec![],
            flags: SqlFlags { where_less_write: true, ..SqlFlags::default() },
            fingerprint: "5f2b1a".into(),
        }),
        row_estimate: Some(1200),
    }
}

const DELETE: &str = "DELETE FROM visits";

async fn open(url: &str) -> ApprovalStore {
    ApprovalStore::open(url).await.expect("open approval store")
}

async fn decide(
    store: &ApprovalStore,
    request: &ApprovalRequest,
    who: &Principal,
    ruling: Ruling,
    rules: &Approvals,
    now: DateTime<Utc>,
) -> Result<Decided, ApprovalError> {
    store.decide(request.id, who, ruling, &format!("{} says {}", who.subject, ruling.as_str()), rules, now).await
}

async fn lifecycle_from_pending_to_used(url: String) {
    let store = open(&url).await;
    let rules = rules(1);
    let request = store.create(held(&agent(), DELETE), &rules, at(0)).await.expect("create");
    assert_eq!(request.id.get_version_num(), 7);
    assert_eq!(request.status, ApprovalStatus::Pending);
    assert_eq!(request.expires_at, at(3600));
    assert_eq!((request.approvals_required, request.grant_ttl), (1, Duration::from_secs(900)));
    assert_eq!(request.fingerprint, held(&agent(), DELETE).fingerprint());
    assert_eq!(store.get(request.id).await.expect("get"), request, "what is stored is what create returned");
    assert_eq!(store.list(Some(ApprovalStatus::Pending)).await.expect("list"), std::slice::from_ref(&request));
    assert!(store.list(Some(ApprovalStatus::Approved)).await.expect("list").is_empty());

    let decided = decide(&store, &request, &reviewer("rita"), Ruling::Approve, &rules, at(60)).await.expect("approve");
    assert_eq!(decided.outcome, Outcome::Approved);
    assert_eq!(decided.decision.reviewer, "rita");
    assert_eq!(decided.decision.comment, "rita says approve");
    let approved = decided.request;
    assert_eq!(approved.status, ApprovalStatus::Approved);
    assert_eq!(approved.approved_at, Some(at(60)));
    assert_eq!(approved.grant_expires_at, Some(at(960)));
    assert_eq!(approved.decisions, [decided.decision]);
    assert_eq!(store.get(request.id).await.expect("get"), approved);
    assert!(store.list(Some(ApprovalStatus::Pending)).await.expect("list").is_empty());

    let used = store.take_grant(&request.fingerprint, &agent(), at(120)).await.expect("take").expect("a grant");
    assert_eq!(used.id, request.id);
    assert_eq!((used.status, used.used_at), (ApprovalStatus::Used, Some(at(120))));
    assert_eq!(used.decisions.len(), 1);
    assert_eq!(store.get(request.id).await.expect("get"), used);
    assert_eq!(store.take_grant(&request.fingerprint, &agent(), at(121)).await.expect("take"), None, "used once");
    assert_eq!(store.list(None).await.expect("list all"), [used]);
}

async fn self_approval_and_outsiders_are_refused(url: String) {
    let store = open(&url).await;
    let mut rules = rules(1);
    // The agent is a reviewer too: it still cannot approve its own request.
    let requester = principal("agent-7", &["analysts", "reviewers"]);
    let request = store.create(held(&requester, DELETE), &rules, at(0)).await.expect("create");
    match decide(&store, &request, &requester, Ruling::Approve, &rules, at(1)).await {
        Err(ApprovalError::SelfApproval { id, reviewer }) => {
            assert_eq!((id, reviewer.as_str()), (request.id, "agent-7"))
        }
        other => panic!("expected SelfApproval, got {other:?}"),
    }
    let outsider = principal("olga", &["analysts"]);
    let err = decide(&store, &request, &outsider, Ruling::Approve, &rules, at(1)).await.expect_err("not a reviewer");
    assert!(matches!(err, ApprovalError::NotAReviewer { .. }), "{err:?}");
    assert!(err.to_string().contains("olga is not a reviewer for connection `clinic`"), "{err}");

    // Per connection: the connection's own groups replace the default ones.
    rules.connections.insert("clinic".into(), ConnectionApprovals { reviewer_groups: vec!["clinical-leads".into()] });
    let err = decide(&store, &request, &reviewer("rita"), Ruling::Approve, &rules, at(1)).await.expect_err("rita");
    assert!(err.to_string().contains("reviewers are in: clinical-leads"), "{err}");
    let unchanged = store.get(request.id).await.expect("get");
    assert_eq!((unchanged.status, unchanged.decisions.len()), (ApprovalStatus::Pending, 0), "refusals change nothing");

    let lead = principal("lena", &["clinical-leads"]);
    let decided = decide(&store, &request, &lead, Ruling::Approve, &rules, at(2)).await.expect("lead approves");
    assert_eq!(decided.outcome, Outcome::Approved);
}

async fn quorum_of_two_needs_two_distinct_reviewers(url: String) {
    let store = open(&url).await;
    let rules = rules(2);
    let request = store.create(held(&agent(), DELETE), &rules, at(0)).await.expect("create");
    let first = decide(&store, &request, &reviewer("rita"), Ruling::Approve, &rules, at(10)).await.expect("rita");
    assert_eq!(first.outcome, Outcome::Counted { approvals: 1, required: 2 });
    assert_eq!(first.request.status, ApprovalStatus::Pending);
    assert_eq!(first.request.approved_at, None);

    match decide(&store, &request, &reviewer("rita"), Ruling::Approve, &rules, at(11)).await {
        Err(ApprovalError::AlreadyDecided { reviewer, .. }) => assert_eq!(reviewer, "rita"),
        other => panic!("expected AlreadyDecided, got {other:?}"),
    }
    let still = store.get(request.id).await.expect("get");
    assert_eq!((still.status, still.approvals()), (ApprovalStatus::Pending, 1), "the same reviewer counts once");
    assert_eq!(store.take_grant(&request.fingerprint, &agent(), at(12)).await.expect("take"), None, "not approved yet");

    let second = decide(&store, &request, &reviewer("sam"), Ruling::Approve, &rules, at(20)).await.expect("sam");
    assert_eq!(second.outcome, Outcome::Approved);
    let reviewers: Vec<_> = second.request.decisions.iter().map(|d| (d.reviewer.as_str(), d.decided_at)).collect();
    assert_eq!(reviewers, [("rita", at(10)), ("sam", at(20))]);
    assert_eq!(second.request.approved_at, Some(at(20)));
    assert_eq!(store.get(request.id).await.expect("get"), second.request);
}

async fn one_deny_denies(url: String) {
    let store = open(&url).await;
    let rules = rules(2);
    let request = store.create(held(&agent(), DELETE), &rules, at(0)).await.expect("create");
    decide(&store, &request, &reviewer("rita"), Ruling::Approve, &rules, at(10)).await.expect("rita");
    let denied = decide(&store, &request, &reviewer("sam"), Ruling::Deny, &rules, at(20)).await.expect("sam");
    assert_eq!(denied.outcome, Outcome::Denied);
    assert_eq!(denied.request.status, ApprovalStatus::Denied);
    assert_eq!(denied.decision.comment, "sam says deny");
    match decide(&store, &request, &reviewer("tom"), Ruling::Approve, &rules, at(30)).await {
        Err(e @ ApprovalError::NotPending { status: ApprovalStatus::Denied, .. }) => {
            assert!(e.to_string().contains("is denied, not pending"), "{e}")
        }
        other => panic!("expected NotPending, got {other:?}"),
    }
    assert_eq!(store.take_grant(&request.fingerprint, &agent(), at(31)).await.expect("take"), None);
    assert_eq!(store.get(request.id).await.expect("get"), denied.request);
}

async fn pending_requests_expire(url: String) {
    let store = open(&url).await;
    let rules = rules(1);
    let request = store.create(held(&agent(), DELETE), &rules, at(0)).await.expect("create");
    let other = store.create(held(&agent(), "DELETE FROM notes"), &rules, at(1800)).await.expect("create");
    assert!(store.expire_due(at(3599)).await.expect("sweep").is_empty(), "not due yet");

    match decide(&store, &request, &reviewer("rita"), Ruling::Approve, &rules, at(3600)).await {
        Err(ApprovalError::Expired { id, expires_at }) => assert_eq!((id, expires_at), (request.id, at(3600))),
        other => panic!("expected Expired, got {other:?}"),
    }
    let expired = store.expire_due(at(3600)).await.expect("sweep");
    assert_eq!(expired.len(), 1, "{expired:?}");
    assert_eq!((expired[0].id, expired[0].status), (request.id, ApprovalStatus::Expired));
    assert!(store.expire_due(at(3601)).await.expect("sweep").is_empty(), "each expiry is reported once");
    assert_eq!(store.get(request.id).await.expect("get"), expired[0]);
    assert!(matches!(
        decide(&store, &request, &reviewer("rita"), Ruling::Approve, &rules, at(3602)).await,
        Err(ApprovalError::NotPending { status: ApprovalStatus::Expired, .. })
    ));
    assert_eq!(store.get(other.id).await.expect("get").status, ApprovalStatus::Pending, "the other is not due");
    assert_eq!(store.list(Some(ApprovalStatus::Expired)).await.expect("list"), expired);
}

async fn grant_matches_only_the_identical_request_in_time(url: String) {
    let store = open(&url).await;
    let rules = rules(1);
    let request = store.create(held(&agent(), DELETE), &rules, at(0)).await.expect("create");
    decide(&store, &request, &reviewer("rita"), Ruling::Approve, &rules, at(100)).await.expect("approve");

    let changed = held(&agent(), "DELETE FROM visits ").fingerprint();
    let other_agent = principal("agent-9", &["analysts"]);
    let other_agents_request = held(&other_agent, DELETE).fingerprint();
    let same_subject_other_issuer = Principal { issuer: "https://idp.example".into(), ..agent() };
    let mut other_params = held(&agent(), DELETE);
    other_params.params_sha256 = Some("cd".repeat(32));
    let misses = [
        ("a changed statement", changed.as_str(), agent()),
        ("other parameter values", &other_params.fingerprint(), agent()),
        ("another agent's identical statement", other_agents_request.as_str(), other_agent.clone()),
        ("the right fingerprint from another agent", request.fingerprint.as_str(), other_agent),
        ("the same subject from another issuer", request.fingerprint.as_str(), same_subject_other_issuer),
    ];
    for (case, fingerprint, principal) in misses {
        assert_ne!(fingerprint, "", "{case}");
        let taken = store.take_grant(fingerprint, &principal, at(200)).await.expect("take");
        assert_eq!(taken, None, "{case} must not match the grant");
    }
    // The grant lives grant_ttl (15 min) after the approval, not after the request.
    let late = store.take_grant(&request.fingerprint, &agent(), at(100 + 900)).await.expect("take");
    assert_eq!(late, None, "the grant ended at approval + grant_ttl");
    assert_eq!(store.get(request.id).await.expect("get").status, ApprovalStatus::Approved, "misses take nothing");

    let second = store.create(held(&agent(), DELETE), &rules, at(1000)).await.expect("create again");
    assert_eq!(second.fingerprint, request.fingerprint);
    decide(&store, &second, &reviewer("rita"), Ruling::Approve, &rules, at(1010)).await.expect("approve");
    let taken = store.take_grant(&request.fingerprint, &agent(), at(1010 + 899)).await.expect("take");
    assert_eq!(taken.map(|r| r.id), Some(second.id), "the live grant, not the stale one");
}

async fn grant_is_taken_exactly_once_under_a_race(url: String) {
    // Two stores: two gateways on one database, racing as well as tasks.
    let stores = [open(&url).await, open(&url).await];
    let rules = rules(1);
    let request = stores[0].create(held(&agent(), DELETE), &rules, at(0)).await.expect("create");
    decide(&stores[1], &request, &reviewer("rita"), Ruling::Approve, &rules, at(10)).await.expect("approve");
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(8));
    let tasks: Vec<_> = (0..8)
        .map(|n| {
            let store = stores[n % 2].clone();
            let fingerprint = request.fingerprint.clone();
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                store.take_grant(&fingerprint, &agent(), at(20)).await.expect("take")
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in futures::future::join_all(tasks).await {
        winners.extend(task.expect("task"));
    }
    let ids: Vec<_> = winners.iter().map(|r| r.id).collect();
    assert_eq!(ids, [request.id], "exactly one of 8 racing callers gets the grant");
    assert_eq!(stores[0].get(request.id).await.expect("get").status, ApprovalStatus::Used);
}

async fn concurrent_decisions_are_all_counted(url: String) {
    const REVIEWERS: u32 = 8;
    let stores = [open(&url).await, open(&url).await];
    let rules = rules(REVIEWERS);
    let request = stores[0].create(held(&agent(), DELETE), &rules, at(0)).await.expect("create");
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(REVIEWERS as usize));
    let tasks: Vec<_> = (0..REVIEWERS)
        .map(|n| {
            let store = stores[n as usize % 2].clone();
            let (request, rules, barrier) = (request.clone(), rules.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                let who = reviewer(&format!("reviewer-{n}"));
                decide(&store, &request, &who, Ruling::Approve, &rules, at(10)).await.expect("decide").outcome
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in futures::future::join_all(tasks).await {
        outcomes.push(task.expect("task"));
    }
    let approved = outcomes.iter().filter(|o| **o == Outcome::Approved).count();
    assert_eq!(approved, 1, "exactly the last decision reaches the quorum: {outcomes:?}");
    let mut counted: Vec<u32> = outcomes
        .iter()
        .filter_map(|o| match o {
            Outcome::Counted { approvals, .. } => Some(*approvals),
            _ => None,
        })
        .collect();
    counted.sort_unstable();
    assert_eq!(counted, (1..REVIEWERS).collect::<Vec<_>>(), "each decision saw every earlier one");
    let stored = stores[1].get(request.id).await.expect("get");
    assert_eq!((stored.status, stored.approvals()), (ApprovalStatus::Approved, REVIEWERS), "no decision lost");
}

async fn requests_survive_reopening(url: String) {
    let rules = rules(2);
    let (request, after_rita) = {
        let store = open(&url).await;
        let request = store.create(held(&agent(), DELETE), &rules, at(0)).await.expect("create");
        let decided = decide(&store, &request, &reviewer("rita"), Ruling::Approve, &rules, at(5)).await.expect("rita");
        (request, decided.request)
    };
    let store = open(&url).await;
    let reopened = store.get(request.id).await.expect("get after reopening");
    assert_eq!(reopened, after_rita, "everything, decisions included, survives");
    assert_eq!(reopened.classification, request.classification);
    assert_eq!(reopened.row_estimate, Some(1200));
    assert_eq!(store.list(Some(ApprovalStatus::Pending)).await.expect("list"), [after_rita]);
    let done = decide(&store, &request, &reviewer("sam"), Ruling::Approve, &rules, at(6)).await.expect("sam");
    assert_eq!(done.outcome, Outcome::Approved);
}

async fn bad_input_gets_clear_errors(url: String) {
    let store = open(&url).await;
    let rules = rules(1);
    let unknown = uuid::Uuid::now_v7();
    let err = store.get(unknown).await.expect_err("unknown id");
    assert_eq!(err.to_string(), format!("no approval request with id {unknown}"));
    let err =
        store.decide(unknown, &reviewer("rita"), Ruling::Approve, "ok", &rules, at(1)).await.expect_err("unknown");
    assert!(matches!(err, ApprovalError::UnknownRequest(id) if id == unknown), "{err:?}");

    let request = store.create(held(&agent(), DELETE), &rules, at(0)).await.expect("create");
    decide(&store, &request, &reviewer("rita"), Ruling::Approve, &rules, at(1)).await.expect("approve");
    for who in ["rita", "sam"] {
        let err = decide(&store, &request, &reviewer(who), Ruling::Deny, &rules, at(2)).await.expect_err("twice");
        assert_eq!(
            err.to_string(),
            format!("approval request {} is approved, not pending; it can no longer be decided", request.id)
        );
    }
    assert_eq!(store.get(request.id).await.expect("get").decisions.len(), 1, "refused decisions are not stored");
}

#[tokio::test]
async fn unsupported_and_unreachable_stores_are_named() {
    let err = ApprovalStore::open("mysql://localhost/x").await.expect_err("mysql").to_string();
    assert!(err.contains("use sqlite://<path> or postgres://<host>/<db>"), "{err}");
    let err = ApprovalStore::open("postgres://root:hunter2@127.0.0.1:5432/sluice_no_such_database")
        .await
        .expect_err("missing database")
        .to_string();
    assert!(err.contains("postgres://127.0.0.1:5432/sluice_no_such_database"), "{err}");
    assert!(!err.contains("hunter2"), "the password must not appear: {err}");
}
