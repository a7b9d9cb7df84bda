//! The contract table: one row per origin id of a synchronization, held in Arrow's columnar layout
//! while a run diffs, and persisted as an Arrow IPC file. It is the only state that grows with the
//! number of objects: about 90 bytes a contract plus the origin id.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, BooleanArray, FixedSizeBinaryArray, LargeStringArray, RecordBatch, TimestampMillisecondArray};
use arrow::buffer::{Buffer, OffsetBuffer, ScalarBuffer};
use arrow::compute::filter_record_batch;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::error::ArrowError;
use std::hash::BuildHasher;

use arrow::ipc::reader::FileReader;
use hashbrown::HashTable;
use uuid::Uuid;

use crate::store::{Generation, ReadSeek, StateDir, StoreError, footer_rows};

const COMMITTED: u8 = 1;
const SEEN: u8 = 2;
const REMOVED: u8 = 4;

/// The namespace of target ids: `target_id = UUIDv5(NAMESPACE, synchronization + "\n" + origin_id)`.
pub fn target_namespace() -> Uuid {
    Uuid::new_v5(&Uuid::NAMESPACE_URL, b"urn:syncline:contract")
}

/// The deterministic target id of an origin id in a synchronization, so a write repeated after a crash
/// lands on the same object.
pub fn target_id(namespace: &Uuid, synchronization: &str, origin_id: &str) -> Uuid {
    let mut name = Vec::with_capacity(synchronization.len() + origin_id.len() + 1);
    name.extend_from_slice(synchronization.as_bytes());
    name.push(b'\n');
    name.extend_from_slice(origin_id.as_bytes());
    Uuid::new_v5(namespace, &name)
}

/// The Arrow schema of a persisted contract table.
pub fn schema() -> SchemaRef {
    let ts = DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
    Arc::new(Schema::new(vec![
        Field::new("origin_id", DataType::LargeUtf8, false),
        Field::new("target_id", DataType::FixedSizeBinary(16), false),
        Field::new("origin_hash", DataType::FixedSizeBinary(32), false),
        Field::new("first_seen", ts.clone(), false),
        Field::new("last_seen", ts.clone(), false),
        Field::new("last_changed", ts, false),
    ]))
}

/// One contract, for listing.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Contract {
    pub origin_id: String,
    pub target_id: Uuid,
    pub origin_hash: String,
    pub first_seen: i64,
    pub last_seen: i64,
    pub last_changed: i64,
}

/// Contracts of one synchronization, mutable during a run.
pub struct ContractTable {
    id_bytes: Vec<u8>,
    id_offsets: Vec<i64>,
    target_ids: Vec<[u8; 16]>,
    hashes: Vec<[u8; 32]>,
    first_seen: Vec<i64>,
    last_seen: Vec<i64>,
    last_changed: Vec<i64>,
    flags: Vec<u8>,
    /// Ids another system gave the objects (an API target), by row: few targets have them, so they
    /// cost nothing where they are absent, and their column is saved only when there are some.
    remote_ids: hashbrown::HashMap<u32, Box<str>>,
    index: HashTable<u32>,
    hasher: foldhash::fast::FixedState,
    /// The generation of the saved table this one was read from: its save must follow it.
    loaded: Generation,
}

// Not derived: an empty table still has its first offset, 0 (Arrow's layout for strings).
impl Default for ContractTable {
    fn default() -> Self {
        ContractTable {
            id_bytes: Vec::new(),
            id_offsets: vec![0],
            target_ids: Vec::new(),
            hashes: Vec::new(),
            first_seen: Vec::new(),
            last_seen: Vec::new(),
            last_changed: Vec::new(),
            flags: Vec::new(),
            remote_ids: hashbrown::HashMap::new(),
            index: HashTable::new(),
            hasher: Default::default(),
            loaded: Generation::default(),
        }
    }
}

