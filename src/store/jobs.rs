//! Jobs: every run of a synchronization, with its counts, error, log lines and per-object errors.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};

use super::{StoreError, now_text};

/// A job's life: PENDING → RUNNING → COMPLETED | FAILED | CANCELLING → CANCELLED.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobStatus {
    Pending,
    Running,
    Completed,
    Failed,
    Cancelled,
    Cancelling,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Pending => "PENDING",
            JobStatus::Running => "RUNNING",
            JobStatus::Completed => "COMPLETED",
            JobStatus::Failed => "FAILED",
            JobStatus::Cancelled => "CANCELLED",
            JobStatus::Cancelling => "CANCELLING",
        }
    }

    pub fn parse(text: &str) -> JobStatus {
        match text {
            "PENDING" => JobStatus::Pending,
            "RUNNING" => JobStatus::Running,
            "COMPLETED" => JobStatus::Completed,
            "CANCELLED" => JobStatus::Cancelled,
            "CANCELLING" => JobStatus::Cancelling,
            _ => JobStatus::Failed,
        }
    }

    pub fn is_final(self) -> bool {
        matches!(self, JobStatus::Completed | JobStatus::Failed | JobStatus::Cancelled)
    }
}

/// What a run did, per record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub found: u64,
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub skipped: u64,
    pub deleted: u64,
    pub failed: u64,
}

/// One job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    pub id: String,
    pub synchronization: String,
    pub status: JobStatus,
    pub force_full_sync: bool,
    pub dry_run: bool,
    pub created_at: String,
    pub started_at: Option<String>,
    pub completed_at: Option<String>,
    pub duration_seconds: Option<f64>,
    #[serde(flatten)]
    pub counts: Counts,
    pub error: Option<String>,
    pub error_category: Option<String>,
}

/// A log line of a job.
#[derive(Debug, Clone, Serialize)]
pub struct LogLine {
    pub at: String,
    pub level: String,
    pub message: String,
}

/// A record that failed in a job.
#[derive(Debug, Clone, Serialize)]
pub struct ObjectError {
    pub origin_id: String,
    pub message: String,
}

/// The jobs database.
pub struct JobStore {
    conn: Mutex<Connection>,
}

const SCHEMA: &str = "
PRAGMA journal_mode = WAL;
PRAGMA synchronous = NORMAL;
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, synchronization TEXT NOT NULL, status TEXT NOT NULL,
    force_full_sync INTEGER NOT NULL, dry_run INTEGER NOT NULL, created_at TEXT NOT NULL,
    started_at TEXT, completed_at TEXT, duration_seconds REAL,
    found INTEGER NOT NULL DEFAULT 0, created INTEGER NOT NULL DEFAULT 0, updated INTEGER NOT NULL DEFAULT 0,
    unchanged INTEGER NOT NULL DEFAULT 0, skipped INTEGER NOT NULL DEFAULT 0, deleted INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0, error TEXT, error_category TEXT);
