//! The API source: pages of JSON from a REST endpoint (`location` + `sourceConfig.endpoint`).
//! The envelope extractor runs inside the reader, because whether there is a next page depends on the
//! records (or links) each page holds.

mod auth;
mod client;
mod pagination;
mod tap;

use std::collections::VecDeque;
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use url::Url;

use crate::config::{PaginationDef, SourceConfigDef, SourceDef, Synchronization, TextMap};
use crate::envelope::{self, ResultsPosition};
use crate::limits::ReadLimits;
use crate::sources::registry::SourceConnector;
use crate::sources::{Chunk, Source, SourceError, SourceEvent, SourceStream};
pub use client::{HttpClient, chain as error_chain};
use pagination::{Next, Pager};

/// A REST endpoint read page by page.
pub struct ApiSource {
    client: Arc<HttpClient>,
    url: Url,
    position: ResultsPosition,
    pagination: PaginationDef,
    max_pages: Option<u32>,
    limits: ReadLimits,
}

/// The api source, as the registry lists it.
pub const CONNECTOR: SourceConnector = SourceConnector {
    kind: "api",
    label: "REST API",
    schemes: &["http", "https"],
    local_paths: false,
    keys: &["endpoint", "pagination"],
    validate: validate_config,
    build: build_source,
    probe: Some(|def, sync| Ok(Box::new(ApiSource::probe(def, sync.and_then(|s| s.source_config.endpoint.as_deref()))?))),
    settings: None,
    sync_settings: None,
    runs_programs: false,
    names_ids: false,
    fields: &[],
};

fn validate_config(config: &SourceConfigDef) -> Vec<(&'static str, String)> {
    match config.query.sql() {
        Some(_) => vec![("query", "an api source takes query parameters as a map, not a string".into())],
        None => Vec::new(),
    }
}

/// A synchronization's pages, or without one the location's first page.
fn build_source(def: &SourceDef, _: &SourceConfigDef, sync: Option<&Synchronization>) -> Result<Box<dyn Source>, SourceError> {
    Ok(Box::new(match sync {
        Some(sync) => ApiSource::new(def, sync)?,
        None => ApiSource::probe(def, None)?,
    }))
}

impl ApiSource {
    /// The source as a synchronization reads it.
    pub fn new(def: &SourceDef, sync: &Synchronization) -> Result<ApiSource, SourceError> {
        let config = &sync.source_config;
        let client = HttpClient::new(def, &config.headers, config.query.params())?;
        let url = client.with_query(endpoint_url(&def.location, config.endpoint.as_deref())?);
        client.trust(&url);
        Ok(ApiSource {
            client: Arc::new(client),
            url,
            position: ResultsPosition::parse(config.results_position.as_deref()),
            pagination: sync.pagination.clone(),
            max_pages: config.max_pages,
            limits: def.limits,
        })
    }

    /// The source alone (for `source test`): one request to `endpoint`, or to its location.
    pub fn probe(def: &SourceDef, endpoint: Option<&str>) -> Result<ApiSource, SourceError> {
        let client = HttpClient::new(def, &TextMap::new(), &TextMap::new())?;
        let url = client.with_query(endpoint_url(&def.location, endpoint)?);
        client.trust(&url);
        Ok(ApiSource {
            client: Arc::new(client),
            url,
            position: ResultsPosition::Auto,
            pagination: PaginationDef::default(),
            max_pages: None,
            limits: def.limits,
        })
    }
}

/// `location` + `endpoint`, as OpenConnector joins them; an absolute endpoint stands alone. An endpoint
/// with `{{ … }}` is a template (OpenConnector renders it with the run's `data`, which a syncline run
/// does not take: `data` is empty).
fn endpoint_url(location: &str, endpoint: Option<&str>) -> Result<Url, SourceError> {
    let rendered;
    let endpoint = match endpoint {
        Some(text) if text.contains("{{") || text.contains("{%") => {
            let mut env = minijinja::Environment::new();
            env.set_fuel(Some(crate::limits::TemplateLimits::default().template_fuel));
            crate::mapping::twig::install(&mut env);
            let translated = crate::mapping::twig::translate(text)
                .map_err(|e| SourceError::Config(format!("the endpoint `{text}` is not a valid template: {e}")))?;
            rendered = env
                .render_str(
                    &translated.source,
                    minijinja::context! { data => minijinja::Value::from(std::collections::BTreeMap::<String, String>::new()) },
                )
                .map_err(|e| SourceError::Config(format!("the endpoint `{text}` is not a valid template: {e}")))?;
            rendered.as_str()
        }
        other => other.unwrap_or(""),
    };
    let text = if endpoint.starts_with("http://") || endpoint.starts_with("https://") {
        endpoint.to_string()
    } else if endpoint.is_empty() {
        location.to_string()
    } else {
        format!("{}/{}", location.trim_end_matches('/'), endpoint.trim_start_matches('/'))
    };
    Url::parse(&text).map_err(|e| SourceError::Config(format!("`{}` is not a URL: {e}", crate::secrets::mask_unparsed_url(&text))))
}

/// An XML body (OpenConnector parses a body that is not JSON as XML) becomes its JSON reading, so
/// `resultsPosition`, `idPosition` and next links work the same on both.
fn xml_as_json(body: &mut bytes::Bytes, limits: &ReadLimits) -> Result<(), String> {
    if !envelope::xml::looks_like_xml(body) {
        return Ok(());
    }
    let text = std::str::from_utf8(body).map_err(|e| format!("the XML body is not UTF-8: {e}"))?;
    let value = envelope::xml::to_json(text, limits)?;
    *body = bytes::Bytes::from(serde_json::to_vec(&value).map_err(|e| e.to_string())?);
    Ok(())
}

