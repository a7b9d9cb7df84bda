//! The register's schemas as tables: `register.schema`, a row per live object.
//!
//! Columns: `_id`, `_origin_id`, `_synchronization`, `_source`, `_created_at`, `_updated_at`,
//! `_object` (the object as JSON text), then one per top-level field, typed from the first objects
//! (up to [`SAMPLE`]): integers as BIGINT, other numbers as DOUBLE, booleans, text; nested values and
//! fields of mixed types as JSON text. A later value that does not fit its column's type is NULL
//! there (the object in `_object` still has it). The table streams from SQLite [`PAGE`] objects at a
//! time.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::MemorySchemaProvider;
use datafusion::catalog::streaming::StreamingTable;
use datafusion::common::TableReference;
use datafusion::error::DataFusionError;
use datafusion::execution::TaskContext;
use datafusion::physical_plan::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use datafusion::prelude::SessionContext;
use serde_json::{Map, Value};

use super::SqlError;
use crate::store::StateDir;
use crate::store::register::StoredObject;

/// Objects a column's type is read from.
const SAMPLE: usize = 1_000;
/// Objects read from SQLite at a time.
const PAGE: usize = 8_192;
/// Columns the register adds; an object field of the same name is left to `_object`.
const OWN: [&str; 7] = ["_id", "_origin_id", "_synchronization", "_source", "_created_at", "_updated_at", "_object"];

pub async fn register_tables(ctx: &SessionContext, state: &StateDir) -> Result<(), SqlError> {
    let store = state.register()?;
    for (register, schema) in store.schemas()? {
        let sample: Vec<Value> = store.page_after(&register, &schema, 0, SAMPLE)?.into_iter().map(|(_, o)| o.object).collect();
        let columns = columns_of(&sample);
        let catalog = ctx.catalog("datafusion").ok_or_else(|| SqlError::Query("no default catalog".into()))?;
        if catalog.schema(&register).is_none() {
            catalog.register_schema(&register, Arc::new(MemorySchemaProvider::new()))?;
        }
        let table = Arc::new(Objects { state: state.clone(), register: register.clone(), schema: schema.clone(), columns });
        let arrow = Arc::clone(&table.columns);
        ctx.register_table(TableReference::partial(register, schema), Arc::new(StreamingTable::try_new(arrow, vec![table])?))?;
    }
    Ok(())
}

/// The table's columns, from a sample of its objects.
fn columns_of(sample: &[Value]) -> SchemaRef {
    let mut kinds: BTreeMap<&str, DataType> = BTreeMap::new();
    let mut order: Vec<&str> = Vec::new();
    for object in sample.iter().filter_map(Value::as_object) {
        for (key, value) in object {
            let kind = match value {
                Value::Null => continue,
                Value::Bool(_) => DataType::Boolean,
                Value::Number(n) if n.is_i64() => DataType::Int64,
                Value::Number(_) => DataType::Float64,
                Value::String(_) => DataType::Utf8,
                Value::Array(_) | Value::Object(_) => DataType::LargeUtf8,
            };
            match kinds.get(key.as_str()) {
                None => {
                    order.push(key);
                    kinds.insert(key, kind);
                }
                Some(seen) if *seen == kind => {}
                Some(DataType::Int64) if kind == DataType::Float64 => {
                    kinds.insert(key, DataType::Float64);
                }
                Some(DataType::Float64) if kind == DataType::Int64 => {}
                // Mixed kinds: the value's JSON text.
                Some(_) => {
                    kinds.insert(key, DataType::LargeUtf8);
                }
            }
        }
    }
    let mut fields: Vec<Field> = OWN.iter().map(|name| Field::new(*name, DataType::Utf8, true)).collect();
    fields.extend(order.into_iter().filter(|k| !OWN.contains(k)).map(|k| {
        // JSON text travels as ordinary text; LargeUtf8 only marked "write it as JSON".
        let kind = if kinds[k] == DataType::LargeUtf8 { DataType::Utf8 } else { kinds[k].clone() };
        Field::new(k, kind, true).with_metadata(if kinds[k] == DataType::LargeUtf8 { json_marker() } else { Default::default() })
    }));
    Arc::new(Schema::new(fields))
}

fn json_marker() -> std::collections::HashMap<String, String> {
    [("syncline.json".to_string(), "true".to_string())].into()
}

/// One register schema's objects.
#[derive(Debug)]
struct Objects {
    state: StateDir,
    register: String,
    schema: String,
    columns: SchemaRef,
}