/// Contracts kept in the state directory: the state keeps the Arrow IPC file, the table is read
/// from and written into it here.
impl ContractTable {
    /// The contracts of `sync` (empty before its first run), read a batch at a time.
    pub async fn load(state: &StateDir, sync: &str) -> Result<ContractTable, StoreError> {
        let name = sync.to_string();
        let read = move |reader: FileReader<Box<dyn ReadSeek>>| -> Result<ContractTable, StoreError> {
            // The row count saved in the footer sizes every column once: growing them by doubling
            // would hold up to twice the table while loading.
            let mut table = ContractTable::with_capacity(footer_rows(&reader) as usize);
            for batch in reader {
                let arrow = |source| StoreError::Arrow { sync: name.clone(), source };
                table.append(&batch.map_err(arrow)?).map_err(arrow)?;
            }
            Ok(table)
        };
        let (table, loaded) = state.read_contracts(sync, read).await?;
        Ok(ContractTable { loaded, ..table.unwrap_or_else(ContractTable::new) })
    }

    /// Replaces the contracts of `sync` atomically. Takes the table: its columns move into Arrow
    /// buffers, so saving adds only a slice's worth of memory.
    pub async fn save(self, state: &StateDir, sync: &str) -> Result<(), StoreError> {
        let loaded = self.loaded;
        let batch = self.into_record_batch().map_err(|source| StoreError::Arrow { sync: sync.into(), source })?;
        state.save_contracts(sync, batch, loaded).await
    }
}

impl ContractTable {
    pub fn new() -> Self {
        ContractTable::default()
    }

    /// An empty table with room for `rows` contracts (origin ids assumed short; they grow as needed).
    pub fn with_capacity(rows: usize) -> Self {
        let mut table = ContractTable::new();
        table.id_bytes.reserve(rows * 8);
        table.reserve(rows);
        let ContractTable { index, id_bytes, id_offsets, hasher, .. } = &mut table;
        index.reserve(rows, |&r| hasher.hash_one(id_at(id_bytes, id_offsets, r)));
        table
    }

    /// Loads persisted contracts.
    pub fn from_batches(batches: &[RecordBatch]) -> Result<Self, ArrowError> {
        let mut table = ContractTable::new();
        for batch in batches {
            table.append(batch)?;
        }
        Ok(table)
    }

    /// Adds persisted contracts, a batch at a time (so a large file is never held whole).
    pub fn append(&mut self, batch: &RecordBatch) -> Result<(), ArrowError> {
        let table = self;
        table.reserve(batch.num_rows());
        {
            let column = |name: &str| {
                batch.column_by_name(name).cloned().ok_or_else(|| ArrowError::SchemaError(format!("contract table has no `{name}` column")))
            };
            let ids = column("origin_id")?;
            let ids = ids.as_any().downcast_ref::<LargeStringArray>().ok_or_else(|| type_error("origin_id"))?;
            let targets = column("target_id")?;
            let targets = targets.as_any().downcast_ref::<FixedSizeBinaryArray>().ok_or_else(|| type_error("target_id"))?;
            let hashes = column("origin_hash")?;
            let hashes = hashes.as_any().downcast_ref::<FixedSizeBinaryArray>().ok_or_else(|| type_error("origin_hash"))?;
            let times: Vec<ArrayRef> = ["first_seen", "last_seen", "last_changed"].iter().map(|n| column(n)).collect::<Result<_, _>>()?;
            let times: Vec<&TimestampMillisecondArray> = times
                .iter()
                .map(|a| a.as_any().downcast_ref::<TimestampMillisecondArray>().ok_or_else(|| type_error("timestamps")))
                .collect::<Result<_, _>>()?;
            // Present only in the files of targets that hand out their own ids.
            let remote = batch.column_by_name("remote_id").cloned();
            let remote = match &remote {
                Some(array) => Some(array.as_any().downcast_ref::<LargeStringArray>().ok_or_else(|| type_error("remote_id"))?),
                None => None,
            };
            for i in 0..batch.num_rows() {
                let row = table.insert(ids.value(i), targets.value(i).try_into().map_err(|_| type_error("target_id"))?);
                let r = row as usize;
                table.hashes[r] = hashes.value(i).try_into().map_err(|_| type_error("origin_hash"))?;
                table.first_seen[r] = times[0].value(i);
                table.last_seen[r] = times[1].value(i);
                table.last_changed[r] = times[2].value(i);
                table.flags[r] = COMMITTED;
                if let Some(remote) = remote
                    && remote.is_valid(i)
                {
                    table.remote_ids.insert(row, remote.value(i).into());
                }
            }
        }
        Ok(())
    }

