//! The service's definitions: sources, mappings, registers and synchronizations, as JSON bodies in the
//! shape of a pipeline file. Two layers: the pipeline files given on the command line (read again at
//! every start, read-only over the API), and definitions made over the API (kept in `catalog.db`, so
//! they survive a restart). Every change is validated with the rest before it is kept.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::config::{ConfigError, Document, Pipeline};
use crate::path::text_of;
use crate::store::{StoreError, now_text};

/// The kinds of definition, named as the sections of a pipeline file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Section {
    Sources,
    Mappings,
    Registers,
    Synchronizations,
    Webhooks,
}

impl Section {
    pub const ALL: [Section; 5] = [Section::Sources, Section::Mappings, Section::Registers, Section::Synchronizations, Section::Webhooks];

    pub fn as_str(self) -> &'static str {
        match self {
            Section::Sources => "sources",
            Section::Mappings => "mappings",
            Section::Registers => "registers",
            Section::Synchronizations => "synchronizations",
            Section::Webhooks => "webhooks",
        }
    }
}

/// One definition as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub id: String,
    /// The pipeline file it comes from; `None` for one made over the API.
    pub file: Option<String>,
    #[serde(flatten)]
    pub body: Value,
    /// A file's definition as written, `${VAR}` references unresolved: what answers show of it.
    #[serde(skip)]
    pub written: Option<Value>,
}

