//! Webhooks in: `POST /api/hooks/{synchronization}`, opened by the API key or a signature with the
//! synchronization's `hook.secret`. An empty body (or one without records) starts a run; `{"object":
//! {…}}`, `{"objects": […]}` or `{"delete": "<origin id>"}` — bare, or as a CloudEvent's `data` —
//! synchronizes just those through the run's mapping, hash-diff and contracts, and answers with the
//! job when it is done. An event id (`webhook-id`, `x-event-id`, or a CloudEvent's `id`) seen before
//! is a replay: answered with the job it started, and nothing runs again.

use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::catalog::Section;
use super::{ApiError, Shared};
use crate::sources::RawRecord;

/// The most records one request may push.
const MAX_PUSHED: usize = 1000;

pub fn routes() -> Router<Shared> {
    Router::new().route("/api/hooks/{synchronization}", post(receive))
}

#[utoipa::path(post, path = "/api/hooks/{synchronization}", params(("synchronization" = String, Path)), security(()),
    request_body(content = Object, description = "Nothing (start a run), `{object}`, `{objects}` or `{delete}`, bare or as a CloudEvent's `data`"),
    responses((status = 201, description = "A run started: the job"), (status = 200, description = "The pushed records were synchronized: the job, \\
        or a replay's"), (status = 401, description = "No valid key or signature"), (status = 409, description = "The synchronization is running")))]
pub async fn receive(
    State(shared): State<Shared>,
    Path(id): Path<String>,
    extensions: axum::http::Extensions,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let client = extensions.get::<ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip());
    if let Some(wait) = client.and_then(|ip| shared.attempts.blocked(ip)) {
        return Ok(super::auth::refused(wait));
    }
    // Unknown synchronizations and bad signatures answer alike: the hook names nothing to a stranger.
    let refused = || ApiError::new(StatusCode::UNAUTHORIZED, "a valid x-api-key header or X-Syncline-Signature is required");
    let entry = shared.catalog.get(Section::Synchronizations, &id)?;
    let key = headers.get("x-api-key").map(|v| v.as_bytes()).unwrap_or_default();
    let signed = || {
        let secret = entry.as_ref()?.body.pointer("/hook/secret")?.as_str()?.to_string();
        let header = headers.get(crate::webhooks::SIGNATURE)?.to_str().ok()?;
        crate::webhooks::verify(secret.as_bytes(), header, &body, chrono::Utc::now().timestamp()).then_some(())
    };
    if entry.is_none() || (!shared.key_matches(key) && signed().is_none()) {
        if let Some(ip) = client {
            shared.attempts.failed(ip);
        }
        return Err(refused());
    }
    let parsed: Option<Value> = match body.iter().all(u8::is_ascii_whitespace) {
        true => None,
        // serde_json's own nesting bound (128 levels): the body is a stranger's.
        false => Some(serde_json::from_slice(&body).map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("not JSON: {e}")))?),
    };
    let event_id = headers
        .get("webhook-id")
        .or_else(|| headers.get("x-event-id"))
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| parsed.as_ref().filter(|v| v.get("specversion").is_some()).and_then(|v| v.get("id")).map(crate::path::text_of))
        .filter(|e| !e.is_empty() && e.len() <= 200);
    let records = parsed.as_ref().map(pushed_records).transpose()?.flatten();
    super::operations::refuse_if_leased(&shared, &id).await?;
    let store = shared.state.webhooks()?;
    if let Some(event) = &event_id
        && let Some(job) = store.claim_hook_event(&id, event, chrono::Utc::now().timestamp_millis())?
    {
        return Ok((StatusCode::OK, Json(json!({ "replay": true, "event": event, "job": job }))).into_response());
    }
    let pipeline = shared.catalog.pipeline_for(&id)?;
    let started = match records {
        None => shared.runner.start(pipeline, &id, false).map(|job| (job, None)),
        Some(records) => shared.runner.start_pushed(pipeline, &id, records).map(|(job, done)| (job, Some(done))),
    };
    let (job, done) = match started {
        Ok(started) => started,
        Err(error) => {
            if let Some(event) = &event_id {
                store.settle_hook_event(&id, event, None)?;
            }
            return Err(error.into());
        }
    };
    if let Some(event) = &event_id {
        store.settle_hook_event(&id, event, Some(&job.id))?;
    }
    let Some(done) = done else {
        return Ok((StatusCode::CREATED, Json(super::operations::job_view(&shared, &job))).into_response());
    };
    let finished = done.await.map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "the run ended without reporting how"))?;
    Ok((StatusCode::OK, Json(super::operations::job_view(&shared, &finished.job))).into_response())
}

/// The records a body pushes: `None` for a body that asks for a run.
fn pushed_records(body: &Value) -> Result<Option<Vec<RawRecord>>, ApiError> {
    let body = if body.get("specversion").is_some() { body.get("data").unwrap_or(&Value::Null) } else { body };
    let bad = |why: &str| ApiError::new(StatusCode::BAD_REQUEST, why.to_string());
    let records: Vec<RawRecord> = match (body.get("object"), body.get("objects"), body.get("delete")) {
        (Some(object @ Value::Object(_)), None, None) => vec![RawRecord::Value(object.clone())],
        (None, Some(Value::Array(objects)), None) => {
            if objects.len() > MAX_PUSHED {
                return Err(bad(&format!("at most {MAX_PUSHED} objects per request")));
            }
            objects
                .iter()
                .map(|o| if o.is_object() { RawRecord::Value(o.clone()) } else { RawRecord::Broken("not an object".into()) })
                .collect()
        }
        (None, None, Some(id @ (Value::String(_) | Value::Number(_)))) => vec![RawRecord::Gone(crate::path::text_of(id))],
        (None, None, None) if body.as_object().is_some_and(|o| o.is_empty()) || body.is_null() => return Ok(None),
        _ => return Err(bad("send nothing (a run), {\"object\": {…}}, {\"objects\": […]} or {\"delete\": \"<origin id>\"}")),
    };
    Ok(Some(records))
}
