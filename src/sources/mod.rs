//! Sources: where records come from. Each kind lives in its own module and implements [`Source`];
//! [`build`] picks the kind a synchronization's source names.

pub mod airbyte;
pub mod api;
pub mod command;
pub mod database;
pub mod feed;
pub mod file;
pub mod formats;
pub mod ftp;
pub mod openregister;
pub mod pushed;
pub mod registry;
pub mod sftp;
pub mod tls;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::BoxStream;

use crate::config::{Pipeline, SourceConfigDef, SourceDef, Synchronization};
use crate::errors::ErrorCategory;

/// One record as the source delivered it.
#[derive(Debug, Clone)]
pub enum RawRecord {
    /// The record's JSON bytes, a slice of the page it came in (no copy).
    Json(Bytes),
    /// A record the source built itself.
    Value(serde_json::Value),
    /// A record the source could not read (a malformed CSV line): it fails alone, the run goes on.
    Broken(String),
    /// The origin id of a record the source reports deleted (a change feed's delete): its object is
    /// deleted as the synchronization's delete policy says, in any run.
    Gone(String),
}

/// The records of one fetched unit (a page, a slice of a file), with where they came from.
#[derive(Debug, Clone)]
pub struct Chunk {
    pub records: Vec<RawRecord>,
    /// `page 3 (GET https://host/pets?page=3)`, `exports/pets.csv`.
    pub origin: String,
    /// Where each record starts in its file (line or row numbers), when the source knows.
    pub lines: Vec<u64>,
    /// What `lines` counts: `line` or `row`.
    pub unit: &'static str,
}

impl Chunk {
    pub fn new(records: Vec<RawRecord>, origin: String) -> Chunk {
        Chunk { records, origin, lines: Vec::new(), unit: "record" }
    }

    /// Where record `index` came from, for messages: `line 12 of pets.csv`, `record 3 of page 2 (…)`.
    pub fn locate(origin: &str, lines: &[u64], unit: &str, index: usize) -> String {
        match lines.get(index) {
            Some(n) => format!("{unit} {n} of {origin}"),
            None => format!("record {} of {origin}", index + 1),
        }
    }
}

/// The JSON records of a page or a document, each a slice of it; one over `maxRecordBytes` fails alone.
pub fn json_records(records: Vec<Bytes>, limits: &crate::limits::ReadLimits) -> Vec<RawRecord> {
    let max = limits.max_record_bytes;
    records
        .into_iter()
        .map(|record| {
            if record.len() > max.as_usize() {
                RawRecord::Broken(
                    crate::limits::OverLimit::bytes(format!("the record ({} bytes)", record.len()), "maxRecordBytes", max).to_string(),
                )
            } else {
                RawRecord::Json(record)
            }
        })
        .collect()
}

/// What a source stream yields.
#[derive(Debug, Clone)]
pub enum SourceEvent {
    Chunk(Chunk),
    /// Something the user should know (reported once per run).
    Warning(String),
    /// The feed stopped before its end (a page cap): the run must not delete anything.
    Truncated(String),
    /// The source reads only what changed since its saved cursor: nothing is deleted, nothing warned.
    Incremental(String),
    /// The newest cursor value read so far; the run saves the last one if it completes.
    Cursor(String),
    /// A line for the job log from the source itself (a program's stderr, a connector's own log), at
    /// `level` (`info`, `warn`, `error`, `debug`).
    Log {
        level: &'static str,
        message: String,
    },
}

/// A source's lazy stream: nothing is fetched before the first poll, dropping it cancels the fetch.
pub type SourceStream = BoxStream<'static, Result<SourceEvent, SourceError>>;

/// The boundary every source kind implements.
pub trait Source: Send + Sync {
    /// Starts reading the feed: from its beginning, or from `cursor` (saved by an earlier run) for a
    /// source that reads incrementally.
    ///
    /// # Errors
    /// A failure mid-feed arrives as an `Err` item; the stream ends after it.
    fn open(&self, cursor: Option<String>) -> SourceStream;

    /// Checks that the source answers, without reading the feed: `Ok` carries a one-line description.
    fn check(&self) -> BoxFuture<'_, Result<String, SourceError>>;

