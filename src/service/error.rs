//! Errors as the API answers them: a status and `{"error": "…", "errors": ["…"]}`, never a secret.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::catalog::CatalogError;
use super::runner::StartError;
use crate::store::StoreError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    /// Each problem of an invalid definition, with its key.
    pub errors: Vec<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError { status, message: message.into(), errors: Vec::new() }
    }

    pub fn not_found(what: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, what)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // An error may quote what an upstream or a definition said: no secret leaves with it.
        let scrub = |text: &str| crate::secrets::scrub(text).into_owned();
        let body = if self.errors.is_empty() {
            serde_json::json!({ "error": scrub(&self.message) })
        } else {
            serde_json::json!({ "error": scrub(&self.message), "errors": self.errors.iter().map(|e| scrub(e)).collect::<Vec<_>>() })
        };
        (self.status, Json(body)).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, error.to_string())
    }
}

impl From<CatalogError> for ApiError {
    fn from(error: CatalogError) -> ApiError {
        match error {
            CatalogError::Invalid(errors) => ApiError {
                status: StatusCode::BAD_REQUEST,
                message: "the definition is not valid".into(),
                errors: errors.iter().map(ToString::to_string).collect(),
            },
            CatalogError::FromFile { .. } => ApiError::new(StatusCode::CONFLICT, error.to_string()),
            CatalogError::NotFound { .. } => ApiError::not_found(error.to_string()),
            CatalogError::Store(e) => e.into(),
            CatalogError::Vault(_) => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, error.to_string()),
        }
    }
}

impl From<StartError> for ApiError {
    fn from(error: StartError) -> ApiError {
        match error {
            StartError::Busy { .. } => ApiError::new(StatusCode::CONFLICT, error.to_string()),
            StartError::Closing => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, error.to_string()),
            StartError::Store(e) => e.into(),
        }
    }
}

/// Why the service could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("no API key: set SYNCLINE_API_KEY (or pass --api-key) to the key clients send as x-api-key")]
    NoKey,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}
