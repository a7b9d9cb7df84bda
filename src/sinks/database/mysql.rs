//! MySQL/MariaDB: multi-row `INSERT … ON DUPLICATE KEY UPDATE` and `DELETE … WHERE key IN (…)`, a
//! batch per transaction; objects and arrays go into JSON columns as their text.

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, TxOpts, Value as SqlValue};
use serde_json::Value;

use super::{Changes, ColumnType, Connection, DELETED_AT, Table, WriteError};
use crate::sinks::SinkError;

pub struct My {
    conn: Conn,
    table: Table,
}

fn quote(identifier: &str) -> String {
    format!("`{}`", identifier.replace('`', "``"))
}

/// Server errors about the data (a value out of range, too long, not null…) fail rows; the rest the run.
fn classify(error: mysql_async::Error) -> WriteError {
    match error {
        mysql_async::Error::Server(e) if (1263..=1265).contains(&e.code) || [1048, 1292, 1366, 1406, 1690, 3140].contains(&e.code) => {
            WriteError::Rejected(e.message)
        }
        mysql_async::Error::Server(e) => WriteError::Broken(format!("MySQL error {}: {}", e.code, e.message)),
        other => WriteError::Broken(other.to_string()),
    }
}

fn sql_type(kind: ColumnType) -> &'static str {
    match kind {
        ColumnType::Text => "TEXT",
        ColumnType::Integer => "BIGINT",
        ColumnType::Float => "DOUBLE",
        ColumnType::Boolean => "BOOLEAN",
        ColumnType::Json => "JSON",
    }
}

fn sql_value(value: &Value) -> SqlValue {
    match value {
        Value::Null => SqlValue::NULL,
        Value::Bool(b) => SqlValue::Int(i64::from(*b)),
        Value::Number(n) => n
            .as_i64()
            .map(SqlValue::Int)
            .or_else(|| n.as_u64().map(SqlValue::UInt))
            .unwrap_or_else(|| SqlValue::Double(n.as_f64().unwrap_or(0.0))),
        Value::String(s) => SqlValue::Bytes(s.clone().into_bytes()),
        other => SqlValue::Bytes(other.to_string().into_bytes()),
    }
}

impl My {
    pub async fn connect(table: Table) -> Result<My, SinkError> {
        let opts = Opts::from_url(table.url.as_str()).map_err(|e| SinkError::Stopped(format!("{}: {e}", table.shown)))?;
        let conn = Conn::new(opts).await.map_err(|e| SinkError::Stopped(format!("cannot connect to {}: {e}", table.shown)))?;
        Ok(My { conn, table })
    }

    fn qualified(&self) -> String {
        match &self.table.schema {
            Some(schema) => format!("{}.{}", quote(schema), quote(&self.table.name)),
            None => quote(&self.table.name),
        }
    }

    async fn existing_columns(&mut self) -> Result<Vec<String>, SinkError> {
        let sql = "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION";
        self.conn
            .exec(sql, (self.table.schema.clone(), self.table.name.clone()))
            .await
            .map_err(|e| SinkError::Stopped(format!("{}: {e}", self.table.shown)))
    }
}

impl Connection for My {
    // A key must have a length in MySQL: origin ids up to 255 characters.
    const KEY_TYPE: &'static str = "VARCHAR(255) NOT NULL";
    const TIMESTAMP_TYPE: &'static str = "DATETIME(6) NULL";

    fn quote(identifier: &str) -> String {
        quote(identifier)
    }

    fn column_type(kind: ColumnType) -> &'static str {
        sql_type(kind)
    }

    async fn columns(&mut self) -> Result<Vec<String>, SinkError> {
        self.existing_columns().await
    }

    async fn create(&mut self, definitions: &[String]) -> Result<(), SinkError> {
        let ddl = format!("CREATE TABLE IF NOT EXISTS {} ({})", self.qualified(), definitions.join(", "));
        self.conn.query_drop(ddl).await.map_err(|e| SinkError::Stopped(format!("cannot create table {}: {e}", self.table.name)))
    }

    async fn apply(&mut self, changes: &Changes, dry_run: bool) -> Result<(), WriteError> {
        let table = self.qualified();
        let key = quote(&self.table.key);
        let columns = &changes.columns;
        let mut tx = self.conn.start_transaction(TxOpts::default()).await.map_err(classify)?;
        if !changes.rows.is_empty() {
            let list = columns.iter().map(|c| quote(c)).collect::<Vec<_>>().join(", ");
            let one = format!("({})", vec!["?"; columns.len()].join(", "));
            let updates: Vec<String> =
                columns.iter().filter(|c| **c != self.table.key).map(|c| format!("{0} = VALUES({0})", quote(c))).collect();
            let on_duplicate = if updates.is_empty() { format!("{key} = {key}") } else { updates.join(", ") };
            let sql = format!(
                "INSERT INTO {table} ({list}) VALUES {} ON DUPLICATE KEY UPDATE {on_duplicate}",
                vec![one; changes.rows.len()].join(", ")
            );
            let params: Vec<SqlValue> =
                changes.rows.iter().flat_map(|r| columns.iter().map(|c| r.get(c).map_or(SqlValue::NULL, sql_value))).collect();
            tx.exec_drop(sql, params).await.map_err(classify)?;
        }
        for (ids, soft) in [(&changes.deleted, false), (&changes.soft_deleted, true)] {
            if ids.is_empty() {
                continue;
            }
            let marks = vec!["?"; ids.len()].join(", ");
            let sql = if soft {
                format!("UPDATE {table} SET {} = UTC_TIMESTAMP(6) WHERE {key} IN ({marks})", quote(DELETED_AT))
            } else {
                format!("DELETE FROM {table} WHERE {key} IN ({marks})")
            };
            tx.exec_drop(sql, ids.iter().map(|id| SqlValue::from(id.as_str())).collect::<Vec<_>>()).await.map_err(classify)?;
        }
        if dry_run { tx.rollback().await.map_err(classify) } else { tx.commit().await.map_err(classify) }
    }

    async fn keys(&mut self) -> Result<Vec<String>, SinkError> {
        if self.existing_columns().await?.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!("SELECT CAST({} AS CHAR) FROM {}", quote(&self.table.key), self.qualified());
        self.conn.query(sql).await.map_err(|e| SinkError::Stopped(format!("{}: {e}", self.table.shown)))
    }
}
