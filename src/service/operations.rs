//! Runs and what they leave: start a job, follow and cancel it, its logs; a synchronization's
//! contracts; the register's objects; the dashboard's counts.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::catalog::Section;
use super::compat::{RunBody, run_answer};
use super::runner::RunRequest;
use super::{ApiError, Shared};
use crate::diff::contracts::ContractTable;
use crate::store::{JobRecord, StoreError};

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/api/synchronizations/{id}/run", post(run))
        .route("/api/synchronizations/{id}/contracts", get(contracts))
        .route("/api/synchronizations/{id}/contracts/{origin_id}", delete(remove_contract))
        .route("/api/jobs", get(jobs))
        .route("/api/jobs/{id}", get(job))
        .route("/api/jobs/{id}/cancel", post(cancel))
        .route("/api/jobs/{id}/logs", get(logs))
        .route("/api/registers/{register}/schemas/{schema}/objects", get(objects))
        .route("/api/registers/{register}/schemas/{schema}/changes", get(changes))
        .route("/api/objects/{id}", get(object))
        .route("/api/dashboard", get(dashboard))
}

/// A job as the sync-job API shows it (`entities_inserted` …), with syncline's own counts beside.
pub(super) fn job_view(shared: &Shared, job: &JobRecord) -> Value {
    let counts = shared.runner.progress(&job.id).filter(|_| !job.status.is_final()).unwrap_or(job.counts);
    json!({
        "id": job.id,
        "synchronization": job.synchronization,
        "source_connection_id": job.synchronization,
        "status": job.status.as_str(),
        "force_full_sync": job.force_full_sync,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "completed_at": job.completed_at,
        "duration_seconds": job.duration_seconds,
        "entities_inserted": counts.created,
        "entities_updated": counts.updated,
        "entities_deleted": counts.deleted,
        "entities_failed": counts.failed,
        "entities_found": counts.found,
        "entities_unchanged": counts.unchanged,
        "entities_skipped": counts.skipped,
        "error": job.error,
        "error_category": job.error_category,
    })
}

fn not_found(error: StoreError) -> ApiError {
    match error {
        StoreError::NotFound(message) => ApiError::not_found(message),
        other => other.into(),
    }
}

/// 409 while another replica runs `id` (with `--leases`, its lease is held): the local runner
/// knows only its own runs.
pub(super) async fn refuse_if_leased(shared: &Shared, id: &str) -> Result<(), ApiError> {
    if let Some(leases) = shared.state.leases()
        && let Some(holder) = leases.holder(id).await?
    {
        return Err(ApiError::new(StatusCode::CONFLICT, StoreError::Leased { sync: id.into(), holder }.to_string()));
    }
    Ok(())
}

#[derive(Deserialize)]
pub struct RunQuery {
    #[serde(default)]
    pub force_full_sync: Option<String>,
}

/// Without a body (or `{}`): 201 with the PENDING job, to follow at `/api/jobs/{id}`. With OpenConnector's
/// body `{test, force}`: waits for the run and answers its `SynchronizationLog` (200, or 400 when it failed).
#[utoipa::path(post, path = "/api/synchronizations/{id}/run", params(("id" = String, Path), ("force_full_sync" = Option<bool>, Query, description = "ignore saved hashes and cursors")),
    request_body(content = Option<Object>, description = "OpenConnector's `{test, force}`: run synchronously; `test` reads the first page and writes nothing"),
    responses((status = 201, description = "The job, PENDING; poll GET /api/jobs/{id}"), (status = 200, description = "With a body: the finished run, in OpenConnector's shape"),
        (status = 400, description = "With a body: the run failed"), (status = 409, description = "Already running")))]
pub async fn run(
    State(shared): State<Shared>,
    Path(id): Path<String>,
    Query(query): Query<RunQuery>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let force = matches!(query.force_full_sync.as_deref(), Some("true" | "1" | "yes"));
    let body = RunBody::parse(&body)?;
    let pipeline = shared.catalog.pipeline_for(&id)?;
    refuse_if_leased(&shared, &id).await?;
    let Some(body) = body else {
        let job = shared.runner.start(pipeline, &id, force)?;
        return Ok((StatusCode::CREATED, Json(job_view(&shared, &job))).into_response());
    };
    let (force, test) = (force || body.force.0, body.test.0);
    let request = RunRequest { force_full_sync: force, dry_run: test, first_page_only: test, ..RunRequest::default() };
    let (_, done) = shared.runner.start_with(pipeline, &id, request)?;
    let finished = done.await.map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "the run ended without reporting how"))?;
    Ok(run_answer(job_view(&shared, &finished.job), &finished, &body, force))
}

#[derive(Deserialize)]
pub struct JobsQuery {
    pub synchronization: Option<String>,
    pub status: Option<String>,
    pub limit: Option<usize>,
}

