//! CSV: one record per row, keyed by the header's column names. Columns are typed from a sample of the
//! first rows, as Arrow's reader does, so a column is a number in every record or in none (a postcode
//! with a leading zero stays text). A row with the wrong number of fields, or bytes that are not text in
//! the file's encoding, fails that record alone.

use std::io::Read;

use serde_json::{Map, Number, Value};

use super::{ChunkWriter, EventSender, FormatOptions, ReadError};
use crate::config::ColumnTypes;
use crate::sources::{RawRecord, SourceError};

/// Rows looked at to type the columns; they are held, then sent like the rest.
const SAMPLE_ROWS: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// No value seen yet.
    Unknown,
    Integer,
    Decimal,
    Boolean,
    Text,
}

/// Rows held while sampling stop being held past this many bytes (they are then typed from fewer).
const SAMPLE_BYTES: usize = 64 * 1024 * 1024;

pub(super) fn read(reader: impl Read, name: &str, options: &FormatOptions, tx: &EventSender) -> Result<(), ReadError> {
    let file_error = |reason: String| ReadError::Failed(SourceError::File { file: name.to_string(), reason });
    let mut rows = Rows::new(reader, options);
    let mut columns: Vec<String> = Vec::new();
    let mut sample: Vec<(u64, Result<::csv::ByteRecord, String>)> = Vec::new();
    let mut sampled_bytes = 0usize;
    if options.header {
        match rows.next().map_err(|e| super::io_failure(name, e))? {
            None => return Ok(()),
            Some((_, Ok(header))) => columns = header_names(&header),
            Some((_, Err(problem))) => return Err(file_error(format!("cannot read the header line: {problem}"))),
        }
    }
    let mut out = ChunkWriter::new(tx, name.to_string(), "line");
    let infer = options.column_types == ColumnTypes::Infer;
    let mut kinds: Vec<Kind> = Vec::new();
    let mut sampling = infer;
    while let Some((line, row)) = rows.next().map_err(|e| super::io_failure(name, e))? {
        if columns.is_empty()
            && let Ok(record) = &row
        {
            columns = (1..=record.len()).map(|i| format!("column{i}")).collect();
        }
        if sampling {
            sampled_bytes += row.as_ref().map_or(0, |r| r.as_slice().len());
            sample.push((line, row));
            if sample.len() >= SAMPLE_ROWS || sampled_bytes >= SAMPLE_BYTES {
                kinds = infer_kinds(&columns, &sample);
                sampling = false;
                for (line, row) in sample.drain(..) {
                    out.push(to_record(row, &columns, &kinds, infer), line)?;
                }
            }
            continue;
        }
        out.push(to_record(row, &columns, &kinds, infer), line)?;
    }
    if sampling {
        kinds = infer_kinds(&columns, &sample);
        for (line, row) in sample.drain(..) {
            out.push(to_record(row, &columns, &kinds, infer), line)?;
        }
    }
    out.flush()
}

/// CSV rows read within `maxRecordBytes` and `maxFieldBytes`: a row over either is skipped to its end
/// and comes out as that row's error, without ever being held whole.
struct Rows<R> {
    input: std::io::BufReader<WithoutBom<R>>,
    core: ::csv_core::Reader,
    fields: Vec<u8>,
    ends: Vec<usize>,
    max_record: usize,
    max_field: usize,
    /// Lines read before the byte the reader is at.
    lines: u64,
    done: bool,
}

impl<R: Read> Rows<R> {
    fn new(reader: R, options: &FormatOptions) -> Self {
        Rows {
            input: std::io::BufReader::with_capacity(256 * 1024, WithoutBom { inner: reader, head: [0; 3], pending: 0..0, started: false }),
            core: ::csv_core::ReaderBuilder::new().delimiter(options.delimiter).build(),
            fields: vec![0; 4096],
            ends: vec![0; 64],
            max_record: options.limits.max_record_bytes.as_usize(),
            max_field: options.limits.max_field_bytes.as_usize(),
            lines: 0,
            done: false,
        }
    }

