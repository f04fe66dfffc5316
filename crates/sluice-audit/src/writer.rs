//! The write side: `AuditLog`, its single writer thread, and group commit.
//!
//! Owns: the chain head (last seq and hash), batching queued records into one
//! transaction, resolving every waiter after the commit, store health, and
//! shutdown that drains.
//! Does not: encode bodies (see `encoding`) or speak SQL (see `store`).
//!
//! # Group commit
//! `append` encodes the event on the caller's task and queues it with a
//! oneshot. The writer takes the first queued record, then everything else
//! already queued (up to `max_batch`), sequences and chains them, writes them
//! in one transaction and commits (one fsync), then answers every waiter.
//! Records that arrive during a commit form the next batch.
//!
//! # Failing closed
//! A batch that fails is rolled back, every waiter gets
//! `StoreUnavailable(reason)`, health turns `Unavailable`, and the chain head
//! is reloaded from the store before the next batch (so an ambiguous commit
//! on a lost PostgreSQL connection cannot fork the chain). The failed batch is
//! never retried: its callers were already told it failed. The next batch
//! reconnects if the connection is broken; its success makes health
//! `Healthy` again.

use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::Digest as _;
use sluice_evidence::{Checkpoint, Hash, SigningKey};
use sluice_model::{AuditEvent, PayloadsPruned, RewrittenRecord};
use tokio::sync::{mpsc, oneshot, watch};

use crate::AuditError;
use crate::encoding::{self, GENESIS_HASH};
use crate::error::store_unavailable;
use crate::prune::{PrunePlan, Rewriting};
use crate::sqlite_writer;
use crate::store::{AUDIT_APPLICATION_NAME, NewRow, Removals, Store, StoreUrl, StoredCheckpoint, StoredRow};
use crate::tree::{BLOCK_LEAVES, LogTree};

/// How the writer batches, signs, and who hears about commits.
#[derive(Clone)]
pub struct AuditOptions {
    /// Most records in one transaction. At least 1.
    pub max_batch: usize,
    /// Signs checkpoints ([`AuditLog::checkpoint`]); without it no
    /// checkpoint is made (the tree is still kept, so one can be signed later).
    pub signing_key: Option<Arc<SigningKey>>,
    /// Called by the writer after each successful commit (for metrics). Keep
    /// it cheap: the next batch waits for it.
    pub on_commit: Option<Arc<dyn Fn(CommitStats) + Send + Sync>>,
}

impl Default for AuditOptions {
    fn default() -> Self {
        AuditOptions { max_batch: 1024, signing_key: None, on_commit: None }
    }
}

impl fmt::Debug for AuditOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditOptions")
            .field("max_batch", &self.max_batch)
            .field("signing_key", &self.signing_key.as_ref().map(|k| k.name().to_owned()))
            .field("on_commit", &self.on_commit.as_ref().map(|_| "Fn(CommitStats)"))
            .finish()
    }
}

/// One committed batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitStats {
    pub records: usize,
    /// Time of the write and commit (fsync) of the batch.
    pub latency: Duration,
}

/// Whether the store accepts writes; shown by the health endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum StoreHealth {
    Healthy,
    /// Writes fail since `since`; `error` is the latest reason.
    Unavailable {
        since: DateTime<Utc>,
        error: String,
    },
}

/// What the writer receives.
enum Command {
    Append(Pending),
    /// Sign and store a checkpoint of everything committed so far.
    Checkpoint(oneshot::Sender<Result<Option<StoredCheckpoint>, AuditError>>),
    /// Delete payloads and record that, in one transaction.
    Prune(PrunePlan, oneshot::Sender<Result<Vec<u64>, AuditError>>),
    /// Stop accepting; write what is queued; stop.
    Shutdown,
}

/// A queued record, encoded by the caller.
struct Pending {
    /// Nothing waits on it: it rides with the next batch something waits
    /// on, or goes alone after [`LAZY_WAIT`].
    lazy: bool,
    event_json: String,
    kind: &'static str,
    session_id: Option<String>,
    principal: Option<String>,
    connection: Option<String>,
    /// Bytes stored beside the record (`audit_payloads`).
    payload: Option<Vec<u8>>,
    reply: Option<oneshot::Sender<Result<u64, AuditError>>>,
}

