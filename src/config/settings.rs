//! A connector's own settings — on a source, in a synchronization's `sourceConfig`, or on a target. The
//! keys a connector reads beside those every one shares (`location`, `auth`, `limits`, …) are declared
//! by its folder, taken out before the strict parse (`load.rs`) and read by the connector into its own
//! typed struct; the model only carries the result. So the config layer knows no connector's fields,
//! and a new connector adds none here.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use serde_json::{Map, Value};

/// Connector-owned settings: the connector's typed struct, and the same as shown outside
/// (its `Serialize`, so every `Secret` in it reads `***`).
#[derive(Clone, Default)]
pub struct Settings {
    typed: Option<Arc<dyn Any + Send + Sync>>,
    shown: Map<String, Value>,
}

impl Settings {
    /// Settings read by a connector: its typed struct, and that struct serialized.
    pub fn new<T: serde::Serialize + Send + Sync + 'static>(typed: T) -> Self {
        let shown = match serde_json::to_value(&typed) {
            Ok(Value::Object(fields)) => fields,
            _ => Map::new(),
        };
        Settings { typed: Some(Arc::new(typed)), shown }
    }

    /// The connector's typed settings; `None` when the source was not read through its connector
    /// (a definition built in code) or belongs to another connector.
    pub fn get<T: 'static>(&self) -> Option<&T> {
        self.typed.as_deref()?.downcast_ref()
    }

    /// The settings as written out (an export, an answer): secrets masked.
    pub fn shown(&self) -> &Map<String, Value> {
        &self.shown
    }
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        fmt::Debug::fmt(&self.shown, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    #[derive(serde::Serialize)]
    struct Example {
        user: String,
        key: Secret,
    }

    #[test]
    fn typed_for_the_connector_masked_for_everyone_else() {
        let settings = Settings::new(Example { user: "ann".into(), key: Secret::new("settings-marker-1") });
        assert_eq!(settings.get::<Example>().unwrap().key.expose(), "settings-marker-1");
        assert!(settings.get::<String>().is_none());
        assert_eq!(settings.shown()["key"], "***");
        assert!(!format!("{settings:?}").contains("settings-marker-1"));
        assert!(Settings::default().get::<Example>().is_none());
    }
}
