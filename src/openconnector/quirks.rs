//! OpenConnector's JSON as it is really written (reference §0): PHP's empty object `[]`, flat dot-keys
//! (`"query.rows_per_page": "50"`) mixed with nested ones, and runtime fields stored next to the
//! definition. Every pipeline is normalized this way before it is parsed strictly, so an entity copied
//! out of OpenConnector loads unchanged; what it asks for that syncline does not do is reported as a
//! [`Notice`], never dropped silently.

use serde_json::{Map, Value};

use crate::path::DotPath;

/// Something in a definition that syncline reads differently from OpenConnector, or does not honour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// Dot path of the key (`synchronizations.pets.sourceConfig.extraDataConfigs`).
    pub key: String,
    pub message: String,
}

impl std::fmt::Display for Notice {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// Keys whose value is an object, which PHP writes as `[]` when it is empty.
const OBJECT_KEYS: [&str; 12] = [
    "sourceConfig",
    "targetConfig",
    "configuration",
    "headers",
    "query",
    "mapping",
    "cast",
    "conditions",
    "authentication",
    "authenticationConfig",
    "schemas",
    "properties",
];

/// State OpenConnector keeps on its entities between runs; it means nothing to a definition.
const RUNTIME_KEYS: [&str; 27] = [
    "currentPage",
    "sourceHash",
    "targetHash",
    "sourceLastChanged",
    "sourceLastChecked",
    "sourceLastSynced",
    "targetLastChanged",
    "targetLastChecked",
    "targetLastSynced",
    "lastCall",
    "lastSync",
    "objectCount",
    "rateLimitLimit",
    "rateLimitRemaining",
    "rateLimitReset",
    "rateLimitWindow",
    "logRetention",
    "errorRetention",
    "test",
    "locale",
    "documentation",
    "oas",
    "paths",
    "loggingConfig",
    "translationConfig",
    "endpointsConfig",
    "targetSourceMapping",
];

/// Source fields that OpenConnector's own request code never reads (it uses `configuration`).
const LEGACY_SOURCE_KEYS: [&str; 7] =
    ["authorizationHeader", "authenticationConfig", "authorizationPassthroughMethod", "accept", "jwt", "jwtId", "secret"];

/// `sourceConfig` keys OpenConnector acts on that syncline does not do yet.
const UNHONOURED_SOURCE_CONFIG: [&str; 15] = [
    "extraDataConfigs",
    "useDataAsRequestBody",
    "fetchExtraDataBeforeConditions",
    "extendInputBeforeConditions",
    "extendInputFetchObjectBeforeConditions",
    "restrictDeletion",
    "findContractByOriginIdOnly",
    "subObjects",
    "originIdsToReplace",
    "idsToReplaceWithTargetIdsBeforeRules",
    "triggerOnlyOnEvents",
    "triggerFromRelatedObjects",
    "paginationIn",
    "paginationMode",
    "prefetchConcurrency",
];

/// Normalizes every entity of a pipeline-shaped value in place.
pub fn normalize_pipeline(root: &mut Value, notices: &mut Vec<Notice>) {
    for section in ["sources", "mappings", "registers", "synchronizations"] {
        let Some(entities) = root.get_mut(section) else { continue };
        if entities.as_array().is_some_and(Vec::is_empty) || entities.is_null() {
            *entities = Value::Object(Map::new());
        }
        let Some(entities) = entities.as_object_mut() else { continue };
        for (name, entity) in entities.iter_mut() {
            if let Value::Object(fields) = entity {
                normalize_entity(section, &format!("{section}.{name}"), fields, notices);
            }
        }
    }
}

/// Normalizes one entity of `section` (found at key path `at`).
pub fn normalize_entity(section: &str, at: &str, fields: &mut Map<String, Value>, notices: &mut Vec<Notice>) {
    let mut note = |key: &str, message: String| notices.push(Notice { key: format!("{at}.{key}"), message });
    fields.retain(|key, value| !value.is_null() && !RUNTIME_KEYS.contains(&key.as_str()));
    for key in OBJECT_KEYS {
        if let Some(value) = fields.get_mut(key) {
            empty_list_to_object(value);
        }
    }
    match section {
        "sources" => {
            // OpenConnector's JSON and XML sources are APIs whose answers are read by their content.
            if fields.get("type").and_then(Value::as_str).is_some_and(|t| matches!(t, "json" | "xml" | "rest")) {
                fields.insert("type".into(), "api".into());
            }
            for key in LEGACY_SOURCE_KEYS {
                if fields.remove(key).is_some_and(|v| !is_empty(&v)) {
                    note(key, "left out: OpenConnector's requests never read this field either (they use `configuration`)".into());
                }
            }
            if let Some(Value::Object(mut configuration)) = fields.remove("configuration") {
                expand_dot_keys(&mut configuration);
                super::configuration::fold_into_source(configuration, fields, &mut note);
            }
        }
        "mappings" => {
            if let Some(value) = fields.remove("passthrough") {
                note(
                    "passthrough",
                    format!(
                        "left out: OpenConnector only reads `passThrough` (camel case), so `passthrough: {value}` never took effect there; write `passThrough` to turn it on"
                    ),
                );
            }
        }
        "synchronizations" => normalize_synchronization(fields, &mut note),
        _ => {}
    }
}

fn normalize_synchronization(fields: &mut Map<String, Value>, note: &mut impl FnMut(&str, String)) {
    for key in ["sourceConfig", "targetConfig"] {
        if let Some(Value::Object(config)) = fields.get_mut(key) {
            expand_dot_keys(config);
            for key in ["headers", "query"] {
                if let Some(value) = config.get_mut(key) {
                    empty_list_to_object(value);
                }
            }
        }
    }
    if let Some(Value::Object(config)) = fields.get_mut("sourceConfig") {
        for key in UNHONOURED_SOURCE_CONFIG {
            if let Some(value) = config.remove(key)
                && !is_empty(&value)
            {
                note(&format!("sourceConfig.{key}"), "not honoured yet: syncline leaves it out".into());
            }
        }
        if config.remove("deleteInvalidObjects").is_some() {
            note("sourceConfig.deleteInvalidObjects", "left out: OpenConnector never reads it; deletes follow `deletePolicy`".into());
        }
        if let Some(threshold) = config.remove("deletionRatioThreshold") {
            match threshold.as_f64().or_else(|| threshold.as_str().and_then(|s| s.parse().ok())) {
                Some(share) if !fields.contains_key("maxDeleteShare") => {
                    fields.insert("maxDeleteShare".into(), share.into());
                }
                _ => note("sourceConfig.deletionRatioThreshold", "left out: not a number, or `maxDeleteShare` is also set".into()),
            }
        }
    }
    if fields.get("conditions").is_some_and(is_empty) {
        fields.remove("conditions");
    }
    if let Some(value) = fields.remove("actions")
        && !is_empty(&value)
    {
        note("actions", "not honoured yet: syncline does not run rules (`actions`)".into());
    }
    // `followUps` name other synchronizations by id: the import resolves them (see `import`).
    if fields.get("followUps").is_some_and(is_empty) {
        fields.remove("followUps");
    }
    // `sourceHashMapping` names a mapping by id: the import resolves it (see `import`).
    if fields.get("sourceHashMapping").is_some_and(|v| is_empty(v) || v.is_null()) {
        fields.remove("sourceHashMapping");
    }
}

/// `[]` (PHP's empty object) becomes `{}`.
pub fn empty_list_to_object(value: &mut Value) {
    if value.as_array().is_some_and(Vec::is_empty) {
        *value = Value::Object(Map::new());
    }
}

/// Whether a value carries nothing: null, `""`, `[]`, `{}`, `false`, or `"false"`.
pub fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::String(s) => s.is_empty() || s == "false",
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::Number(_) => false,
    }
}

