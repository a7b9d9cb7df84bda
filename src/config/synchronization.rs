//! The synchronization half of a pipeline file's model: where a synchronization reads inside its
//! source (`sourceConfig`, pagination), what it writes to, and what happens to objects whose record is
//! gone. Typed with serde, strict (`deny_unknown_fields`), OpenConnector's spellings as aliases.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::model::{Bookkeeping, ColumnTypes, FileFormat, InputCompression};
use super::{Flag, QueryDef, Span, TargetDef, Text, TextMap};

/// What to do with objects whose source record is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeletePolicy {
    /// Delete the object (default).
    #[default]
    Delete,
    /// Keep the object, marked deleted.
    SoftDelete,
    /// Leave the object alone.
    Keep,
}

/// Pagination styles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PaginationKind {
    /// One request.
    #[default]
    None,
    /// `?page=1,2,3…`
    Page,
    /// `?offset=0&limit=100`, then 100, 200…
    Offset,
    /// A URL to the next page in the body (dot path, default `next`).
    Next,
    /// RFC 8288 `Link: <…>; rel="next"` response header.
    Link,
    /// A token in the body (dot path) sent back as a query parameter.
    Cursor,
}

/// How to walk the pages of an endpoint.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PaginationDef {
    #[serde(rename = "type", default)]
    pub kind: PaginationKind,
    /// Query parameter of the page number (`page`), offset (`offset`) or cursor (`cursor`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub param: Option<String>,
    /// Query parameter of the page size (`page`: none by default; `offset`: `limit`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_param: Option<String>,
    /// Page size sent in `sizeParam`. A page shorter than the pages before it is the last one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u32>,
    /// First page number (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<u64>,
    /// Dot path of the next link or cursor in the body (next: `next`, `links.next` or
    /// `_links.next.href`, whichever is there; cursor: `next_cursor`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// OpenConnector's page mode (`usesPagination`): follow a next link when a page has one.
    #[serde(skip)]
    pub follow_next: bool,
}

/// Where a synchronization reads inside its source (OpenConnector's `sourceConfig`).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SourceConfigDef {
    /// Path appended to the source's location, query string allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Extra headers for this endpoint.
    #[serde(default)]
    pub headers: TextMap,
    /// API: extra query parameters for this endpoint. Database: the SELECT to read (instead of its `table`).
    #[serde(default)]
    pub query: QueryDef,
    /// Files: a glob relative to the location (`exports/*.csv`); without it the location is the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Files: `csv`, `ndjson`, `json`, `xlsx`, `xls`, `xlsb`, `ods` or `parquet` (default: the extension).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<FileFormat>,
    /// CSV: the field delimiter (default `,`; `\t` for tabs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delimiter: Option<String>,
    /// CSV: whether the first line holds the column names (default true; otherwise `column1`, `column2`…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<Flag>,
    /// CSV, NDJSON, JSON: the text encoding (default utf-8; e.g. `windows-1252`, `iso-8859-1`, `utf-16le`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<String>,
    /// CSV: `infer` (default) or `text`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column_types: Option<ColumnTypes>,
    /// Files: `gzip` to decompress every file, `none` to read them as they are (default: a file that
    /// starts like a gzip stream is decompressed, whatever its name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression: Option<InputCompression>,
    /// Spreadsheets: the sheet's name, or its position counted from 1 (default: the first sheet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sheet: Option<Text>,
    /// Spreadsheets: the row of column names, counted from 1 (default: the first row of the range).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header_row: Option<u32>,
    /// Spreadsheets: the cells to read, e.g. `A1:F500` (default: the whole sheet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<String>,
    /// Files: leave out files modified less than this long ago (they may still be being written).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum_age: Option<Span>,
    /// Files: read only files modified since the newest one the last run read (default false);
    /// `--force-full-sync` reads all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incremental: Option<Flag>,
    /// Dot path of each record's unique id (required: without it a re-run cannot tell update from create).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_position: Option<String>,
    /// `_root` (the body is the list), `_object` (the body is one record), or a dot path such as `data.items`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub results_position: Option<String>,
    /// How to walk pages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pagination: Option<PaginationDef>,
    /// Stop after this many pages; a run cut short this way deletes nothing and warns.
    #[serde(default, deserialize_with = "super::de::loose_count", skip_serializing_if = "Option::is_none")]
    pub max_pages: Option<u32>,
    /// OpenConnector: page-number pagination on (`true`) or off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uses_pagination: Option<Flag>,
    /// OpenConnector: the page-number query parameter (default `page`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pagination_query: Option<String>,
    /// The keys only the source's connector reads here (an Airbyte source's `stream`), read apart by
    /// it (see [`super::Settings`]).
    #[serde(skip)]
    pub settings: super::Settings,
}

/// A synchronization: source + mapping + target.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SynchronizationDef {
    /// The source's name (OpenConnector: `sourceId`).
    #[serde(default, alias = "sourceId", skip_serializing_if = "Option::is_none")]
    pub source: Option<Text>,
    /// OpenConnector's `sourceType`; only `api` is read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_type: Option<String>,
    #[serde(default)]
    pub source_config: SourceConfigDef,
    /// The mapping's name (OpenConnector: `sourceTargetMapping`).
    #[serde(default, alias = "sourceTargetMapping", skip_serializing_if = "Option::is_none")]
    pub mapping: Option<Text>,
    /// `{type: register, register: dcat, schema: dataset}` or `{type: database, location, table}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<TargetDef>,
    /// OpenConnector: `register/schema`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_type: Option<String>,
    /// OpenConnector: `"<register>/<schema>"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_id: Option<Text>,
    /// OpenConnector's target settings; accepted, not used by register targets.
    #[serde(default, skip_serializing)]
    pub target_config: Option<Value>,
    /// OpenConnector's `conditions`: a JsonLogic rule on the source record; records where it is false are
    /// skipped, as with `filter`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Value>,
    /// A template expression; records where it is false are skipped (never deleted by it alone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    /// `manual` (default), `every 5m`, `hourly`, `daily` or a cron expression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// `delete` (default), `soft-delete` or `keep`.
    #[serde(default)]
    pub delete_policy: DeletePolicy,
    /// Refuse a run that would delete more than this share of the objects (default 0.5); `1` turns it off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_delete_share: Option<f64>,
    /// Its inbound hook (`POST /api/hooks/{synchronization}`): the secret callers sign with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hook: Option<HookDef>,
    /// A mapping whose output is hashed instead of the whole record (OpenConnector's
    /// `sourceHashMapping`): leave out what changes on every read, and such a change alone is no update.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_hash_mapping: Option<Text>,
    /// Synchronizations run after a run of this one completed, in this order, each as its own job
    /// (OpenConnector's `followUps`). A cycle is refused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub follow_ups: Vec<String>,
    /// Name, description and OpenConnector's bookkeeping fields, read apart (see `config::load`).
    #[serde(skip)]
    pub bookkeeping: Bookkeeping,
}

/// A synchronization's inbound hook.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HookDef {
    /// Callers sign each request with it (`X-Syncline-Signature`, as webhooks out are signed); without
    /// one, only the API key opens the hook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<crate::config::Secret>,
}
