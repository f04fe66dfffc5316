//! Cedar policy for Sluice's decide phase.
//!
//! Owns: the Cedar schema (`Sluice` namespace), loading `*.cedar` files with
//! file:line diagnostics, Sluice's annotations (`@hold`, `@mask`, `@budget`,
//! `@id`, `@reason`, `@remedy`), slicing, and [`PolicyEngine::decide`].
//! Does not: do IO per request, keep state between decisions, count budget
//! usage (the pipeline enforces the [`Budget`] an allow carries), classify
//! SQL (`sluice-sql`), or mask (`sluice-mask`).
//!
//! This page is for operators who write policies as much as for the code
//! that calls the engine. Every rule below is tested in `tests/`.
//!
//! # Entities, actions, context
//!
//! The schema is [`PolicyEngine::schema_text`] (also `policies/sluice.cedarschema`).
//!
//! - **Principal**: `Sluice::Agent::"<subject>"`, `Sluice::Human::"…"` or
//!   `Sluice::Service::"…"` by the principal's kind; attributes `kind`
//!   (`"agent"`, `"human"`, `"service"`), `subject`, `issuer`. Its parents are
//!   its groups, `Sluice::Group::"<name>"`, plus every ancestor configured in
//!   [`PolicySettings::group_parents`] (so `analysts = ["readers"]` makes
//!   `principal in Sluice::Group::"readers"` true for every analyst).
//! - **Resource**: `Sluice::Connection::"<name>"`, the connection the client
//!   named, with attributes `name` and `environment` (from
//!   [`PolicySettings::connections`]; **`"production"` unless config says
//!   otherwise**, so a forgotten setting errs on the safe side).
//! - **Action**: one per statement kind — `Sluice::Action::"sql:read"`,
//!   `"sql:write"`, `"sql:ddl"`, `"sql:admin"`, `"sql:transaction"`,
//!   `"sql:session"`, `"sql:utility"` — chosen by the classification's
//!   `kind` (the most dangerous kind in the string). The `protocol:verb`
//!   form leaves room for `http:*`, `ssh:*`, `mcp:*`. A string of several
//!   statements is one request, decided once, by that kind: `SET x = 1;
//!   SELECT * FROM secrets` is `sql:session`, not `sql:read`. So a permit
//!   for a kind that should touch no data must say so: `when {
//!   context.tables.isEmpty() && context.functions.isEmpty() }` (as the
//!   starter's transaction/settings permit does), or forbid
//!   `context.multi_statement` (as the starter does for agents).
//! - **Context**: `tables_read`, `tables_written`, `tables` (both), `functions`
//!   (sets of strings), `statements` (Long), the flags `where_less_write`,
//!   `multi_statement`, `writes_in_cte`, `copy_program`, `copy_file`,
//!   `dynamic_sql`, `prepare_body`, `set_role`, `alter_system`,
//!   `security_function`, `unparseable`, `set_search_path` (Bools), `fingerprint` (String),
//!   `now` (datetime, UTC), `hour` (0–23 UTC), `weekday` (1 = Monday … 7 =
//!   Sunday) and, when the client has one, `client_ip` (ipaddr; test with
//!   `context has client_ip`).
//!
//! Table names are folded as PostgreSQL folds them. An unqualified name is
//! qualified with [`SqlRequest::default_schema`] when the gateway knows the
//! session's schema (`patients` → `public.patients`); otherwise it stays
//! unqualified. **Write allow-lists with qualified names**: an unqualified
//! name the gateway cannot resolve then fails the list and is denied.
//!
//! The PostgreSQL gateway asks the upstream session for `current_schema()`
//! when it opens, and uses it until a request may move the search path: a
//! `SET`/`RESET search_path` (flag `set_search_path`), `set_config`, and
//! any utility, DDL or admin statement (`CREATE SCHEMA`, `DO`, `CALL`, ...).
//! From then on, for the rest of the session, unqualified names stay
//! unqualified. So `SET search_path = decoy, public; SELECT * FROM patients`
//! cannot pass for `public.patients`. Known limit: a user-defined function
//! that calls `set_config('search_path', ...)` itself is not seen.
//!
//! # "Analysts may SELECT only from patients and visits"
//!
//! ```cedar
//! @id("analysts-read-patients")
//! @budget("rows_per_statement=1000, rows_per_hour=10000")
//! permit (
//!   principal in Sluice::Group::"analysts",
//!   action == Sluice::Action::"sql:read",
//!   resource == Sluice::Connection::"patients"
//! ) when { ["public.patients", "public.visits"].containsAll(context.tables_read) };
//! ```
//!
//! The list goes on the **left**: `LIST.containsAll(context.tables_read)`
//! means "every table read is in the list", so `SELECT … FROM patients JOIN
//! secrets` is not permitted. The other way round,
//! `context.tables_read.containsAll([…])`, means "reads at least these" and
//! allows anything extra — almost never what is meant. A read of no table
//! (`SELECT 1`, `SELECT now()`) passes an allow-list; dangerous functions are
//! the business of the `security_function` guardrail.
//!
//! # How a decision is made
//!
//! Only policies that can apply are evaluated (see *Slicing*). Then, in order:
//!
//! 1. **Forbid beats everything.** A satisfied `forbid` without `@hold` denies.
//!    The decision names every such forbid (by `@id`) and its `@reason` and
//!    `@remedy` (distinct texts joined by `; `; defaults "forbidden by policy
//!    X" / "ask an operator about policy X"). A forbid that **fails to
//!    evaluate** also denies (fail closed); Cedar alone would skip it.
//! 2. **Default deny.** No satisfied permit: `Deny` with no policies, reason
//!    `no policy permits sql:write on connection patients for agent bot-1
//!    (groups: analysts, readers); tables: public.visits`, and remedy `ask an
//!    operator for a policy that permits sql:write on connection patients to
//!    one of your groups`. Permits that failed to evaluate are listed in the
//!    reason; they never allow.
//! 3. **Hold.** `@hold("reason")` on a permit: the request is held when
//!    *every* satisfied permit carries `@hold`; one satisfied permit without
//!    `@hold` allows it outright. `@hold("reason")` on a **forbid** (Sluice's
//!    addition) means "forbidden unless approved": when it is satisfied and
//!    some permit is satisfied, the request is held whatever the permits say;
//!    with no permit it is default-denied (approval cannot grant what no
//!    policy permits). This is how a guardrail holds requests for everybody
//!    without every operator's permit having to exclude them.
//! 4. **Allow** with the satisfied permits without `@hold`.
//!
//! The decision's `policies` are, for `Allow`, the permits without `@hold`;
//! for `Hold`, the holding forbids then the granting permits (or the held
//! permits); for `Deny`, the forbids. All in load order (file name, then
//! position), each once.
//!
//! # Obligations: `@mask` and `@budget`
//!
//! Obligations come from the *granting* permits: those without `@hold` when
//! the request is allowed, all held permits when it is held. They accumulate
//! — a granting permit without an obligation does not lift another's:
//!
//! - `@mask("profile")`: the response is masked with that profile when any
//!   granting permit names one; when none does, the gateway's default
//!   profile applies (`[masking] default_profile`, Safe Harbor unless
//!   configured otherwise). If they name different profiles, the first in
//!   [`PolicySettings::mask_order`] (most restrictive first) wins; profiles
//!   not listed rank after, by name. (Unlike `@hold`, where one unheld permit
//!   suffices, silently dropping a mask would leak PHI, so masks accumulate.
//!   To let a group read clear values, give its permit
//!   `@mask("unmasked")`, and keep it out of permits that name a stricter
//!   profile: `unless { principal in Sluice::Group::"leads" }`.)
//! - `@budget("rows_per_statement=1000, bytes_per_statement=10MiB,
//!   rows_per_hour=10000")`: comma-separated `key=value`; keys
//!   `rows_per_statement`, `bytes_per_statement` (may end in `KiB`, `MiB`,
//!   `GiB`), `rows_per_hour` (per principal and connection, rolling); numbers
//!   may use `_`. Across granting permits the smallest value of each key
//!   wins; a key no permit sets is unlimited.
//!
//! How the gateway enforces a budget (`sluice-pipeline`'s `budget` module
//! and the PostgreSQL relay):
//!
//! - it counts **result rows** relayed to the client: data rows and COPY OUT
//!   rows, and their bytes. The first row that would cross a limit is not
//!   sent; the rest of the statement's result is dropped and the client gets
//!   SQLSTATE `54000` naming the policy and the limit, in place of the
//!   command tag. The session goes on. The statement did run upstream (a
//!   write with `RETURNING` is not undone); in the extended protocol the
//!   rest of the batch is discarded up to Sync, as after any error.
//! - `rows_per_hour` counts the rows returned, per principal and connection
//!   over the last hour, by requests a permit with `rows_per_hour` allowed.
//!   A statement may use what is left when it begins; once nothing is left,
//!   statements are refused before they run (`54000`). The count is in the
//!   audit log (each outcome's `rows_charged`), so a restart resumes it.
//! - the audit outcome of a cut statement has status `truncated` and the
//!   rows actually returned.
//!
//! # Annotations
//!
//! | annotation | on | meaning |
//! | --- | --- | --- |
//! | `@id("name")` | any | the name shown in decisions, audit and errors; unique across files. Without it a policy is named `file.cedar:LINE` |
//! | `@hold("reason")` | permit, forbid | see *Hold* |
//! | `@mask("profile")` | permit | masking profile |
//! | `@budget("…")` | permit | row/byte budgets |
//! | `@reason("…")`, `@remedy("…")` | forbid | the denial's text: why, and what to ask for |
//! | `@description`, `@owner`, `@note` | any | free text, ignored |
//!
//! Anything else (or an obligation on the wrong effect, or a bad `@budget`)
//! stops loading with the file and line: a typo such as `@hodl` must not turn
//! a held request into an allowed one. (Cedar's own policy ids are not
//! `@id`s; the engine maps them.)
//!
//! # Loading
//!
//! [`PolicyEngine::load_dir`] reads every `*.cedar` file in the folder, sorted
//! by name. Each file is parsed on its own, so every problem — Cedar syntax,
//! schema validation (strict mode), annotations, duplicate `@id`s, templates
//! (not supported) — is reported as `file.cedar: line N, column M: message`
//! with Cedar's own message, all problems at once ([`PolicyError::Invalid`]).
//!
//! # Slicing
//!
//! At load, policies are sorted into buckets by action, by connection when
//! the scope says `resource == Sluice::Connection::"c"`, and by principal
//! when it says `principal == Sluice::Agent::"x"` or `principal in
//! Sluice::Group::"g"`; forbids and permits apart. A decision evaluates only
//! its action's buckets for any connection and its own, for any principal,
//! itself and its groups. So **pin the resource and the principal group in
//! the scope**, not in `when`, for policies to stay out of unrelated
//! decisions.
//!
//! Two more load-time facts keep guardrails cheap, without changing any
//! decision (a test compares every case against an unsliced evaluation):
//!
//! - a policy whose first `when` clause starts with a flag —
//!   `when { context.copy_program }` or `when { context.multi_statement &&
//!   … }` — is evaluated only when that flag is set (Cedar would stop at the
//!   false flag anyway). Write guardrails flag-first;
//! - the context carries only the attributes that the policies being
//!   evaluated read.
//!
//! # Calling the engine
//!
//! ```no_run
//! # use sluice_policy::*;
//! # fn demo(principal: &sluice_model::Principal, c: &sluice_model::SqlClassification) -> Result<(), PolicyError> {
//! let settings = PolicySettings {
//!     connections: [("scratch".to_owned(), ConnectionAttrs { environment: "staging".into() })].into(),
//!     group_parents: [("analysts".to_owned(), vec!["readers".to_owned()])].into(),
//!     mask_order: vec!["strict".into(), "phi".into()],
//! };
//! let engine = PolicyEngine::load_dir_with(std::path::Path::new("policies"), &settings)?;
//! // Once per session (building entities costs a few microseconds):
//! let prepared = engine.prepare(principal, "patients");
//! // Per request:
//! let request = SqlRequest {
//!     principal,
//!     connection: "patients",
//!     classification: c,
//!     client_addr: None,
//!     now: chrono::Utc::now(),
//!     default_schema: Some("public"),
//! };
//! match engine.decide_prepared(&prepared, &request) {
//!     PolicyDecision::Allow { policies, mask_profile, budget } => { /* forward */ }
//!     PolicyDecision::Hold { policies, reason, .. } => { /* wait for approval */ }
//!     PolicyDecision::Deny { policies, reason, remedy } => { /* refuse */ }
//! }
//! # Ok(()) }
//! ```
//!
//! With 200 policies loaded (`cargo bench -p sluice-policy`), a typical
//! allowed read takes about 4 µs at p50 and 6–7 µs at p99 through
//! `decide_prepared`, 11 µs / 15–19 µs through `decide`, against about
//! 160 µs when every policy is evaluated.

mod analyze;
mod context;
mod engine;
mod error;
mod index;
mod load;
mod meta;
mod schema;
mod source;
mod types;

pub use engine::{PolicyEngine, PreparedPrincipal};
pub use error::{PolicyError, Problem};
pub use schema::action_for;
pub use types::{Budget, ConnectionAttrs, PolicyDecision, PolicySettings, SqlRequest};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<PolicyEngine>();
    }

    #[test]
    fn builtin_schema_parses() {
        schema::build().unwrap();
    }
}
