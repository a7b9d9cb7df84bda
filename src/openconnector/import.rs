//! `syncline import`: an OpenRegister/OpenConnector configuration file (`openapi`, `info`,
//! `x-openregister`, `components.{registers, schemas, sources, mappings, synchronizations, rules,
//! endpoints, jobs}`) read into a pipeline. Buckets may be slug-keyed objects, lists (also OpenConnector's
//! `{"default": [...]}` grouping) or `[]`; references resolve by id, uuid or slug. What syncline cannot
//! honour (rules, endpoints, follow-ups, extra-data calls, …) is reported by name as a [`Notice`].

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value, json};

use super::lenient::{
    MAPPING_KEYS, SOURCE_CONFIG_KEYS, SYNCHRONIZATION_KEYS, called_mappings, closest, leave_out_unknown, leave_out_unknown_casts,
};
use super::quirks::{Notice, is_empty, normalize_entity};
use crate::mapping::twig::slugify;

/// An imported configuration: a pipeline-shaped value and what could not be carried over.
#[derive(Debug, Clone)]
pub struct Imported {
    /// `{sources, mappings, registers, synchronizations}`, each keyed by name (the entity's slug).
    pub pipeline: Value,
    pub notices: Vec<Notice>,
    /// Environment variables the pipeline reads where the file left a value for each installation
    /// to fill in (an empty source `location`).
    pub variables: Vec<String>,
}

/// An input that is not an OpenConnector configuration.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct ImportError(pub String);

/// Whether `value` is a configuration file (rather than a pipeline file).
pub fn is_configuration(value: &Value) -> bool {
    value.get("components").is_some_and(Value::is_object)
}

/// One entity of a bucket, with the name it gets.
struct Entity {
    name: String,
    /// The key it had in a slug-keyed bucket, another spelling references may use.
    key: Option<String>,
    fields: Map<String, Value>,
}

/// Names by every spelling a reference may use: id, uuid, slug, the bucket key.
#[derive(Default)]
struct Index(HashMap<String, String>);

impl Index {
    fn of(entities: &[Entity]) -> Index {
        let mut index = HashMap::new();
        for entity in entities {
            for field in ["id", "uuid", "slug", "name"] {
                if let Some(text) = entity.fields.get(field).and_then(text_of) {
                    index.entry(text.clone()).or_insert_with(|| entity.name.clone());
                    if field == "name" {
                        index.entry(slugify(&text)).or_insert_with(|| entity.name.clone());
                    }
                }
            }
            if let Some(key) = &entity.key {
                index.insert(key.clone(), entity.name.clone());
            }
            index.insert(entity.name.clone(), entity.name.clone());
        }
        Index(index)
    }

    fn resolve(&self, reference: &Value) -> Option<String> {
        text_of(reference).and_then(|text| self.0.get(&text).cloned())
    }

    /// The names of the entities, each once, in order.
    fn names(&self) -> Vec<String> {
        let names: std::collections::BTreeSet<&String> = self.0.values().collect();
        names.into_iter().cloned().collect()
    }
}

