//! The kinds of target, each described once by its own folder ([`SinkConnector`]), listed in
//! [`registry`]. Loading a pipeline checks a target through it, and a run builds its sink through it.

use std::collections::BTreeMap;

use crate::config::{Pipeline, SourceDef, Synchronization, TargetDef};
use crate::store::StateDir;

use super::Sink;

/// What a sink is built from: the synchronization it writes for, in its pipeline, for run `job`.
pub struct SinkContext<'a> {
    pub pipeline: &'a Pipeline,
    pub sync: &'a Synchronization,
    pub state: &'a StateDir,
    pub job: &'a str,
    pub dry_run: bool,
}

/// One kind of target: its checks of a target definition (pure: no I/O; `sources` are the
/// pipeline's, as an api target pushes through one) and how its sink is built.
pub struct SinkConnector {
    /// Its `type:` in a synchronization's `target`.
    pub kind: &'static str,
    /// Whether it runs a program on this machine: the service takes such a target over its API only
    /// with `--allow-programs`.
    pub runs_programs: bool,
    /// The target keys only it reads, typed in its folder (as a source connector's are).
    pub settings: Option<crate::sources::registry::SettingsSchema>,
    pub validate: fn(&TargetDef, &BTreeMap<String, SourceDef>) -> Result<(), String>,
    pub build: fn(&SinkContext) -> Result<Box<dyn Sink>, String>,
}

/// Every kind of target syncline writes. A new kind is a folder under `src/sinks/` with its
/// `CONNECTOR`, and a line here.
pub fn registry() -> &'static [SinkConnector] {
    static ALL: [SinkConnector; 5] =
        [super::register::CONNECTOR, super::database::CONNECTOR, super::file::CONNECTOR, super::api::CONNECTOR, super::command::CONNECTOR];
    &ALL
}

/// The connector of `kind`, if there is one.
pub fn connector(kind: &str) -> Option<&'static SinkConnector> {
    registry().iter().find(|c| c.kind == kind)
}

/// Why `kind` is not a target type, naming those that are.
pub fn unknown_kind(kind: &str) -> String {
    let kinds: Vec<String> = registry().iter().map(|c| format!("`{}`", c.kind)).collect();
    format!("`{kind}` is not a target type; one of {}", kinds.join(", "))
}

/// A target's `location`, which database and file targets need.
pub fn located(target: &TargetDef) -> Result<&str, String> {
    if target.register.is_some() {
        return Err("`register` applies to a register target only".into());
    }
    target.location.as_deref().ok_or_else(|| "this target needs a `location`".to_string())
}

/// The target definition a synchronization writes into (a register's has none of its own).
pub fn target_of(sync: &Synchronization) -> Result<&TargetDef, String> {
    sync.target.as_ref().ok_or_else(|| format!("synchronization `{}` names no target", sync.name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_kinds_are_unique() {
        let mut kinds: Vec<&str> = registry().iter().map(|c| c.kind).collect();
        kinds.sort();
        kinds.dedup();
        assert_eq!(kinds.len(), registry().len());
        assert!(connector("register").is_some() && connector("gopher").is_none());
        assert!(unknown_kind("gopher").contains("`command`"));
    }

    #[test]
    fn each_target_connector_declares_exactly_the_keys_its_settings_read() {
        for connector in registry() {
            if let Some(settings) = &connector.settings {
                crate::sources::registry::assert_declares_its_fields(connector.kind, settings);
            }
        }
        assert!(connector("api").unwrap().settings.as_ref().unwrap().keys.contains(&"endpoint"));
    }
}
