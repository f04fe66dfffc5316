//! The session loop: client → upstream requests, upstream → client responses.
//!
//! Owns: turning each simple Query and each Execute into a pipeline request,
//! relaying every other message untouched, and keeping the two directions in
//! step. The request side pushes one [`Expect`] per forwarded message onto a
//! queue, in wire order; the response side pops them as the upstream answers,
//! so each response byte is attributed to its request (rows, tag, error) and
//! a refusal Sluice writes itself lands exactly where the upstream's answer
//! would have been. This file holds the queue's types and the request side;
//! `response` holds the response side.
//! Does not: decide or record (the pipeline does), or speak startup. The
//! session recording is fed from what was written to the client (`record`).

mod record;
mod response;

use crate::codec::{self, Frame, FrontendMessage, Severity, encode};
use crate::mask::{MaskError, ResultPlan};
use crate::upstream::UpstreamTarget;
use bytes::{Bytes, BytesMut};
use sha2::{Digest, Sha256};
use sluice_mask::ClassCounts;
use sluice_model::{Action, DenialCause, OutcomeStatus, SqlClassification, SqlStatement, StatementKind};
use sluice_pipeline::{Adapter, Exchange, Outcome, PendingCommit, Refusal, RefusalKind, Session};
use sluice_sql::{Classifier, PgStringMode};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Why a session ended, for its `session_close` record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEnd {
    ClientTerminated,
    ClientDisconnected,
    /// The client broke the protocol; it is told why, then disconnected.
    ClientProtocol(String),
    UpstreamLost(String),
    Shutdown,
}

impl SessionEnd {
    pub fn reason(&self) -> &'static str {
        match self {
            SessionEnd::ClientTerminated => "client_terminated",
            SessionEnd::ClientDisconnected => "client_disconnected",
            SessionEnd::ClientProtocol(_) => "client_protocol_error",
            SessionEnd::UpstreamLost(_) => "upstream_lost",
            SessionEnd::Shutdown => "shutdown",
        }
    }
}

/// What the response side expects from the upstream next, one per message
/// forwarded that gets an answer.
#[derive(Debug)]
enum Expect {
    /// ParseComplete, BindComplete, CloseComplete.
    Complete,
    /// ParameterDescription (statements only), then RowDescription or NoData,
    /// kept in the slot of the statement or portal it describes. `relay` is
    /// false for Sluice's own Describe, whose answer the client never sees.
    Describe { slot: Option<DescriptionSlot>, relay: bool },
    /// ReadyForQuery.
    Sync,
    /// A simple Query: everything up to its ReadyForQuery.
    Query(Tracked),
    /// An Execute: rows, then CommandComplete, EmptyQuery, PortalSuspended or an error.
    Execute(Tracked),
    /// A refusal Sluice answers itself, in the place the upstream's answer would be.
    Refused { error: BytesMut, ready_for_query: bool, statement: Option<Box<record::Statement>> },
}

/// The RowDescription (raw; empty for NoData) of a prepared statement or a
/// portal, filled in by the response side when the upstream answers a
/// Describe. Decoded only when a result must be masked.
type DescriptionSlot = Arc<Mutex<Option<Bytes>>>;

/// Where the columns of a request's result are described.
#[derive(Debug)]
enum Columns {
    /// A simple Query: the latest RowDescription in its response.
    Query(Option<Bytes>),
    /// An Execute: its portal's description (Describe 'P'), else its
    /// statement's (Describe 'S') read with Bind's result formats.
    Portal { portal: DescriptionSlot, statement: DescriptionSlot, formats: Arc<[i16]> },
}

impl Columns {
    /// The masking plan of the result described so far.
    fn plan(&self, exchange: &Exchange, tables: &HashMap<u32, String>) -> Result<ResultPlan, MaskError> {
        let lock = |slot: &DescriptionSlot| slot.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let (description, formats) = match self {
            Columns::Query(description) => (description.clone(), None),
            Columns::Portal { portal, statement, formats } => match lock(portal) {
                Some(description) => (Some(description), None),
                None => (lock(statement), Some(&formats[..])),
            },
        };
        let description = description.ok_or(MaskError::Undescribed)?;
        let fields = match description.get(5..) {
            Some(body) => codec::decode_row_description(body)?,
            None => Vec::new(),
        };
        ResultPlan::for_exchange(&fields, formats, exchange, tables)
    }
}

