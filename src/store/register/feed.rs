//! The change feed of a register schema: its creates, updates and deletes in the order the audit
//! trail numbered them.
//!
//! Writes take turns (each batch is an immediate transaction), so when a change is visible every
//! change numbered before it is too: a reader that pages on from the last number it saw skips
//! nothing and sees nothing twice, however many writes land meanwhile.

use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use super::{RegisterStore, stored_object};
use crate::store::StoreError;

/// The header a register reading another's feed names itself in (OpenRegister's federation word):
/// what came from it is left out of what it reads.
pub const SYNC_ORIGIN: &str = "x-openregister-sync-origin";

/// The most changes one page holds.
pub const MAX_PAGE: usize = 1000;

/// Which changes to read.
#[derive(Debug, Clone, Default)]
pub struct ChangeQuery<'a> {
    /// Of this register (`None`: of every one).
    pub register: Option<&'a str>,
    /// Of this schema (`None`: of every one).
    pub schema: Option<&'a str>,
    /// Changes numbered after this one.
    pub since: i64,
    /// Up to this one (a reader paging through a span it fixed with its first page); `None`: the
    /// newest there is now.
    pub until: Option<i64>,
    pub limit: usize,
    /// Only the latest change of each object within the span: what a reader that keeps a copy
    /// needs, and each object at most once.
    pub latest: bool,
    /// Leaves out what synchronizations reading from this instance wrote: a register never sends a
    /// peer back the peer's own changes, so two registers feeding each other settle.
    pub exclude_origin: Option<&'a str>,
}

/// One change.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    pub seq: i64,
    /// `create`, `update`, `delete` or `soft-delete`.
    pub action: String,
    pub id: String,
    pub register: String,
    pub schema: String,
    /// Where the object came from, while it is stored.
    pub origin_id: Option<String>,
    pub synchronization: Option<String>,
    pub job: Option<String>,
    pub at: String,
    /// The object as it is now (the register keeps objects, not their past states), for a create or
    /// update of an object that is still there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object: Option<Value>,
}

impl Change {
    pub fn is_delete(&self) -> bool {
        self.action.ends_with("delete")
    }
}

/// A page of changes and where the next one starts.
#[derive(Debug, Clone, Serialize)]
pub struct ChangePage {
    pub changes: Vec<Change>,
    /// The span's end: pass it back as `until` to page through the same span.
    pub until: i64,
    /// The `since` of the next page.
    pub next: i64,
    /// Whether the span holds more changes after this page.
    pub more: bool,
}

impl RegisterStore {
    /// The number of the newest change (0 in an empty register).
    pub fn head(&self) -> Result<i64, StoreError> {
        Ok(self.conn.query_row("SELECT coalesce(max(seq), 0) FROM audit", [], |r| r.get(0))?)
    }

    /// A page of the changes `query` asks for.
    pub fn changes(&self, query: &ChangeQuery) -> Result<ChangePage, StoreError> {
        let until = match query.until {
            Some(until) => until,
            None => self.head()?,
        };
        let limit = query.limit.clamp(1, MAX_PAGE);
        let mut stmt = self.conn.prepare_cached(
            "SELECT a.seq, a.action, a.object_id, c.synchronization, (SELECT id FROM jobs WHERE ref = a.job),
                    strftime('%Y-%m-%dT%H:%M:%fZ', a.at / 1000.0, 'unixepoch'), o.origin_id,
                    CASE WHEN a.action IN ('create', 'update') AND o.deleted_at IS NULL THEN o.object END, c.register, c.schema
             FROM audit a JOIN collections c ON c.ref = a.collection LEFT JOIN objects o ON o.id = a.object_id
             WHERE a.seq > ?1 AND a.seq <= ?2 AND (?3 IS NULL OR c.register = ?3) AND (?4 IS NULL OR c.schema = ?4) AND a.object_id IS NOT NULL
               AND (?5 IS NULL OR c.synchronization NOT IN (SELECT synchronization FROM origins WHERE instance = ?5))
               AND (?6 = 0 OR NOT EXISTS (SELECT 1 FROM audit b WHERE b.object_id = a.object_id AND b.seq > a.seq AND b.seq <= ?2))
             ORDER BY a.seq LIMIT ?7",
        )?;
        let args = params![query.since, until, query.register, query.schema, query.exclude_origin, query.latest, limit as i64 + 1];
        let mut changes: Vec<Change> = stmt
            .query_map(args, |r| {
                let blob: Vec<u8> = r.get(2)?;
                let object: Option<String> = r.get(7)?;
                Ok(Change {
                    seq: r.get(0)?,
                    action: r.get(1)?,
                    id: Uuid::from_slice(&blob).map(|id| id.to_string()).unwrap_or_default(),
                    synchronization: r.get::<_, Option<String>>(3)?.filter(|s| !s.is_empty()),
                    job: r.get(4)?,
                    at: r.get(5)?,
                    origin_id: r.get(6)?,
                    register: r.get(8)?,
                    schema: r.get(9)?,
                    object: object.and_then(|text| stored_object(&text)),
                })
            })?
            .collect::<Result<_, _>>()?;
        let more = changes.len() > limit;
        changes.truncate(limit);
        // Past the last change of this schema in the span, the rest of it holds none.
        let next = match changes.last() {
            Some(last) if more => last.seq,
            _ => until.max(query.since),
        };
        Ok(ChangePage { changes, until, next, more })
    }

    /// Records that `synchronization` writes what it reads from register instance `instance`.
    pub fn set_origin(&self, synchronization: &str, instance: &str) -> Result<(), StoreError> {
        let known: Option<String> =
            self.conn.query_row("SELECT instance FROM origins WHERE synchronization = ?1", [synchronization], |r| r.get(0)).optional()?;
        if known.as_deref() != Some(instance) {
            self.conn.execute(
                "INSERT INTO origins (synchronization, instance) VALUES (?1, ?2) \
                 ON CONFLICT (synchronization) DO UPDATE SET instance = excluded.instance",
                params![synchronization, instance],
            )?;
        }
        Ok(())
    }
}
