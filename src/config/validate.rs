//! Offline checks of a parsed pipeline file that need nothing but the model: names are identifiers,
//! references resolve, JSON Schemas are schemas, every synchronization can tell an update from a
//! create. Templates, filters and formats are the mapping engine's and the connectors' to check
//! ([`crate::load`] runs them beside these). All problems are reported at once.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use super::{
    AuthKind, ConfigError, Document, PaginationDef, PaginationKind, Pipeline, PipelineFile, SourceConfigDef, SourceDef, Synchronization,
    SynchronizationDef,
};

/// The pipeline `file` describes, and every problem found in it (none: it may run). A
/// synchronization with a problem is left out of the pipeline.
pub(crate) fn resolve(doc: &Document, file: PipelineFile, base: &Path) -> (Pipeline, Vec<ConfigError>) {
    let mut errors = Vec::new();

    let mut file = file;
    check_names(doc, &file, &mut errors);
    for (name, source) in &mut file.sources {
        check_source(doc, name, source, &mut errors);
    }
    let mut registers = BTreeMap::new();
    for (register, def) in &file.registers {
        let mut schemas = BTreeMap::new();
        for (schema, value) in &def.schemas {
            let key = format!("registers.{register}.schemas.{schema}");
            // Definitions sent over the API have no folder of their own to read schema files from.
            let base = doc.is_text().then_some(base);
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
        if let Some(sync) = resolve_sync(doc, name, def, &file, base, &mut errors) {
            synchronizations.insert(name.clone(), sync);
        }
    }

    check_follow_ups(doc, &file, &mut errors);
    let pipeline = Pipeline {
        file: doc.file.clone().into(),
        sources: file.sources,
        mappings: file.mappings,
        registers,
        synchronizations,
        webhooks: file.webhooks,
        warnings: Vec::new(),
    };
    (pipeline, errors)
}

/// Every follow-up names a synchronization, and following them never comes back where it started
/// (OpenConnector v0.2.19 ran A → B → A … until the process died).
fn check_follow_ups(doc: &Document, file: &PipelineFile, errors: &mut Vec<ConfigError>) {
    let syncs = &file.synchronizations;
    for (name, def) in syncs {
        for follow_up in &def.follow_ups {
            if !syncs.contains_key(follow_up) {
                errors.push(doc.error(
                    &format!("synchronizations.{name}.followUps"),
                    format!("no synchronization named `{follow_up}` (synchronizations: {})", names(syncs.keys())),
                ));
            }
        }
    }
    // One depth-first walk over every synchronization, iterative, each visited once (linear however
    // the follow-ups are wired): a follow-up already on the walk's path closes a cycle.
    let mut done: std::collections::BTreeSet<&str> = std::collections::BTreeSet::new();
    for start in syncs.keys() {
        if done.contains(start.as_str()) {
            continue;
        }
        let mut path: Vec<(&str, usize)> = vec![(start.as_str(), 0)];
        while let Some(&(at, next)) = path.last() {
            let follow_ups = syncs.get(at).map(|d| d.follow_ups.as_slice()).unwrap_or_default();
            let Some(follow_up) = follow_ups.get(next) else {
                done.insert(at);
                path.pop();
                continue;
            };
            if let Some(top) = path.last_mut() {
                top.1 += 1;
            }
            let follow_up = follow_up.as_str();
            if let Some(from) = path.iter().position(|(name, _)| *name == follow_up) {
                let mut cycle: Vec<&str> = path[from..].iter().map(|(name, _)| *name).collect();
                cycle.push(follow_up);
                errors.push(doc.error(
                    &format!("synchronizations.{follow_up}.followUps"),
                    format!("the follow-ups make a cycle: {} (each would start the next for ever)", cycle.join(" → ")),
                ));
            } else if syncs.contains_key(follow_up) && !done.contains(follow_up) {
                path.push((follow_up, 0));
            }
        }
    }
}

/// Every name is an identifier: names become file names and URL segments.
fn check_names(doc: &Document, file: &PipelineFile, errors: &mut Vec<ConfigError>) {
    let sections = [
        ("sources", file.sources.keys().collect::<Vec<_>>()),
        ("mappings", file.mappings.keys().collect()),
        ("registers", file.registers.keys().collect()),
        ("synchronizations", file.synchronizations.keys().collect()),
        ("webhooks", file.webhooks.keys().collect()),
    ];
    for (section, names) in sections {
        for name in names {
            if let Some(problem) = super::names::problem(name) {
                errors.push(doc.error(&format!("{section}.{name}"), problem));
            }
        }
    }
    for (register, def) in &file.registers {
        for schema in def.schemas.keys() {
            if let Some(problem) = super::names::problem(schema) {
                errors.push(doc.error(&format!("registers.{register}.schemas.{schema}"), problem));
            }
        }
    }
}

fn check_source(doc: &Document, name: &str, source: &SourceDef, errors: &mut Vec<ConfigError>) {
    let key = format!("sources.{name}");
    if let Some(problem) = source.limits.problem() {
        errors.push(doc.error(&format!("{key}.limits"), problem));
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

/// Makes a plain relative path (not a URL) relative to `base`, the pipeline file's folder, as schema
/// files are; a URL or an absolute path stays as it is.
pub fn anchor_location(location: &mut String, base: &Path) {
    if !location.contains("://") && Path::new(location.as_str()).is_relative() {
        *location = base.join(&*location).display().to_string();
    }
}

/// Whether `location` is a URL of one of `schemes` (or, where `local_paths`, a plain path): the
/// check of a source's or a target's location (`what`: "file source", "database target"), with the
/// schemes its kind declares.
pub fn check_location(what: &str, schemes: &[&str], local_paths: bool, location: &str) -> Result<(), String> {
    if local_paths && !location.contains("://") {
        return if location.trim().is_empty() { Err(format!("a {what} needs a path or URL")) } else { Ok(()) };
    }
    match url::Url::parse(location) {
        Ok(url) if schemes.contains(&url.scheme()) => Ok(()),
        Ok(url) => Err(format!("a {what} reads {} URLs, not `{}:`", schemes.join(", "), url.scheme())),
        Err(error) => Err(format!("`{}` is not a URL: {error}", crate::secrets::mask_unparsed_url(location))),
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

/// A schema written as `{$ref: "file.json"}` is read from that file, relative to the pipeline file and
/// inside its folder (`base`; none for definitions sent over the API, which must be inline).
fn load_schema(value: &Value, base: Option<&Path>) -> Result<Value, String> {
    let Some(map) = value.as_object() else { return Err("a schema must be a JSON Schema object".into()) };
    match (map.len(), map.get("$ref").and_then(Value::as_str)) {
        (1, Some(reference)) if !reference.starts_with('#') && !reference.contains("://") => {
            let Some(base) = base else { return Err("a schema sent over the API must be inline, not a `$ref` to a file".into()) };
            let relative = Path::new(reference);
            if relative.is_absolute()
                || relative.components().any(|c| !matches!(c, std::path::Component::Normal(_) | std::path::Component::CurDir))
            {
                return Err(format!("`$ref: {reference}` must name a file inside the pipeline file's folder (no absolute path, no `..`)"));
            }
            let path = base.join(relative);
            let text = super::read_definition(&path).map_err(|e| format!("cannot read schema file {}: {e}", path.display()))?;
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
    base: &Path,
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
    if let (Some(kind), Some(def)) = (&def.source_type, file.sources.get(&source))
        && *kind != def.kind
    {
        fail(".sourceType", format!("sourceType `{kind}` does not match source `{source}`, which is of type `{}`", def.kind));
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

    if let Some(m) = &def.source_hash_mapping
        && !file.mappings.contains_key(&m.0)
    {
        fail(".sourceHashMapping", format!("no mapping named `{}` (mappings: {})", m.0, names(file.mappings.keys())));
    }

    let (register, schema, api_target) = resolve_target(def, file, &mut fail);
    let config = &def.source_config;
    // A source that names its records' ids itself (an Airbyte stream's primary key) needs no idPosition.
    let ids_named = file.sources.get(&source).is_some_and(|s| s.names_ids);
    let (id_position, pagination) = resolve_reading(config, ids_named, &mut fail);

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
        target: def.target.clone().or(api_target).filter(|t| t.kind != "register").map(|mut t| {
            // A relative folder is relative to the pipeline file, as a file source's is.
            if t.kind == "file"
                && let Some(location) = t.location.as_mut()
            {
                anchor_location(location, base);
            }
            t
        }),
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

/// Where `def` writes: a register's (register, schema), or another target (an OpenConnector `api`
/// target read from `targetId` and `targetConfig`).
fn resolve_target(
    def: &SynchronizationDef,
    file: &PipelineFile,
    fail: &mut impl FnMut(&str, String),
) -> (String, String, Option<super::TargetDef>) {
    let mut api_target = None;
    let (register, schema, at) = match (&def.target, &def.target_type, &def.target_id) {
        // Another kind of target checks itself (its connector, when the pipeline is loaded).
        (Some(target), _, _) if target.kind != "register" => (String::new(), String::new(), ".target"),
        (Some(target), _, _) => match (&target.register, &target.schema) {
            (Some(register), Some(schema)) => (register.clone(), schema.clone(), ".target"),
            _ => {
                fail(".target", "a register target names its `register` and `schema`".into());
                (String::new(), String::new(), ".target")
            }
        },
        (None, Some(kind), Some(id)) if kind == "register/schema" => match id.0.split_once('/') {
            Some((r, s)) => (r.to_string(), s.to_string(), ".targetId"),
            None => {
                fail(".targetId", format!("targetId `{}` must be `<register>/<schema>`", id.0));
                (String::new(), String::new(), ".targetId")
            }
        },
        (None, Some(kind), Some(_)) if kind == "api" => {
            // OpenConnector's form: the target source's id, and the push settings in targetConfig,
            // both the api connector's own keys (read apart by it, load.rs).
            api_target = Some(super::TargetDef { kind: "api".into(), ..super::TargetDef::default() });
            (String::new(), String::new(), ".targetId")
        }
        (None, Some(kind), _) if kind != "register/schema" => {
            fail(".targetType", format!("targetType `{kind}` is not supported yet; use `register/schema`"));
            (String::new(), String::new(), "")
        }
        _ => {
            fail(
                "",
                "no target: write `target: {type: register, register: R, schema: S}` or `targetType: register/schema` with `targetId: R/S`"
                    .into(),
            );
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

    (register, schema, api_target)
}

/// How `config` reads its records: the id's dot path, and the pagination (OpenConnector's spellings
/// folded in).
fn resolve_reading(config: &SourceConfigDef, ids_named: bool, fail: &mut impl FnMut(&str, String)) -> (String, PaginationDef) {
    let id_position = match config.id_position.as_deref().map(str::trim) {
        Some(p) if !p.is_empty() => {
            if p.split('.').any(str::is_empty) {
                fail(".sourceConfig.idPosition", format!("`{p}` is not a dot path"));
            }
            p.to_string()
        }
        _ if ids_named => String::new(),
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
    // OpenConnector reads a single object (`_object`) without pagination.
    let single = config.results_position.as_deref() == Some("_object");
    let uses_pagination = config.uses_pagination.map(|f| f.0).filter(|_| !single);
    let pagination = resolve_pagination(config.pagination.clone(), uses_pagination, config.pagination_query.clone());
    if let Err(message) = check_pagination(&pagination) {
        fail(".sourceConfig.pagination", message);
    }

    (id_position, pagination)
}

fn resolve_pagination(explicit: Option<PaginationDef>, uses: Option<bool>, query: Option<String>) -> PaginationDef {
    match (explicit, uses) {
        (Some(p), _) => p,
        (None, Some(true)) => PaginationDef { kind: PaginationKind::Page, param: query, follow_next: true, ..PaginationDef::default() },
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

/// The names defined, as an error lists them for a reference that matched none.
pub fn names<'a>(keys: impl Iterator<Item = &'a String>) -> String {
    let list: Vec<&str> = keys.map(String::as_str).collect();
    if list.is_empty() { "none defined".into() } else { list.join(", ") }
}