impl Pending {
    fn new(event: &AuditEvent, lazy: bool, reply: Option<oneshot::Sender<Result<u64, AuditError>>>) -> Pending {
        Pending {
            payload: None,
            lazy,
            event_json: encoding::encode_event(event),
            kind: event.kind(),
            session_id: event.session_id().map(str::to_owned),
            principal: event.principal().map(str::to_owned),
            connection: event.connection().map(str::to_owned),
            reply,
        }
    }

    fn answer(self, result: Result<u64, AuditError>) {
        if let Some(reply) = self.reply {
            let _ = reply.send(result);
        }
    }
}

/// Longest a lazy record waits for company before it is committed alone.
/// Outcome records follow every statement; committing each on its own would
/// double the fsyncs a session waits behind. A crash inside this window
/// leaves "outcome unknown", which verify reports as incomplete, not tampering.
const LAZY_WAIT: Duration = Duration::from_millis(10);

/// A cheap handle to the one writer task of a store.
#[derive(Clone, Debug)]
pub struct AuditLog {
    queue: mpsc::UnboundedSender<Command>,
    health: watch::Receiver<StoreHealth>,
    /// Turns `true` when the writer has written everything and stopped, so
    /// every `shutdown` caller can wait for the drain.
    stopped: watch::Receiver<bool>,
}