fn text_of(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Reads a configuration file's value into a pipeline.
pub fn import(config: &Value) -> Result<Imported, ImportError> {
    let Some(components) = config.get("components").and_then(Value::as_object) else {
        return Err(ImportError("not an OpenConnector/OpenRegister configuration: it has no `components` object".into()));
    };
    let mut notices = Vec::new();
    let bucket = |name: &str| entities(components.get(name), name);
    let (sources, mappings, registers) = (bucket("sources"), bucket("mappings"), bucket("registers"));
    let (schemas, synchronizations, jobs) = (bucket("schemas"), bucket("synchronizations"), bucket("jobs"));
    let source_index = Index::of(&sources);
    let mapping_index = Index::of(&mappings);
    let register_index = Index::of(&registers);
    let schema_index = Index::of(&schemas);
    let sync_index = Index::of(&synchronizations);

    for name in ["rules", "endpoints", "workflows", "objects"] {
        let items = entities(components.get(name), name);
        for item in items {
            notices.push(Notice {
                key: format!("components.{name}.{}", item.name),
                message: format!("not honoured yet: syncline does not import {name}"),
            });
        }
    }

    let mut variables = Vec::new();
    let out_sources = import_sources(sources, &mut variables, &mut notices);

    let out_mappings = import_mappings(mappings, &mapping_index, &mut notices);

    let mut out_registers = import_registers(registers, schemas, &schema_index, &mut notices);

    let schedules = schedules_from_jobs(&jobs, &sync_index, &mut notices);
    let mut out_syncs = Map::new();
    for Entity { name, mut fields, .. } in synchronizations {
        strip_identity(&mut fields);
        let at = format!("synchronizations.{name}");
        if let Some(kind) = fields.get("sourceType").and_then(Value::as_str).filter(|k| k.starts_with("register")) {
            notices.push(Notice {
                key: at,
                message: format!("not imported: syncline does not read a register as a source yet (sourceType `{kind}`)"),
            });
            continue;
        }
        normalize_entity("synchronizations", &at, &mut fields, &mut notices);
        resolve_follow_ups(&mut fields, &sync_index, &at, &mut notices);
        leave_out_unknown(&mut fields, SYNCHRONIZATION_KEYS, &at, &mut notices);
        if let Some(Value::Object(config)) = fields.get_mut("sourceConfig") {
            // The shared keys, and those a connector reads for itself (a database's `table`).
            let own = crate::sources::registry::registry().iter().filter_map(|c| c.sync_settings.as_ref()).flat_map(|s| s.keys);
            let known: Vec<&str> = SOURCE_CONFIG_KEYS.iter().copied().chain(own.copied()).collect();
            leave_out_unknown(config, &known, &format!("{at}.sourceConfig"), &mut notices);
        }
        resolve_reference(&mut fields, "sourceId", &source_index, "source", &at, &mut notices);
        resolve_reference(&mut fields, "sourceTargetMapping", &mapping_index, "mapping", &at, &mut notices);
        if fields.contains_key("sourceHashMapping") {
            resolve_reference(&mut fields, "sourceHashMapping", &mapping_index, "hash mapping", &at, &mut notices);
        }
        match fields.get("targetType").and_then(Value::as_str) {
            Some("register/schema") => {
                let target = fields.get("targetId").and_then(text_of).unwrap_or_default();
                let resolved = resolve_register_target(&target, &register_index, &schema_index, &mut out_registers, &at, &mut notices);
                fields.insert("targetId".into(), resolved.into());
            }
            Some("api") => resolve_reference(&mut fields, "targetId", &source_index, "target source", &at, &mut notices),
            _ => {}
        }
        apply_openconnector_defaults(&mut fields);
        if !fields.contains_key("schedule")
            && let Some(schedule) = schedules.get(&name)
        {
            fields.insert("schedule".into(), schedule.clone().into());
        }
        out_syncs.insert(name, Value::Object(fields));
    }

    Ok(Imported {
        pipeline: json!({"sources": out_sources, "mappings": out_mappings, "registers": out_registers, "synchronizations": out_syncs}),
        notices,
        variables,
    })
}

/// The sources OpenConnector's kinds map to, each with its notices; an empty location becomes a
/// variable to set (`variables`).
fn import_sources(sources: Vec<Entity>, variables: &mut Vec<String>, notices: &mut Vec<Notice>) -> Map<String, Value> {
    let mut out_sources = Map::new();
    for Entity { name, mut fields, .. } in sources {
        strip_identity(&mut fields);
        let at = format!("sources.{name}");
        let kind = match fields.get("type").and_then(Value::as_str).unwrap_or("api") {
            // OpenConnector's names for an API source, then every kind syncline reads.
            "json" | "xml" | "rest" => "api".to_string(),
            kind if crate::sources::registry::connector(kind).is_some() => kind.to_string(),
            other => {
                notices.push(Notice { key: at.clone(), message: format!("not imported: sources of type `{other}` are not supported") });
                continue;
            }
        };
        normalize_entity("sources", &at, &mut fields, notices);
        leave_out_unknown(&mut fields, &crate::sources::registry::source_keys(&kind), &at, notices);
        // Shipped configurations leave the location to each installation (`""`, `{location}`).
        let location = fields.get("location").and_then(Value::as_str).unwrap_or_default().trim().to_string();
        if location.is_empty() || (location.starts_with('{') && location.ends_with('}')) {
            let variable = format!("{}_LOCATION", name.to_uppercase().replace(|c: char| !c.is_ascii_alphanumeric(), "_"));
            notices.push(Notice {
                key: format!("{at}.location"),
                message: format!("the file leaves the location to each installation (`{location}`): written as `${{{variable}}}`; set {variable} before running"),
            });
            fields.insert("location".into(), format!("${{{variable}}}").into());
            variables.push(variable);
        }
        out_sources.insert(name, Value::Object(fields));
    }
    out_sources
}

/// The mappings, with what OpenConnector reads past left out, and their calls to mappings the file
/// does not carry named.
fn import_mappings(mappings: Vec<Entity>, mapping_index: &Index, notices: &mut Vec<Notice>) -> Map<String, Value> {
    let mut out_mappings = Map::new();
    for Entity { name, mut fields, .. } in mappings {
        strip_mapping_identity(&mut fields);
        let at = format!("mappings.{name}");
        normalize_entity("mappings", &at, &mut fields, notices);
        if let Some(value) = fields.remove("passTrough") {
            notices.push(Notice {
                key: format!("{at}.passTrough"),
                message: format!("left out: `passTrough: {value}` is a misspelling OpenConnector never reads (it reads `passThrough`)"),
            });
        }
        leave_out_unknown_casts(&mut fields, &at, notices);
        leave_out_unknown(&mut fields, MAPPING_KEYS, &at, notices);
        out_mappings.insert(name, Value::Object(fields));
    }

    for (name, mapping) in &out_mappings {
        for reference in called_mappings(mapping) {
            if !mapping_index.0.contains_key(&reference) {
                notices.push(Notice {
                    key: format!("mappings.{name}.mapping"),
                    message: format!(
                        "`executeMapping({reference}, …)` calls a mapping the file does not carry by that id (a database id of the installation it came from): the call fails until the mapping it means says `id: {reference}`"
                    ),
                });
            }
        }
    }
    out_mappings
}

/// Registers and their schemas, as JSON Schemas by name.
fn import_registers(registers: Vec<Entity>, schemas: Vec<Entity>, schema_index: &Index, notices: &mut Vec<Notice>) -> Map<String, Value> {
    let schema_defs: BTreeMap<String, Map<String, Value>> = schemas.into_iter().map(|e| (e.name, e.fields)).collect();
    let mut out_registers = Map::new();
    for Entity { name, fields, .. } in registers {
        let mut converted = Map::new();
        for reference in fields.get("schemas").and_then(Value::as_array).into_iter().flatten() {
            let found = schema_index
                .resolve(reference)
                .or_else(|| reference.get("slug").and_then(text_of).and_then(|s| schema_index.0.get(&s).cloned()));
            match found.and_then(|n| schema_defs.get(&n).map(|d| (n, d))) {
                Some((schema, def)) => {
                    converted.insert(schema.clone(), json_schema(def, &format!("schemas.{schema}"), notices));
                }
                None => notices.push(Notice {
                    key: format!("registers.{name}.schemas"),
                    message: format!("schema `{}` is not in the file; it is left out", text_of(reference).unwrap_or_default()),
                }),
            }
        }
        let mut register = Map::new();
        for key in ["name", "description"] {
            if let Some(value) = fields.get(key).or_else(|| (key == "name").then(|| fields.get("title")).flatten()) {
                register.insert(key.into(), value.clone());
            }
        }
        register.insert("schemas".into(), Value::Object(converted));
        out_registers.insert(name, Value::Object(register));
    }
    out_registers
}

/// Replaces the reference at `key` by the name of the entity it points at.
///
/// A per-object export refers by database id (`"sourceId": "1"`) to objects whose files carry none.
/// Such a reference is taken to mean the file's only entity of its kind, or else the one whose name
/// shares most words with the synchronization's; either way a notice says which, to be checked.
/// `followUps` by id, uuid or slug, as the names of the synchronizations they stand for; one that
/// is not in the file is left out, said by a notice. (A cycle among them is refused when the
/// pipeline is loaded.)
fn resolve_follow_ups(fields: &mut Map<String, Value>, syncs: &Index, at: &str, notices: &mut Vec<Notice>) {
    let Some(given) = fields.remove("followUps") else { return };
    let given = match given {
        Value::Array(items) => items,
        other => vec![other],
    };
    let mut names = Vec::new();
    for reference in given {
        match syncs.resolve(&reference) {
            Some(name) => names.push(Value::String(name)),
            None => notices.push(Notice {
                key: format!("{at}.followUps"),
                message: format!("follow-up {reference} left out: no synchronization of the file has that id"),
            }),
        }
    }
    if !names.is_empty() {
        fields.insert("followUps".into(), Value::Array(names));
    }
}

fn resolve_reference(fields: &mut Map<String, Value>, key: &str, index: &Index, what: &str, at: &str, notices: &mut Vec<Notice>) {
    let Some(reference) = fields.get(key).cloned() else { return };
    let shown = text_of(&reference).unwrap_or_default();
    if let Some(found) = index.resolve(&reference) {
        fields.insert(key.into(), found.into());
        return;
    }
    let by_id = shown.parse::<u64>().is_ok() || shown.split('/').all(|part| part.parse::<u64>().is_ok());
    let sync = at.rsplit('.').next().unwrap_or(at);
    let names = index.names();
    let guess = match names.as_slice() {
        [only] if by_id => Some((only.clone(), format!("the file's only {what}"))),
        _ if by_id => closest(sync, &names).map(|name| (name, format!("the {what} whose name is closest to `{sync}`'s"))),
        _ => None,
    };
    match guess {
        Some((name, why)) => {
            notices.push(Notice {
                key: format!("{at}.{key}"),
                message: format!("{what} `{shown}` is a database id the file does not carry: taken to be {why}, `{name}`; check it"),
            });
            fields.insert(key.into(), name.into());
        }
        None => notices.push(Notice { key: format!("{at}.{key}"), message: format!("{what} `{shown}` is not in the file") }),
    }
}

/// The entities of a bucket, named after their slug (else the bucket key, else their name).
fn entities(bucket: Option<&Value>, kind: &str) -> Vec<Entity> {
    let mut items: Vec<(Option<String>, Map<String, Value>)> = Vec::new();
    let mut push = |key: Option<String>, value: &Value| {
        if let Value::Object(fields) = value {
            items.push((key, fields.clone()));
        }
    };
    match bucket {
        Some(Value::Array(list)) => list.iter().for_each(|v| push(None, v)),
        Some(Value::Object(map)) => {
            for (key, value) in map {
                match value {
                    // OpenConnector's exportConfiguration groups a bucket as `{"default": [...]}`.
                    Value::Array(list) => list.iter().for_each(|v| push(None, v)),
                    _ => push(Some(key.clone()), value),
                }
            }
        }
        _ => {}
    }
    let mut taken = std::collections::HashSet::new();
    let mut out = Vec::new();
    for (index, (key, fields)) in items.into_iter().enumerate() {
        let base = fields
            .get("slug")
            .and_then(text_of)
            .or_else(|| key.clone())
            .or_else(|| fields.get("name").or_else(|| fields.get("title")).and_then(text_of).map(|n| slugify(&n)))
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| format!("{}-{}", kind.trim_end_matches('s'), index + 1));
        let mut name = base.clone();
        let mut n = 2;
        while !taken.insert(name.clone()) {
            name = format!("{base}-{n}");
            n += 1;
        }
        out.push(Entity { name, key, fields });
    }
    out
}

