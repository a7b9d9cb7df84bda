//! `syncline export`: a pipeline written as an OpenRegister/OpenConnector configuration file, the shape
//! `import` reads. OpenConnector reads the fields it knows (a Source's `configuration`, `sourceId`,
//! `sourceTargetMapping`, `targetType`/`targetId`/`targetConfig`, cron jobs) and drops the rest; syncline's
//! own fields ride along on the same entities, so export → import → export is stable. Secrets are never
//! written: each becomes a `${VARIABLE}` placeholder, reported so it can be set before the next run.

use serde_json::{Map, Value, json};

use super::quirks::Notice;
use crate::config::Pipeline;
use crate::schedule::Schedule;

/// The configuration file for `pipeline`, titled `title`, and the secrets left out of it.
pub fn export(pipeline: &Pipeline, title: &str) -> (Value, Vec<Notice>) {
    let mut notices = Vec::new();

    let mut sources = Map::new();
    for (name, def) in &pipeline.sources {
        let mut fields = entity(name, def, &def.bookkeeping);
        fields.extend(def.settings.shown().clone());
        placeholders(&mut fields, &format!("sources.{name}"), &name.to_uppercase(), &mut notices);
        if fields.get("auth").and_then(|a| a.get("type")).is_some_and(|t| t == "none") {
            fields.remove("auth");
        }
        if fields.get("retries") == serde_json::to_value(crate::config::RetryDef::default()).ok().as_ref() {
            fields.remove("retries");
        }
        into_configuration(&mut fields);
        sources.insert(name.clone(), Value::Object(fields));
    }

    let mut mappings = Map::new();
    for (name, def) in &pipeline.mappings {
        mappings.insert(name.clone(), Value::Object(entity(name, def, &def.bookkeeping)));
    }

    let mut registers = Map::new();
    let mut schemas = Map::new();
    for (register, by_schema) in &pipeline.registers {
        let mut slugs = Vec::new();
        for (schema, value) in by_schema {
            // Schemas are global in OpenRegister: a name two registers share gets the register's prefix.
            let clash = schemas.get(schema).is_some_and(|existing: &Value| strip_slug(existing) != *value);
            let slug = if clash { format!("{register}-{schema}") } else { schema.clone() };
            let mut fields = value.as_object().cloned().unwrap_or_default();
            fields.insert("slug".into(), slug.clone().into());
            fields.entry("title").or_insert_with(|| schema.clone().into());
            schemas.insert(slug.clone(), Value::Object(fields));
            slugs.push(Value::String(slug));
        }
        registers.insert(register.clone(), json!({"slug": register, "title": register, "schemas": slugs}));
    }

    let mut synchronizations = Map::new();
    let mut jobs = Map::new();
    for (name, sync) in &pipeline.synchronizations {
        let def = &sync.definition;
        let mut fields = entity(name, def, &def.bookkeeping);
        if let Some(Value::Object(config)) = fields.get_mut("sourceConfig") {
            config.retain(|_, v| !(v.as_object().is_some_and(Map::is_empty) || v.as_array().is_some_and(Vec::is_empty)));
            // The keys the source's connector read apart (an Airbyte stream), as shown: secrets masked.
            config.extend(def.source_config.settings.shown().clone());
        }
        if let (Some(Value::Object(target)), Some(def)) = (fields.get_mut("target"), &def.target) {
            target.extend(def.settings.shown().clone());
        }
        if fields.get("deletePolicy").is_some_and(|p| p == "delete") {
            fields.remove("deletePolicy");
        }
        rename(&mut fields, "source", "sourceId");
        rename(&mut fields, "mapping", "sourceTargetMapping");
        match &sync.target {
            None => {
                fields.remove("target");
                fields.insert("targetType".into(), "register/schema".into());
                fields.insert("targetId".into(), format!("{}/{}", sync.register, sync.schema).into());
            }
            Some(target) if target.kind == "api" => {
                fields.remove("target");
                fields.insert("targetType".into(), "api".into());
                // Its own keys, as OpenConnector writes them: the source in targetId, the rest in targetConfig.
                let mut config = target.settings.shown().clone();
                let source = config.remove("source").unwrap_or_else(|| "".into());
                fields.insert("targetId".into(), source);
                fields.insert("targetConfig".into(), Value::Object(config));
            }
            // Tables and files have no OpenConnector form: syncline's own `target` stays.
            Some(_) => {}
        }
        placeholders(&mut fields, &format!("synchronizations.{name}"), &name.to_uppercase(), &mut notices);
        if let Some(seconds) = sync.schedule.as_deref().and_then(|s| match Schedule::parse(s) {
            Ok(Schedule::Every(every)) => Some(every.as_secs()),
            _ => None,
        }) {
            jobs.insert(
                format!("{name}-job"),
                json!({"name": format!("Run {name}"), "slug": format!("{name}-job"), "jobClass": "OCA\\OpenConnector\\Action\\SynchronizationAction",
                       "arguments": {"synchronizationId": name}, "interval": seconds, "isEnabled": true}),
            );
        }
        synchronizations.insert(name.clone(), Value::Object(fields));
    }

    let file = json!({
        "openapi": "3.0.0",
        "info": {"title": title, "version": "1.0.0", "description": "Exported by syncline"},
        "x-openregister": {"type": "default", "app": "syncline", "sourceType": "local"},
        "components": {
            "registers": registers, "schemas": schemas, "sources": sources, "mappings": mappings,
            "synchronizations": synchronizations, "jobs": jobs, "rules": {}, "endpoints": {},
        },
    });
    (file, notices)
}

