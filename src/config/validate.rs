//! Offline checks of a parsed pipeline file: references resolve, templates compile, JSON Schemas are
//! schemas, every synchronization can tell an update from a create. All problems are reported at once.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use super::{
    AuthKind, ConfigError, ConfigErrors, Document, PaginationDef, PaginationKind, Pipeline, PipelineFile, SourceDef,
    Synchronization, SynchronizationDef,
};
use crate::mapping::{Filter, Mapping};

pub(super) fn resolve(doc: &Document, file: PipelineFile, base: &Path) -> Result<Pipeline, ConfigErrors> {
    let mut errors = Vec::new();

    for (name, source) in &file.sources {
        check_source(doc, name, source, &mut errors);
    }
    for (name, mapping) in &file.mappings {
        if let Err(error) = Mapping::compile(name, mapping) {
            let key = format!("mappings.{name}.{}", error.key());
            errors.push(doc.error(&key, error.to_string()));
        }
    }

    let mut registers = BTreeMap::new();
    for (register, def) in &file.registers {
        let mut schemas = BTreeMap::new();
        for (schema, value) in &def.schemas {
            let key = format!("registers.{register}.schemas.{schema}");
            match load_schema(value, base) {
                Ok(loaded) => match jsonschema::validator_for(&loaded) {
                    Ok(_) => {
                        schemas.insert(schema.clone(), loaded);
                    }
                    Err(error) => errors.push(doc.error(&key, format!("not a valid JSON Schema: {error}"))),
                },
                Err(message) => errors.push(doc.error(&key, message)),
            }
        }
        registers.insert(register.clone(), schemas);
    }

    let mut synchronizations = BTreeMap::new();
    for (name, def) in &file.synchronizations {
        if let Some(sync) = resolve_sync(doc, name, def, &file, &mut errors) {
            synchronizations.insert(name.clone(), sync);
        }
    }

    if errors.is_empty() {
        Ok(Pipeline {
            file: doc.file.clone().into(),
            sources: file.sources,
            mappings: file.mappings,
            registers,
            synchronizations,
        })
    } else {
        errors.sort_by_key(|e| e.position.map(|p| (p.line, p.column)));
        Err(ConfigErrors(errors))
    }
}

fn check_source(doc: &Document, name: &str, source: &SourceDef, errors: &mut Vec<ConfigError>) {
    let key = format!("sources.{name}");
    match url::Url::parse(&source.location) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => {}
        Ok(url) => errors.push(doc.error(&format!("{key}.location"), format!("an api source needs an http(s) URL, not `{}:`", url.scheme()))),
        Err(error) => errors.push(doc.error(&format!("{key}.location"), format!("`{}` is not a URL: {error}", source.location))),
    }
    let auth = &source.auth.0;
    let missing = |what: &str| format!("auth `{}` needs `{what}`", auth_name(auth.kind));
    match auth.kind {
        AuthKind::None => {}
        AuthKind::Basic => {
            if auth.username.is_none() && source.username.is_none() {
                errors.push(doc.error(&format!("{key}.auth"), missing("username")));
            }
            if auth.password.is_none() && source.password.is_none() {
                errors.push(doc.error(&format!("{key}.auth"), missing("password")));
            }
        }
        AuthKind::Bearer => {
            if auth.token.is_none() && source.token.is_none() {
                errors.push(doc.error(&format!("{key}.auth"), missing("token")));
            }
        }
        AuthKind::ApiKey => {
            if auth.key.is_none() && source.api_key.is_none() {
                errors.push(doc.error(&format!("{key}.auth"), missing("key (or apiKey on the source)")));
            }
        }
    }
}

fn auth_name(kind: AuthKind) -> &'static str {
    match kind {
        AuthKind::None => "none",
        AuthKind::Basic => "basic",
        AuthKind::Bearer => "bearer",
        AuthKind::ApiKey => "apiKey",
    }
}

/// A schema written as `{$ref: "file.json"}` is read from that file, relative to the pipeline file.
fn load_schema(value: &Value, base: &Path) -> Result<Value, String> {
    let Some(map) = value.as_object() else { return Err("a schema must be a JSON Schema object".into()) };
    match (map.len(), map.get("$ref").and_then(Value::as_str)) {
        (1, Some(reference)) if !reference.starts_with('#') && !reference.contains("://") => {
            let path = base.join(reference);
            let text = std::fs::read_to_string(&path).map_err(|e| format!("cannot read schema file {}: {e}", path.display()))?;
            serde_json::from_str(&text).map_err(|e| format!("schema file {} is not JSON: {e}", path.display()))
        }
        _ => Ok(value.clone()),
    }
}