impl AuditLog {
    /// Opens or creates the store at `url` (`sqlite://path`, creating the file
    /// and its folder, or `postgres://...`), creates the schema if absent,
    /// loads the chain head and starts the writer task.
    ///
    /// Fails with `Corrupt` if the last record does not match its own hash:
    /// move the log aside (it is evidence) and run `sluice audit verify` on it.
    pub async fn open(url: &str, options: AuditOptions) -> Result<AuditLog, AuditError> {
        let target = StoreUrl::parse(url, AUDIT_APPLICATION_NAME)?;
        let (queue, commands) = mpsc::unbounded_channel();
        let (health_tx, health) = watch::channel(StoreHealth::Healthy);
        let (stopped_tx, stopped) = watch::channel(false);
        let (ready_tx, ready) = oneshot::channel();
        let thread = std::thread::Builder::new().name("sluice-audit-writer".into()).spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(runtime) => runtime,
                Err(e) => {
                    let _ = ready_tx.send(Err(AuditError::Open(format!("cannot start the audit writer: {e}"))));
                    return;
                }
            };
            let mut writer = Writer {
                target,
                runtime,
                store: None,
                state: None,
                signing_key: options.signing_key,
                sqlite_lock: None,
                last_checkpoint: None,
                commands,
                max_batch: options.max_batch.max(1),
                on_commit: options.on_commit,
                health: health_tx,
            };
            match writer.open() {
                Ok(()) => {
                    let _ = ready_tx.send(Ok(()));
                    writer.run();
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                }
            }
            stopped_tx.send_replace(true);
        });
        thread.map_err(|e| AuditError::Open(format!("cannot start the audit writer thread: {e}")))?;
        ready.await.map_err(|_| AuditError::Open("the audit writer stopped while opening".into()))??;
        Ok(AuditLog { queue, health, stopped })
    }

    /// Queues `event` without blocking or awaiting. The returned future
    /// resolves once the record is committed and fsynced, with its seq, or
    /// with the store's error. Dropping the future does not cancel the write.
    pub fn append(&self, event: AuditEvent) -> Durable {
        let (reply, receiver) = oneshot::channel();
        match self.queue.send(Command::Append(Pending::new(&event, false, Some(reply)))) {
            Ok(()) => Durable { state: DurableState::Waiting(receiver) },
            Err(_) => Durable { state: DurableState::Done(Some(Err(AuditError::Closed))) },
        }
    }

    /// Queues a record nothing waits on (an outcome, a session close, a
    /// refused login). It is committed with the next batch that something
    /// waits on, or within [`LAZY_WAIT`], and on shutdown.
    pub fn append_lazy(&self, event: AuditEvent) {
        if self.queue.send(Command::Append(Pending::new(&event, true, None))).is_err() {
            tracing::warn!(kind = event.kind(), "audit log closed; record dropped");
        }
    }

    /// Queues a record nothing waits on, with `payload` stored beside it
    /// (keyed by the record's seq, in the same transaction). The event must
    /// carry the payload's hash, so the record (the Merkle leaf) commits to it.
    pub fn append_lazy_with_payload(&self, event: AuditEvent, payload: Vec<u8>) {
        let mut pending = Pending::new(&event, true, None);
        pending.payload = Some(payload);
        if self.queue.send(Command::Append(pending)).is_err() {
            tracing::warn!(kind = event.kind(), "audit log closed; record dropped");
        }
    }

    /// Signs and stores a checkpoint of every record committed so far, after
    /// the records already queued. `None` when no signing key is configured
    /// or nothing was added since the last checkpoint.
    pub async fn checkpoint(&self) -> Result<Option<StoredCheckpoint>, AuditError> {
        let (reply, receiver) = oneshot::channel();
        self.queue.send(Command::Checkpoint(reply)).map_err(|_| AuditError::Closed)?;
        receiver.await.map_err(|_| AuditError::Closed)?
    }

    /// Deletes the payloads `plans` name, rewrites the bodies they name, and
    /// appends a `payloads_pruned` record for each 10,000 items, in one
    /// transaction per record, after the records already queued (appends
    /// queued meanwhile go in between). Returns the seqs of those records.
    pub async fn prune(&self, plans: Vec<PrunePlan>) -> Result<Vec<u64>, AuditError> {
        let mut written = Vec::new();
        for piece in plans.into_iter().flat_map(|plan| plan.split(PRUNE_RECORD_SEQS)) {
            let (reply, receiver) = oneshot::channel();
            self.queue.send(Command::Prune(piece, reply)).map_err(|_| AuditError::Closed)?;
            written.extend(receiver.await.map_err(|_| AuditError::Closed)??);
        }
        Ok(written)
    }

    pub fn health(&self) -> StoreHealth {
        self.health.borrow().clone()
    }

    /// Changes to health, for the health endpoint and alerts.
    pub fn health_watch(&self) -> watch::Receiver<StoreHealth> {
        self.health.clone()
    }

    /// Stops accepting, writes everything queued, stops the writer. Later
    /// appends fail with `Closed`. Safe to call more than once, from any clone.
    pub async fn shutdown(&self) {
        // Fails only if the writer already stopped, which is what we wait for.
        let _ = self.queue.send(Command::Shutdown);
        let mut stopped = self.stopped.clone();
        // Err means the writer task is gone, which is also "stopped".
        let _ = stopped.wait_for(|done| *done).await;
    }
}

/// Resolves once a record is durable: `Ok(seq)`, or the reason it is not.
/// `Send`, `Unpin` and `'static`; dropping it does not cancel the write.
#[derive(Debug)]
#[must_use = "a record is only known durable once its Durable resolves"]
pub struct Durable {
    state: DurableState,
}

#[derive(Debug)]
enum DurableState {
    Waiting(oneshot::Receiver<Result<u64, AuditError>>),
    Done(Option<Result<u64, AuditError>>),
}

impl Future for Durable {
    type Output = Result<u64, AuditError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.state {
            DurableState::Waiting(receiver) => match Pin::new(receiver).poll(cx) {
                Poll::Ready(Ok(result)) => Poll::Ready(result),
                // The writer dropped the reply without answering: it stopped.
                Poll::Ready(Err(_)) => Poll::Ready(Err(AuditError::StoreUnavailable(
                    "the audit writer stopped before confirming the record".into(),
                ))),
                Poll::Pending => Poll::Pending,
            },
            DurableState::Done(result) => Poll::Ready(result.take().unwrap_or(Err(AuditError::Closed))),
        }
    }
}

