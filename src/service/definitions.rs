//! `/api/{sources,mappings,registers,synchronizations}`: list, get, create, replace, delete, with the
//! bodies of a pipeline file (OpenConnector's field names accepted); testing a source and a mapping.
//! Secrets are write-only: answers show `***`, and a `***` sent back keeps the stored value.

use std::collections::BTreeMap;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Map, Value, json};

use super::catalog::{Entry, Section};
use super::{ApiError, Shared};
use crate::mapping::Mapping;
use crate::schedule::Schedule;

use crate::secrets::{self, MASK, Spot};

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/api/mappings/test", post(test_mapping))
        .route("/api/sources/test/{id}", post(test_source))
        .route("/api/sources/{id}/test", post(test_source))
        .route("/api/{section}", get(list).post(create))
        .route("/api/{section}/{id}", get(get_one).put(replace).delete(remove))
}

fn section(name: &str) -> Result<Section, ApiError> {
    Section::ALL.into_iter().find(|s| s.as_str() == name).ok_or_else(|| ApiError::not_found(format!("no such resource `/api/{name}`")))
}

/// A JSON body, or a 400 that says what is wrong with it.
fn body(json: Result<Json<Value>, JsonRejection>) -> Result<Value, ApiError> {
    match json {
        Ok(Json(Value::Object(map))) => Ok(Value::Object(map)),
        Ok(_) => Err(ApiError::new(StatusCode::BAD_REQUEST, "the body must be a JSON object")),
        // 400 for JSON that is not, 413 for a body over the limit, 415 without a JSON content type.
        Err(rejection) => Err(ApiError::new(rejection.status(), rejection.body_text())),
    }
}

/// What a definition looks like from outside: secrets masked, and for a synchronization whether it
/// runs and when it runs next.
fn shown(shared: &Shared, section: Section, entry: Entry) -> Value {
    let mut value = json!({ "id": entry.id, "file": entry.file });
    if let (Some(fields), Value::Object(body)) = (value.as_object_mut(), entry.shown_body()) {
        fields.extend(body.clone());
    }
    if matches!(section, Section::Sources | Section::Synchronizations | Section::Webhooks) {
        value = secrets::masked(&value);
    }
    if section == Section::Synchronizations
        && let Some(fields) = value.as_object_mut()
    {
        fields.insert("running".into(), Value::Bool(shared.runner.is_running(&entry.id)));
        fields.insert("next_run".into(), next_run(shared, &entry.id, &entry.body).map_or(Value::Null, Value::String));
    }
    value
}

/// The next planned run of a scheduled synchronization, for people to read.
pub(super) fn next_run(shared: &Shared, id: &str, body: &Value) -> Option<String> {
    let schedule = Schedule::parse(body.get("schedule")?.as_str()?).ok()?;
    let last = super::scheduler::last_start(shared, id);
    let due = schedule.next_due(last, shared.started)?;
    Some(due.max(chrono::Utc::now()).to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

/// A `***` sent back (a client that read, edited and saved) keeps the stored secret at that place, as
/// long as the definition still points at the same origin: a stored password is never sent to a host
/// the user just typed.
fn keep_secrets(new: &mut Value, old: &Value) -> Result<(), ApiError> {
    let origin = |body: &Value| {
        // A webhook's receiver is its `url`.
        let location =
            body.get("location").or_else(|| body.pointer("/target/location")).or_else(|| body.get("url")).and_then(Value::as_str)?;
        // Scheme, host and port: `Url::origin` is opaque (never equal) for database and FTP URLs.
        url::Url::parse(location).ok().map(|u| (u.scheme().to_string(), u.host_str().map(str::to_string), u.port_or_known_default()))
    };
    let moved = origin(new) != origin(old);
    for spot in secrets::spots(old) {
        let pointer = spot.pointer();
        let (Some(Value::String(sent)), Some(Value::String(stored))) = (new.pointer(pointer), old.pointer(pointer)) else { continue };
        let keep = match spot {
            Spot::Value(_) => sent == MASK,
            // A URL sent back as it was shown: its password (or secret parameter) is kept.
            Spot::Url(_) => sent.contains(MASK) && *sent == secrets::mask_url(stored),
        };
        if !keep {
            continue;
        }
        if moved {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                format!(
                    "`{pointer}` is sent as *** but the location moved to another host: send the secret again (a stored secret never goes to a new host)"
                ),
            ));
        }
        if let Some(slot) = new.pointer_mut(pointer) {
            *slot = Value::String(stored.clone());
        }
    }
    Ok(())
}

