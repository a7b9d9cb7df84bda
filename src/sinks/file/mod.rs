//! The file target (`target: {type: file}`): NDJSON, CSV or Parquet at a local path or any object-store
//! URL. `mode: snapshot` (default) keeps one file holding every object, replaced whole each run;
//! `mode: changes` writes one file per run of what it created, updated and deleted (`_op`, `_job`).
//! Every row carries its origin id as `_id`.
//!
//! A file appears only complete: it is uploaded under a temporary name and renamed at the end of the
//! run, and only then are the writes reported, so contracts never claim rows a file does not hold. A
//! run cut off leaves the last complete file, and nothing to adopt. A snapshot is the new and changed
//! rows as they come, then the previous snapshot's other rows streamed across at the end, so memory
//! holds the ids this run touched, never the file.

mod settings;
mod writer;

use std::collections::HashSet;
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::{FutureExt, TryStreamExt};
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt, WriteMultipart};
use serde_json::{Map, Value};
use tokio::sync::mpsc;

use super::registry::{SinkConnector, located, target_of};
use super::{AckSender, Sink, SinkError};
use crate::config::{ColumnTypes, FileFormat, OBJECT_STORE_SCHEMES, SourceConfigDef, TargetDef, check_location};
use crate::sources::formats::{self, FormatOptions, ReadError};
use crate::sources::registry::{SettingsSchema, read_settings};
use crate::sources::{RawRecord, SourceEvent};
use crate::write::{Ack, Action, Mapped};
pub use settings::{Compression, FileMode, FileTargetSettings};
use writer::Output;

/// The file target, as the registry lists it: NDJSON, CSV or Parquet files at a path or an
/// object-store URL.
pub const CONNECTOR: SinkConnector = SinkConnector {
    kind: "file",
    settings: Some(SettingsSchema {
        keys: &["format", "mode", "fileName", "rowsPerFile", "compression"],
        secrets: &[],
        read: read_settings::<FileTargetSettings>,
    }),
    runs_programs: false,
    validate,
    build: |context| {
        Ok(Box::new(FileSink::new(target_of(context.sync)?, &context.sync.name, context.job, context.dry_run).map_err(|e| e.to_string())?))
    },
};

/// A file target's own keys, as loading read them (defaults for a target built in code).
fn settings_of(target: &TargetDef) -> FileTargetSettings {
    target.settings.get::<FileTargetSettings>().cloned().unwrap_or_default()
}

fn validate(target: &TargetDef, _: &std::collections::BTreeMap<String, crate::config::SourceDef>) -> Result<(), String> {
    check_location("file target", OBJECT_STORE_SCHEMES, true, located(target)?)?;
    let target = &settings_of(target);
    if target.rows_per_file.is_some() && target.mode != Some(FileMode::Changes) {
        return Err("`rowsPerFile` splits change files (`mode: changes`); a snapshot is one file".into());
    }
    let parquet = target.format == Some(FileFormat::Parquet);
    if matches!(target.compression, Some(Compression::Snappy | Compression::Zstd)) && !parquet {
        return Err("snappy and zstd compress Parquet; NDJSON and CSV take gzip".into());
    }
    match target.format {
        None | Some(FileFormat::Ndjson | FileFormat::Csv | FileFormat::Parquet) => Ok(()),
        Some(other) => Err(format!("a file target writes ndjson, csv or parquet, not {other:?}")),
    }
}

pub struct FileSink {
    store: Arc<dyn ObjectStore>,
    dir: StorePath,
    shown: String,
    name: String,
    format: FileFormat,
    compression: Compression,
    mode: FileMode,
    /// Change files: at most this many rows each (`{name}-{job}-0001…`).
    rows_per_file: Option<usize>,
    job: String,
    dry_run: bool,
    /// The folder, when it is on this machine.
    local_dir: Option<std::path::PathBuf>,
}

fn extension(format: FileFormat) -> &'static str {
    match format {
        FileFormat::Csv => "csv",
        FileFormat::Parquet => "parquet",
        _ => "ndjson",
    }
}

