//! The openregister source: a register schema of another instance, kept in sync with one here.
//!
//! Against another syncline it reads that register's change feed
//! (`/api/registers/{r}/schemas/{s}/changes`, see `store::register::feed`): the first run from the
//! start, later runs from the saved cursor only, with deletes exactly as the feed reports them. It
//! names itself in `X-OpenRegister-Sync-Origin`, so the feed leaves out what came from here, and
//! records the instance the records come from, so this register's feed does not send them back.
//! Against an OpenRegister (the Nextcloud app) it pages the objects API ([`app`]).
//!
//! Each record is the object with `@self` beside its fields (`id`: its uuid there, which is its origin
//! id here), as OpenRegister shows objects.

mod app;

use std::sync::Arc;

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;
use url::Url;

use crate::config::{SourceDef, Text, TextMap};
use crate::limits::ReadLimits;
use crate::sources::api::HttpClient;
use crate::sources::feed::spawn_feed;
use crate::sources::formats::{EventSender, ReadError};
use crate::sources::registry::{ConnectorSettings, FormField, Input, SettingsSchema, SourceConnector, read_settings, settings_of};
use crate::sources::{Chunk, Federation, RawRecord, Source, SourceError, SourceEvent, SourceStream};
use crate::store::register::SYNC_ORIGIN;

/// The openregister source, as the registry lists it.
pub const CONNECTOR: SourceConnector = SourceConnector {
    kind: "openregister",
    label: "Open Register instance",
    schemes: &["http", "https"],
    local_paths: false,
    keys: &[],
    validate: |_| Vec::new(),
    build: |def, _, _| Ok(Box::new(RegisterSource::new(def)?)),
    probe: None,
    settings: Some(SettingsSchema {
        keys: &["register", "schema", "api", "pageSize"],
        secrets: &[],
        read: read_settings::<RegisterSettings>,
    }),
    sync_settings: None,
    runs_programs: false,
    names_ids: true,
    fields: &[
        FormField { key: "register", label: "Register there", input: Input::Text, placeholder: "publications" },
        FormField { key: "schema", label: "Schema there", input: Input::Text, placeholder: "publication" },
        FormField { key: "api", label: "Instance (syncline or openregister)", input: Input::Text, placeholder: "from the location" },
    ],
};

/// The keys only an openregister source reads.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RegisterSettings {
    /// The register there (OpenRegister: its id, uuid or slug).
    pub register: String,
    /// The schema there.
    pub schema: String,
    /// What answers at `location`; by default OpenRegister when the location's path holds
    /// `/apps/openregister`, syncline otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api: Option<Api>,
    /// Objects asked for per request (default 500; syncline answers at most 1,000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_size: Option<u32>,
}

impl ConnectorSettings for RegisterSettings {}

/// What answers at an openregister source's location.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Api {
    Syncline,
    Openregister,
}

/// The field of a record that holds where it came from, as OpenRegister names it.
pub const SELF: &str = "@self";

/// Another instance's register schema.
pub struct RegisterSource {
    def: SourceDef,
    settings: RegisterSettings,
    api: Api,
    federation: Option<Arc<Federation>>,
}

impl RegisterSource {
    pub fn new(def: &SourceDef) -> Result<RegisterSource, SourceError> {
        let settings = settings_of::<RegisterSettings>(def)?.clone();
        let location = Url::parse(&def.location).map_err(|e| SourceError::Config(format!("the location is not a URL: {e}")))?;
        let api = settings.api.unwrap_or(if location.path().contains("/apps/openregister") { Api::Openregister } else { Api::Syncline });
        Ok(RegisterSource { def: def.clone(), settings, api, federation: None })
    }

    fn page_size(&self) -> u32 {
        self.settings.page_size.unwrap_or(500).clamp(1, 1000)
    }

