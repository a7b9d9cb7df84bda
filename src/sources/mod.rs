//! Sources: where records come from. Each kind lives in its own module and implements [`Source`];
//! [`build`] picks the kind a synchronization's source names.

pub mod api;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::BoxStream;

use crate::config::{Pipeline, SourceKind, Synchronization};
use crate::errors::ErrorCategory;

/// One record as the source delivered it.
#[derive(Debug, Clone)]
pub enum RawRecord {
    /// The record's JSON bytes, a slice of the page it came in (no copy).
    Json(Bytes),
    /// A record the source built itself.
    Value(serde_json::Value),
}

/// The records of one fetched unit (a page), with where they came from for error messages.
#[derive(Debug, Clone)]
pub struct Chunk {
    pub records: Vec<RawRecord>,
    /// `page 3 (GET https://host/pets?page=3)`.
    pub origin: String,
}

/// What a source stream yields.
#[derive(Debug, Clone)]
pub enum SourceEvent {
    Chunk(Chunk),
    /// Something the user should know (reported once per run).
    Warning(String),
    /// The feed stopped before its end (a page cap): the run must not delete anything.
    Truncated(String),
}

/// A source's lazy stream: nothing is fetched before the first poll, dropping it cancels the fetch.
pub type SourceStream = BoxStream<'static, Result<SourceEvent, SourceError>>;

/// The boundary every source kind implements.
pub trait Source: Send + Sync {
    /// Starts reading the feed from its beginning.
    ///
    /// # Errors
    /// A failure mid-feed arrives as an `Err` item; the stream ends after it.
    fn open(&self) -> SourceStream;

    /// Checks that the source answers, without reading the feed: `Ok` carries a one-line description.
    fn check(&self) -> BoxFuture<'_, Result<String, SourceError>>;
}

/// A source that failed. Messages never contain credentials: URLs are redacted.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SourceError {
    #[error("{0}")]
    Config(String),
    #[error("source `{0}` is disabled (isEnabled: false)")]
    Disabled(String),
    #[error("cannot connect to {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("TLS error with {url}: {reason} (set `tls: {{verify: false}}` on the source only for a trusted network)")]
    Tls { url: String, reason: String },
    #[error("request to {url} timed out ({reason})")]
    Timeout { url: String, reason: String },
    #[error("{url} answered HTTP {status}{}", if body.is_empty() { String::new() } else { format!(": {body}") })]
    Http { url: String, status: u16, body: String },
    #[error("the response of {url} is not valid JSON: {reason}")]
    Format { url: String, reason: String },
}

impl SourceError {
    pub fn category(&self) -> ErrorCategory {
        match self {
            SourceError::Config(_) | SourceError::Disabled(_) => ErrorCategory::Config,
            SourceError::Connect { .. } => ErrorCategory::Connection,
            SourceError::Tls { .. } => ErrorCategory::Tls,
            SourceError::Timeout { .. } => ErrorCategory::Timeout,
            SourceError::Http { status: 401 | 403, .. } => ErrorCategory::Auth,
            SourceError::Http { status: 429, .. } => ErrorCategory::RateLimited,
            SourceError::Http { .. } => ErrorCategory::Http,
            SourceError::Format { .. } => ErrorCategory::Format,
        }
    }
}

/// Builds the source a synchronization reads.
pub fn build(pipeline: &Pipeline, sync: &Synchronization) -> Result<Box<dyn Source>, SourceError> {
    let def = pipeline.sources.get(&sync.source).ok_or_else(|| SourceError::Config(format!("no source named `{}`", sync.source)))?;
    if !def.is_enabled.0 {
        return Err(SourceError::Disabled(sync.source.clone()));
    }
    match def.kind {
        SourceKind::Api => Ok(Box::new(api::ApiSource::new(def, sync)?)),
    }
}