/// The response so far of one request, for its outcome record.
#[derive(Debug)]
struct Tracked {
    exchange: Exchange,
    /// Where its result's columns are described, and, once the first row
    /// needed it, how they are masked and which hold patient identifiers.
    columns: Columns,
    mask_plan: Option<ResultPlan>,
    /// Values masked, per class, for the outcome record.
    masked: ClassCounts,
    rows: u64,
    bytes_out: u64,
    /// Result rows (DataRow, COPY OUT CopyData) relayed for this request,
    /// and their bytes (counted only under a budget).
    rows_returned: u64,
    result_bytes: u64,
    /// For an Execute, what its portal has returned so far: a portal read
    /// 600 rows at a time with Execute's row limit is one statement for the
    /// budget, not many. `None` for a simple Query.
    portal: Option<Arc<ResultSpend>>,
    tags: Vec<String>,
    error: Option<(String, String)>,
    /// Set when the rest of the response must not reach the client: it is
    /// dropped, and an ErrorResponse takes the place of its completion.
    withheld: Option<Withheld>,
    /// What the session's recording still needs of it (`None`: not recorded).
    recording: Option<Box<record::TrackedRecording>>,
}

/// Why the rest of a response is withheld, as the client and the audit
/// record will read it.
#[derive(Debug)]
struct Withheld {
    sqlstate: &'static str,
    message: String,
    status: OutcomeStatus,
}

impl Withheld {
    /// The request's record could not be made durable after it was
    /// forwarded (an overlapped read): none of its response may be relayed.
    fn unrecorded(reason: &str) -> Withheld {
        Withheld {
            sqlstate: "53300",
            message: format!("Sluice cannot record this statement, so its result is withheld: {reason}"),
            status: OutcomeStatus::Refused,
        }
    }

    /// The next row would cross the request's budget.
    fn over_budget(message: String) -> Withheld {
        Withheld { sqlstate: "54000", message, status: OutcomeStatus::Truncated }
    }

    /// The result must be masked and Sluice cannot rewrite it (a binary
    /// column of a type it cannot read, binary COPY): nothing of it passes.
    fn unmaskable(error: &MaskError) -> Withheld {
        Withheld { sqlstate: "0A000", message: error.to_string(), status: OutcomeStatus::Refused }
    }
}

/// How a tracked request left the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// The upstream finished answering it.
    Answered,
    /// The upstream discarded it after an earlier error in the same batch.
    Skipped,
    /// The session ended first.
    Interrupted,
}

/// Result rows and bytes relayed from one portal, across its Executes
/// (counted only under a budget).
#[derive(Debug, Default)]
struct ResultSpend {
    rows: AtomicU64,
    bytes: AtomicU64,
}

impl Tracked {
    fn new(exchange: Exchange, portal: Option<Arc<ResultSpend>>, columns: Columns) -> Tracked {
        Tracked {
            exchange,
            columns,
            mask_plan: None,
            masked: ClassCounts::default(),
            rows: 0,
            bytes_out: 0,
            rows_returned: 0,
            result_bytes: 0,
            portal,
            tags: Vec::new(),
            error: None,
            withheld: None,
            recording: None,
        }
    }

    /// Rows and bytes the budget has counted so far for this statement.
    fn spent(&self) -> (u64, u64) {
        match &self.portal {
            Some(portal) => (portal.rows.load(Ordering::Relaxed), portal.bytes.load(Ordering::Relaxed)),
            None => (self.rows_returned, self.result_bytes),
        }
    }

    /// Counts one more result row of `len` bytes against the budget; the
    /// caller counts `rows_returned`.
    fn spend(&mut self, len: u64) {
        self.result_bytes += len;
        if let Some(portal) = &self.portal {
            portal.rows.fetch_add(1, Ordering::Relaxed);
            portal.bytes.fetch_add(len, Ordering::Relaxed);
        }
    }

