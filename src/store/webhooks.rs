//! Webhook deliveries (`webhooks.db`): each event a subscription takes, from the moment it is taken
//! until it is delivered or dead-lettered, and how far each subscription has read the register's
//! change feed and the jobs' ends.
//!
//! The change feed and the job events are the outbox: both are written in the transaction of the
//! change itself (`store::register::feed`, the `job_ended` trigger of `jobs.db`). A delivery is taken
//! from them together with the cursor that passes it, in one transaction here, so after a crash
//! anywhere every event is either taken already or read again, and none is lost.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use super::StoreError;

const SCHEMA: &str = "
PRAGMA journal_mode = WAL;
PRAGMA synchronous = NORMAL;
CREATE TABLE IF NOT EXISTS cursors (webhook TEXT PRIMARY KEY, changes INTEGER NOT NULL, jobs INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY, webhook TEXT NOT NULL, event_id TEXT NOT NULL, type TEXT NOT NULL, subject TEXT NOT NULL,
    body TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'pending', attempts INTEGER NOT NULL DEFAULT 0, next_at INTEGER NOT NULL,
    last_status INTEGER, last_error TEXT, created_at INTEGER NOT NULL, delivered_at INTEGER,
    UNIQUE (webhook, event_id));
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries(status, next_at);
CREATE INDEX IF NOT EXISTS deliveries_by_subject ON deliveries(webhook, subject, id);
CREATE TABLE IF NOT EXISTS hook_events (
    synchronization TEXT NOT NULL, event_id TEXT NOT NULL, job TEXT, at INTEGER NOT NULL, PRIMARY KEY (synchronization, event_id));
";

/// Where a subscription has read to: the change feed's and the job events' numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Cursor {
    pub changes: i64,
    pub jobs: i64,
}

/// An event taken for a subscription.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    pub event_id: String,
    pub kind: String,
    /// What the event is about (an object id, a synchronization): deliveries about one subject go out
    /// in order.
    pub subject: String,
    pub body: String,
}

/// A delivery, as lists show it and the dispatcher sends it.
#[derive(Debug, Clone, Serialize)]
pub struct Delivery {
    pub id: i64,
    pub webhook: String,
    pub event_id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub subject: String,
    /// `pending`, `delivered` or `dead`.
    pub status: String,
    pub attempts: u32,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    pub created_at: String,
    pub next_at: Option<String>,
    pub delivered_at: Option<String>,
    #[serde(skip)]
    pub body: String,
}

/// The deliveries database.
pub struct WebhookStore {
    conn: Mutex<Connection>,
}

const COLUMNS: &str =
    "id, webhook, event_id, type, subject, status, attempts, last_status, last_error, created_at, next_at, delivered_at, body";

fn row_to_delivery(r: &rusqlite::Row) -> rusqlite::Result<Delivery> {
    let time = |i| -> rusqlite::Result<Option<String>> { Ok(r.get::<_, Option<i64>>(i)?.map(super::millis_text)) };
    let status: String = r.get(5)?;
    Ok(Delivery {
        id: r.get(0)?,
        webhook: r.get(1)?,
        event_id: r.get(2)?,
        kind: r.get(3)?,
        subject: r.get(4)?,
        attempts: r.get(6)?,
        last_status: r.get(7)?,
        last_error: r.get(8)?,
        created_at: time(9)?.unwrap_or_default(),
        next_at: if status == "pending" { time(10)? } else { None },
        delivered_at: time(11)?,
        body: r.get(12)?,
        status,
    })
}

/// How long a claimed hook event may stay without its job before a retry takes it over.
const ABANDONED_CLAIM_MS: i64 = 60_000;

