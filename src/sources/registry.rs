//! The kinds of source, each described once by its own folder ([`SourceConnector`]), listed in
//! [`registry`]. Loading a pipeline checks a source's location and a synchronization's
//! `sourceConfig` through it, and a run builds its source through it: no other code matches on a
//! source's kind.

use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::config::{self, ConfigErrors, Document, Settings, SourceConfigDef, SourceDef, Synchronization};

use super::{Source, SourceError};

/// A built source, or why it cannot be.
pub type Built = Result<Box<dyn Source>, SourceError>;
/// Builds a source from its definition, the synchronization's `sourceConfig` and the synchronization.
pub type Build = fn(&SourceDef, &SourceConfigDef, Option<&Synchronization>) -> Built;
/// Builds what Test connection reads.
pub type Probe = fn(&SourceDef, Option<&Synchronization>) -> Built;

/// One kind of source: what its `location` may be, which `sourceConfig` keys it reads, its own
/// checks of them (pure: no I/O) and how it is built (the I/O starts when its stream is polled).
pub struct SourceConnector {
    /// Its `type:` in a pipeline file.
    pub kind: &'static str,
    /// How the console's source form names it.
    pub label: &'static str,
    /// The URL schemes its `location` takes.
    pub schemes: &'static [&'static str],
    /// Whether a plain path (relative to the pipeline file) is a location too.
    pub local_paths: bool,
    /// The `sourceConfig` keys it reads beside those every source reads (`idPosition`,
    /// `resultsPosition`, `headers`, `query`, …); the others of [`KIND_KEYS`] are refused by name.
    pub keys: &'static [&'static str],
    /// Its checks of a synchronization's `sourceConfig`, each a key under it (`""` for the whole)
    /// and a message.
    pub validate: fn(&SourceConfigDef) -> Vec<(&'static str, String)>,
    /// The source a synchronization reads (`sync`), or, without one, its location read alone (for
    /// Test connection and previews).
    pub build: Build,
    /// What Test connection reads where that is less than a run (an api source: the first page of the
    /// first synchronization's endpoint); `None`: the synchronization's source as a run builds it.
    pub probe: Option<Probe>,
    /// The source keys only it reads, typed in its folder; `None` when it reads only the shared ones.
    pub settings: Option<SettingsSchema>,
    /// The `sourceConfig` keys only it reads (an Airbyte source's `stream`), typed in its folder, read
    /// into `SourceConfigDef::settings`.
    pub sync_settings: Option<SettingsSchema>,
    /// Whether it runs a program on this machine (a command or an Airbyte connector): the service
    /// takes such a source over its API only when started with `--allow-programs`.
    pub runs_programs: bool,
    /// Whether it names each record's id itself ([`crate::sources::Source::id_position`]), so a
    /// synchronization may leave `idPosition` out.
    pub names_ids: bool,
    /// The console form's inputs for its own keys (the shared ones, location, credentials, TLS, are
    /// the form's own).
    pub fields: &'static [FormField],
}

/// A connector's own source keys: which they are, which hold credentials, and how they are read.
pub struct SettingsSchema {
    /// Every key its typed settings take (a test holds this list equal to the struct's fields).
    pub keys: &'static [&'static str],
    /// The keys that hold credentials: typed as `Secret`, shown `***`, kept when an edit sends `***`
    /// back (a test holds each to a name [`crate::secrets`] masks).
    pub secrets: &'static [&'static str],
    /// Reads the keys (as a map at key path `at` of the document: errors carry their positions) into
    /// the typed settings, relative paths taken relative to `base` (the pipeline file's folder).
    pub read: fn(&Document, &str, &Value, &Path) -> Result<Settings, ConfigErrors>,
}

/// A connector's typed settings.
pub trait ConnectorSettings: DeserializeOwned + Serialize + Send + Sync + 'static {
    /// Takes the relative paths among the settings relative to the pipeline file's folder `base`.
    fn anchor(&mut self, _base: &Path) {}
}

/// Reads a connector's keys into its typed struct `T` (strict, with its defaults): a connector's
/// `SettingsSchema::read` is `read_settings::<ItsSettings>`.
pub fn read_settings<T: ConnectorSettings>(doc: &Document, at: &str, value: &Value, base: &Path) -> Result<Settings, ConfigErrors> {
    let mut settings: T = config::deserialize_at(doc, at, value)?;
    settings.anchor(base);
    Ok(Settings::new(settings))
}

/// The typed settings of `def`'s connector, as loading read them.
pub fn settings_of<T: 'static>(def: &SourceDef) -> Result<&T, SourceError> {
    def.settings.get::<T>().ok_or_else(|| {
        SourceError::Config(format!("the {} source's own settings were not read (a definition loads through Pipeline::load)", def.kind))
    })
}

/// One input of the console's source form.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct FormField {
    /// The source key it edits (a dot path).
    pub key: &'static str,
    pub label: &'static str,
    pub input: Input,
    /// Shown in an empty input.
    pub placeholder: &'static str,
}