    fn reserve(&mut self, rows: usize) {
        self.id_offsets.reserve(rows);
        self.target_ids.reserve(rows);
        self.hashes.reserve(rows);
        self.first_seen.reserve(rows);
        self.last_seen.reserve(rows);
        self.last_changed.reserve(rows);
        self.flags.reserve(rows);
    }

    fn id(&self, row: u32) -> &[u8] {
        id_at(&self.id_bytes, &self.id_offsets, row)
    }

    fn hash_id(&self, id: &[u8]) -> u64 {
        self.hasher.hash_one(id)
    }

    /// The row of `origin_id`, if it has one (committed or added this run).
    pub fn find(&self, origin_id: &str) -> Option<u32> {
        let h = self.hash_id(origin_id.as_bytes());
        self.index.find(h, |&row| self.id(row) == origin_id.as_bytes()).copied().filter(|&row| self.flags[row as usize] & REMOVED == 0)
    }

    /// Adds an uncommitted row for a new origin id; it is saved only once committed.
    pub fn insert(&mut self, origin_id: &str, target_id: [u8; 16]) -> u32 {
        let row = self.flags.len() as u32;
        self.id_bytes.extend_from_slice(origin_id.as_bytes());
        self.id_offsets.push(self.id_bytes.len() as i64);
        self.target_ids.push(target_id);
        self.hashes.push([0; 32]);
        self.first_seen.push(0);
        self.last_seen.push(0);
        self.last_changed.push(0);
        self.flags.push(0);
        let h = self.hash_id(origin_id.as_bytes());
        let ContractTable { index, id_bytes, id_offsets, hasher, .. } = self;
        index.insert_unique(h, row, |&r| hasher.hash_one(id_at(id_bytes, id_offsets, r)));
        row
    }

    pub fn origin_id(&self, row: u32) -> &str {
        std::str::from_utf8(self.id(row)).unwrap_or_default()
    }

    pub fn target_id(&self, row: u32) -> Uuid {
        Uuid::from_bytes(self.target_ids[row as usize])
    }

    pub fn hash(&self, row: u32) -> &[u8; 32] {
        &self.hashes[row as usize]
    }

    pub fn is_committed(&self, row: u32) -> bool {
        self.flags[row as usize] & COMMITTED != 0
    }

    /// Marks the row seen in this run; returns whether it already was (a duplicate origin id).
    pub fn mark_seen(&mut self, row: u32) -> bool {
        let flags = &mut self.flags[row as usize];
        let was = *flags & SEEN != 0;
        *flags |= SEEN;
        was
    }

    /// Records that the row's object now matches `hash` (written, or found unchanged).
    pub fn commit(&mut self, row: u32, hash: [u8; 32], now: i64) {
        let r = row as usize;
        if self.flags[r] & COMMITTED == 0 {
            self.first_seen[r] = now;
        }
        if self.hashes[r] != hash || self.flags[r] & COMMITTED == 0 {
            self.last_changed[r] = now;
        }
        self.hashes[r] = hash;
        self.last_seen[r] = now;
        self.flags[r] |= COMMITTED;
    }

    /// Records that an unchanged row was seen now.
    pub fn touch(&mut self, row: u32, now: i64) {
        self.last_seen[row as usize] = now;
    }

    /// The id another system gave row's object.
    pub fn remote_id(&self, row: u32) -> Option<&str> {
        self.remote_ids.get(&row).map(|id| &**id)
    }

    pub fn set_remote_id(&mut self, row: u32, id: String) {
        self.remote_ids.insert(row, id.into_boxed_str());
    }