impl PartitionStream for Objects {
    fn schema(&self) -> &SchemaRef {
        &self.columns
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let (state, register, schema, columns) =
            (self.state.clone(), self.register.clone(), self.schema.clone(), Arc::clone(&self.columns));
        let external = |e: crate::store::StoreError| DataFusionError::External(Box::new(e));
        // (the store, the last sequence number read), or None once the schema is read to the end.
        let start = state.register().map_err(external);
        let pages = futures::stream::unfold(Some((start, 0i64)), move |cursor| {
            let (register, schema, columns) = (register.clone(), schema.clone(), Arc::clone(&columns));
            async move {
                let (store, after) = cursor?;
                let store = match store {
                    Ok(store) => store,
                    Err(error) => return Some((Err(error), None)),
                };
                let read = tokio::task::spawn_blocking(move || {
                    let page = store.page_after(&register, &schema, after, PAGE);
                    (store, page)
                })
                .await;
                let (store, page) = match read {
                    Ok(read) => read,
                    Err(error) => return Some((Err(DataFusionError::External(Box::new(error))), None)),
                };
                let page = match page {
                    Ok(page) if page.is_empty() => return None,
                    Ok(page) => page,
                    Err(error) => return Some((Err(external(error)), None)),
                };
                let last = page.last().map_or(after, |(seq, _)| *seq);
                let batch = to_batch(&columns, page.into_iter().map(|(_, o)| o).collect());
                Some((batch, Some((Ok(store), last))))
            }
        });
        Box::pin(RecordBatchStreamAdapter::new(Arc::clone(&self.columns), pages))
    }
}

/// A page of objects as a batch of the table's columns.
fn to_batch(columns: &SchemaRef, objects: Vec<StoredObject>) -> Result<RecordBatch, DataFusionError> {
    let rows: Vec<Map<String, Value>> = objects.into_iter().map(|object| row(columns, object)).collect();
    let arrow = |e: arrow::error::ArrowError| DataFusionError::ArrowError(Box::new(e), None);
    let mut decoder = arrow::json::ReaderBuilder::new(Arc::clone(columns)).with_batch_size(PAGE).build_decoder().map_err(arrow)?;
    decoder.serialize(&rows).map_err(arrow)?;
    Ok(decoder.flush().map_err(arrow)?.unwrap_or_else(|| RecordBatch::new_empty(Arc::clone(columns))))
}

/// An object as a row of `columns`: each field in its column's type, or NULL where it does not fit.
fn row(columns: &SchemaRef, object: StoredObject) -> Map<String, Value> {
    let mut row = Map::new();
    row.insert("_id".into(), object.id.into());
    row.insert("_origin_id".into(), object.origin_id.into());
    row.insert("_synchronization".into(), object.synchronization.into());
    row.insert("_source".into(), object.source.into());
    row.insert("_created_at".into(), object.created_at.into());
    row.insert("_updated_at".into(), object.updated_at.into());
    row.insert("_object".into(), object.object.to_string().into());
    let Value::Object(fields) = object.object else { return row };
    for field in columns.fields().iter().skip(OWN.len()) {
        let Some(value) = fields.get(field.name()) else { continue };
        let json = field.metadata().contains_key("syncline.json");
        let fits = match (field.data_type(), value) {
            _ if json => Some(match value {
                Value::String(s) => Value::String(s.clone()),
                other => Value::String(other.to_string()),
            }),
            (DataType::Boolean, Value::Bool(_)) | (DataType::Utf8, Value::String(_)) => Some(value.clone()),
            (DataType::Int64, Value::Number(n)) if n.is_i64() => Some(value.clone()),
            (DataType::Float64, Value::Number(_)) => Some(value.clone()),
            _ => None,
        };
        if let Some(value) = fits {
            row.insert(field.name().clone(), value);
        }
    }
    row
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn columns_take_their_types_from_the_sample_and_mixed_ones_are_json_text() {
        let sample = [json!({"n": 1, "x": 1, "s": "a", "b": true, "o": {"k": 1}, "m": 1}), json!({"x": 2.5, "m": "two", "_id": "clash"})];
        let schema = columns_of(&sample);
        let kind = |name: &str| schema.field_with_name(name).unwrap().data_type().clone();
        assert_eq!(kind("n"), DataType::Int64);
        assert_eq!(kind("x"), DataType::Float64, "integers and decimals: decimals");
        assert_eq!(kind("s"), DataType::Utf8);
        assert_eq!(kind("b"), DataType::Boolean);
        assert!(schema.field_with_name("o").unwrap().metadata().contains_key("syncline.json"));
        assert!(schema.field_with_name("m").unwrap().metadata().contains_key("syncline.json"), "mixed kinds");
        assert_eq!(schema.fields().iter().filter(|f| f.name() == "_id").count(), 1, "the register's own column wins");
    }
}