/// Last seq and its hash; `(0, GENESIS_HASH)` for an empty log.
type Head = (u64, String);

/// What the next batch builds on: the chain head and the Merkle tree.
#[derive(Debug, Clone)]
struct LogState {
    head: Head,
    tree: LogTree,
}

/// The head from the last row, after checking that the row matches its hash.
fn check_head(last: Option<StoredRow>) -> Result<Head, AuditError> {
    let Some(row) = last else {
        return Ok((0, GENESIS_HASH.to_owned()));
    };
    let seq = u64::try_from(row.seq).map_err(|_| AuditError::Corrupt(format!("negative seq {}", row.seq)))?;
    match encoding::record_hash(&row.prev_hash, &row.body) {
        Some(hash) if hash == row.hash => Ok((seq, row.hash)),
        _ => Err(AuditError::Corrupt(format!(
            "the last record ({seq}) does not match its hash; the log was altered. \
             Move it aside and run `sluice audit verify` on it"
        ))),
    }
}

/// The connection the writer writes through.
enum WriteStore {
    /// rusqlite, blocking, on the writer's own thread (see `sqlite_writer`).
    Sqlite(rusqlite::Connection),
    /// sqlx, driven by the writer thread's own single-threaded runtime.
    Postgres(Store),
}

/// The thread that owns the chain head and the write connection. A thread,
/// not a task: a commit blocks on fsync, and a waiting session should be
/// woken by the commit itself, not by a chain of task hops.
struct Writer {
    target: StoreUrl,
    /// Drives sqlx for a PostgreSQL store; idle for SQLite.
    runtime: tokio::runtime::Runtime,
    /// `None` after a failure that broke the connection; reconnected lazily.
    store: Option<WriteStore>,
    /// `None` after any failed batch; reloaded from the store before the next.
    state: Option<LogState>,
    signing_key: Option<Arc<SigningKey>>,
    /// Held while the writer runs, so a second writer (another `sluice
    /// serve`, `sluice audit prune`) on the same SQLite file is refused.
    sqlite_lock: Option<std::fs::File>,
    /// The newest stored checkpoint.
    last_checkpoint: Option<StoredCheckpoint>,
    commands: mpsc::UnboundedReceiver<Command>,
    max_batch: usize,
    on_commit: Option<Arc<dyn Fn(CommitStats) + Send + Sync>>,
    health: watch::Sender<StoreHealth>,
}

impl Writer {
    /// Connects, creates the schema if absent, and loads the chain head and
    /// the tree. Refuses a log whose records end before its newest
    /// checkpoint (the tail was cut) or whose tree disagrees with it.
    fn open(&mut self) -> Result<(), AuditError> {
        let described = self.target.describe();
        let open_err = |e: String| match e == ANOTHER_WRITER {
            true => AuditError::WriterBusy(described.clone()),
            false => AuditError::Open(format!("{described}: {e}")),
        };
        if let StoreUrl::Sqlite(options) = &self.target {
            self.sqlite_lock = Some(sqlite_writer::lock(options.get_filename()).map_err(open_err)?);
        }
        let store = self.connect().map_err(open_err)?;
        self.store = Some(store);
        let state = self.load_state().map_err(|e| match e {
            LoadError::Store(reason) => open_err(reason),
            LoadError::Corrupt(e) => e,
        })?;
        let latest = match self.store.as_mut() {
            Some(WriteStore::Sqlite(conn)) => sqlite_writer::latest_checkpoint(conn),
            Some(WriteStore::Postgres(store)) => {
                self.runtime.block_on(store.latest_checkpoint()).map_err(|e| e.to_string())
            }
            None => Err("no connection to the store".into()),
        }
        .map_err(open_err)?;
        if let Some(checkpoint) = &latest {
            if checkpoint.size > state.tree.size() {
                return Err(AuditError::Corrupt(format!(
                    "the log holds {} records but its checkpoint of {} signed {} records: records {}..={} were \
                     removed. Move it aside and run `sluice audit verify` on it",
                    state.tree.size(),
                    checkpoint.time,
                    checkpoint.size,
                    state.tree.size() + 1,
                    checkpoint.size
                )));
            }
            if checkpoint.size == state.tree.size() && checkpoint.root != hex::encode(state.tree.root()) {
                return Err(AuditError::Corrupt(format!(
                    "the records do not hash to the root the checkpoint of {} signed; the log was altered. \
                     Move it aside and run `sluice audit verify` on it",
                    checkpoint.time
                )));
            }
        }
        self.last_checkpoint = latest;
        self.state = Some(state);
        Ok(())
    }