    /// The streams a source offers, for a source that has several (an Airbyte connector); `None` for
    /// one that is a single feed.
    fn streams(&self) -> BoxFuture<'_, Result<Option<Vec<StreamInfo>>, SourceError>> {
        Box::pin(async { Ok(None) })
    }

    /// The dot path of a record's id as the source itself declares it (an Airbyte stream's primary
    /// key), for a synchronization that gives no `idPosition`.
    fn id_position(&self) -> BoxFuture<'_, Result<Option<String>, SourceError>> {
        Box::pin(async { Ok(None) })
    }

    /// Whether it reads another register, and so takes a [`Federation`] before it is opened.
    fn reads_a_register(&self) -> bool {
        false
    }

    /// Hands a source that reads another register what it needs of this one.
    fn federate(&mut self, _federation: Federation) {}
}

/// What a source reading another register needs of the register a run writes into.
pub struct Federation {
    /// This installation's id ([`crate::store::StateDir::instance`]): the source names itself by it
    /// there, and that register leaves out what came from here.
    pub instance: String,
    /// Records the id of the register the records come from, before any of them is written: this
    /// register's feed then leaves what the run writes out of what it sends there.
    pub record_origin: RecordOrigin,
}

/// Records which register a run's records come from (see [`Federation::record_origin`]).
pub type RecordOrigin = Box<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

/// One stream of a source that has several.
#[derive(Debug, Clone)]
pub struct StreamInfo {
    pub name: String,
    /// Its primary key as a dot path, when it declares one field as the key.
    pub primary_key: Option<String>,
    /// `full_refresh`, `incremental`.
    pub sync_modes: Vec<String>,
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
    #[error("the response of {url} is not valid JSON or XML: {reason}")]
    Format { url: String, reason: String },
    #[error("{url} refused the credentials: {reason}")]
    Auth { url: String, reason: String },
    /// The server answered with an error of its protocol (an FTP reply, an SQL error).
    #[error("{url}: {reason}")]
    Protocol { url: String, reason: String },
    /// A file could not be read or parsed as a whole.
    #[error("{file}: {reason}")]
    File { file: String, reason: String },
    /// An input over one of the source's `limits` (the message names the key).
    #[error("{0}")]
    Limit(String),
    /// A redirect or a next link to an origin the source's credentials do not go to.
    #[error(
        "the source's answer leads to {to}, another origin than the source's; syncline sends a source's credentials only to its own \
         origin, so it stopped (set `allowCrossOriginLinks: true` on the source to follow such links without credentials)"
    )]
    CrossOrigin { to: String },
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
            SourceError::Format { .. } | SourceError::File { .. } => ErrorCategory::Format,
            SourceError::Auth { .. } => ErrorCategory::Auth,
            SourceError::Protocol { .. } => ErrorCategory::Protocol,
            SourceError::Limit(_) => ErrorCategory::Limit,
            SourceError::CrossOrigin { .. } => ErrorCategory::Http,
        }
    }
}

/// Builds the source a synchronization reads.
pub fn build(pipeline: &Pipeline, sync: &Synchronization) -> Result<Box<dyn Source>, SourceError> {
    let def = pipeline.sources.get(&sync.source).ok_or_else(|| SourceError::Config(format!("no source named `{}`", sync.source)))?;
    if !def.is_enabled.0 {
        return Err(SourceError::Disabled(sync.source.clone()));
    }
    open(def, &sync.source_config, Some(sync))
}

/// The source to check for `source test` and the service's Test connection: read with the settings of
/// the first synchronization that reads it (an API source: that endpoint's first page only, since a
/// bare base URL may well answer 404), or from its location alone when none does.
pub fn for_check(pipeline: &Pipeline, source: &str) -> Result<Box<dyn Source>, SourceError> {
    let def = pipeline.sources.get(source).ok_or_else(|| SourceError::Config(format!("no source named `{source}`")))?;
    let sync = pipeline.synchronizations.values().find(|s| s.source == source);
    match (registry::connector_of(def)?.probe, sync) {
        (Some(probe), sync) => probe(def, sync),
        (None, Some(sync)) => build(pipeline, sync),
        (None, None) => probe(def),
    }
}

/// Builds a source from its definition alone, for `source test` and `source preview` without a
/// synchronization: the location itself is read with default settings.
pub fn probe(def: &SourceDef) -> Result<Box<dyn Source>, SourceError> {
    open(def, &SourceConfigDef::default(), None)
}

/// The source of `def` read with `config`, built by its kind's connector.
fn open(def: &SourceDef, config: &SourceConfigDef, sync: Option<&Synchronization>) -> Result<Box<dyn Source>, SourceError> {
    (registry::connector_of(def)?.build)(def, config, sync)
}
