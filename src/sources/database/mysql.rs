//! MySQL and MariaDB through mysql_async's binary protocol: rows arrive typed and one at a time.
//! DECIMAL becomes an exact number (or its text when a double cannot hold it), DATE/DATETIME ISO 8601,
//! TIMESTAMP ISO 8601 in UTC with `Z`, binary columns base64, JSON columns objects.

use std::collections::HashSet;

use base64::Engine as _;
use mysql_async::consts::ColumnType;
use mysql_async::prelude::Queryable;
use mysql_async::{Column, Conn, Opts, OptsBuilder, Row, Value as SqlValue};
use serde_json::{Map, Value};

use super::{Inner, decimal_value};
use crate::sources::formats::{ChunkWriter, EventSender, ReadError};
use crate::sources::{RawRecord, SourceError, SourceEvent};

/// The `binary` character set: such text columns hold bytes.
const BINARY_CHARSET: u16 = 63;

async fn connect(inner: &Inner) -> Result<Conn, SourceError> {
    let opts = Opts::from_url(inner.url.as_str()).map_err(|e| SourceError::Config(format!("{}: {e}", inner.shown)))?;
    // TIMESTAMP values are read in UTC, whatever the server's zone.
    let opts = OptsBuilder::from_opts(opts).init(vec!["SET time_zone = '+00:00'"]);
    Conn::new(opts).await.map_err(|e| sql_error(inner, e))
}

fn sql_error(inner: &Inner, error: mysql_async::Error) -> SourceError {
    let url = inner.shown.clone();
    match error {
        mysql_async::Error::Io(e) => SourceError::Connect { url, reason: e.to_string() },
        // 1045: access denied; 1044: no access to the database.
        mysql_async::Error::Server(e) if matches!(e.code, 1044 | 1045 | 1698) => SourceError::Auth { url, reason: e.message },
        mysql_async::Error::Server(e) => SourceError::Protocol { url, reason: format!("MySQL error {}: {}", e.code, e.message) },
        other => SourceError::Protocol { url, reason: other.to_string() },
    }
}

pub(super) async fn check(inner: &Inner) -> Result<String, SourceError> {
    let mut conn = connect(inner).await?;
    let version: Option<String> = conn.query_first("SELECT VERSION()").await.map_err(|e| sql_error(inner, e))?;
    if inner.table.is_some() || inner.query.is_some() {
        let probe = format!("SELECT * FROM {} LIMIT 0", inner.rows()?);
        conn.query_drop(probe).await.map_err(|e| sql_error(inner, e))?;
    }
    let _ = conn.disconnect().await;
    Ok(format!("MySQL/MariaDB {}", version.unwrap_or_default()))
}

pub(super) async fn feed(inner: &Inner, since: Option<String>, tx: &EventSender) -> Result<(), ReadError> {
    let mut conn = connect(inner).await?;
    let fail = |e| ReadError::Failed(sql_error(inner, e));
    let json_columns = json_columns(inner, &mut conn).await;
    let mut sql = format!("SELECT * FROM {}", inner.rows()?);
    let mut params = Vec::new();
    if let Some(column) = &inner.cursor_column {
        if let Some(since) = &since {
            sql.push_str(&format!(" WHERE {} >= ?", inner.quote(column)));
            params.push(SqlValue::from(since.as_str()));
            tx.send(Ok(SourceEvent::Incremental(format!("rows with {column} at or past {since}"))))
                .await
                .map_err(|_| ReadError::Stopped)?;
        }
        sql.push_str(&format!(" ORDER BY {}", inner.quote(column)));
    }
    let mut last_cursor: Option<String> = None;
    {
        let mut result = conn.exec_iter(sql, params).await.map_err(fail)?;
        let mut out = ChunkWriter::new(tx, inner.target(), "row");
        let mut number = 0u64;
        while let Some(row) = result.next().await.map_err(fail)? {
            number += 1;
            let (record, cursor) = row_to_json(row, &json_columns, inner.cursor_column.as_deref());
            if cursor.is_some() {
                last_cursor = cursor;
            }
            out.push_async(RawRecord::Value(record), number).await?;
        }
        out.flush_async().await?;
    }
    let cursor = last_cursor.or(since);
    if let Some(cursor) = cursor.and_then(|value| inner.cursor_text(value)) {
        tx.send(Ok(SourceEvent::Cursor(cursor))).await.map_err(|_| ReadError::Stopped)?;
    }
    let _ = conn.disconnect().await;
    Ok(())
}