#[utoipa::path(get, path = "/api/jobs", params(("synchronization" = Option<String>, Query), ("status" = Option<String>, Query), ("limit" = Option<usize>, Query)),
    responses((status = 200, description = "`{results}`, newest first")))]
pub async fn jobs(State(shared): State<Shared>, Query(query): Query<JobsQuery>) -> Result<Json<Value>, ApiError> {
    let limit = query.limit.unwrap_or(50).min(1000);
    let list = shared.state.jobs()?.list(query.synchronization.as_deref(), limit)?;
    let results: Vec<Value> = list
        .iter()
        .filter(|j| query.status.as_deref().is_none_or(|s| s.eq_ignore_ascii_case(j.status.as_str())))
        .map(|j| job_view(&shared, j))
        .collect();
    Ok(Json(json!({ "results": results })))
}

#[utoipa::path(get, path = "/api/jobs/{id}", params(("id" = String, Path)), responses((status = 200, description = "The job, with live counts while it runs")))]
pub async fn job(State(shared): State<Shared>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let job = shared.state.jobs()?.get(&id).map_err(not_found)?;
    Ok(Json(job_view(&shared, &job)))
}

#[utoipa::path(post, path = "/api/jobs/{id}/cancel", params(("id" = String, Path)),
    responses((status = 200, description = "CANCELLING; CANCELLED once its writes settle"), (status = 409, description = "Not running")))]
pub async fn cancel(State(shared): State<Shared>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let job = shared.state.jobs()?.get(&id).map_err(not_found)?;
    match shared.runner.cancel(&job.id)? {
        Some(job) => Ok(Json(job_view(&shared, &job))),
        None => Err(ApiError::new(StatusCode::CONFLICT, format!("job {} is {}, not running", job.id, job.status.as_str()))),
    }
}

#[utoipa::path(get, path = "/api/jobs/{id}/logs", params(("id" = String, Path)), responses((status = 200, description = "`{logs, errors}`: log lines and per-object errors")))]
pub async fn logs(State(shared): State<Shared>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let jobs = shared.state.jobs()?;
    let job = jobs.get(&id).map_err(not_found)?;
    Ok(Json(json!({ "job": job.id, "logs": jobs.logs(&job.id)?, "errors": jobs.errors(&job.id, 1000)? })))
}

#[derive(Deserialize)]
pub struct Page {
    pub limit: Option<usize>,
    pub offset: Option<usize>,
    pub search: Option<String>,
}

#[utoipa::path(get, path = "/api/synchronizations/{id}/contracts", params(("id" = String, Path), ("limit" = Option<usize>, Query), ("offset" = Option<usize>, Query), ("search" = Option<String>, Query, description = "part of an origin id")),
    responses((status = 200, description = "`{total, results}`: origin id, target id, hash, last seen")))]
pub async fn contracts(State(shared): State<Shared>, Path(id): Path<String>, Query(page): Query<Page>) -> Result<Json<Value>, ApiError> {
    if shared.catalog.get(Section::Synchronizations, &id)?.is_none() {
        return Err(ApiError::not_found(format!("no synchronization `{id}`")));
    }
    let table = ContractTable::load(&shared.state, &id).await?;
    let all = table.contracts();
    let matching: Vec<_> = all.iter().filter(|c| page.search.as_deref().is_none_or(|s| c.origin_id.contains(s))).collect();
    let results: Vec<_> = matching.iter().skip(page.offset.unwrap_or(0)).take(page.limit.unwrap_or(100).min(10_000)).collect();
    Ok(Json(json!({ "total": matching.len(), "results": results })))
}

#[utoipa::path(delete, path = "/api/synchronizations/{id}/contracts/{origin_id}", params(("id" = String, Path), ("origin_id" = String, Path)),
    responses((status = 204, description = "Removed: the next run creates that object again"), (status = 409, description = "The synchronization is running")))]
pub async fn remove_contract(State(shared): State<Shared>, Path((id, origin_id)): Path<(String, String)>) -> Result<StatusCode, ApiError> {
    if shared.runner.is_running(&id) {
        return Err(ApiError::new(StatusCode::CONFLICT, format!("`{id}` is running; remove contracts between runs")));
    }
    // The run lock: no command-line run may save over this change.
    let lock = shared.state.lock_run(&id).await.map_err(|e| ApiError::new(StatusCode::CONFLICT, e.to_string()))?;
    let removed = async {
        let mut table = ContractTable::load(&shared.state, &id).await?;
        let row =
            table.find(&origin_id).ok_or_else(|| ApiError::not_found(format!("`{id}` has no contract for origin id `{origin_id}`")))?;
        table.remove(row);
        table.save(&shared.state, &id).await?;
        Ok(StatusCode::NO_CONTENT)
    }
    .await;
    lock.release().await;
    removed
}

