//! Where contract tables are kept. By default in the state directory: one Arrow IPC file a
//! synchronization, replaced atomically, with the run lock keeping writers apart. With `--contracts
//! URL` in an object store that several machines share (`s3://`, `gs://`, `az://`, `file://`), where
//! no lock reaches: there every save is a new *generation*, data first under a name of its own, then
//! a small manifest created with a create-if-absent put. Two writers that loaded the same generation
//! cannot both save: the second one's manifest already exists, its run fails cleanly
//! ([`StoreError::Conflict`]) and the next run converges, as after a crash (target ids are
//! deterministic, so what it wrote is adopted).
//!
//! Layout of a shared store, under its prefix: `NAME/00000000000000000007.json` (the manifest of
//! generation 7: its data file and row count) and `NAME/00000000000000000007-UUID.arrow`. Loading
//! lists `NAME/` and takes the highest manifest; a save removes the generations before its own.

use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::ipc::reader::FileReader;
use arrow::ipc::writer::FileWriter;
use futures::TryStreamExt;
use object_store::path::Path as StorePath;
use object_store::{GetResultPayload, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, WriteMultipart};

use super::{ReadSeek, StoreError, file_name, footer_rows, name_of_file};

/// A manifest is a few hundred bytes; anything much larger is not one of ours.
const MANIFEST_LIMIT: usize = 64 * 1024;

/// The generation a table was loaded at: the one its save must follow. Always 0 in the state
/// directory, where the run lock keeps writers apart.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Generation(pub u64);

/// What a shared store's manifest says.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Manifest {
    generation: u64,
    /// The data file's name, in the synchronization's folder.
    data: String,
    rows: u64,
    saved_at: String,
}

/// Contract tables in the state directory or in a shared object store.
#[derive(Clone, Debug)]
pub enum ContractStore {
    /// `contracts/NAME.arrow` in the state directory.
    Local(Arc<dyn ObjectStore>),
    /// Generations under `root` in a store other machines may write too; a table read from it is
    /// spilled to a file under `spill` first, so reading costs disk, not memory.
    Shared { store: Arc<dyn ObjectStore>, root: StorePath, shown: String, spill: PathBuf },
}

impl ContractStore {
    /// Where the contracts are, for messages (without credentials).
    pub fn shown(&self) -> String {
        match self {
            ContractStore::Local(_) => "the state directory".into(),
            ContractStore::Shared { shown, .. } => shown.clone(),
        }
    }

    /// The contract store behind `location` (an object-store URL or a folder), checked by listing it.
    pub async fn shared(location: &str, spill: PathBuf) -> Result<ContractStore, StoreError> {
        let shown = crate::objects::redact(location);
        let (store, root) = crate::objects::open_dir(location).map_err(|e| StoreError::Location(format!("contracts at `{shown}`: {e}")))?;
        // A wrong bucket or a missing credential shows at start, not at the first save.
        let shared = ContractStore::Shared { store, root, shown, spill };
        shared.check().await?;
        Ok(shared)
    }

    /// Whether the store answers a listing (a shared one; the state directory is checked as a disk).
    pub async fn check(&self) -> Result<(), StoreError> {
        match self {
            ContractStore::Local(_) => Ok(()),
            ContractStore::Shared { store, root, shown, .. } => {
                store.list(Some(root)).try_next().await.map_err(|e| StoreError::Location(format!("contracts at `{shown}`: {e}")))?;
                Ok(())
            }
        }
    }

    /// How many contracts `sync` has: a footer or a manifest, never the table.
    pub async fn rows(&self, sync: &str) -> Result<u64, StoreError> {
        match self {
            ContractStore::Local(_) => Ok(self.read(sync, |reader| Ok(footer_rows(&reader))).await?.0.unwrap_or(0)),
            ContractStore::Shared { store, root, .. } => {
                let folder = root.clone().join(file_name(sync));
                Ok(match newest(store, &folder, sync).await? {
                    Some((_, manifest)) => manifest.rows,
                    None => 0,
                })
            }
        }
    }