/// OpenConnector's identities mean nothing in a pipeline file, where the key is the name.
fn strip_identity(fields: &mut Map<String, Value>) {
    for key in
        ["id", "uuid", "slug", "reference", "version", "created", "updated", "dateCreated", "dateModified", "status", "configurations"]
    {
        fields.remove(key);
    }
}

/// A mapping keeps its id, uuid and reference: a template may call it by them (`executeMapping(5, …)`).
fn strip_mapping_identity(fields: &mut Map<String, Value>) {
    for key in ["slug", "version", "created", "updated", "dateCreated", "dateModified", "status", "configurations"] {
        fields.remove(key);
    }
}

/// What OpenConnector does when a synchronization says nothing, made explicit: page-number pagination
/// is on by default (except for `_object`).
fn apply_openconnector_defaults(fields: &mut Map<String, Value>) {
    let Some(Value::Object(config)) = fields.get_mut("sourceConfig") else { return };
    let single = config.get("resultsPosition").and_then(Value::as_str) == Some("_object");
    if !single && !config.contains_key("usesPagination") && !config.contains_key("pagination") {
        config.insert("usesPagination".into(), true.into());
    }
}

/// `"<register>/<schema>"` by ids or slugs, into register and schema names; a register or schema that
/// the file does not define is made, accepting any object, and reported.
fn resolve_register_target(
    target: &str,
    registers: &Index,
    schemas: &Index,
    out: &mut Map<String, Value>,
    at: &str,
    notices: &mut Vec<Notice>,
) -> String {
    let Some((register, schema)) = target.split_once('/') else { return target.to_string() };
    let register = registers.0.get(register).cloned().unwrap_or_else(|| register.to_string());
    let schema = schemas.0.get(schema).cloned().unwrap_or_else(|| schema.to_string());
    let entry = out.entry(register.clone()).or_insert_with(|| json!({"schemas": {}}));
    if let Some(Value::Object(known)) = entry.get_mut("schemas")
        && !known.contains_key(&schema)
    {
        known.insert(schema.clone(), json!({"type": "object"}));
        notices.push(Notice {
            key: format!("{at}.targetId"),
            message: format!("register `{register}` schema `{schema}` is not in the file: it was made accepting any object"),
        });
    }
    format!("{register}/{schema}")
}