    /// Reads the chain head and rebuilds the tree (see `tree`); stores the
    /// roots of any blocks it had to recompute.
    fn load_state(&mut self) -> Result<LogState, LoadError> {
        let store_err = LoadError::Store;
        let (last, blocks, later, redacted) = match self.store.as_mut() {
            Some(WriteStore::Sqlite(conn)) => {
                let last = sqlite_writer::last_row(conn).map_err(store_err)?;
                let blocks = sqlite_writer::blocks(conn).map_err(store_err)?;
                let first = blocks.len() as u64 * BLOCK_LEAVES + 1;
                let later = sqlite_writer::bodies_from(conn, first).map_err(store_err)?;
                let redacted = sqlite_writer::redactions_from(conn, first).map_err(store_err)?;
                (last, blocks, later, redacted)
            }
            Some(WriteStore::Postgres(store)) => self
                .runtime
                .block_on(async {
                    let last = store.last_row().await?;
                    let blocks = store.blocks(u64::MAX).await?;
                    let first = blocks.len() as u64 * BLOCK_LEAVES + 1;
                    let later = store.bodies(first, u64::MAX).await?;
                    let redacted = store.redactions(first, u64::MAX).await?;
                    Ok::<_, sqlx::Error>((last, blocks, later, redacted))
                })
                .map_err(|e| store_err(store_unavailable(&e)))?,
            None => return Err(store_err("no connection to the store".into())),
        };
        let head = check_head(last).map_err(LoadError::Corrupt)?;
        let (tree, completed) = LogTree::restore(&blocks, &later, &redacted).map_err(LoadError::Corrupt)?;
        if tree.size() != head.0 {
            return Err(LoadError::Corrupt(AuditError::Corrupt(format!(
                "the stored block roots cover {} records but the log ends at record {}; run `sluice audit verify`",
                tree.size(),
                head.0
            ))));
        }
        if !completed.is_empty() {
            let stored = match self.store.as_mut() {
                Some(WriteStore::Sqlite(conn)) => sqlite_writer::insert_blocks(conn, &completed),
                Some(WriteStore::Postgres(store)) => {
                    self.runtime.block_on(store.insert_blocks(&completed)).map_err(|e| store_unavailable(&e))
                }
                None => Err("no connection to the store".into()),
            };
            stored.map_err(store_err)?;
        }
        Ok(LogState { head, tree })
    }

    fn connect(&self) -> Result<WriteStore, String> {
        match &self.target {
            StoreUrl::Sqlite(options) => sqlite_writer::open(options.get_filename()).map(WriteStore::Sqlite),
            StoreUrl::Postgres(options) => self.runtime.block_on(async {
                let mut store = Store::connect_postgres_writer(options).await?;
                // Held by this connection until it closes; a reconnect takes it again.
                if !store.try_writer_lock().await.map_err(|e| e.to_string())? {
                    return Err(ANOTHER_WRITER.into());
                }
                store.create_schema().await.map_err(|e| e.to_string())?;
                Ok(WriteStore::Postgres(store))
            }),
        }
    }

