//! One task per sink: read after the cursor, send, advance the cursor on
//! acknowledgement, retry with backoff on failure.
//!
//! Owns: [`Forwarder`] (building the sinks from `[[siem.sinks]]`, spawning
//! and stopping their tasks), the delivery loop and its backoff.
//! Does not: format or transport events (the sink modules do), or write the
//! audit log.

use std::time::Duration;

use sluice_audit::AuditReader;
use sluice_config::{SinkConfig, SinkTarget, StatementOption};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::SinkError;
use crate::cursor::{CursorStore, Position};
use crate::event::SiemEvent;
use crate::hec::HecSink;
use crate::nats::NatsSink;
use crate::otlp::OtlpSink;
use crate::syslog::SyslogSink;

/// How often a caught-up sink looks for new records.
pub const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// Capped exponential backoff between failed attempts: 200 ms, 400 ms, ...
/// at most 10 s. Never gives up: a record is not skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub first: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { first: Duration::from_millis(200), max: Duration::from_secs(10) }
    }
}

impl Backoff {
    /// The wait after the `failures`-th failure in a row (from 1).
    pub fn delay(&self, failures: u32) -> Duration {
        let factor = 1u32.checked_shl(failures.saturating_sub(1).min(31)).unwrap_or(u32::MAX);
        self.first.saturating_mul(factor).min(self.max)
    }
}

/// A destination, whichever its kind.
#[derive(Debug)]
pub enum Sink {
    Syslog(Box<SyslogSink>),
    Hec(Box<HecSink>),
    Nats(Box<NatsSink>),
    Otlp(Box<OtlpSink>),
}

impl Sink {
    /// The sink `config` describes, with its token or header values read
    /// and its CA loaded.
    pub fn build(config: &SinkConfig) -> Result<Sink, SinkError> {
        let target = config.target().map_err(|(key, message)| SinkError::Setup(format!("{key}: {message}")))?;
        Ok(match target {
            SinkTarget::Syslog { address, transport, ca_file, server_name } => Sink::Syslog(Box::new(SyslogSink::new(
                &address,
                transport,
                ca_file.as_deref(),
                server_name.as_deref(),
            )?)),
            SinkTarget::Hec { url, ca_file } => {
                let token = config.hec_token().map_err(|e| SinkError::Setup(format!("token: {e}")))?;
                Sink::Hec(Box::new(HecSink::new(&url, &token, ca_file.as_deref())?))
            }
            SinkTarget::Nats { url, stream, subject_prefix } => {
                Sink::Nats(Box::new(NatsSink::new(&url, &stream, &subject_prefix)))
            }
            SinkTarget::Otlp { url, ca_file } => {
                let headers = config.otlp_headers().map_err(SinkError::Setup)?;
                Sink::Otlp(Box::new(OtlpSink::new(&url, &headers, ca_file.as_deref())?))
            }
        })
    }

    /// Sends `events`; `Ok` once the destination acknowledged all of them.
    pub async fn send(&mut self, events: &[SiemEvent]) -> Result<(), SinkError> {
        match self {
            Sink::Syslog(sink) => sink.send(events).await,
            Sink::Hec(sink) => sink.send(events).await,
            Sink::Nats(sink) => sink.send(events).await,
            Sink::Otlp(sink) => sink.send(events).await,
        }
    }
}

/// The running sinks. Dropping it does not stop them; call
/// [`Forwarder::shutdown`].
#[derive(Debug)]
pub struct Forwarder {
    shutdown: CancellationToken,
    tasks: JoinSet<()>,
    cursors: Option<CursorStore>,
}

/// What one sink's task needs.
struct Lane {
    name: String,
    sink: Sink,
    statement: StatementOption,
    batch: u64,
    store_url: String,
    cursors: CursorStore,
    backoff: Backoff,
    shutdown: CancellationToken,
}

impl Forwarder {
    /// Builds every sink (a missing token or header variable, or an
    /// unreadable CA, fails here, at startup), opens the cursor table in the
    /// audit store's database at `store_url`, and starts one task per sink.
    pub async fn start(sinks: &[SinkConfig], store_url: &str) -> Result<Forwarder, SinkError> {
        Forwarder::start_with(sinks, store_url, Backoff::default()).await
    }

