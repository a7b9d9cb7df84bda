//! PostgreSQL through tokio-postgres: the server writes each row as JSON itself (`row_to_json`), so
//! numbers, timestamps (ISO 8601, UTC), arrays and json/jsonb columns arrive exactly as PostgreSQL
//! renders them, and the record stays the server's bytes. Only bytea needs a touch: PostgreSQL writes it
//! as `\x` hex, we give base64 like every other source.

use base64::Engine as _;
use bytes::Bytes;
use futures::{TryStreamExt, pin_mut};
use serde_json::Value;
use tokio_postgres::types::Type;
use tokio_postgres::{Client, NoTls};

use super::Inner;
use crate::sources::formats::{ChunkWriter, EventSender, ReadError};
use crate::sources::{RawRecord, SourceError, SourceEvent};

async fn connect(inner: &Inner) -> Result<Client, SourceError> {
    let (client, connection) = tokio_postgres::connect(inner.url.as_str(), NoTls).await.map_err(|e| sql_error(inner, e))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client.batch_execute("SET TIME ZONE 'UTC'").await.map_err(|e| sql_error(inner, e))?;
    Ok(client)
}

fn sql_error(inner: &Inner, error: tokio_postgres::Error) -> SourceError {
    let url = inner.shown.clone();
    if let Some(db) = error.as_db_error() {
        let code = db.code().code();
        // Class 28: invalid authorization; 3D000: no such database.
        return if code.starts_with("28") {
            SourceError::Auth { url, reason: db.message().to_string() }
        } else {
            SourceError::Protocol { url, reason: format!("PostgreSQL error {code}: {}", db.message()) }
        };
    }
    let reason = std::error::Error::source(&error).map_or_else(|| error.to_string(), |s| format!("{error}: {s}"));
    if error.is_closed() || reason.contains("connect") {
        SourceError::Connect { url, reason }
    } else {
        SourceError::Protocol { url, reason }
    }
}

pub(super) async fn check(inner: &Inner) -> Result<String, SourceError> {
    let client = connect(inner).await?;
    let row = client.query_one("SELECT version()", &[]).await.map_err(|e| sql_error(inner, e))?;
    if inner.table.is_some() || inner.query.is_some() {
        client.prepare(&format!("SELECT * FROM {} LIMIT 0", inner.rows()?)).await.map_err(|e| sql_error(inner, e))?;
    }
    let version: String = row.get(0);
    Ok(version.split(" on ").next().unwrap_or(&version).to_string())
}

pub(super) async fn feed(inner: &Inner, since: Option<String>, tx: &EventSender) -> Result<(), ReadError> {
    let client = connect(inner).await?;
    let fail = |e| ReadError::Failed(sql_error(inner, e));
    let from = inner.rows()?;
    // The columns first: which are bytea, and the cursor column's type to compare the saved text with.
    let shape = client.prepare(&format!("SELECT * FROM {from} LIMIT 0")).await.map_err(fail)?;
    let bytea: Vec<String> = shape.columns().iter().filter(|c| *c.type_() == Type::BYTEA).map(|c| c.name().to_string()).collect();
    let mut sql = String::from("SELECT row_to_json(q)::text");
    let mut params: Vec<String> = Vec::new();
    if let Some(column) = &inner.cursor_column {
        let Some(found) = shape.columns().iter().find(|c| c.name() == column) else {
            return Err(ReadError::Failed(SourceError::Config(format!("cursorColumn `{column}` is not a column of {}", inner.target()))));
        };
        let quoted = inner.quote(column);
        sql.push_str(&format!(", q.{quoted}::text FROM {from}"));
        if let Some(since) = &since {
            sql.push_str(&format!(" WHERE q.{quoted} >= $1::text::{}", found.type_().name()));
            params.push(since.clone());
            tx.send(Ok(SourceEvent::Incremental(format!("rows with {column} at or past {since}"))))
                .await
                .map_err(|_| ReadError::Stopped)?;
        }
        sql.push_str(&format!(" ORDER BY q.{quoted}"));
    } else {
        sql.push_str(&format!(" FROM {from}"));
    }
    let statement = client.prepare(&sql).await.map_err(fail)?;
    let rows = client.query_raw(&statement, params.iter()).await.map_err(fail)?;
    pin_mut!(rows);
    let mut last_cursor: Option<String> = None;
    let mut out = ChunkWriter::new(tx, inner.target(), "row");
    let mut number = 0u64;
    while let Some(row) = rows.try_next().await.map_err(fail)? {
        number += 1;
        let text: &str = row.get(0);
        if inner.cursor_column.is_some()
            && let Some(value) = row.get::<_, Option<&str>>(1)
        {
            last_cursor = Some(value.to_string());
        }
        let record = if bytea.is_empty() { RawRecord::Json(Bytes::copy_from_slice(text.as_bytes())) } else { with_base64(text, &bytea) };
        out.push_async(record, number).await?;
    }
    out.flush_async().await?;
    if let Some(cursor) = last_cursor.or(since).and_then(|value| inner.cursor_text(value)) {
        tx.send(Ok(SourceEvent::Cursor(cursor))).await.map_err(|_| ReadError::Stopped)?;
    }
    Ok(())
}

/// The row with its bytea columns' `\x` hex rewritten as base64.
fn with_base64(text: &str, bytea: &[String]) -> RawRecord {
    let mut value: Value = match serde_json::from_str(text) {
        Ok(value) => value,
        Err(e) => return RawRecord::Broken(format!("PostgreSQL sent a row that is not JSON: {e}")),
    };
    for column in bytea {
        if let Some(slot) = value.get_mut(column)
            && let Some(hex) = slot.as_str().and_then(|s| s.strip_prefix("\\x"))
            && let Some(bytes) = decode_hex(hex)
        {
            *slot = Value::String(base64::engine::general_purpose::STANDARD.encode(bytes));
        }
    }
    RawRecord::Value(value)
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok()).collect()
}
