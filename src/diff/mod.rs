//! The hash-diff stage: each record's canonical hash (with the mapping's fingerprint) against the
//! contract table decides created, updated, unchanged or failed; after a complete full run, contracts
//! not seen are deleted by the synchronization's policy. Unchanged records stop here, unparsed.

pub mod contracts;
pub mod hash;

use std::sync::Arc;

use serde_json::Value;
use uuid::Uuid;

use crate::config::DeletePolicy;
use crate::path::DotPath;
use crate::sources::{Chunk, RawRecord};
use crate::store::jobs::{Counts, ObjectError};
use crate::write::{Ack, Action, Outcome, Unmapped, Write};
use contracts::{ContractTable, target_id, target_namespace};
use hash::Hasher;

/// Per-object errors kept for the job record; more are counted, not stored.
const MAX_STORED_ERRORS: usize = 10_000;

/// The diff state of one run.
pub struct Differ {
    table: ContractTable,
    identifier: Identifier,
    namespace: Uuid,
    synchronization: String,
    force: bool,
    /// What a delete the source reports does ([`RawRecord::Gone`]).
    policy: DeletePolicy,
    now: i64,
    committed_before: usize,
    pub counts: Counts,
    pub errors: Vec<ObjectError>,
    /// Records that failed before their origin id was known: their objects cannot be told apart from
    /// vanished ones, so a run with any deletes nothing.
    pub unidentified: u64,
}

impl Differ {
    pub fn new(table: ContractTable, synchronization: &str, id_position: &str, fingerprint: [u8; 32], force: bool) -> Differ {
        Differ {
            committed_before: table.committed(),
            table,
            identifier: Identifier::new(id_position, fingerprint),
            namespace: target_namespace(),
            synchronization: synchronization.to_string(),
            force,
            policy: DeletePolicy::Delete,
            now: chrono::Utc::now().timestamp_millis(),
            counts: Counts::default(),
            errors: Vec::new(),
            unidentified: 0,
        }
    }

    /// Adds contracts for objects the target holds without one (written by a run that was killed
    /// before it saved its contracts), given their origin ids; target ids follow from them.
    pub fn adopt(&mut self, origin_ids: Vec<String>) -> usize {
        origin_ids.into_iter().filter(|origin_id| self.adopt_row(origin_id).1).count()
    }

    /// Adds contracts for objects created on the target, with the id the target gave them, that the
    /// saved contracts do not hold (a run cut off after the create, before its contracts were saved).
    pub fn adopt_created(&mut self, created: Vec<(String, String)>) -> usize {
        let mut adopted = 0;
        for (origin_id, remote_id) in created {
            let (row, _) = self.adopt_row(&origin_id);
            if self.table.remote_id(row).is_none() {
                self.table.set_remote_id(row, remote_id);
                adopted += 1;
            }
        }
        adopted
    }

    /// The contract row of `origin_id`, made when there is none (and then `true`). Its hash is
    /// unknown, so the object updates if seen and is deleted if not.
    fn adopt_row(&mut self, origin_id: &str) -> (u32, bool) {
        if let Some(row) = self.table.find(origin_id) {
            return (row, false);
        }
        let target = target_id(&self.namespace, &self.synchronization, origin_id);
        let row = self.table.insert(origin_id, *target.as_bytes());
        self.table.commit(row, [0; 32], self.now);
        self.committed_before += 1;
        (row, true)
    }

    fn fail(&mut self, origin_id: String, message: String) {
        self.counts.failed += 1;
        if self.errors.len() < MAX_STORED_ERRORS {
            self.errors.push(ObjectError { origin_id, message });
        }
    }

    /// Records nesting deeper than `max_depth` levels fail alone (the source's `limits.maxDepth`).
    pub fn set_max_depth(&mut self, max_depth: usize) {
        self.identifier.hasher = Hasher::new(max_depth);
        self.identifier.max_depth = max_depth;
    }

    /// Hashes `view` of each record instead of the whole record (`sourceHashMapping`).
    pub fn set_hash_view(&mut self, view: HashView) {
        self.identifier.view = Some(view);
    }

