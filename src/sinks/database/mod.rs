//! The database target (`target: {type: database}`): a table of PostgreSQL or MySQL/MariaDB, one row per
//! record keyed by its origin id (the `primaryKey` column, default `origin_id`), one column per mapped
//! field. Each batch is one transaction of multi-row upserts and deletes; a batch that a bad row breaks
//! is written again row by row, so that row fails alone. A dry run rolls every batch back.

mod mysql;
mod postgres;

use std::collections::BTreeMap;

use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::Value;
use tokio::sync::mpsc;

use super::registry::{SinkConnector, located, target_of};
use super::{AckSender, Sink, SinkError};
use serde::{Deserialize, Serialize};

use crate::config::{DATABASE_SCHEMES, Flag, TargetDef, check_location};
use crate::sources::registry::{ConnectorSettings, SettingsSchema, read_settings};
use crate::write::{Action, Mapped, Outcome};

/// The table's soft-delete column, created with the table and filled by `deletePolicy: soft-delete`.
pub const DELETED_AT: &str = "deleted_at";

/// A column's type, as the first batch's values say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    Text,
    Integer,
    Float,
    Boolean,
    /// Objects and arrays: JSON (jsonb in PostgreSQL).
    Json,
}

impl ColumnType {
    fn of(value: &Value) -> Option<ColumnType> {
        Some(match value {
            Value::Null => return None,
            Value::Bool(_) => ColumnType::Boolean,
            Value::Number(n) if n.is_i64() || n.is_u64() => ColumnType::Integer,
            Value::Number(_) => ColumnType::Float,
            Value::String(_) => ColumnType::Text,
            Value::Array(_) | Value::Object(_) => ColumnType::Json,
        })
    }

    fn widen(self, other: ColumnType) -> ColumnType {
        match (self, other) {
            (a, b) if a == b => a,
            (ColumnType::Integer, ColumnType::Float) | (ColumnType::Float, ColumnType::Integer) => ColumnType::Float,
            _ => ColumnType::Text,
        }
    }
}

/// The columns of a batch's objects with their types (text where only nulls were seen).
pub fn columns_of(ops: &[Mapped]) -> BTreeMap<String, ColumnType> {
    let mut columns: BTreeMap<String, Option<ColumnType>> = BTreeMap::new();
    for op in ops {
        if let Action::Upsert(Value::Object(fields)) = &op.what {
            for (name, value) in fields {
                let seen = ColumnType::of(value);
                let slot = columns.entry(name.clone()).or_insert(None);
                *slot = match (*slot, seen) {
                    (Some(a), Some(b)) => Some(a.widen(b)),
                    (a, b) => a.or(b),
                };
            }
        }
    }
    columns.into_iter().map(|(name, kind)| (name, kind.unwrap_or(ColumnType::Text))).collect()
}

/// Where and how to write.
#[derive(Debug, Clone)]
pub struct Table {
    pub url: url::Url,
    /// The URL without its password, for messages.
    pub shown: String,
    pub schema: Option<String>,
    pub name: String,
    pub key: String,
    pub create: bool,
}

/// A statement that failed: the row's own problem (a value the column refuses) or the connection's.
#[derive(Debug)]
pub enum WriteError {
    /// The data: retried row by row, each bad row fails alone.
    Rejected(String),
    /// The database as a whole: the run stops.
    Broken(String),
}

/// The database target, as the registry lists it: a table of PostgreSQL or MySQL/MariaDB.
pub const CONNECTOR: SinkConnector = SinkConnector {
    kind: "database",
    settings: Some(SettingsSchema {
        keys: &["table", "primaryKey", "createTable"],
        secrets: &[],
        read: read_settings::<DatabaseTargetSettings>,
    }),
    runs_programs: false,
    validate: |target, _| {
        let location = located(target)?;
        check_location("database target", DATABASE_SCHEMES, false, location)?;
        if settings_of(target).table.as_deref().is_none_or(|t| t.trim().is_empty()) {
            return Err("a database target needs a `table`".into());
        }
        Ok(())
    },
    build: |context| Ok(Box::new(DatabaseSink::new(target_of(context.sync)?, context.dry_run).map_err(|e| e.to_string())?)),
};

/// A database target's own keys (its `location`, `username`, `password` and `schema` are shared).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DatabaseTargetSettings {
    /// The table written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    /// The key column, holding each record's origin id (default `origin_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_key: Option<String>,
    /// Create the table from the first batch's fields when it does not exist (default false: the
    /// table must exist with a column for every mapped field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_table: Option<Flag>,
}

impl ConnectorSettings for DatabaseTargetSettings {}

/// A database target's own keys, as loading read them (defaults for a target built in code).
fn settings_of(target: &TargetDef) -> DatabaseTargetSettings {
    target.settings.get::<DatabaseTargetSettings>().cloned().unwrap_or_default()
}

