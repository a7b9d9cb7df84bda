//! SQL over the state with DataFusion (`syncline sql`, `POST /api/sql`, the console's query page):
//! read-only, with a row limit and a time limit, over
//!
//! - `jobs`: every job with its counts, times and error;
//! - `contracts`: every synchronization's contracts (`synchronization`, `origin_id`, `target_id`,
//!   `origin_hash`, `first_seen`, `last_seen`, `last_changed`);
//! - `calls`: the call log of every source;
//! - one table per register schema, named `register.schema` (quote names with dashes:
//!   `"pet-store".pet`): `_id`, `_origin_id`, `_synchronization`, `_source`, `_created_at`,
//!   `_updated_at`, `_object` (the whole object as JSON text), and a column per top-level field.
//!
//! Register tables stream from SQLite a page at a time and contract tables one synchronization at a
//! time, so a query holds what its plan holds (a sort, a join), within a memory pool of its own.

mod register;
mod state;

use std::sync::Arc;
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::execution::context::SQLOptions;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};
use futures::StreamExt;

use crate::store::{StateDir, StoreError};

/// A query that could not run, or ran out of its limits.
#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    /// The query itself: bad SQL, an unknown table or column, or a statement that would write.
    #[error("{0}")]
    Query(String),
    #[error("the query did not finish within {0:?}")]
    Timeout(Duration),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<datafusion::error::DataFusionError> for SqlError {
    fn from(error: datafusion::error::DataFusionError) -> SqlError {
        SqlError::Query(crate::secrets::scrub(&error.to_string()).into_owned())
    }
}

/// How much a query may take.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Rows answered, at most; more are cut off (and the answer says so).
    pub rows: usize,
    pub time: Duration,
    /// Memory the plan's operators (sorts, joins, aggregates) may hold.
    pub memory: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { rows: 10_000, time: Duration::from_secs(30), memory: 256 << 20 }
    }
}

/// A query's answer: its columns, rows in batches, and whether rows were cut off at the limit.
pub struct Answer {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
    pub truncated: bool,
}

impl Answer {
    pub fn rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }

    /// The rows as JSON objects (the API's and the console's form).
    pub fn json_rows(&self) -> Result<Vec<serde_json::Map<String, serde_json::Value>>, SqlError> {
        let mut writer = arrow::json::ArrayWriter::new(Vec::new());
        let batches: Vec<&RecordBatch> = self.batches.iter().collect();
        writer.write_batches(&batches).map_err(|e| SqlError::Query(e.to_string()))?;
        writer.finish().map_err(|e| SqlError::Query(e.to_string()))?;
        let bytes = writer.into_inner();
        if bytes.is_empty() {
            return Ok(Vec::new());
        }
        serde_json::from_slice(&bytes).map_err(|e| SqlError::Query(e.to_string()))
    }
}

/// Runs `sql` over `state`, read-only, within `limits`.
pub async fn query(state: &StateDir, sql: &str, limits: Limits) -> Result<Answer, SqlError> {
    match tokio::time::timeout(limits.time, run(state, sql, limits)).await {
        Ok(answer) => answer,
        Err(_) => Err(SqlError::Timeout(limits.time)),
    }
}

async fn run(state: &StateDir, sql: &str, limits: Limits) -> Result<Answer, SqlError> {
    let runtime = RuntimeEnvBuilder::new().with_memory_limit(limits.memory, 1.0).build_arc()?;
    let config = SessionConfig::new().with_information_schema(true).with_target_partitions(2);
    let ctx = SessionContext::new_with_config_rt(config, runtime);
    state::register_tables(&ctx, state).await?;
    register::register_tables(&ctx, state).await?;
    // Reading only: no DDL (CREATE, DROP), no DML (INSERT, COPY), no SET or other statements.
    let options = SQLOptions::new().with_allow_ddl(false).with_allow_dml(false).with_allow_statements(false);
    let frame = ctx.sql_with_options(sql, options).await?;
    let schema: SchemaRef = Arc::new(frame.schema().as_arrow().clone());
    let mut stream = frame.execute_stream().await?;
    let mut batches = Vec::new();
    let (mut rows, mut truncated) = (0usize, false);
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        let room = limits.rows - rows;
        if batch.num_rows() > room {
            batches.push(batch.slice(0, room));
            truncated = true;
            break;
        }
        rows += batch.num_rows();
        batches.push(batch);
    }
    Ok(Answer { schema, batches, truncated })
}
