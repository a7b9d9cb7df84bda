//! The embedded register: objects with their provenance and an audit trail of every create, update
//! and delete, in SQLite (readable with any SQLite client). Writes come in batches, one transaction
//! each.

use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension, Transaction};
use serde::Serialize;

use super::StoreError;

/// An object to create or update.
pub struct ObjectWrite<'a> {
    pub id: &'a str,
    pub register: &'a str,
    pub schema: &'a str,
    pub synchronization: &'a str,
    pub source: &'a str,
    pub origin_id: &'a str,
    pub object: &'a str,
}

/// What an upsert did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    Created,
    Updated,
}

/// A stored object.
#[derive(Debug, Clone, Serialize)]
pub struct StoredObject {
    pub id: String,
    pub register: String,
    pub schema: String,
    pub synchronization: Option<String>,
    pub source: Option<String>,
    pub origin_id: Option<String>,
    pub object: serde_json::Value,
    pub created_at: String,
    pub updated_at: String,
    pub deleted_at: Option<String>,
}

/// One audit trail entry.
#[derive(Debug, Clone, Serialize)]
pub struct AuditEntry {
    pub action: String,
    pub job: Option<String>,
    pub synchronization: Option<String>,
    pub at: String,
}

const SCHEMA: &str = "
PRAGMA journal_mode = WAL;
PRAGMA synchronous = NORMAL;
CREATE TABLE IF NOT EXISTS objects (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    register TEXT NOT NULL, schema TEXT NOT NULL,
    synchronization TEXT, source TEXT, origin_id TEXT,
    object TEXT NOT NULL,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL, deleted_at TEXT,
    created_job TEXT, updated_job TEXT);
CREATE INDEX IF NOT EXISTS objects_by_schema ON objects(register, schema, seq);
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY, object_seq INTEGER NOT NULL, action TEXT NOT NULL,
    job TEXT, synchronization TEXT, at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS audit_by_object ON audit(object_seq);
";

/// The register database.
pub struct RegisterStore {
    conn: Connection,
}

