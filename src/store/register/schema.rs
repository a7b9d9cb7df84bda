//! The register's tables, and the migration from the first layout.
//!
//! Objects are stored lean because a bulk load is bound by how many pages SQLite writes: the id is a
//! 16-byte BLOB, times are milliseconds, and the register, schema, synchronization, source and job of an
//! object are small integers into `collections` and `jobs`. `objects_view` shows them as text, for
//! anyone reading the register with an SQLite client.
//!
//! The audit trail is the change feed: each create, update and delete is a row whose `seq` numbers
//! it, written in the transaction of the change. Rows are never deleted, so a number is never given
//! twice (SQLite reuses only the largest rowid of a table, after a delete).

use rusqlite::Connection;

use crate::store::StoreError;

/// `PRAGMA user_version` of the current layout. The first layout (0) kept every field as text; the
/// second (2) recorded creates on the object row alone, and audit rows by object row only.
const VERSION: i64 = 3;

const TABLES: &str = "
CREATE TABLE IF NOT EXISTS collections (
    ref INTEGER PRIMARY KEY,
    register TEXT NOT NULL, schema TEXT NOT NULL, synchronization TEXT NOT NULL, source TEXT NOT NULL,
    UNIQUE (register, schema, synchronization, source));
CREATE TABLE IF NOT EXISTS jobs (ref INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS objects (
    seq INTEGER PRIMARY KEY,
    id BLOB NOT NULL UNIQUE,
    collection INTEGER NOT NULL REFERENCES collections(ref),
    origin_id TEXT,
    object TEXT NOT NULL,
    created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, deleted_at INTEGER,
    created_job INTEGER REFERENCES jobs(ref), updated_job INTEGER REFERENCES jobs(ref));
CREATE INDEX IF NOT EXISTS objects_by_collection ON objects(collection, seq);
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY, object_seq INTEGER NOT NULL, action TEXT NOT NULL,
    job INTEGER REFERENCES jobs(ref), at INTEGER NOT NULL,
    collection INTEGER REFERENCES collections(ref), object_id BLOB);
CREATE INDEX IF NOT EXISTS audit_by_id ON audit(object_id, seq);
CREATE TABLE IF NOT EXISTS origins (synchronization TEXT PRIMARY KEY, instance TEXT NOT NULL);
CREATE VIEW IF NOT EXISTS objects_view AS
SELECT o.seq,
    lower(substr(hex(o.id), 1, 8) || '-' || substr(hex(o.id), 9, 4) || '-' || substr(hex(o.id), 13, 4) || '-' ||
          substr(hex(o.id), 17, 4) || '-' || substr(hex(o.id), 21)) AS id,
    c.register, c.schema, c.synchronization, c.source, o.origin_id, o.object,
    strftime('%Y-%m-%dT%H:%M:%fZ', o.created_at / 1000.0, 'unixepoch') AS created_at,
    strftime('%Y-%m-%dT%H:%M:%fZ', o.updated_at / 1000.0, 'unixepoch') AS updated_at,
    strftime('%Y-%m-%dT%H:%M:%fZ', o.deleted_at / 1000.0, 'unixepoch') AS deleted_at,
    (SELECT id FROM jobs WHERE ref = o.created_job) AS created_job,
    (SELECT id FROM jobs WHERE ref = o.updated_job) AS updated_job
FROM objects o JOIN collections c ON c.ref = o.collection;
";

/// Milliseconds since the epoch of an RFC 3339 text, in SQL.
const MS: &str = "CAST(round(unixepoch(?, 'subsec') * 1000) AS INTEGER)";

/// Creates the tables, or brings a register of the first layout to the current one (in one
/// transaction: a migration that fails leaves the register as it was).
pub fn prepare(conn: &mut Connection) -> Result<(), StoreError> {
    let version = |conn: &Connection| conn.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0));
    if version(conn)? >= VERSION {
        return Ok(());
    }
    // Immediate: two processes opening a new register at once take turns (a deferred transaction
    // that later writes fails at once when another wrote first); the second finds the work done.
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let before = version(&tx)?;
    if before >= VERSION {
        return Ok(());
    }
    let first_layout: bool = tx.query_row("SELECT count(*) FROM pragma_table_info('objects') WHERE name = 'register'", [], |r| r.get(0))?;
    if before == 2 {
        tx.execute_batch(
            "ALTER TABLE audit ADD COLUMN collection INTEGER REFERENCES collections(ref); ALTER TABLE audit ADD COLUMN object_id BLOB;
             UPDATE audit SET collection = o.collection, object_id = o.id FROM objects o WHERE o.seq = audit.object_seq;
             DROP INDEX IF EXISTS audit_by_object;",
        )?;
    }
    if first_layout {
        tx.execute_batch(
            "ALTER TABLE objects RENAME TO objects_v1; ALTER TABLE audit RENAME TO audit_v1;
             DROP INDEX IF EXISTS objects_by_schema; DROP INDEX IF EXISTS audit_by_object;",
        )?;
    }
    tx.execute_batch(TABLES)?;
    if first_layout {
        let ms = |column: &str| MS.replace('?', column);
        tx.execute_batch(&format!(
            "INSERT OR IGNORE INTO collections (register, schema, synchronization, source)
                 SELECT DISTINCT register, schema, coalesce(synchronization, ''), coalesce(source, '') FROM objects_v1;
             INSERT OR IGNORE INTO jobs (id)
                 SELECT created_job FROM objects_v1 WHERE created_job IS NOT NULL
                 UNION SELECT updated_job FROM objects_v1 WHERE updated_job IS NOT NULL
                 UNION SELECT job FROM audit_v1 WHERE job IS NOT NULL;
             INSERT INTO objects (seq, id, collection, origin_id, object, created_at, updated_at, deleted_at, created_job, updated_job)
                 SELECT o.seq, unhex(replace(o.id, '-', '')), c.ref, o.origin_id, o.object, {created}, {updated}, {deleted},
                        (SELECT ref FROM jobs WHERE id = o.created_job), (SELECT ref FROM jobs WHERE id = o.updated_job)
                 FROM objects_v1 o JOIN collections c ON c.register = o.register AND c.schema = o.schema
                      AND c.synchronization = coalesce(o.synchronization, '') AND c.source = coalesce(o.source, '');
             INSERT INTO audit (seq, object_seq, action, job, at, collection, object_id)
                 SELECT a.seq, a.object_seq, a.action, (SELECT ref FROM jobs WHERE id = a.job), {at}, o.collection, o.id
                 FROM audit_v1 a LEFT JOIN objects o ON o.seq = a.object_seq;
             DROP TABLE objects_v1; DROP TABLE audit_v1;",
            created = ms("o.created_at"),
            updated = ms("o.updated_at"),
            deleted = ms("o.deleted_at"),
            at = ms("a.at"),
        ))?;
    }
    // Creates the earlier layouts kept on the object row alone join the trail (numbered after what it
    // held: the trail of an object shows in time order).
    tx.execute_batch(
        "INSERT INTO audit (object_seq, action, job, at, collection, object_id)
             SELECT o.seq, 'create', o.created_job, o.created_at, o.collection, o.id FROM objects o
             WHERE NOT EXISTS (SELECT 1 FROM audit a WHERE a.object_id = o.id AND a.action = 'create') ORDER BY o.seq;",
    )?;
    tx.pragma_update(None, "user_version", VERSION)?;
    tx.commit()?;
    Ok(())
}