    /// [`Forwarder::start`] with another backoff (tests).
    pub async fn start_with(sinks: &[SinkConfig], store_url: &str, backoff: Backoff) -> Result<Forwarder, SinkError> {
        let shutdown = CancellationToken::new();
        let mut tasks = JoinSet::new();
        if sinks.is_empty() {
            return Ok(Forwarder { shutdown, tasks, cursors: None });
        }
        let mut lanes = Vec::with_capacity(sinks.len());
        for config in sinks {
            let sink = Sink::build(config).map_err(|e| e.in_sink(&config.name))?;
            let statement = config.statement().map_err(|e| SinkError::Setup(format!("{}: {e}", config.name)))?;
            lanes.push((config.name.clone(), sink, statement, u64::from(config.batch.max(1))));
        }
        let cursors = CursorStore::open(store_url).await?;
        for (name, sink, statement, batch) in lanes {
            let lane = Lane {
                name,
                sink,
                statement,
                batch,
                store_url: store_url.to_string(),
                cursors: cursors.clone(),
                backoff,
                shutdown: shutdown.clone(),
            };
            tasks.spawn(lane.run());
        }
        Ok(Forwarder { shutdown, tasks, cursors: Some(cursors) })
    }

    /// Tells every sink to stop: each makes one last attempt at what is
    /// new, then ends. Waits up to `within`, then abandons the rest (their
    /// cursors hold: they resume on the next start).
    pub async fn shutdown(mut self, within: Duration) {
        self.shutdown.cancel();
        let joined = tokio::time::timeout(within, async { while self.tasks.join_next().await.is_some() {} }).await;
        if joined.is_err() {
            tracing::warn!("SIEM sinks did not finish in time; they resume from their cursors on the next start");
            self.tasks.shutdown().await;
        }
        if let Some(cursors) = self.cursors {
            cursors.close().await;
        }
    }
}

impl Lane {
    async fn run(mut self) {
        let mut reader: Option<AuditReader> = None;
        let mut position: Option<Position> = None;
        let mut failures = 0u32;
        loop {
            let stopping = self.shutdown.is_cancelled();
            let step = self.step(&mut reader, &mut position).await;
            match step {
                Ok(sent) => {
                    if failures > 0 {
                        tracing::info!(sink = %self.name, "SIEM sink delivering again");
                    }
                    failures = 0;
                    if sent {
                        continue;
                    }
                    if stopping {
                        return;
                    }
                    tokio::select! {
                        () = self.shutdown.cancelled() => {}
                        () = tokio::time::sleep(POLL_INTERVAL) => {}
                    }
                }
                Err(e) => {
                    if stopping {
                        tracing::warn!(sink = %self.name, error = %e, "SIEM sink stopped behind; it resumes from its cursor");
                        return;
                    }
                    failures = failures.saturating_add(1);
                    let delay = self.backoff.delay(failures);
                    tracing::warn!(sink = %self.name, error = %e, retry_in = ?delay, "SIEM sink failed; retrying");
                    if matches!(e, SinkError::Store(_)) {
                        reader = None;
                        position = None;
                    }
                    tokio::select! {
                        () = self.shutdown.cancelled() => {}
                        () = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
    }

    /// One round: the checkpoints the sink has every record of, else the
    /// next page of records. `Ok(true)` when something was sent.
    async fn step(
        &mut self,
        reader: &mut Option<AuditReader>,
        position: &mut Option<Position>,
    ) -> Result<bool, SinkError> {
        if reader.is_none() {
            *reader = Some(AuditReader::open(&self.store_url).await.map_err(|e| SinkError::Store(e.to_string()))?);
        }
        let reader = reader.as_ref().expect("opened above");
        let mut at = match *position {
            Some(at) => at,
            None => {
                let at = self.cursors.load(&self.name).await?;
                *position = Some(at);
                at
            }
        };
        let store = |e: sluice_audit::AuditError| SinkError::Store(e.to_string());
        let checkpoints = reader.checkpoints_after(at.checkpoint_size, self.batch).await.map_err(store)?;
        let due: Vec<SiemEvent> =
            checkpoints.iter().take_while(|c| c.size <= at.seq).map(SiemEvent::from_checkpoint).collect();
        if let Some(last) = due.last() {
            self.sink.send(&due).await?;
            at.checkpoint_size = last.record;
            self.cursors.save(&self.name, at).await?;
            *position = Some(at);
            return Ok(true);
        }
        let records = reader.records_after(at.seq, self.batch).await.map_err(store)?;
        let Some(last) = records.last() else { return Ok(false) };
        let events: Vec<SiemEvent> = records.iter().map(|r| SiemEvent::from_record(r, self.statement)).collect();
        self.sink.send(&events).await?;
        at.seq = last.seq;
        self.cursors.save(&self.name, at).await?;
        *position = Some(at);
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::Backoff;
    use std::time::Duration;

    #[test]
    fn backoff_doubles_from_200ms_up_to_10s() {
        let backoff = Backoff::default();
        let delays: Vec<u64> = (1..=9).map(|n| backoff.delay(n).as_millis() as u64).collect();
        assert_eq!(delays, [200, 400, 800, 1600, 3200, 6400, 10_000, 10_000, 10_000]);
        assert_eq!(backoff.delay(0), Duration::from_millis(200));
        assert_eq!(backoff.delay(u32::MAX), Duration::from_secs(10));
    }
}