/// The JSON columns of the table read: MySQL marks them in the protocol, but MariaDB stores JSON as
/// LONGTEXT with a `json_valid` check, which only the catalogue tells.
async fn json_columns(inner: &Inner, conn: &mut Conn) -> HashSet<String> {
    let Some(table) = &inner.table else { return HashSet::new() };
    let (schema, name) = match table.rsplit_once('.') {
        Some((schema, name)) => (Some(schema.to_string()), name.to_string()),
        None => (None, table.clone()),
    };
    let sql = "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ? \
               AND (DATA_TYPE = 'json' OR EXISTS (SELECT 1 FROM information_schema.CHECK_CONSTRAINTS c \
               WHERE c.CONSTRAINT_SCHEMA = COLUMNS.TABLE_SCHEMA AND c.TABLE_NAME = COLUMNS.TABLE_NAME \
               AND c.CHECK_CLAUSE LIKE CONCAT('%json_valid(`', COLUMNS.COLUMN_NAME, '`)%')))";
    conn.exec::<String, _, _>(sql, (schema, name)).await.map(|names| names.into_iter().collect()).unwrap_or_default()
}

/// One row as a JSON object, and the cursor column's value as text for the next run's `>=`.
fn row_to_json(row: Row, json_columns: &HashSet<String>, cursor_column: Option<&str>) -> (Value, Option<String>) {
    let columns = row.columns();
    let values = row.unwrap();
    let mut object = Map::with_capacity(values.len());
    let mut cursor = None;
    for (column, value) in columns.iter().zip(values) {
        let name = column.name_str().into_owned();
        if cursor_column == Some(name.as_str()) {
            cursor = cursor_literal(&value);
        }
        let json = value_to_json(column, value, json_columns.contains(&name));
        object.insert(name, json);
    }
    (Value::Object(object), cursor)
}

fn value_to_json(column: &Column, value: SqlValue, json_text: bool) -> Value {
    let kind = column.column_type();
    match value {
        SqlValue::NULL => Value::Null,
        SqlValue::Int(i) => Value::from(i),
        SqlValue::UInt(u) => Value::from(u),
        // Through its shortest text, so FLOAT 0.1 stays 0.1 rather than 0.10000000149.
        SqlValue::Float(f) => f.to_string().parse::<f64>().ok().and_then(serde_json::Number::from_f64).map_or(Value::Null, Value::Number),
        SqlValue::Double(d) => serde_json::Number::from_f64(d).map_or(Value::Null, Value::Number),
        SqlValue::Date(y, mo, d, h, mi, s, us) => {
            let date = format!("{y:04}-{mo:02}-{d:02}");
            if kind == ColumnType::MYSQL_TYPE_DATE {
                return Value::String(date);
            }
            let fraction = if us > 0 { format!(".{us:06}") } else { String::new() };
            let zone = if kind == ColumnType::MYSQL_TYPE_TIMESTAMP { "Z" } else { "" };
            Value::String(format!("{date}T{h:02}:{mi:02}:{s:02}{fraction}{zone}"))
        }
        SqlValue::Time(negative, days, h, m, s, us) => {
            let sign = if negative { "-" } else { "" };
            let fraction = if us > 0 { format!(".{us:06}") } else { String::new() };
            Value::String(format!("{sign}{:02}:{m:02}:{s:02}{fraction}", u64::from(days) * 24 + u64::from(h)))
        }
        SqlValue::Bytes(bytes) => match kind {
            ColumnType::MYSQL_TYPE_NEWDECIMAL | ColumnType::MYSQL_TYPE_DECIMAL => decimal_value(&String::from_utf8_lossy(&bytes)),
            ColumnType::MYSQL_TYPE_JSON => {
                serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
            }
            ColumnType::MYSQL_TYPE_BIT => Value::from(bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b))),
            _ if json_text => {
                serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
            }
            _ if column.character_set() == BINARY_CHARSET => Value::String(base64::engine::general_purpose::STANDARD.encode(&bytes)),
            _ => Value::String(String::from_utf8_lossy(&bytes).into_owned()),
        },
    }
}

/// A value as the text MySQL compares with the column again (`2024-05-01 10:00:00.000000`, `42`).
fn cursor_literal(value: &SqlValue) -> Option<String> {
    match value {
        SqlValue::NULL => None,
        SqlValue::Int(i) => Some(i.to_string()),
        SqlValue::UInt(u) => Some(u.to_string()),
        SqlValue::Float(f) => Some(f.to_string()),
        SqlValue::Double(d) => Some(d.to_string()),
        SqlValue::Date(y, mo, d, h, mi, s, us) => Some(format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}.{us:06}")),
        SqlValue::Time(negative, days, h, m, s, us) => {
            Some(format!("{}{}:{m:02}:{s:02}.{us:06}", if *negative { "-" } else { "" }, u64::from(*days) * 24 + u64::from(*h)))
        }
        SqlValue::Bytes(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
    }
}
