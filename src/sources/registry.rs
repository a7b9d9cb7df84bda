//! The kinds of source, each described once by its own folder ([`SourceConnector`]), listed in
//! [`registry`]. Loading a pipeline checks a source's location and a synchronization's
//! `sourceConfig` through it, and a run builds its source through it: no other code matches on a
//! source's kind.

use crate::config::{self, SourceConfigDef, SourceDef, SourceKind, Synchronization};

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
    pub kind: SourceKind,
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
}

/// Every kind of source syncline reads. A new kind is a folder under `src/sources/` with its
/// `CONNECTOR`, and a line here.
pub fn registry() -> &'static [SourceConnector] {
    static ALL: [SourceConnector; 6] = [
        super::api::CONNECTOR,
        super::database::CONNECTOR,
        super::ftp::CONNECTOR,
        super::sftp::CONNECTOR,
        super::file::CONNECTOR,
        super::file::EXCEL,
    ];
    &ALL
}

/// The connector of `kind`.
pub fn connector(kind: SourceKind) -> &'static SourceConnector {
    registry().iter().find(|c| c.kind == kind).expect("every source kind is registered")
}

/// The `sourceConfig` keys that belong to some kinds only: a key here that the source's kind does
/// not read is refused, naming it (a typo or a misplaced key would otherwise silently do nothing).
pub const KIND_KEYS: &[&str] = &[
    "table",
    "cursorColumn",
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
        config::check_location(&format!("{} source", self.kind.as_str()), self.schemes, self.local_paths, location)
    }

    /// Every problem of a synchronization's `sourceConfig` for this kind: keys it does not read,
    /// then its own checks.
    pub fn check_config(&self, config: &SourceConfigDef) -> Vec<(String, String)> {
        let given = serde_json::to_value(config).unwrap_or_default();
        let mut problems: Vec<(String, String)> = KIND_KEYS
            .iter()
            .filter(|key| given.get(**key).is_some_and(|v| !v.is_null()) && !self.keys.contains(key))
            .map(|key| (key.to_string(), format!("`{key}` does not apply to a {} source", self.kind.as_str())))
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// Every kind, with a match the compiler holds complete: a new kind must be listed here, and then
    /// the test below asks for its connector.
    fn kinds() -> Vec<SourceKind> {
        let all = [SourceKind::Api, SourceKind::Ftp, SourceKind::Sftp, SourceKind::Database, SourceKind::Excel, SourceKind::File];
        for kind in all {
            match kind {
                SourceKind::Api | SourceKind::Ftp | SourceKind::Sftp | SourceKind::Database | SourceKind::Excel | SourceKind::File => {}
            }
        }
        all.to_vec()
    }

    #[test]
    fn every_kind_has_one_connector() {
        for kind in kinds() {
            assert_eq!(registry().iter().filter(|c| c.kind == kind).count(), 1, "{kind:?}");
        }
        assert_eq!(registry().len(), kinds().len());
    }

    #[test]
    fn the_kind_keys_are_fields_of_source_config_and_each_connector_reads_only_those() {
        let refused = serde_json::from_value::<SourceConfigDef>(json!({"zzProbe": 1})).unwrap_err().to_string();
        for key in KIND_KEYS {
            assert!(refused.contains(&format!("`{key}`")), "{key} is a sourceConfig field: {refused}");
        }
        for connector in registry() {
            assert!(connector.keys.iter().all(|k| KIND_KEYS.contains(k)), "{:?}", connector.kind);
        }
    }

    #[test]
    fn a_key_of_another_kind_is_refused_by_name_and_the_kind_checks_its_own() {
        let config: SourceConfigDef = serde_json::from_value(json!({"endpoint": "/x", "path": "*.csv", "headerRow": 0})).unwrap();
        let problems = connector(SourceKind::File).check_config(&config);
        let keys: Vec<&str> = problems.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["endpoint", "headerRow"], "{problems:?}");
        assert_eq!(problems[0].1, "`endpoint` does not apply to a file source");
        let problems = connector(SourceKind::Database).check_config(&SourceConfigDef::default());
        assert_eq!(problems, [(String::new(), "a database source reads a `table` or a `query` (SQL)".to_string())]);
        assert!(connector(SourceKind::Api).check_location("ftp://host/x").unwrap_err().contains("http, https"));
        assert!(connector(SourceKind::File).check_location("exports/pets.csv").is_ok(), "a plain path");
    }
}
