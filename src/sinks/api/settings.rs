//! The keys only an api target reads: which api source it pushes through, and where creates, updates
//! and deletes go. OpenConnector writes them in a synchronization's `targetConfig`, with the source
//! in `targetId`; load.rs reads both spellings into these.

use serde::{Deserialize, Serialize};

use crate::sources::registry::{ConnectorSettings, SettingsSchema, read_settings};

/// An api target's own keys.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ApiTargetSettings {
    /// The `api` source whose location, auth, TLS, retries and rate limit the pushes use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The collection, after the source's location: `POST {endpoint}` creates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// The dot path of the new object's id in the create answer (default `id`).
    #[serde(default, alias = "idposition", skip_serializing_if = "Option::is_none")]
    pub id_position: Option<String>,
    /// Where updates go (default `{endpoint}/{{targetId}}`); `{{targetId}}` is the id the create gave.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_endpoint: Option<String>,
    /// `PUT` (default) or `PATCH`, `POST`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_method: Option<String>,
    /// Where deletes go (default `{endpoint}/{{targetId}}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_endpoint: Option<String>,
    /// `DELETE` (default) or another method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_method: Option<String>,
    /// Requests in flight at once (default 8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u32>,
}

impl ConnectorSettings for ApiTargetSettings {}

pub const SETTINGS: SettingsSchema = SettingsSchema {
    keys: &[
        "source",
        "endpoint",
        "idPosition",
        "idposition",
        "updateEndpoint",
        "updateMethod",
        "deleteEndpoint",
        "deleteMethod",
        "concurrency",
    ],
    secrets: &[],
    read: read_settings::<ApiTargetSettings>,
};
