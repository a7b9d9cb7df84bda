//! Object-store locations, shared by the file source, the file target and the contract tables: a
//! local folder (a path or `file://`), `memory://NAME/…`, and any URL `object_store` knows (`s3://`,
//! `gs://`, `az://`, `http(s)://`).
//!
//! Cloud credentials come from the environment the way each store documents it (`AWS_ACCESS_KEY_ID`,
//! `GOOGLE_SERVICE_ACCOUNT`, `AZURE_STORAGE_ACCOUNT_KEY`…), never from a pipeline file.

use std::sync::Arc;

use object_store::ObjectStore;
use object_store::local::LocalFileSystem;
use object_store::path::Path as StorePath;

/// A location that cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum LocationError {
    /// The location is not one we can use (a bad URL, an unknown scheme, a store setting missing).
    #[error("{0}")]
    Config(String),
    /// A local folder that cannot be opened or created.
    #[error("{folder}: {reason}")]
    Folder { folder: String, reason: String },
}

/// A store, the directory in it, and the file when the location names one.
pub type Opened = (Arc<dyn ObjectStore>, StorePath, Option<String>);

/// The store and directory of `location`; `is_file`: the location names the file itself.
pub fn open(location: &str, is_file: bool) -> Result<Opened, LocationError> {
    let (dir, file) = match (is_file, location.rsplit_once('/')) {
        (true, Some((dir, file))) => (dir, Some(file.to_string())),
        _ => (location, None),
    };
    if !location.contains("://") || location.starts_with("file://") {
        let path = dir.strip_prefix("file://").unwrap_or(dir);
        let path = if path.is_empty() { "/" } else { path };
        let store = LocalFileSystem::new_with_prefix(path)
            .map_err(|e| LocationError::Folder { folder: path.to_string(), reason: format!("cannot open the directory: {e}") })?;
        return Ok((Arc::new(store), StorePath::default(), file));
    }
    let url = url::Url::parse(dir).map_err(|e| LocationError::Config(format!("`{}` is not a URL: {e}", redact(location))))?;
    if url.scheme() == "memory" {
        let root = StorePath::from_url_path(url.path()).map_err(|e| LocationError::Config(format!("`{location}`: {e}")))?;
        return Ok((memory_store(url.host_str().unwrap_or_default()), root, file));
    }
    // Only the stores' own settings: any other variable is not theirs to read.
    let mut settings: Vec<(String, String)> =
        std::env::vars().filter(|(k, _)| ["AWS_", "GOOGLE_", "AZURE_"].iter().any(|p| k.starts_with(p))).collect();
    // A location written as plain http:// asks for plain HTTP; the store refuses it unless told.
    if url.scheme() == "http" || settings.iter().any(|(k, v)| k == "AWS_ENDPOINT" && v.starts_with("http://")) {
        settings.push(("allow_http".into(), "true".into()));
    }
    let (store, root) = object_store::parse_url_opts(&url, settings)
        .map_err(|e| LocationError::Config(format!("cannot use `{}`: {e}", redact(location))))?;
    Ok((Arc::from(store), root, file))
}

/// A folder to write into: a local one is created when missing.
pub fn open_dir(location: &str) -> Result<(Arc<dyn ObjectStore>, StorePath), LocationError> {
    let location = location.trim_end_matches('/');
    if !location.contains("://") || location.starts_with("file://") {
        let path = location.strip_prefix("file://").unwrap_or(location);
        std::fs::create_dir_all(path)
            .map_err(|e| LocationError::Folder { folder: path.to_string(), reason: format!("cannot create the folder: {e}") })?;
    }
    let (store, root, _) = open(location, false)?;
    Ok((store, root))
}

/// The store of `memory://NAME/…` locations: held in this process and shared by every location that
/// names it (for embedding syncline, and for tests); nothing in it outlives the process.
pub fn memory_store(name: &str) -> Arc<dyn ObjectStore> {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static STORES: OnceLock<Mutex<HashMap<String, Arc<dyn ObjectStore>>>> = OnceLock::new();
    let mut stores = STORES.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner());
    let store = stores.entry(name.to_string()).or_insert_with(|| Arc::new(object_store::memory::InMemory::new()));
    Arc::clone(store)
}

/// A URL without its password or signed query.
pub fn redact(location: &str) -> String {
    match url::Url::parse(location) {
        Ok(mut url) if url.password().is_some() || url.query().is_some() => {
            let _ = url.set_password(None);
            url.set_query(None);
            url.to_string()
        }
        _ => location.to_string(),
    }
}
