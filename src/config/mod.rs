//! Pipeline files: parse (YAML or JSON), interpolate `${VAR}`, check every key, resolve references,
//! load JSON Schemas. Every error names file, line, column and key. It knows documents and the model,
//! nothing of the parts the model names: loading a file (`Pipeline::load`, `from_text`, `from_value`)
//! lives in [`crate::load`], above this module, the connectors and the mapping engine whose own checks
//! a definition must pass.

pub mod de;
mod document;
mod interpolate;
pub mod model;
pub mod names;
mod settings;
pub mod synchronization;
pub mod target;
mod validate;
pub mod webhook;

pub(crate) use validate::resolve;
pub use validate::{anchor_location, check_location, names as defined_names};

/// The URL schemes object_store opens (and `memory`, for tests): where files are read and written.
pub const OBJECT_STORE_SCHEMES: &[&str] = &["file", "s3", "s3a", "gs", "az", "azure", "abfs", "abfss", "adl", "http", "https", "memory"];
/// The URL schemes of the databases read and written (MySQL/MariaDB, PostgreSQL).
pub const DATABASE_SCHEMES: &[&str] = &["mysql", "mariadb", "postgres", "postgresql"];

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::Value;

pub use de::{Flag, QueryDef, Secret, Span, Text, TextMap};
pub use document::{Document, Position};
pub use model::*;
pub use settings::Settings;
pub use synchronization::*;
pub use target::*;

/// A whole pipeline file.
#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineFile {
    /// Where data comes from, by name.
    #[serde(default)]
    pub sources: BTreeMap<String, SourceDef>,
    /// How a source record becomes a target object, by name.
    #[serde(default)]
    pub mappings: BTreeMap<String, MappingDef>,
    /// Registers and their schemas (JSON Schema), by name.
    #[serde(default)]
    pub registers: BTreeMap<String, RegisterDef>,
    /// What runs: a source, a mapping and a target, by name.
    #[serde(default)]
    pub synchronizations: BTreeMap<String, SynchronizationDef>,
    /// Where events go when objects change and jobs end, by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub webhooks: BTreeMap<String, webhook::WebhookDef>,
}

/// One problem in a pipeline file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    pub file: String,
    pub position: Option<Position>,
    /// Dot path of the key at fault (`synchronizations.pets.sourceConfig.idPosition`).
    pub key: String,
    pub message: String,
}