/// The id of a new definition: its `id`, else its `name` made into a slug.
fn new_id(body: &mut Value) -> Result<String, ApiError> {
    let fields = body.as_object_mut().expect("checked to be an object");
    let id = match fields.remove("id") {
        Some(Value::String(s)) if !s.trim().is_empty() => s,
        Some(Value::Number(n)) => n.to_string(),
        _ => match fields.get("name").and_then(Value::as_str) {
            Some(name) if !name.trim().is_empty() => crate::mapping::twig::slugify(name),
            _ => return Err(ApiError::new(StatusCode::BAD_REQUEST, "give the definition an `id` or a `name`")),
        },
    };
    Ok(id)
}

#[utoipa::path(get, path = "/api/{section}", params(("section" = String, Path, description = "sources, mappings, registers or synchronizations")),
    responses((status = 200, description = "`{results, total}`")))]
pub async fn list(State(shared): State<Shared>, Path(name): Path<String>) -> Result<Json<Value>, ApiError> {
    let section = section(&name)?;
    let results: Vec<Value> = shared.catalog.list(section)?.into_iter().map(|e| shown(&shared, section, e)).collect();
    Ok(Json(json!({ "total": results.len(), "results": results })))
}

#[utoipa::path(get, path = "/api/{section}/{id}", params(("section" = String, Path), ("id" = String, Path)),
    responses((status = 200, description = "The definition"), (status = 404, description = "No such definition")))]
pub async fn get_one(State(shared): State<Shared>, Path((name, id)): Path<(String, String)>) -> Result<Json<Value>, ApiError> {
    let section = section(&name)?;
    let entry = shared.catalog.get(section, &id)?.ok_or_else(|| ApiError::not_found(format!("no {name} `{id}`")))?;
    Ok(Json(shown(&shared, section, entry)))
}

#[utoipa::path(post, path = "/api/{section}", params(("section" = String, Path)), request_body = Object,
    responses((status = 201, description = "Created"), (status = 400, description = "Not valid, with every problem"), (status = 409, description = "Exists")))]
pub async fn create(
    State(shared): State<Shared>,
    Path(name): Path<String>,
    json: Result<Json<Value>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let section = section(&name)?;
    let mut value = body(json)?;
    let id = new_id(&mut value)?;
    if shared.catalog.get(section, &id)?.is_some() {
        return Err(ApiError::new(StatusCode::CONFLICT, format!("{name} `{id}` exists; PUT /api/{name}/{id} replaces it")));
    }
    let entry = shared.catalog.put(section, &id, value)?;
    if section == Section::Webhooks {
        // A new subscription is sent what happens from now on, not from the dispatcher's next tick.
        let (state, subs) = (shared.state.clone(), shared.catalog.webhooks());
        let started = tokio::task::spawn_blocking(move || crate::webhooks::dispatch::start_new(&state, &subs)).await;
        if let Ok(Err(error)) = started {
            tracing::warn!("webhooks: starting `{id}`: {error}");
        }
    }
    Ok((StatusCode::CREATED, Json(shown(&shared, section, entry))))
}

#[utoipa::path(put, path = "/api/{section}/{id}", params(("section" = String, Path), ("id" = String, Path)), request_body = Object,
    responses((status = 200, description = "Replaced"), (status = 400, description = "Not valid")))]
pub async fn replace(
    State(shared): State<Shared>,
    Path((name, id)): Path<(String, String)>,
    json: Result<Json<Value>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let section = section(&name)?;
    let mut value = body(json)?;
    if let Some(fields) = value.as_object_mut() {
        fields.remove("id");
        fields.remove("file");
        fields.remove("running");
        fields.remove("next_run");
    }
    if let Some(old) = shared.catalog.get(section, &id)? {
        keep_secrets(&mut value, &old.body)?;
    }
    let entry = shared.catalog.put(section, &id, value)?;
    Ok(Json(shown(&shared, section, entry)))
}

#[utoipa::path(delete, path = "/api/{section}/{id}", params(("section" = String, Path), ("id" = String, Path)),
    responses((status = 204, description = "Deleted"), (status = 400, description = "Still used by another definition")))]
pub async fn remove(State(shared): State<Shared>, Path((name, id)): Path<(String, String)>) -> Result<StatusCode, ApiError> {
    let section = section(&name)?;
    shared.catalog.delete(section, &id)?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/sources/{id}/test", params(("id" = String, Path)),
    responses((status = 200, description = "`{ok, message, category}`: OK, or the protocol-level error in one line")))]