pub struct DatabaseSink {
    table: Table,
    dry_run: bool,
    postgres: bool,
}

impl DatabaseSink {
    pub fn new(def: &TargetDef, dry_run: bool) -> Result<DatabaseSink, SinkError> {
        let invalid = |message: String| SinkError::Stopped(message);
        let location = def.location.as_deref().ok_or_else(|| invalid("a database target needs a `location`".into()))?;
        let mut url = url::Url::parse(location).map_err(|_| invalid("the database target's location is not a URL".into()))?;
        if let Some(user) = &def.username {
            let _ = url.set_username(user);
        }
        if let Some(password) = def.password.as_ref().filter(|p| !p.expose().is_empty()) {
            let _ = url.set_password(Some(password.expose()));
        }
        let mut shown = url.clone();
        let _ = shown.set_password(None);
        let postgres = matches!(url.scheme(), "postgres" | "postgresql");
        let settings = settings_of(def);
        Ok(DatabaseSink {
            table: Table {
                url,
                shown: shown.to_string(),
                schema: def.schema.clone(),
                name: settings.table.unwrap_or_default(),
                key: settings.primary_key.unwrap_or_else(|| "origin_id".into()),
                create: settings.create_table.is_some_and(|f| f.0),
            },
            dry_run,
            postgres,
        })
    }
}

/// What each engine provides: its SQL. The table check, the batching, the row-by-row retry and the
/// outcomes are shared.
pub trait Connection: Send {
    /// The SQL type of the key column, and of `deleted_at`.
    const KEY_TYPE: &'static str;
    const TIMESTAMP_TYPE: &'static str;
    fn quote(identifier: &str) -> String;
    fn column_type(kind: ColumnType) -> &'static str;
    /// The table's columns in order; none when it does not exist.
    fn columns(&mut self) -> impl Future<Output = Result<Vec<String>, SinkError>> + Send;
    /// Creates the table from column definitions (`"name" type`).
    fn create(&mut self, definitions: &[String]) -> impl Future<Output = Result<(), SinkError>> + Send;
    /// Applies `changes` in one transaction, committed, or rolled back when `dry_run`.
    fn apply(&mut self, changes: &Changes, dry_run: bool) -> impl Future<Output = Result<(), WriteError>> + Send;
    /// The origin ids the table holds (adopting objects of an interrupted run).
    fn keys(&mut self) -> impl Future<Output = Result<Vec<String>, SinkError>> + Send;
}

/// One transaction's writes, in the table's terms.
pub struct Changes {
    /// Upserted rows: the mapped object, its key and a cleared soft-delete mark.
    pub rows: Vec<serde_json::Map<String, Value>>,
    /// The table's columns the rows carry: a field no row sets keeps its value.
    pub columns: Vec<String>,
    pub deleted: Vec<String>,
    pub soft_deleted: Vec<String>,
}

impl Changes {
    fn of(ops: &[&Mapped], table: &Table, existing: &[String]) -> Changes {
        let with_deleted_at = existing.iter().any(|c| c == DELETED_AT);
        let rows: Vec<_> = ops.iter().filter_map(|op| row_of(op, &table.key, with_deleted_at)).collect();
        let columns = existing.iter().filter(|c| rows.iter().any(|r| r.contains_key(c.as_str()))).cloned().collect();
        let (mut deleted, mut soft_deleted) = (Vec::new(), Vec::new());
        for op in ops {
            if let Action::Delete { soft } = op.what {
                if soft { soft_deleted.push(op.origin_id.clone()) } else { deleted.push(op.origin_id.clone()) }
            }
        }
        Changes { rows, columns, deleted, soft_deleted }
    }
}

/// Checks the table for these columns before the first write, creating it when asked; its columns.
async fn prepare<C: Connection>(
    conn: &mut C,
    table: &Table,
    columns: &BTreeMap<String, ColumnType>,
    soft: bool,
) -> Result<Vec<String>, SinkError> {
    let mut existing = conn.columns().await?;
    if existing.is_empty() {
        if !table.create {
            return Err(SinkError::Stopped(format!(
                "table {} does not exist in {} (set `createTable: true` to create it)",
                table.name, table.shown
            )));
        }
        let mut definitions = vec![format!("{} {} PRIMARY KEY", C::quote(&table.key), C::KEY_TYPE)];
        definitions
            .extend(columns.iter().filter(|(c, _)| **c != table.key).map(|(c, t)| format!("{} {}", C::quote(c), C::column_type(*t))));
        definitions.push(format!("{} {}", C::quote(DELETED_AT), C::TIMESTAMP_TYPE));
        conn.create(&definitions).await?;
        existing = conn.columns().await?;
    }
    check_columns(table, &existing, columns, soft)?;
    Ok(existing)
}