/// Expands flat dot-keys into nested objects and merges them with the nested keys already there, as
/// OpenConnector's `applyConfigDot` does: `{"query": [], "query.rows": "50"}` → `{"query": {"rows": "50"}}`.
/// A dot-key wins over a nested key at the same place, because it is applied after.
pub fn expand_dot_keys(map: &mut Map<String, Value>) {
    if !map.keys().any(|k| k.contains('.')) {
        return;
    }
    let entries: Vec<(String, Value)> = std::mem::take(map).into_iter().collect();
    let (flat, nested): (Vec<_>, Vec<_>) = entries.into_iter().partition(|(k, _)| k.contains('.'));
    // Set as the mapping stage sets output paths (adbario Dot, which applyConfigDot uses too): a new
    // array receiving key `0` is a list, anything not an array on the way is replaced.
    let mut root = Value::Object(nested.into_iter().collect());
    for (key, value) in flat {
        crate::mapping::dot::set(&mut root, &DotPath::parse(&key), value);
    }
    if let Value::Object(expanded) = root {
        *map = expanded;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn expanded(value: Value) -> Value {
        let mut map = value.as_object().unwrap().clone();
        expand_dot_keys(&mut map);
        Value::Object(map)
    }

    #[test]
    fn dot_keys_expand_and_merge_with_nested_keys() {
        assert_eq!(
            expanded(json!({"query": [], "query.rows_per_page": "50", "endpoint": "/x"})),
            json!({"query": {"rows_per_page": "50"}, "endpoint": "/x"})
        );
        assert_eq!(
            expanded(json!({"headers": {"Accept": "*/*"}, "headers.API-Interface-ID": "44"})),
            json!({"headers": {"Accept": "*/*", "API-Interface-ID": "44"}})
        );
        assert_eq!(
            expanded(json!({"extraDataConfigs.0.staticEndpoint": "/a", "extraDataConfigs.1.staticEndpoint": "/b"})),
            json!({"extraDataConfigs": [{"staticEndpoint": "/a"}, {"staticEndpoint": "/b"}]})
        );
        assert_eq!(expanded(json!({"a.b": 1, "a": {"b": 0, "c": 2}})), json!({"a": {"b": 1, "c": 2}}), "the dot-key wins");
    }

    #[test]
    fn entities_lose_runtime_fields_and_report_what_is_not_honoured() {
        let mut sync = json!({
            "sourceId": "1", "sourceConfig": {"endpoint": "/x", "idPosition": "id", "query": [], "extraDataConfigs": [{"a": 1}],
            "deletionRatioThreshold": "0.2"},
            "targetConfig": [], "conditions": [], "followUps": [], "actions": ["fetch-files"], "currentPage": 3, "targetHash": null
        });
        let mut notices = Vec::new();
        normalize_entity("synchronizations", "synchronizations.s", sync.as_object_mut().unwrap(), &mut notices);
        assert_eq!(
            sync,
            json!({"sourceId": "1", "sourceConfig": {"endpoint": "/x", "idPosition": "id", "query": {}}, "targetConfig": {}, "maxDeleteShare": 0.2})
        );
        let keys: Vec<&str> = notices.iter().map(|n| n.key.as_str()).collect();
        assert_eq!(keys, ["synchronizations.s.sourceConfig.extraDataConfigs", "synchronizations.s.actions"]);
    }

    #[test]
    fn lowercase_passthrough_is_reported_and_left_out() {
        let mut mapping = json!({"mapping": [], "cast": [], "unset": [], "passthrough": true});
        let mut notices = Vec::new();
        normalize_entity("mappings", "mappings.m", mapping.as_object_mut().unwrap(), &mut notices);
        assert_eq!(mapping, json!({"mapping": {}, "cast": {}, "unset": []}));
        assert!(notices[0].message.contains("passThrough"), "{notices:?}");
    }
}
