//! Loading a pipeline file: read it (bounded), fold OpenConnector's shape in, parse it strictly into the
//! model, and check it — the model's own checks ([`config`]) beside those of the parts a definition
//! names: the source and target connectors (through their registries), the mapping engine (templates
//! and filters compile), the schedules and the source formats (delimiters, encodings, cell ranges).
//! It sits above all of them, so `config` depends on none.
//!
//! The loaders are `Pipeline`'s own functions (`Pipeline::load`, `from_text`, `from_value`), defined
//! here rather than beside the type for that reason.

use std::path::Path;

use serde_json::Value;

use crate::config::{self, ConfigError, ConfigErrors, Document, MappingDef, Pipeline, PipelineFile};
use crate::mapping::{Filter, Mapping};
use crate::openconnector;
use crate::schedule::Schedule;
use crate::sinks;
use crate::sources::formats::FormatOptions;
use crate::sources::registry::{self, SettingsSchema};

impl Pipeline {
    /// Loads and validates a pipeline file, reading `${VAR}` from the process environment.
    pub fn load(path: &Path) -> Result<Pipeline, ConfigErrors> {
        Self::load_with_env(path, &config::process_env)
    }

    pub fn load_with_env(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Pipeline, ConfigErrors> {
        let file = path.display().to_string();
        let text = config::read_definition(path).map_err(|e| ConfigError::file(&file, format!("cannot read: {e}")))?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::from_text(&file, &text, base, env)
    }

    /// Parses and validates `text` as the content of `file`; `$ref` schema files resolve against `base`.
    pub fn from_text(file: &str, text: &str, base: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Pipeline, ConfigErrors> {
        from_document(Document::parse(file, text, env)?, base)
    }

    /// Validates definitions that arrive as JSON values (the service's API): no interpolation, and
    /// errors name the key.
    pub fn from_value(label: &str, value: Value, base: &Path) -> Result<Pipeline, ConfigErrors> {
        from_document(Document::from_value(label, value), base)
    }
}

fn from_document(mut doc: Document, base: &Path) -> Result<Pipeline, ConfigErrors> {
    let mut value = std::mem::take(&mut doc.value);
    let mut notices = Vec::new();
    if openconnector::is_configuration(&value) {
        // An OpenConnector configuration file runs as it is, as if imported first.
        let imported = openconnector::import(&value).map_err(|e| ConfigError::file(&doc.file, e.to_string()))?;
        value = imported.pipeline;
        notices = imported.notices;
    }
    openconnector::normalize_pipeline(&mut value, &mut notices);
    let warnings: Vec<ConfigError> = notices.iter().map(|n| doc.error(&n.key, n.message.clone())).collect();
    let (settings, mut errors) = take_settings(&doc, &mut value, base);
    let (target_settings, target_errors) = take_target_settings(&doc, &mut value, base);
    errors.extend(target_errors);
    let (sync_settings, sync_errors) = take_sync_settings(&doc, &mut value, base);
    errors.extend(sync_errors);
    let mut parsed = config::parse_model(&doc, &mut value)?;
    for (name, settings) in settings {
        if let Some(source) = parsed.sources.get_mut(&name) {
            source.settings = settings;
        }
    }
    for (name, settings) in sync_settings {
        if let Some(sync) = parsed.synchronizations.get_mut(&name) {
            sync.source_config.settings = settings;
        }
    }
    for source in parsed.sources.values_mut() {
        source.names_ids = registry::connector(&source.kind).is_some_and(|c| c.names_ids);
    }
    errors.extend(checks_of_the_parts(&doc, &parsed));
    anchor_locations(&mut parsed, base);
    let (mut pipeline, model_errors) = config::resolve(&doc, parsed, base);
    errors.extend(model_errors);
    // After resolving, which makes OpenConnector's api target; the definition keeps them too (an
    // export writes them out from there).
    for (name, settings) in target_settings {
        let Some(sync) = pipeline.synchronizations.get_mut(&name) else { continue };
        if let Some(target) = sync.definition.target.as_mut() {
            target.settings = settings.clone();
        }
        if let Some(target) = sync.target.as_mut() {
            target.settings = settings;
        }
    }
    errors.extend(checks_of_the_targets(&doc, &pipeline));
    if !errors.is_empty() {
        errors.sort_by_key(|e| e.position.map(|p| (p.line, p.column)));
        return Err(ConfigErrors(errors));
    }
    pipeline.warnings = warnings;
    Ok(pipeline)
}

/// Each source's connector-owned keys, taken out of it and read by its connector (its typed settings),
/// so the strict parse of the shared keys that follows never sees them; a key another kind owns is
/// refused by name, and so is a type no connector has.
fn take_settings(doc: &Document, root: &mut Value, base: &Path) -> (Vec<(String, config::Settings)>, Vec<ConfigError>) {
    let (mut read, mut errors) = (Vec::new(), Vec::new());
    let others: Vec<&[&str]> = registry::registry().iter().filter_map(|c| c.settings.as_ref().map(|s| s.keys)).collect();
    let Some(Value::Object(sources)) = root.get_mut("sources") else { return (read, errors) };
    for (name, source) in sources.iter_mut() {
        let kind = source_kind(source).to_string();
        let Value::Object(fields) = source else { continue };
        let at = format!("sources.{name}");
        let Some(connector) = registry::connector(&kind) else {
            if fields.get("type").is_some_and(Value::is_string) {
                errors.push(doc.error(&format!("{at}.type"), registry::unknown_kind(&kind)));
            }
            continue;
        };
        let (settings, problems) = take_own(doc, &at, fields, connector.settings.as_ref(), &others, &format!("a {kind} source"), base);
        read.extend(settings.map(|s| (name.clone(), s)));
        errors.extend(problems);
    }
    (read, errors)
}

/// A source's `type` as written (`api` when it names none).
fn source_kind(source: &Value) -> &str {
    source.get("type").and_then(Value::as_str).unwrap_or("api")
}

/// Each synchronization's `sourceConfig` keys its source's connector owns (an Airbyte source's
/// `stream`), read by that connector; another kind's are refused by name.
fn take_sync_settings(doc: &Document, root: &mut Value, base: &Path) -> (Vec<(String, config::Settings)>, Vec<ConfigError>) {
    let (mut read, mut errors) = (Vec::new(), Vec::new());
    let kinds: std::collections::BTreeMap<String, String> = match root.get("sources") {
        Some(Value::Object(sources)) => sources.iter().map(|(name, s)| (name.clone(), source_kind(s).to_string())).collect(),
        _ => Default::default(),
    };
    let others: Vec<&[&str]> = registry::registry().iter().filter_map(|c| c.sync_settings.as_ref().map(|s| s.keys)).collect();
    let Some(Value::Object(syncs)) = root.get_mut("synchronizations") else { return (read, errors) };
    for (name, sync) in syncs.iter_mut() {
        let source = ["source", "sourceId"].iter().find_map(|k| sync.get(*k)).map(crate::path::text_of);
        let Some(connector) = source.and_then(|s| kinds.get(&s)).and_then(|kind| registry::connector(kind)) else { continue };
        let Value::Object(sync) = sync else { continue };
        let Value::Object(fields) = sync.entry("sourceConfig").or_insert_with(|| Value::Object(Default::default())) else { continue };
        let at = format!("synchronizations.{name}.sourceConfig");
        let what = format!("a {} source", connector.kind);
        let (settings, problems) = take_own(doc, &at, fields, connector.sync_settings.as_ref(), &others, &what, base);
        read.extend(settings.map(|s| (name.clone(), s)));
        errors.extend(problems);
    }
    (read, errors)
}

/// Each synchronization's target's connector-owned keys, read by its connector, as
/// [`take_settings`] does for sources. OpenConnector's api target (`targetType: api`) keeps them in
/// `targetConfig`, its source in `targetId`: those are read the same way, and the other keys of its
/// `targetConfig` read past, as OpenConnector does.
fn take_target_settings(doc: &Document, root: &mut Value, base: &Path) -> (Vec<(String, config::Settings)>, Vec<ConfigError>) {
    let (mut read, mut errors) = (Vec::new(), Vec::new());
    let others: Vec<&[&str]> = sinks::registry::registry().iter().filter_map(|c| c.settings.as_ref().map(|s| s.keys)).collect();
    let Some(Value::Object(syncs)) = root.get_mut("synchronizations") else { return (read, errors) };
    for (name, sync) in syncs.iter_mut() {
        let Value::Object(sync) = sync else { continue };
        if !sync.contains_key("target") && sync.get("targetType").and_then(Value::as_str) == Some("api") {
            let Some(connector) = sinks::registry::connector("api") else { continue };
            let mut fields = match sync.get("targetConfig") {
                Some(Value::Object(config)) => config.clone(),
                _ => serde_json::Map::new(),
            };
            if let Some(id) = sync.get("targetId") {
                fields.insert("source".into(), crate::path::text_of(id).into());
            }
            let at = format!("synchronizations.{name}.targetConfig");
            let (settings, problems) = take_own(doc, &at, &mut fields, connector.settings.as_ref(), &[], "an api target", base);
            read.extend(settings.map(|s| (name.clone(), s)));
            errors.extend(problems);
            continue;
        }
        let Some(Value::Object(fields)) = sync.get_mut("target") else { continue };
        let kind = fields.get("type").and_then(Value::as_str).unwrap_or("register").to_string();
        let Some(connector) = sinks::registry::connector(&kind) else {
            errors.push(doc.error(&format!("synchronizations.{name}.target.type"), sinks::registry::unknown_kind(&kind)));
            continue;
        };
        let at = format!("synchronizations.{name}.target");
        let (settings, problems) = take_own(doc, &at, fields, connector.settings.as_ref(), &others, &format!("a {kind} target"), base);
        read.extend(settings.map(|s| (name.clone(), s)));
        errors.extend(problems);
    }
    (read, errors)
}

/// Takes `schema`'s keys out of `fields` (the map at key path `at`) and reads them into its typed
/// settings; a key one of `others` owns and `schema` does not is refused by name, as not applying to
/// `what` (`an ftp source`).
fn take_own(
    doc: &Document,
    at: &str,
    fields: &mut serde_json::Map<String, Value>,
    schema: Option<&SettingsSchema>,
    others: &[&[&str]],
    what: &str,
    base: &Path,
) -> (Option<config::Settings>, Vec<ConfigError>) {
    let own = schema.map_or(&[][..], |s| s.keys);
    let mut errors = Vec::new();
    for key in others.iter().flat_map(|keys| keys.iter()).filter(|k| !own.contains(k)) {
        if fields.remove(*key).is_some() {
            errors.push(doc.error(&format!("{at}.{key}"), format!("`{key}` does not apply to {what}")));
        }
    }
    let Some(schema) = schema else { return (None, errors) };
    let taken: serde_json::Map<String, Value> = schema.keys.iter().filter_map(|k| fields.remove(*k).map(|v| (k.to_string(), v))).collect();
    match (schema.read)(doc, at, &Value::Object(taken), base) {
        Ok(settings) => (Some(settings), errors),
        Err(bad) => {
            errors.extend(bad.0);
            (None, errors)
        }
    }
}

/// What the parts say of the definitions: every source's location is one its connector reads, every
/// mapping compiles (with the others it may call), every filter, JsonLogic condition and schedule
/// parses, every `sourceConfig` suits its source's connector and the format readers.
fn checks_of_the_parts(doc: &Document, file: &PipelineFile) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    for (name, source) in &file.sources {
        let Some(connector) = registry::connector(&source.kind) else { continue };
        if let Err(message) = connector.check_location(&source.location) {
            errors.push(doc.error(&format!("sources.{name}.location"), message));
        }
    }
    for (name, mapping) in &file.mappings {
        if let Err(error) = Mapping::compile_in(name, mapping, &file.mappings) {
            errors.push(doc.error(&format!("mappings.{name}.{}", error.key()), error.to_string()));
        }
    }
    for (name, webhook) in &file.webhooks {
        for (key, message) in webhook.problems() {
            errors.push(doc.error(&format!("webhooks.{name}.{key}"), message));
        }
        if let Some(filter) = &webhook.filter
            && let Err(error) = Filter::new(None, Some(filter))
        {
            errors.push(doc.error(&format!("webhooks.{name}.filter"), error.to_string()));
        }
    }
    for (name, sync) in &file.synchronizations {
        let at = format!("synchronizations.{name}");
        if let Some(filter) = &sync.filter
            && let Err(error) = Filter::compile(filter)
        {
            errors.push(doc.error(&format!("{at}.filter"), error.to_string()));
        }
        if let Some(conditions) = &sync.conditions
            && let Err(error) = Filter::new(None, Some(conditions))
        {
            errors.push(doc.error(&format!("{at}.conditions"), error.to_string()));
        }
        if let Some(schedule) = &sync.schedule
            && let Err(message) = Schedule::parse(schedule)
        {
            errors.push(doc.error(&format!("{at}.schedule"), message));
        }
        for problem in FormatOptions::problems(&sync.source_config) {
            errors.push(doc.error(&format!("{at}.sourceConfig.{}", problem.key), problem.message));
        }
        let connector =
            sync.source.as_ref().and_then(|name| file.sources.get(&name.0)).and_then(|source| registry::connector(&source.kind));
        for (key, message) in connector.map(|c| c.check_config(&sync.source_config)).unwrap_or_default() {
            let key = if key.is_empty() { format!("{at}.sourceConfig") } else { format!("{at}.sourceConfig.{key}") };
            errors.push(doc.error(&key, message));
        }
    }
    errors
}

/// What each synchronization's target connector says of its target (`target:`, or OpenConnector's
/// `targetId` with `targetConfig`).
fn checks_of_the_targets(doc: &Document, pipeline: &Pipeline) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    for (name, sync) in &pipeline.synchronizations {
        let Some(target) = &sync.target else { continue };
        let Some(connector) = sinks::registry::connector(&target.kind) else { continue };
        if let Err(message) = (connector.validate)(target, &pipeline.sources) {
            let key = if sync.definition.target.is_some() { "target" } else { "targetConfig" };
            errors.push(doc.error(&format!("synchronizations.{name}.{key}"), message));
        }
    }
    errors
}

