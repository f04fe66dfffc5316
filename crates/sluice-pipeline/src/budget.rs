//! Exfiltration budgets: how much of a response may reach the caller.
//!
//! Owns: turning an allowed plan's [`Budget`] into the [`ResultLimit`] the
//! adapter enforces while it relays rows, and the rolling hourly windows
//! (`rows_per_hour`, per principal and connection), seeded from the audit
//! store so a restart does not reset them.
//! Does not: count rows on the wire (the adapter does, through its
//! `Exchange`), or pick the budget (policy does, with `@budget`).
//!
//! An hourly window counts the rows returned by requests that a budget with
//! `rows_per_hour` allowed. Each such request's outcome record carries them
//! (`rows_charged`), which is what a restarted Sluice reads back. Concurrent
//! sessions of one principal share one window in memory; each statement may
//! use what was left when it began, so parallel statements can overshoot
//! the window by at most one statement's rows each.

use chrono::{DateTime, TimeDelta, Utc};
use sluice_audit::{AuditReader, SearchFilter};
use sluice_model::{AuditEvent, Budget, Denial, DenialCause};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use tokio::sync::OnceCell;

/// The rolling window of `rows_per_hour`.
const WINDOW: TimeDelta = TimeDelta::hours(1);

/// The most of one request's response that may reach the caller. The
/// adapter asks [`ResultLimit::check`] before relaying each result row.
#[derive(Debug, Clone)]
pub struct ResultLimit {
    rows: Option<u64>,
    bytes: Option<u64>,
    /// Whether `rows` is what is left of the hourly window (it is smaller
    /// than the per-statement limit), for the message.
    rows_from_window: bool,
    budget: Budget,
    /// The policies whose budget this is.
    policies: String,
    /// The hourly window the returned rows are charged to.
    pub(crate) window: Option<Arc<RowWindow>>,
}

impl ResultLimit {
    /// `Err(message)` when a response of `rows` rows and `bytes` bytes of
    /// row data would cross the limit: the row that makes it so must not be
    /// relayed, and the request ends with this message (SQLSTATE 54000 in
    /// PostgreSQL).
    pub fn check(&self, rows: u64, bytes: u64) -> Result<(), String> {
        let why = if self.rows.is_some_and(|limit| rows > limit) {
            if self.rows_from_window {
                format!(
                    "it would cross the hourly row budget ({} rows per hour on this connection; {} were left \
                     when it began)",
                    self.budget.rows_per_hour.unwrap_or_default(),
                    self.rows.unwrap_or_default()
                )
            } else {
                format!("it would cross the row budget of {} rows per statement", self.rows.unwrap_or_default())
            }
        } else if self.bytes.is_some_and(|limit| bytes > limit) {
            format!("it would cross the byte budget of {} bytes per statement", self.bytes.unwrap_or_default())
        } else {
            return Ok(());
        };
        Err(format!(
            "result withheld by Sluice budget (policy \"{}\"): the statement ran, but {why}, so the rest of its \
             result was not sent; narrow the query (WHERE, LIMIT), or ask an operator for a larger @budget",
            self.policies
        ))
    }
}

/// Every hourly window of this process, by principal and connection.
#[derive(Debug)]
pub(crate) struct Budgets {
    windows: Mutex<HashMap<(String, String), Arc<RowWindow>>>,
    /// Where past usage is read from: the audit store.
    store_url: String,
    reader: OnceCell<AuditReader>,
}

impl Budgets {
    pub(crate) fn new(store_url: String) -> Budgets {
        Budgets { windows: Mutex::default(), store_url, reader: OnceCell::new() }
    }

    /// The limit for one allowed request of `subject` on `connection`, or
    /// a budget denial when its hourly window is spent (or its usage cannot
    /// be read: fail closed). `None` for an unlimited budget.
    pub(crate) async fn admit(
        &self,
        subject: &str,
        connection: &str,
        policies: &[String],
        budget: Budget,
    ) -> Result<Option<ResultLimit>, Denial> {
        if budget.is_unlimited() {
            return Ok(None);
        }
        let policies = policies.join(",");
        let mut limit = ResultLimit {
            rows: budget.rows_per_statement,
            bytes: budget.bytes_per_statement,
            rows_from_window: false,
            budget,
            policies,
            window: None,
        };
        let Some(per_hour) = budget.rows_per_hour else { return Ok(Some(limit)) };
        let window = self.window(subject, connection).await.map_err(|why| Denial {
            policy: limit.policies.clone(),
            reason: format!(
                "Sluice cannot read how much of the hourly row budget is spent ({why}), so it refuses (fail closed)"
            ),
            remedy: Some("retry once the audit store is reachable".into()),
            cause: DenialCause::Budget,
        })?;
        let left = per_hour.saturating_sub(window.used(Utc::now()));
        if left == 0 {
            return Err(Denial {
                policy: limit.policies.clone(),
                reason: format!(
                    "the hourly row budget of {per_hour} rows on connection \"{connection}\" is spent for \
                     \"{subject}\""
                ),
                remedy: Some(format!(
                    "wait until rows returned more than an hour ago free up, or ask an operator for a larger \
                     @budget than rows_per_hour={per_hour}"
                )),
                cause: DenialCause::Budget,
            });
        }
        if limit.rows.is_none_or(|rows| left < rows) {
            limit.rows = Some(left);
            limit.rows_from_window = true;
        }
        limit.window = Some(window);
        Ok(Some(limit))
    }

