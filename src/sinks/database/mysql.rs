//! MySQL/MariaDB: multi-row `INSERT … ON DUPLICATE KEY UPDATE` and `DELETE … WHERE key IN (…)`, a
//! batch per transaction; objects and arrays go into JSON columns as their text.

use std::collections::BTreeMap;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, TxOpts, Value as SqlValue};
use serde_json::Value;

use super::{check_columns, row_of, ColumnType, Connection, Table, WriteError, DELETED_AT};
use crate::sinks::{Op, SinkError};

pub struct My {
    conn: Conn,
    table: Table,
    columns: Vec<String>,
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
        Value::Number(n) => n.as_i64().map(SqlValue::Int).or_else(|| n.as_u64().map(SqlValue::UInt)).unwrap_or_else(|| SqlValue::Double(n.as_f64().unwrap_or(0.0))),
        Value::String(s) => SqlValue::Bytes(s.clone().into_bytes()),
        other => SqlValue::Bytes(other.to_string().into_bytes()),
    }
}

impl My {
    pub async fn connect(table: Table) -> Result<My, SinkError> {
        let opts = Opts::from_url(table.url.as_str()).map_err(|e| SinkError::Stopped(format!("{}: {e}", table.shown)))?;
        let conn = Conn::new(opts).await.map_err(|e| SinkError::Stopped(format!("cannot connect to {}: {e}", table.shown)))?;
        Ok(My { conn, table, columns: Vec::new() })
    }

    fn qualified(&self) -> String {
        match &self.table.schema {
            Some(schema) => format!("{}.{}", quote(schema), quote(&self.table.name)),
            None => quote(&self.table.name),
        }
    }

    async fn existing_columns(&mut self) -> Result<Vec<String>, SinkError> {
        let sql = "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION";
        self.conn.exec(sql, (self.table.schema.clone(), self.table.name.clone())).await.map_err(|e| SinkError::Stopped(format!("{}: {e}", self.table.shown)))
    }
}

impl Connection for My {
    async fn prepare(&mut self, columns: &BTreeMap<String, ColumnType>, soft: bool) -> Result<(), SinkError> {
        let mut existing = self.existing_columns().await?;
        if existing.is_empty() {
            if !self.table.create {
                return Err(SinkError::Stopped(format!("table {} does not exist in {} (set `createTable: true` to create it)", self.table.name, self.table.shown)));
            }
            // A key must have a length in MySQL: origin ids up to 255 characters.
            let mut defs = vec![format!("{} VARCHAR(255) NOT NULL PRIMARY KEY", quote(&self.table.key))];
            defs.extend(columns.iter().filter(|(c, _)| **c != self.table.key).map(|(c, t)| format!("{} {}", quote(c), sql_type(*t))));
            defs.push(format!("{} DATETIME(6) NULL", quote(DELETED_AT)));
            let ddl = format!("CREATE TABLE IF NOT EXISTS {} ({})", self.qualified(), defs.join(", "));
            self.conn.query_drop(ddl).await.map_err(|e| SinkError::Stopped(format!("cannot create table {}: {e}", self.table.name)))?;
            existing = self.existing_columns().await?;
        }
        check_columns(&self.table, &existing, columns, soft)?;
        self.columns = existing;
        Ok(())
    }

    async fn apply(&mut self, ops: &[&Op], dry_run: bool) -> Result<(), WriteError> {
        let with_deleted_at = self.columns.iter().any(|c| c == DELETED_AT);
        let rows: Vec<_> = ops.iter().filter_map(|op| row_of(op, &self.table.key, with_deleted_at)).collect();
        let (mut hard, mut soft) = (Vec::new(), Vec::new());
        for op in ops {
            if let Op::Delete { origin_id, soft: is_soft, .. } = op {
                if *is_soft { soft.push(origin_id.clone()) } else { hard.push(origin_id.clone()) }
            }
        }
        let table = self.qualified();
        let key = quote(&self.table.key);
        let present: Vec<String> = self.columns.iter().filter(|c| rows.iter().any(|r| r.contains_key(c.as_str()))).cloned().collect();
        let mut tx = self.conn.start_transaction(TxOpts::default()).await.map_err(classify)?;
        if !rows.is_empty() {
            let list = present.iter().map(|c| quote(c)).collect::<Vec<_>>().join(", ");
            let one = format!("({})", vec!["?"; present.len()].join(", "));
            let updates: Vec<String> = present.iter().filter(|c| **c != self.table.key).map(|c| format!("{0} = VALUES({0})", quote(c))).collect();
            let on_duplicate = if updates.is_empty() { format!("{key} = {key}") } else { updates.join(", ") };
            let sql = format!("INSERT INTO {table} ({list}) VALUES {} ON DUPLICATE KEY UPDATE {on_duplicate}", vec![one; rows.len()].join(", "));
            let params: Vec<SqlValue> = rows.iter().flat_map(|r| present.iter().map(|c| r.get(c).map_or(SqlValue::NULL, sql_value))).collect();
            tx.exec_drop(sql, params).await.map_err(classify)?;
        }
        for (ids, soft) in [(&hard, false), (&soft, true)] {
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
