//! PostgreSQL: a batch travels as one jsonb parameter, spread into rows by `jsonb_populate_recordset`,
//! so the server converts each value to its column's type and a batch is one statement whatever its
//! size; upserts are `INSERT … ON CONFLICT (key) DO UPDATE`, deletes `DELETE … WHERE key = ANY($1)`.

use tokio_postgres::{Client, NoTls};

use super::{Changes, ColumnType, Connection, DELETED_AT, Table, WriteError};
use crate::sinks::SinkError;

pub struct Pg {
    client: Client,
    table: Table,
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
        Ok(Pg { client, table })
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
        Some(db) if db.code().code().starts_with("22") || db.code().code().starts_with("23") => {
            WriteError::Rejected(db.message().to_string())
        }
        Some(db) => WriteError::Broken(format!("PostgreSQL error {}: {}", db.code().code(), db.message())),
        None => WriteError::Broken(error.to_string()),
    }
}

impl Connection for Pg {
    const KEY_TYPE: &'static str = "text";
    const TIMESTAMP_TYPE: &'static str = "timestamptz";

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
        self.client.batch_execute(&ddl).await.map_err(|e| SinkError::Stopped(format!("cannot create table {}: {e}", self.table.name)))
    }

    async fn apply(&mut self, changes: &Changes, dry_run: bool) -> Result<(), WriteError> {
        let table = self.qualified();
        let key = quote(&self.table.key);
        let transaction = self.client.transaction().await.map_err(classify)?;
        if !changes.rows.is_empty() {
            let list = changes.columns.iter().map(|c| quote(c)).collect::<Vec<_>>().join(", ");
            let updates = changes
                .columns
                .iter()
                .filter(|c| **c != self.table.key)
                .map(|c| format!("{0} = EXCLUDED.{0}", quote(c)))
                .collect::<Vec<_>>();
            let on_conflict = if updates.is_empty() { "DO NOTHING".to_string() } else { format!("DO UPDATE SET {}", updates.join(", ")) };
            let sql = format!(
                "INSERT INTO {table} ({list}) SELECT {list} FROM jsonb_populate_recordset(NULL::{table}, $1::jsonb) ON CONFLICT ({key}) {on_conflict}"
            );
            transaction.execute(&sql, &[&tokio_postgres::types::Json(&changes.rows)]).await.map_err(classify)?;
        }
        if !changes.deleted.is_empty() {
            transaction
                .execute(&format!("DELETE FROM {table} WHERE {key}::text = ANY($1::text[])"), &[&changes.deleted])
                .await
                .map_err(classify)?;
        }
        if !changes.soft_deleted.is_empty() {
            let sql = format!("UPDATE {table} SET {} = now() WHERE {key}::text = ANY($1::text[])", quote(DELETED_AT));
            transaction.execute(&sql, &[&changes.soft_deleted]).await.map_err(classify)?;
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