    /// Drops the row (its object was deleted).
    pub fn remove(&mut self, row: u32) {
        self.flags[row as usize] |= REMOVED;
    }

    /// Committed rows not seen in this run: the candidates for deletion after a complete run.
    pub fn unseen(&self) -> Vec<u32> {
        (0..self.flags.len() as u32).filter(|&r| self.flags[r as usize] & (COMMITTED | SEEN | REMOVED) == COMMITTED).collect()
    }

    /// Number of committed contracts.
    pub fn committed(&self) -> usize {
        self.flags.iter().filter(|f| **f & (COMMITTED | REMOVED) == COMMITTED).count()
    }

    /// The committed contracts as one record batch.
    pub fn to_record_batch(&self) -> Result<RecordBatch, ArrowError> {
        ContractTable {
            id_bytes: self.id_bytes.clone(),
            id_offsets: self.id_offsets.clone(),
            target_ids: self.target_ids.clone(),
            hashes: self.hashes.clone(),
            first_seen: self.first_seen.clone(),
            last_seen: self.last_seen.clone(),
            last_changed: self.last_changed.clone(),
            flags: self.flags.clone(),
            remote_ids: self.remote_ids.clone(),
            index: HashTable::new(),
            hasher: self.hasher.clone(),
            loaded: self.loaded,
        }
        .into_record_batch()
    }

    /// The committed contracts as one record batch, moving the columns into Arrow buffers without a
    /// copy: at the end of a run the table's memory becomes the batch's, so saving does not double it.
    pub fn into_record_batch(self) -> Result<RecordBatch, ArrowError> {
        let keep: BooleanArray = self.flags.iter().map(|f| Some(f & (COMMITTED | REMOVED) == COMMITTED)).collect();
        let ts = |v: Vec<i64>| Arc::new(TimestampMillisecondArray::from(v).with_timezone("UTC")) as ArrayRef;
        let offsets = OffsetBuffer::new(ScalarBuffer::from(self.id_offsets));
        let ids = LargeStringArray::try_new(offsets, Buffer::from_vec(self.id_bytes), None)?;
        drop(self.index);
        let rows = self.flags.len() as u32;
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(ids),
            Arc::new(fixed(self.target_ids)?),
            Arc::new(fixed(self.hashes)?),
            ts(self.first_seen),
            ts(self.last_seen),
            ts(self.last_changed),
        ];
        let schema = if self.remote_ids.is_empty() {
            schema()
        } else {
            let remote: LargeStringArray = (0..rows).map(|r| self.remote_ids.get(&r).map(|id| &**id)).collect();
            columns.push(Arc::new(remote));
            let mut fields: Vec<Field> = schema().fields().iter().map(|f| f.as_ref().clone()).collect();
            fields.push(Field::new("remote_id", DataType::LargeUtf8, true));
            Arc::new(Schema::new(fields))
        };
        let batch = RecordBatch::try_new(schema, columns)?;
        if keep.true_count() == keep.len() { Ok(batch) } else { filter_record_batch(&batch, &keep) }
    }

    /// Every committed contract, for listing.
    pub fn contracts(&self) -> Vec<Contract> {
        (0..self.flags.len() as u32)
            .filter(|&r| self.flags[r as usize] & (COMMITTED | REMOVED) == COMMITTED)
            .map(|r| Contract {
                origin_id: self.origin_id(r).to_string(),
                target_id: self.target_id(r),
                origin_hash: self.hash(r).iter().map(|b| format!("{b:02x}")).collect(),
                first_seen: self.first_seen[r as usize],
                last_seen: self.last_seen[r as usize],
                last_changed: self.last_changed[r as usize],
            })
            .collect()
    }
}

/// Origin id `row` in the Arrow-layout buffers. A free function, so the index can rehash while the
/// table is borrowed field by field.
fn id_at<'a>(bytes: &'a [u8], offsets: &[i64], row: u32) -> &'a [u8] {
    let r = row as usize;
    &bytes[offsets[r] as usize..offsets[r + 1] as usize]
}