impl RegisterStore {
    pub fn open(path: &Path) -> Result<RegisterStore, StoreError> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(30))?;
        conn.execute_batch(SCHEMA)?;
        // Checkpoints are where WAL mode syncs to disk (synchronous = NORMAL keeps the database
        // consistent through crashes): fewer, larger ones make bulk loads about 1.5× faster.
        conn.execute_batch("PRAGMA cache_size = -65536; PRAGMA wal_autocheckpoint = 20000;")?;
        Ok(RegisterStore { conn })
    }

    /// Starts a batch of writes by `job`; nothing is visible until [`Batch::commit`].
    pub fn batch(&mut self, job: &str, now: &str) -> Result<Batch<'_>, StoreError> {
        Ok(Batch { tx: self.conn.transaction()?, job: job.to_string(), now: now.to_string() })
    }

    /// Objects of `register/schema`, oldest first; `filters` are top-level fields and the text their
    /// values must equal (`status` = `available`).
    pub fn list(&self, register: &str, schema: &str, filters: &[(String, String)], limit: usize, offset: usize) -> Result<Vec<StoredObject>, StoreError> {
        let (clause, values) = filter_clause(register, schema, filters);
        let mut stmt = self.conn.prepare(&format!(
            "SELECT id, register, schema, synchronization, source, origin_id, object, created_at, updated_at, deleted_at \
             FROM objects WHERE {clause} ORDER BY seq LIMIT {limit} OFFSET {offset}"
        ))?;
        let rows = stmt.query_map(rusqlite::params_from_iter(values), row_to_object)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Number of live objects of `register/schema` matching `filters`.
    pub fn count(&self, register: &str, schema: &str, filters: &[(String, String)]) -> Result<u64, StoreError> {
        let (clause, values) = filter_clause(register, schema, filters);
        Ok(self.conn.query_row(&format!("SELECT COUNT(*) FROM objects WHERE {clause}"), rusqlite::params_from_iter(values), |r| r.get(0))?)
    }

    /// An object by id (or unique id prefix), with its audit trail.
    pub fn show(&self, id: &str) -> Result<(StoredObject, Vec<AuditEntry>), StoreError> {
        let pattern = format!("{}%", id.replace(['%', '_'], ""));
        let mut stmt = self.conn.prepare(
            "SELECT id, register, schema, synchronization, source, origin_id, object, created_at, updated_at, deleted_at, seq \
             FROM objects WHERE id LIKE ?1 LIMIT 2",
        )?;
        let found: Vec<(StoredObject, i64)> =
            stmt.query_map([pattern], |r| Ok((row_to_object(r)?, r.get(10)?)))?.collect::<Result<_, _>>()?;
        let (object, seq) = match found.len() {
            1 => found.into_iter().next().expect("one object"),
            0 => return Err(StoreError::NotFound(format!("no object with id `{id}`"))),
            _ => return Err(StoreError::NotFound(format!("`{id}` matches more than one object; give more of the id"))),
        };
        let mut stmt = self.conn.prepare("SELECT action, job, synchronization, at FROM audit WHERE object_seq = ?1 ORDER BY seq")?;
        let mut trail: Vec<AuditEntry> = stmt
            .query_map([seq], |r| Ok(AuditEntry { action: r.get(0)?, job: r.get(1)?, synchronization: r.get(2)?, at: r.get(3)? }))?
            .collect::<Result<_, _>>()?;
        // Registers written before creates were kept on the object row hold a create audit row.
        if !trail.iter().any(|e| e.action == "create") {
            let created_job: Option<String> = self.conn.query_row("SELECT created_job FROM objects WHERE seq = ?1", [seq], |r| r.get(0))?;
            let entry = AuditEntry { action: "create".into(), job: created_job, synchronization: object.synchronization.clone(), at: object.created_at.clone() };
            trail.insert(0, entry);
        }
        Ok((object, trail))
    }

    /// The origin ids of a synchronization's live objects (for adopting after an interrupted run).
    pub fn origin_ids_of(&self, synchronization: &str) -> Result<Vec<String>, StoreError> {
        let mut stmt = self.conn.prepare("SELECT origin_id FROM objects WHERE synchronization = ?1 AND deleted_at IS NULL")?;
        let rows = stmt.query_map([synchronization], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Every live object of a synchronization as (origin id, object), for tests and checks.
    pub fn objects_of(&self, synchronization: &str) -> Result<Vec<(String, serde_json::Value)>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT origin_id, object FROM objects WHERE synchronization = ?1 AND deleted_at IS NULL ORDER BY origin_id",
        )?;
        let rows = stmt.query_map([synchronization], |r| {
            let text: String = r.get(1)?;
            Ok((r.get::<_, String>(0)?, serde_json::from_str(&text).unwrap_or(serde_json::Value::Null)))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

/// The WHERE clause of a listing and its parameters; field names go in as JSON paths, never as SQL.
fn filter_clause(register: &str, schema: &str, filters: &[(String, String)]) -> (String, Vec<String>) {
    let mut clause = String::from("register = ?1 AND schema = ?2 AND deleted_at IS NULL");
    let mut values = vec![register.to_string(), schema.to_string()];
    for (field, value) in filters {
        values.push(format!("$.\"{}\"", field.replace('"', "")));
        values.push(value.clone());
        clause.push_str(&format!(" AND CAST(json_extract(object, ?{}) AS TEXT) = ?{}", values.len() - 1, values.len()));
    }
    (clause, values)
}

fn row_to_object(r: &rusqlite::Row) -> rusqlite::Result<StoredObject> {
    let text: String = r.get(6)?;
    Ok(StoredObject {
        id: r.get(0)?,
        register: r.get(1)?,
        schema: r.get(2)?,
        synchronization: r.get(3)?,
        source: r.get(4)?,
        origin_id: r.get(5)?,
        object: serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
        created_at: r.get(7)?,
        updated_at: r.get(8)?,
        deleted_at: r.get(9)?,
    })
}

/// A transaction of register writes.
pub struct Batch<'c> {
    tx: Transaction<'c>,
    job: String,
    now: String,
}

impl Batch<'_> {
    /// Creates or updates an object (keyed by its deterministic id), un-deleting it if it was
    /// soft-deleted, and records the change in the audit trail.
    pub fn upsert(&mut self, w: &ObjectWrite) -> Result<Written, StoreError> {
        let (seq, created): (i64, bool) = self.tx.prepare_cached(
            "INSERT INTO objects (id, register, schema, synchronization, source, origin_id, object, created_at, updated_at, created_job, updated_job) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8, ?9, ?9) \
             ON CONFLICT(id) DO UPDATE SET register = excluded.register, schema = excluded.schema, synchronization = excluded.synchronization, \
             source = excluded.source, origin_id = excluded.origin_id, object = excluded.object, updated_at = excluded.updated_at, \
             updated_job = excluded.updated_job, deleted_at = NULL \
             RETURNING seq, created_job = ?9",
        )?
        .query_row(params![w.id, w.register, w.schema, w.synchronization, w.source, w.origin_id, w.object, self.now, self.job], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
        if created {
            // The object row itself records its creation (created_at, created_job): `show` puts it at
            // the head of the trail. An audit row per create cost a sixth of a bulk load.
            return Ok(Written::Created);
        }
        self.audit(seq, "update", w.synchronization)?;
        Ok(Written::Updated)
    }

    /// Deletes an object (or marks it deleted); returns whether it existed.
    pub fn delete(&mut self, id: &str, synchronization: &str, soft: bool) -> Result<bool, StoreError> {
        let seq: Option<i64> = if soft {
            self.tx
                .prepare_cached("UPDATE objects SET deleted_at = ?2, updated_job = ?3 WHERE id = ?1 AND deleted_at IS NULL RETURNING seq")?
                .query_row(params![id, self.now, self.job], |r| r.get(0))
                .optional()?
        } else {
            self.tx.prepare_cached("DELETE FROM objects WHERE id = ?1 RETURNING seq")?.query_row([id], |r| r.get(0)).optional()?
        };
        if let Some(seq) = seq {
            self.audit(seq, if soft { "soft-delete" } else { "delete" }, synchronization)?;
        }
        Ok(seq.is_some())
    }

    fn audit(&mut self, seq: i64, action: &str, synchronization: &str) -> Result<(), StoreError> {
        self.tx
            .prepare_cached("INSERT INTO audit (object_seq, action, job, synchronization, at) VALUES (?1, ?2, ?3, ?4, ?5)")?
            .execute(params![seq, action, self.job, synchronization, self.now])?;
        Ok(())
    }

    pub fn commit(self) -> Result<(), StoreError> {
        self.tx.commit()?;
        Ok(())
    }
}