/// An entity's own fields plus its name and slug.
fn entity<T: serde::Serialize>(name: &str, def: &T, bookkeeping: &crate::config::Bookkeeping) -> Map<String, Value> {
    let mut fields = match serde_json::to_value(def) {
        Ok(Value::Object(fields)) => fields,
        _ => Map::new(),
    };
    if let Ok(Value::Object(kept)) = serde_json::to_value(bookkeeping) {
        fields.extend(kept);
    }
    fields.entry("name").or_insert_with(|| name.into());
    fields.insert("slug".into(), name.into());
    fields
}

fn strip_slug(schema: &Value) -> Value {
    let mut schema = schema.clone();
    if let Value::Object(fields) = &mut schema {
        fields.remove("slug");
    }
    schema
}

fn rename(fields: &mut Map<String, Value>, from: &str, to: &str) {
    if let Some(value) = fields.remove(from) {
        fields.insert(to.into(), value);
    }
}

/// Every secret (a `Secret` serializes as `***`; credential headers, query values and URL passwords
/// are found by [`crate::secrets::spots`]) is replaced by a `${VARIABLE}` named after where it sits. A
/// value that already is a placeholder (an exported file imported again) is kept as it is.
fn placeholders(fields: &mut Map<String, Value>, at: &str, prefix: &str, notices: &mut Vec<Notice>) {
    if let Value::Object(masked) = crate::secrets::masked(&Value::Object(std::mem::take(fields))) {
        *fields = masked;
    }
    replace_masks(fields, at, prefix, notices);
}

fn replace_masks(fields: &mut Map<String, Value>, at: &str, prefix: &str, notices: &mut Vec<Notice>) {
    for (key, value) in fields.iter_mut() {
        let path = format!("{at}.{key}");
        let variable = format!("{prefix}_{}", key.to_uppercase());
        match value {
            // A secret, or a URL with a secret inside (`mysql://u:***@h/db`).
            Value::String(text) if text.contains(crate::secrets::MASK) => {
                let variable: String = variable.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
                *text = text.replacen(crate::secrets::MASK, &format!("${{{variable}}}"), 1);
                notices.push(Notice { key: path, message: format!("secret left out of the file: set ${variable} before running") });
            }
            Value::Object(inner) => replace_masks(inner, &path, &variable, notices),
            _ => {}
        }
    }
}

/// syncline's request settings written where OpenConnector reads them: a Source's `configuration`, with
/// dot-keys as its UI stores them. `import` folds them back.
fn into_configuration(fields: &mut Map<String, Value>) {
    let mut configuration = Map::new();
    for key in ["headers", "query"] {
        if let Some(Value::Object(pairs)) = fields.remove(key) {
            for (name, value) in pairs {
                configuration.insert(format!("{key}.{name}"), value);
            }
        }
    }
    for (from, to) in [("timeout", "timeout"), ("connectTimeout", "connect_timeout")] {
        if let Some(span) = fields.remove(from) {
            let seconds = span.as_str().and_then(crate::config::Span::parse).map(|d| d.as_secs_f64());
            configuration.insert(to.into(), seconds.map(Value::from).unwrap_or(span));
        }
    }
    if let Some(Value::Object(mut tls)) = fields.remove("tls") {
        match (tls.remove("verify"), tls.remove("ca")) {
            (_, Some(ca)) => {
                configuration.insert("verify".into(), ca);
            }
            (Some(Value::Bool(false)), None) => {
                configuration.insert("verify".into(), false.into());
            }
            _ => {}
        }
        if let Some(cert) = tls.remove("cert") {
            configuration.insert("cert".into(), cert);
        }
        if let Some(key) = tls.remove("key") {
            configuration.insert("ssl_key".into(), key);
        }
    }
    if let Some(authentication) = fields.remove("authentication") {
        configuration.insert("authentication".into(), authentication);
    }
    if !configuration.is_empty() {
        fields.insert("configuration".into(), Value::Object(configuration));
    }
}
