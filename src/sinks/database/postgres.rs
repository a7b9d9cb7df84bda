//! PostgreSQL: a batch travels as one jsonb parameter, spread into rows by `jsonb_populate_recordset`,
//! so the server converts each value to its column's type and a batch is one statement whatever its
//! size; upserts are `INSERT … ON CONFLICT (key) DO UPDATE`, deletes `DELETE … WHERE key = ANY($1)`.

use std::collections::BTreeMap;

use serde_json::Value;
use tokio_postgres::{Client, NoTls};

use super::{check_columns, row_of, ColumnType, Connection, Table, WriteError, DELETED_AT};
use crate::sinks::{Op, SinkError};

pub struct Pg {
    client: Client,
    table: Table,
    /// The table's columns, known after `prepare`.
    columns: Vec<String>,
}

fn quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

impl Pg {
    pub async fn connect(table: Table) -> Result<Pg, SinkError> {
        let (client, connection) = tokio_postgres::connect(table.url.as_str(), NoTls)
            .await
            .map_err(|e| SinkError::Stopped(format!("cannot connect to {}: {e}", table.shown)))?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Pg { client, table, columns: Vec::new() })
    }

    fn qualified(&self) -> String {
        match &self.table.schema {
            Some(schema) => format!("{}.{}", quote(schema), quote(&self.table.name)),
            None => quote(&self.table.name),
        }
    }

    async fn existing_columns(&self) -> Result<Vec<String>, SinkError> {
        let rows = self
            .client
            .query(
                "SELECT column_name::text FROM information_schema.columns WHERE table_schema = COALESCE($1, current_schema()) \
                 AND table_name = $2 ORDER BY ordinal_position",
                &[&self.table.schema, &self.table.name],
            )
            .await
            .map_err(|e| SinkError::Stopped(format!("{}: {e}", self.table.shown)))?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }
}

fn sql_type(kind: ColumnType) -> &'static str {
    match kind {
        ColumnType::Text => "text",
        ColumnType::Integer => "bigint",
        ColumnType::Float => "double precision",
        ColumnType::Boolean => "boolean",
        ColumnType::Json => "jsonb",
    }
}

/// A failed statement: a data error (class 22, 23: a value or constraint) fails rows, anything else
/// the run.
fn classify(error: tokio_postgres::Error) -> WriteError {
    match error.as_db_error() {
        Some(db) if db.code().code().starts_with("22") || db.code().code().starts_with("23") => WriteError::Rejected(db.message().to_string()),
        Some(db) => WriteError::Broken(format!("PostgreSQL error {}: {}", db.code().code(), db.message())),
        None => WriteError::Broken(error.to_string()),
    }
}

impl Connection for Pg {
    async fn prepare(&mut self, columns: &BTreeMap<String, ColumnType>, soft: bool) -> Result<(), SinkError> {
        let mut existing = self.existing_columns().await?;
        if existing.is_empty() {
            if !self.table.create {
                return Err(SinkError::Stopped(format!("table {} does not exist in {} (set `createTable: true` to create it)", self.table.name, self.table.shown)));
            }
            let mut defs = vec![format!("{} text PRIMARY KEY", quote(&self.table.key))];
            defs.extend(columns.iter().filter(|(c, _)| **c != self.table.key).map(|(c, t)| format!("{} {}", quote(c), sql_type(*t))));
            defs.push(format!("{} timestamptz", quote(DELETED_AT)));
            let ddl = format!("CREATE TABLE IF NOT EXISTS {} ({})", self.qualified(), defs.join(", "));
            self.client.batch_execute(&ddl).await.map_err(|e| SinkError::Stopped(format!("cannot create table {}: {e}", self.table.name)))?;
            existing = self.existing_columns().await?;
        }
        check_columns(&self.table, &existing, columns, soft)?;
        self.columns = existing;
        Ok(())
    }

    async fn apply(&mut self, ops: &[&Op], dry_run: bool) -> Result<(), WriteError> {
        let with_deleted_at = self.columns.iter().any(|c| c == DELETED_AT);
        let rows: Vec<Value> = ops.iter().filter_map(|op| row_of(op, &self.table.key, with_deleted_at)).map(Value::Object).collect();
        let (mut hard, mut soft) = (Vec::new(), Vec::new());
        for op in ops {
            if let Op::Delete { origin_id, soft: is_soft, .. } = op {
                if *is_soft { soft.push(origin_id.clone()) } else { hard.push(origin_id.clone()) }
            }
        }
        let table = self.qualified();
        let key = quote(&self.table.key);
        let transaction = self.client.transaction().await.map_err(classify)?;
        if !rows.is_empty() {
            // Only the columns the batch carries: a field no record sets keeps its value.
            let mut present: Vec<&String> = self.columns.iter().filter(|c| rows.iter().any(|r| r.get(c.as_str()).is_some())).collect();
            present.dedup();
            let list = present.iter().map(|c| quote(c)).collect::<Vec<_>>().join(", ");
            let updates = present.iter().filter(|c| ***c != self.table.key).map(|c| format!("{0} = EXCLUDED.{0}", quote(c))).collect::<Vec<_>>();
            let on_conflict = if updates.is_empty() { "DO NOTHING".to_string() } else { format!("DO UPDATE SET {}", updates.join(", ")) };
            let sql = format!("INSERT INTO {table} ({list}) SELECT {list} FROM jsonb_populate_recordset(NULL::{table}, $1::jsonb) ON CONFLICT ({key}) {on_conflict}");
            transaction.execute(&sql, &[&Value::Array(rows)]).await.map_err(classify)?;
        }
        if !hard.is_empty() {
            transaction.execute(&format!("DELETE FROM {table} WHERE {key}::text = ANY($1::text[])"), &[&hard]).await.map_err(classify)?;
        }
        if !soft.is_empty() {
            let sql = format!("UPDATE {table} SET {} = now() WHERE {key}::text = ANY($1::text[])", quote(DELETED_AT));
            transaction.execute(&sql, &[&soft]).await.map_err(classify)?;
        }
        if dry_run { transaction.rollback().await.map_err(classify) } else { transaction.commit().await.map_err(classify) }
    }

    async fn keys(&mut self) -> Result<Vec<String>, SinkError> {
        if self.existing_columns().await?.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!("SELECT {}::text FROM {}", quote(&self.table.key), self.qualified());
        let rows = self.client.query(&sql, &[]).await.map_err(|e| SinkError::Stopped(format!("{}: {e}", self.table.shown)))?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }
}