impl ConfigError {
    pub fn at(file: &str, position: Position, key: &str, message: String) -> Self {
        ConfigError { file: file.to_string(), position: Some(position), key: key.to_string(), message }
    }
    pub fn file(file: &str, message: String) -> Self {
        ConfigError { file: file.to_string(), position: None, key: String::new(), message }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(p) = self.position {
            write!(f, ":{}:{}", p.line, p.column)?;
        }
        if !self.key.is_empty() {
            write!(f, ": {}", self.key)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Every problem found in a file, in file order.
#[derive(Debug, Clone, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl From<ConfigError> for ConfigErrors {
    fn from(error: ConfigError) -> Self {
        ConfigErrors(vec![error])
    }
}

/// A synchronization with its references resolved and OpenConnector's spellings folded in.
#[derive(Debug, Clone)]
pub struct Synchronization {
    pub name: String,
    pub source: String,
    pub mapping: String,
    /// A register target's register and schema (empty for other targets).
    pub register: String,
    pub schema: String,
    /// Any other target (a database table); `None` writes into the register.
    pub target: Option<TargetDef>,
    pub source_config: SourceConfigDef,
    pub id_position: String,
    pub pagination: PaginationDef,
    pub filter: Option<String>,
    pub schedule: Option<String>,
    pub delete_policy: DeletePolicy,
    pub max_delete_share: f64,
    pub definition: SynchronizationDef,
}

/// A loaded, validated pipeline file.
#[derive(Debug, Clone)]
pub struct Pipeline {
    pub file: PathBuf,
    pub sources: BTreeMap<String, SourceDef>,
    pub mappings: BTreeMap<String, MappingDef>,
    /// Register → schema → JSON Schema (with `$ref` files loaded).
    pub registers: BTreeMap<String, BTreeMap<String, Value>>,
    pub synchronizations: BTreeMap<String, Synchronization>,
    pub webhooks: BTreeMap<String, webhook::WebhookDef>,
    /// What the file asks for that syncline reads differently or does not honour (OpenConnector's
    /// fields), each naming its key; shown before a run, never fatal.
    pub warnings: Vec<ConfigError>,
}

/// Reads the process environment for `${VAR}`.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// The most of a definition file (a pipeline, a schema, an OpenConnector export) that is read.
pub const MAX_DEFINITION_BYTES: u64 = 64 * 1024 * 1024;

/// A definition file's text, refused past [`MAX_DEFINITION_BYTES`] before it is read.
pub fn read_definition(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let file = std::fs::File::open(path)?;
    let mut text = String::new();
    file.take(MAX_DEFINITION_BYTES + 1).read_to_string(&mut text)?;
    if text.len() as u64 > MAX_DEFINITION_BYTES {
        return Err(std::io::Error::other(format!(
            "the file is larger than {} (a definition file is text of a few kilobytes)",
            crate::limits::ByteSize(MAX_DEFINITION_BYTES)
        )));
    }
    Ok(text)
}

/// A document's value, OpenConnector's bookkeeping keys taken out of each entity and kept beside
/// it, parsed strictly into the model.
pub(crate) fn parse_model(doc: &Document, value: &mut Value) -> Result<PipelineFile, ConfigErrors> {
    let bookkeeping = take_bookkeeping(doc, value)?;
    let mut parsed: PipelineFile = deserialize(doc, value)?;
    for ((section, name), value) in bookkeeping {
        let slot = match section {
            "sources" => parsed.sources.get_mut(&name).map(|s| &mut s.bookkeeping),
            "mappings" => parsed.mappings.get_mut(&name).map(|s| &mut s.bookkeeping),
            "registers" => parsed.registers.get_mut(&name).map(|s| &mut s.bookkeeping),
            "webhooks" => parsed.webhooks.get_mut(&name).map(|s| &mut s.bookkeeping),
            _ => parsed.synchronizations.get_mut(&name).map(|s| &mut s.bookkeeping),
        };
        if let Some(slot) = slot {
            *slot = value;
        }
    }
    Ok(parsed)
}

const SECTIONS: [&str; 5] = ["sources", "mappings", "registers", "synchronizations", "webhooks"];
const BOOKKEEPING: [&str; 13] = [
    "name",
    "description",
    "id",
    "uuid",
    "slug",
    "reference",
    "version",
    "created",
    "updated",
    "dateCreated",
    "dateModified",
    "status",
    "configurations",
];

/// Whether `key` is one of OpenConnector's bookkeeping keys (`name`, `id`, `uuid`, …), which every
/// entity may carry.
pub fn is_bookkeeping(key: &str) -> bool {
    BOOKKEEPING.contains(&key)
}

/// An entity's fields split into OpenConnector's bookkeeping keys and the rest.
pub(crate) fn split_bookkeeping(
    fields: serde_json::Map<String, Value>,
) -> (serde_json::Map<String, Value>, serde_json::Map<String, Value>) {
    fields.into_iter().partition(|(key, _)| BOOKKEEPING.contains(&key.as_str()))
}

type BookkeepingByEntity = Vec<((&'static str, String), Bookkeeping)>;

/// Takes OpenConnector's bookkeeping keys out of every entity, so the entity itself can be parsed
/// strictly.
fn take_bookkeeping(doc: &Document, root: &mut Value) -> Result<BookkeepingByEntity, ConfigErrors> {
    let mut out = Vec::new();
    for section in SECTIONS {
        let Some(Value::Object(entities)) = root.get_mut(section) else { continue };
        for (name, entity) in entities.iter_mut() {
            let Value::Object(fields) = entity else { continue };
            let mut taken = serde_json::Map::new();
            for key in BOOKKEEPING {
                if let Some(value) = fields.remove(key) {
                    taken.insert(key.to_string(), value);
                }
            }
            let path = format!("{section}.{name}");
            let value: Bookkeeping = deserialize_at(doc, &path, &Value::Object(taken))?;
            out.push(((section, name.clone()), value));
        }
    }
    Ok(out)
}

/// Deserializes `value` (found at `doc`'s root) and turns serde's error into one with a position.
pub(crate) fn deserialize<T: serde::de::DeserializeOwned>(doc: &Document, value: &Value) -> Result<T, ConfigErrors> {
    deserialize_at(doc, "", value)
}

/// Deserializes `value`, found at key path `base` of `doc`.
pub(crate) fn deserialize_at<T: serde::de::DeserializeOwned>(doc: &Document, base: &str, value: &Value) -> Result<T, ConfigErrors> {
    serde_path_to_error::deserialize(value).map_err(|error| {
        let mut path = base.to_string();
        for segment in error.path().iter() {
            let part = match segment {
                serde_path_to_error::Segment::Seq { index } => index.to_string(),
                serde_path_to_error::Segment::Map { key } => key.clone(),
                serde_path_to_error::Segment::Enum { variant } => variant.clone(),
                serde_path_to_error::Segment::Unknown => continue,
            };
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(&part);
        }
        let message = error.inner().to_string();
        // serde reports an unknown key at its parent; point at the key itself.
        if let Some(rest) = message.strip_prefix("unknown field `")
            && let Some(field) = rest.split('`').next()
            && !(path == field || path.ends_with(&format!(".{field}")))
        {
            path = if path.is_empty() { field.to_string() } else { format!("{path}.{field}") };
        }
        ConfigErrors(vec![doc.error(&path, message)])
    })
}