    /// The client, naming this instance when the run writes into a register here.
    fn client(&self) -> Result<HttpClient, SourceError> {
        let mut headers = TextMap::new();
        if let Some(federation) = &self.federation {
            headers.insert(SYNC_ORIGIN.to_string(), Text(federation.instance.clone()));
        }
        let client = HttpClient::new(&self.def, &headers, &TextMap::new())?;
        client.trust(&self.base()?);
        Ok(client)
    }

    fn base(&self) -> Result<Url, SourceError> {
        Url::parse(&format!("{}/", self.def.location.trim_end_matches('/'))).map_err(|e| SourceError::Config(e.to_string()))
    }

    fn feed_urls(&self) -> FeedUrls {
        FeedUrls {
            register: self.settings.register.clone(),
            schema: self.settings.schema.clone(),
            page: self.page_size(),
            base: self.base(),
        }
    }
}

impl Source for RegisterSource {
    fn open(&self, cursor: Option<String>) -> SourceStream {
        let client = match self.client() {
            Ok(client) => Arc::new(client),
            Err(error) => return futures::stream::once(async move { Err(error) }).boxed(),
        };
        let federation = self.federation.clone();
        match self.api {
            Api::Syncline => {
                let reader = FeedReader { client, federation, limits: self.def.limits, urls: self.feed_urls() };
                spawn_feed(move |tx| async move { reader.read(cursor, &tx).await })
            }
            Api::Openregister => app::open(client, self.base(), &self.settings, self.page_size(), self.def.limits, cursor),
        }
    }

    fn check(&self) -> BoxFuture<'_, Result<String, SourceError>> {
        async move {
            let client = self.client()?;
            let url = match self.api {
                Api::Syncline => self.feed_urls().url(0, None)?,
                Api::Openregister => app::page_url(&self.base()?, &self.settings, 1, 1, false)?,
            };
            let started = std::time::Instant::now();
            let response = client.get(&url).await?;
            Ok(format!("OK: HTTP {} from {} in {} ms", response.status, client.redact(&url), started.elapsed().as_millis()))
        }
        .boxed()
    }

    fn id_position(&self) -> BoxFuture<'_, Result<Option<String>, SourceError>> {
        Box::pin(async { Ok(Some(format!("{SELF}.id"))) })
    }

    fn reads_a_register(&self) -> bool {
        true
    }

    fn federate(&mut self, federation: Federation) {
        self.federation = Some(Arc::new(federation));
    }
}

/// What the feed reader needs to make its URLs.
struct FeedUrls {
    register: String,
    schema: String,
    page: u32,
    base: Result<Url, SourceError>,
}

impl FeedUrls {
    /// The change feed's URL after `since`, within `until` once the first page fixed the span.
    fn url(&self, since: i64, until: Option<i64>) -> Result<Url, SourceError> {
        let path = format!("api/registers/{}/schemas/{}/changes", segment(&self.register), segment(&self.schema));
        let mut url = self.base.clone()?.join(&path).map_err(|e| SourceError::Config(e.to_string()))?;
        let mut query = url.query_pairs_mut();
        query.append_pair("since", &since.to_string()).append_pair("limit", &self.page.to_string()).append_pair("latest", "true");
        if let Some(until) = until {
            query.append_pair("until", &until.to_string());
        }
        drop(query);
        Ok(url)
    }
}

/// A page of another syncline's change feed.
#[derive(Deserialize)]
struct FeedPage {
    instance: String,
    until: i64,
    next: i64,
    more: bool,
    results: Vec<FeedChange>,
}

#[derive(Deserialize)]
struct FeedChange {
    seq: i64,
    action: String,
    id: String,
    #[serde(default)]
    origin_id: Option<String>,
    #[serde(default)]
    at: Option<String>,
    #[serde(default)]
    object: Option<Box<RawValue>>,
}

struct FeedReader {
    client: Arc<HttpClient>,
    federation: Option<Arc<Federation>>,
    limits: ReadLimits,
    urls: FeedUrls,
}