    /// What a delete the source reports does: the synchronization's delete policy.
    pub fn set_delete_policy(&mut self, policy: DeletePolicy) {
        self.policy = policy;
    }

    /// A fresh identifier like this differ's, to hash records on another thread.
    pub fn identifier(&self) -> Identifier {
        self.identifier.clone()
    }

    /// Diffs one chunk; returns the records that must be written. `identities` are the records' own,
    /// when the caller worked them out already (by [`Identifier::identify_all`]).
    pub fn diff_chunk(&mut self, chunk: Chunk, identities: Vec<Identity>) -> Vec<Unmapped> {
        let mut work = Vec::new();
        let Chunk { records, origin, lines, unit } = chunk;
        let identities = if identities.len() == records.len() { identities } else { self.identifier.identify_all(&records) };
        for (index, (record, identity)) in records.into_iter().zip(identities).enumerate() {
            let gone = matches!(record, RawRecord::Gone(_));
            self.counts.found += u64::from(!gone);
            let where_ = || Chunk::locate(&origin, &lines, unit, index);
            let (hash, origin_id) = match identity {
                Ok(identified) => identified,
                Err(problem) => {
                    self.unidentified += 1;
                    self.fail(String::new(), format!("{}: {problem}", where_()));
                    continue;
                }
            };
            if gone {
                if let Some(row) = self.table.find(&origin_id) {
                    work.extend(self.reported_gone(row, origin_id));
                }
                continue;
            }
            let row = match self.table.find(&origin_id) {
                Some(row) => row,
                None => {
                    let target = target_id(&self.namespace, &self.synchronization, &origin_id);
                    self.table.insert(&origin_id, *target.as_bytes())
                }
            };
            if self.table.mark_seen(row) {
                self.fail(
                    origin_id.clone(),
                    format!("{}: origin id `{origin_id}` appears twice in the feed; the later record is ignored", where_()),
                );
                continue;
            }
            let committed = self.table.is_committed(row);
            if committed && !self.force && self.table.hash(row) == &hash {
                self.counts.unchanged += 1;
                self.table.touch(row, self.now);
                continue;
            }
            let remote_id = self.table.remote_id(row).map(str::to_string);
            work.push(Write {
                row,
                target_id: self.table.target_id(row),
                remote_id,
                origin_id,
                hash,
                created: !committed,
                what: Action::Upsert(record),
            });
        }
        work
    }

    /// The delete of an object whose record the source reports deleted, as the delete policy says
    /// (none when the policy keeps objects, or the feed reported it twice).
    fn reported_gone(&mut self, row: u32, origin_id: String) -> Option<Unmapped> {
        let committed = self.table.is_committed(row);
        if self.table.mark_seen(row) || !committed || self.policy == DeletePolicy::Keep {
            return None;
        }
        let (target, remote) = (self.table.target_id(row), self.table.remote_id(row).map(str::to_string));
        Some(Write::delete(row, origin_id, target, remote, self.policy == DeletePolicy::SoftDelete))
    }

    /// Applies the outcomes the sink (or the mapping stage) reported.
    pub fn apply(&mut self, acks: Vec<Ack>) {
        for ack in acks {
            match ack.what {
                Outcome::Created => {
                    self.counts.created += 1;
                    self.table.commit(ack.row, ack.hash, self.now);
                    if let Some(remote) = ack.remote_id {
                        self.table.set_remote_id(ack.row, remote);
                    }
                }
                Outcome::Updated => {
                    self.counts.updated += 1;
                    self.table.commit(ack.row, ack.hash, self.now);
                }
                Outcome::Deleted => {
                    self.counts.deleted += 1;
                    self.table.remove(ack.row);
                }
                Outcome::Skipped => self.counts.skipped += 1,
                Outcome::Failed(message) => self.fail(ack.origin_id, message),
            }
        }
    }

