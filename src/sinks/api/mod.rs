//! The API target (`target: {type: api}`, OpenConnector's `targetType: api`): objects pushed to another
//! API through one of the pipeline's `api` sources (its location, auth, TLS, retries, rate limit and
//! `Retry-After`). `POST {endpoint}` creates and the answer's `idPosition` gives the object's id there,
//! kept in the contract; `PUT {endpoint}/{id}` updates, `DELETE {endpoint}/{id}` deletes.
//!
//! Requests run `concurrency` at a time (default 8), a batch at a time, so a slow API slows the run
//! instead of queueing work. A 4xx fails that record with the API's message; a 5xx is retried, then
//! fails the record; only an API that cannot be reached at all fails the run.
//!
//! A create is recorded in the state directory the moment the API answers it, until the contracts
//! hold it: a run cut off mid-way is followed by one that adopts those objects (and updates them)
//! instead of creating them twice. Only the creates in flight when a process dies (at most
//! `concurrency`) can be sent again; each carries an `Idempotency-Key` (the object's deterministic
//! id) for APIs that dedupe on it.

use std::sync::Arc;

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use reqwest::Method;
use tokio::sync::mpsc;
use url::Url;

mod settings;

use std::collections::BTreeMap;

use super::registry::{SinkConnector, SinkContext, target_of};
use super::{AckSender, Sink, SinkError};
use crate::config::{SourceDef, TargetDef, TextMap};
use crate::envelope::lookup_text;
use crate::path::DotPath;
use crate::sources::SourceError;
use crate::sources::api::HttpClient;
use crate::write::{Action, Mapped, Outcome};
pub use settings::ApiTargetSettings;

/// The api target, as the registry lists it: pushes through one of the pipeline's api sources.
pub const CONNECTOR: SinkConnector =
    SinkConnector { kind: "api", settings: Some(settings::SETTINGS), runs_programs: false, validate, build };

/// The target's own keys, as loading read them.
fn settings_of(target: &TargetDef) -> Result<&ApiTargetSettings, String> {
    target.settings.get::<ApiTargetSettings>().ok_or_else(|| "an api target names the `source` it pushes to".to_string())
}

fn validate(target: &TargetDef, sources: &BTreeMap<String, SourceDef>) -> Result<(), String> {
    let target = settings_of(target)?;
    let source = target.source.as_deref().ok_or("an api target names the `source` it pushes to")?;
    match sources.get(source) {
        None => {
            return Err(format!("no source named `{source}` (sources: {})", crate::config::defined_names(sources.keys())));
        }
        Some(def) if def.kind != "api" => return Err(format!("source `{source}` is not an api source")),
        Some(_) => {}
    }
    if target.endpoint.is_none() {
        return Err("an api target needs an `endpoint` (where POST creates)".into());
    }
    for method in [&target.update_method, &target.delete_method].into_iter().flatten() {
        if Method::from_bytes(method.to_ascii_uppercase().as_bytes()).is_err() {
            return Err(format!("`{method}` is not an HTTP method"));
        }
    }
    Ok(())
}

fn build(context: &SinkContext) -> Result<Box<dyn Sink>, String> {
    let target = settings_of(target_of(context.sync)?)?;
    let name = target.source.as_deref().unwrap_or_default();
    let source = context.pipeline.sources.get(name).ok_or_else(|| format!("no source named `{name}` to push to"))?;
    let journal = (!context.dry_run).then(|| context.state.journal_path(&context.sync.name));
    Ok(Box::new(ApiSink::new(target, source, journal, context.dry_run).map_err(|e| e.to_string())?))
}

pub struct ApiSink {
    client: Arc<HttpClient>,
    base: String,
    endpoint: String,
    id_position: DotPath,
    update_endpoint: Option<String>,
    update_method: Method,
    delete_endpoint: Option<String>,
    delete_method: Method,
    concurrency: usize,
    dry_run: bool,
    /// Each create is appended here the moment the API answers it (see [`Sink::journal`]).
    journal: Option<(std::path::PathBuf, std::sync::Mutex<Option<std::fs::File>>)>,
}