    /// The next row and the line it starts on; `None` at the end of the file.
    fn next(&mut self) -> std::io::Result<Option<(u64, Result<::csv::ByteRecord, String>)>> {
        use ::csv_core::ReadRecordResult;
        use std::io::BufRead;
        if self.done {
            return Ok(None);
        }
        let (mut length, mut count) = (0usize, 0usize);
        let mut oversize = false;
        let mut line = self.lines + 1;
        let mut started = false;
        loop {
            let input = self.input.fill_buf()?;
            let (result, read, written, ended) = if oversize {
                // Past the limit: parse on to the row's end, keeping nothing.
                self.core.read_record(input, &mut self.fields[..], &mut self.ends[..])
            } else {
                self.core.read_record(input, &mut self.fields[length..], &mut self.ends[count..])
            };
            let consumed = &input[..read];
            if !started {
                // Blank lines before a row are skipped by the parser: the row starts after them.
                let leading = consumed.iter().take_while(|b| matches!(b, b'\n' | b'\r')).filter(|b| **b == b'\n').count() as u64;
                line += leading;
                started = consumed.iter().any(|b| !matches!(b, b'\n' | b'\r'));
            }
            self.lines += memchr::memchr_iter(b'\n', consumed).count() as u64;
            self.input.consume(read);
            if !oversize {
                length += written;
                count += ended;
            }
            match result {
                ReadRecordResult::InputEmpty => {}
                ReadRecordResult::OutputFull => {
                    if oversize {
                        continue;
                    }
                    if self.fields.len() > self.max_record {
                        oversize = true;
                        continue;
                    }
                    let grown = (self.fields.len() * 2).min(self.max_record + 1);
                    self.fields.resize(grown, 0);
                }
                ReadRecordResult::OutputEndsFull => {
                    if !oversize {
                        let grown = self.ends.len() * 2;
                        self.ends.resize(grown, 0);
                    }
                }
                ReadRecordResult::Record => {
                    if oversize || length > self.max_record {
                        let limit =
                            crate::limits::OverLimit::bytes("the row", "maxRecordBytes", crate::limits::ByteSize(self.max_record as u64));
                        return Ok(Some((line, Err(limit.to_string()))));
                    }
                    let mut record = ::csv::ByteRecord::with_capacity(length, count);
                    let mut start = 0;
                    for &end in &self.ends[..count] {
                        if end - start > self.max_field {
                            let limit = crate::limits::OverLimit::bytes(
                                format!("field {}", record.len() + 1),
                                "maxFieldBytes",
                                crate::limits::ByteSize(self.max_field as u64),
                            );
                            return Ok(Some((line, Err(limit.to_string()))));
                        }
                        record.push_field(&self.fields[start..end]);
                        start = end;
                    }
                    return Ok(Some((line, Ok(record))));
                }
                ReadRecordResult::End => {
                    self.done = true;
                    return Ok(None);
                }
            }
        }
    }
}

/// Column names from the header line: blanks named by position (`column3`).
fn header_names(header: &::csv::ByteRecord) -> Vec<String> {
    super::unique_names(header.iter().map(|f| String::from_utf8_lossy(f).into_owned()), |i| format!("column{}", i + 1))
}

fn infer_kinds(columns: &[String], sample: &[(u64, Result<::csv::ByteRecord, String>)]) -> Vec<Kind> {
    let mut kinds = vec![Kind::Unknown; columns.len()];
    for (_, row) in sample {
        let Ok(record) = row else { continue };
        for (kind, field) in kinds.iter_mut().zip(record.iter()) {
            let Ok(text) = std::str::from_utf8(field) else {
                *kind = Kind::Text;
                continue;
            };
            if text.is_empty() {
                continue;
            }
            *kind = widen(*kind, kind_of(text));
        }
    }
    kinds.into_iter().map(|k| if k == Kind::Unknown { Kind::Text } else { k }).collect()
}

fn kind_of(text: &str) -> Kind {
    let digits = text.strip_prefix('-').unwrap_or(text);
    // A leading zero (postcodes, account numbers) or a plus sign keeps the value text.
    let leading_zero = digits.len() > 1 && digits.starts_with('0') && !digits.starts_with("0.");
    if !leading_zero && !digits.starts_with('+') {
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) && text.parse::<i64>().is_ok() {
            return Kind::Integer;
        }
        let plain = digits.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'));
        if plain && digits.starts_with(|c: char| c.is_ascii_digit()) && text.parse::<f64>().is_ok_and(f64::is_finite) {
            return Kind::Decimal;
        }
    }
    if text.eq_ignore_ascii_case("true") || text.eq_ignore_ascii_case("false") {
        return Kind::Boolean;
    }
    Kind::Text
}

fn widen(a: Kind, b: Kind) -> Kind {
    match (a, b) {
        (Kind::Unknown, k) | (k, Kind::Unknown) => k,
        (x, y) if x == y => x,
        (Kind::Integer, Kind::Decimal) | (Kind::Decimal, Kind::Integer) => Kind::Decimal,
        _ => Kind::Text,
    }
}

fn to_record(row: Result<::csv::ByteRecord, String>, columns: &[String], kinds: &[Kind], infer: bool) -> RawRecord {
    let record = match row {
        Ok(record) => record,
        Err(message) => return RawRecord::Broken(message),
    };
    if record.len() != columns.len() {
        return RawRecord::Broken(format!("has {} field(s), the header has {}", record.len(), columns.len()));
    }
    let mut object = Map::with_capacity(columns.len());
    for (i, (column, field)) in columns.iter().zip(record.iter()).enumerate() {
        let Ok(text) = std::str::from_utf8(field) else {
            return RawRecord::Broken(format!("column `{column}` is not valid UTF-8: set `encoding` (e.g. windows-1252)"));
        };
        let value = if infer { typed(text, kinds.get(i).copied().unwrap_or(Kind::Text)) } else { Value::String(text.to_string()) };
        object.insert(column.clone(), value);
    }
    RawRecord::Value(Value::Object(object))
}