impl Entry {
    /// The body answers may start from (before secrets are masked): never a value resolved from the
    /// environment.
    pub fn shown_body(&self) -> &Value {
        self.written.as_ref().unwrap_or(&self.body)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<ConfigError>),
    #[error("`{id}` is defined in {file}; change it there")]
    FromFile { id: String, file: String },
    #[error("no {section} named `{id}`")]
    NotFound { section: &'static str, id: String },
    #[error(transparent)]
    Vault(#[from] super::vault::VaultError),
}

impl From<rusqlite::Error> for CatalogError {
    fn from(error: rusqlite::Error) -> Self {
        CatalogError::Store(StoreError::from(error))
    }
}

/// A definition to put (`Some`) or remove (`None`), for validating changes before they are kept.
pub type Change<'a> = (Section, &'a str, Option<&'a Value>);

pub struct Catalog {
    db: Mutex<Connection>,
    /// Definitions from files: (resolved body, body as written, file).
    files: BTreeMap<(Section, String), (Value, Value, String)>,
    vault: super::vault::Vault,
    /// Where relative paths in API definitions (a file source's folder) resolve.
    base: PathBuf,
    /// Whether a source made over the API may run a program (`serve --allow-programs`).
    programs: bool,
}

/// The kind of a definition's part that runs a program on this machine (a command or Airbyte source,
/// a command target), and what that part is.
fn runs_program(section: Section, body: &Value) -> Option<(&str, &'static str)> {
    match section {
        Section::Sources => {
            let kind = body.get("type").and_then(Value::as_str)?;
            crate::sources::registry::connector(kind).filter(|c| c.runs_programs).map(|_| (kind, "source"))
        }
        Section::Synchronizations => {
            let kind = body.pointer("/target/type").and_then(Value::as_str)?;
            crate::sinks::registry::connector(kind).filter(|c| c.runs_programs).map(|_| (kind, "target"))
        }
        _ => None,
    }
}

impl Catalog {
    /// Lets sources made over the API run programs (`serve --allow-programs`).
    pub fn allowing_programs(mut self, allowed: bool) -> Catalog {
        self.programs = allowed;
        self
    }

    /// Opens the catalog in `root` and reads `files` (each validated on its own first).
    pub fn open(root: &Path, files: &[PathBuf]) -> Result<Catalog, CatalogError> {
        let db = Connection::open(root.join("catalog.db"))?;
        db.busy_timeout(std::time::Duration::from_secs(10))?;
        db.execute_batch(
            "PRAGMA journal_mode = WAL;
             CREATE TABLE IF NOT EXISTS definitions (section TEXT NOT NULL, id TEXT NOT NULL, body TEXT NOT NULL,
                 updated_at TEXT NOT NULL, PRIMARY KEY (section, id));",
        )?;
        let mut layer = BTreeMap::new();
        for path in files {
            let pipeline = Pipeline::load(path).map_err(|e| CatalogError::Invalid(e.0))?;
            let shown = path.display().to_string();
            let text = std::fs::read_to_string(path).map_err(|e| CatalogError::Invalid(vec![ConfigError::file(&shown, e.to_string())]))?;
            let document = |env: &dyn Fn(&str) -> Option<String>| -> Result<Value, CatalogError> {
                let mut doc = Document::parse(&shown, &text, env).map_err(|e| CatalogError::Invalid(vec![e]))?;
                // An OpenConnector configuration file serves the definitions it imports to (as it runs).
                if crate::openconnector::is_configuration(&doc.value)
                    && let Ok(imported) = crate::openconnector::import(&doc.value)
                {
                    doc.value = imported.pipeline;
                }
                Ok(doc.value)
            };
            let resolved = document(&crate::config::process_env)?;
            // The same file with every `${VAR}` left as written: what the API shows.
            let written = document(&|name: &str| Some(format!("${{{name}}}")))?;
            for section in [Section::Sources, Section::Mappings, Section::Synchronizations, Section::Webhooks] {
                if let Some(Value::Object(entries)) = resolved.get(section.as_str()) {
                    for (id, body) in entries {
                        let mut body = body.clone();
                        let mut as_written = written
                            .pointer(&format!("/{}/{}", section.as_str(), id.replace('~', "~0").replace('/', "~1")))
                            .cloned()
                            .unwrap_or(Value::Null);
                        // A relative file location is relative to its pipeline file, wherever the service runs.
                        if let (Section::Sources, Some(def), Some(fields)) = (section, pipeline.sources.get(id), body.as_object_mut()) {
                            fields.insert("location".into(), Value::String(def.location.clone()));
                            if let Some(Value::String(location)) = as_written.get_mut("location")
                                && !location.contains('$')
                            {
                                *location = def.location.clone();
                            }
                        }
                        layer.insert((section, id.clone()), (body, as_written, shown.clone()));
                    }
                }
            }
            // Registers with their schema files read in, so the definition stands without the file's folder.
            for (id, schemas) in &pipeline.registers {
                let body = serde_json::json!({ "schemas": schemas });
                layer.insert((Section::Registers, id.clone()), (body.clone(), body, shown.clone()));
            }
        }
        let vault = super::vault::Vault::open(root)?;
        Ok(Catalog { db: Mutex::new(db), files: layer, vault, base: root.to_path_buf(), programs: false })
    }

    fn stored(&self, section: Section) -> Result<Vec<(String, Value)>, CatalogError> {
        let db = self.db.lock().unwrap_or_else(|p| p.into_inner());
        let mut statement = db.prepare("SELECT id, body FROM definitions WHERE section = ?1 ORDER BY id")?;
        let rows = statement.query_map([section.as_str()], |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, body) = row?;
            out.push((id, self.vault.open_body(serde_json::from_str(&body).unwrap_or(Value::Null))?));
        }
        Ok(out)
    }

    /// Every definition of a section, file ones first.
    pub fn list(&self, section: Section) -> Result<Vec<Entry>, CatalogError> {
        let mut out: Vec<Entry> = self
            .files
            .iter()
            .filter(|((s, _), _)| *s == section)
            .map(|((_, id), (body, written, file))| Entry {
                id: id.clone(),
                file: Some(file.clone()),
                body: body.clone(),
                written: Some(written.clone()),
            })
            .collect();
        out.extend(self.stored(section)?.into_iter().map(|(id, body)| Entry { id, file: None, body, written: None }));
        Ok(out)
    }

    pub fn get(&self, section: Section, id: &str) -> Result<Option<Entry>, CatalogError> {
        if let Some((body, written, file)) = self.files.get(&(section, id.to_string())) {
            return Ok(Some(Entry { id: id.to_string(), file: Some(file.clone()), body: body.clone(), written: Some(written.clone()) }));
        }
        let db = self.db.lock().unwrap_or_else(|p| p.into_inner());
        let body: Option<String> = db
            .query_row("SELECT body FROM definitions WHERE section = ?1 AND id = ?2", params![section.as_str(), id], |r| r.get(0))
            .optional()?;
        drop(db);
        match body {
            None => Ok(None),
            Some(b) => Ok(Some(Entry {
                id: id.to_string(),
                file: None,
                body: self.vault.open_body(serde_json::from_str(&b).unwrap_or(Value::Null))?,
                written: None,
            })),
        }
    }

    /// All definitions as one pipeline document, with `changes` applied (`None` body: removed).
    pub fn assemble(&self, changes: &[Change<'_>]) -> Result<Value, CatalogError> {
        let mut root = Map::new();
        for section in Section::ALL {
            let mut entries = Map::new();
            for entry in self.list(section)? {
                entries.insert(entry.id, entry.body);
            }
            for (s, id, body) in changes {
                if *s == section {
                    match body {
                        Some(body) => entries.insert(id.to_string(), (*body).clone()),
                        None => entries.remove(*id),
                    };
                }
            }
            root.insert(section.as_str().to_string(), Value::Object(entries));
        }
        Ok(Value::Object(root))
    }

    /// The errors of the assembled definitions (none: they all validate).
    fn errors_with(&self, changes: &[Change<'_>]) -> Result<Vec<ConfigError>, CatalogError> {
        let value = self.assemble(changes)?;
        Ok(Pipeline::from_value("definitions", value, &self.base).err().map(|e| e.0).unwrap_or_default())
    }

    /// Creates or replaces several definitions at once (an import): all are kept, or none when they
    /// would add a validation error.
    pub fn put_all(&self, entries: &[(Section, String, Value)]) -> Result<(), CatalogError> {
        for (section, id, body) in entries {
            if let Some((_, _, file)) = self.files.get(&(*section, id.clone())) {
                return Err(CatalogError::FromFile { id: id.clone(), file: file.clone() });
            }
            let runs = runs_program(*section, body);
            if let Some((kind, what)) = runs.filter(|_| !self.programs) {
                return Err(CatalogError::Invalid(vec![ConfigError::file(
                    "definitions",
                    format!(
                        "{}.{id}: a `{kind}` {what} runs a program on the server; the service takes one over its API only when \
                         started with --allow-programs (or from a pipeline file it was given)",
                        section.as_str()
                    ),
                )]));
            }
        }
        let changes: Vec<Change<'_>> = entries.iter().map(|(s, id, body)| (*s, id.as_str(), Some(body))).collect();
        let before = self.errors_with(&[])?;
        let new: Vec<ConfigError> = self.errors_with(&changes)?.into_iter().filter(|e| !before.contains(e)).collect();
        if !new.is_empty() {
            return Err(CatalogError::Invalid(new));
        }
        let mut db = self.db.lock().unwrap_or_else(|p| p.into_inner());
        let transaction = db.transaction()?;
        for (section, id, body) in entries {
            transaction.execute(
                "INSERT INTO definitions (section, id, body, updated_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (section, id) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at",
                params![section.as_str(), id, self.vault.seal(body).to_string(), now_text()],
            )?;
        }
        transaction.commit()?;
        Ok(())
    }

    /// Creates or replaces a definition made over the API, if the whole still validates where it did.
    pub fn put(&self, section: Section, id: &str, body: Value) -> Result<Entry, CatalogError> {
        self.put_all(&[(section, id.to_string(), body.clone())])?;
        Ok(Entry { id: id.to_string(), file: None, body, written: None })
    }

    /// Removes a definition made over the API, unless another one still uses it.
    pub fn delete(&self, section: Section, id: &str) -> Result<(), CatalogError> {
        if let Some((_, _, file)) = self.files.get(&(section, id.to_string())) {
            return Err(CatalogError::FromFile { id: id.to_string(), file: file.clone() });
        }
        if self.get(section, id)?.is_none() {
            return Err(CatalogError::NotFound { section: section.as_str(), id: id.to_string() });
        }
        let before = self.errors_with(&[])?;
        let new: Vec<ConfigError> = self.errors_with(&[(section, id, None)])?.into_iter().filter(|e| !before.contains(e)).collect();
        if !new.is_empty() {
            return Err(CatalogError::Invalid(new));
        }
        let db = self.db.lock().unwrap_or_else(|p| p.into_inner());
        db.execute("DELETE FROM definitions WHERE section = ?1 AND id = ?2", params![section.as_str(), id])?;
        Ok(())
    }

    /// The pipeline one synchronization runs: it, its source, mapping and register, validated alone, so
    /// that a broken definition elsewhere never stops it.
    pub fn pipeline_for(&self, sync: &str) -> Result<Pipeline, CatalogError> {
        // The synchronization, and every one its follow-ups reach: they run from the same pipeline.
        let mut syncs: Vec<(String, Value)> = Vec::new();
        let mut queue = vec![sync.to_string()];
        while let Some(id) = queue.pop() {
            if syncs.iter().any(|(known, _)| *known == id) {
                continue;
            }
            let Some(entry) = self.get(Section::Synchronizations, &id)? else {
                if id == sync {
                    return Err(CatalogError::NotFound { section: "synchronizations", id: sync.to_string() });
                }
                // A follow-up that is not there: the pipeline's check names it.
                continue;
            };
            queue.extend(entry.body.get("followUps").and_then(Value::as_array).into_iter().flatten().map(text_of));
            syncs.push((id, entry.body));
        }
        let (mut sources, mut mappings, mut registers) = (Vec::new(), Vec::new(), Vec::new());
        for (_, body) in &syncs {
            let name = |keys: &[&str]| keys.iter().find_map(|k| body.get(*k)).map(text_of);
            registers.push(
                body.pointer("/target/register")
                    .map(text_of)
                    .or_else(|| body.get("targetId").map(text_of).and_then(|t| t.split_once('/').map(|(r, _)| r.to_string()))),
            );
            // An API target pushes through a second source of the catalog.
            let push_source = body.pointer("/target/source").map(text_of).or_else(|| {
                (body.get("targetType").and_then(Value::as_str) == Some("api")).then(|| body.get("targetId").map(text_of)).flatten()
            });
            sources.extend([name(&["source", "sourceId"]), push_source]);
            mappings.extend(self.mappings_called(name(&["mapping", "sourceTargetMapping"]))?.into_iter().map(Some));
            mappings.extend(self.mappings_called(name(&["sourceHashMapping"]))?.into_iter().map(Some));
        }
        let mut root = Map::new();
        let mut add = |section: Section, ids: Vec<Option<String>>| -> Result<(), CatalogError> {
            let mut entries = Map::new();
            for id in ids.into_iter().flatten() {
                if !entries.contains_key(&id)
                    && let Some(found) = self.get(section, &id)?
                {
                    entries.insert(id, found.body);
                }
            }
            root.insert(section.as_str().into(), Value::Object(entries));
            Ok(())
        };
        add(Section::Sources, sources)?;
        add(Section::Mappings, mappings)?;
        add(Section::Registers, registers)?;
        root.insert(Section::Synchronizations.as_str().into(), Value::Object(syncs.into_iter().collect()));
        Pipeline::from_value("definitions", Value::Object(root), &self.base).map_err(|e| CatalogError::Invalid(e.0))
    }

    /// The mapping `first` and every mapping it calls by name (`executeMapping('child', …)`), however deep.
    fn mappings_called(&self, first: Option<String>) -> Result<Vec<String>, CatalogError> {
        let all = self.list(Section::Mappings)?;
        let mut wanted: Vec<String> = Vec::new();
        let mut queue: Vec<String> = first.into_iter().collect();
        while let Some(next) = queue.pop() {
            let Some(entry) = all.iter().find(|e| e.id == next).filter(|_| !wanted.contains(&next)) else { continue };
            // A name in quotes inside the definition's text: over-inclusion only costs a check.
            let text = entry.body.to_string();
            for other in &all {
                if text.contains(&format!("'{}'", other.id)) || text.contains(&format!("\\\"{}\\\"", other.id)) {
                    queue.push(other.id.clone());
                }
            }
            wanted.push(next);
        }
        Ok(wanted)
    }

    /// Every mapping of the catalog that parses, by id: what `executeMapping` may call by name.
    pub fn mapping_library(&self) -> Result<std::collections::BTreeMap<String, crate::config::MappingDef>, CatalogError> {
        Ok(self
            .list(Section::Mappings)?
            .into_iter()
            .filter_map(|entry| crate::load::mapping_from_value(&entry.body).map(|def| (entry.id, def)))
            .collect())
    }

    /// The ids of every synchronization, from files and the API.
    /// The webhook subscriptions, typed (each was validated when it was kept); none when the catalog
    /// cannot be read.
    pub fn webhooks(&self) -> BTreeMap<String, crate::config::webhook::WebhookDef> {
        let entries = self.list(Section::Webhooks).unwrap_or_default();
        let typed = |body: Value| -> Option<crate::config::webhook::WebhookDef> {
            let Value::Object(fields) = body else { return None };
            serde_json::from_value(Value::Object(crate::config::split_bookkeeping(fields).1)).ok()
        };
        entries.into_iter().filter_map(|e| Some((e.id, typed(e.body)?))).collect()
    }

    pub fn synchronization_ids(&self) -> Result<Vec<String>, CatalogError> {
        Ok(self.list(Section::Synchronizations)?.into_iter().map(|e| e.id).collect())
    }
}
