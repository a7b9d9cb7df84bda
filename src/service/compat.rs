//! OpenConnector's shapes over HTTP: a synchronous run answered as its `SynchronizationLog`
//! (`result.objects`, `timing.stages`), and configuration files imported into and exported from the
//! catalog.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::catalog::Section;
use super::runner::Finished;
use super::{ApiError, Shared};
use crate::config::{Flag, Pipeline};
use crate::openconnector;
use crate::pipeline::Stage;
use crate::store::JobStatus;

pub fn routes() -> Router<Shared> {
    Router::new().route("/api/import", post(import)).route("/api/export", get(export))
}

/// The body OpenConnector's clients send to run a synchronization.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunBody {
    /// Map and validate the first page only; write nothing.
    #[serde(default)]
    pub test: Flag,
    /// Ignore saved hashes (OpenConnector's `force`, syncline's `force_full_sync`).
    #[serde(default)]
    pub force: Flag,
    /// Accepted for OpenConnector's clients; only a run's own source is read.
    #[serde(default)]
    pub source: Option<Value>,
    /// Accepted for OpenConnector's clients; run data is not merged into records.
    #[serde(default)]
    pub data: Option<Value>,
}

impl RunBody {
    /// What this body asks for that a run does not do, said in the answer rather than ignored.
    pub fn notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        if self.source.is_some() {
            notes.push("`source` is not honoured: a run reads its synchronization's own source".to_string());
        }
        if self.data.is_some() {
            notes.push("`data` is not honoured: run data is not merged into records".to_string());
        }
        notes
    }

    /// `None` for a body without `test` or `force` (empty, or `{}`): the asynchronous job form.
    pub fn parse(body: &[u8]) -> Result<Option<RunBody>, ApiError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        let value: Value =
            serde_json::from_slice(body).map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("the run body is not JSON: {e}")))?;
        if value.get("test").is_none() && value.get("force").is_none() {
            return Ok(None);
        }
        serde_json::from_value(value)
            .map(Some)
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("the run body is not {{test, force}}: {e}")))
    }
}

/// A finished run as OpenConnector's `SynchronizationLog`, next to the job's own fields.
pub fn run_answer(job_view: Value, finished: &Finished, body: &RunBody, force: bool) -> Response {
    let test = body.test.0;
    let job = &finished.job;
    let counts = job.counts;
    let timings = &finished.progress.timings;
    let total_ms = job.duration_seconds.unwrap_or_default() * 1000.0;
    let stage = |stage: Stage, description: &str| json!({"duration_ms": round(timings.millis(stage)), "description": description});
    let mut stages = serde_json::Map::new();
    stages.insert(
        "configuration_validation".into(),
        stage(Stage::Prepare, "Compile the mapping, open the source and target, load the contracts"),
    );
    let mut fetch = stage(Stage::Fetch, "Wait for the source's pages");
    fetch["objects_fetched"] = counts.found.into();
    // Waits for a spent budget are not failures; only a run the rate limit stopped says so.
    fetch["rate_limited"] = (job.error_category.as_deref() == Some(crate::errors::ErrorCategory::RateLimited.as_str())).into();
    stages.insert("fetch_objects".into(), fetch);
    stages.insert("object_preparation".into(), stage(Stage::Map, "Parse, filter and map records"));
    let mut process = stage(Stage::Process, "Hash, diff and write, streaming beside the fetch");
    let processed = counts.created + counts.updated + counts.unchanged + counts.skipped + counts.failed;
    process["average_per_object_ms"] = round(if processed > 0 { timings.millis(Stage::Process) / processed as f64 } else { 0.0 }).into();
    stages.insert("process_objects".into(), process);
    let mut cleanup = stage(Stage::Cleanup, "Delete the objects whose records are gone");
    cleanup["objects_deleted"] = counts.deleted.into();
    stages.insert("cleanup_invalid".into(), cleanup);
    let slowest = stages
        .iter()
        .max_by(|a, b| a.1["duration_ms"].as_f64().unwrap_or(0.0).total_cmp(&b.1["duration_ms"].as_f64().unwrap_or(0.0)))
        .map(|(name, value)| json!({"name": name, "duration_ms": value["duration_ms"]}));
    let per_second = if total_ms > 0.0 { counts.found as f64 / (total_ms / 1000.0) } else { 0.0 };

    let ok = job.status == JobStatus::Completed;
    let mut answer = job_view;
    let fields = answer.as_object_mut().expect("a job view is an object");
    fields.insert(
        "message".into(),
        if ok { "Success".into() } else { job.error.clone().unwrap_or_else(|| job.status.as_str().to_string()).into() },
    );
    fields.insert("test".into(), test.into());
    fields.insert("force".into(), force.into());
    fields.insert("executionTime".into(), (total_ms.round() as u64).into());
    let mut warnings = finished.warnings.clone();
    warnings.extend(body.notes());
    fields.insert("warnings".into(), json!(warnings));
    fields.insert(
        "result".into(),
        json!({
            "type": "externToIntern",
            "objects": {
                "found": counts.found,
                // OpenConnector counts unchanged objects and those its conditions turned away as skipped.
                "skipped": counts.unchanged + counts.skipped,
                "created": counts.created,
                "updated": counts.updated,
                "deleted": counts.deleted,
                "invalid": counts.failed,
            },
        }),
    );
    fields.insert(
        "timing".into(),
        json!({"stages": stages, "total_ms": round(total_ms), "summary": {"slowest_stage": slowest, "objects_per_second": round(per_second)}}),
    );
    if ok {
        (StatusCode::OK, Json(answer)).into_response()
    } else {
        // OpenConnector's error form, with the job beside it so the run can be followed up.
        fields.insert("error".into(), "Synchronization error".into());
        (StatusCode::BAD_REQUEST, Json(answer)).into_response()
    }
}