    fn finish(self, ending: Ending) {
        let (status, (sqlstate, error)) = match (ending, self.withheld) {
            (Ending::Interrupted, _) => (
                OutcomeStatus::Interrupted,
                (None, Some("the session ended before the target finished answering".to_string())),
            ),
            (Ending::Skipped, _) => (OutcomeStatus::Skipped, self.error.unzip()),
            (Ending::Answered, Some(withheld)) => {
                (withheld.status, (Some(withheld.sqlstate.to_string()), Some(withheld.message)))
            }
            (Ending::Answered, None) if self.error.is_some() => (OutcomeStatus::Error, self.error.unzip()),
            (Ending::Answered, None) => (OutcomeStatus::Ok, (None, None)),
        };
        let command_tag = if self.tags.is_empty() { None } else { Some(self.tags.join("; ")) };
        // A truncated result's tag was withheld; its rows are the ones relayed.
        let rows = if status == OutcomeStatus::Truncated { self.rows_returned } else { self.rows };
        self.exchange.complete(Outcome {
            status,
            command_tag,
            rows,
            sqlstate,
            error,
            bytes_out: self.bytes_out,
            rows_returned: self.rows_returned,
            masked: self.masked,
        });
    }
}

/// The queue between the two directions.
#[derive(Debug)]
struct Inflight {
    queue: Mutex<VecDeque<Expect>>,
    /// Wakes the response side when a refusal is queued, or shutdown begins.
    wake: Notify,
    /// The session's `standard_conforming_strings`, as the upstream last
    /// reported it (ParameterStatus): it changes how a string splits into
    /// statements, so the classifier must read the text the same way.
    standard_conforming_strings: AtomicBool,
    /// Names of the tables that masking overrides name, by OID.
    tables: HashMap<u32, String>,
    /// NoticeResponses Sluice sends out of band (a held request's "waiting
    /// for approval"), written by the response side when it next wakes.
    notices: Mutex<BytesMut>,
}

impl Inflight {
    fn string_mode(&self) -> PgStringMode {
        PgStringMode { standard_conforming_strings: self.standard_conforming_strings.load(Ordering::Relaxed) }
    }

    fn push(&self, expect: Expect) {
        self.queue.lock().unwrap_or_else(|p| p.into_inner()).push_back(expect);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Expect>> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Moves the out-of-band notices into `out`.
    fn take_notices(&self, out: &mut BytesMut) {
        let mut notices = self.notices.lock().unwrap_or_else(|p| p.into_inner());
        if !notices.is_empty() {
            out.extend_from_slice(&notices);
            notices.clear();
        }
    }
}

/// A statement the client prepared.
#[derive(Debug, Clone)]
struct Statement {
    sql: Arc<str>,
    description: DescriptionSlot,
    /// The client asked for its description (Describe 'S').
    described: bool,
}

/// A portal the client bound.
#[derive(Debug, Clone)]
struct Portal {
    sql: Arc<str>,
    param_count: u32,
    params_sha256: Option<String>,
    /// Bind's parameters, kept (a view, not a copy) only when recording.
    params: Option<Bytes>,
    /// Shared by every Execute of this portal, for its budget.
    spend: Arc<ResultSpend>,
    description: DescriptionSlot,
    statement_description: DescriptionSlot,
    /// Bind's result format codes.
    formats: Arc<[i16]>,
    /// The client asked for the portal's or its statement's description, so
    /// the response side will know the result's columns.
    described: bool,
}

impl Portal {
    /// A portal Sluice did not see bound: the upstream will refuse it.
    fn unknown(name: &str) -> Portal {
        Portal {
            sql: Arc::from(format!("-- execute of unknown portal \"{name}\"")),
            param_count: 0,
            params_sha256: None,
            params: None,
            spend: Arc::default(),
            description: DescriptionSlot::default(),
            statement_description: DescriptionSlot::default(),
            formats: Arc::from([]),
            described: false,
        }
    }
}

/// One request as PostgreSQL sent it.
#[derive(Debug)]
enum PgRequest {
    Query { frame: Frame, sql: String },
    Execute { frame: Frame, name: String, portal: Portal },
}

/// What the relay needs to know of the upstream session when it starts.
#[derive(Debug, Clone)]
pub struct SessionSettings {
    /// As the upstream reported it at startup.
    pub standard_conforming_strings: bool,
    /// `current_schema()` at startup.
    pub default_schema: Option<Arc<str>>,
    /// Names of the tables masking overrides name, by OID, as looked up
    /// at startup (for `table.column` overrides).
    pub tables: HashMap<u32, String>,
    /// The target, for a held write's `EXPLAIN` on a session of its own.
    pub target: Arc<UpstreamTarget>,
}

/// How long a held write's row estimate may take before reviewers go without.
const EXPLAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// The request direction, as the pipeline's adapter.
#[derive(Debug)]
struct RequestSide<'a> {
    inflight: &'a Inflight,
    classifier: &'a Classifier,
    /// The schema unqualified table names resolve to, while Sluice is sure
    /// of it: from the session start until a request may have changed it
    /// (see [`may_move_search_path`]); then `None` for the rest of the
    /// session, so policies see unqualified names as written (fail closed).
    default_schema: Option<Arc<str>>,
    /// Set by `describe` when the request may change the schema.
    schema_in_doubt: std::cell::Cell<bool>,
    /// Bytes waiting to be written upstream, in order.
    upstream_out: BytesMut,
    /// After a refused Execute: drop messages until Sync, as PostgreSQL does
    /// after an error in the extended protocol.
    discarding: bool,
    statements: HashMap<String, Statement>,
    portals: HashMap<String, Portal>,
    target: Arc<UpstreamTarget>,
    /// Commits of overlapped reads already forwarded, each with whether a
    /// failure must discard the client's messages up to the next Sync (an
    /// Execute whose Sync has not been seen yet). Awaited before the next
    /// Query or Execute is forwarded, and before waiting on the client.
    pending_commits: Vec<(PendingCommit, bool)>,
    /// Requests carry their statement to the response side, which records it.
    recording: bool,
}

