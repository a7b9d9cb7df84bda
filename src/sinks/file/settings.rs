//! The keys only a file target reads: how its files are named, laid out and compressed.

use serde::{Deserialize, Serialize};

use crate::config::FileFormat;
use crate::sources::registry::ConnectorSettings;

/// How a file target compresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    #[default]
    None,
    /// NDJSON and CSV (`.gz` added to the name), or Parquet's pages.
    Gzip,
    /// Parquet's pages.
    Snappy,
    /// Parquet's pages.
    Zstd,
}

/// How a file target writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileMode {
    /// One file holding every object, replaced whole each run.
    #[default]
    Snapshot,
    /// One file per run of what it created, updated and deleted.
    Changes,
}

/// A file target's own keys (its `location` is shared with the other targets).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FileTargetSettings {
    /// `ndjson` (default), `csv` or `parquet`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<FileFormat>,
    /// `snapshot` (default) or `changes`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<FileMode>,
    /// The file's name without extension (default the synchronization's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_name: Option<String>,
    /// `mode: changes`: at most this many rows a file (default: one file a run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows_per_file: Option<u64>,
    /// `none` (default), `gzip` (any format), `snappy` or `zstd` (Parquet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression: Option<Compression>,
}

impl ConnectorSettings for FileTargetSettings {}