    /// The synchronizations that have a saved table here, sorted.
    pub async fn names(&self) -> Result<Vec<String>, StoreError> {
        let object = |source| StoreError::Object { sync: String::new(), source };
        let mut names = Vec::new();
        match self {
            ContractStore::Local(store) => {
                let listed: Vec<_> = store.list(Some(&StorePath::from("contracts"))).try_collect().await.map_err(object)?;
                names.extend(listed.iter().filter_map(|meta| name_of_file(meta.location.filename()?.strip_suffix(".arrow")?)));
            }
            ContractStore::Shared { store, root, .. } => {
                let listed = store.list_with_delimiter(Some(root)).await.map_err(object)?;
                for folder in listed.common_prefixes {
                    let Some(name) = folder.filename().and_then(name_of_file) else { continue };
                    if newest(store, &folder, &name).await?.is_some() {
                        names.push(name);
                    }
                }
            }
        }
        names.sort();
        Ok(names)
    }

    /// The generation of the saved table of `sync`; `None` when there is none.
    pub async fn saved(&self, sync: &str) -> Result<Option<Generation>, StoreError> {
        match self {
            ContractStore::Local(store) => match store.head(&local_path(sync)).await {
                Ok(_) => Ok(Some(Generation(0))),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(source) => Err(StoreError::Object { sync: sync.into(), source }),
            },
            ContractStore::Shared { store, root, .. } => {
                Ok(newest(store, &root.clone().join(file_name(sync)), sync).await?.map(|(generation, _)| Generation(generation)))
            }
        }
    }

    /// Copies the saved table of `sync` into `to` as it is (every column, every row); `None` when `to`
    /// already has one and `replace` is off, else the rows copied. The table passes through memory
    /// once, as in a run.
    pub async fn copy_to(&self, to: &ContractStore, sync: &str, replace: bool) -> Result<Option<u64>, StoreError> {
        let existing = to.saved(sync).await?;
        if existing.is_some() && !replace {
            return Ok(None);
        }
        let name = sync.to_string();
        let read = move |reader: FileReader<Box<dyn ReadSeek>>| -> Result<RecordBatch, StoreError> {
            let arrow = |source| StoreError::Arrow { sync: name.clone(), source };
            let schema = reader.schema();
            let batches = reader.collect::<Result<Vec<_>, _>>().map_err(arrow)?;
            arrow::compute::concat_batches(&schema, &batches).map_err(arrow)
        };
        let (Some(batch), _) = self.read(sync, read).await? else { return Ok(Some(0)) };
        let rows = batch.num_rows() as u64;
        to.save(sync, batch, existing.unwrap_or_default()).await?;
        Ok(Some(rows))
    }

    /// Opens the contract table of `sync` and hands it to `read` (on a blocking thread for a file);
    /// `None` when there is none yet. Also says which generation was read.
    pub async fn read<T: Send + 'static>(
        &self,
        sync: &str,
        read: impl FnOnce(FileReader<Box<dyn ReadSeek>>) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<(Option<T>, Generation), StoreError> {
        let object = |source| StoreError::Object { sync: sync.into(), source };
        let name = sync.to_string();
        let open = move |reader: Box<dyn ReadSeek>| -> Result<T, StoreError> {
            read(FileReader::try_new(reader, None).map_err(|source| StoreError::Arrow { sync: name, source })?)
        };
        match self {
            ContractStore::Local(store) => {
                let result = match store.get(&local_path(sync)).await {
                    Ok(result) => result,
                    Err(object_store::Error::NotFound { .. }) => return Ok((None, Generation(0))),
                    Err(source) => return Err(object(source)),
                };
                let file = match result.payload {
                    GetResultPayload::File(file, _) => file,
                    GetResultPayload::Stream(_) => unreachable!("a local file system answers with files"),
                };
                let opened = blocking(sync, move || open(Box::new(std::io::BufReader::with_capacity(1 << 20, file)))).await?;
                Ok((Some(opened), Generation(0)))
            }
            ContractStore::Shared { store, root, spill, .. } => {
                let folder = root.clone().join(file_name(sync));
                // A newer save may remove the generation between the listing and the read: list again.
                for _ in 0..3 {
                    let Some((generation, manifest)) = newest(store, &folder, sync).await? else {
                        return Ok((None, Generation(0)));
                    };
                    let result = match store.get(&folder.clone().join(manifest.data.as_str())).await {
                        Ok(result) => result,
                        Err(object_store::Error::NotFound { .. }) => continue,
                        Err(source) => return Err(object(source)),
                    };
                    let file = spill_to_file(result.into_stream(), spill, sync).await?;
                    let opened = blocking(sync, move || open(Box::new(std::io::BufReader::with_capacity(1 << 20, file)))).await?;
                    return Ok((Some(opened), Generation(generation)));
                }
                Err(StoreError::Conflict { sync: sync.into(), generation: 0, at: self.shown() })
            }
        }
    }