    fn run(mut self) {
        let mut batch = Vec::with_capacity(self.max_batch.min(4096));
        while let Some(command) = self.commands.blocking_recv() {
            self.take(command, &mut batch);
            self.drain_queued(&mut batch);
            // Only lazy records so far: give a record someone waits on a
            // moment to arrive and share the fsync.
            let deadline = Instant::now() + LAZY_WAIT;
            while batch.iter().all(|p| p.lazy) && batch.len() < self.max_batch {
                let left = deadline.saturating_duration_since(Instant::now());
                let commands = &mut self.commands;
                match self.runtime.block_on(async { tokio::time::timeout(left, commands.recv()).await }) {
                    Ok(Some(command)) => {
                        self.take(command, &mut batch);
                        self.drain_queued(&mut batch);
                    }
                    Ok(None) | Err(_) => break,
                }
            }
            if !batch.is_empty() {
                self.commit(&mut batch);
            }
        }
        // Everything queued is written: sign where the log ends.
        if let Err(e) = self.checkpoint() {
            tracing::error!(error = %e, "the shutdown checkpoint was not stored");
        }
        if let Some(WriteStore::Postgres(store)) = self.store.take() {
            self.runtime.block_on(store.close());
        }
    }

    /// Adds whatever is already queued, up to `max_batch`.
    fn drain_queued(&mut self, batch: &mut Vec<Pending>) {
        while batch.len() < self.max_batch {
            match self.commands.try_recv() {
                Ok(command) => self.take(command, batch),
                Err(_) => break,
            }
        }
    }

    fn take(&mut self, command: Command, batch: &mut Vec<Pending>) {
        match command {
            Command::Append(pending) => batch.push(pending),
            Command::Checkpoint(reply) => {
                // What was queued before the request belongs in the checkpoint.
                if !batch.is_empty() {
                    self.commit(batch);
                }
                let _ = reply.send(self.checkpoint());
            }
            Command::Prune(plan, reply) => {
                if !batch.is_empty() {
                    self.commit(batch);
                }
                let _ = reply.send(self.prune(plan));
            }
            // Refuse new sends; what is already queued is still received.
            Command::Shutdown => self.commands.close(),
        }
    }

    /// Writes one batch and answers its waiters, whatever happens.
    fn commit(&mut self, batch: &mut Vec<Pending>) {
        let records = batch.len();
        match self.write(batch, &Removals::default()) {
            Ok((first_seq, latency)) => {
                self.health.send_if_modified(|h| {
                    let changed = *h != StoreHealth::Healthy;
                    if changed {
                        tracing::info!("audit store is writable again");
                    }
                    *h = StoreHealth::Healthy;
                    changed
                });
                for (i, pending) in batch.drain(..).enumerate() {
                    pending.answer(Ok(first_seq + i as u64));
                }
                if let Some(on_commit) = &self.on_commit {
                    // A panicking callback must not take the writer down with it.
                    let stats = CommitStats { records, latency };
                    if std::panic::catch_unwind(AssertUnwindSafe(|| on_commit(stats))).is_err() {
                        tracing::error!("the audit on_commit callback panicked");
                    }
                }
            }
            Err(reason) => {
                self.health.send_modify(|h| {
                    let since = match h {
                        StoreHealth::Unavailable { since, .. } => *since,
                        StoreHealth::Healthy => {
                            tracing::error!(%reason, "audit store unavailable; refusing until it recovers");
                            Utc::now()
                        }
                    };
                    *h = StoreHealth::Unavailable { since, error: reason.clone() };
                });
                tracing::debug!(records, %reason, "audit batch failed");
                for pending in batch.drain(..) {
                    pending.answer(Err(AuditError::StoreUnavailable(reason.clone())));
                }
            }
        }
    }

    /// Sequences, chains and writes the batch in one transaction. Returns the
    /// first seq and how long the write and commit took; advances the head
    /// only on success.
    fn write(&mut self, batch: &mut [Pending], removals: &Removals) -> Result<(u64, Duration), String> {
        let state = self.current_state()?;
        let first_seq = state.head.0 + 1;
        let (rows, blocks, next) = chain(state, batch);
        let started = Instant::now();
        let written = match self.store.as_mut() {
            Some(WriteStore::Sqlite(conn)) => sqlite_writer::insert(conn, &rows, &blocks, removals),
            Some(WriteStore::Postgres(store)) => {
                self.runtime.block_on(store.insert(&rows, &blocks, removals)).map_err(|e| store_unavailable(&e))
            }
            None => Err("no connection to the store".into()),
        };
        match written {
            Ok(()) => {
                self.state = Some(next);
                Ok((first_seq, started.elapsed()))
            }
            Err(reason) => {
                self.state = None;
                self.drop_if_broken();
                Err(reason)
            }
        }
    }

