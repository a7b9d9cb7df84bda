//! `GET /api/sources/{id}/preview`: a source's first records after envelope extraction, each with the
//! id it would get, so resultsPosition and idPosition can be checked before the first run (what
//! `syncline source preview` prints, as JSON).

use std::collections::BTreeMap;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, Query, State};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};

use super::catalog::Section;
use super::{ApiError, CatalogError, Shared};
use crate::envelope::lookup_text;
use crate::path::DotPath;
use crate::sources::{self, Chunk, RawRecord, Source, SourceError, SourceEvent};

/// A preview never hangs a page on a slow source.
const TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Deserialize)]
pub struct PreviewQuery {
    limit: Option<usize>,
}

#[utoipa::path(get, path = "/api/sources/{id}/preview", params(("id" = String, Path), ("limit" = Option<usize>, Query, description = "how many records (default 5, at most 50)")),
    responses((status = 200, description = "`{ok, records: [{place, id, record}]}`, or `{ok: false, message, category}`")))]
pub async fn preview(
    State(shared): State<Shared>,
    Path(id): Path<String>,
    Query(query): Query<PreviewQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = query.limit.unwrap_or(5).clamp(1, 50);
    let entry = shared.catalog.get(Section::Sources, &id)?.ok_or_else(|| ApiError::not_found(format!("no source `{id}`")))?;
    // Read as the first synchronization that reads it does (its endpoint, envelope and id), like Test.
    let user = shared
        .catalog
        .list(Section::Synchronizations)?
        .into_iter()
        .find(|s| ["source", "sourceId"].iter().any(|k| s.body.get(*k).is_some_and(|v| crate::path::text_of(v) == id)));
    let (source, id_position) = match user {
        Some(sync) => {
            let pipeline = shared.catalog.pipeline_for(&sync.id)?;
            let def =
                pipeline.synchronizations.get(&sync.id).ok_or_else(|| ApiError::not_found(format!("no synchronization `{}`", sync.id)))?;
            (sources::build(&pipeline, def), Some(def.id_position.clone()))
        }
        None => {
            let document = json!({ "sources": BTreeMap::from([(id.clone(), entry.body)]) });
            let pipeline = crate::config::Pipeline::from_value("definitions", document, shared.state.root())
                .map_err(|e| ApiError::from(CatalogError::Invalid(e.0)))?;
            (sources::for_check(&pipeline, &id), None)
        }
    };
    let outcome = match source {
        Ok(source) => match tokio::time::timeout(TIMEOUT, first_records(source.as_ref(), id_position.as_deref(), limit)).await {
            Ok(outcome) => outcome,
            Err(_) => Err(SourceError::Config(format!("no records within {}s", TIMEOUT.as_secs()))),
        },
        Err(error) => Err(error),
    };
    Ok(Json(match outcome {
        Ok(records) => json!({ "ok": true, "idPosition": id_position, "records": records }),
        Err(error) => json!({ "ok": false, "message": error.to_string(), "category": error.category().as_str() }),
    }))
}

async fn first_records(source: &dyn Source, id_position: Option<&str>, limit: usize) -> Result<Vec<Value>, SourceError> {
    let id_path = id_position.map(DotPath::parse);
    let mut stream = source.open(None);
    let mut out = Vec::new();
    while out.len() < limit {
        let Some(event) = stream.next().await else { break };
        let chunk: Chunk = match event? {
            SourceEvent::Chunk(chunk) => chunk,
            _ => continue,
        };
        for (index, record) in chunk.records.iter().enumerate().take(limit - out.len()) {
            let place = Chunk::locate(&chunk.origin, &chunk.lines, chunk.unit, index);
            let text = match record {
                RawRecord::Json(bytes) => String::from_utf8_lossy(bytes).into_owned(),
                RawRecord::Value(value) => value.to_string(),
                RawRecord::Gone(id) => format!("(deleted: `{id}`)"),
                RawRecord::Broken(problem) => {
                    out.push(json!({ "place": place, "id": null, "error": problem.to_string() }));
                    continue;
                }
            };
            let id = id_path.as_ref().and_then(|path| lookup_text(&text, path));
            let record = serde_json::from_str::<Value>(&text).unwrap_or(Value::String(text));
            out.push(json!({ "place": place, "id": id, "record": record }));
        }
    }
    Ok(out)
}