struct Reader {
    client: Arc<HttpClient>,
    limits: ReadLimits,
    position: ResultsPosition,
    pager: Pager,
    next: Option<Url>,
    page: u64,
    pending: VecDeque<SourceEvent>,
    /// The records of the page read last that are not sent yet, and where they came from.
    rest: Option<PageRecords>,
}

/// A page's records, sent on in chunks of [`CHUNK_RECORDS`]: a page of millions of tiny records
/// would otherwise be identified, diffed and written as one batch.
struct PageRecords {
    records: std::vec::IntoIter<bytes::Bytes>,
    origin: String,
    /// The number of the next record in its page, from 1.
    next: u64,
}

const CHUNK_RECORDS: usize = 1024;

impl Reader {
    /// The next chunk of the page read last, if any of it is left.
    fn next_chunk(&mut self) -> Option<Chunk> {
        let rest = self.rest.as_mut()?;
        let records: Vec<bytes::Bytes> = rest.records.by_ref().take(CHUNK_RECORDS).collect();
        if records.is_empty() {
            self.rest = None;
            return None;
        }
        let first = rest.next;
        rest.next += records.len() as u64;
        let mut chunk = Chunk::new(crate::sources::json_records(records, &self.limits), rest.origin.clone());
        chunk.lines = (first..rest.next).collect();
        Some(chunk)
    }

    async fn step(mut self) -> Option<(Result<SourceEvent, SourceError>, Reader)> {
        if let Some(event) = self.pending.pop_front() {
            return Some((Ok(event), self));
        }
        if let Some(chunk) = self.next_chunk() {
            return Some((Ok(SourceEvent::Chunk(chunk)), self));
        }
        let url = self.next.take()?;
        self.page += 1;
        let got = self.client.get(&url).await;
        self.pending.extend(self.client.take_warnings().into_iter().map(SourceEvent::Warning));
        let mut response = match got {
            Ok(response) => response,
            Err(error) => return Some((Err(error), self)),
        };
        if let Err(reason) = xml_as_json(&mut response.body, &self.limits) {
            return Some((Err(SourceError::Format { url: self.client.redact(&url), reason }), self));
        }
        let extracted = match envelope::extract(&response.body, &self.position) {
            Ok(extracted) => extracted,
            Err(error) => return Some((Err(SourceError::Format { url: self.client.redact(&url), reason: error.0 }), self)),
        };
        // A page without the records where they should be is no page of nothing: what was not found
        // cannot be told apart from what is gone, so the run deletes nothing.
        if let Some(warning) = extracted.warning {
            self.pending.push_back(SourceEvent::Truncated(format!("page {}: {warning}; nothing is deleted this run", self.page)));
        }
        match self.pager.next(&url, &response.headers, &response.body, extracted.records.len()) {
            Next::Fetch(next) => self.next = Some(next),
            Next::Done => {}
            Next::DoneWarning(warning) => self.pending.push_back(SourceEvent::Warning(warning)),
            Next::Truncated(reason) => self.pending.push_back(SourceEvent::Truncated(reason)),
        }
        let origin = format!("page {} (GET {})", self.page, self.client.redact(&url));
        self.rest = Some(PageRecords { records: extracted.records.into_iter(), origin: origin.clone(), next: 1 });
        // A page of no records is still a page read.
        let chunk = self.next_chunk().unwrap_or_else(|| Chunk::new(Vec::new(), origin));
        Some((Ok(SourceEvent::Chunk(chunk)), self))
    }
}

impl Source for ApiSource {
    fn open(&self, _cursor: Option<String>) -> SourceStream {
        let mut pager = Pager::new(&self.pagination, self.max_pages);
        let first = pager.first(self.url.clone());
        let reader = Reader {
            client: Arc::clone(&self.client),
            limits: self.limits,
            position: self.position.clone(),
            pager,
            next: Some(first),
            page: 0,
            pending: VecDeque::new(),
            rest: None,
        };
        futures::stream::unfold(reader, Reader::step).boxed()
    }

    fn check(&self) -> BoxFuture<'_, Result<String, SourceError>> {
        async move {
            let started = std::time::Instant::now();
            let mut response = self.client.get(&self.url).await?;
            // An XML body that cannot be read shows below as "not JSON", with its size.
            let _ = xml_as_json(&mut response.body, &self.limits);
            let records = envelope::extract(&response.body, &self.position).map(|e| e.records.len()).ok();
            let what = match records {
                Some(n) => format!("{n} record(s) in the first page"),
                None => format!("{} bytes, not JSON", response.body.len()),
            };
            Ok(format!(
                "OK: HTTP {} from {} in {} ms, {what}",
                response.status,
                self.client.redact(&self.url),
                started.elapsed().as_millis()
            ))
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_join_like_openconnector() {
        let url = |l: &str, e: Option<&str>| endpoint_url(l, e).unwrap().to_string();
        assert_eq!(url("http://h/api/v3", Some("/pet/findByStatus?status=available")), "http://h/api/v3/pet/findByStatus?status=available");
        assert_eq!(url("http://h/api/v3/", Some("pets")), "http://h/api/v3/pets");
        assert_eq!(url("http://h/api", Some("https://other/x")), "https://other/x");
        assert_eq!(url("http://h/api", None), "http://h/api");
        assert_eq!(url("http://h/api", Some("/since/{{ '2024-01-02'|date('Y') }}")), "http://h/api/since/2024");
    }
}
