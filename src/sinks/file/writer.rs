//! Rows into bytes, per format: NDJSON (one object a line), CSV (a header of the first rows' fields;
//! nested values as JSON text) and Parquet (an Arrow schema inferred from the first rows, a row group per
//! batch). Each hands back the bytes it has ready, so an upload streams instead of holding the file.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::json::reader::{ReaderBuilder, infer_json_schema_from_iterator};
use parquet::arrow::ArrowWriter;
use serde_json::{Map, Value};

use super::Compression;
use crate::config::FileFormat;

/// A format's rows, gzip-compressed on the way out when asked (NDJSON and CSV; Parquet compresses its
/// own pages).
pub struct Output {
    rows: RowWriter,
    gzip: Option<flate2::write::GzEncoder<Vec<u8>>>,
}

impl Output {
    pub fn new(format: FileFormat, compression: Compression) -> Result<Output, String> {
        let gzip = (compression == Compression::Gzip && format != FileFormat::Parquet)
            .then(|| flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default()));
        Ok(Output { rows: RowWriter::new(format, compression)?, gzip })
    }

    pub fn write(&mut self, rows: &[Map<String, Value>]) -> Result<(), String> {
        self.rows.write(rows)
    }

    /// The bytes ready to upload.
    pub fn take(&mut self) -> Result<Vec<u8>, String> {
        let bytes = self.rows.take();
        match &mut self.gzip {
            None => Ok(bytes),
            Some(encoder) => {
                std::io::Write::write_all(encoder, &bytes).map_err(|e| e.to_string())?;
                Ok(std::mem::take(encoder.get_mut()))
            }
        }
    }

    /// The file's last bytes.
    pub fn finish(mut self) -> Result<Vec<u8>, String> {
        let mut last = self.take()?;
        let tail = self.rows.finish()?;
        match self.gzip {
            None => last.extend(tail),
            Some(mut encoder) => {
                std::io::Write::write_all(&mut encoder, &tail).map_err(|e| e.to_string())?;
                last.extend(encoder.finish().map_err(|e| e.to_string())?);
            }
        }
        Ok(last)
    }
}

pub enum RowWriter {
    Ndjson(Vec<u8>),
    /// `columns`: the header, fixed by the first rows and written once.
    Csv {
        out: Vec<u8>,
        columns: Option<Vec<String>>,
    },
    Parquet {
        writer: Option<Box<ArrowWriter<Vec<u8>>>>,
        schema: Option<SchemaRef>,
        compression: Compression,
    },
}

impl RowWriter {
    fn new(format: FileFormat, compression: Compression) -> Result<RowWriter, String> {
        match format {
            FileFormat::Ndjson => Ok(RowWriter::Ndjson(Vec::new())),
            FileFormat::Csv => Ok(RowWriter::Csv { out: Vec::new(), columns: None }),
            FileFormat::Parquet => Ok(RowWriter::Parquet { writer: None, schema: None, compression }),
            other => Err(format!("a file target writes ndjson, csv or parquet, not {other:?}")),
        }
    }

    /// Adds rows. The first rows fix a CSV header and a Parquet schema: a later field they lack is
    /// left out, a value of another type fails the batch.
    fn write(&mut self, rows: &[Map<String, Value>]) -> Result<(), String> {
        match self {
            RowWriter::Ndjson(out) => {
                for row in rows {
                    serde_json::to_writer(&mut *out, row).map_err(|e| e.to_string())?;
                    out.push(b'\n');
                }
                Ok(())
            }
            RowWriter::Csv { out, columns } => {
                let mut csv = ::csv::Writer::from_writer(std::mem::take(out));
                if columns.is_none() {
                    let mut names: Vec<String> = Vec::new();
                    for row in rows {
                        names.extend(row.keys().filter(|k| !names.contains(k)).cloned().collect::<Vec<_>>());
                    }
                    csv.write_record(names.iter()).map_err(|e| e.to_string())?;
                    *columns = Some(names);
                }
                for row in rows {
                    let fields = columns.iter().flatten().map(|c| match row.get(c) {
                        None | Some(Value::Null) => String::new(),
                        Some(Value::String(s)) => s.clone(),
                        Some(other) => other.to_string(),
                    });
                    csv.write_record(fields).map_err(|e| e.to_string())?;
                }
                *out = csv.into_inner().map_err(|e| e.to_string())?;
                Ok(())
            }
            RowWriter::Parquet { writer, schema, compression } => {
                if rows.is_empty() {
                    return Ok(());
                }
                let schema = match schema {
                    Some(schema) => Arc::clone(schema),
                    None => {
                        let inferred = infer_json_schema_from_iterator(rows.iter().map(|r| Ok(Value::Object(r.clone()))))
                            .map_err(|e| e.to_string())?;
                        let inferred = Arc::new(inferred);
                        *schema = Some(Arc::clone(&inferred));
                        let codec = match compression {
                            Compression::None => parquet::basic::Compression::UNCOMPRESSED,
                            Compression::Snappy => parquet::basic::Compression::SNAPPY,
                            Compression::Gzip => parquet::basic::Compression::GZIP(Default::default()),
                            Compression::Zstd => parquet::basic::Compression::ZSTD(Default::default()),
                        };
                        let properties = parquet::file::properties::WriterProperties::builder().set_compression(codec).build();
                        *writer = Some(Box::new(
                            ArrowWriter::try_new(Vec::new(), Arc::clone(&inferred), Some(properties)).map_err(|e| e.to_string())?,
                        ));
                        inferred
                    }
                };
                let mut decoder =
                    ReaderBuilder::new(schema).with_batch_size(rows.len().max(1)).build_decoder().map_err(|e| e.to_string())?;
                decoder.serialize(rows).map_err(|e| e.to_string())?;
                let Some(batch) = decoder.flush().map_err(|e| e.to_string())? else { return Ok(()) };
                let writer = writer.as_mut().expect("made with the schema");
                writer.write(&batch).map_err(|e| e.to_string())?;
                writer.flush().map_err(|e| e.to_string())
            }
        }
    }

    fn take(&mut self) -> Vec<u8> {
        match self {
            RowWriter::Ndjson(out) => std::mem::take(out),
            RowWriter::Csv { out, .. } => std::mem::take(out),
            RowWriter::Parquet { writer: Some(writer), .. } => std::mem::take(writer.inner_mut()),
            RowWriter::Parquet { writer: None, .. } => Vec::new(),
        }
    }

    /// The file's last bytes (Parquet's footer).
    fn finish(self) -> Result<Vec<u8>, String> {
        match self {
            RowWriter::Parquet { writer: Some(writer), .. } => writer.into_inner().map_err(|e| e.to_string()),
            RowWriter::Csv { out, .. } => Ok(out),
            RowWriter::Ndjson(out) => Ok(out),
            RowWriter::Parquet { writer: None, .. } => Ok(Vec::new()),
        }
    }
}