    /// Saves `batch` as the contracts of `sync`, following `loaded` (the generation the run read).
    /// Encoded and written in slices, so saving adds only a slice's worth of memory.
    pub async fn save(&self, sync: &str, batch: RecordBatch, loaded: Generation) -> Result<(), StoreError> {
        let object = |source| StoreError::Object { sync: sync.into(), source };
        match self {
            ContractStore::Local(store) => {
                // A multipart upload into a file renamed into place when complete: atomic.
                let upload = WriteMultipart::new(store.put_multipart(&local_path(sync)).await.map_err(object)?);
                write_ipc(upload, sync, &batch).await
            }
            ContractStore::Shared { store, root, .. } => {
                let folder = root.clone().join(file_name(sync));
                let generation = loaded.0 + 1;
                let data = format!("{generation:020}-{}.arrow", uuid::Uuid::new_v4());
                let rows = batch.num_rows() as u64;
                let data_path = folder.clone().join(data.as_str());
                let upload = WriteMultipart::new(store.put_multipart(&data_path).await.map_err(object)?);
                write_ipc(upload, sync, &batch).await?;
                let manifest = Manifest { generation, data, rows, saved_at: super::now_text() };
                let body = serde_json::to_vec(&manifest).expect("a manifest serializes");
                let options = PutOptions { mode: PutMode::Create, ..PutOptions::default() };
                match store.put_opts(&manifest_path(&folder, generation), PutPayload::from(body), options).await {
                    Ok(_) => {}
                    Err(object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. }) => {
                        let _ = store.delete(&data_path).await;
                        return Err(StoreError::Conflict { sync: sync.into(), generation, at: self.shown() });
                    }
                    Err(source) => {
                        let _ = store.delete(&data_path).await;
                        return Err(object(source));
                    }
                }
                // The save stands; removing what it replaced is housekeeping and may fail alone.
                if let Err(error) = remove_before(store, &folder, generation, &manifest.data).await {
                    tracing::warn!(synchronization = sync, "contracts saved; older generations not removed: {error}");
                }
                Ok(())
            }
        }
    }
}

fn local_path(sync: &str) -> StorePath {
    StorePath::from(format!("contracts/{}.arrow", file_name(sync)))
}

fn manifest_path(folder: &StorePath, generation: u64) -> StorePath {
    folder.clone().join(format!("{generation:020}.json"))
}

/// The generation a file in a synchronization's folder belongs to, and whether it is a manifest.
fn generation_of(file: &str) -> Option<(u64, bool)> {
    if file.contains(['/', '\\']) {
        return None;
    }
    let digits = file.get(..20)?;
    let generation = digits.bytes().all(|b| b.is_ascii_digit()).then(|| digits.parse().ok())??;
    match &file[20..] {
        ".json" => Some((generation, true)),
        rest if rest.starts_with('-') && rest.ends_with(".arrow") => Some((generation, false)),
        _ => None,
    }
}

/// The newest manifest in `folder`, read and checked.
async fn newest(store: &Arc<dyn ObjectStore>, folder: &StorePath, sync: &str) -> Result<Option<(u64, Manifest)>, StoreError> {
    let object = |source| StoreError::Object { sync: sync.into(), source };
    for _ in 0..3 {
        let listed: Vec<_> = store.list(Some(folder)).try_collect().await.map_err(object)?;
        let Some(generation) = listed
            .iter()
            .filter_map(|meta| generation_of(meta.location.filename()?))
            .filter_map(|(generation, manifest)| manifest.then_some(generation))
            .max()
        else {
            return Ok(None);
        };
        let result = match store.get(&manifest_path(folder, generation)).await {
            Ok(result) if result.meta.size > MANIFEST_LIMIT as u64 => {
                return Err(StoreError::Corrupt {
                    sync: sync.into(),
                    reason: format!("manifest {generation} is {} bytes", result.meta.size),
                });
            }
            Ok(result) => result,
            Err(object_store::Error::NotFound { .. }) => continue,
            Err(source) => return Err(object(source)),
        };
        let bytes = result.bytes().await.map_err(object)?;
        let manifest: Manifest = serde_json::from_slice(&bytes)
            .map_err(|e| StoreError::Corrupt { sync: sync.into(), reason: format!("manifest {generation}: {e}") })?;
        // The data file must be this generation's, in this folder: a manifest cannot point elsewhere.
        if manifest.generation != generation || generation_of(&manifest.data) != Some((generation, false)) {
            return Err(StoreError::Corrupt { sync: sync.into(), reason: format!("manifest {generation} names `{}`", manifest.data) });
        }
        return Ok(Some((generation, manifest)));
    }
    Err(StoreError::Conflict { sync: sync.into(), generation: 0, at: "the shared store".into() })
}

