//! The Airbyte protocol as a source connector speaks it: one JSON message a line on stdout (RECORD,
//! STATE, LOG, TRACE, CATALOG, CONNECTION_STATUS, SPEC), the configured catalog syncline hands to
//! `read`, and the state it keeps between runs. Followed: the Airbyte Protocol v0 as documented at
//! docs.airbyte.com/understanding-airbyte/airbyte-protocol (per-stream, global and legacy state).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Value, json};

use super::SyncMode;
use crate::sources::StreamInfo;

/// One line of a connector's output, the parts syncline reads.
#[derive(Debug, Deserialize)]
pub struct Message {
    #[serde(rename = "type")]
    pub kind: String,
    pub record: Option<Record>,
    pub state: Option<Value>,
    pub log: Option<Log>,
    pub trace: Option<Value>,
    pub catalog: Option<Catalog>,
    #[serde(rename = "connectionStatus")]
    pub connection_status: Option<ConnectionStatus>,
}

#[derive(Debug, Deserialize)]
pub struct Record {
    pub stream: String,
    pub data: Value,
}

#[derive(Debug, Deserialize)]
pub struct Log {
    #[serde(default)]
    pub level: String,
    #[serde(default)]
    pub message: String,
}

#[derive(Debug, Deserialize)]
pub struct Catalog {
    pub streams: Vec<Value>,
}

#[derive(Debug, Deserialize)]
pub struct ConnectionStatus {
    pub status: String,
    #[serde(default)]
    pub message: Option<String>,
}

/// A log level as the job log writes it.
pub fn level(airbyte: &str) -> &'static str {
    match airbyte.to_ascii_uppercase().as_str() {
        "FATAL" | "ERROR" => "error",
        "WARN" | "WARNING" => "warn",
        "DEBUG" | "TRACE" => "debug",
        _ => "info",
    }
}

/// The message of an error TRACE (`trace.type == ERROR`), with its failure type; `None` for other
/// traces (estimates, stream statuses).
pub fn trace_error(trace: &Value) -> Option<String> {
    if trace.get("type").and_then(Value::as_str) != Some("ERROR") {
        return None;
    }
    let error = trace.get("error").unwrap_or(&Value::Null);
    let message = error.get("message").and_then(Value::as_str).unwrap_or("an error without a message");
    Some(match error.get("failure_type").and_then(Value::as_str) {
        Some(kind) => format!("{message} ({kind})"),
        None => message.to_string(),
    })
}

/// A stream of a discovered catalog, as `syncline source streams` lists it.
pub fn stream_info(stream: &Value) -> StreamInfo {
    StreamInfo {
        name: stream.get("name").and_then(Value::as_str).unwrap_or_default().to_string(),
        primary_key: primary_key(stream),
        sync_modes: stream
            .get("supported_sync_modes")
            .and_then(Value::as_array)
            .map(|modes| modes.iter().filter_map(|m| m.as_str().map(str::to_string)).collect())
            .unwrap_or_default(),
    }
}

/// A stream's `source_defined_primary_key` as a dot path, when it is one field (`[["id"]]` → `id`,
/// `[["meta", "id"]]` → `meta.id`); a composite key is none.
pub fn primary_key(stream: &Value) -> Option<String> {
    let keys = stream.get("source_defined_primary_key")?.as_array()?;
    let [key] = keys.as_slice() else { return None };
    let parts: Vec<&str> = key.as_array()?.iter().map(Value::as_str).collect::<Option<_>>()?;
    (!parts.is_empty()).then(|| parts.join("."))
}

/// The configured catalog for one stream: its sync mode, and for incremental reads the cursor
/// field the source defines.
pub fn configured_catalog(stream: &Value, mode: SyncMode) -> Value {
    let mut configured = json!({
        "stream": stream,
        "sync_mode": mode.as_str(),
        "destination_sync_mode": if mode == SyncMode::Incremental { "append" } else { "overwrite" },
    });
    if mode == SyncMode::Incremental
        && let Some(cursor) = stream.get("default_cursor_field")
    {
        configured["cursor_field"] = cursor.clone();
    }
    if let Some(key) = stream.get("source_defined_primary_key") {
        configured["primary_key"] = key.clone();
    }
    json!({ "streams": [configured] })
}

/// The newest STATE message of the stream read (and the global or legacy one), kept as the cursor: at
/// most three, however many a connector sends (states of other streams are let go, as their records
/// are).
#[derive(Debug, Default)]
pub struct States {
    by_stream: BTreeMap<&'static str, Value>,
}

impl States {
    pub fn keep(&mut self, state: Value, stream: &str) {
        let key = match state.get("type").and_then(Value::as_str) {
            Some("STREAM") if state.pointer("/stream/stream_descriptor/name").and_then(Value::as_str) == Some(stream) => "stream",
            Some("STREAM") => return,
            Some("GLOBAL") => "global",
            _ => "legacy",
        };
        self.by_stream.insert(key, state);
    }