impl FileSink {
    pub fn new(def: &TargetDef, synchronization: &str, job: &str, dry_run: bool) -> Result<FileSink, SinkError> {
        let location = def.location.clone().ok_or_else(|| SinkError::Stopped("a file target needs a `location`".into()))?;
        let settings = settings_of(def);
        let format = settings.format.unwrap_or(FileFormat::Ndjson);
        let compression = settings.compression.unwrap_or_default();
        Output::new(format, compression).map_err(SinkError::Stopped)?;
        let (store, dir) = crate::sources::file::open_dir(&location).map_err(|e| SinkError::Stopped(e.to_string()))?;
        Ok(FileSink {
            store,
            dir,
            shown: location.trim_end_matches('/').to_string(),
            name: settings.file_name.clone().unwrap_or_else(|| synchronization.to_string()),
            format,
            compression,
            mode: settings.mode.unwrap_or_default(),
            rows_per_file: settings.rows_per_file.filter(|n| *n > 0).map(|n| n as usize),
            job: job.to_string(),
            dry_run,
            local_dir: (!location.contains("://") || location.starts_with("file://"))
                .then(|| std::path::PathBuf::from(location.strip_prefix("file://").unwrap_or(&location))),
        })
    }

    fn path(&self, name: &str) -> StorePath {
        self.dir.clone().join(name)
    }

    fn stopped(&self, what: &str, error: impl std::fmt::Display) -> SinkError {
        SinkError::Stopped(format!("{}/{}: {what}: {error}", self.shown, self.name))
    }

    async fn write(self, mut input: mpsc::Receiver<Vec<Mapped>>, acks: AckSender) -> Result<(), SinkError> {
        if self.dry_run {
            while let Some(batch) = input.recv().await {
                let _ = acks.send(batch.into_iter().map(|op| op.ack(None)).collect());
            }
            return Ok(());
        }
        let gz = if self.compression == Compression::Gzip && self.format != FileFormat::Parquet { ".gz" } else { "" };
        let ext = format!("{}{gz}", extension(self.format));
        let part_name = |part: usize| match (self.mode, self.rows_per_file) {
            (FileMode::Snapshot, _) => format!("{}.{ext}", self.name),
            (FileMode::Changes, None) => format!("{}-{}.{ext}", self.name, self.job),
            (FileMode::Changes, Some(_)) => format!("{}-{}-{part:04}.{ext}", self.name, self.job),
        };
        self.remove_stale_staging().await;
        let mut final_name = part_name(1);
        let mut temp = self.path(&format!(".{final_name}.partial-{}", self.job));
        // Change files completed so far, to put in place at the end.
        let mut parts: Vec<(StorePath, String)> = Vec::new();
        let mut part_rows = 0usize;
        // Only change files are split: a snapshot is one file, merged whole.
        let limit = if self.mode == FileMode::Changes { self.rows_per_file } else { None };
        let mut pending: Vec<Ack> = Vec::new();
        let mut upload = WriteMultipart::new(self.store.put_multipart(&temp).await.map_err(|e| self.stopped("cannot write", e))?);
        let mut rows = Output::new(self.format, self.compression).map_err(SinkError::Stopped)?;
        let (mut touched, mut deleted, mut soft) = (HashSet::new(), HashSet::new(), HashSet::new());
        let mut any = false;
        while let Some(batch) = input.recv().await {
            any = true;
            let mut out = Vec::with_capacity(batch.len());
            for op in &batch {
                let origin_id = &op.origin_id;
                match (&op.what, self.mode) {
                    (Action::Upsert(object), mode) => {
                        touched.insert(origin_id.clone());
                        let mut row = with_id(origin_id, object);
                        if mode == FileMode::Changes {
                            row.insert("_op".into(), Value::from(if op.created { "created" } else { "updated" }));
                            row.insert("_job".into(), Value::from(self.job.as_str()));
                        }
                        out.push(row);
                    }
                    (Action::Delete { soft: is_soft }, FileMode::Snapshot) => {
                        if *is_soft {
                            soft.insert(origin_id.clone())
                        } else {
                            deleted.insert(origin_id.clone())
                        };
                    }
                    (Action::Delete { soft: is_soft }, FileMode::Changes) => {
                        let mut row = with_id(origin_id, &Value::Null);
                        row.insert("_op".into(), Value::from(if *is_soft { "soft-deleted" } else { "deleted" }));
                        row.insert("_job".into(), Value::from(self.job.as_str()));
                        out.push(row);
                    }
                }
            }
            // A batch a format refuses (a Parquet value of another type than its column) fails as a whole.
            let mut refused = None;
            let mut rest = &out[..];
            while !rest.is_empty() {
                let room = limit.map_or(rest.len(), |n| n - part_rows).min(rest.len());
                let (now, later) = rest.split_at(room);
                refused = refused.or(rows.write(now).err());
                upload.write(&rows.take().map_err(|e| self.stopped("cannot compress", e))?);
                upload.wait_for_capacity(2).await.map_err(|e| self.stopped("cannot write", e))?;
                part_rows += now.len();
                rest = later;
                if limit == Some(part_rows) && !rest.is_empty() {
                    // This part is full: complete it, and go on in the next.
                    let full = std::mem::replace(&mut rows, Output::new(self.format, self.compression).map_err(SinkError::Stopped)?);
                    parts.push((temp, final_name));
                    final_name = part_name(parts.len() + 1);
                    temp = self.path(&format!(".{final_name}.partial-{}", self.job));
                    let next = WriteMultipart::new(self.store.put_multipart(&temp).await.map_err(|e| self.stopped("cannot write", e))?);
                    self.seal(std::mem::replace(&mut upload, next), full).await?;
                    part_rows = 0;
                }
            }
            pending.extend(batch.into_iter().map(|op| op.ack(refused.clone())));
        }
        // Nothing changed: no change file, and the snapshot stays as it is (a re-run writes nothing).
        if !any && (self.mode == FileMode::Changes || self.store.head(&self.path(&final_name)).await.is_ok()) {
            let _ = upload.abort().await;
            return Ok(());
        }
        if self.mode == FileMode::Snapshot {
            self.carry_over(&final_name, &touched, &deleted, &soft, &mut rows, &mut upload).await?;
        }
        self.seal(upload, rows).await?;
        parts.push((temp, final_name));
        for (temp, name) in &parts {
            self.store.rename(temp, &self.path(name)).await.map_err(|e| self.stopped("cannot put the file in place", e))?;
        }
        let _ = acks.send(pending);
        Ok(())
    }