/// OpenConnector cron jobs (`SynchronizationAction` with an `interval` in seconds) become schedules.
fn schedules_from_jobs(jobs: &[Entity], syncs: &Index, notices: &mut Vec<Notice>) -> HashMap<String, String> {
    let mut schedules = HashMap::new();
    for job in jobs {
        let key = format!("components.jobs.{}", job.name);
        let class = job.fields.get("jobClass").and_then(Value::as_str).unwrap_or_default();
        let target = job.fields.get("arguments").and_then(|a| a.get("synchronizationId")).and_then(|id| syncs.resolve(id));
        let enabled = job.fields.get("isEnabled").is_none_or(|v| !is_empty(v) && v != "0");
        match (class.ends_with("SynchronizationAction"), target) {
            (true, Some(sync)) if enabled => {
                let seconds = job.fields.get("interval").and_then(text_of).and_then(|t| t.parse::<u64>().ok()).unwrap_or(3600);
                schedules.insert(sync, format!("every {seconds}s"));
            }
            (true, Some(_)) => {}
            _ => notices
                .push(Notice { key, message: format!("not honoured yet: only synchronization jobs become schedules (this is `{class}`)") }),
        }
    }
    schedules
}

/// An OpenRegister schema (`properties` with per-property `required: true`, types like `file`) as a
/// JSON Schema that validates the same objects.
fn json_schema(def: &Map<String, Value>, at: &str, notices: &mut Vec<Notice>) -> Value {
    let mut out = Map::new();
    out.insert("type".into(), "object".into());
    for key in ["title", "description"] {
        if let Some(value) = def.get(key).filter(|v| v.is_string()) {
            out.insert(key.into(), value.clone());
        }
    }
    let mut required: Vec<Value> = def.get("required").and_then(Value::as_array).cloned().unwrap_or_default();
    if let Some(Value::Object(properties)) = def.get("properties") {
        let mut converted = Map::new();
        for (name, property) in properties {
            if property.get("required").is_some_and(|r| r == &Value::Bool(true)) && !required.contains(&Value::String(name.clone())) {
                required.push(name.clone().into());
            }
            converted.insert(name.clone(), json_property(property, &format!("{at}.properties.{name}"), notices));
        }
        out.insert("properties".into(), Value::Object(converted));
    }
    if !required.is_empty() {
        out.insert("required".into(), Value::Array(required));
    }
    Value::Object(out)
}

