//! The embedded register: objects with their provenance and an audit trail of every create, update
//! and delete, in SQLite (read `objects_view` with any SQLite client; `schema.rs` has the tables).
//! Writes come in batches, one transaction each.

mod batch;
mod feed;
mod schema;

use std::path::Path;

use rusqlite::{Connection, params};
use serde::Serialize;
use uuid::Uuid;

use super::StoreError;
pub use batch::Batch;
pub use feed::{Change, ChangePage, ChangeQuery, SYNC_ORIGIN};

/// An object to create or update, in the collection (register, schema, synchronization, source) it
/// belongs to (see [`Batch::collection`]).
pub struct ObjectWrite<'a> {
    pub id: Uuid,
    pub collection: i64,
    pub origin_id: &'a str,
    pub object: &'a str,
}

/// What a write did.
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

/// The register database.
pub struct RegisterStore {
    conn: Connection,
}

impl RegisterStore {
    pub fn open(path: &Path) -> Result<RegisterStore, StoreError> {
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(30))?;
        conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")?;
        schema::prepare(&mut conn)?;
        // Checkpoints are where WAL mode syncs to disk (synchronous = NORMAL keeps the database
        // consistent through crashes): fewer, larger ones make bulk loads about 1.5× faster. A 32 MB
        // page cache loads 1M and 3M objects as fast as 64 MB did (writes come in id order).
        conn.execute_batch("PRAGMA cache_size = -32768; PRAGMA wal_autocheckpoint = 20000;")?;
        Ok(RegisterStore { conn })
    }

    /// Starts a batch of writes by `job` at `now` (milliseconds since the epoch); nothing is visible
    /// until [`Batch::commit`].
    pub fn batch(&mut self, job: &str, now: i64) -> Result<Batch<'_>, StoreError> {
        let tx = self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.prepare_cached("INSERT OR IGNORE INTO jobs (id) VALUES (?1)")?.execute([job])?;
        let job = tx.prepare_cached("SELECT ref FROM jobs WHERE id = ?1")?.query_row([job], |r| r.get(0))?;
        Ok(Batch::new(tx, job, now))
    }

    /// Objects of `register/schema`, oldest first; `filters` are top-level fields and the text their
    /// values must equal (`status` = `available`).
    pub fn list(
        &self,
        register: &str,
        schema: &str,
        filters: &[(String, String)],
        limit: usize,
        offset: usize,
    ) -> Result<Vec<StoredObject>, StoreError> {
        let (clause, values) = filter_clause(register, schema, filters);
        let mut stmt =
            self.conn.prepare(&format!("SELECT {SHOWN} FROM objects_view WHERE {clause} ORDER BY seq LIMIT {limit} OFFSET {offset}"))?;
        let rows = stmt.query_map(rusqlite::params_from_iter(values), row_to_object)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Up to `limit` live objects of `register/schema` after sequence number `after`, in order, each
    /// with its sequence number: pages that cost the same however deep into the schema they are.
    pub fn page_after(&self, register: &str, schema: &str, after: i64, limit: usize) -> Result<Vec<(i64, StoredObject)>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {SHOWN}, seq FROM objects_view WHERE register = ?1 AND schema = ?2 AND deleted_at IS NULL AND seq > ?3 ORDER BY seq LIMIT ?4"
        ))?;
        let rows = stmt.query_map(params![register, schema, after, limit as i64], |r| Ok((r.get(10)?, row_to_object(r)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Every (register, schema) that has held objects.
    pub fn schemas(&self) -> Result<Vec<(String, String)>, StoreError> {
        let mut stmt = self.conn.prepare("SELECT DISTINCT register, schema FROM collections ORDER BY register, schema")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Number of live objects of `register/schema` matching `filters`.
    pub fn count(&self, register: &str, schema: &str, filters: &[(String, String)]) -> Result<u64, StoreError> {
        let (clause, values) = filter_clause(register, schema, filters);
        Ok(self
            .conn
            .query_row(&format!("SELECT COUNT(*) FROM objects_view WHERE {clause}"), rusqlite::params_from_iter(values), |r| r.get(0))?)
    }

    /// An object by id (or unique id prefix), with its audit trail.
    pub fn show(&self, id: &str) -> Result<(StoredObject, Vec<AuditEntry>), StoreError> {
        let not_found = || StoreError::NotFound(format!("no object with id `{id}`"));
        let (low, high) = id_range(id).ok_or_else(not_found)?;
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {SHOWN}, unhex(replace(id, '-', '')) FROM objects_view WHERE seq IN (SELECT seq FROM objects WHERE id BETWEEN ?1 AND ?2 LIMIT 2)"
        ))?;
        let found: Vec<(StoredObject, Vec<u8>)> =
            stmt.query_map(params![low, high], |r| Ok((row_to_object(r)?, r.get(10)?)))?.collect::<Result<_, _>>()?;
        let (object, blob) = match found.len() {
            1 => found.into_iter().next().expect("one object"),
            0 => return Err(not_found()),
            _ => return Err(StoreError::NotFound(format!("`{id}` matches more than one object; give more of the id"))),
        };
        let mut stmt = self.conn.prepare(
            "SELECT action, (SELECT id FROM jobs WHERE ref = audit.job), strftime('%Y-%m-%dT%H:%M:%fZ', at / 1000.0, 'unixepoch') \
             FROM audit WHERE object_id = ?1 ORDER BY at, seq",
        )?;
        let trail: Vec<AuditEntry> = stmt
            .query_map([blob], |r| {
                Ok(AuditEntry { action: r.get(0)?, job: r.get(1)?, synchronization: object.synchronization.clone(), at: r.get(2)? })
            })?
            .collect::<Result<_, _>>()?;
        Ok((object, trail))
    }

    /// The origin ids of a synchronization's live objects (for adopting after an interrupted run).
    pub fn origin_ids_of(&self, synchronization: &str) -> Result<Vec<String>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT origin_id FROM objects WHERE collection IN (SELECT ref FROM collections WHERE synchronization = ?1) AND deleted_at IS NULL",
        )?;
        let rows = stmt.query_map([synchronization], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Every live object of a synchronization as (origin id, object), for tests and checks.
    pub fn objects_of(&self, synchronization: &str) -> Result<Vec<(String, serde_json::Value)>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT origin_id, object FROM objects WHERE collection IN (SELECT ref FROM collections WHERE synchronization = ?1) \
             AND deleted_at IS NULL ORDER BY origin_id",
        )?;
        let rows = stmt.query_map([synchronization], |r| {
            let text: String = r.get(1)?;
            Ok((r.get::<_, String>(0)?, stored_object(&text).unwrap_or(serde_json::Value::Null)))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

/// An object as the register stored it: its depth was bounded by its source's `maxDepth` when written.
fn stored_object(text: &str) -> Option<serde_json::Value> {
    crate::limits::parse_checked_depth(text.as_bytes()).ok()
}

/// The columns of `objects_view` that make a [`StoredObject`], in the order `row_to_object` reads them.
const SHOWN: &str = "id, register, schema, synchronization, source, origin_id, object, created_at, updated_at, deleted_at";

/// The ids an id or id prefix (hex digits, dashes ignored) stands for, as the BLOB range they span.
fn id_range(prefix: &str) -> Option<(Vec<u8>, Vec<u8>)> {
    let hex: String = prefix.chars().filter(|c| *c != '-').collect::<String>().to_ascii_lowercase();
    if hex.is_empty() || hex.len() > 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let pad = |digit: char| -> Option<Vec<u8>> {
        let full: String = hex.chars().chain(std::iter::repeat_n(digit, 32 - hex.len())).collect();
        Some(Uuid::parse_str(&full).ok()?.as_bytes().to_vec())
    };
    Some((pad('0')?, pad('f')?))
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
    let named = |i| -> rusqlite::Result<Option<String>> { Ok(r.get::<_, Option<String>>(i)?.filter(|s| !s.is_empty())) };
    Ok(StoredObject {
        id: r.get(0)?,
        register: r.get(1)?,
        schema: r.get(2)?,
        synchronization: named(3)?,
        source: named(4)?,
        origin_id: r.get(5)?,
        object: stored_object(&text).unwrap_or(serde_json::Value::String(text)),
        created_at: r.get(7)?,
        updated_at: r.get(8)?,
        deleted_at: r.get(9)?,
    })
}

#[cfg(test)]
mod tests;
