//! Parquet, read from its object store a row group at a time through the arrow reader, so columns
//! arrive typed; each batch is written as JSON lines whose slices become the records.

use std::ops::Range;
use std::sync::Arc;

use arrow::json::writer::{LineDelimited, WriterBuilder};
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::arrow_reader::ArrowReaderOptions;
use parquet::arrow::async_reader::{AsyncFileReader, ParquetRecordBatchStreamBuilder};
use parquet::errors::ParquetError;
use parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};

use super::{CHUNK_RECORDS, EventSender, ReadError};
use crate::sources::{Chunk, RawRecord, SourceError, SourceEvent};

pub async fn read_parquet(store: Arc<dyn ObjectStore>, path: &Path, size: u64, name: &str, tx: &EventSender) -> Result<(), ReadError> {
    let fail = |reason: String| ReadError::Failed(SourceError::File { file: name.to_string(), reason });
    let reader = StoreReader { store, path: path.clone(), size };
    let builder = ParquetRecordBatchStreamBuilder::new(reader).await.map_err(|e| fail(format!("not a Parquet file: {e}")))?;
    let mut batches = builder.with_batch_size(CHUNK_RECORDS).build().map_err(|e| fail(e.to_string()))?;
    let mut row = 0u64;
    while let Some(batch) = batches.next().await {
        let batch = batch.map_err(|e| fail(format!("cannot read: {e}")))?;
        let mut writer = WriterBuilder::new().with_explicit_nulls(true).build::<_, LineDelimited>(Vec::new());
        writer.write(&batch).map_err(|e| fail(format!("cannot convert to JSON: {e}")))?;
        writer.finish().map_err(|e| fail(format!("cannot convert to JSON: {e}")))?;
        let text = Bytes::from(writer.into_inner());
        let mut records = Vec::with_capacity(batch.num_rows());
        let mut lines = Vec::with_capacity(batch.num_rows());
        let mut start = 0;
        for end in memchr_newlines(&text) {
            row += 1;
            records.push(RawRecord::Json(text.slice(start..end)));
            lines.push(row);
            start = end + 1;
        }
        let chunk = Chunk { records, origin: name.to_string(), lines, unit: "row" };
        tx.send(Ok(SourceEvent::Chunk(chunk))).await.map_err(|_| ReadError::Stopped)?;
    }
    Ok(())
}

/// Byte ranges of one object, as the Parquet reader asks for them (footer first, then column chunks).
struct StoreReader {
    store: Arc<dyn ObjectStore>,
    path: Path,
    size: u64,
}

fn external(error: object_store::Error) -> ParquetError {
    ParquetError::External(Box::new(error))
}

impl AsyncFileReader for StoreReader {
    fn get_bytes(&mut self, range: Range<u64>) -> BoxFuture<'_, parquet::errors::Result<Bytes>> {
        async move { self.store.get_range(&self.path, range).await.map_err(external) }.boxed()
    }

    fn get_byte_ranges(&mut self, ranges: Vec<Range<u64>>) -> BoxFuture<'_, parquet::errors::Result<Vec<Bytes>>> {
        async move { self.store.get_ranges(&self.path, &ranges).await.map_err(external) }.boxed()
    }

    fn get_metadata<'a>(
        &'a mut self,
        _options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, parquet::errors::Result<Arc<ParquetMetaData>>> {
        async move {
            let size = self.size;
            let metadata = ParquetMetaDataReader::new().load_and_finish(self, size).await?;
            Ok(Arc::new(metadata))
        }
        .boxed()
    }
}

fn memchr_newlines(text: &[u8]) -> impl Iterator<Item = usize> + '_ {
    text.iter().enumerate().filter(|(_, b)| **b == b'\n').map(|(i, _)| i)
}