CREATE INDEX IF NOT EXISTS jobs_by_sync ON jobs(synchronization, created_at);
CREATE TABLE IF NOT EXISTS job_logs (seq INTEGER PRIMARY KEY, job_id TEXT NOT NULL, at TEXT NOT NULL, level TEXT NOT NULL, message TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS job_logs_by_job ON job_logs(job_id, seq);
CREATE TABLE IF NOT EXISTS job_errors (seq INTEGER PRIMARY KEY, job_id TEXT NOT NULL, origin_id TEXT NOT NULL, message TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS job_errors_by_job ON job_errors(job_id, seq);
CREATE TABLE IF NOT EXISTS cursors (synchronization TEXT PRIMARY KEY, value TEXT NOT NULL, fingerprint TEXT NOT NULL, saved_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS recovery (synchronization TEXT PRIMARY KEY, since TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS job_events (seq INTEGER PRIMARY KEY, job_id TEXT NOT NULL, synchronization TEXT NOT NULL, status TEXT NOT NULL, at TEXT);
CREATE TABLE IF NOT EXISTS job_links (job_id TEXT PRIMARY KEY, parent_id TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS job_links_by_parent ON job_links(parent_id);
CREATE TRIGGER IF NOT EXISTS job_ended AFTER UPDATE OF status ON jobs
    WHEN NEW.status IN ('COMPLETED', 'FAILED') AND OLD.status NOT IN ('COMPLETED', 'FAILED')
    BEGIN INSERT INTO job_events (job_id, synchronization, status, at) VALUES (NEW.id, NEW.synchronization, NEW.status, NEW.completed_at); END;
";

/// The upper bounds (seconds) of the run-duration histogram `/metrics` shows.
pub const DURATION_BUCKETS: [f64; 8] = [1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 14400.0];

/// The outcomes [`JobTotals::records`] counts, in order.
pub const RECORD_OUTCOMES: [&str; 7] = ["found", "created", "updated", "unchanged", "skipped", "deleted", "failed"];

/// The jobs of one synchronization in one status, summed.
#[derive(Debug, Clone)]
pub struct JobTotals {
    pub synchronization: String,
    pub status: String,
    pub jobs: u64,
    /// Records by outcome, as [`RECORD_OUTCOMES`] names them.
    pub records: [u64; 7],
    /// How many of the jobs have a duration, and its sum.
    pub timed: u64,
    pub seconds: f64,
    /// How many timed jobs ran at most each of [`DURATION_BUCKETS`].
    pub buckets: Vec<u64>,
    pub last_completed: Option<String>,
}

/// A job that ended, COMPLETED or FAILED: numbered in the update that ended it (a trigger), so a
/// webhook reading them in order misses none, whichever process ended the job.
#[derive(Debug, Clone, Serialize)]
pub struct JobEvent {
    pub seq: i64,
    pub job: String,
    pub synchronization: String,
    pub status: String,
    pub at: Option<String>,
}

const ORPHAN_ERROR: &str = "the process running this job stopped before it finished";

/// Where an incremental source stopped reading, and the mapping it was read for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedCursor {
    pub value: String,
    /// The run's fingerprint (mapping and filter): records read under another one must be read again.
    pub fingerprint: String,
}

const COLUMNS: &str = "id, synchronization, status, force_full_sync, dry_run, created_at, started_at, completed_at, duration_seconds, \
found, created, updated, unchanged, skipped, deleted, failed, error, error_category";

fn row_to_job(row: &Row) -> rusqlite::Result<JobRecord> {
    Ok(JobRecord {
        id: row.get(0)?,
        synchronization: row.get(1)?,
        status: JobStatus::parse(&row.get::<_, String>(2)?),
        force_full_sync: row.get(3)?,
        dry_run: row.get(4)?,
        created_at: row.get(5)?,
        started_at: row.get(6)?,
        completed_at: row.get(7)?,
        duration_seconds: row.get(8)?,
        counts: Counts {
            found: row.get(9)?,
            created: row.get(10)?,
            updated: row.get(11)?,
            unchanged: row.get(12)?,
            skipped: row.get(13)?,
            deleted: row.get(14)?,
            failed: row.get(15)?,
        },
        error: row.get(16)?,
        error_category: row.get(17)?,
    })
}

impl JobStore {
    pub fn open(path: &Path) -> Result<JobStore, StoreError> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.execute_batch(SCHEMA)?;
        Ok(JobStore { conn: Mutex::new(conn) })
    }

    fn with<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T, StoreError> {
        let conn = self.conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        Ok(f(&conn)?)
    }

    /// Records that `job` is a follow-up of `parent` (it ran because `parent` completed).
    pub fn link(&self, job: &str, parent: &str) -> Result<(), StoreError> {
        self.with(|c| c.execute("INSERT OR REPLACE INTO job_links (job_id, parent_id) VALUES (?1, ?2)", params![job, parent]).map(drop))
    }

    /// The job `job` follows up on, if any.
    pub fn parent_of(&self, job: &str) -> Result<Option<String>, StoreError> {
        self.with(|c| c.query_row("SELECT parent_id FROM job_links WHERE job_id = ?1", [job], |r| r.get(0)).optional())
    }

    /// The follow-up jobs `job` started, in the order they were recorded.
    pub fn follow_ups_of(&self, job: &str) -> Result<Vec<String>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare("SELECT job_id FROM job_links WHERE parent_id = ?1 ORDER BY rowid")?;
            stmt.query_map([job], |r| r.get(0))?.collect()
        })
    }

    /// Jobs that ended after event `seq`, in order.
    pub fn job_events_after(&self, seq: i64, limit: usize) -> Result<Vec<JobEvent>, StoreError> {
        self.with(|c| {
            let mut stmt =
                c.prepare_cached("SELECT seq, job_id, synchronization, status, at FROM job_events WHERE seq > ?1 ORDER BY seq LIMIT ?2")?;
            let rows = stmt.query_map(params![seq, limit as i64], |r| {
                Ok(JobEvent { seq: r.get(0)?, job: r.get(1)?, synchronization: r.get(2)?, status: r.get(3)?, at: r.get(4)? })
            })?;
            rows.collect()
        })
    }

    /// The number of the newest job event (0: none yet).
    pub fn last_job_event(&self) -> Result<i64, StoreError> {
        self.with(|c| c.query_row("SELECT coalesce(max(seq), 0) FROM job_events", [], |r| r.get(0)))
    }

    /// How many runs of `synchronization` failed in a row, up to and with job event `seq`.
    pub fn failures_in_a_row(&self, synchronization: &str, seq: i64) -> Result<u32, StoreError> {
        self.with(|c| {
            let mut stmt =
                c.prepare_cached("SELECT status FROM job_events WHERE synchronization = ?1 AND seq <= ?2 ORDER BY seq DESC LIMIT 1000")?;
            let statuses = stmt.query_map(params![synchronization, seq], |r| r.get::<_, String>(0))?;
            let mut failed = 0;
            for status in statuses {
                if status? != "FAILED" {
                    break;
                }
                failed += 1;
            }
            Ok(failed)
        })
    }

    /// Records a new job in `status` (RUNNING for a foreground run, PENDING for a queued one).
    pub fn create(&self, synchronization: &str, status: JobStatus, force_full_sync: bool, dry_run: bool) -> Result<JobRecord, StoreError> {
        let now = now_text();
        let job = JobRecord {
            id: uuid::Uuid::now_v7().to_string(),
            synchronization: synchronization.to_string(),
            status,
            force_full_sync,
            dry_run,
            created_at: now.clone(),
            started_at: (status == JobStatus::Running).then_some(now),
            completed_at: None,
            duration_seconds: None,
            counts: Counts::default(),
            error: None,
            error_category: None,
        };
        self.with(|c| {
            c.execute(
                "INSERT INTO jobs (id, synchronization, status, force_full_sync, dry_run, created_at, started_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![job.id, job.synchronization, job.status.as_str(), job.force_full_sync, job.dry_run, job.created_at, job.started_at],
            )
        })?;
        Ok(job)
    }

    /// Writes the job's status, times, counts and error.
    pub fn update(&self, job: &JobRecord) -> Result<(), StoreError> {
        let c = &job.counts;
        self.with(|conn| {
            conn.execute(
                "UPDATE jobs SET status = ?2, started_at = ?3, completed_at = ?4, duration_seconds = ?5, found = ?6, created = ?7, \
                 updated = ?8, unchanged = ?9, skipped = ?10, deleted = ?11, failed = ?12, error = ?13, error_category = ?14 WHERE id = ?1",
                params![
                    job.id,
                    job.status.as_str(),
                    job.started_at,
                    job.completed_at,
                    job.duration_seconds,
                    c.found,
                    c.created,
                    c.updated,
                    c.unchanged,
                    c.skipped,
                    c.deleted,
                    c.failed,
                    job.error,
                    job.error_category
                ],
            )
        })?;
        Ok(())
    }

    /// A job by id, or by a unique prefix of its id.
    pub fn get(&self, id: &str) -> Result<JobRecord, StoreError> {
        let pattern = format!("{}%", id.replace(['%', '_'], ""));
        let found: Vec<JobRecord> = self.with(|c| {
            let mut stmt = c.prepare(&format!("SELECT {COLUMNS} FROM jobs WHERE id LIKE ?1 ORDER BY created_at DESC LIMIT 2"))?;
            stmt.query_map([pattern], row_to_job)?.collect()
        })?;
        match found.len() {
            1 => Ok(found.into_iter().next().expect("one job")),
            0 => Err(StoreError::NotFound(format!("no job with id `{id}`"))),
            _ => Err(StoreError::NotFound(format!("`{id}` matches more than one job; give more of the id"))),
        }
    }

    /// The newest jobs first; of one synchronization when given.
    pub fn list(&self, synchronization: Option<&str>, limit: usize) -> Result<Vec<JobRecord>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {COLUMNS} FROM jobs WHERE (?1 IS NULL OR synchronization = ?1) ORDER BY created_at DESC, id DESC LIMIT ?2"
            ))?;
            stmt.query_map(params![synchronization, limit as i64], row_to_job)?.collect()
        })
    }

    pub fn log(&self, job: &str, level: &str, message: &str) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute("INSERT INTO job_logs (job_id, at, level, message) VALUES (?1, ?2, ?3, ?4)", params![job, now_text(), level, message])
        })?;
        Ok(())
    }

    pub fn logs(&self, job: &str) -> Result<Vec<LogLine>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare("SELECT at, level, message FROM job_logs WHERE job_id = ?1 ORDER BY seq")?;
            stmt.query_map([job], |r| Ok(LogLine { at: r.get(0)?, level: r.get(1)?, message: r.get(2)? }))?.collect()
        })
    }

    /// Records per-object errors of a job in one transaction.
    pub fn object_errors(&self, job: &str, errors: &[ObjectError]) -> Result<(), StoreError> {
        if errors.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let tx = conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached("INSERT INTO job_errors (job_id, origin_id, message) VALUES (?1, ?2, ?3)")?;
            for error in errors {
                stmt.execute(params![job, error.origin_id, error.message])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    pub fn errors(&self, job: &str, limit: usize) -> Result<Vec<ObjectError>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare("SELECT origin_id, message FROM job_errors WHERE job_id = ?1 ORDER BY seq LIMIT ?2")?;
            stmt.query_map(params![job, limit as i64], |r| Ok(ObjectError { origin_id: r.get(0)?, message: r.get(1)? }))?.collect()
        })
    }

    /// Called by a run holding its synchronization's lock, before it starts: jobs of the
    /// synchronization still marked active (but `own`) were cut off by a process that died, so they
    /// are marked FAILED and the synchronization is marked for recovery. True while recovery is due:
    /// the run must adopt what the interrupted runs wrote, and call [`JobStore::recovered`] once its
    /// contracts hold it.
    pub fn take_over(&self, synchronization: &str, own: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let tx = conn.transaction()?;
        let cut_off = tx.execute(
            "UPDATE jobs SET status = 'FAILED', completed_at = ?1, error = ?4, error_category = 'internal' \
             WHERE synchronization = ?2 AND id != ?3 AND status IN ('PENDING', 'RUNNING', 'CANCELLING')",
            params![now_text(), synchronization, own, ORPHAN_ERROR],
        )?;
        if cut_off > 0 {
            tx.execute("INSERT OR IGNORE INTO recovery (synchronization, since) VALUES (?1, ?2)", params![synchronization, now_text()])?;
        }
        let due = tx.query_row("SELECT COUNT(*) FROM recovery WHERE synchronization = ?1", [synchronization], |r| r.get::<_, i64>(0))? > 0;
        tx.commit()?;
        Ok(due)
    }

    /// Marks `synchronization` for recovery: a run of it stopped (a panic) without saving contracts
    /// for everything it wrote, so the next run adopts the target's objects first.
    pub fn needs_recovery(&self, synchronization: &str) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute("INSERT OR IGNORE INTO recovery (synchronization, since) VALUES (?1, ?2)", params![synchronization, now_text()])
        })?;
        Ok(())
    }

    /// The contracts of `synchronization` hold what interrupted runs wrote: no recovery is due.
    pub fn recovered(&self, synchronization: &str) -> Result<(), StoreError> {
        self.with(|c| c.execute("DELETE FROM recovery WHERE synchronization = ?1", [synchronization]))?;
        Ok(())
    }

    /// The synchronizations with jobs still marked active (to be taken over under their locks).
    pub fn active_synchronizations(&self) -> Result<Vec<String>, StoreError> {
        self.with(|c| {
            let mut stmt =
                c.prepare("SELECT DISTINCT synchronization FROM jobs WHERE status IN ('PENDING', 'RUNNING', 'CANCELLING') ORDER BY 1")?;
            stmt.query_map([], |r| r.get(0))?.collect()
        })
    }

    /// How many jobs there are in each status.
    pub fn status_counts(&self) -> Result<Vec<(String, u64)>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare("SELECT status, COUNT(*) FROM jobs GROUP BY status ORDER BY status")?;
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect()
        })
    }

    /// Per synchronization and status: how many jobs, the records they counted and how long they ran
    /// (for `/metrics`).
    pub fn totals(&self) -> Result<Vec<JobTotals>, StoreError> {
        let buckets: Vec<String> = DURATION_BUCKETS.iter().map(|b| format!("SUM(duration_seconds <= {b})")).collect();
        self.with(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT synchronization, status, COUNT(*), SUM(found), SUM(created), SUM(updated), SUM(unchanged), SUM(skipped), \
                 SUM(deleted), SUM(failed), SUM(duration_seconds IS NOT NULL), TOTAL(duration_seconds), MAX(completed_at), {} \
                 FROM jobs GROUP BY synchronization, status ORDER BY synchronization, status",
                buckets.join(", ")
            ))?;
            stmt.query_map([], |r| {
                let n = |i: usize| -> rusqlite::Result<u64> { Ok(r.get::<_, Option<i64>>(i)?.unwrap_or(0).max(0) as u64) };
                Ok(JobTotals {
                    synchronization: r.get(0)?,
                    status: r.get(1)?,
                    jobs: n(2)?,
                    records: [n(3)?, n(4)?, n(5)?, n(6)?, n(7)?, n(8)?, n(9)?],
                    timed: n(10)?,
                    seconds: r.get(11)?,
                    last_completed: r.get(12)?,
                    buckets: (0..DURATION_BUCKETS.len()).map(|i| n(13 + i)).collect::<rusqlite::Result<_>>()?,
                })
            })?
            .collect()
        })
    }

    /// The newest failed jobs.
    pub fn recent_failures(&self, limit: usize) -> Result<Vec<JobRecord>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare(&format!("SELECT {COLUMNS} FROM jobs WHERE status = 'FAILED' ORDER BY created_at DESC LIMIT ?1"))?;
            stmt.query_map([limit as i64], row_to_job)?.collect()
        })
    }

    /// When the newest job of `synchronization` was created.
    pub fn last_created(&self, synchronization: &str) -> Result<Option<String>, StoreError> {
        self.with(|c| c.query_row("SELECT MAX(created_at) FROM jobs WHERE synchronization = ?1", [synchronization], |r| r.get(0)))
    }

    /// The cursor the last complete run of `synchronization` saved.
    pub fn cursor(&self, synchronization: &str) -> Result<Option<SavedCursor>, StoreError> {
        self.with(|c| {
            c.query_row("SELECT value, fingerprint FROM cursors WHERE synchronization = ?1", [synchronization], |row| {
                Ok(SavedCursor { value: row.get(0)?, fingerprint: row.get(1)? })
            })
            .optional()
        })
    }

    pub fn save_cursor(&self, synchronization: &str, cursor: &SavedCursor) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "INSERT INTO cursors (synchronization, value, fingerprint, saved_at) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (synchronization) DO UPDATE SET value = excluded.value, fingerprint = excluded.fingerprint, saved_at = excluded.saved_at",
                params![synchronization, cursor.value, cursor.fingerprint, now_text()],
            )
            .map(|_| ())
        })
    }

    /// The job of `synchronization` currently running, if any.
    pub fn active(&self, synchronization: &str) -> Result<Option<JobRecord>, StoreError> {
        self.with(|c| {
            c.query_row(
                &format!(
                    "SELECT {COLUMNS} FROM jobs WHERE synchronization = ?1 AND status IN ('PENDING', 'RUNNING', 'CANCELLING') LIMIT 1"
                ),
                [synchronization],
                row_to_job,
            )
            .optional()
        })
    }
}
