//! A source's call log: the requests its runs made, newest first.

use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::catalog::Section;
use super::{ApiError, Shared};
use crate::store::calls::CallQuery;

pub fn routes() -> Router<Shared> {
    Router::new().route("/api/sources/{id}/calls", get(list))
}

#[derive(Debug, Default, Deserialize)]
pub struct CallsQuery {
    pub job: Option<String>,
    /// Failed calls only.
    pub errors: Option<bool>,
    pub limit: Option<usize>,
}

#[utoipa::path(get, path = "/api/sources/{id}/calls",
    params(("id" = String, Path), ("job" = Option<String>, Query), ("errors" = Option<bool>, Query), ("limit" = Option<usize>, Query)),
    responses((status = 200, description = "`{results}`: each request with its time, job, method, URL (secrets masked), status, \\
        duration, bytes in and out, and error"), (status = 404, description = "No such source")))]
pub async fn list(State(shared): State<Shared>, Path(id): Path<String>, Query(query): Query<CallsQuery>) -> Result<Json<Value>, ApiError> {
    if shared.catalog.get(Section::Sources, &id)?.is_none() {
        return Err(ApiError::not_found(format!("no source `{id}`")));
    }
    let query =
        CallQuery { source: &id, job: query.job.as_deref(), errors: query.errors.unwrap_or(false), limit: query.limit.unwrap_or(100) };
    Ok(Json(json!({ "results": shared.state.calls()?.list(&query)? })))
}
