//! `POST /api/sql`: a read-only SQL query over the state (see [`crate::sql`]), behind the API key,
//! with the service's own row and time limits whatever the request asks.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, Shared};
use crate::sql::{Limits, SqlError};

/// The most rows an answer carries, and the longest a query may run.
const MAX_ROWS: usize = 10_000;
const MAX_SECONDS: u64 = 30;

#[derive(utoipa::OpenApi)]
#[openapi(paths(query))]
pub(super) struct SqlDoc;

#[derive(Deserialize)]
pub struct SqlRequest {
    query: String,
    /// Rows wanted, at most (capped at 10,000).
    limit: Option<usize>,
}

#[utoipa::path(post, path = "/api/sql", request_body(content = Object, description = "`{query, limit?}`: SELECT over jobs, contracts, calls and `register.schema`"),
    responses((status = 200, description = "`{columns: [{name, type}], rows: [...], truncated}`"), (status = 400, description = "Bad SQL, or a statement that would write"),
        (status = 504, description = "The query ran out of time")))]
pub async fn query(State(shared): State<Shared>, Json(request): Json<SqlRequest>) -> Result<Json<Value>, ApiError> {
    let limits = Limits {
        rows: request.limit.unwrap_or(1_000).min(MAX_ROWS),
        time: std::time::Duration::from_secs(MAX_SECONDS),
        ..Limits::default()
    };
    let answer = crate::sql::query(&shared.state, &request.query, limits).await.map_err(|error| match error {
        SqlError::Query(message) => ApiError::new(StatusCode::BAD_REQUEST, message),
        timeout @ SqlError::Timeout(_) => ApiError::new(StatusCode::GATEWAY_TIMEOUT, timeout.to_string()),
        SqlError::Store(error) => error.into(),
    })?;
    let columns: Vec<Value> =
        answer.schema.fields().iter().map(|f| json!({ "name": f.name(), "type": f.data_type().to_string() })).collect();
    let rows = answer.json_rows().map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(Json(json!({ "columns": columns, "rows": rows, "truncated": answer.truncated })))
}
