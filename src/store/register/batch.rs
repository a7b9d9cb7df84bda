//! A transaction of register writes.

use rusqlite::{OptionalExtension, Transaction, params};
use uuid::Uuid;

use super::{ObjectWrite, Written};
use crate::store::StoreError;

/// Writes by one job, committed together. Writes go fastest in id order: SQLite then walks the id
/// index from one end to the other instead of jumping around it.
pub struct Batch<'c> {
    tx: Transaction<'c>,
    job: i64,
    now: i64,
}

impl<'c> Batch<'c> {
    pub(super) fn new(tx: Transaction<'c>, job: i64, now: i64) -> Batch<'c> {
        Batch { tx, job, now }
    }

    /// The number standing for objects of `register/schema` written by `synchronization` from `source`
    /// (made with this transaction: a dry run leaves none behind).
    pub fn collection(&mut self, register: &str, schema: &str, synchronization: &str, source: &str) -> Result<i64, StoreError> {
        let key = params![register, schema, synchronization, source];
        self.tx.execute("INSERT OR IGNORE INTO collections (register, schema, synchronization, source) VALUES (?1, ?2, ?3, ?4)", key)?;
        let find = "SELECT ref FROM collections WHERE register = ?1 AND schema = ?2 AND synchronization = ?3 AND source = ?4";
        Ok(self.tx.query_row(find, key, |r| r.get(0))?)
    }

    /// Creates an object the caller believes is new; when it exists after all (written by a run cut
    /// off before its contracts were saved), updates it instead.
    pub fn create(&mut self, w: &ObjectWrite) -> Result<Written, StoreError> {
        if self.insert(w)? {
            return Ok(Written::Created);
        }
        self.update(w)
    }

    /// Updates an object (un-deleting it if it was soft-deleted) and records the change in the audit
    /// trail; creates it when it does not exist.
    pub fn update(&mut self, w: &ObjectWrite) -> Result<Written, StoreError> {
        let seq: Option<i64> = self
            .tx
            .prepare_cached(
                "UPDATE objects SET collection = ?2, origin_id = ?3, object = ?4, updated_at = ?5, updated_job = ?6, deleted_at = NULL \
                 WHERE id = ?1 RETURNING seq",
            )?
            .query_row(params![w.id.as_bytes(), w.collection, w.origin_id, w.object, self.now, self.job], |r| r.get(0))
            .optional()?;
        match seq {
            Some(seq) => {
                self.audit(seq, w.collection, &w.id, "update")?;
                Ok(Written::Updated)
            }
            None if self.insert(w)? => Ok(Written::Created),
            None => Err(StoreError::NotFound(format!("object {} is neither stored nor new", w.id))),
        }
    }

    /// Inserts an object; false when its id is taken. Its audit row numbers the create in the change
    /// feed (and costs about a sixth of a bulk load: the feed needs it).
    fn insert(&mut self, w: &ObjectWrite) -> Result<bool, StoreError> {
        let inserted = self
            .tx
            .prepare_cached(
                "INSERT INTO objects (id, collection, origin_id, object, created_at, updated_at, created_job, updated_job) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6, ?6) RETURNING seq",
            )?
            .query_row(params![w.id.as_bytes(), w.collection, w.origin_id, w.object, self.now, self.job], |r| r.get(0));
        match inserted {
            Ok(seq) => {
                self.audit(seq, w.collection, &w.id, "create")?;
                Ok(true)
            }
            Err(rusqlite::Error::SqliteFailure(e, _)) if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes an object (or marks it deleted); returns whether it existed.
    pub fn delete(&mut self, id: &Uuid, soft: bool) -> Result<bool, StoreError> {
        let both = |r: &rusqlite::Row| Ok((r.get(0)?, r.get(1)?));
        let deleted: Option<(i64, i64)> = if soft {
            self.tx
                .prepare_cached(
                    "UPDATE objects SET deleted_at = ?2, updated_job = ?3 WHERE id = ?1 AND deleted_at IS NULL RETURNING seq, collection",
                )?
                .query_row(params![id.as_bytes(), self.now, self.job], both)
                .optional()?
        } else {
            self.tx
                .prepare_cached("DELETE FROM objects WHERE id = ?1 RETURNING seq, collection")?
                .query_row([id.as_bytes()], both)
                .optional()?
        };
        if let Some((seq, collection)) = deleted {
            self.audit(seq, collection, id, if soft { "soft-delete" } else { "delete" })?;
        }
        Ok(deleted.is_some())
    }

    /// Records a change in the audit trail: its row's number is the change's place in the feed. The
    /// collection and id stay on the row, so a deleted object's changes still say whose they were.
    fn audit(&mut self, object_seq: i64, collection: i64, id: &Uuid, action: &str) -> Result<(), StoreError> {
        self.tx
            .prepare_cached("INSERT INTO audit (object_seq, action, job, at, collection, object_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")?
            .execute(params![object_seq, action, self.job, self.now, collection, id.as_bytes()])?;
        Ok(())
    }

    pub fn commit(self) -> Result<(), StoreError> {
        self.tx.commit()?;
        Ok(())
    }
}
