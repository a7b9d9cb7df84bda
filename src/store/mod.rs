//! The state directory (`--state DIR`, `SYNCLINE_STATE`, default `./.syncline`): contract tables as
//! Arrow IPC files (through `object_store`, replaced atomically; or in a shared object store, see
//! [`contracts`]), and SQLite databases: `jobs.db` (jobs, their logs and per-object errors),
//! `register.db` (the embedded register), `calls.db` and `webhooks.db`.

pub mod calls;
pub mod contracts;
pub mod jobs;
pub mod leases;
pub mod register;
pub mod webhooks;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::error::ArrowError;
use arrow::ipc::reader::FileReader;
use object_store::local::LocalFileSystem;

pub use contracts::{ContractStore, Generation};

pub use jobs::{Counts, JobRecord, JobStatus, JobStore, SavedCursor};
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
    Object { sync: String, source: object_store::Error },
    #[error("{0}")]
    NotFound(String),
    #[error("synchronization `{0}` is already running (another run holds its lock)")]
    Busy(String),
    #[error("synchronization `{sync}` is already running on another machine ({holder} holds its lease)")]
    Leased { sync: String, holder: String },
    #[error("{0}")]
    Location(String),
    /// Another writer saved the contracts first (a shared contract store): this run's save is refused.
    #[error(
        "contract table of `{sync}`: another run saved generation {generation} in {at} first; this run's save was refused (the next run adopts what both wrote)"
    )]
    Conflict { sync: String, generation: u64, at: String },
    #[error("contract table of `{sync}`: {reason}")]
    Corrupt { sync: String, reason: String },
}

/// The state directory of one installation.
#[derive(Clone)]
pub struct StateDir {
    root: PathBuf,
    contracts: ContractStore,
    /// Leases on PostgreSQL, when machines share no disk for the run lock to reach (`--leases`).
    leases: Option<Arc<leases::Leases>>,
    /// The jobs database, opened once: the service reads it on every request and scheduler tick.
    jobs: Arc<std::sync::Mutex<Option<Arc<JobStore>>>>,
}

/// A state directory shows as where it is.
impl std::fmt::Debug for StateDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StateDir({})", self.root.display())
    }
}

impl StateDir {
    /// Opens (creating if needed) the state directory at `root`.
    pub fn open(root: &Path) -> Result<StateDir, StoreError> {
        let io = |source| StoreError::Io { path: root.display().to_string(), source };
        std::fs::create_dir_all(root.join("contracts")).map_err(io)?;
        let root = root.canonicalize().map_err(io)?;
        let objects = LocalFileSystem::new_with_prefix(&root)
            .map_err(|e| StoreError::Io { path: root.display().to_string(), source: std::io::Error::other(e.to_string()) })?;
        Ok(StateDir { root, contracts: ContractStore::Local(Arc::new(objects)), leases: None, jobs: Arc::default() })
    }

    /// Keeps the contract tables in the object store at `location` (`s3://bucket/prefix`, `gs://…`,
    /// `az://…`, `file:///dir`) instead of the state directory, so machines sharing it share them.
    pub async fn with_contracts(mut self, location: &str) -> Result<StateDir, StoreError> {
        self.contracts = ContractStore::shared(location, self.root.join("tmp")).await?;
        Ok(self)
    }

    /// Takes leases on the PostgreSQL database at `location` (`postgres://…[?schema=NAME]`) besides
    /// the run lock, so that processes on other machines never run a synchronization at once.
    pub async fn with_leases(mut self, location: &str, ttl: std::time::Duration) -> Result<StateDir, StoreError> {
        self.leases = Some(Arc::new(leases::Leases::connect(location, ttl).await?));
        Ok(self)
    }

    pub fn leases(&self) -> Option<&Arc<leases::Leases>> {
        self.leases.as_ref()
    }