async fn write<C: Connection>(
    mut conn: C,
    table: &Table,
    mut input: mpsc::Receiver<Vec<Mapped>>,
    acks: AckSender,
    dry_run: bool,
) -> Result<(), SinkError> {
    let mut existing: Option<Vec<String>> = None;
    while let Some(batch) = input.recv().await {
        let columns = match &existing {
            Some(columns) => columns,
            None if batch.iter().any(|op| !op.what.is_delete()) => {
                let soft = batch.iter().any(|op| matches!(op.what, Action::Delete { soft: true }));
                existing.insert(prepare(&mut conn, table, &columns_of(&batch), soft).await?)
            }
            // Deletes alone need no columns.
            None => &Vec::new() as &Vec<String>,
        };
        let all: Vec<&Mapped> = batch.iter().collect();
        let transaction = tracing::info_span!(target: "syncline::trace", "syncline.transaction", "syncline.writes" = all.len());
        let applied = tracing::Instrument::instrument(conn.apply(&Changes::of(&all, table, columns), dry_run), transaction).await;
        let outcomes: Vec<Outcome> = match applied {
            Ok(()) => batch.iter().map(Mapped::applied).collect(),
            Err(WriteError::Broken(message)) => return Err(SinkError::Stopped(message)),
            Err(WriteError::Rejected(_)) => {
                // One bad row spoils a multi-row statement: find it by writing each row alone.
                let mut outcomes = Vec::with_capacity(batch.len());
                for op in &batch {
                    outcomes.push(match conn.apply(&Changes::of(&[op], table, columns), dry_run).await {
                        Ok(()) => op.applied(),
                        Err(WriteError::Rejected(message)) => Outcome::Failed(message),
                        Err(WriteError::Broken(message)) => return Err(SinkError::Stopped(message)),
                    });
                }
                outcomes
            }
        };
        let report = batch.into_iter().zip(outcomes).map(|(op, outcome)| op.with(outcome)).collect();
        if acks.send(report).is_err() {
            break;
        }
    }
    Ok(())
}

/// Refuses, before any write, a table that lacks a column the records need.
fn check_columns(table: &Table, existing: &[String], columns: &BTreeMap<String, ColumnType>, soft: bool) -> Result<(), SinkError> {
    let missing: Vec<&String> = columns.keys().chain([&table.key]).filter(|c| !existing.contains(c)).collect();
    if !missing.is_empty() {
        return Err(SinkError::Stopped(format!(
            "table {} has no column {} (its columns: {}); nothing was written",
            table.name,
            missing.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", "),
            existing.join(", ")
        )));
    }
    if soft && !existing.iter().any(|c| c == DELETED_AT) {
        return Err(SinkError::Stopped(format!("soft-delete needs a `{DELETED_AT}` column in table {}", table.name)));
    }
    Ok(())
}

/// The row an upsert writes: the mapped object plus its key (and a cleared soft-delete mark).
fn row_of(op: &Mapped, key: &str, with_deleted_at: bool) -> Option<serde_json::Map<String, Value>> {
    let (origin_id, object) = (&op.origin_id, op.upsert()?);
    let mut row = match object {
        Value::Object(fields) => fields.clone(),
        other => serde_json::Map::from_iter([("value".to_string(), other.clone())]),
    };
    row.insert(key.to_string(), Value::String(origin_id.clone()));
    if with_deleted_at {
        row.insert(DELETED_AT.to_string(), Value::Null);
    }
    Some(row)
}

impl Sink for DatabaseSink {
    fn existing(&self) -> Result<Vec<String>, SinkError> {
        let table = self.table.clone();
        let postgres = self.postgres;
        // Called before the run's tasks start, from async code: a short-lived runtime of its own.
        std::thread::scope(|scope| {
            scope
                .spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .map_err(|e| SinkError::Stopped(e.to_string()))?;
                    runtime.block_on(async move {
                        if postgres {
                            postgres::Pg::connect(table).await?.keys().await
                        } else {
                            mysql::My::connect(table).await?.keys().await
                        }
                    })
                })
                .join()
                .map_err(|_| SinkError::Stopped("the key reader stopped".into()))?
        })
    }

    fn write_all(self: Box<Self>, input: mpsc::Receiver<Vec<Mapped>>, acks: AckSender) -> BoxFuture<'static, Result<(), SinkError>> {
        async move {
            if self.postgres {
                write(postgres::Pg::connect(self.table.clone()).await?, &self.table, input, acks, self.dry_run).await
            } else {
                write(mysql::My::connect(self.table.clone()).await?, &self.table, input, acks, self.dry_run).await
            }
        }
        .boxed()
    }
}
