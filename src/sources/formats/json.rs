//! JSON files: a whole document whose records sit at `resultsPosition` (as an API page), or NDJSON, one
//! record per line, streamed. Records stay byte slices; a line that is not JSON fails when it is hashed,
//! with its line number.

use std::io::{BufRead, BufReader, Read};

use bytes::Bytes;

use super::{ChunkWriter, EventSender, FormatOptions, ReadError};
use crate::envelope;
use crate::limits::OverLimit;
use crate::sources::{RawRecord, SourceError, SourceEvent};

pub(super) fn read_lines(reader: impl Read, name: &str, options: &FormatOptions, tx: &EventSender) -> Result<(), ReadError> {
    let mut reader = BufReader::with_capacity(256 * 1024, reader);
    let mut out = ChunkWriter::new(tx, name.to_string(), "line");
    let max = options.limits.max_record_bytes;
    let mut line = Vec::new();
    let mut number = 0u64;
    loop {
        line.clear();
        let read = read_line(&mut reader, &mut line, max.as_usize()).map_err(|e| super::io_failure(name, e))?;
        let Some(over) = read else { break };
        number += 1;
        if over {
            out.push(RawRecord::Broken(OverLimit::bytes("the line", "maxRecordBytes", max).to_string()), number)?;
            continue;
        }
        let mut text = line.trim_ascii();
        if number == 1 {
            // A byte-order mark before the first record (editors on Windows write one).
            text = text.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(text).trim_ascii();
        }
        if text.is_empty() {
            continue;
        }
        out.push(RawRecord::Json(Bytes::copy_from_slice(text)), number)?;
    }
    out.flush()
}

/// Reads one line into `line`, keeping at most `max` bytes of it: `None` at the end of the input,
/// `Some(true)` for a line that was longer (skipped to its end, nothing of it kept).
fn read_line(reader: &mut impl BufRead, line: &mut Vec<u8>, max: usize) -> std::io::Result<Option<bool>> {
    let (mut any, mut over) = (false, false);
    loop {
        let buffer = reader.fill_buf()?;
        if buffer.is_empty() {
            return Ok(any.then_some(over));
        }
        any = true;
        let (part, done) = match memchr::memchr(b'\n', buffer) {
            Some(at) => (&buffer[..=at], true),
            None => (buffer, false),
        };
        if !over && line.len() + part.len() > max + 1 {
            over = true;
            line.clear();
        }
        if !over {
            line.extend_from_slice(part);
        }
        let used = part.len();
        reader.consume(used);
        if done {
            return Ok(Some(over));
        }
    }
}

pub(super) fn read_document(body: Bytes, name: &str, options: &FormatOptions, tx: &EventSender) -> Result<(), ReadError> {
    let extracted = envelope::extract(&body, &options.results_position)
        .map_err(|e| ReadError::Failed(SourceError::File { file: name.to_string(), reason: format!("not valid JSON: {}", e.0) }))?;
    if let Some(warning) = extracted.warning {
        // As for an API page: records not where they should be may be records gone missing.
        tx.blocking_send(Ok(SourceEvent::Truncated(format!("{name}: {warning}; nothing is deleted this run"))))
            .map_err(|_| ReadError::Stopped)?;
    }
    let mut out = ChunkWriter::new(tx, name.to_string(), "record");
    for (index, record) in crate::sources::json_records(extracted.records, &options.limits).into_iter().enumerate() {
        out.push(record, index as u64 + 1)?;
    }
    out.flush()
}