impl WebhookStore {
    pub fn open(path: &Path) -> Result<WebhookStore, StoreError> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.execute_batch(SCHEMA)?;
        Ok(WebhookStore { conn: Mutex::new(conn) })
    }

    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>) -> Result<T, StoreError> {
        let mut conn = self.conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        Ok(f(&mut conn)?)
    }

    /// How far `webhook` has read; `None` for a subscription seen for the first time.
    pub fn cursor(&self, webhook: &str) -> Result<Option<Cursor>, StoreError> {
        self.with(|c| {
            c.query_row("SELECT changes, jobs FROM cursors WHERE webhook = ?1", [webhook], |r| {
                Ok(Cursor { changes: r.get(0)?, jobs: r.get(1)? })
            })
            .optional()
        })
    }

    /// Takes `deliveries` for `webhook` and moves its cursor to `cursor`, together.
    pub fn take(&self, webhook: &str, cursor: Cursor, deliveries: &[NewDelivery], now: i64) -> Result<(), StoreError> {
        self.with(|c| {
            let tx = c.transaction()?;
            {
                let mut insert = tx.prepare_cached(
                    "INSERT OR IGNORE INTO deliveries (webhook, event_id, type, subject, body, next_at, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
                )?;
                for d in deliveries {
                    insert.execute(params![webhook, d.event_id, d.kind, d.subject, d.body, now])?;
                }
            }
            tx.execute(
                "INSERT INTO cursors (webhook, changes, jobs) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (webhook) DO UPDATE SET changes = excluded.changes, jobs = excluded.jobs",
                params![webhook, cursor.changes, cursor.jobs],
            )?;
            tx.commit()
        })
    }

    /// Pending deliveries due at `now`, oldest first, each the first still pending about its subject
    /// (a later one waits until the earlier is delivered or dead: order per object is kept).
    pub fn due(&self, now: i64, limit: usize) -> Result<Vec<Delivery>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM deliveries d WHERE status = 'pending' AND next_at <= ?1 \
                 AND NOT EXISTS (SELECT 1 FROM deliveries e WHERE e.webhook = d.webhook AND e.subject = d.subject AND e.id < d.id \
                                 AND e.status = 'pending') ORDER BY id LIMIT ?2"
            ))?;
            stmt.query_map(params![now, limit as i64], row_to_delivery)?.collect()
        })
    }

    /// The earliest time a pending delivery falls due, if any is pending.
    pub fn next_due(&self) -> Result<Option<i64>, StoreError> {
        self.with(|c| c.query_row("SELECT min(next_at) FROM deliveries WHERE status = 'pending'", [], |r| r.get(0)))
    }

    /// Records an attempt: delivered (`retry_at` unused), failed and to be retried at `retry_at`, or
    /// failed for the last time (`retry_at` `None`: dead-lettered).
    pub fn attempted(&self, id: i64, outcome: &Attempt, now: i64) -> Result<(), StoreError> {
        self.with(|c| {
            let (status, next_at, delivered_at) = match outcome.retry_at {
                _ if outcome.delivered => ("delivered", now, Some(now)),
                Some(at) => ("pending", at, None),
                None => ("dead", now, None),
            };
            c.execute(
                "UPDATE deliveries SET status = ?2, attempts = attempts + 1, next_at = ?3, last_status = ?4, last_error = ?5, delivered_at = ?6 \
                 WHERE id = ?1",
                params![id, status, next_at, outcome.status, outcome.error, delivered_at],
            )?;
            Ok(())
        })
    }

    /// Deliveries, newest first: of one subscription, in one status.
    pub fn list(&self, webhook: Option<&str>, status: Option<&str>, limit: usize) -> Result<Vec<Delivery>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM deliveries WHERE (?1 IS NULL OR webhook = ?1) AND (?2 IS NULL OR status = ?2) ORDER BY id DESC LIMIT ?3"
            ))?;
            stmt.query_map(params![webhook, status, limit as i64], row_to_delivery)?.collect()
        })
    }

    /// How many deliveries each subscription has in each status (for `/metrics`).
    pub fn status_counts(&self) -> Result<Vec<(String, String, u64)>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare("SELECT webhook, status, COUNT(*) FROM deliveries GROUP BY 1, 2 ORDER BY 1, 2")?;
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)?.max(0) as u64)))?.collect()
        })
    }

    /// Sends a delivery again from its first attempt (a dead-lettered one, most often); false when
    /// there is none with that id.
    pub fn redeliver(&self, id: i64, now: i64) -> Result<bool, StoreError> {
        self.with(|c| {
            let changed = c.execute(
                "UPDATE deliveries SET status = 'pending', attempts = 0, next_at = ?2, last_error = NULL, last_status = NULL, delivered_at = NULL \
                 WHERE id = ?1",
                params![id, now],
            )?;
            Ok(changed > 0)
        })
    }

    /// Claims event `event_id` of a synchronization's inbound hook: `Ok(None)` when it is new (now
    /// taken), else the job its first arrival started (`Some("")` while that one is starting).
    pub fn claim_hook_event(&self, synchronization: &str, event_id: &str, now: i64) -> Result<Option<String>, StoreError> {
        self.with(|c| {
            // Replays are recognised for a week: a signature is refused long before that anyway.
            c.execute("DELETE FROM hook_events WHERE at < ?1", [now - 7 * 24 * 3600 * 1000])?;
            let inserted = c.execute(
                "INSERT OR IGNORE INTO hook_events (synchronization, event_id, at) VALUES (?1, ?2, ?3)",
                params![synchronization, event_id, now],
            )?;
            if inserted > 0 {
                return Ok(None);
            }
            // A claim still unsettled after a minute belongs to a process that died between taking
            // the event and starting its run (starting takes milliseconds): the sender's retry takes
            // it over, or the event would be answered as a replay of a run that never was.
            let adopted = c.execute(
                "UPDATE hook_events SET at = ?3 WHERE synchronization = ?1 AND event_id = ?2 AND job IS NULL AND at < ?4",
                params![synchronization, event_id, now, now - ABANDONED_CLAIM_MS],
            )?;
            if adopted > 0 {
                return Ok(None);
            }
            let job: Option<String> = c.query_row(
                "SELECT job FROM hook_events WHERE synchronization = ?1 AND event_id = ?2",
                params![synchronization, event_id],
                |r| r.get(0),
            )?;
            Ok(Some(job.unwrap_or_default()))
        })
    }

    /// The job a claimed event started; `None` gives the claim up (the run could not start, so the
    /// event may come again).
    pub fn settle_hook_event(&self, synchronization: &str, event_id: &str, job: Option<&str>) -> Result<(), StoreError> {
        self.with(|c| {
            match job {
                Some(job) => c.execute(
                    "UPDATE hook_events SET job = ?3 WHERE synchronization = ?1 AND event_id = ?2",
                    params![synchronization, event_id, job],
                )?,
                None => {
                    c.execute("DELETE FROM hook_events WHERE synchronization = ?1 AND event_id = ?2", params![synchronization, event_id])?
                }
            };
            Ok(())
        })
    }
}

