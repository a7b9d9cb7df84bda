//! An OpenRegister (the Nextcloud app) instance's objects: `GET {location}/api/objects/{register}/{schema}`,
//! paged with `_limit` and `_page` until `page` reaches `pages`.
//!
//! Written against OpenRegister 0.2.13-unstable.78 (ConductionNL/openregister 4d24e2d). Its docs show
//! an updated-since filter (`@self[updated][gte]=…`), but that version compares metadata filters for
//! equality, so a later run asks for the newest first (`_order[_updated]=desc`) and stops at the first
//! object older than the saved cursor. Its lists leave deleted objects out, so deletes follow only a
//! full read, as for any API source. A first run reads in creation order (`_order[_created]=asc`),
//! where a page boundary moves only when objects are deleted meanwhile: a `total` that changes while
//! pages are read means the read may have missed objects, and nothing is deleted.

use std::collections::HashSet;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;
use url::Url;

use super::{RegisterSettings, SELF, read_object, segment};
use crate::limits::ReadLimits;
use crate::sources::api::HttpClient;
use crate::sources::feed::spawn_feed;
use crate::sources::formats::{EventSender, ReadError};
use crate::sources::{Chunk, RawRecord, SourceError, SourceEvent, SourceStream};

/// A page of the objects API.
#[derive(Deserialize)]
struct ObjectsPage {
    results: Vec<Box<RawValue>>,
    #[serde(default)]
    total: Option<u64>,
    #[serde(default)]
    pages: Option<u64>,
}

/// The URL of page `page` (from 1); `newest_first` for a read since a cursor.
pub fn page_url(base: &Url, settings: &RegisterSettings, page: u64, limit: u32, newest_first: bool) -> Result<Url, SourceError> {
    let path = format!("api/objects/{}/{}", segment(&settings.register), segment(&settings.schema));
    let mut url = base.join(&path).map_err(|e| SourceError::Config(e.to_string()))?;
    let order = if newest_first { ("_order[_updated]", "desc") } else { ("_order[_created]", "asc") };
    url.query_pairs_mut().append_pair("_limit", &limit.to_string()).append_pair("_page", &page.to_string()).append_pair(order.0, order.1);
    Ok(url)
}

pub fn open(
    client: Arc<HttpClient>,
    base: Result<Url, SourceError>,
    settings: &RegisterSettings,
    limit: u32,
    limits: ReadLimits,
    cursor: Option<String>,
) -> SourceStream {
    let settings = settings.clone();
    spawn_feed(move |tx| async move { read(&client, &base?, &settings, limit, &limits, cursor, &tx).await })
}

async fn read(
    client: &HttpClient,
    base: &Url,
    settings: &RegisterSettings,
    limit: u32,
    limits: &ReadLimits,
    cursor: Option<String>,
    tx: &EventSender,
) -> Result<(), ReadError> {
    let send = |event| async { tx.send(Ok(event)).await.map_err(|_| ReadError::Stopped) };
    let since = cursor.as_deref().map(str::trim).filter(|c| !c.is_empty()).map(str::to_string);
    if let Some(since) = &since {
        send(SourceEvent::Incremental(format!("reading the objects updated since {since}"))).await?;
    }
    let mut seen: HashSet<String> = HashSet::new();
    let (mut total, mut newest): (Option<u64>, Option<String>) = (None, None);
    let mut moved = false;
    for page in 1u64.. {
        let url = page_url(base, settings, page, limit, since.is_some())?;
        let shown = client.redact(&url);
        let response = client.get(&url).await?;
        let body: ObjectsPage = serde_json::from_slice(&response.body)
            .map_err(|e| SourceError::Format { url: shown.clone(), reason: format!("not an OpenRegister objects page: {e}") })?;
        moved |= total.is_some() && total != body.total;
        total = total.or(body.total);
        let mut records = Vec::with_capacity(body.results.len());
        let mut reached_cursor = false;
        for raw in &body.results {
            let (record, updated) = object_record(raw.get(), limits);
            if let (Some(since), Some(updated)) = (&since, &updated)
                && older(updated, since)
            {
                reached_cursor = true;
                break;
            }
            if let Some(updated) = &updated
                && newest.as_deref().is_none_or(|newest| older(newest, updated))
            {
                newest = Some(updated.clone());
            }
            // A page boundary that moved shows an object twice: the later showing adds nothing.
            if let RawRecord::Value(value) = &record
                && !seen.insert(crate::path::text_of(&value[SELF]["id"]))
            {
                continue;
            }
            records.push(record);
        }
        let last_page = body.pages.is_none_or(|pages| page >= pages) || body.results.is_empty();
        send(SourceEvent::Chunk(Chunk::new(records, format!("page {page} (GET {shown})")))).await?;
        if reached_cursor || last_page {
            break;
        }
    }
    if moved {
        let warning = "the instance's objects changed while they were read, so this run deletes nothing and keeps its cursor";
        send(SourceEvent::Truncated(warning.into())).await?;
    } else if let Some(newest) = newest {
        send(SourceEvent::Cursor(newest)).await?;
    }
    Ok(())
}

/// An object as a record, and its `@self.updated`; its id is its uuid (`@self.id`, or `id` beside).
fn object_record(text: &str, limits: &ReadLimits) -> (RawRecord, Option<String>) {
    let mut value = match read_object(text, limits) {
        Ok(fields) => Value::Object(fields),
        Err(problem) => return (RawRecord::Broken(problem), None),
    };
    if !value[SELF].is_object() {
        value[SELF] = Value::Object(Default::default());
    }
    if value[SELF].get("id").is_none_or(Value::is_null) {
        value[SELF]["id"] = value.get("id").cloned().unwrap_or(Value::Null);
    }
    let updated = value[SELF].get("updated").and_then(Value::as_str).map(str::to_string);
    (RawRecord::Value(value), updated)
}

/// Whether time `a` is before time `b` (RFC 3339 with any offset; as text when either is not one).
fn older(a: &str, b: &str) -> bool {
    match (chrono::DateTime::parse_from_rfc3339(a), chrono::DateTime::parse_from_rfc3339(b)) {
        (Ok(a), Ok(b)) => a < b,
        _ => a < b,
    }
}
