//! The console's pages. Each one asks the `/api` handlers for its data (the same functions, with the
//! same validation and masking, that answer `curl`) and fills a template; nothing here reads the
//! catalog or the stores on its own.

use std::collections::HashMap;
use std::sync::OnceLock;

use super::chart;
use crate::sources::registry;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Response};
use minijinja::value::Serde;
use minijinja::{Environment, UndefinedBehavior};
use serde::Deserialize;
use serde_json::{Value, json};

use super::ConsoleError;
use super::session::SignedIn;
use crate::service::calls::CallsQuery;
use crate::service::deliveries::{self, DeliveryQuery};
use crate::service::operations::{JobsQuery, Page};
use crate::service::{Shared, definitions, operations};

const TEMPLATES: [(&str, &str); 16] = [
    ("layout.html", include_str!("templates/layout.html")),
    ("login.html", include_str!("templates/login.html")),
    ("error.html", include_str!("templates/error.html")),
    ("dashboard.html", include_str!("templates/dashboard.html")),
    ("list.html", include_str!("templates/list.html")),
    ("source.html", include_str!("templates/source.html")),
    ("mapping.html", include_str!("templates/mapping.html")),
    ("synchronization.html", include_str!("templates/synchronization.html")),
    ("contracts.html", include_str!("templates/contracts.html")),
    ("register.html", include_str!("templates/register.html")),
    ("objects.html", include_str!("templates/objects.html")),
    ("object.html", include_str!("templates/object.html")),
    ("jobs.html", include_str!("templates/jobs.html")),
    ("job.html", include_str!("templates/job.html")),
    ("webhooks.html", include_str!("templates/webhooks.html")),
    ("sql.html", include_str!("templates/sql.html")),
];

/// Rows per page of contracts and objects: a page stays small however many there are.
const PAGE_SIZE: usize = 50;

fn environment() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        // Definitions are free-form JSON: a missing nested field shows as empty, not as a page error.
        env.set_undefined_behavior(UndefinedBehavior::Chainable);
        for (name, source) in TEMPLATES {
            env.add_template(name, source).unwrap_or_else(|e| panic!("console template {name}: {e}"));
        }
        env.add_filter("ms", |ms: i64| {
            chrono::DateTime::from_timestamp_millis(ms).map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string()).unwrap_or_default()
        });
        env.add_filter("when", |text: Option<String>| {
            text.map(|t| t.replace('T', " ").trim_end_matches('Z').chars().take(19).collect::<String>()).unwrap_or_default()
        });
        env
    })
}

/// A short fingerprint of the embedded assets, so a new binary's script is never served from cache.
fn asset_version() -> &'static str {
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION.get_or_init(|| blake3::hash(format!("{}{}", super::CSS, super::JS).as_bytes()).to_hex()[..12].to_string())
}

fn try_render(name: &str, mut context: Value) -> Result<Response, ConsoleError> {
    context["asset_version"] = Value::String(asset_version().to_string());
    let html = environment().get_template(name)?.render(minijinja::Value::from(Serde(&context)))?;
    Ok(Html(html).into_response())
}