    /// The head and tree to build on: kept from the last batch, or (after a
    /// failure) reconnected and reloaded from the store.
    fn current_state(&mut self) -> Result<LogState, String> {
        if let Some(state) = &self.state {
            return Ok(state.clone());
        }
        if self.store.is_none() {
            self.store = Some(self.connect()?);
        }
        match self.load_state() {
            Ok(state) => {
                self.state = Some(state.clone());
                Ok(state)
            }
            Err(LoadError::Corrupt(e)) => Err(e.to_string()),
            Err(LoadError::Store(reason)) => {
                self.drop_if_broken();
                Err(reason)
            }
        }
    }

    /// Deletes the payloads of `plan`, rewrites its bodies, and records it,
    /// in one transaction.
    fn prune(&mut self, plan: PrunePlan) -> Result<Vec<u64>, AuditError> {
        let mut removals = Removals::default();
        removals.payloads.extend(plan.chunks.iter().map(|(seq, _)| *seq));
        let mut rewritten = Vec::new();
        for (seqs, how) in [(&plan.statements, Rewriting::Statement), (&plan.expired, Rewriting::Expiry)] {
            if seqs.is_empty() {
                continue;
            }
            for (seq, body) in self.bodies_of(seqs)? {
                let Some((rewrite, was)) = how.rewrite(seq, &body)? else { continue };
                let body_sha256 = hex::encode(sha2::Sha256::digest(rewrite.body.as_bytes()));
                rewritten.push(RewrittenRecord { seq, body_sha256 });
                if was == "recording_chunk" {
                    // An expired chunk's payload goes with its record.
                    removals.payloads.push(seq);
                }
                removals.rewrites.push(rewrite);
            }
        }
        if plan.chunks.is_empty() && rewritten.is_empty() {
            return Ok(Vec::new());
        }
        let event = AuditEvent::PayloadsPruned(PayloadsPruned {
            connection: plan.connection,
            cutoff: plan.cutoff,
            seqs: plan.chunks.iter().map(|(seq, _)| *seq).collect(),
            bytes: plan.chunks.iter().map(|(_, bytes)| bytes).sum(),
            reason: plan.reason,
            redacted: rewritten,
        });
        let mut batch = vec![Pending::new(&event, false, None)];
        let (first, _) = self.write(&mut batch, &removals).map_err(AuditError::StoreUnavailable)?;
        if let Some(WriteStore::Sqlite(conn)) = &self.store {
            sqlite_writer::flush_wal(conn);
        }
        Ok((first..first + batch.len() as u64).collect())
    }

    /// The stored bodies of the records `seqs` names that exist, in seq order.
    fn bodies_of(&mut self, seqs: &[u64]) -> Result<Vec<(u64, String)>, AuditError> {
        match self.store.as_mut() {
            Some(WriteStore::Sqlite(conn)) => sqlite_writer::bodies_of(conn, seqs),
            Some(WriteStore::Postgres(store)) => {
                self.runtime.block_on(store.bodies_of(seqs)).map_err(|e| store_unavailable(&e))
            }
            None => Err("no connection to the store".into()),
        }
        .map_err(AuditError::StoreUnavailable)
    }