impl Adapter for RequestSide<'_> {
    type Request = PgRequest;
    type Error = std::convert::Infallible;

    fn describe(&self, request: &PgRequest) -> Action {
        let (text, param_count, params_sha256, extended) = match request {
            PgRequest::Query { sql, .. } => (sql.clone(), 0, None, false),
            PgRequest::Execute { portal, .. } => {
                (portal.sql.to_string(), portal.param_count, portal.params_sha256.clone(), true)
            }
        };
        let classification = self.classify(&text);
        // A request that may move the search path is itself read without
        // a default schema: it may change it before its own later statements.
        let default_schema = if may_move_search_path(&classification) {
            self.schema_in_doubt.set(true);
            None
        } else {
            self.default_schema.clone()
        };
        Action::Sql(SqlStatement {
            text,
            param_count,
            params_sha256,
            extended,
            classification: Some(classification),
            default_schema,
        })
    }

    async fn forward(&mut self, request: PgRequest, mut exchange: Exchange) -> Result<(), Self::Error> {
        if let Some(commit) = exchange.take_pending_commit() {
            self.pending_commits.push((commit, matches!(request, PgRequest::Execute { .. })));
        }
        let recording = self.recording.then(|| {
            let masker = exchange.masker();
            record::TrackedRecording::new(record::statement(&request, exchange.request_id(), masker), masker.is_none())
        });
        let (frame, mut expect) = match request {
            PgRequest::Query { frame, .. } => {
                (frame, Expect::Query(Tracked::new(exchange, None, Columns::Query(None))))
            }
            PgRequest::Execute { frame, name, portal } => {
                if (exchange.masker().is_some() || exchange.subject_columns().is_some()) && !portal.described {
                    // The client never asked for the columns (a bare
                    // Bind/Execute): Sluice asks, and keeps the answer.
                    encode::describe_portal(&mut self.upstream_out, &name);
                    let slot = Some(portal.description.clone());
                    self.inflight.push(Expect::Describe { slot, relay: false });
                }
                let columns = Columns::Portal {
                    portal: portal.description,
                    statement: portal.statement_description,
                    formats: portal.formats,
                };
                (frame, Expect::Execute(Tracked::new(exchange, Some(portal.spend), columns)))
            }
        };
        if let Expect::Query(tracked) | Expect::Execute(tracked) = &mut expect {
            tracked.recording = recording;
        }
        self.upstream_out.extend_from_slice(&frame.bytes);
        self.inflight.push(expect);
        Ok(())
    }

    async fn notice(&mut self, message: &str) -> Result<(), Self::Error> {
        // What is queued for the upstream goes first: the request side
        // stops reading the client while the request waits.
        let mut notice = BytesMut::new();
        encode::notice(&mut notice, message);
        self.inflight.notices.lock().unwrap_or_else(|p| p.into_inner()).extend_from_slice(&notice);
        self.inflight.wake.notify_one();
        Ok(())
    }

    async fn estimate_rows(&mut self, request: &PgRequest) -> Option<u64> {
        let sql = match request {
            PgRequest::Query { sql, .. } => sql.as_str(),
            PgRequest::Execute { portal, .. } => &portal.sql,
        };
        match tokio::time::timeout(EXPLAIN_TIMEOUT, self.target.explain_rows(sql)).await {
            Ok(Ok(rows)) => rows,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "EXPLAIN for a held request failed");
                None
            }
            Err(_) => None,
        }
    }

    async fn refuse(&mut self, request: PgRequest, refusal: &Refusal) -> Result<(), Self::Error> {
        let code = match &refusal.kind {
            RefusalKind::Policy(denial) if denial.cause == DenialCause::Budget => "54000",
            RefusalKind::Policy(_) | RefusalKind::Held { .. } => "42501",
            RefusalKind::AuditUnavailable(_) => "53300",
        };
        let mut error = BytesMut::new();
        encode::error_response(&mut error, Severity::Error, code, &refusal.message(), None);
        let ready_for_query = matches!(request, PgRequest::Query { .. });
        self.discarding = !ready_for_query;
        let statement = self.recording.then(|| Box::new(record::refused_statement(&request, &refusal.request_id)));
        self.inflight.push(Expect::Refused { error, ready_for_query, statement });
        self.inflight.wake.notify_one();
        Ok(())
    }
}