pub async fn test_source(State(shared): State<Shared>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let entry = shared.catalog.get(Section::Sources, &id)?.ok_or_else(|| ApiError::not_found(format!("no source `{id}`")))?;
    // With a synchronization that reads it, test what that reads (its endpoint, table or files).
    let user = shared.catalog.list(Section::Synchronizations)?.into_iter().find(|s| {
        // `sourceId` may be a number, as OpenConnector writes ids.
        ["source", "sourceId"].iter().any(|k| s.body.get(*k).is_some_and(|v| crate::path::text_of(v) == id))
    });
    let pipeline = match user {
        Some(sync) => shared.catalog.pipeline_for(&sync.id)?,
        None => {
            let document = json!({ "sources": BTreeMap::from([(id.clone(), entry.body)]) });
            crate::config::Pipeline::from_value("definitions", document, shared.state.root())
                .map_err(|e| ApiError::from(super::CatalogError::Invalid(e.0)))?
        }
    };
    let outcome = match crate::sources::for_check(&pipeline, &id) {
        Ok(source) => source.check().await,
        Err(error) => Err(error),
    };
    let answer = match outcome {
        Ok(message) => json!({ "ok": true, "message": message }),
        Err(error) => json!({ "ok": false, "message": error.to_string(), "category": error.category().as_str() }),
    };
    // The console's dashboard shows each source's health as its last test.
    shared.source_tests.record(&id, &answer);
    Ok(Json(answer))
}

#[utoipa::path(post, path = "/api/mappings/test", request_body(content = Object, description = "`{mapping, inputObject}`, as OpenConnector takes them"),
    responses((status = 200, description = "`{result}`"), (status = 400, description = "The template error, with its field")))]
pub async fn test_mapping(State(shared): State<Shared>, json: Result<Json<Value>, JsonRejection>) -> Result<Json<Value>, ApiError> {
    let value = body(json)?;
    let input = value.get("inputObject").or_else(|| value.get("input")).cloned().unwrap_or(Value::Object(Map::new()));
    // `mapping` is either the field map itself (the seed's curl) or a whole mapping definition.
    let mapping = value.get("mapping").cloned().unwrap_or(Value::Null);
    let definition = match &mapping {
        Value::Object(fields) if fields.contains_key("mapping") => mapping.clone(),
        Value::Object(_) => json!({ "mapping": mapping }),
        _ => return Err(ApiError::new(StatusCode::BAD_REQUEST, "give `mapping` (target field → template) and `inputObject`")),
    };
    let mut def: crate::config::MappingDef =
        serde_json::from_value(definition).map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("mapping: {e}")))?;
    // A test may lower the template limits, never raise them past the defaults: the service is shared.
    def.limits = def.limits.within(crate::limits::TemplateLimits::default());
    // The catalog's mappings, so a tested mapping may call them with executeMapping.
    let library = shared.catalog.mapping_library()?;
    // Rendering runs on the blocking pool, within the limits and a time budget, never on the threads
    // that answer requests.
    let work = tokio::task::spawn_blocking(move || -> Result<Value, String> {
        let compiled = Mapping::compile_in("test", &def, &library).map_err(|e| e.to_string())?;
        compiled.apply(&input).map_err(|e| e.to_string())
    });
    match tokio::time::timeout(MAPPING_TEST_TIME, work).await {
        Ok(Ok(Ok(result))) => Ok(Json(json!({ "result": result }))),
        Ok(Ok(Err(message))) => Err(ApiError::new(StatusCode::BAD_REQUEST, message)),
        Ok(Err(_)) => Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "the mapping stopped on an internal error")),
        Err(_) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("the mapping took longer than {} s; lower its work or its templateFuel", MAPPING_TEST_TIME.as_secs()),
        )),
    }
}

/// How long a mapping test may take.
const MAPPING_TEST_TIME: std::time::Duration = std::time::Duration::from_secs(10);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked_and_kept_while_the_origin_stays() {
        let stored = json!({"location": "mysql://u:pw@h/db", "password": "s3cret", "auth": {"type": "bearer", "token": "t0k"},
            "headers": {"Authorization": "Bearer x"}});
        let shown = secrets::masked(&stored);
        assert_eq!(
            shown,
            json!({"location": "mysql://u:***@h/db", "password": "***", "auth": {"type": "bearer", "token": "***"},
            "headers": {"Authorization": "***"}})
        );
        let mut edited = shown.clone();
        keep_secrets(&mut edited, &stored).unwrap();
        assert_eq!(edited, stored);
        let mut moved = shown.clone();
        moved["location"] = json!("mysql://u:***@evil.example/db");
        assert!(keep_secrets(&mut moved, &stored).is_err(), "a moved location does not keep the stored password");
        let mut retyped = json!({"location": "mysql://u:new@evil.example/db", "password": "typed-again"});
        keep_secrets(&mut retyped, &stored).unwrap();
        assert_eq!(retyped["password"], "typed-again");
    }
}
