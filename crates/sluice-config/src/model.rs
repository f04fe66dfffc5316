//! The config types, one per table of `sluice.toml`. Unknown keys are errors.

use serde::Deserialize;
use sluice_model::PrincipalKind;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: Server,
    pub listeners: Listeners,
    /// Certificate and key Sluice presents to clients that ask for TLS.
    pub client_tls: Option<ClientTls>,
    pub storage: Storage,
    #[serde(default)]
    pub audit: Audit,
    #[serde(default)]
    pub identity: Identity,
    #[serde(default)]
    pub policy: Policy,
    #[serde(default)]
    pub connections: Vec<Connection>,
    #[serde(default)]
    pub approvals: Approvals,
    #[serde(default)]
    pub masking: crate::Masking,
    #[serde(default)]
    pub alerts: crate::Alerts,
    #[serde(default)]
    pub recording: crate::Recording,
    #[serde(default)]
    pub siem: crate::Siem,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Server {
    /// REST API, `/healthz` and `/metrics`. Absent: no HTTP listener.
    pub api_listen: Option<SocketAddr>,
    /// How long in-flight statements may run after SIGTERM before their
    /// sessions are cut.
    #[serde(default = "default_shutdown_grace", with = "humantime_serde_shim")]
    pub shutdown_grace: Duration,
    #[serde(default)]
    pub log_format: LogFormat,
}

impl Default for Server {
    fn default() -> Self {
        Server { api_listen: None, shutdown_grace: default_shutdown_grace(), log_format: LogFormat::Text }
    }
}