/// A value of a typed column; one that does not fit the column's type stays text rather than failing.
fn typed(text: &str, kind: Kind) -> Value {
    if text.is_empty() {
        return Value::Null;
    }
    let parsed = match kind {
        // A whole number is an integer in a decimal column too, so `4` stays `4` whichever other rows
        // the sample saw (a re-typed value would change the record's hash).
        Kind::Integer | Kind::Decimal if text.bytes().all(|b| b.is_ascii_digit() || b == b'-') => text.parse::<i64>().ok().map(Value::from),
        Kind::Integer => None,
        Kind::Decimal => text.parse::<f64>().ok().and_then(Number::from_f64).map(Value::Number),
        Kind::Boolean => match text.to_ascii_lowercase().as_str() {
            "true" => Some(Value::Bool(true)),
            "false" => Some(Value::Bool(false)),
            _ => None,
        },
        Kind::Text | Kind::Unknown => None,
    };
    parsed.unwrap_or_else(|| Value::String(text.to_string()))
}

/// A reader with the UTF-8 byte-order mark at its start taken off, however its bytes arrive: the
/// parser skips a mark only when it comes whole in one buffer, and reads the empty rest of a
/// buffer that held just the mark as the end of the file (a file of no rows, which would delete).
struct WithoutBom<R> {
    inner: R,
    head: [u8; 3],
    /// What of `head` is still to be handed on.
    pending: std::ops::Range<usize>,
    started: bool,
}

impl<R: Read> Read for WithoutBom<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if !self.started {
            self.started = true;
            let mut filled = 0;
            while filled < 3 {
                match self.inner.read(&mut self.head[filled..]) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            self.pending = if self.head[..filled] == *b"\xEF\xBB\xBF" { 0..0 } else { 0..filled };
        }
        if !self.pending.is_empty() {
            let n = buf.len().min(self.pending.len());
            buf[..n].copy_from_slice(&self.head[self.pending.start..self.pending.start + n]);
            self.pending.start += n;
            return Ok(n);
        }
        self.inner.read(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hands over one byte per read, as a slow upstream may.
    struct Trickle<'a>(&'a [u8]);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let Some((first, rest)) = self.0.split_first() else { return Ok(0) };
            buf[0] = *first;
            self.0 = rest;
            Ok(1)
        }
    }

    #[test]
    fn a_byte_order_mark_is_dropped_however_it_arrives() {
        let file = b"\xEF\xBB\xBFid,name\n1,Bella\n2,Max\n";
        let rows = |reader: Box<dyn Read>| {
            let options = FormatOptions::from_config(&Default::default()).unwrap();
            let mut rows = Rows::new(reader, &options);
            let mut out = Vec::new();
            while let Some((_, row)) = rows.next().unwrap() {
                out.push(row.unwrap().iter().map(|f| String::from_utf8_lossy(f).into_owned()).collect::<Vec<_>>().join("|"));
            }
            out
        };
        for reader in [
            Box::new(&file[..]) as Box<dyn Read>,
            Box::new(Trickle(file)),
            Box::new(std::io::Cursor::new(b"\xEF\xBB\xBF".to_vec()).chain(&file[3..])),
        ] {
            assert_eq!(rows(reader), ["id|name", "1|Bella", "2|Max"]);
        }
        // Not a mark: the bytes are kept.
        assert_eq!(rows(Box::new(Trickle(b"\xEF\xBBx\n"))), ["\u{FFFD}x"]);
        assert_eq!(rows(Box::new(Trickle(b"ab"))), ["ab"]);
    }

    #[test]
    fn kinds_keep_identifiers_text() {
        assert_eq!(kind_of("42"), Kind::Integer);
        assert_eq!(kind_of("-7"), Kind::Integer);
        assert_eq!(kind_of("0"), Kind::Integer);
        assert_eq!(kind_of("0.5"), Kind::Decimal);
        assert_eq!(kind_of("1e3"), Kind::Decimal);
        assert_eq!(kind_of("01234"), Kind::Text);
        assert_eq!(kind_of("+31"), Kind::Text);
        assert_eq!(kind_of("inf"), Kind::Text);
        assert_eq!(kind_of("NaN"), Kind::Text);
        assert_eq!(kind_of("TRUE"), Kind::Boolean);
        assert_eq!(widen(Kind::Integer, Kind::Decimal), Kind::Decimal);
        assert_eq!(widen(Kind::Integer, Kind::Boolean), Kind::Text);
    }

    #[test]
    fn headers_are_unique() {
        let header = ::csv::ByteRecord::from(vec!["id", "", "name", "name"]);
        assert_eq!(header_names(&header), ["id", "column2", "name", "name_2"]);
    }
}