impl FeedReader {
    async fn read(self, cursor: Option<String>, tx: &EventSender) -> Result<(), ReadError> {
        let send = |event| async { tx.send(Ok(event)).await.map_err(|_| ReadError::Stopped) };
        let mut since = match cursor.as_deref() {
            None => 0,
            Some(text) => {
                text.trim().parse::<i64>().map_err(|_| SourceError::Config(format!("the saved cursor `{text}` is no change number")))?
            }
        };
        if since > 0 {
            send(SourceEvent::Incremental(format!("reading the changes after change {since}"))).await?;
        }
        let mut until = None;
        let mut page = 0u64;
        loop {
            page += 1;
            let url = self.urls.url(since, until)?;
            let response = self.client.get(&url).await?;
            let shown = self.client.redact(&url);
            let body: FeedPage = serde_json::from_slice(&response.body)
                .map_err(|e| SourceError::Format { url: shown.clone(), reason: format!("not a change feed page: {e}") })?;
            let problem = |reason: String| ReadError::Failed(SourceError::Protocol { url: shown.clone(), reason });
            if page == 1 {
                remember_origin(self.federation.as_deref(), &body.instance).map_err(problem)?;
            }
            // The span is fixed by the first page; a feed that does not move on would be read forever.
            if until.is_some_and(|u| u != body.until) || body.next < since || (body.more && body.next == since) {
                return Err(problem(format!("the feed did not move on from change {since} (next {}, until {})", body.next, body.until)));
            }
            until = Some(body.until);
            let origin = format!("page {page} (GET {shown})");
            let records = body.results.into_iter().filter_map(|change| change.into_record(&self.limits)).collect();
            send(SourceEvent::Chunk(Chunk::new(records, origin))).await?;
            since = body.next;
            send(SourceEvent::Cursor(since.to_string())).await?;
            if !body.more {
                return Ok(());
            }
        }
    }
}

impl FeedChange {
    /// The record of a create or update, the reported delete of a delete; nothing for a change to an
    /// object gone since (its delete follows in the feed).
    fn into_record(self, limits: &ReadLimits) -> Option<RawRecord> {
        if self.action.ends_with("delete") {
            return Some(RawRecord::Gone(self.id));
        }
        let object = self.object?;
        let meta = serde_json::json!({ "id": self.id, "originId": self.origin_id, "updated": self.at, "seq": self.seq });
        Some(with_self(object.get(), meta, limits))
    }
}

/// `object` (JSON text) with `@self` set to `meta`: a record, or why it cannot be one.
fn with_self(object: &str, meta: Value, limits: &ReadLimits) -> RawRecord {
    match read_object(object, limits) {
        Ok(mut fields) => {
            fields.insert(SELF.to_string(), meta);
            RawRecord::Value(Value::Object(fields))
        }
        Err(problem) => RawRecord::Broken(problem),
    }
}

/// An object another register sent (JSON text), within `maxRecordBytes`; or why it is none.
fn read_object(text: &str, limits: &ReadLimits) -> Result<serde_json::Map<String, Value>, String> {
    if text.len() > limits.max_record_bytes.as_usize() {
        let over = crate::limits::OverLimit::bytes(format!("the object ({} bytes)", text.len()), "maxRecordBytes", limits.max_record_bytes);
        return Err(over.to_string());
    }
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(fields)) => Ok(fields),
        Ok(_) => Err("the object is not a JSON object".into()),
        Err(error) => Err(format!("the object cannot be read: {error}")),
    }
}

/// A register or schema name as one segment of a URL path.
fn segment(name: &str) -> String {
    url::form_urlencoded::byte_serialize(name.as_bytes()).collect()
}

/// Records where the records come from (an id of at most 200 printable characters: it is stored).
fn remember_origin(federation: Option<&Federation>, instance: &str) -> Result<(), String> {
    if instance.is_empty() || instance.len() > 200 || !instance.chars().all(|c| c.is_ascii_graphic()) {
        return Err("the instance id in the answer is empty, too long or not printable".into());
    }
    match federation {
        Some(federation) => (federation.record_origin)(instance),
        None => Ok(()),
    }
}