    /// The deletes a complete full run leads to, or the guard's refusal.
    pub fn deletions(&self, policy: DeletePolicy, max_share: f64, allow_mass_delete: bool) -> Result<Vec<Unmapped>, String> {
        if policy == DeletePolicy::Keep {
            return Ok(Vec::new());
        }
        let unseen = self.table.unseen();
        if unseen.is_empty() {
            return Ok(Vec::new());
        }
        let share = unseen.len() as f64 / self.committed_before.max(1) as f64;
        if share > max_share && !allow_mass_delete {
            return Err(format!(
                "refusing to delete {} of {} objects ({:.0}% > maxDeleteShare {:.0}%): the source may have returned too little; \
                 run again with --allow-mass-delete if this is intended",
                unseen.len(),
                self.committed_before,
                share * 100.0,
                max_share * 100.0
            ));
        }
        Ok(unseen
            .into_iter()
            .map(|row| {
                Write::delete(
                    row,
                    self.table.origin_id(row).to_string(),
                    self.table.target_id(row),
                    self.table.remote_id(row).map(str::to_string),
                    policy == DeletePolicy::SoftDelete,
                )
            })
            .collect())
    }

    pub fn table(&self) -> &ContractTable {
        &self.table
    }

    /// Takes the contract table out at the end of a run, to be saved without a copy.
    pub fn take_table(&mut self) -> ContractTable {
        std::mem::take(&mut self.table)
    }
}

/// A record's hash and origin id, or why it has none.
pub type Identity = Result<([u8; 32], String), String>;

/// Hashes records canonically and picks out their origin ids: the diff's costliest step per record,
/// which the pipeline runs beside the reader so that the diff itself only looks contracts up.
pub struct Identifier {
    hasher: Hasher,
    max_depth: usize,
    fingerprint: [u8; 32],
    id_path: Vec<String>,
    id_dot: DotPath,
    /// What is hashed instead of the whole record (`sourceHashMapping`): a view without the fields
    /// that change on every read (a fetch time), so they alone never make a record changed.
    view: Option<HashView>,
}

/// A record's view for hashing: the record in, the part that counts out (or why it cannot be made).
pub type HashView = Arc<dyn Fn(&Value) -> Result<Value, String> + Send + Sync>;

/// A clone starts with buffers of its own.
impl Clone for Identifier {
    fn clone(&self) -> Identifier {
        Identifier {
            hasher: Hasher::new(self.max_depth),
            max_depth: self.max_depth,
            fingerprint: self.fingerprint,
            id_path: self.id_path.clone(),
            id_dot: self.id_dot.clone(),
            view: self.view.clone(),
        }
    }
}

impl Identifier {
    pub fn new(id_position: &str, fingerprint: [u8; 32]) -> Identifier {
        let id_dot = DotPath::parse(id_position);
        let max_depth = crate::limits::DEFAULT_MAX_DEPTH;
        Identifier { hasher: Hasher::new(max_depth), max_depth, fingerprint, id_path: id_dot.segments().to_vec(), id_dot, view: None }
    }

    pub fn identify_all(&mut self, records: &[RawRecord]) -> Vec<Identity> {
        records.iter().map(|record| self.identify(record)).collect()
    }

    pub fn identify(&mut self, record: &RawRecord) -> Identity {
        let (hash, id) = match record {
            RawRecord::Broken(problem) => return Err(problem.clone()),
            // A reported delete has no record to hash: only its id counts.
            RawRecord::Gone(id) => {
                return if id.trim().is_empty() { Err("a reported delete names no id".into()) } else { Ok(([0; 32], id.clone())) };
            }
            RawRecord::Json(bytes) => match self.hasher.scan(bytes, &self.fingerprint, &self.id_path) {
                Ok(scanned) => (scanned.hash, scanned.origin_id),
                Err(error) => return Err(error.to_string()),
            },
            RawRecord::Value(value) => match self.hasher.hash_value(value, &self.fingerprint) {
                Ok(hash) => (hash, value_id(&self.id_dot, value)),
                Err(error) => return Err(error.to_string()),
            },
        };
        let hash = match self.view.clone() {
            None => hash,
            Some(view) => match self.view_hash(record, &view) {
                Ok(hash) => hash,
                Err(problem) => return Err(format!("sourceHashMapping: {problem}")),
            },
        };
        match id {
            // An empty id names no object: every record without one would be the same.
            Some(Ok(id)) if id.trim().is_empty() => Err(format!("the id at idPosition `{}` is empty", self.id_path.join("."))),
            Some(Ok(id)) => Ok((hash, id)),
            Some(Err(problem)) => Err(problem),
            None => Err(format!("no value at idPosition `{}`", self.id_path.join("."))),
        }
    }
}

