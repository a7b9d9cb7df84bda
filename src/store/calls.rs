//! The call log (`calls.db`): every request sources and API targets made, by source and job, kept by
//! each source's `callLogRetention` (by age and by count).

use std::path::Path;

use rusqlite::{Connection, params};
use serde::Serialize;

use super::StoreError;
use crate::calls::Call;

const SCHEMA: &str = "
PRAGMA journal_mode = WAL;
PRAGMA synchronous = NORMAL;
CREATE TABLE IF NOT EXISTS calls (
    seq INTEGER PRIMARY KEY, source TEXT NOT NULL, job TEXT, at INTEGER NOT NULL, method TEXT NOT NULL, url TEXT NOT NULL,
    status INTEGER, duration_ms INTEGER NOT NULL, bytes_in INTEGER NOT NULL, bytes_out INTEGER NOT NULL, error TEXT);
CREATE INDEX IF NOT EXISTS calls_by_source ON calls(source, seq);
";

/// A recorded call, as lists show it.
#[derive(Debug, Clone, Serialize)]
pub struct RecordedCall {
    pub seq: i64,
    pub job: Option<String>,
    /// `at` as RFC 3339.
    pub time: String,
    #[serde(flatten)]
    pub call: Call,
}

/// Which calls to list.
#[derive(Debug, Clone, Default)]
pub struct CallQuery<'a> {
    pub source: &'a str,
    pub job: Option<&'a str>,
    /// Failed ones only: no answer, or an answer that is not 2xx.
    pub errors: bool,
    pub limit: usize,
}

/// The logged calls of one source in one status class, summed.
#[derive(Debug, Clone)]
pub struct CallTotals {
    pub source: String,
    pub class: String,
    pub calls: u64,
    pub millis: f64,
    pub bytes_in: f64,
}

pub struct CallStore {
    conn: Connection,
}

impl CallStore {
    pub fn open(path: &Path) -> Result<CallStore, StoreError> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.execute_batch(SCHEMA)?;
        Ok(CallStore { conn })
    }

    /// Records `calls` of `job`, and `dropped` more that were made but not held, as one line.
    pub fn record(&mut self, job: &str, calls: &[Call], dropped: u64) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO calls (source, job, at, method, url, status, duration_ms, bytes_in, bytes_out, error) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )?;
            for c in calls {
                insert.execute(params![c.source, job, c.at, c.method, c.url, c.status, c.duration_ms, c.bytes_in, c.bytes_out, c.error])?;
            }
            if dropped > 0
                && let Some(last) = calls.last()
            {
                let note = format!("{dropped} more call(s) were made than the log holds between two writes");
                insert.execute(params![last.source, job, last.at, "-", "-", None::<u16>, 0, 0, 0, note])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Forgets the calls of `source` older than `max_age` (at `now`, milliseconds) and all but its
    /// newest `max_count`.
    pub fn prune(&self, source: &str, max_age: std::time::Duration, max_count: u64, now: i64) -> Result<(), StoreError> {
        let oldest = now.saturating_sub(max_age.as_millis().min(i64::MAX as u128) as i64);
        self.conn.execute("DELETE FROM calls WHERE source = ?1 AND at < ?2", params![source, oldest])?;
        self.conn.execute(
            "DELETE FROM calls WHERE source = ?1 AND seq <= (SELECT seq FROM calls WHERE source = ?1 ORDER BY seq DESC LIMIT 1 OFFSET ?2)",
            params![source, max_count.min(i64::MAX as u64) as i64],
        )?;
        Ok(())
    }

    /// Per source and status class (`2xx`…`5xx`, `error` for no answer): the logged calls, their
    /// time and the bytes they read (for `/metrics`; the log keeps `callLogRetention`).
    pub fn totals(&self) -> Result<Vec<CallTotals>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT source, CASE WHEN status IS NULL THEN 'error' ELSE (status / 100) || 'xx' END, COUNT(*), TOTAL(duration_ms), TOTAL(bytes_in) \
             FROM calls WHERE method <> '-' GROUP BY 1, 2 ORDER BY 1, 2",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(CallTotals {
                source: r.get(0)?,
                class: r.get(1)?,
                calls: r.get::<_, i64>(2)?.max(0) as u64,
                millis: r.get(3)?,
                bytes_in: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Calls, newest first.
    pub fn list(&self, query: &CallQuery) -> Result<Vec<RecordedCall>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT seq, job, at, source, method, url, status, duration_ms, bytes_in, bytes_out, error FROM calls \
             WHERE source = ?1 AND (?2 IS NULL OR job = ?2) AND (?3 = 0 OR error IS NOT NULL OR status IS NULL OR status NOT BETWEEN 200 AND 299) \
             ORDER BY seq DESC LIMIT ?4",
        )?;
        let rows = stmt.query_map(params![query.source, query.job, query.errors, query.limit.min(10_000) as i64], |r| {
            let at: i64 = r.get(2)?;
            Ok(RecordedCall {
                seq: r.get(0)?,
                job: r.get(1)?,
                time: super::millis_text(at),
                call: Call {
                    at,
                    source: r.get(3)?,
                    method: r.get(4)?,
                    url: r.get(5)?,
                    status: r.get(6)?,
                    duration_ms: r.get(7)?,
                    bytes_in: r.get(8)?,
                    bytes_out: r.get(9)?,
                    error: r.get(10)?,
                },
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