    /// Removes what a run cut off earlier left under its temporary names (`.NAME….partial-JOB`): never
    /// a complete file, so nothing of value; best effort, since a leftover only costs space.
    async fn remove_stale_staging(&self) {
        let prefix = format!(".{}", self.name);
        let own = format!(".partial-{}", self.job);
        let stale = |name: &str| name.starts_with(&prefix) && name.contains(".partial-") && !name.contains(&own);
        let report = |name: &str, result: Result<(), String>| match result {
            Ok(()) => tracing::info!(file = name, "removed the staging file of a run that was cut off"),
            Err(error) => tracing::warn!(file = name, %error, "cannot remove a stale staging file"),
        };
        // A local upload cut off lives on as `NAME#N`, which the store's listing leaves out.
        if let Some(dir) = &self.local_dir {
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if stale(&name) {
                    report(&name, std::fs::remove_file(entry.path()).map_err(|e| e.to_string()));
                }
            }
            return;
        }
        let Ok(listed) = self.store.list_with_delimiter(Some(&self.dir)).await else { return };
        for object in listed.objects {
            let name = object.location.filename().unwrap_or_default().to_string();
            if stale(&name) {
                report(&name, self.store.delete(&object.location).await.map_err(|e| e.to_string()));
            }
        }
    }

    /// Completes an upload with the format's last bytes (Parquet's footer, gzip's trailer).
    async fn seal(&self, mut upload: WriteMultipart, rows: Output) -> Result<(), SinkError> {
        upload.write(&rows.finish().map_err(|e| self.stopped("cannot finish", e))?);
        upload.finish().await.map_err(|e| self.stopped("cannot write", e)).map(drop)
    }

    /// Streams the previous snapshot's rows this run did not touch into the new one.
    async fn carry_over(
        &self,
        name: &str,
        touched: &HashSet<String>,
        deleted: &HashSet<String>,
        soft: &HashSet<String>,
        rows: &mut Output,
        upload: &mut WriteMultipart,
    ) -> Result<(), SinkError> {
        let path = self.path(name);
        let size = match self.store.head(&path).await {
            Ok(meta) => meta.size,
            Err(object_store::Error::NotFound { .. }) => return Ok(()),
            Err(e) => return Err(self.stopped("cannot read the previous snapshot", e)),
        };
        let (tx, mut rx) = mpsc::channel(4);
        let (store, format, shown) = (Arc::clone(&self.store), self.format, format!("{}/{name}", self.shown));
        // Read back as text: the values were written from typed objects, CSV keeps them as text anyway.
        let mut options =
            FormatOptions::from_config(&SourceConfigDef { column_types: Some(ColumnTypes::Text), ..SourceConfigDef::default() })
                .map_err(|e| SinkError::Stopped(e.to_string()))?;
        // Parquet compresses its own pages; a text snapshot was gzipped whole.
        options.gzip = Some(self.compression == Compression::Gzip && self.format != FileFormat::Parquet);
        let reader = tokio::spawn(async move {
            let read = if format == FileFormat::Parquet {
                formats::read_parquet(store, &path, size, &shown, &tx).await
            } else {
                match store.get(&path).await {
                    Ok(got) => {
                        let bytes = tokio_util::io::StreamReader::new(got.into_stream().map_err(std::io::Error::other));
                        formats::read_async(bytes, &shown, format, &options, &tx).await.map(drop)
                    }
                    Err(e) => Err(ReadError::Failed(crate::sources::SourceError::File { file: shown.clone(), reason: e.to_string() })),
                }
            };
            if let Err(ReadError::Failed(error)) = read {
                let _ = tx.send(Err(error)).await;
            }
        });
        let now = Value::from(crate::store::now_text());
        while let Some(event) = rx.recv().await {
            let chunk = match event {
                Ok(SourceEvent::Chunk(chunk)) => chunk,
                Ok(_) => continue,
                Err(error) => return Err(self.stopped("cannot read the previous snapshot", error)),
            };
            let mut out = Vec::with_capacity(chunk.records.len());
            for record in chunk.records {
                let value = match record {
                    RawRecord::Json(bytes) => serde_json::from_slice(&bytes).unwrap_or(Value::Null),
                    RawRecord::Value(value) => value,
                    RawRecord::Broken(_) | RawRecord::Gone(_) => continue,
                };
                let Value::Object(mut row) = value else { continue };
                let id = match row.get("_id") {
                    Some(Value::String(s)) => s.clone(),
                    Some(other) => other.to_string(),
                    None => continue,
                };
                if touched.contains(&id) || deleted.contains(&id) {
                    continue;
                }
                if soft.contains(&id) {
                    row.insert("_deleted_at".into(), now.clone());
                }
                out.push(row);
            }
            rows.write(&out).map_err(|e| self.stopped("cannot carry the previous snapshot over", e))?;
            upload.write(&rows.take().map_err(|e| self.stopped("cannot compress", e))?);
            upload.wait_for_capacity(2).await.map_err(|e| self.stopped("cannot write", e))?;
        }
        let _ = reader.await;
        Ok(())
    }
}

fn with_id(origin_id: &str, object: &Value) -> Map<String, Value> {
    let mut row = Map::new();
    row.insert("_id".into(), Value::from(origin_id));
    match object {
        Value::Object(fields) => row.extend(fields.iter().map(|(k, v)| (k.clone(), v.clone()))),
        Value::Null => {}
        other => {
            row.insert("value".into(), other.clone());
        }
    }
    row
}

impl Sink for FileSink {
    /// Files appear only complete, at the end of a run: an interrupted run left nothing to adopt.
    fn existing(&self) -> Result<Vec<String>, SinkError> {
        Ok(Vec::new())
    }

    fn write_all(self: Box<Self>, input: mpsc::Receiver<Vec<Mapped>>, acks: AckSender) -> BoxFuture<'static, Result<(), SinkError>> {
        self.write(input, acks).boxed()
    }
}