impl RequestSide<'_> {
    /// Classifies in the session's string mode. A text whose reading depends
    /// on the mode is also read the other way and the more dangerous reading
    /// wins: a `SET standard_conforming_strings` pipelined just ahead of it
    /// may not have been answered yet.
    fn classify(&self, text: &str) -> Arc<SqlClassification> {
        let mode = self.inflight.string_mode();
        let classification = self.classifier.classify_postgres(text, mode);
        if !PgStringMode::affects(text) {
            return classification;
        }
        let other = PgStringMode { standard_conforming_strings: !mode.standard_conforming_strings };
        let alternative = self.classifier.classify_postgres(text, other);
        if alternative.kind > classification.kind { alternative } else { classification }
    }

    /// Forgets the default schema once a request may have moved it.
    fn settle_schema(&mut self) {
        if self.schema_in_doubt.take() {
            self.default_schema = None;
        }
    }

    /// Waits for the records of overlapped reads, which releases (or, if the
    /// store failed, refuses) their responses. After a refused Execute the
    /// client's messages up to Sync are discarded, as after any error.
    async fn settle_commits(&mut self) {
        for (commit, discard_after) in self.pending_commits.drain(..) {
            if commit.wait().await.is_err() && discard_after {
                self.discarding = true;
            }
        }
        self.inflight.wake.notify_one();
    }

    /// Handles one client message: a request goes through the pipeline,
    /// anything else is queued for the upstream. `Err` ends the session.
    async fn handle(&mut self, session: &Session, frame: Frame) -> Result<(), SessionEnd> {
        let message = FrontendMessage::decode(&frame).map_err(|e| SessionEnd::ClientProtocol(e.to_string()))?;
        if self.discarding && !matches!(message, FrontendMessage::Sync | FrontendMessage::Terminate) {
            return Ok(());
        }
        let expect = match message {
            FrontendMessage::Query { sql } => {
                let sql = sql.into_owned();
                let Ok(()) = session.submit(self, PgRequest::Query { frame, sql }).await;
                self.settle_schema();
                return Ok(());
            }
            FrontendMessage::Execute { portal: name } => {
                let portal = self.portals.get(name).cloned().unwrap_or_else(|| Portal::unknown(name));
                let name = name.to_string();
                let Ok(()) = session.submit(self, PgRequest::Execute { frame, name, portal }).await;
                self.settle_schema();
                return Ok(());
            }
            FrontendMessage::Parse { statement, sql } => {
                let description = DescriptionSlot::default();
                let prepared = Statement { sql: Arc::from(sql.as_ref()), description, described: false };
                self.statements.insert(statement.to_string(), prepared);
                Some(Expect::Complete)
            }
            FrontendMessage::Bind { portal, statement, param_count, params, result_formats } => {
                let prepared = self.statements.get(statement).cloned().unwrap_or_else(|| Statement {
                    sql: Arc::from(format!("-- unknown prepared statement \"{statement}\"")),
                    description: DescriptionSlot::default(),
                    described: false,
                });
                let params_sha256 = (param_count > 0).then(|| hex::encode(Sha256::digest(params)));
                let params = (self.recording && param_count > 0).then(|| frame.bytes.slice_ref(params));
                let bound = Portal {
                    sql: prepared.sql,
                    param_count: param_count.into(),
                    params_sha256,
                    params,
                    spend: Arc::default(),
                    description: DescriptionSlot::default(),
                    statement_description: prepared.description,
                    formats: Arc::from(result_formats),
                    described: prepared.described,
                };
                self.portals.insert(portal.to_string(), bound);
                Some(Expect::Complete)
            }
            FrontendMessage::Close { statement, name } => {
                if statement {
                    self.statements.remove(name);
                } else {
                    self.portals.remove(name);
                }
                Some(Expect::Complete)
            }
            FrontendMessage::Describe { statement, name } => {
                let slot = if statement {
                    self.statements.get_mut(name).map(|s| {
                        s.described = true;
                        s.description.clone()
                    })
                } else {
                    self.portals.get_mut(name).map(|p| {
                        p.described = true;
                        p.description.clone()
                    })
                };
                Some(Expect::Describe { slot, relay: true })
            }
            FrontendMessage::Sync => {
                self.discarding = false;
                // A withheld read behind this Sync ends its batch here: there
                // is nothing after it for the client to expect skipped.
                for (_, discard_after) in &mut self.pending_commits {
                    *discard_after = false;
                }
                Some(Expect::Sync)
            }
            FrontendMessage::Flush
            | FrontendMessage::CopyData
            | FrontendMessage::CopyDone
            | FrontendMessage::CopyFail => None,
            FrontendMessage::Terminate => {
                self.upstream_out.extend_from_slice(&frame.bytes);
                return Err(SessionEnd::ClientTerminated);
            }
            FrontendMessage::FunctionCall => {
                return Err(SessionEnd::ClientProtocol(
                    "fast-path function calls are not supported through Sluice".into(),
                ));
            }
            FrontendMessage::Password { .. } => {
                return Err(SessionEnd::ClientProtocol("unexpected password message".into()));
            }
        };
        self.upstream_out.extend_from_slice(&frame.bytes);
        if let Some(expect) = expect {
            self.inflight.push(expect);
        }
        Ok(())
    }
}