const JSON_TYPES: [&str; 7] = ["string", "number", "integer", "boolean", "object", "array", "null"];

fn json_property(property: &Value, at: &str, notices: &mut Vec<Notice>) -> Value {
    let Value::Object(fields) = property else { return json!({}) };
    let mut out = Map::new();
    for (key, value) in fields {
        match key.as_str() {
            "required" if value.is_boolean() => {}
            "type" if value.as_str().is_some_and(|t| !JSON_TYPES.contains(&t)) => notices.push(Notice {
                key: format!("{at}.type"),
                message: format!("type `{}` is OpenRegister's own: any value is accepted here", value.as_str().unwrap_or_default()),
            }),
            // A `$ref` to another schema by slug cannot be resolved by a JSON Schema validator.
            "$ref" if value.as_str().is_some_and(|r| !r.starts_with('#') && !r.contains("://")) => {}
            "items" => {
                out.insert(key.clone(), json_property(value, &format!("{at}.items"), notices));
            }
            "properties" => {
                let nested = value.as_object().map(|p| {
                    p.iter().map(|(n, v)| (n.clone(), json_property(v, &format!("{at}.properties.{n}"), notices))).collect::<Map<_, _>>()
                });
                out.insert(key.clone(), nested.map(Value::Object).unwrap_or_else(|| json!({})));
            }
            _ => {
                out.insert(key.clone(), value.clone());
            }
        }
    }
    Value::Object(out)
}