fn round(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

/// Imports an OpenConnector/OpenRegister configuration file into the catalog: every definition is kept,
/// or none when the result would not validate.
#[utoipa::path(post, path = "/api/import", request_body(content = Object, description = "An OpenConnector/OpenRegister configuration file"),
    responses((status = 200, description = "What was imported, and the notes on what was not carried over"),
        (status = 400, description = "The definitions would not validate; nothing was kept"), (status = 422, description = "Not a configuration file")))]
pub async fn import(State(shared): State<Shared>, Json(config): Json<Value>) -> Result<Json<Value>, ApiError> {
    let imported = openconnector::import(&config).map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))?;
    let mut entries = Vec::new();
    for section in Section::ALL {
        if let Some(Value::Object(items)) = imported.pipeline.get(section.as_str()) {
            for (id, body) in items {
                entries.push((section, id.clone(), body.clone()));
            }
        }
    }
    let mut created = Vec::new();
    let mut updated = Vec::new();
    for (section, id, _) in &entries {
        let slot = if shared.catalog.get(*section, id)?.is_some() { &mut updated } else { &mut created };
        slot.push(format!("{}/{id}", section.as_str()));
    }
    shared.catalog.put_all(&entries)?;
    let notices: Vec<Value> = imported.notices.iter().map(|n| json!({"key": n.key, "message": n.message})).collect();
    Ok(Json(json!({"created": created, "updated": updated, "notices": notices})))
}

/// Every definition of the catalog as an OpenConnector/OpenRegister configuration file.
#[utoipa::path(get, path = "/api/export", responses((status = 200, description = "The configuration file"), (status = 422, description = "The definitions do not validate")))]
pub async fn export(State(shared): State<Shared>) -> Result<Json<Value>, ApiError> {
    let value = shared.catalog.assemble(&[])?;
    let pipeline = Pipeline::from_value("definitions", value, std::path::Path::new("."))
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))?;
    let (mut file, notices) = openconnector::export(&pipeline, "syncline");
    file["x-syncline-notices"] = notices.iter().map(|n| json!({"key": n.key, "message": n.message})).collect();
    Ok(Json(file))
}