fn resolve_sync(
    doc: &Document,
    name: &str,
    def: &SynchronizationDef,
    file: &PipelineFile,
    errors: &mut Vec<ConfigError>,
) -> Option<Synchronization> {
    let key = format!("synchronizations.{name}");
    let before = errors.len();
    let mut fail = |path: &str, message: String| errors.push(doc.error(&format!("{key}{path}"), message));

    let source = match &def.source {
        None => {
            fail("", "no `source` (or `sourceId`) given".into());
            String::new()
        }
        Some(s) if !file.sources.contains_key(&s.0) => {
            fail(".source", format!("no source named `{}` (sources: {})", s.0, names(file.sources.keys())));
            String::new()
        }
        Some(s) => s.0.clone(),
    };
    if let Some(kind) = &def.source_type
        && kind != "api"
    {
        fail(".sourceType", format!("sourceType `{kind}` is not supported here; use `api`"));
    }
    let mapping = match &def.mapping {
        Some(m) if !file.mappings.contains_key(&m.0) => {
            fail(".mapping", format!("no mapping named `{}` (mappings: {})", m.0, names(file.mappings.keys())));
            String::new()
        }
        Some(m) => m.0.clone(),
        None => {
            fail("", "no `mapping` (or `sourceTargetMapping`) given".into());
            String::new()
        }
    };

    let (register, schema, at) = match (&def.target, &def.target_type, &def.target_id) {
        (Some(target), _, _) => {
            if target.kind != "register" {
                fail(".target.type", format!("target type `{}` is not supported yet; use `register`", target.kind));
            }
            (target.register.clone(), target.schema.clone(), ".target")
        }
        (None, Some(kind), Some(id)) if kind == "register/schema" => match id.0.split_once('/') {
            Some((r, s)) => (r.to_string(), s.to_string(), ".targetId"),
            None => {
                fail(".targetId", format!("targetId `{}` must be `<register>/<schema>`", id.0));
                (String::new(), String::new(), ".targetId")
            }
        },
        (None, Some(kind), _) if kind != "register/schema" => {
            fail(".targetType", format!("targetType `{kind}` is not supported yet; use `register/schema`"));
            (String::new(), String::new(), "")
        }
        _ => {
            fail("", "no target: write `target: {type: register, register: R, schema: S}` or `targetType: register/schema` with `targetId: R/S`".into());
            (String::new(), String::new(), "")
        }
    };
    if !register.is_empty() {
        match file.registers.get(&register) {
            None => fail(at, format!("no register named `{register}` (registers: {})", names(file.registers.keys()))),
            Some(reg) if !reg.schemas.contains_key(&schema) => {
                fail(at, format!("register `{register}` has no schema `{schema}` (schemas: {})", names(reg.schemas.keys())))
            }
            Some(_) => {}
        }
    }

    let config = &def.source_config;
    let id_position = match config.id_position.as_deref().map(str::trim) {
        Some(p) if !p.is_empty() => {
            if p.split('.').any(str::is_empty) {
                fail(".sourceConfig.idPosition", format!("`{p}` is not a dot path"));
            }
            p.to_string()
        }
        _ => {
            fail(
                ".sourceConfig",
                "idPosition is missing: without it a re-run could not tell an update from a create, and every run \
                 would create duplicates; set it to the dot path of each record's unique id, e.g. `idPosition: id`"
                    .into(),
            );
            String::new()
        }
    };
    if let Some(p) = &config.results_position
        && !matches!(p.as_str(), "_root" | "_object" | "")
        && p.split('.').any(str::is_empty)
    {
        fail(".sourceConfig.resultsPosition", format!("`{p}` is not `_root`, `_object` or a dot path"));
    }
    let pagination = resolve_pagination(config.pagination.clone(), config.uses_pagination.map(|f| f.0), config.pagination_query.clone());
    if let Err(message) = check_pagination(&pagination) {
        fail(".sourceConfig.pagination", message);
    }

    if let Some(filter) = &def.filter
        && let Err(error) = Filter::compile(filter)
    {
        fail(".filter", error.to_string());
    }
    if let Some(schedule) = &def.schedule
        && let Err(message) = crate::schedule::Schedule::parse(schedule)
    {
        fail(".schedule", message);
    }
    let max_delete_share = def.max_delete_share.unwrap_or(0.5);
    if !(0.0..=1.0).contains(&max_delete_share) {
        fail(".maxDeleteShare", format!("{max_delete_share} is not a share between 0 and 1"));
    }

    (errors.len() == before).then(|| Synchronization {
        name: name.to_string(),
        source,
        mapping,
        register,
        schema,
        source_config: config.clone(),
        id_position,
        pagination,
        filter: def.filter.clone(),
        schedule: def.schedule.clone(),
        delete_policy: def.delete_policy,
        max_delete_share,
        definition: def.clone(),
    })
}

/// OpenConnector's `usesPagination`/`paginationQuery` become page-number pagination.
fn resolve_pagination(explicit: Option<PaginationDef>, uses: Option<bool>, query: Option<String>) -> PaginationDef {
    match (explicit, uses) {
        (Some(p), _) => p,
        (None, Some(true)) => PaginationDef { kind: PaginationKind::Page, param: query, ..PaginationDef::default() },
        (None, _) => PaginationDef::default(),
    }
}

fn check_pagination(p: &PaginationDef) -> Result<(), String> {
    let only = |field: &str, present: bool, kinds: &str| {
        if present { Err(format!("`{field}` applies to {kinds} pagination only")) } else { Ok(()) }
    };
    use PaginationKind::*;
    if !matches!(p.kind, Next | Cursor) {
        only("path", p.path.is_some(), "next and cursor")?;
    }
    if !matches!(p.kind, Page | Offset) {
        only("size", p.size.is_some(), "page and offset")?;
        only("sizeParam", p.size_param.is_some(), "page and offset")?;
    }
    if p.kind != Page {
        only("start", p.start.is_some(), "page")?;
    }
    if matches!(p.kind, None | Next | Link) {
        only("param", p.param.is_some(), "page, offset and cursor")?;
    }
    if p.kind == Offset && p.size == Some(0) {
        return Err("offset pagination needs a size above 0".into());
    }
    Ok(())
}

fn names<'a>(keys: impl Iterator<Item = &'a String>) -> String {
    let list: Vec<&str> = keys.map(String::as_str).collect();
    if list.is_empty() { "none defined".into() } else { list.join(", ") }
}