/// Runs a session until either side ends it. Returns why it ended; the
/// caller records the session close.
#[allow(clippy::too_many_arguments)]
pub async fn relay<C, U>(
    session: &Session,
    classifier: &Classifier,
    settings: SessionSettings,
    client: C,
    mut client_buf: BytesMut,
    upstream: U,
    mut upstream_buf: BytesMut,
    max_frame: usize,
    shutdown: &CancellationToken,
) -> SessionEnd
where
    C: AsyncRead + AsyncWrite + Send + Unpin,
    U: AsyncRead + AsyncWrite + Send + Unpin,
{
    let (mut client_rd, mut client_wr) = tokio::io::split(client);
    let (mut upstream_rd, mut upstream_wr) = tokio::io::split(upstream);
    let mut recorder = sluice_pipeline::Recorder::for_session(session);
    let recording = recorder.is_some();
    let inflight = Inflight {
        queue: Mutex::default(),
        wake: Notify::new(),
        standard_conforming_strings: AtomicBool::new(settings.standard_conforming_strings),
        tables: settings.tables,
        notices: Mutex::default(),
    };

    let requests = async {
        let mut side = RequestSide {
            inflight: &inflight,
            classifier,
            default_schema: settings.default_schema,
            schema_in_doubt: std::cell::Cell::new(false),
            upstream_out: BytesMut::with_capacity(8192),
            discarding: false,
            statements: HashMap::new(),
            portals: HashMap::new(),
            pending_commits: Vec::new(),
            target: settings.target,
            recording,
        };
        loop {
            loop {
                let frame = match codec::split_frame(&mut client_buf, max_frame) {
                    Ok(Some(frame)) => frame,
                    Ok(None) => break,
                    Err(e) => return SessionEnd::ClientProtocol(e.to_string()),
                };
                if !side.pending_commits.is_empty() && matches!(frame.tag, b'Q' | b'E') {
                    // Nothing that executes goes upstream behind an overlapped
                    // read until its record is durable: if the record fails,
                    // the client is told the rest of the batch was skipped,
                    // and it must have been.
                    if let Err(e) = upstream_wr.write_all(&side.upstream_out).await {
                        return SessionEnd::UpstreamLost(e.to_string());
                    }
                    side.upstream_out.clear();
                    side.settle_commits().await;
                }
                if let Err(end) = side.handle(session, frame).await {
                    // A Terminate is still passed on, so the upstream ends cleanly.
                    let _ = upstream_wr.write_all(&side.upstream_out).await;
                    return end;
                }
            }
            if !side.upstream_out.is_empty() {
                if let Err(e) = upstream_wr.write_all(&side.upstream_out).await {
                    return SessionEnd::UpstreamLost(e.to_string());
                }
                side.upstream_out.clear();
            }
            if !side.pending_commits.is_empty() {
                // The read (and its Sync) is upstream; its round trip now
                // overlaps the record's commit.
                side.settle_commits().await;
            }
            tokio::select! {
                read = client_rd.read_buf(&mut client_buf) => match read {
                    Ok(0) | Err(_) => return SessionEnd::ClientDisconnected,
                    Ok(_) => {}
                },
                () = shutdown.cancelled() => {
                    // Stop taking new work; the response side ends the session
                    // once what is in flight has been answered.
                    inflight.wake.notify_one();
                    std::future::pending::<()>().await;
                }
            }
        }
    };

    let responses = response::respond(
        &inflight,
        &mut upstream_rd,
        &mut upstream_buf,
        &mut client_wr,
        max_frame,
        shutdown,
        recorder.as_mut(),
    );

    let end = tokio::select! {
        end = requests => end,
        end = responses => end,
    };
    // What is still in flight is recorded as interrupted, with the rows it
    // had already returned (they count against its budget).
    for expect in inflight.lock().drain(..) {
        if let Expect::Query(tracked) | Expect::Execute(tracked) = expect {
            tracked.finish(Ending::Interrupted);
        }
    }
    let mut farewell = BytesMut::new();
    match &end {
        SessionEnd::ClientProtocol(why) => {
            encode::error_response(&mut farewell, Severity::Fatal, "08P01", &format!("protocol violation: {why}"), None)
        }
        SessionEnd::UpstreamLost(why) => encode::error_response(
            &mut farewell,
            Severity::Fatal,
            "08006",
            &format!("connection to the target was lost: {why}"),
            None,
        ),
        SessionEnd::Shutdown => {
            encode::error_response(&mut farewell, Severity::Fatal, "57P01", "Sluice is shutting down", None)
        }
        SessionEnd::ClientTerminated | SessionEnd::ClientDisconnected => {}
    }
    if !farewell.is_empty() {
        let _ = client_wr.write_all(&farewell).await;
    }
    if let Some(recorder) = recorder {
        record::finish(recorder, &farewell);
    }
    let _ = client_wr.shutdown().await;
    let mut terminate = BytesMut::new();
    encode::terminate(&mut terminate);
    let _ = upstream_wr.write_all(&terminate).await;
    end
}

/// Whether a request may change which schema unqualified table names
/// resolve to: a `SET`/`RESET search_path`, a `set_config` (a security
/// function), and anything that can run arbitrary statements or create
/// schemas (DDL, admin: `DO`, `CALL`, `CREATE SCHEMA`, ...). Reads, writes,
/// transaction control and other session settings cannot. (A user-defined
/// function that calls `set_config` internally is not seen; see the docs.)
fn may_move_search_path(c: &SqlClassification) -> bool {
    c.flags.set_search_path
        || c.flags.security_function
        || matches!(c.kind, StatementKind::Utility | StatementKind::Ddl | StatementKind::Admin)
}