/// A source that reads plain paths reads a relative one relative to the pipeline file.
fn anchor_locations(file: &mut PipelineFile, base: &Path) {
    for source in file.sources.values_mut() {
        if registry::connector(&source.kind).is_some_and(|c| c.local_paths) {
            config::anchor_location(&mut source.location, base);
        }
    }
}

/// One mapping definition as the API stores it (OpenConnector's spelling and bookkeeping fields
/// allowed), read alone; `None` when it does not parse.
pub fn mapping_from_value(value: &Value) -> Option<MappingDef> {
    let Value::Object(mut fields) = value.clone() else { return None };
    openconnector::quirks::normalize_entity("mappings", "mapping", &mut fields, &mut Vec::new());
    let (kept, fields) = config::split_bookkeeping(fields);
    let mut def: MappingDef = serde_json::from_value(Value::Object(fields)).ok()?;
    // Its id, uuid and slug stay known: `executeMapping` may call it by any of them.
    def.bookkeeping = serde_json::from_value(Value::Object(kept)).unwrap_or_default();
    Some(def)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors_of(sync: &str) -> String {
        let text = format!(
            "sources:\n  a: {{ type: api, location: \"http://127.0.0.1:9\" }}\n  f: {{ type: file, location: data.csv }}\n\
             mappings:\n  m: {{ mapping: {{ x: y }} }}\nsynchronizations:\n  s:\n    source: a\n    sourceConfig: {{ idPosition: id }}\n    \
             mapping: m\n{sync}"
        );
        Pipeline::from_text("p.yaml", &text, Path::new("."), &|_| None).map(|_| String::new()).unwrap_or_else(|e| e.to_string())
    }

    /// Each target kind's connector checks its target, and the error names the key the user wrote.
    #[test]
    fn targets_are_checked_by_their_connectors_at_their_keys() {
        let file = errors_of("    target: { type: file, location: out, rowsPerFile: 10 }\n");
        assert!(file.contains("synchronizations.s.target: `rowsPerFile` splits change files"), "{file}");
        let database = errors_of("    target: { type: database, location: \"postgres://h/db\" }\n");
        assert!(database.contains("synchronizations.s.target: a database target needs a `table`"), "{database}");
        let scheme = errors_of("    target: { type: database, location: \"ftp://h/db\", table: t }\n");
        assert!(scheme.contains("a database target reads mysql, mariadb, postgres, postgresql URLs"), "{scheme}");
        let api = errors_of("    targetType: api\n    targetId: f\n    targetConfig: { endpoint: /x }\n");
        assert!(api.contains("synchronizations.s.targetConfig: source `f` is not an api source"), "{api}");
        let endpoint = errors_of("    target: { type: api, source: a }\n");
        assert!(endpoint.contains("an api target needs an `endpoint`"), "{endpoint}");
        assert_eq!(errors_of("    target: { type: file, location: out, mode: changes, rowsPerFile: 10 }\n"), "");
        let unknown = errors_of("    target: { type: gopher }\n");
        assert!(unknown.contains("synchronizations.s.target.type: `gopher` is not a target type; one of `register`"), "{unknown}");
        let misplaced = errors_of("    target: { type: file, location: out, command: [cat] }\n");
        assert!(misplaced.contains("synchronizations.s.target.command: `command` does not apply to a file target"), "{misplaced}");
        let typed = errors_of("    targetType: api\n    targetId: a\n    targetConfig: { endpoint: /x, concurrency: many }\n");
        assert!(typed.contains("synchronizations.s.targetConfig.concurrency"), "{typed}");
        let register = errors_of("    target: { type: register, register: r, schema: s, endpoint: /x }\n");
        assert!(register.contains("`endpoint` does not apply to a register target"), "{register}");
    }

    /// OpenConnector's api target (the source in `targetId`, the pushes' keys in `targetConfig`, its
    /// other keys read past) is read by the api connector and written back the same way.
    #[test]
    fn an_openconnector_api_target_reads_and_exports_through_its_connector() {
        let text = "sources:\n  a: { type: api, location: \"http://127.0.0.1:9\" }\nmappings:\n  m: { mapping: { x: y } }\n\
                    synchronizations:\n  s:\n    source: a\n    sourceConfig: { idPosition: id }\n    mapping: m\n    targetType: api\n    \
                    targetId: a\n    targetConfig: { endpoint: /pets, concurrency: 3, updateMethod: PATCH, unknownToUs: 1 }\n";
        let pipeline = Pipeline::from_text("p.yaml", text, Path::new("."), &|_| None).unwrap();
        let target = pipeline.synchronizations["s"].target.as_ref().unwrap();
        let settings = target.settings.get::<crate::sinks::api::ApiTargetSettings>().unwrap();
        assert_eq!((settings.source.as_deref(), settings.endpoint.as_deref(), settings.concurrency), (Some("a"), Some("/pets"), Some(3)));
        let (exported, _) = openconnector::export::export(&pipeline, "t");
        let sync = exported.pointer("/components/synchronizations/s").or_else(|| exported.pointer("/synchronizations/s"));
        let sync = sync.unwrap_or_else(|| panic!("{exported:#}"));
        assert_eq!((sync["targetType"].as_str(), sync["targetId"].as_str()), (Some("api"), Some("a")));
        assert_eq!(sync["targetConfig"], serde_json::json!({"endpoint": "/pets", "concurrency": 3, "updateMethod": "PATCH"}));
    }

    fn source_errors(source: &str) -> String {
        let text = format!("sources:\n  s:\n{source}");
        Pipeline::from_text("p.yaml", &text, Path::new("."), &|_| None).map(|_| String::new()).unwrap_or_else(|e| e.to_string())
    }

    /// A connector's own keys are read by it, at their positions; another kind's are refused by name,
    /// and so is a type no connector has.
    #[test]
    fn connector_settings_are_read_by_their_connector() {
        let ok = "    type: sftp\n    location: sftp://h/x\n    privateKeyFile: k\n    verifyHostKey: false\n";
        let pipeline = Pipeline::from_text("p.yaml", &format!("sources:\n  s:\n{ok}"), Path::new("/etc/pipes"), &|_| None).unwrap();
        let settings = pipeline.sources["s"].settings.get::<crate::sources::sftp::SftpSettings>().unwrap();
        // A key file is found next to the pipeline file.
        assert_eq!((settings.private_key_file.as_deref(), settings.verify_host_key.0), (Some("/etc/pipes/k"), false));
        let typed = source_errors("    type: sftp\n    location: sftp://h/x\n    verifyHostKey: maybe\n");
        assert!(typed.starts_with("p.yaml:5:5: sources.s.verifyHostKey: `maybe`"), "{typed}");
        let misplaced = source_errors("    type: ftp\n    location: ftp://h/x\n    hostKey: SHA256:x\n");
        assert!(misplaced.contains("p.yaml:5:5: sources.s.hostKey: `hostKey` does not apply to a ftp source"), "{misplaced}");
        let unknown = source_errors("    type: gopher\n    location: gopher://h\n");
        assert!(unknown.contains("sources.s.type: `gopher` is not a source type; one of `airbyte`, `api`"), "{unknown}");
    }
}