/// How a form field is edited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Input {
    Text,
    /// A credential: never shown, only whether it is set; left empty it keeps the stored one.
    Secret,
    /// A credential of several lines (a private key).
    SecretText,
    /// A checkbox, on unless the source says `false`.
    Check,
    /// One value per line (a list).
    Lines,
    /// A JSON value.
    Json,
}

/// Every kind of source syncline reads. A new kind is a folder under `src/sources/` with its
/// `CONNECTOR`, and a line here.
pub fn registry() -> &'static [SourceConnector] {
    static ALL: [SourceConnector; 9] = [
        super::airbyte::CONNECTOR,
        super::api::CONNECTOR,
        super::command::CONNECTOR,
        super::database::CONNECTOR,
        super::ftp::CONNECTOR,
        super::openregister::CONNECTOR,
        super::sftp::CONNECTOR,
        super::file::CONNECTOR,
        super::file::EXCEL,
    ];
    &ALL
}

/// The connector of `kind`, if there is one.
pub fn connector(kind: &str) -> Option<&'static SourceConnector> {
    registry().iter().find(|c| c.kind == kind)
}

/// The connector of `def`'s kind.
pub fn connector_of(def: &SourceDef) -> Result<&'static SourceConnector, SourceError> {
    connector(&def.kind).ok_or_else(|| SourceError::Config(unknown_kind(&def.kind)))
}

/// Why `kind` is not a source type, naming those that are.
pub fn unknown_kind(kind: &str) -> String {
    let kinds: Vec<String> = registry().iter().map(|c| format!("`{}`", c.kind)).collect();
    format!("`{kind}` is not a source type; one of {}", kinds.join(", "))
}

/// The keys a source of `kind` takes: those every source shares and its connector's own.
pub fn source_keys(kind: &str) -> Vec<&'static str> {
    let own = connector(kind).and_then(|c| c.settings.as_ref()).map_or(&[][..], |s| s.keys);
    SHARED_SOURCE_KEYS.iter().chain(own).copied().collect()
}

/// The keys every source takes (its connector may ignore some): the fields of [`SourceDef`].
pub const SHARED_SOURCE_KEYS: &[&str] = &[
    "type",
    "location",
    "auth",
    "username",
    "password",
    "token",
    "apiKey",
    "apikey",
    "headers",
    "query",
    "timeout",
    "connectTimeout",
    "retries",
    "rateLimit",
    "tls",
    "authentication",
    "isEnabled",
    "allowCrossOriginLinks",
    "limits",
    "callLogRetention",
];

/// The `sourceConfig` keys that belong to some kinds only: a key here that the source's kind does
/// not read is refused, naming it (a typo or a misplaced key would otherwise silently do nothing).
pub const KIND_KEYS: &[&str] = &[
    "path",
    "format",
    "delimiter",
    "header",
    "encoding",
    "columnTypes",
    "sheet",
    "headerRow",
    "range",
    "minimumAge",
    "incremental",
    "endpoint",
    "pagination",
];

/// The `sourceConfig` keys of [`KIND_KEYS`] a file-reading source (files, spreadsheets, FTP, SFTP)
/// reads.
pub const FILE_KEYS: &[&str] =
    &["path", "format", "delimiter", "header", "encoding", "columnTypes", "sheet", "headerRow", "range", "minimumAge", "incremental"];

impl SourceConnector {
    /// Whether `location` is one this kind reads.
    pub fn check_location(&self, location: &str) -> Result<(), String> {
        if self.schemes.is_empty() && !self.local_paths {
            return match location.trim() {
                "" => Ok(()),
                _ => Err(format!("a {} source takes no location", self.kind)),
            };
        }
        config::check_location(&format!("{} source", self.kind), self.schemes, self.local_paths, location)
    }

    /// Every problem of a synchronization's `sourceConfig` for this kind: keys it does not read,
    /// then its own checks.
    pub fn check_config(&self, config: &SourceConfigDef) -> Vec<(String, String)> {
        let given = serde_json::to_value(config).unwrap_or_default();
        let mut problems: Vec<(String, String)> = KIND_KEYS
            .iter()
            .filter(|key| given.get(**key).is_some_and(|v| !v.is_null()) && !self.keys.contains(key))
            .map(|key| (key.to_string(), format!("`{key}` does not apply to a {} source", self.kind)))
            .collect();
        problems.extend((self.validate)(config).into_iter().map(|(key, message)| (key.to_string(), message)));
        problems
    }
}

/// The checks every file-reading source shares.
pub fn validate_files(config: &SourceConfigDef) -> Vec<(&'static str, String)> {
    let mut problems = Vec::new();
    if config.query.sql().is_some() {
        problems.push(("query", "a file source takes no query".to_string()));
    }
    if config.header_row == Some(0) {
        problems.push(("headerRow", "rows are counted from 1".to_string()));
    }
    if let Some(glob) = &config.path
        && let Err(error) = globset::Glob::new(glob)
    {
        problems.push(("path", format!("`{glob}` is not a glob: {error}")));
    }
    problems
}