    /// The window of `subject` on `connection`, seeded from the audit store
    /// the first time this process needs it.
    async fn window(&self, subject: &str, connection: &str) -> Result<Arc<RowWindow>, String> {
        let window = {
            let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
            windows.entry((subject.to_string(), connection.to_string())).or_default().clone()
        };
        window.seeded.get_or_try_init(|| self.seed(&window, subject, connection)).await?;
        Ok(window)
    }

    /// Loads the last hour's charged rows of `subject` on `connection`.
    async fn seed(&self, window: &RowWindow, subject: &str, connection: &str) -> Result<(), String> {
        let reader = self
            .reader
            .get_or_try_init(|| AuditReader::open(&self.store_url))
            .await
            .map_err(|e| format!("audit store: {e}"))?;
        let filter = SearchFilter {
            principal: Some(subject.to_string()),
            connection: Some(connection.to_string()),
            kind: Some("outcome".into()),
            since: Some(Utc::now() - WINDOW),
            ..SearchFilter::default()
        };
        let records = reader.search(&filter).await.map_err(|e| format!("audit store: {e}"))?;
        let mut state = window.lock();
        for record in records {
            if let AuditEvent::Outcome(outcome) = record.event
                && outcome.rows_charged > 0
            {
                state.charge(record.time, outcome.rows_charged);
            }
        }
        Ok(())
    }
}

/// Rows returned over the last hour, oldest first.
#[derive(Debug, Default)]
pub(crate) struct RowWindow {
    state: Mutex<WindowState>,
    seeded: OnceCell<()>,
}

#[derive(Debug, Default)]
struct WindowState {
    charges: VecDeque<(DateTime<Utc>, u64)>,
    total: u64,
}

impl WindowState {
    fn charge(&mut self, at: DateTime<Utc>, rows: u64) {
        self.charges.push_back((at, rows));
        self.total += rows;
    }

    fn expire(&mut self, now: DateTime<Utc>) {
        while let Some(&(at, rows)) = self.charges.front() {
            if now - at < WINDOW {
                break;
            }
            self.charges.pop_front();
            self.total -= rows;
        }
    }
}

impl RowWindow {
    fn lock(&self) -> std::sync::MutexGuard<'_, WindowState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Rows returned within the hour before `now`.
    fn used(&self, now: DateTime<Utc>) -> u64 {
        let mut state = self.lock();
        state.expire(now);
        state.total
    }

    /// Counts rows just returned.
    pub(crate) fn charge(&self, rows: u64) {
        if rows > 0 {
            self.lock().charge(Utc::now(), rows);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(budget: Budget) -> ResultLimit {
        ResultLimit {
            rows: budget.rows_per_statement,
            bytes: budget.bytes_per_statement,
            rows_from_window: false,
            budget,
            policies: "p".into(),
            window: None,
        }
    }

    #[test]
    fn limits_admit_up_to_and_including_the_budget() {
        let l = limit(Budget { rows_per_statement: Some(2), bytes_per_statement: Some(100), rows_per_hour: None });
        assert!(l.check(2, 100).is_ok());
        assert!(l.check(3, 10).unwrap_err().contains("2 rows per statement"));
        assert!(l.check(1, 101).unwrap_err().contains("100 bytes per statement"));
    }

    #[test]
    fn window_forgets_rows_older_than_an_hour() {
        let window = RowWindow::default();
        let now = Utc::now();
        window.lock().charge(now - TimeDelta::minutes(61), 500);
        window.lock().charge(now - TimeDelta::minutes(59), 70);
        assert_eq!(window.used(now), 70);
        assert_eq!(window.used(now + TimeDelta::minutes(2)), 0);
    }
}