/// A page without a session (sign-in, errors); a broken template still answers, in plain text.
pub fn render(name: &str, context: Value) -> Response {
    try_render(name, context).unwrap_or_else(|e| (axum::http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response())
}

/// A signed-in page: the CSRF token its scripts send, and which navigation entry is current.
pub(super) fn page(name: &str, signed: &SignedIn, nav: &str, mut context: Value) -> Result<Response, ConsoleError> {
    context["csrf"] = Value::String(signed.csrf.clone());
    context["nav"] = Value::String(nav.to_string());
    try_render(name, context)
}

async fn list_of(shared: &Shared, section: &str) -> Result<Vec<Value>, ConsoleError> {
    let Json(answer) = definitions::list(State(Shared::clone(shared)), Path(section.to_string())).await?;
    Ok(answer["results"].as_array().cloned().unwrap_or_default())
}

/// One definition as `GET /api/{section}/{id}` shows it (secrets masked), `None` when there is none.
async fn one_of(shared: &Shared, section: &str, id: &str) -> Result<Option<Value>, ConsoleError> {
    match definitions::get_one(State(Shared::clone(shared)), Path((section.to_string(), id.to_string()))).await {
        Ok(Json(value)) => Ok(Some(value)),
        Err(error) if error.status == axum::http::StatusCode::NOT_FOUND => Ok(None),
        Err(error) => Err(error.into()),
    }
}

async fn jobs_of(shared: &Shared, synchronization: Option<String>, limit: usize) -> Result<Vec<Value>, ConsoleError> {
    let query = JobsQuery { synchronization, status: None, limit: Some(limit) };
    let Json(answer) = operations::jobs(State(Shared::clone(shared)), Query(query)).await?;
    Ok(answer["results"].as_array().cloned().unwrap_or_default())
}

#[derive(Deserialize, Default)]
pub struct Search {
    #[serde(default)]
    q: String,
    #[serde(default)]
    offset: usize,
}

/// Case-insensitive search on what a person reads in a row: id, name, description, location.
fn matches(row: &Value, q: &str) -> bool {
    let q = q.trim().to_lowercase();
    q.is_empty()
        || ["id", "name", "description", "location", "synchronization", "status", "sourceId", "source"]
            .iter()
            .filter_map(|k| row.get(*k))
            .any(|v| crate::path::text_of(v).to_lowercase().contains(&q))
}

/// How many runs a chart shows, and how many synchronizations the dashboard charts.
const CHART_RUNS: usize = 30;
const DASHBOARD_CHARTS: usize = 12;

pub async fn dashboard(State(shared): State<Shared>, signed: SignedIn) -> Result<Response, ConsoleError> {
    let Json(counts) = operations::dashboard(State(Shared::clone(&shared))).await?;
    let runs = jobs_of(&shared, None, 10).await?;
    let health: Vec<Value> = list_of(&shared, "sources")
        .await?
        .into_iter()
        .map(|s| {
            let id = s["id"].as_str().unwrap_or_default().to_string();
            json!({ "id": id, "name": s.get("name").cloned().unwrap_or(Value::String(id.clone())), "test": shared.source_tests.last(&id) })
        })
        .collect();
    let jobs_total: u64 = counts["jobs"].as_object().map(|m| m.values().filter_map(Value::as_u64).sum()).unwrap_or(0);
    // Runs over time, one small chart per synchronization (the most recently run first).
    let recent = jobs_of(&shared, None, 500).await?;
    let mut order: Vec<&str> = Vec::new();
    for job in &recent {
        let sync = job["synchronization"].as_str().unwrap_or_default();
        if !order.contains(&sync) && order.len() < DASHBOARD_CHARTS {
            order.push(sync);
        }
    }
    let charts: Vec<Value> = order
        .iter()
        .filter_map(|&sync| {
            let jobs: Vec<Value> = recent.iter().filter(|j| j["synchronization"] == sync).take(CHART_RUNS).cloned().collect();
            let outcomes = chart::outcomes(&jobs, 150.0, sync)?;
            let duration = chart::per_run(&jobs, 80.0, sync, chart::Measure::Seconds);
            Some(json!({ "synchronization": sync, "outcomes": outcomes, "duration": duration }))
        })
        .collect();
    page(
        "dashboard.html",
        &signed,
        "dashboard",
        json!({ "title": "Dashboard", "counts": counts, "jobs_total": jobs_total, "runs": runs, "health": health, "charts": charts }),
    )
}

async fn list_page(shared: Shared, signed: SignedIn, section: &str, title: &str, search: Search) -> Result<Response, ConsoleError> {
    let mut rows: Vec<Value> = list_of(&shared, section).await?.into_iter().filter(|r| matches(r, &search.q)).collect();
    // What OpenConnector's lists show beside a definition: a source's health, a synchronization's last run.
    let recent = if section == "synchronizations" { jobs_of(&shared, None, 200).await? } else { Vec::new() };
    for row in &mut rows {
        let id = row["id"].as_str().unwrap_or_default().to_string();
        match section {
            "sources" => row["last_test"] = shared.source_tests.last(&id).unwrap_or(Value::Null),
            "synchronizations" => {
                row["last_job"] = recent.iter().find(|j| j["synchronization"] == id.as_str()).cloned().unwrap_or(Value::Null)
            }
            _ => {}
        }
    }
    page("list.html", &signed, section, json!({ "title": title, "kind": section, "rows": rows, "q": search.q }))
}

pub async fn sources(State(shared): State<Shared>, signed: SignedIn, Query(search): Query<Search>) -> Result<Response, ConsoleError> {
    list_page(shared, signed, "sources", "Sources", search).await
}

pub async fn mappings(State(shared): State<Shared>, signed: SignedIn, Query(search): Query<Search>) -> Result<Response, ConsoleError> {
    list_page(shared, signed, "mappings", "Mappings", search).await
}

pub async fn synchronizations(
    State(shared): State<Shared>,
    signed: SignedIn,
    Query(search): Query<Search>,
) -> Result<Response, ConsoleError> {
    list_page(shared, signed, "synchronizations", "Synchronizations", search).await
}

pub async fn registers(State(shared): State<Shared>, signed: SignedIn, Query(search): Query<Search>) -> Result<Response, ConsoleError> {
    list_page(shared, signed, "registers", "Registers and schemas", search).await
}

/// `new` opens an empty form (unless a definition is really called that); other ids must exist.
async fn definition(shared: &Shared, section: &str, id: &str) -> Result<Option<Value>, ConsoleError> {
    match one_of(shared, section, id).await? {
        Some(found) => Ok(Some(found)),
        None if id == "new" => Ok(None),
        None => Err(ConsoleError::Api(format!("no {section} `{id}`"), axum::http::StatusCode::NOT_FOUND)),
    }
}

/// A definition's fields for the page's script, which edits them and sends the whole back.
fn editable(entry: &Option<Value>) -> Value {
    let mut body = entry.clone().unwrap_or_else(|| json!({}));
    if let Some(fields) = body.as_object_mut() {
        for key in ["id", "file", "running", "next_run"] {
            fields.remove(key);
        }
    }
    body
}

/// Which calls a source page lists.
#[derive(Debug, Default, Clone, Copy, Deserialize)]
pub struct CallsFilter {
    #[serde(default)]
    errors: bool,
}

pub async fn source(
    State(shared): State<Shared>,
    signed: SignedIn,
    Path(id): Path<String>,
    Query(calls_filter): Query<CallsFilter>,
) -> Result<Response, ConsoleError> {
    let calls = calls_filter;
    let entry = definition(&shared, "sources", &id).await?;
    let body = editable(&entry);
    // Secrets come masked: all the page can say is whether one is set.
    let secret = |key: &str| body.get(key).or_else(|| body.pointer(&format!("/auth/{key}"))).is_some_and(|v| !v.is_null() && v != "");
    let mut secrets = json!({ "password": secret("password"), "token": secret("token"), "apiKey": secret("apiKey") || secret("apikey") });
    // Each connector's own inputs come from its folder, with whether each of its secrets is set.
    let kinds: Vec<Value> = registry::registry()
        .iter()
        .map(|c| {
            for key in c.settings.as_ref().map_or(&[][..], |s| s.secrets) {
                secrets[*key] = secret(key).into();
            }
            json!({"value": c.kind, "label": c.label, "fields": c.fields})
        })
        .collect();
    let auth = body.get("auth").map(|a| a.get("type").unwrap_or(a).clone()).unwrap_or(Value::String("none".into()));
    let readers: Vec<Value> = list_of(&shared, "synchronizations")
        .await?
        .into_iter()
        .filter(|s| ["source", "sourceId"].iter().any(|k| s.get(*k).and_then(Value::as_str) == Some(id.as_str())))
        .collect();
    let title = entry
        .as_ref()
        .and_then(|e| e["name"].as_str().map(str::to_string))
        .unwrap_or_else(|| if entry.is_some() { id.clone() } else { "New source".into() });
    let calls = match &entry {
        Some(_) => {
            let query = CallsQuery { errors: Some(calls.errors), limit: Some(100), ..CallsQuery::default() };
            let Json(answer) = crate::service::calls::list(State(Shared::clone(&shared)), Path(id.clone()), Query(query)).await?;
            answer["results"].clone()
        }
        None => Value::Null,
    };
    page(
        "source.html",
        &signed,
        "sources",
        json!({
            "title": title, "id": id, "entry": entry, "body": body, "secrets": secrets, "auth": auth, "readers": readers, "kinds": kinds,
            "calls": calls, "errors_only": calls_filter.errors,
        }),
    )
}

pub async fn mapping(State(shared): State<Shared>, signed: SignedIn, Path(id): Path<String>) -> Result<Response, ConsoleError> {
    let entry = definition(&shared, "mappings", &id).await?;
    let body = editable(&entry);
    let title = entry
        .as_ref()
        .and_then(|e| e["name"].as_str().map(str::to_string))
        .unwrap_or_else(|| if entry.is_some() { id.clone() } else { "New mapping".into() });
    let sample = json!({ "id": 7, "name": "Bella", "status": "available", "category": { "name": "Dogs" } });
    // A sample can also be fetched through a synchronization: the first record its source gives.
    let feeds: Vec<Value> = list_of(&shared, "synchronizations")
        .await?
        .into_iter()
        .filter_map(|s| {
            let source = ["source", "sourceId"].iter().find_map(|k| s.get(*k).and_then(Value::as_str))?.to_string();
            Some(json!({ "id": s["id"], "source": source }))
        })
        .collect();
    // As pairs: the template engine would list a map's fields sorted, not in the mapping's order.
    let pairs = |key: &str| {
        body.get(key).and_then(Value::as_object).map(|m| m.iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>()).unwrap_or_default()
    };
    page(
        "mapping.html",
        &signed,
        "mappings",
        json!({
            "title": title, "id": id, "entry": entry, "body": body, "feeds": feeds, "fields": pairs("mapping"), "casts": pairs("cast"), "sample": serde_json::to_string_pretty(&sample).unwrap_or_default(),
        }),
    )
}

pub async fn synchronization(State(shared): State<Shared>, signed: SignedIn, Path(id): Path<String>) -> Result<Response, ConsoleError> {
    let entry = definition(&shared, "synchronizations", &id).await?;
    let body = editable(&entry);
    let ids = |rows: Vec<Value>| rows.into_iter().map(|r| r["id"].clone()).collect::<Vec<_>>();
    let sources = ids(list_of(&shared, "sources").await?);
    let mappings = ids(list_of(&shared, "mappings").await?);
    let targets: Vec<String> = list_of(&shared, "registers")
        .await?
        .iter()
        .flat_map(|r| {
            let register = r["id"].as_str().unwrap_or_default().to_string();
            r["schemas"].as_object().map(|s| s.keys().map(|k| format!("{register}/{k}")).collect::<Vec<_>>()).unwrap_or_default()
        })
        .collect();
    let recent = if entry.is_some() { jobs_of(&shared, Some(id.clone()), CHART_RUNS).await? } else { Vec::new() };
    let charts = json!({
        "outcomes": chart::outcomes(&recent, 200.0, &id),
        "rate": chart::per_run(&recent, 110.0, &id, chart::Measure::RecordsPerSecond),
    });
    let runs: Vec<Value> = recent.into_iter().take(10).collect();
    let active = runs.iter().find(|j| matches!(j["status"].as_str(), Some("PENDING" | "RUNNING" | "CANCELLING"))).map(|j| j["id"].clone());
    let title = entry
        .as_ref()
        .and_then(|e| e["name"].as_str().map(str::to_string))
        .unwrap_or_else(|| if entry.is_some() { id.clone() } else { "New synchronization".into() });
    page(
        "synchronization.html",
        &signed,
        "synchronizations",
        json!({
            "title": title, "id": id, "entry": entry, "body": body, "sources": sources, "mappings": mappings, "targets": targets,
            "runs": runs, "active": active, "charts": charts,
            "source_key": if body.get("source").is_some() { "source" } else { "sourceId" },
            "mapping_key": if body.get("mapping").is_some() { "mapping" } else { "sourceTargetMapping" },
        }),
    )
}

pub async fn contracts(
    State(shared): State<Shared>,
    signed: SignedIn,
    Path(id): Path<String>,
    Query(search): Query<Search>,
) -> Result<Response, ConsoleError> {
    let query = Page { limit: Some(PAGE_SIZE), offset: Some(search.offset), search: Some(search.q.clone()).filter(|q| !q.is_empty()) };
    let Json(answer) = operations::contracts(State(Shared::clone(&shared)), Path(id.clone()), Query(query)).await?;
    let total = answer["total"].as_u64().unwrap_or(0) as usize;
    page(
        "contracts.html",
        &signed,
        "synchronizations",
        json!({
            "title": format!("Contracts of {id}"), "id": id, "rows": answer["results"], "total": total, "q": search.q,
            "offset": search.offset, "shown_to": (search.offset + PAGE_SIZE).min(total),
            "prev": if search.offset > 0 { Some(search.offset.saturating_sub(PAGE_SIZE)) } else { None },
            "next": (search.offset + PAGE_SIZE < total).then_some(search.offset + PAGE_SIZE),
        }),
    )
}

pub async fn register(State(shared): State<Shared>, signed: SignedIn, Path(id): Path<String>) -> Result<Response, ConsoleError> {
    let entry = definition(&shared, "registers", &id).await?;
    let body = editable(&entry);
    let title = entry.as_ref().map_or_else(|| "New register".to_string(), |_| format!("Register {id}"));
    page("register.html", &signed, "registers", json!({ "title": title, "id": id, "entry": entry, "body": body }))
}

pub async fn objects(
    State(shared): State<Shared>,
    signed: SignedIn,
    Path((register, schema)): Path<(String, String)>,
    Query(search): Query<Search>,
) -> Result<Response, ConsoleError> {
    let query = HashMap::from([("limit".to_string(), PAGE_SIZE.to_string()), ("offset".to_string(), search.offset.to_string())]);
    let Json(answer) = operations::objects(State(Shared::clone(&shared)), Path((register.clone(), schema.clone())), Query(query)).await?;
    let total = answer["total"].as_u64().unwrap_or(0) as usize;
    page(
        "objects.html",
        &signed,
        "registers",
        json!({
            "title": format!("{register} / {schema}"), "register": register, "schema": schema, "rows": answer["results"], "total": total,
            "offset": search.offset, "shown_to": (search.offset + PAGE_SIZE).min(total),
            "prev": if search.offset > 0 { Some(search.offset.saturating_sub(PAGE_SIZE)) } else { None },
            "next": (search.offset + PAGE_SIZE < total).then_some(search.offset + PAGE_SIZE),
        }),
    )
}

pub async fn object(State(shared): State<Shared>, signed: SignedIn, Path(id): Path<String>) -> Result<Response, ConsoleError> {
    let Json(answer) = operations::object(State(shared), Path(id.clone())).await?;
    let pretty = serde_json::to_string_pretty(&answer["object"]["object"]).unwrap_or_default();
    page(
        "object.html",
        &signed,
        "registers",
        json!({ "title": format!("Object {id}"), "found": answer["object"], "audit": answer["audit"], "pretty": pretty }),
    )
}

pub async fn jobs(State(shared): State<Shared>, signed: SignedIn, Query(search): Query<Search>) -> Result<Response, ConsoleError> {
    let rows: Vec<Value> = jobs_of(&shared, None, 200).await?.into_iter().filter(|r| matches(r, &search.q)).collect();
    page("jobs.html", &signed, "jobs", json!({ "title": "Jobs", "rows": rows, "q": search.q }))
}

/// The subscriptions, and their deliveries (of one subscription, in one status).
pub async fn webhooks(
    State(shared): State<Shared>,
    signed: SignedIn,
    Query(filter): Query<DeliveryQuery>,
) -> Result<Response, ConsoleError> {
    let subscriptions = list_of(&shared, "webhooks").await?;
    let filter = DeliveryQuery {
        webhook: filter.webhook.filter(|w| !w.is_empty()),
        status: filter.status.filter(|s| !s.is_empty()),
        limit: Some(200),
    };
    let (webhook, status) = (filter.webhook.clone(), filter.status.clone().unwrap_or_default());
    let Json(deliveries) = deliveries::list(State(shared), Query(filter)).await?;
    let context = json!({ "title": "Webhooks", "subscriptions": subscriptions, "deliveries": deliveries["results"], "webhook": webhook, "status": status });
    page("webhooks.html", &signed, "webhooks", context)
}

pub async fn job(State(shared): State<Shared>, signed: SignedIn, Path(id): Path<String>) -> Result<Response, ConsoleError> {
    let Json(job) = operations::job(State(Shared::clone(&shared)), Path(id.clone())).await?;
    let Json(logs) = operations::logs(State(shared), Path(id.clone())).await?;
    page("job.html", &signed, "jobs", json!({ "title": format!("Job {id}"), "job": job, "logs": logs["logs"], "errors": logs["errors"] }))
}
