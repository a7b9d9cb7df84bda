//! The state's own tables: `jobs`, `contracts`, `calls`.

use std::sync::Arc;

use arrow::array::{ArrayRef, FixedSizeBinaryArray, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::streaming::StreamingTable;
use datafusion::datasource::MemTable;
use datafusion::execution::TaskContext;
use datafusion::physical_plan::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use datafusion::prelude::SessionContext;
use serde::Serialize;

use super::SqlError;
use crate::store::{ContractStore, StateDir};

pub async fn register_tables(ctx: &SessionContext, state: &StateDir) -> Result<(), SqlError> {
    let jobs = state.jobs()?.list(None, usize::MAX >> 1)?;
    ctx.register_table("jobs", Arc::new(from_rows(jobs_schema(), &jobs)?))?;
    let calls = state.calls()?;
    let mut recorded = Vec::new();
    let mut sources: Vec<String> = calls.totals()?.into_iter().map(|t| t.source).collect();
    sources.dedup();
    for source in &sources {
        let query = crate::store::calls::CallQuery { source, job: None, errors: false, limit: usize::MAX >> 1 };
        recorded.extend(calls.list(&query)?);
    }
    ctx.register_table("calls", Arc::new(from_rows(calls_schema(), &recorded)?))?;
    let names = state.contract_store().names().await?;
    let partitions: Vec<Arc<dyn PartitionStream>> = names
        .into_iter()
        .map(|sync| Arc::new(Contracts { store: state.contract_store().clone(), sync, schema: contracts_schema() }) as _)
        .collect();
    ctx.register_table("contracts", Arc::new(StreamingTable::try_new(contracts_schema(), partitions)?))?;
    Ok(())
}

fn text(name: &str) -> Field {
    Field::new(name, DataType::Utf8, true)
}

fn count(name: &str) -> Field {
    Field::new(name, DataType::UInt64, true)
}

fn jobs_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        text("id"),
        text("synchronization"),
        text("status"),
        Field::new("force_full_sync", DataType::Boolean, true),
        Field::new("dry_run", DataType::Boolean, true),
        text("created_at"),
        text("started_at"),
        text("completed_at"),
        Field::new("duration_seconds", DataType::Float64, true),
        count("found"),
        count("created"),
        count("updated"),
        count("unchanged"),
        count("skipped"),
        count("deleted"),
        count("failed"),
        text("error"),
        text("error_category"),
    ]))
}

fn calls_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        text("source"),
        Field::new("seq", DataType::Int64, true),
        text("job"),
        text("time"),
        text("method"),
        text("url"),
        Field::new("status", DataType::UInt64, true),
        count("duration_ms"),
        count("bytes_in"),
        count("bytes_out"),
        text("error"),
    ]))
}

fn contracts_schema() -> SchemaRef {
    let mut fields = vec![text("synchronization")];
    fields.extend(crate::diff::contracts::schema().fields().iter().map(|f| {
        // Ids and hashes as text, the way the API and the console show them.
        match f.name().as_str() {
            "target_id" | "origin_hash" => text(f.name()),
            _ => f.as_ref().clone(),
        }
    }));
    Arc::new(Schema::new(fields))
}

/// Rows (anything serializable) as a table in memory, decoded into `schema` (fields it lacks are
/// left out, columns the rows lack are null).
fn from_rows<T: Serialize>(schema: SchemaRef, rows: &[T]) -> Result<MemTable, SqlError> {
    let decode = |e: arrow::error::ArrowError| SqlError::Query(e.to_string());
    let mut decoder = arrow::json::ReaderBuilder::new(Arc::clone(&schema)).build_decoder().map_err(decode)?;
    let mut batches = Vec::new();
    for chunk in rows.chunks(8192) {
        decoder.serialize(chunk).map_err(decode)?;
        if let Some(batch) = decoder.flush().map_err(decode)? {
            batches.push(batch);
        }
    }
    Ok(MemTable::try_new(schema, vec![batches])?)
}

/// One synchronization's contract table, read when the query reaches it.
#[derive(Debug)]
struct Contracts {
    store: ContractStore,
    sync: String,
    schema: SchemaRef,
}

impl PartitionStream for Contracts {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let (store, sync, schema) = (self.store.clone(), self.sync.clone(), Arc::clone(&self.schema));
        let batches = async move {
            let name = sync.clone();
            let read = move |reader: arrow::ipc::reader::FileReader<Box<dyn crate::store::ReadSeek>>| {
                let mut out = Vec::new();
                for batch in reader {
                    let batch = batch.map_err(|source| crate::store::StoreError::Arrow { sync: name.clone(), source })?;
                    out.push(batch);
                }
                Ok(out)
            };
            let (batches, _) = store.read(&sync, read).await.map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))?;
            let out: Result<Vec<RecordBatch>, _> =
                batches.unwrap_or_default().iter().map(|batch| with_synchronization(&schema, &sync, batch)).collect();
            out.map_err(|e| datafusion::error::DataFusionError::ArrowError(Box::new(e), None))
        };
        let stream = futures::stream::once(batches).flat_map(|result: Result<Vec<RecordBatch>, datafusion::error::DataFusionError>| {
            let items: Vec<Result<RecordBatch, datafusion::error::DataFusionError>> = match result {
                Ok(batches) => batches.into_iter().map(Ok).collect(),
                Err(error) => vec![Err(error)],
            };
            futures::stream::iter(items)
        });
        Box::pin(RecordBatchStreamAdapter::new(Arc::clone(&self.schema), stream))
    }
}

use futures::StreamExt;

/// A saved contract batch as the `contracts` table's rows: the synchronization first, ids as text.
fn with_synchronization(schema: &SchemaRef, sync: &str, batch: &RecordBatch) -> Result<RecordBatch, arrow::error::ArrowError> {
    let rows = batch.num_rows();
    let mut columns: Vec<ArrayRef> = vec![Arc::new(StringArray::from(vec![sync; rows]))];
    for field in &schema.fields()[1..] {
        let column =
            batch.column_by_name(field.name()).ok_or_else(|| arrow::error::ArrowError::SchemaError(format!("no `{}`", field.name())))?;
        columns.push(match field.name().as_str() {
            "target_id" => hex_column(column, true),
            "origin_hash" => hex_column(column, false),
            _ => Arc::clone(column),
        });
    }
    RecordBatch::try_new(Arc::clone(schema), columns)
}

fn hex_column(column: &ArrayRef, uuid: bool) -> ArrayRef {
    let Some(bytes) = column.as_any().downcast_ref::<FixedSizeBinaryArray>() else { return Arc::clone(column) };
    let text: StringArray = bytes
        .iter()
        .map(|value| {
            value.map(|b| match (uuid, uuid::Uuid::from_slice(b)) {
                (true, Ok(id)) => id.to_string(),
                _ => b.iter().map(|x| format!("{x:02x}")).collect(),
            })
        })
        .collect();
    Arc::new(text)
}
