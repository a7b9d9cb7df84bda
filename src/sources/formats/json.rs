//! JSON files: a whole document whose records sit at `resultsPosition` (as an API page), or NDJSON, one
//! record per line, streamed. Records stay byte slices; a line that is not JSON fails when it is hashed,
//! with its line number.

use std::io::{BufRead, BufReader, Read};

use bytes::Bytes;

use super::{ChunkWriter, EventSender, FormatOptions, ReadError};
use crate::envelope;
use crate::sources::{RawRecord, SourceError, SourceEvent};

pub(super) fn read_lines(reader: impl Read, name: &str, tx: &EventSender) -> Result<(), ReadError> {
    let mut reader = BufReader::with_capacity(256 * 1024, reader);
    let mut out = ChunkWriter::new(tx, name.to_string(), "line");
    let mut line = Vec::new();
    let mut number = 0u64;
    loop {
        line.clear();
        let read = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| ReadError::Failed(SourceError::File { file: name.to_string(), reason: format!("cannot read: {e}") }))?;
        if read == 0 {
            break;
        }
        number += 1;
        let text = line.trim_ascii();
        if text.is_empty() {
            continue;
        }
        out.push(RawRecord::Json(Bytes::copy_from_slice(text)), number)?;
    }
    out.flush()
}

pub(super) fn read_document(body: Bytes, name: &str, options: &FormatOptions, tx: &EventSender) -> Result<(), ReadError> {
    let extracted = envelope::extract(&body, &options.results_position)
        .map_err(|e| ReadError::Failed(SourceError::File { file: name.to_string(), reason: format!("not valid JSON: {}", e.0) }))?;
    if let Some(warning) = extracted.warning {
        tx.blocking_send(Ok(SourceEvent::Warning(format!("{name}: {warning}")))).map_err(|_| ReadError::Stopped)?;
    }
    let mut out = ChunkWriter::new(tx, name.to_string(), "record");
    for (index, record) in extracted.records.into_iter().enumerate() {
        out.push(RawRecord::Json(record), index as u64 + 1)?;
    }
    out.flush()
}