/// How one attempt went.
#[derive(Debug, Clone, Default)]
pub struct Attempt {
    pub delivered: bool,
    pub status: Option<u16>,
    pub error: Option<String>,
    /// When to try again; `None` after a failure: dead-lettered.
    pub retry_at: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hook_event_claimed_by_a_process_that_died_is_taken_over_by_the_retry() {
        let dir = tempfile::tempdir().unwrap();
        let store = WebhookStore::open(&dir.path().join("webhooks.db")).unwrap();
        let t0 = 1_000_000_000_000;
        assert_eq!(store.claim_hook_event("s", "e1", t0).unwrap(), None, "a new event is taken");
        assert_eq!(store.claim_hook_event("s", "e1", t0 + 1_000).unwrap(), Some(String::new()), "while it starts, a retry is a replay");
        // Nothing settled it: the claimer died. A minute on, the retry runs it.
        assert_eq!(store.claim_hook_event("s", "e1", t0 + ABANDONED_CLAIM_MS + 1).unwrap(), None);
        store.settle_hook_event("s", "e1", Some("job-1")).unwrap();
        let much_later = t0 + 10 * ABANDONED_CLAIM_MS;
        assert_eq!(store.claim_hook_event("s", "e1", much_later).unwrap(), Some("job-1".into()), "a settled event stays a replay");
        assert_eq!(store.claim_hook_event("s", "e2", much_later).unwrap(), None);
        store.settle_hook_event("s", "e2", None).unwrap();
        assert_eq!(store.claim_hook_event("s", "e2", much_later).unwrap(), None, "a run that could not start leaves the event free");
    }
}
