//! The target of a synchronization: the keys targets share (`type`, the register's `register` and
//! `schema`, a `location` with its credentials). Each field's `///` is its user documentation. The
//! keys only one kind reads (a file target's `format`, a database target's `table`, an api target's
//! `endpoint`, a command target's `command`) are that connector's, in its folder under `sinks/`.

use serde::{Deserialize, Serialize};

use super::de::Secret;

fn register() -> String {
    "register".into()
}

/// A synchronization's target.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TargetDef {
    /// The connector: `register` (default), `database`, `file`, `api`, `command`, … (the kinds
    /// `sinks::registry()` lists).
    #[serde(rename = "type", default = "register")]
    pub kind: String,
    /// Register: the register's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub register: Option<String>,
    /// Register: the schema's name. Database: the database schema of the table (PostgreSQL; default
    /// the connection's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// Database: `postgres://user@host:5432/db` or `mysql://user@host:3306/db`. File: a folder's path or
    /// object-store URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret>,
    /// The keys only its connector reads (a command target's `command`, an api target's `endpoint`), read apart by it (see
    /// [`super::Settings`]).
    #[serde(skip)]
    pub settings: super::Settings,
}

impl Default for TargetDef {
    /// A register target with nothing set: what `{}` reads as.
    fn default() -> Self {
        serde_json::from_value(serde_json::json!({})).expect("every key of a target has a default")
    }
}
