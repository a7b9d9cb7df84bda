//! The database source (`type: database`): a table, or the rows of a SELECT, from MySQL/MariaDB
//! (`mysql://user@host:3306/db`) or PostgreSQL (`postgres://user@host:5432/db`), streamed row by row.
//! With `cursorColumn` a run reads only rows whose column is at or past the newest value the last
//! complete run saw (at, not past: rows sharing that value are read again, and the hash-diff skips them).

mod mysql;
mod postgres;

use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::config::{SourceConfigDef, SourceDef};
use crate::sources::feed::spawn_feed;
use crate::sources::registry::{ConnectorSettings, SettingsSchema, SourceConnector, read_settings};
use crate::sources::{Source, SourceError, SourceStream};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Engine {
    MySql,
    Postgres,
}

pub struct DatabaseSource {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    /// The connection URL with the password filled in: never shown.
    url: Url,
    /// The same without the password, for messages.
    shown: String,
    table: Option<String>,
    query: Option<String>,
    cursor_column: Option<String>,
}

/// What a run saves as its cursor: the column, so a changed `cursorColumn` starts over.
#[derive(Debug, Serialize, Deserialize)]
struct SavedPosition {
    column: String,
    value: String,
}

/// The database source, as the registry lists it.
pub const CONNECTOR: SourceConnector = SourceConnector {
    kind: "database",
    label: "Database",
    schemes: crate::config::DATABASE_SCHEMES,
    local_paths: false,
    keys: &[],
    validate: validate_config,
    build: |def, config, _| Ok(Box::new(DatabaseSource::new(def, config)?)),
    probe: None,
    settings: None,
    sync_settings: Some(SettingsSchema { keys: &["table", "cursorColumn"], secrets: &[], read: read_settings::<DatabaseSyncSettings> }),
    runs_programs: false,
    names_ids: false,
    fields: &[],
};

/// What a synchronization reads of a database source, beside `query` (its SQL).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DatabaseSyncSettings {
    /// The table to read, all columns (`schema.table` allowed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    /// A column that grows with every change (`updated_at`, an id). A run reads only rows at or past
    /// the newest value the last run saw; `--force-full-sync` reads all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor_column: Option<String>,
}

impl ConnectorSettings for DatabaseSyncSettings {}

/// The synchronization's own keys (none read: a probe without a synchronization).
fn sync_settings(config: &SourceConfigDef) -> DatabaseSyncSettings {
    config.settings.get::<DatabaseSyncSettings>().cloned().unwrap_or_default()
}

fn validate_config(config: &SourceConfigDef) -> Vec<(&'static str, String)> {
    match (&sync_settings(config).table, config.query.sql()) {
        (None, None) => vec![("", "a database source reads a `table` or a `query` (SQL)".into())],
        (Some(_), Some(_)) => vec![("query", "give `table` or `query`, not both".into())],
        _ => Vec::new(),
    }
}

impl DatabaseSource {
    pub fn new(def: &SourceDef, config: &SourceConfigDef) -> Result<DatabaseSource, SourceError> {
        let mut url = Url::parse(&def.location).map_err(|_| SourceError::Config("the database location is not a URL".into()))?;
        let engine = match url.scheme() {
            "mysql" | "mariadb" => Engine::MySql,
            "postgres" | "postgresql" => Engine::Postgres,
            other => return Err(SourceError::Config(format!("a database source reads mysql:// or postgres:// URLs, not `{other}:`"))),
        };
        if let Some(user) = &def.username {
            url.set_username(user).map_err(|_| SourceError::Config("the database URL cannot take a user name".into()))?;
        }
        if let Some(password) = def.password.as_ref().filter(|p| !p.expose().is_empty()) {
            url.set_password(Some(password.expose())).map_err(|_| SourceError::Config("the database URL cannot take a password".into()))?;
        }
        let mut shown = url.clone();
        let _ = shown.set_password(None);
        let settings = sync_settings(config);
        Ok(DatabaseSource {
            inner: Arc::new(Inner {
                engine,
                url,
                shown: shown.to_string(),
                query: config.query.sql().map(|q| q.trim().trim_end_matches(';').to_string()),
                table: settings.table,
                cursor_column: settings.cursor_column,
            }),
        })
    }
}