fn default_shutdown_grace() -> Duration {
    Duration::from_secs(30)
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Listeners {
    /// The PostgreSQL listener; the client's database name picks the connection.
    pub postgres: Option<SocketAddr>,
    /// Where a client may send its token without TLS: `loopback` (default)
    /// accepts plaintext only from 127.0.0.0/8 and ::1; `anywhere` accepts it
    /// from any address and should only be set behind a TLS-terminating hop.
    #[serde(default)]
    pub plaintext_auth: PlaintextAuth,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlaintextAuth {
    #[default]
    Loopback,
    Anywhere,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientTls {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Storage {
    /// `sqlite://path` (relative to the config file) or `postgres://...`.
    pub url: String,
}

impl Storage {
    pub(crate) fn anchor_sqlite_path(&mut self, base: &Path) {
        if let Some(rest) = self.url.strip_prefix("sqlite://") {
            let (path, query) = rest.split_once('?').map_or((rest, None), |(p, q)| (p, Some(q)));
            if !path.is_empty() && !path.starts_with('/') && path != ":memory:" {
                let joined = base.join(path);
                self.url = match query {
                    Some(q) => format!("sqlite://{}?{q}", joined.display()),
                    None => format!("sqlite://{}", joined.display()),
                };
            }
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Audit {
    /// Most records one group commit writes.
    #[serde(default = "default_max_batch")]
    pub max_batch: usize,
    /// The Ed25519 key (`sluice keys generate`) that signs checkpoints.
    /// Keep it away from the audit database: whoever holds both can rewrite
    /// history and sign it. Absent: no checkpoints are signed.
    pub signing_key_file: Option<PathBuf>,
    /// How often a checkpoint is signed (when records were added); also on
    /// shutdown.
    #[serde(default = "default_checkpoint_interval", with = "humantime_serde_shim")]
    pub checkpoint_interval: Duration,
}

impl Default for Audit {
    fn default() -> Self {
        Audit {
            max_batch: default_max_batch(),
            signing_key_file: None,
            checkpoint_interval: default_checkpoint_interval(),
        }
    }
}

fn default_checkpoint_interval() -> Duration {
    Duration::from_secs(5)
}

fn default_max_batch() -> usize {
    1024
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Identity {
    #[serde(default)]
    pub api_keys: Vec<ApiKey>,
    #[serde(default)]
    pub oidc: Vec<OidcProvider>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKey {
    /// Becomes the principal's subject.
    pub name: String,
    pub kind: PrincipalKind,
    #[serde(default)]
    pub groups: Vec<String>,
    /// Lower-case hex SHA-256 of the key; the key itself is never stored.
    pub key_sha256: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcProvider {
    /// Discovery happens at `<issuer>/.well-known/openid-configuration`.
    pub issuer: String,
    pub audience: String,
    #[serde(default = "default_groups_claim")]
    pub groups_claim: String,
    #[serde(default = "default_subject_claim")]
    pub subject_claim: String,
    /// The kind every principal from this provider gets.
    #[serde(default = "default_oidc_kind")]
    pub kind: PrincipalKind,
    /// Clock skew tolerated on `exp` and `nbf`.
    #[serde(default = "default_leeway", with = "humantime_serde_shim")]
    pub leeway: Duration,
}

fn default_groups_claim() -> String {
    "groups".into()
}
fn default_subject_claim() -> String {
    "sub".into()
}
fn default_oidc_kind() -> PrincipalKind {
    PrincipalKind::Agent
}
fn default_leeway() -> Duration {
    Duration::from_secs(30)
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// A folder of Cedar policies (`*.cedar`); relative to the config file.
    /// When set, every request is decided by them (default deny). When
    /// absent, only the built-in guardrails apply.
    pub dir: Option<PathBuf>,
    /// Extra statement prefixes to refuse, on top of the built-in guardrails
    /// (case-insensitive, whitespace-normalised, e.g. `"drop database"`).
    /// Used only without `dir`.
    #[serde(default)]
    pub deny_statements: Vec<String>,
    /// Parent groups by group (`[policy.groups] analysts = ["readers"]`):
    /// every member of `analysts` is also `in Sluice::Group::"readers"`, so
    /// the identity provider need not know Sluice's group structure.
    #[serde(default)]
    pub groups: BTreeMap<String, Vec<String>>,
    /// Mask profiles from most to least restrictive: when the permits that
    /// allow a request name different `@mask` profiles, the first listed wins.
    #[serde(default)]
    pub mask_order: Vec<String>,
}

/// `[approvals]`: who may approve a held request, and how long each stage
/// of its life lasts (see `sluice-approval` for the state machine).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Approvals {
    /// Groups whose members may approve or deny a held request on any
    /// connection without its own list below. Empty (the default): nobody
    /// can, so every held request is refused when its window passes and
    /// expires undecided: fail closed.
    #[serde(default)]
    pub reviewer_groups: Vec<String>,
    /// How long a held statement waits, in its session, for a decision
    /// before the client is refused with "approval pending: <id>".
    #[serde(default = "default_hold_window", with = "humantime_serde_shim")]
    pub hold_window: Duration,
    /// How long a request approved after its window stays usable, once, by
    /// the identical request from the same principal.
    #[serde(default = "default_grant_ttl", with = "humantime_serde_shim")]
    pub grant_ttl: Duration,
    /// How long a request may stay pending before it becomes `expired`.
    #[serde(default = "default_expires_after", with = "humantime_serde_shim")]
    pub expires_after: Duration,
    /// Distinct reviewers who must approve (one deny is enough to deny).
    #[serde(default = "default_approvals_required")]
    pub approvals_required: u32,
    /// Per-connection reviewer groups (`[approvals.connections.patients]
    /// reviewer_groups = ["clinical-leads"]`); they replace `reviewer_groups`
    /// for that connection.
    #[serde(default)]
    pub connections: BTreeMap<String, ConnectionApprovals>,
}

impl Default for Approvals {
    fn default() -> Self {
        Approvals {
            reviewer_groups: Vec::new(),
            hold_window: default_hold_window(),
            grant_ttl: default_grant_ttl(),
            expires_after: default_expires_after(),
            approvals_required: default_approvals_required(),
            connections: BTreeMap::new(),
        }
    }
}

impl Approvals {
    /// The groups whose members may review requests on `connection`.
    pub fn reviewer_groups_for(&self, connection: &str) -> &[String] {
        match self.connections.get(connection) {
            Some(own) => &own.reviewer_groups,
            None => &self.reviewer_groups,
        }
    }
}

/// `[approvals.connections.<name>]`: one connection's own reviewers.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionApprovals {
    pub reviewer_groups: Vec<String>,
}

fn default_hold_window() -> Duration {
    Duration::from_secs(120)
}
fn default_grant_ttl() -> Duration {
    Duration::from_secs(15 * 60)
}
fn default_expires_after() -> Duration {
    Duration::from_secs(24 * 60 * 60)
}
fn default_approvals_required() -> u32 {
    1
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Connection {
    pub name: String,
    pub kind: ConnectionKind,
    /// `host:port` of the target.
    pub upstream: String,
    pub database: String,
    pub user: String,
    pub password_env: Option<String>,
    pub password_file: Option<PathBuf>,
    /// Present only so an inline password gets a clear refusal.
    #[serde(default, rename = "password")]
    pub inline_password: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    pub tls: UpstreamTls,
    /// CA bundle for `verify-full`; the system roots when absent.
    pub ca_file: Option<PathBuf>,
    /// What policies see as `resource.environment`. Defaults to
    /// `"production"`, so a forgotten setting gets the strictest guardrails.
    #[serde(default = "default_environment")]
    pub environment: String,
    /// How long this connection's recordings are kept. Absent: forever.
    #[serde(default)]
    pub retention: Retention,
}

/// Retention of a connection's audit payloads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retention {
    /// Days a session recording's chunks are kept; older chunk bytes are
    /// deleted (their records, hashes and checkpoints stay, so the log still
    /// verifies). Absent: kept forever.
    pub payload_days: Option<u32>,
    /// Days a request record keeps its statement text; older records have it
    /// replaced by `[redacted by retention]` (the original leaf hash is kept,
    /// so the log still verifies). Absent: kept forever.
    pub statement_days: Option<u32>,
    /// Days a record is kept whole; older records of the connection expire:
    /// their body is rewritten to its kind and connection only (who, what
    /// and the outcome go, a chunk's payload with it), and the original leaf
    /// hash is kept, so the log still verifies. Absent: kept forever. At
    /// least `payload_days` and `statement_days`.
    pub index_days: Option<u32>,
    /// Nothing is deleted while set (litigation, investigation).
    #[serde(default)]
    pub legal_hold: bool,
}

fn default_environment() -> String {
    "production".into()
}

impl Connection {
    /// Where the upstream password comes from, if there is one (trust auth needs none).
    pub fn password(&self) -> Option<Secret> {
        match (&self.password_env, &self.password_file) {
            (Some(var), _) => Some(Secret::Env(var.clone())),
            (None, Some(path)) => Some(Secret::File(path.clone())),
            (None, None) => None,
        }
    }

    /// The host part of `upstream`, used as the TLS server name.
    pub fn upstream_host(&self) -> &str {
        match self.upstream.rsplit_once(':') {
            Some((host, _)) => host.trim_start_matches('[').trim_end_matches(']'),
            None => &self.upstream,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionKind {
    Postgres,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UpstreamTls {
    Disable,
    #[default]
    Prefer,
    Require,
    VerifyFull,
}

/// A secret named by config and read when needed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Secret {
    Env(String),
    File(PathBuf),
}

impl Secret {
    pub fn resolve(&self) -> Result<String, String> {
        match self {
            Secret::Env(var) => std::env::var(var).map_err(|_| format!("environment variable {var} is not set")),
            Secret::File(path) => std::fs::read_to_string(path)
                .map(|s| s.trim_end_matches(['\r', '\n']).to_string())
                .map_err(|e| format!("cannot read {}: {e}", path.display())),
        }
    }
}

/// Durations written as `"30s"`, `"5m"`, `"1h 30m"`.
mod humantime_serde_shim {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text)
            .map_err(|e| serde::de::Error::custom(format!("`{text}` is not a duration like \"30s\": {e}")))
    }
}
