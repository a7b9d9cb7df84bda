//! Webhook deliveries: listed (the dead-lettered ones above all) and sent again.

use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, Shared};

pub fn routes() -> Router<Shared> {
    Router::new().route("/api/webhooks/deliveries", get(list)).route("/api/webhooks/deliveries/{id}/redeliver", post(redeliver))
}

#[derive(Debug, Deserialize)]
pub struct DeliveryQuery {
    pub webhook: Option<String>,
    pub status: Option<String>,
    pub limit: Option<usize>,
}

#[utoipa::path(get, path = "/api/webhooks/deliveries",
    params(("webhook" = Option<String>, Query), ("status" = Option<String>, Query, description = "pending, delivered or dead"), ("limit" = Option<usize>, Query)),
    responses((status = 200, description = "`{results}`: deliveries, newest first, with their attempts and last error")))]
pub async fn list(State(shared): State<Shared>, Query(query): Query<DeliveryQuery>) -> Result<Json<Value>, ApiError> {
    let limit = query.limit.unwrap_or(100).min(1000);
    let results = shared.state.webhooks()?.list(query.webhook.as_deref(), query.status.as_deref(), limit)?;
    Ok(Json(json!({ "results": results })))
}

#[utoipa::path(post, path = "/api/webhooks/deliveries/{id}/redeliver", params(("id" = i64, Path)),
    responses((status = 200, description = "Pending again, from its first attempt"), (status = 404, description = "No such delivery")))]
pub async fn redeliver(State(shared): State<Shared>, Path(id): Path<i64>) -> Result<Json<Value>, ApiError> {
    if !shared.state.webhooks()?.redeliver(id, chrono::Utc::now().timestamp_millis())? {
        return Err(ApiError::not_found(format!("no delivery {id}")));
    }
    Ok(Json(json!({ "id": id, "status": "pending" })))
}