    /// Where the contract tables are kept.
    pub fn contract_store(&self) -> &ContractStore {
        &self.contracts
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn jobs(&self) -> Result<Arc<JobStore>, StoreError> {
        let mut slot = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(jobs) = slot.as_ref() {
            return Ok(Arc::clone(jobs));
        }
        let jobs = Arc::new(JobStore::open(&self.root.join("jobs.db"))?);
        *slot = Some(Arc::clone(&jobs));
        Ok(jobs)
    }

    /// Where an API target records the objects it creates, until the contracts hold them.
    pub fn journal_path(&self, synchronization: &str) -> PathBuf {
        self.root.join("contracts").join(format!("{}.created.ndjson", file_name(synchronization)))
    }

    /// Forgets the recorded creates of a synchronization: called once its contracts are saved.
    pub fn clear_journal(&self, synchronization: &str) -> Result<(), StoreError> {
        let path = self.journal_path(synchronization);
        match std::fs::remove_file(&path) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                Err(StoreError::Io { path: path.display().to_string(), source: error })
            }
            _ => Ok(()),
        }
    }

    /// This installation's id, made on first use: the name its register goes by in change feeds
    /// (a peer reading this register names itself by its own, so neither sends the other's back).
    pub fn instance(&self) -> Result<String, StoreError> {
        let path = self.root.join("instance");
        let io = |source| StoreError::Io { path: path.display().to_string(), source };
        let read = || -> Result<Option<String>, StoreError> {
            match std::fs::read_to_string(&path) {
                Ok(text) => Ok(uuid::Uuid::parse_str(text.trim()).ok().map(|id| id.to_string())),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(io(e)),
            }
        };
        if let Some(id) = read()? {
            return Ok(id);
        }
        // Written aside and linked into place: two processes starting at once agree on one id, and
        // a crash leaves no half-written file.
        let id = uuid::Uuid::new_v4().to_string();
        let aside = self.root.join(format!("instance.{id}"));
        std::fs::write(&aside, &id).map_err(io)?;
        let linked = std::fs::hard_link(&aside, &path);
        let _ = std::fs::remove_file(&aside);
        match linked {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(io(e)),
            _ => {}
        }
        read()?.ok_or_else(|| io(std::io::Error::other("the instance file holds no id")))
    }

    /// The call log.
    pub fn calls(&self) -> Result<calls::CallStore, StoreError> {
        calls::CallStore::open(&self.root.join("calls.db"))
    }

    /// The webhook deliveries database.
    pub fn webhooks(&self) -> Result<webhooks::WebhookStore, StoreError> {
        webhooks::WebhookStore::open(&self.root.join("webhooks.db"))
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
        // A lock can outlive its run for an instant: a process forked at that moment (any child this
        // process starts) holds a copy of the descriptor until it execs. A run holds it far longer.
        for _ in 0..20 {
            match file.try_lock() {
                Ok(()) => return Ok(RunLock { _file: file, lease: None }),
                Err(std::fs::TryLockError::WouldBlock) => std::thread::sleep(std::time::Duration::from_millis(25)),
                Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
            }
        }
        Err(StoreError::Busy(sync.to_string()))
    }

    /// The lock a run holds: the run lock, and with `--leases` the synchronization's lease too.
    pub async fn lock_run(&self, sync: &str) -> Result<RunLock, StoreError> {
        let mut lock = self.lock(sync)?;
        if let Some(leases) = &self.leases {
            match leases.acquire(sync).await? {
                Some(lease) => lock.lease = Some(lease),
                None => {
                    let holder = leases.holder(sync).await?.unwrap_or_else(|| "another process".into());
                    return Err(StoreError::Leased { sync: sync.into(), holder });
                }
            }
        }
        Ok(lock)
    }

    /// How many contracts `sync` has, from the file's footer (or the manifest) alone.
    pub async fn contract_rows(&self, sync: &str) -> Result<u64, StoreError> {
        self.contracts.rows(sync).await
    }

    /// Opens the contract table of `sync` and hands it to `read`; `None` when there is none yet.
    /// What a contract is, is the diff's (`ContractTable`); the state keeps its file.
    pub async fn read_contracts<T: Send + 'static>(
        &self,
        sync: &str,
        read: impl FnOnce(FileReader<Box<dyn ReadSeek>>) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<(Option<T>, Generation), StoreError> {
        self.contracts.read(sync, read).await
    }

    /// Replaces the contract table of `sync` with `batch`, atomically; `loaded` is the generation
    /// the run read, which a shared store checks is still the newest.
    pub async fn save_contracts(&self, sync: &str, batch: RecordBatch, loaded: Generation) -> Result<(), StoreError> {
        self.contracts.save(sync, batch, loaded).await
    }
}

/// A synchronization's name as a file name: unreserved characters kept, the rest percent-encoded.
fn file_name(sync: &str) -> String {
    sync.bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

/// The synchronization a file name stands for (what [`file_name`] encoded); `None` for another file.
fn name_of_file(file: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(file.len());
    let mut rest = file.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        if b == b'%' {
            let hex = std::str::from_utf8(tail.get(..2)?).ok()?;
            bytes.push(u8::from_str_radix(hex, 16).ok()?);
            rest = &tail[2..];
        } else if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
            bytes.push(b);
            rest = tail;
        } else {
            return None;
        }
    }
    String::from_utf8(bytes).ok().filter(|name| file_name(name) == file)
}

/// Held while a synchronization runs.
pub struct RunLock {
    _file: std::fs::File,
    lease: Option<leases::Lease>,
}

impl RunLock {
    /// Cancelled when the run's lease is lost (`--leases`): the run must stop writing.
    pub fn lost(&self) -> Option<&tokio_util::sync::CancellationToken> {
        self.lease.as_ref().map(|lease| lease.lost())
    }

    /// Ends the run's hold: the lease goes back at once (the file lock with the guard).
    pub async fn release(self) {
        if let Some(lease) = self.lease {
            lease.release().await;
        }
    }
}

/// A contract file being read: a local file or the bytes of a remote one.
pub trait ReadSeek: std::io::Read + std::io::Seek + Send {}
impl<T: std::io::Read + std::io::Seek + Send> ReadSeek for T {}

/// The row count a contract file's footer records.
pub fn footer_rows(reader: &FileReader<Box<dyn ReadSeek>>) -> u64 {
    reader.custom_metadata().get("rows").and_then(|r| r.parse().ok()).unwrap_or(0)
}

/// Now, as stored in the state databases (RFC 3339, milliseconds, UTC).
pub fn now_text() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A millisecond timestamp as RFC 3339.
pub fn millis_text(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)).unwrap_or_default()
}
