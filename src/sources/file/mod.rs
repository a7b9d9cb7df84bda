//! The file source (`type: file`, and `type: excel` for spreadsheets): files at a local path or any
//! object-store URL (`s3://`, `gs://`, `az://`, `http(s)://`), read in their format. `location` is a
//! directory with `sourceConfig.path` a glob in it, or the file itself.
//! Locations are opened as [`crate::objects`] opens them (credentials from the environment).

pub mod remote;
pub mod select;

use std::io;
use std::sync::Arc;

use chrono::Utc;
use futures::future::BoxFuture;
use futures::{FutureExt, TryStreamExt};
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt};
use tokio_util::io::StreamReader;

use crate::config::{FileFormat, SourceConfigDef, SourceDef};
pub use crate::objects::memory_store;
use crate::objects::{self, LocationError, redact};
use crate::sources::feed::spawn_feed;
use crate::sources::formats::{self, EventSender, FormatOptions, ReadError};
use crate::sources::registry::{FILE_KEYS, SourceConnector, validate_files};
use crate::sources::{Source, SourceError, SourceStream};
use select::{Fetch, FileEntry, Selection};

/// Files in one store under one directory.
pub struct FileSource {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn ObjectStore>,
    /// The directory in the store.
    root: StorePath,
    /// The location as the user wrote it, without credentials.
    shown: String,
    /// The file itself, when `location` names one (no `path` glob).
    single: Option<String>,
    selection: Selection,
    options: FormatOptions,
}

/// The file source, as the registry lists it: a path or any object-store URL.
pub const CONNECTOR: SourceConnector = SourceConnector {
    kind: "file",
    label: "Files (csv, json, parquet…)",
    schemes: crate::config::OBJECT_STORE_SCHEMES,
    local_paths: true,
    keys: FILE_KEYS,
    validate: validate_files,
    build: |def, config, _| Ok(Box::new(FileSource::new(def, config)?)),
    probe: None,
    settings: None,
    sync_settings: None,
    runs_programs: false,
    names_ids: false,
    fields: &[],
};

/// The excel source: the file source, named for spreadsheets as OpenRegister names them.
pub const EXCEL: SourceConnector = SourceConnector { kind: "excel", label: "Excel file", ..CONNECTOR };

impl FileSource {
    pub fn new(def: &SourceDef, config: &SourceConfigDef) -> Result<FileSource, SourceError> {
        let mut options = FormatOptions { limits: def.limits, ..FormatOptions::from_config(config)? };
        if def.kind == "excel" {
            match options.format {
                Some(format) if !format.is_spreadsheet() => {
                    return Err(SourceError::Config(format!("an excel source reads spreadsheets, not `{format:?}` files")));
                }
                None if FileFormat::from_name(&def.location).is_none_or(|f| !f.is_spreadsheet()) && config.path.is_none() => {
                    options.format = Some(FileFormat::Xlsx);
                }
                _ => {}
            }
        }
        let selection = Selection::from_config(config)?;
        let location = def.location.trim_end_matches('/');
        let (store, root, single) = open_store(location, selection.glob.is_none())?;
        Ok(FileSource { inner: Arc::new(Inner { store, root, shown: redact(location), single, selection, options }) })
    }
}

/// The store and directory of `location`; `is_file`: the location names the file itself.
fn open_store(location: &str, is_file: bool) -> Result<objects::Opened, SourceError> {
    objects::open(location, is_file).map_err(location_error)
}

/// A folder to write into (a file target): a local one is created when missing.
pub fn open_dir(location: &str) -> Result<(Arc<dyn ObjectStore>, StorePath), SourceError> {
    objects::open_dir(location).map_err(location_error)
}

fn location_error(error: LocationError) -> SourceError {
    match error {
        LocationError::Config(reason) => SourceError::Config(reason),
        LocationError::Folder { folder, reason } => SourceError::File { file: folder, reason },
    }
}

fn store_error(file: &str, error: object_store::Error) -> SourceError {
    use object_store::Error;
    match error {
        Error::NotFound { .. } => SourceError::File { file: file.to_string(), reason: "not found".into() },
        Error::PermissionDenied { source, .. } | Error::Unauthenticated { source, .. } => {
            SourceError::Auth { url: file.to_string(), reason: source.to_string() }
        }
        other => SourceError::Connect { url: file.to_string(), reason: other.to_string() },
    }
}

impl Inner {
    fn path_of(&self, name: &str) -> StorePath {
        name.split('/').filter(|s| !s.is_empty()).fold(self.root.clone(), |path, part| path.clone().join(part))
    }

    fn shown_name(&self, name: &str) -> String {
        if self.single.is_some() { self.shown.clone() } else { format!("{}/{name}", self.shown) }
    }

    async fn listing(&self) -> Result<Vec<FileEntry>, SourceError> {
        if let Some(file) = &self.single {
            let meta = self.store.head(&self.path_of(file)).await.map_err(|e| store_error(&self.shown, e))?;
            return Ok(vec![FileEntry { name: file.clone(), modified: Some(meta.last_modified), size: Some(meta.size) }]);
        }
        let prefix = self.path_of(&self.selection.list_prefix());
        let root_parts = self.root.parts().count();
        let metas: Vec<_> = self.store.list(Some(&prefix)).try_collect().await.map_err(|e| store_error(&self.shown, e))?;
        Ok(metas
            .into_iter()
            .map(|meta| {
                let name = meta.location.parts().skip(root_parts).map(|p| p.as_ref().to_string()).collect::<Vec<_>>().join("/");
                FileEntry { name, modified: Some(meta.last_modified), size: Some(meta.size) }
            })
            .collect())
    }

    async fn feed(&self, cursor: Option<String>, tx: &EventSender) -> Result<(), ReadError> {
        let listing = self.listing().await?;
        select::feed(&self.selection, listing, cursor, &self.shown, tx, &mut &*self).await
    }
}

impl Fetch for &Inner {
    async fn fetch(&mut self, file: &FileEntry, tx: &EventSender) -> Result<(), ReadError> {
        let shown = self.shown_name(&file.name);
        let format = self.options.format_of(&file.name)?;
        let path = self.path_of(&file.name);
        if format == FileFormat::Parquet {
            let size = match file.size {
                Some(size) => size,
                None => self.store.head(&path).await.map_err(|e| store_error(&shown, e))?.size,
            };
            return formats::read_parquet(Arc::clone(&self.store), &path, size, &shown, tx).await;
        }
        let got = self.store.get(&path).await.map_err(|e| store_error(&shown, e))?;
        let bytes = StreamReader::new(got.into_stream().map_err(io::Error::other));
        formats::read_async(bytes, &shown, format, &self.options, tx).await.map(drop)
    }
}

impl Source for FileSource {
    fn open(&self, cursor: Option<String>) -> SourceStream {
        let inner = Arc::clone(&self.inner);
        spawn_feed(move |tx| async move { inner.feed(cursor, &tx).await })
    }

    fn check(&self) -> BoxFuture<'_, Result<String, SourceError>> {
        async move {
            let listing = self.inner.listing().await?;
            let (files, _) = self.inner.selection.select(listing, None, Utc::now());
            Ok(match (&self.inner.single, &self.inner.selection.glob) {
                (Some(_), _) => format!("OK: {} ({} bytes)", self.inner.shown, files.first().and_then(|f| f.size).unwrap_or(0)),
                (None, glob) => format!("OK: {} file(s) in {} match `{}`", files.len(), self.inner.shown, glob.as_deref().unwrap_or("*")),
            })
        }
        .boxed()
    }
}