/// Holds a connector's `SettingsSchema` to its struct: its keys are exactly the struct's fields (and
/// aliases), each secret is one of them, masked by name and read as a `Secret`.
#[cfg(test)]
pub fn assert_declares_its_fields(kind: &str, settings: &SettingsSchema) {
    use serde_json::json;
    let doc = Document::from_value("probe", json!({}));
    let refused = (settings.read)(&doc, "x", &json!({"zzProbe": 1}), Path::new(".")).unwrap_err().to_string();
    for key in settings.keys {
        assert!(refused.contains(&format!("`{key}`")), "{kind}: {key} is not a field of its settings: {refused}");
    }
    // serde lists each field and alias once, after the refused key.
    assert_eq!(refused.matches('`').count() / 2 - 1, settings.keys.len(), "{kind}: a field not declared: {refused}");
    for secret in settings.secrets {
        assert!(settings.keys.contains(secret), "{kind}: {secret}");
        assert!(crate::secrets::is_secret_name(secret), "{kind}: `{secret}` is not masked by name");
        let read = (settings.read)(&doc, "x", &json!({ *secret: "registry-marker" }), Path::new(".")).unwrap();
        assert_eq!(read.shown()[*secret], "***", "{kind}: {secret} is not a Secret");
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn kinds_are_unique_and_their_own_keys_are_nobody_elses() {
        let mut kinds: Vec<&str> = registry().iter().map(|c| c.kind).collect();
        kinds.sort();
        kinds.dedup();
        assert_eq!(kinds.len(), registry().len(), "a kind registered twice");
        for connector in registry() {
            let Some(settings) = &connector.settings else { continue };
            for key in settings.keys {
                assert!(!SHARED_SOURCE_KEYS.contains(key), "{}: `{key}` is a shared key", connector.kind);
            }
        }
    }

    #[test]
    fn the_shared_keys_are_the_fields_of_a_source() {
        let refused = serde_json::from_value::<SourceDef>(json!({"zzProbe": 1})).unwrap_err().to_string();
        for key in SHARED_SOURCE_KEYS {
            assert!(refused.contains(&format!("`{key}`")), "{key} is a source field: {refused}");
        }
        // serde lists each field and alias once, after the refused key.
        let listed = refused.matches('`').count() / 2 - 1;
        assert_eq!(listed, SHARED_SOURCE_KEYS.len(), "every source field is a shared key: {refused}");
    }

    #[test]
    fn each_connector_declares_exactly_the_keys_its_settings_read_and_masks_its_secrets() {
        let schemas = registry().iter().flat_map(|c| [(c, &c.settings, true), (c, &c.sync_settings, false)]);
        for (connector, settings, of_the_source) in schemas {
            let Some(settings) = settings else { continue };
            assert_declares_its_fields(connector.kind, settings);
            for field in connector.fields.iter().filter(|_| of_the_source) {
                assert!(settings.keys.contains(&field.key.split('.').next().unwrap_or_default()), "{}: {}", connector.kind, field.key);
                let secret = matches!(field.input, Input::Secret | Input::SecretText);
                assert_eq!(secret, settings.secrets.contains(&field.key), "{}: {}", connector.kind, field.key);
            }
        }
    }

    #[test]
    fn the_kind_keys_are_fields_of_source_config_and_each_connector_reads_only_those() {
        let refused = serde_json::from_value::<SourceConfigDef>(json!({"zzProbe": 1})).unwrap_err().to_string();
        for key in KIND_KEYS {
            assert!(refused.contains(&format!("`{key}`")), "{key} is a sourceConfig field: {refused}");
        }
        for connector in registry() {
            assert!(connector.keys.iter().all(|k| KIND_KEYS.contains(k)), "{}", connector.kind);
        }
    }

    #[test]
    fn a_key_of_another_kind_is_refused_by_name_and_the_kind_checks_its_own() {
        let file = connector("file").unwrap();
        let config: SourceConfigDef = serde_json::from_value(json!({"endpoint": "/x", "path": "*.csv", "headerRow": 0})).unwrap();
        let problems = file.check_config(&config);
        let keys: Vec<&str> = problems.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["endpoint", "headerRow"], "{problems:?}");
        assert_eq!(problems[0].1, "`endpoint` does not apply to a file source");
        let problems = connector("database").unwrap().check_config(&SourceConfigDef::default());
        assert_eq!(problems, [(String::new(), "a database source reads a `table` or a `query` (SQL)".to_string())]);
        assert!(connector("api").unwrap().check_location("ftp://host/x").unwrap_err().contains("http, https"));
        assert!(file.check_location("exports/pets.csv").is_ok(), "a plain path");
        assert!(connector("gopher").is_none());
        assert!(unknown_kind("gopher").contains("`sftp`"));
    }
}