impl Identifier {
    /// The hash of `record`'s view. Called after the record was scanned, so it is known to be JSON
    /// within the depth limit, and parsing it cannot go deeper than that.
    fn view_hash(&mut self, record: &RawRecord, view: &HashView) -> Result<[u8; 32], String> {
        let parsed;
        let value = match record {
            RawRecord::Json(bytes) => {
                parsed = crate::limits::parse_checked_depth(bytes).map_err(|e| e.to_string())?;
                &parsed
            }
            RawRecord::Value(value) => value,
            RawRecord::Broken(_) | RawRecord::Gone(_) => return Ok([0; 32]),
        };
        let shown = view(value)?;
        self.hasher.hash_value(&shown, &self.fingerprint).map_err(|e| e.to_string())
    }
}

fn value_id(path: &DotPath, value: &Value) -> Option<Result<String, String>> {
    match path.get(value)? {
        Value::String(s) => Some(Ok(s.clone())),
        Value::Number(n) => Some(Ok(n.to_string())),
        Value::Bool(b) => Some(Ok(b.to_string())),
        Value::Null => Some(Err("the id at idPosition is null".into())),
        _ => Some(Err("idPosition points at an object or a list, not an id".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn chunk(records: &[&str]) -> Chunk {
        Chunk::new(records.iter().map(|r| RawRecord::Json(Bytes::from(r.to_string()))).collect(), "page 1".into())
    }

    #[test]
    fn identities_worked_out_beside_the_reader_diff_as_inline_ones() {
        let records = [r#"{"id":1}"#, r#"{"x":1}"#, "{broken", r#"{"id":null}"#, r#"{"id":"2"}"#, r#"{"id":" "}"#];
        let mut inline = Differ::new(ContractTable::new(), "s", "id", [7; 32], false);
        let mut ahead = Differ::new(ContractTable::new(), "s", "id", [7; 32], false);
        let identities = ahead.identifier().identify_all(&chunk(&records).records);
        let (a, b) = (inline.diff_chunk(chunk(&records), Vec::new()), ahead.diff_chunk(chunk(&records), identities));
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
        assert_eq!(a.len(), 2);
        let messages = |d: &Differ| d.errors.iter().map(|e| e.message.clone()).collect::<Vec<_>>();
        assert_eq!(messages(&inline), messages(&ahead));
        assert_eq!(messages(&ahead).len(), 4, "{:?}", messages(&ahead));
        assert!(messages(&ahead)[0].starts_with("record 2 of") && messages(&ahead)[0].contains("no value at idPosition `id`"));
        assert!(messages(&ahead)[3].contains("is empty"), "{:?}", messages(&ahead));
        assert_eq!((inline.unidentified, ahead.unidentified), (4, 4));
    }

    fn ack_all(differ: &mut Differ, work: Vec<Unmapped>) {
        differ.apply(work.into_iter().map(|w| w.ack(None)).collect());
    }

    fn run(table: ContractTable, records: &[&str]) -> Differ {
        let mut d = Differ::new(table, "s", "id", [0; 32], false);
        let work = d.diff_chunk(chunk(records), Vec::new());
        ack_all(&mut d, work);
        d
    }

    fn save(d: &Differ) -> ContractTable {
        ContractTable::from_batches(&[d.table().to_record_batch().unwrap()]).unwrap()
    }

    #[test]
    fn create_unchanged_update_delete() {
        let first = run(ContractTable::new(), &[r#"{"id":1,"n":"a"}"#, r#"{"id":2,"n":"b"}"#, r#"{"id":3,"n":"c"}"#]);
        assert_eq!((first.counts.found, first.counts.created), (3, 3));
        let second = run(save(&first), &[r#"{"n":"a","id":1}"#, r#"{"id":2,"n":"B"}"#]);
        assert_eq!((second.counts.unchanged, second.counts.updated), (1, 1));
        let deletes = second.deletions(DeletePolicy::Delete, 0.5, false).unwrap();
        assert_eq!(deletes.len(), 1);
        assert!(deletes[0].what.is_delete() && deletes[0].origin_id == "3");
    }

    #[test]
    fn failures_duplicates_and_guard() {
        let d = run(ContractTable::new(), &[r#"{"id":1}"#, r#"{"id":1}"#, r#"{"x":1}"#, r#"{"id":{"a":1}}"#]);
        assert_eq!((d.counts.created, d.counts.failed), (1, 3));
        assert!(d.errors[0].message.contains("appears twice"));
        assert!(d.errors[1].message.contains("no value at idPosition `id`"));
        let empty = run(save(&d), &[]);
        let refusal = empty.deletions(DeletePolicy::Delete, 0.5, false).unwrap_err();
        assert!(refusal.contains("refusing to delete 1 of 1"), "{refusal}");
        assert_eq!(empty.deletions(DeletePolicy::Delete, 0.5, true).unwrap().len(), 1);
        assert!(empty.deletions(DeletePolicy::Keep, 0.5, false).unwrap().is_empty());
    }

    #[test]
    fn a_reported_delete_deletes_once_as_the_policy_says() {
        let first = run(ContractTable::new(), &[r#"{"id":1}"#, r#"{"id":2}"#]);
        let gone = |ids: &[&str]| Chunk::new(ids.iter().map(|id| RawRecord::Gone(id.to_string())).collect(), "page 1".into());
        let mut d = Differ::new(save(&first), "s", "id", [0; 32], false);
        d.set_delete_policy(DeletePolicy::SoftDelete);
        let work = d.diff_chunk(gone(&["1", "9", "1"]), Vec::new());
        assert_eq!(work.len(), 1, "one delete for the object that is there: {work:?}");
        assert!(matches!(work[0].what, Action::Delete { soft: true }) && work[0].origin_id == "1");
        assert_eq!((d.counts.found, d.counts.failed), (0, 0), "a reported delete is no record found");
        assert_eq!(d.deletions(DeletePolicy::Delete, 1.0, false).unwrap().len(), 1, "only 2 is unseen; 1 is being deleted already");
        let mut keep = Differ::new(save(&first), "s", "id", [0; 32], false);
        keep.set_delete_policy(DeletePolicy::Keep);
        assert!(keep.diff_chunk(gone(&["1"]), Vec::new()).is_empty());
    }

    #[test]
    fn failed_write_keeps_the_old_hash() {
        let first = run(ContractTable::new(), &[r#"{"id":1,"v":1}"#]);
        let mut second = Differ::new(save(&first), "s", "id", [0; 32], false);
        let work = second.diff_chunk(chunk(&[r#"{"id":1,"v":2}"#]), Vec::new());
        let change = work.into_iter().next().unwrap();
        assert!(!change.what.is_delete());
        second.apply(vec![change.fail("bad".into())]);
        assert!(second.deletions(DeletePolicy::Delete, 0.5, false).unwrap().is_empty(), "a failed record is not deleted");
        let third = run(save(&second), &[r#"{"id":1,"v":2}"#]);
        assert_eq!(third.counts.updated, 1, "the failed change is retried");
    }

    #[test]
    fn force_rewrites_and_adopted_objects_update_or_delete() {
        let first = run(ContractTable::new(), &[r#"{"id":1}"#]);
        let mut forced = Differ::new(save(&first), "s", "id", [0; 32], true);
        assert_eq!(forced.diff_chunk(chunk(&[r#"{"id":1}"#]), Vec::new()).len(), 1);
        let mut d = Differ::new(ContractTable::new(), "s", "id", [0; 32], false);
        assert_eq!(d.adopt(vec!["1".into(), "2".into()]), 2);
        let work = d.diff_chunk(chunk(&[r#"{"id":1}"#]), Vec::new());
        assert!(!work[0].what.is_delete() && !work[0].created);
        assert_eq!(d.deletions(DeletePolicy::Delete, 0.5, false).unwrap().len(), 1);
    }
}
