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

pub(super) fn read(reader: impl Read, name: &str, options: &FormatOptions, tx: &EventSender) -> Result<(), ReadError> {
    let mut csv = ::csv::ReaderBuilder::new().delimiter(options.delimiter).has_headers(false).flexible(true).from_reader(reader);
    let file_error = |reason: String| ReadError::Failed(SourceError::File { file: name.to_string(), reason });
    let mut rows = csv.byte_records();
    let mut columns: Vec<String> = Vec::new();
    let mut sample: Vec<(u64, Result<::csv::ByteRecord, String>)> = Vec::new();
    if options.header {
        match rows.next() {
            None => return Ok(()),
            Some(Ok(header)) => columns = header_names(&header),
            Some(Err(error)) => return Err(file_error(format!("cannot read the header line: {error}"))),
        }
    }
    let mut out = ChunkWriter::new(tx, name.to_string(), "line");
    let infer = options.column_types == ColumnTypes::Infer;
    let mut kinds: Vec<Kind> = Vec::new();
    let mut sampling = infer;
    for row in rows {
        let (line, row) = match row {
            Ok(record) => (record.position().map_or(0, |p| p.line()), Ok(record)),
            Err(error) => match error.position() {
                Some(position) => (position.line(), Err(error.to_string())),
                // Not a row's error but the reader's (an I/O failure): the file cannot go on.
                None => return Err(file_error(format!("cannot read: {error}"))),
            },
        };
        if columns.is_empty()
            && let Ok(record) = &row
        {
            columns = (1..=record.len()).map(|i| format!("column{i}")).collect();
        }
        if sampling {
            sample.push((line, row));
            if sample.len() >= SAMPLE_ROWS {
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

#[cfg(test)]
mod tests {
    use super::*;

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