fn method(text: Option<&str>, default: Method) -> Method {
    text.and_then(|m| Method::from_bytes(m.to_ascii_uppercase().as_bytes()).ok()).unwrap_or(default)
}

impl ApiSink {
    pub fn new(
        def: &ApiTargetSettings,
        source: &SourceDef,
        journal: Option<std::path::PathBuf>,
        dry_run: bool,
    ) -> Result<ApiSink, SinkError> {
        let client = HttpClient::new(source, &TextMap::new(), &TextMap::new()).map_err(|e| SinkError::Stopped(e.to_string()))?;
        Ok(ApiSink {
            client: Arc::new(client),
            base: source.location.trim_end_matches('/').to_string(),
            endpoint: def.endpoint.clone().unwrap_or_default(),
            id_position: DotPath::parse(def.id_position.as_deref().unwrap_or("id")),
            update_endpoint: def.update_endpoint.clone(),
            update_method: method(def.update_method.as_deref(), Method::PUT),
            delete_endpoint: def.delete_endpoint.clone(),
            delete_method: method(def.delete_method.as_deref(), Method::DELETE),
            concurrency: def.concurrency.unwrap_or(8).max(1) as usize,
            dry_run,
            journal: journal.map(|path| (path, std::sync::Mutex::new(None))),
        })
    }

    /// `location` + `path`, as API sources join them; an absolute path stands alone.
    fn url(&self, path: &str) -> Result<Url, String> {
        let text = if path.starts_with("http://") || path.starts_with("https://") {
            path.to_string()
        } else {
            format!("{}/{}", self.base, path.trim_start_matches('/'))
        };
        Url::parse(&text).map_err(|e| format!("`{}` is not a URL: {e}", crate::secrets::mask_unparsed_url(&text)))
    }

    /// The URL of one object: the configured template with `{{targetId}}` (or OpenConnector's
    /// `{{originId}}`, which it fills with the target id too) replaced, else `{endpoint}/{id}`.
    fn object_url(&self, template: Option<&str>, remote_id: &str) -> Result<Url, String> {
        let encoded = percent_encoding::utf8_percent_encode(remote_id, percent_encoding::NON_ALPHANUMERIC).to_string();
        let path = match template {
            Some(t) => t.replace("{{targetId}}", &encoded).replace("{{ targetId }}", &encoded).replace("{{originId}}", &encoded),
            None => format!("{}/{encoded}", self.endpoint.trim_end_matches('/')),
        };
        self.url(&path)
    }

    /// One write; `Err` only when the API cannot be reached at all.
    async fn push(&self, op: &Mapped) -> Result<(Outcome, Option<String>), SinkError> {
        if self.dry_run {
            return Ok((done(op), None));
        }
        let mut key = None;
        let (method, url, body) = match (&op.what, &op.remote_id) {
            (Action::Upsert(object), Some(id)) => {
                (self.update_method.clone(), self.object_url(self.update_endpoint.as_deref(), id), Some(object))
            }
            (Action::Upsert(object), None) => {
                // The object's deterministic id: the same for this record in every run.
                key = Some(op.target_id.to_string());
                (Method::POST, self.url(&self.endpoint), Some(object))
            }
            // Never created there (its create failed, or it predates this target): nothing to delete.
            (Action::Delete { .. }, None) => return Ok((Outcome::Deleted, None)),
            (Action::Delete { .. }, Some(id)) => (self.delete_method.clone(), self.object_url(self.delete_endpoint.as_deref(), id), None),
        };
        let url = match url {
            Ok(url) => url,
            Err(message) => return Ok((Outcome::Failed(message), None)),
        };
        match self.client.request(method, &url, body, key.as_deref()).await {
            Ok(response) => {
                if op.what.is_delete() || op.remote_id.is_some() {
                    return Ok((done(op), None));
                }
                let text = String::from_utf8_lossy(&response.body);
                match lookup_text(&text, &self.id_position) {
                    Some(id) => {
                        self.record_create(op, &id)?;
                        Ok((Outcome::Created, Some(id)))
                    }
                    None => Ok((
                        Outcome::Failed(format!("the create answer has no id at idPosition `{}`", self.id_position.segments().join("."))),
                        None,
                    )),
                }
            }
            // Gone already: what a delete wanted.
            Err(SourceError::Http { status: 404, .. }) if op.what.is_delete() => Ok((Outcome::Deleted, None)),
            Err(error @ SourceError::Http { .. }) => Ok((Outcome::Failed(error.to_string()), None)),
            Err(error @ (SourceError::Connect { .. } | SourceError::Tls { .. } | SourceError::Timeout { .. })) => {
                Err(SinkError::Stopped(error.to_string()))
            }
            Err(other) => Ok((Outcome::Failed(other.to_string()), None)),
        }
    }