#[utoipa::path(get, path = "/api/registers/{register}/schemas/{schema}/objects",
    params(("register" = String, Path), ("schema" = String, Path), ("limit" = Option<usize>, Query), ("offset" = Option<usize>, Query)),
    responses((status = 200, description = "`{total, results}`; any other query parameter filters on that field")))]
pub async fn objects(
    State(shared): State<Shared>,
    Path((register, schema)): Path<(String, String)>,
    Query(mut query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let number = |v: Option<String>, default: usize| v.and_then(|v| v.parse().ok()).unwrap_or(default);
    let limit = number(query.remove("limit"), 50).min(1000);
    // SQLite counts in i64: an offset past that is past every object anyway.
    let offset = number(query.remove("offset"), 0).min(i64::MAX as usize);
    let mut filters: Vec<(String, String)> = query.into_iter().collect();
    filters.sort();
    let store = shared.state.register()?;
    let total = store.count(&register, &schema, &filters)?;
    let results = store.list(&register, &schema, &filters, limit, offset)?;
    Ok(Json(json!({ "total": total, "limit": limit, "offset": offset, "results": results })))
}

/// The change feed's query: `since` the last change seen, `until` the span's end (from the first
/// page's answer), `latest` for each object's latest change only.
#[derive(Debug, Deserialize)]
pub struct ChangesQuery {
    since: Option<i64>,
    until: Option<i64>,
    limit: Option<usize>,
    latest: Option<bool>,
}

#[utoipa::path(get, path = "/api/registers/{register}/schemas/{schema}/changes",
    params(("register" = String, Path), ("schema" = String, Path), ("since" = Option<i64>, Query), ("until" = Option<i64>, Query),
        ("limit" = Option<usize>, Query), ("latest" = Option<bool>, Query),
        ("X-OpenRegister-Sync-Origin" = Option<String>, Header, description = "The reading instance: what came from it is left out")),
    responses((status = 200, description = "`{instance, since, until, next, more, results}`: each change with its number (`seq`), \
        action, object id, job and synchronization, and the object for a create or update")))]
pub async fn changes(
    State(shared): State<Shared>,
    Path((register, schema)): Path<(String, String)>,
    Query(query): Query<ChangesQuery>,
    headers: axum::http::HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let origin = headers.get(crate::store::register::SYNC_ORIGIN).and_then(|v| v.to_str().ok());
    let since = query.since.unwrap_or(0);
    let feed = crate::store::register::ChangeQuery {
        register: Some(&register),
        schema: Some(&schema),
        since,
        until: query.until,
        limit: query.limit.unwrap_or(100),
        latest: query.latest.unwrap_or(false),
        exclude_origin: origin,
    };
    let page = shared.state.register()?.changes(&feed)?;
    Ok(Json(json!({
        "instance": shared.state.instance()?,
        "register": register,
        "schema": schema,
        "since": since,
        "until": page.until,
        "next": page.next,
        "more": page.more,
        "results": page.changes,
    })))
}

#[utoipa::path(get, path = "/api/objects/{id}", params(("id" = String, Path)), responses((status = 200, description = "`{object, audit}`")))]
pub async fn object(State(shared): State<Shared>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let (object, audit) = shared.state.register()?.show(&id).map_err(not_found)?;
    Ok(Json(json!({ "object": object, "audit": audit })))
}

#[utoipa::path(get, path = "/api/dashboard", responses((status = 200, description = "Counts of definitions, contracts and jobs by status; recent errors")))]
pub async fn dashboard(State(shared): State<Shared>) -> Result<Json<Value>, ApiError> {
    let catalog = &shared.catalog;
    let syncs = catalog.synchronization_ids()?;
    let mut contracts = 0;
    for sync in &syncs {
        contracts += shared.state.contract_rows(sync).await?;
    }
    let jobs = shared.state.jobs()?;
    let by_status: serde_json::Map<String, Value> = jobs.status_counts()?.into_iter().map(|(s, n)| (s, Value::from(n))).collect();
    let errors: Vec<Value> = jobs
        .recent_failures(10)?
        .iter()
        .map(|j| json!({ "job": j.id, "synchronization": j.synchronization, "at": j.completed_at, "error": j.error, "error_category": j.error_category }))
        .collect();
    Ok(Json(json!({
        "sources": catalog.list(Section::Sources)?.len(),
        "mappings": catalog.list(Section::Mappings)?.len(),
        "registers": catalog.list(Section::Registers)?.len(),
        "synchronizations": syncs.len(),
        "contracts": contracts,
        "jobs": by_status,
        "recent_errors": errors,
    })))
}