    /// Signs the current tree head and stores it, if a key is configured and
    /// records were added since the last checkpoint.
    fn checkpoint(&mut self) -> Result<Option<StoredCheckpoint>, AuditError> {
        let Some(key) = self.signing_key.clone() else {
            return Ok(None);
        };
        let state = self.current_state().map_err(AuditError::StoreUnavailable)?;
        let size = state.tree.size();
        if size == 0 || self.last_checkpoint.as_ref().is_some_and(|last| last.size >= size) {
            return Ok(None);
        }
        let time = encoding::truncate_time(Utc::now());
        let root = state.tree.root();
        let note = Checkpoint { origin: checkpoint_origin(&key.log_id()), size, root, time }
            .sign(&key)
            .map_err(|e| AuditError::Corrupt(format!("cannot sign the checkpoint: {e}")))?;
        let checkpoint = StoredCheckpoint { size, time: encoding::format_time(time), root: hex::encode(root), note };
        let stored = match self.store.as_mut() {
            Some(WriteStore::Sqlite(conn)) => sqlite_writer::insert_checkpoint(conn, &checkpoint),
            Some(WriteStore::Postgres(store)) => {
                self.runtime.block_on(store.insert_checkpoint(&checkpoint)).map_err(|e| store_unavailable(&e))
            }
            None => Err("no connection to the store".into()),
        };
        stored.map_err(AuditError::StoreUnavailable)?;
        self.last_checkpoint = Some(checkpoint.clone());
        Ok(Some(checkpoint))
    }

    /// After a failure: keep the connection only if it still answers.
    fn drop_if_broken(&mut self) {
        let alive = match self.store.as_mut() {
            Some(WriteStore::Sqlite(conn)) => conn.execute_batch("SELECT 1").map_err(|e| e.to_string()),
            Some(WriteStore::Postgres(store)) => self.runtime.block_on(store.ping()).map_err(|e| e.to_string()),
            None => Ok(()),
        };
        if let Err(e) = alive {
            tracing::warn!(error = %e, "audit store connection is broken; reconnecting on the next batch");
            // Dropped, not closed: a graceful close would talk to a dead peer.
            self.store = None;
        }
    }
}

/// Assigns seqs after the head, one time for the batch, chains the hashes
/// and appends the leaves. Returns the rows, the blocks they complete and the
/// state after them. Moves the index strings and payloads out of `batch`;
/// only the replies are used after.
fn chain(mut state: LogState, batch: &mut [Pending]) -> (Vec<NewRow>, Vec<(u64, Hash)>, LogState) {
    let time: Arc<str> = encoding::format_time(encoding::truncate_time(Utc::now())).into();
    let (head_seq, mut prev_hash) = state.head;
    let mut prev = encoding::decode_hash(&prev_hash).unwrap_or([0; 32]);
    let mut rows = Vec::with_capacity(batch.len());
    let mut blocks = Vec::new();
    for (i, pending) in batch.iter_mut().enumerate() {
        let seq = head_seq + 1 + i as u64;
        let body = encoding::splice_body(seq, &time, &pending.event_json);
        prev = encoding::chain_digest(&prev, &body);
        blocks.extend(state.tree.append(&body));
        let hash = hex::encode(prev);
        rows.push(NewRow {
            seq,
            time: time.clone(),
            kind: pending.kind,
            session_id: pending.session_id.take(),
            principal: pending.principal.take(),
            connection: pending.connection.take(),
            body,
            prev_hash: std::mem::replace(&mut prev_hash, hash.clone()),
            hash,
            payload: pending.payload.take(),
        });
    }
    state.head = (head_seq + rows.len() as u64, prev_hash);
    (rows, blocks, state)
}

/// Why a second writer is refused.
pub(crate) const ANOTHER_WRITER: &str = "another Sluice process is writing this audit log";

/// Items (payloads deleted, bodies rewritten) one `payloads_pruned` record,
/// and the transaction that writes it, cover at most.
const PRUNE_RECORD_SEQS: usize = 10_000;

/// Why the head and tree could not be loaded.
enum LoadError {
    /// The store could not be read; worth retrying.
    Store(String),
    /// The store holds what the log's rules forbid.
    Corrupt(AuditError),
}

/// The first line of this node's checkpoints: `sluice/<log id>`.
pub fn checkpoint_origin(log_id: &str) -> String {
    format!("sluice/{log_id}")
}