impl Inner {
    /// The rows to read, as a `FROM` item named `q`: the table, or the query as a derived table.
    fn rows(&self) -> Result<String, SourceError> {
        match (&self.table, &self.query) {
            (Some(table), _) => Ok(format!("{} AS q", table.split('.').map(|part| self.quote(part)).collect::<Vec<_>>().join("."))),
            (None, Some(query)) => Ok(format!("({query}) AS q")),
            (None, None) => Err(SourceError::Config("a database source reads a `table` or a `query`".into())),
        }
    }

    fn quote(&self, identifier: &str) -> String {
        match self.engine {
            Engine::MySql => format!("`{}`", identifier.replace('`', "``")),
            Engine::Postgres => format!("\"{}\"", identifier.replace('"', "\"\"")),
        }
    }

    /// The saved cursor's value, if it was saved for this cursor column.
    fn resume_from(&self, cursor: Option<String>) -> Option<String> {
        let column = self.cursor_column.as_ref()?;
        let saved: SavedPosition = serde_json::from_str(&cursor?).ok()?;
        (&saved.column == column).then_some(saved.value)
    }

    fn cursor_text(&self, value: String) -> Option<String> {
        let column = self.cursor_column.clone()?;
        serde_json::to_string(&SavedPosition { column, value }).ok()
    }

    fn target(&self) -> String {
        match (&self.table, &self.query) {
            (Some(table), _) => format!("table `{table}`"),
            _ => "the query".to_string(),
        }
    }
}

impl Source for DatabaseSource {
    fn open(&self, cursor: Option<String>) -> SourceStream {
        let inner = Arc::clone(&self.inner);
        spawn_feed(move |tx| async move {
            let since = inner.resume_from(cursor);
            match inner.engine {
                Engine::MySql => mysql::feed(&inner, since, &tx).await,
                Engine::Postgres => postgres::feed(&inner, since, &tx).await,
            }
        })
    }

    fn check(&self) -> BoxFuture<'_, Result<String, SourceError>> {
        async move {
            let inner = &self.inner;
            let version = match inner.engine {
                Engine::MySql => mysql::check(inner).await?,
                Engine::Postgres => postgres::check(inner).await?,
            };
            let what = if inner.table.is_some() || inner.query.is_some() { format!("; {} answers", inner.target()) } else { String::new() };
            Ok(format!("OK: connected to {version} at {}{what}", inner.shown))
        }
        .boxed()
    }
}

/// A DECIMAL's text as an exact JSON number when a double holds it exactly, else as the text itself.
pub(crate) fn decimal_value(text: &str) -> serde_json::Value {
    if let Ok(integer) = text.parse::<i64>() {
        return serde_json::Value::from(integer);
    }
    let exact = text.parse::<f64>().ok().filter(|f| f.is_finite()).filter(|f| same_decimal(text, &f.to_string()));
    match exact.and_then(serde_json::Number::from_f64) {
        Some(number) => serde_json::Value::Number(number),
        None => serde_json::Value::String(text.to_string()),
    }
}

/// `12.50` and `12.5` are the same decimal.
fn same_decimal(a: &str, b: &str) -> bool {
    fn normal(s: &str) -> &str {
        if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.') } else { s }
    }
    normal(a) == normal(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_stay_exact() {
        assert_eq!(decimal_value("12.50"), serde_json::json!(12.5));
        assert_eq!(decimal_value("100"), serde_json::json!(100));
        assert_eq!(decimal_value("0.10"), serde_json::json!(0.1));
        assert_eq!(decimal_value("12345678901234567890.12"), serde_json::json!("12345678901234567890.12"));
    }
}