    /// Appends a create to the journal before anything else can happen to this run. Written, not
    /// synced: it survives the process being killed (the file is the OS's), not the machine losing power.
    fn record_create(&self, op: &Mapped, remote_id: &str) -> Result<(), SinkError> {
        use std::io::Write;
        let Some((path, file)) = &self.journal else { return Ok(()) };
        let failed = |e: std::io::Error| SinkError::Stopped(format!("cannot record a create in {}: {e}", path.display()));
        let mut file = file.lock().unwrap_or_else(|p| p.into_inner());
        if file.is_none() {
            *file = Some(std::fs::OpenOptions::new().create(true).append(true).open(path).map_err(failed)?);
        }
        let line = serde_json::json!([op.origin_id, remote_id]).to_string() + "\n";
        file.as_mut().expect("opened above").write_all(line.as_bytes()).map_err(failed)
    }

    async fn write(self, mut input: mpsc::Receiver<Vec<Mapped>>, acks: AckSender) -> Result<(), SinkError> {
        while let Some(batch) = input.recv().await {
            // At most `concurrency` requests in flight, answers kept in the batch's order.
            let mut in_flight = futures::stream::FuturesOrdered::new();
            let mut results = Vec::with_capacity(batch.len());
            for op in &batch {
                if in_flight.len() >= self.concurrency
                    && let Some(result) = in_flight.next().await
                {
                    results.push(result);
                }
                in_flight.push_back(self.push(op));
            }
            while let Some(result) = in_flight.next().await {
                results.push(result);
            }
            drop(in_flight);
            let mut report = Vec::with_capacity(batch.len());
            let mut broken = None;
            for (op, result) in batch.into_iter().zip(results) {
                match result {
                    Ok((outcome, remote_id)) => report.push(op.with(outcome).given(remote_id)),
                    // Writes that did go through are still reported before the run stops.
                    Err(error) => broken = broken.or(Some(error)),
                }
            }
            let _ = acks.send(report);
            if let Some(error) = broken {
                return Err(error);
            }
        }
        Ok(())
    }
}

/// What a write that went through did there: an upsert of an object without an id there is a create
/// (a POST), whatever the contracts say.
fn done(op: &Mapped) -> Outcome {
    match (&op.what, &op.remote_id) {
        (Action::Upsert(_), None) => Outcome::Created,
        _ => op.applied(),
    }
}

impl Sink for ApiSink {
    fn journal(&self) -> Result<Vec<(String, String)>, SinkError> {
        let Some((path, _)) = &self.journal else { return Ok(Vec::new()) };
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(error) => return Err(SinkError::Stopped(format!("cannot read {}: {error}", path.display()))),
        };
        // A line cut short by the kill is skipped: its create never finished being recorded.
        Ok(text.lines().filter_map(|line| serde_json::from_str::<(String, String)>(line).ok()).collect())
    }

    /// Creates carry ids of the API's own, so they are adopted from the journal instead.
    fn existing(&self) -> Result<Vec<String>, SinkError> {
        Ok(Vec::new())
    }

    fn write_all(self: Box<Self>, input: mpsc::Receiver<Vec<Mapped>>, acks: AckSender) -> BoxFuture<'static, Result<(), SinkError>> {
        self.write(input, acks).boxed()
    }
}