    /// The state to save: the list of state messages; `None` when the connector sent none.
    pub fn cursor(&self) -> Option<String> {
        (!self.by_stream.is_empty()).then(|| Value::Array(self.by_stream.values().cloned().collect()).to_string())
    }
}

/// What `read --state` takes for a saved cursor: the list of state messages, or a legacy
/// connector's bare state object.
pub fn state_argument(cursor: &str) -> Option<Value> {
    let saved: Value = serde_json::from_str(cursor).ok()?;
    let messages = saved.as_array()?;
    if let [only] = messages.as_slice()
        && only.get("type").and_then(Value::as_str).is_none_or(|t| t == "LEGACY")
    {
        return only.get("data").cloned();
    }
    Some(saved)
}

/// `record` without the fields at `paths` (each a dot path's segments).
pub fn drop_fields(record: &mut Value, paths: &[Vec<String>]) {
    for path in paths {
        let Some((last, parents)) = path.split_last() else { continue };
        let parent = parents.iter().try_fold(&mut *record, |value, segment| value.get_mut(segment.as_str()));
        if let Some(Value::Object(fields)) = parent {
            fields.remove(last);
        }
    }
}

/// `config` with every `{secret: "…"}` marker replaced by its value, as the connector reads it.
pub fn unmarked(config: &Value) -> Value {
    let mut out = config.clone();
    let mut stack = vec![&mut out];
    while let Some(value) = stack.pop() {
        match value {
            Value::Object(map) if map.len() == 1 && map.get("secret").is_some_and(Value::is_string) => {
                *value = map["secret"].clone();
            }
            Value::Object(map) => stack.extend(map.values_mut()),
            Value::Array(items) => stack.extend(items.iter_mut()),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primary_keys_catalogs_and_states() {
        let stream = json!({"name": "users", "supported_sync_modes": ["full_refresh", "incremental"],
            "source_defined_primary_key": [["id"]], "default_cursor_field": ["updated_at"]});
        let info = stream_info(&stream);
        assert_eq!((info.name.as_str(), info.primary_key.as_deref()), ("users", Some("id")));
        assert_eq!(primary_key(&json!({"source_defined_primary_key": [["a"], ["b"]]})), None, "composite");
        assert_eq!(primary_key(&json!({"source_defined_primary_key": [["meta", "id"]]})).as_deref(), Some("meta.id"));
        let catalog = configured_catalog(&stream, SyncMode::Incremental);
        assert_eq!(catalog["streams"][0]["cursor_field"], json!(["updated_at"]));
        assert_eq!(catalog["streams"][0]["destination_sync_mode"], "append");

        let mut states = States::default();
        let users = |n: u64| json!({"type": "STREAM", "stream": {"stream_descriptor": {"name": "users"}, "stream_state": {"n": n}}});
        states.keep(users(1), "users");
        states.keep(users(2), "users");
        let other = json!({"type": "STREAM", "stream": {"stream_descriptor": {"name": "orders"}, "stream_state": {"n": 9}}});
        states.keep(other, "users");
        let cursor = states.cursor().unwrap();
        assert_eq!(state_argument(&cursor).unwrap(), json!([users(2)]), "the newest per stream, as a list");
        let mut legacy = States::default();
        legacy.keep(json!({"data": {"cursor": 5}}), "users");
        assert_eq!(state_argument(&legacy.cursor().unwrap()).unwrap(), json!({"cursor": 5}), "a legacy state goes back bare");
    }

    #[test]
    fn errors_levels_and_secrets() {
        assert_eq!(
            trace_error(&json!({"type": "ERROR", "error": {"message": "bad key", "failure_type": "config_error"}})).unwrap(),
            "bad key (config_error)"
        );
        assert_eq!(trace_error(&json!({"type": "ESTIMATE"})), None);
        assert_eq!((level("FATAL"), level("WARN"), level("INFO"), level("TRACE")), ("error", "warn", "info", "debug"));
        let config = json!({"seed": 1, "auth": {"key": {"secret": "k1"}}, "list": [{"secret": "k2"}]});
        assert_eq!(unmarked(&config), json!({"seed": 1, "auth": {"key": "k1"}, "list": ["k2"]}));
        let mut record = json!({"id": 1, "updated_at": "now", "meta": {"seen": "now", "kept": 1}});
        drop_fields(&mut record, &[vec!["updated_at".into()], vec!["meta".into(), "seen".into()], vec!["none".into(), "x".into()]]);
        assert_eq!(record, json!({"id": 1, "meta": {"kept": 1}}));
    }
}