fn fixed<const N: usize>(rows: Vec<[u8; N]>) -> Result<FixedSizeBinaryArray, ArrowError> {
    FixedSizeBinaryArray::try_new(N as i32, Buffer::from_vec(rows.into_flattened()), None)
}

fn type_error(column: &str) -> ArrowError {
    ArrowError::SchemaError(format!("contract table column `{column}` has the wrong type"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_commit_save_load() {
        let ns = target_namespace();
        let mut t = ContractTable::new();
        for id in ["1", "2", "3"] {
            let row = t.insert(id, *target_id(&ns, "s", id).as_bytes());
            t.commit(row, [row as u8; 32], 1000);
        }
        let uncommitted = t.insert("4", [0; 16]);
        assert_eq!(t.find("4"), Some(uncommitted));
        let plain = t.to_record_batch().unwrap();
        assert_eq!(plain.num_columns(), 6, "no remote ids, no column for them");
        let two = t.find("2").unwrap();
        t.remove(two);
        assert_eq!(t.find("2"), None);
        t.set_remote_id(t.find("3").unwrap(), "srv-3".into());
        let batch = t.to_record_batch().unwrap();
        assert_eq!(batch.num_rows(), 2);
        let loaded = ContractTable::from_batches(&[batch]).unwrap();
        assert_eq!(loaded.committed(), 2);
        let three = loaded.find("3").unwrap();
        assert_eq!(loaded.target_id(three), target_id(&ns, "s", "3"));
        assert_eq!(loaded.hash(three), &[2u8; 32]);
        assert_eq!(loaded.remote_id(three), Some("srv-3"));
        assert_eq!(loaded.remote_id(loaded.find("1").unwrap()), None);
        assert!(loaded.find("4").is_none());
    }

    #[test]
    fn seen_and_unseen() {
        let mut t = ContractTable::new();
        for id in ["a", "b"] {
            let row = t.insert(id, [0; 16]);
            t.commit(row, [0; 32], 1);
        }
        let a = t.find("a").unwrap();
        assert!(!t.mark_seen(a));
        assert!(t.mark_seen(a), "second sighting is a duplicate");
        let unseen: Vec<&str> = t.unseen().into_iter().map(|r| t.origin_id(r)).collect();
        assert_eq!(unseen, ["b"]);
    }

    #[test]
    fn empty_table_round_trips() {
        let batch = ContractTable::new().to_record_batch().unwrap();
        assert_eq!(batch.num_rows(), 0);
        assert_eq!(ContractTable::from_batches(&[batch]).unwrap().committed(), 0);
    }

    #[test]
    fn target_ids_are_deterministic_and_distinct() {
        let ns = target_namespace();
        assert_eq!(target_id(&ns, "s", "1"), target_id(&ns, "s", "1"));
        assert_ne!(target_id(&ns, "s", "1"), target_id(&ns, "t", "1"));
        assert_eq!(target_id(&ns, "s", "1").get_version_num(), 5);
    }

    #[tokio::test]
    async fn contracts_save_in_slices_and_load_back() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(dir.path()).unwrap();
        assert_eq!(ContractTable::load(&state, "s/1").await.unwrap().committed(), 0, "no file yet");
        let mut table = ContractTable::new();
        for i in 0..150_000u32 {
            let row = table.insert(&i.to_string(), [(i % 251) as u8; 16]);
            table.commit(row, [(i % 7) as u8; 32], i64::from(i));
        }
        let gone = table.find("42").unwrap();
        table.remove(gone);
        table.save(&state, "s/1").await.unwrap();
        let loaded = ContractTable::load(&state, "s/1").await.unwrap();
        assert_eq!(loaded.committed(), 149_999);
        assert!(loaded.find("42").is_none());
        let row = loaded.find("149999").unwrap();
        assert_eq!(loaded.hash(row), &[(149_999 % 7) as u8; 32]);
        assert_eq!(loaded.target_id(row).as_bytes(), &[(149_999 % 251) as u8; 16]);
    }
}
