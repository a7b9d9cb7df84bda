//! The state directory (`--state DIR`, `SYNCLINE_STATE`, default `./.syncline`): contract tables as
//! Arrow IPC files (through `object_store`, replaced atomically), and two SQLite databases: `jobs.db`
//! (jobs, their logs and per-object errors) and `register.db` (the embedded register).

pub mod jobs;
pub mod register;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::ipc::reader::FileReader;
use datafusion::arrow::ipc::writer::FileWriter;
use datafusion::object_store::local::LocalFileSystem;
use datafusion::object_store::path::Path as StorePath;
use datafusion::object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use crate::diff::contracts::{self, ContractTable};
pub use jobs::{Counts, JobRecord, JobStatus, JobStore};
pub use register::RegisterStore;

/// A state directory that could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("state directory {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("state database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("contract table of `{sync}`: {source}")]
    Arrow { sync: String, source: ArrowError },
    #[error("contract table of `{sync}`: {source}")]
    Object { sync: String, source: datafusion::object_store::Error },
    #[error("{0}")]
    NotFound(String),
    #[error("synchronization `{0}` is already running (another run holds its lock)")]
    Busy(String),
}

/// The state directory of one installation.
#[derive(Clone)]
pub struct StateDir {
    root: PathBuf,
    objects: Arc<dyn ObjectStore>,
}

impl StateDir {
    /// Opens (creating if needed) the state directory at `root`.
    pub fn open(root: &Path) -> Result<StateDir, StoreError> {
        let io = |source| StoreError::Io { path: root.display().to_string(), source };
        std::fs::create_dir_all(root.join("contracts")).map_err(io)?;
        let root = root.canonicalize().map_err(io)?;
        let objects = LocalFileSystem::new_with_prefix(&root)
            .map_err(|e| StoreError::Io { path: root.display().to_string(), source: std::io::Error::other(e.to_string()) })?;
        Ok(StateDir { root, objects: Arc::new(objects) })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn jobs(&self) -> Result<JobStore, StoreError> {
        JobStore::open(&self.root.join("jobs.db"))
    }

    pub fn register(&self) -> Result<RegisterStore, StoreError> {
        RegisterStore::open(&self.root.join("register.db"))
    }

    /// Takes the run lock of `sync`: one run of a synchronization at a time, across processes. The
    /// lock is released when the guard drops, or by the OS when the process dies.
    pub fn lock(&self, sync: &str) -> Result<RunLock, StoreError> {
        let path = self.root.join("contracts").join(format!("{}.lock", file_name(sync)));
        let io = |source| StoreError::Io { path: path.display().to_string(), source };
        let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path).map_err(io)?;
        match file.try_lock() {
            Ok(()) => Ok(RunLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::Busy(sync.to_string())),
            Err(std::fs::TryLockError::Error(e)) => Err(io(e)),
        }
    }

    fn contract_path(sync: &str) -> StorePath {
        StorePath::from(format!("contracts/{}.arrow", file_name(sync)))
    }

    /// The contracts of `sync` (empty before its first run).
    pub async fn load_contracts(&self, sync: &str) -> Result<ContractTable, StoreError> {
        let bytes = match self.objects.get(&Self::contract_path(sync)).await {
            Ok(result) => result.bytes().await.map_err(|source| StoreError::Object { sync: sync.into(), source })?,
            Err(datafusion::object_store::Error::NotFound { .. }) => return Ok(ContractTable::new()),
            Err(source) => return Err(StoreError::Object { sync: sync.into(), source }),
        };
        let arrow = |source| StoreError::Arrow { sync: sync.into(), source };
        let reader = FileReader::try_new(std::io::Cursor::new(bytes), None).map_err(arrow)?;
        let batches = reader.collect::<Result<Vec<_>, _>>().map_err(arrow)?;
        ContractTable::from_batches(&batches).map_err(arrow)
    }

    /// Replaces the contracts of `sync` in one atomic put. Takes the table: its columns move into the
    /// file's buffers rather than being copied.
    pub async fn save_contracts(&self, sync: &str, table: ContractTable) -> Result<(), StoreError> {
        let arrow = |source| StoreError::Arrow { sync: sync.into(), source };
        let batch = table.into_record_batch().map_err(arrow)?;
        let mut writer = FileWriter::try_new(Vec::with_capacity(batch.get_array_memory_size() + 4096), &contracts::schema()).map_err(arrow)?;
        writer.write(&batch).map_err(arrow)?;
        writer.finish().map_err(arrow)?;
        drop(batch);
        let bytes = writer.into_inner().map_err(arrow)?;
        self.objects
            .put(&Self::contract_path(sync), PutPayload::from(Bytes::from(bytes)))
            .await
            .map_err(|source| StoreError::Object { sync: sync.into(), source })?;
        Ok(())
    }
}

/// A synchronization's name as a file name: unreserved characters kept, the rest percent-encoded.
fn file_name(sync: &str) -> String {
    sync.bytes().map(|b| if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}

/// Held while a synchronization runs.
pub struct RunLock {
    _file: std::fs::File,
}

/// Now, as stored in the state databases (RFC 3339, milliseconds, UTC).
pub fn now_text() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A millisecond timestamp as RFC 3339.
pub fn millis_text(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)).unwrap_or_default()
}