/// Removes every file of generations before `generation`, and the data of its lost attempts.
async fn remove_before(store: &Arc<dyn ObjectStore>, folder: &StorePath, generation: u64, kept: &str) -> Result<(), object_store::Error> {
    let listed: Vec<_> = store.list(Some(folder)).try_collect().await?;
    for meta in listed {
        let Some(file) = meta.location.filename() else { continue };
        let stale = match generation_of(file) {
            Some((g, _)) if g < generation => true,
            Some((g, false)) => g == generation && file != kept,
            _ => false,
        };
        if stale {
            match store.delete(&meta.location).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(error) => return Err(error),
            }
        }
    }
    Ok(())
}

/// Writes `batch` as an Arrow IPC file into `upload`, a slice at a time; an upload that fails
/// part-way is aborted, so no half-written part is left with the store (S3 keeps, and bills,
/// incomplete multipart uploads until told otherwise).
async fn write_ipc(mut upload: WriteMultipart, sync: &str, batch: &RecordBatch) -> Result<(), StoreError> {
    let object = |source| StoreError::Object { sync: sync.into(), source };
    match encode_ipc(&mut upload, sync, batch).await {
        Ok(()) => upload.finish().await.map(drop).map_err(object),
        Err(error) => {
            let _ = upload.abort().await;
            Err(error)
        }
    }
}

async fn encode_ipc(upload: &mut WriteMultipart, sync: &str, batch: &RecordBatch) -> Result<(), StoreError> {
    const SLICE: usize = 65_536;
    let arrow = |source| StoreError::Arrow { sync: sync.into(), source };
    let object = |source| StoreError::Object { sync: sync.into(), source };
    let mut writer = FileWriter::try_new(Vec::new(), &batch.schema()).map_err(arrow)?;
    writer.write_metadata("rows", batch.num_rows().to_string());
    let mut offset = 0;
    while offset < batch.num_rows() {
        let len = SLICE.min(batch.num_rows() - offset);
        writer.write(&batch.slice(offset, len)).map_err(arrow)?;
        upload.write(writer.get_mut());
        writer.get_mut().clear();
        upload.wait_for_capacity(2).await.map_err(object)?;
        offset += len;
    }
    writer.finish().map_err(arrow)?;
    upload.write(writer.get_mut());
    Ok(())
}

/// Copies a remote table into an unnamed file under `spill` (created, then unlinked while open, so
/// nothing is left behind even by a crash a moment later).
async fn spill_to_file(
    mut stream: futures::stream::BoxStream<'static, object_store::Result<bytes::Bytes>>,
    spill: &std::path::Path,
    sync: &str,
) -> Result<std::fs::File, StoreError> {
    use std::io::{Seek, Write};
    let io = |source| StoreError::Io { path: spill.display().to_string(), source };
    std::fs::create_dir_all(spill).map_err(io)?;
    let path = spill.join(format!("contracts-{}.arrow", uuid::Uuid::new_v4()));
    let mut file = std::fs::OpenOptions::new().create_new(true).read(true).write(true).open(&path).map_err(io)?;
    let _ = std::fs::remove_file(&path);
    while let Some(chunk) = stream.try_next().await.map_err(|source| StoreError::Object { sync: sync.into(), source })? {
        file.write_all(&chunk).map_err(io)?;
    }
    file.rewind().map_err(io)?;
    Ok(file)
}

async fn blocking<T: Send + 'static>(sync: &str, work: impl FnOnce() -> Result<T, StoreError> + Send + 'static) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| StoreError::Io { path: sync.into(), source: std::io::Error::other(e.to_string()) })?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_our_file_names_carry_a_generation() {
        assert_eq!(generation_of("00000000000000000007.json"), Some((7, true)));
        assert_eq!(generation_of("00000000000000000007-0e1f.arrow"), Some((7, false)));
        for other in [
            "7.json",
            "0000000000000000000x.json",
            "00000000000000000007.json.tmp",
            "00000000000000000007.arrow",
            "../x",
            "00000000000000000007-/../x.arrow",
        ] {
            assert_eq!(generation_of(other), None, "{other}");
        }
        // Twenty digits past u64 are not a generation either (no panic, no wrap).
        assert_eq!(generation_of("99999999999999999999.json"), None);
    }
}
