//! Spreadsheets (xlsx, xls, xlsb, ods) through calamine: one record per row below the header row,
//! keyed by the header's cells. Dates become ISO 8601, whole numbers integers (a spreadsheet stores every
//! number as a float), other numbers stay numbers; empty rows are skipped.

use std::collections::BTreeMap;
use std::io::Cursor;

use calamine::{Cell, Data, DataRef, Reader};
use serde_json::{Map, Number, Value};

use super::sheet_checks::{self, Container};
use super::{ChunkWriter, EventSender, FormatOptions, ReadError, column_letters};
use crate::config::FileFormat;
use crate::limits::OverLimit;
use crate::sources::{RawRecord, SourceError};

/// A sheet's last row and column (0-based), as far as Excel goes.
const LAST_ROW: u32 = 1_048_575;
const LAST_COLUMN: u32 = 16_383;

pub(super) fn read(body: Vec<u8>, name: &str, format: FileFormat, options: &FormatOptions, tx: &EventSender) -> Result<(), ReadError> {
    let fail = |reason: String| ReadError::Failed(refusal(name, reason));
    let limits = &options.limits;
    let (sheet, cells) = match (sheet_checks::container(&body), format) {
        (Container::Zip, FileFormat::Ods) => {
            let mut zip = sheet_checks::check_zip(&body, limits).map_err(fail)?;
            sheet_checks::check_ods(&mut zip, limits).map_err(fail)?;
            drop(zip);
            let mut book = calamine::Ods::new(Cursor::new(body)).map_err(|e| fail(format!("not an ods workbook: {e}")))?;
            let sheet = pick_sheet(&book.sheet_names(), options.sheet.as_deref()).map_err(fail)?;
            let range = book.worksheet_range(&sheet).map_err(|e| fail(format!("cannot read sheet `{sheet}`: {e}")))?;
            (sheet.clone(), from_range(&range, options).map_err(fail)?)
        }
        (Container::Zip, FileFormat::Xlsb) => {
            sheet_checks::check_zip(&body, limits).map_err(fail)?;
            let mut book = calamine::Xlsb::new(Cursor::new(body)).map_err(|e| fail(format!("not an xlsb workbook: {e}")))?;
            let sheet = pick_sheet(&book.sheet_names(), options.sheet.as_deref()).map_err(fail)?;
            let mut reader = book.worksheet_cells_reader(&sheet).map_err(|e| fail(format!("cannot read sheet `{sheet}`: {e}")))?;
            (sheet.clone(), collect(|| reader.next_cell().map_err(|e| e.to_string()), options).map_err(fail)?)
        }
        (Container::Zip, _) => {
            let mut zip = sheet_checks::check_zip(&body, limits).map_err(fail)?;
            sheet_checks::check_xlsx(&mut zip, limits).map_err(fail)?;
            drop(zip);
            let mut book = calamine::Xlsx::new(Cursor::new(body)).map_err(|e| fail(format!("not an xlsx workbook: {e}")))?;
            let sheet = pick_sheet(&book.sheet_names(), options.sheet.as_deref()).map_err(fail)?;
            let mut reader = book.worksheet_cells_reader(&sheet).map_err(|e| fail(format!("cannot read sheet `{sheet}`: {e}")))?;
            (sheet.clone(), collect(|| reader.next_cell().map_err(|e| e.to_string()), options).map_err(fail)?)
        }
        (Container::Ole, _) => {
            super::sheet_xls::check(&body, limits).map_err(fail)?;
            let mut book = calamine::Xls::new(Cursor::new(body)).map_err(|e| fail(format!("not an xls workbook: {e}")))?;
            let sheet = pick_sheet(&book.sheet_names(), options.sheet.as_deref()).map_err(fail)?;
            let range = book.worksheet_range(&sheet).map_err(|e| fail(format!("cannot read sheet `{sheet}`: {e}")))?;
            (sheet.clone(), from_range(&range, options).map_err(fail)?)
        }
        (Container::Unknown, _) => return Err(fail("not a spreadsheet (neither a zip nor an OLE container)".into())),
    };
    emit(cells, name, &sheet, options, tx)
}

/// A workbook refused: over one of the source's limits (the message names its key), or unreadable.
fn refusal(name: &str, reason: String) -> SourceError {
    if crate::limits::KEYS.iter().any(|key| reason.contains(key)) {
        SourceError::Limit(format!("{name}: {reason}"))
    } else {
        SourceError::File { file: name.to_string(), reason }
    }
}

/// The non-empty cells of a sheet by row, within the configured range: what records are made of.
/// Memory follows the cells the sheet really has, never its bounding box.
#[derive(Default)]
struct Cells {
    rows: BTreeMap<u32, Vec<(u32, Data)>>,
    count: u64,
    text: u64,
    first_column: u32,
    last_column: u32,
}

impl Cells {
    fn add(&mut self, (row, column): (u32, u32), data: Data, options: &FormatOptions) -> Result<(), String> {
        if row > LAST_ROW || column > LAST_COLUMN {
            return Err(format!("a cell at row {}, column {} lies outside any sheet", u64::from(row) + 1, u64::from(column) + 1));
        }
        if let Some(((top, left), (bottom, right))) = options.range
            && (!(top..=bottom).contains(&row) || !(left..=right).contains(&column))
        {
            return Ok(());
        }
        let limits = &options.limits;
        self.count += 1;
        if self.count > limits.max_sheet_cells {
            return Err(format!("the sheet holds more than maxSheetCells ({}) cells", limits.max_sheet_cells));
        }
        if let Data::String(text) | Data::DateTimeIso(text) | Data::DurationIso(text) = &data {
            self.text += text.len() as u64;
            if self.text > limits.max_decompressed_bytes.bytes() {
                return Err(OverLimit::bytes("the sheet's text", "maxDecompressedBytes", limits.max_decompressed_bytes).to_string());
            }
        }
        if self.count == 1 {
            (self.first_column, self.last_column) = (column, column);
        }
        self.first_column = self.first_column.min(column);
        self.last_column = self.last_column.max(column);
        self.rows.entry(row).or_default().push((column, data));
        Ok(())
    }
}

/// The cells a streaming reader (xlsx, xlsb) yields, in any order.
fn collect<'a>(mut next: impl FnMut() -> Result<Option<Cell<DataRef<'a>>>, String>, options: &FormatOptions) -> Result<Cells, String> {
    let mut cells = Cells::default();
    while let Some(cell) = next()? {
        if matches!(cell.get_value(), DataRef::Empty) {
            continue;
        }
        cells.add(cell.get_position(), Data::from(cell.get_value().clone()), options)?;
    }
    Ok(cells)
}

/// The non-empty cells of a range calamine read whole (ods, xls; checked to be small enough first).
fn from_range(range: &calamine::Range<Data>, options: &FormatOptions) -> Result<Cells, String> {
    let mut cells = Cells::default();
    let (top, left) = range.start().unwrap_or((0, 0));
    for (row, column, data) in range.used_cells() {
        cells.add((top + row as u32, left + column as u32), data.clone(), options)?;
    }
    Ok(cells)
}

/// One record per row below the header row, with a key for every column from the first used to the
/// last (null where the row has no value); empty rows are skipped.
fn emit(cells: Cells, name: &str, sheet: &str, options: &FormatOptions, tx: &EventSender) -> Result<(), ReadError> {
    let fail = |reason: String| ReadError::Failed(refusal(name, reason));
    let Some(&first_row) = cells.rows.keys().next() else { return Ok(()) };
    // A configured range starts where it says, empty or not; else the first used row and column.
    let (top, left) = match options.range {
        Some(((top, left), _)) => (top, left.min(cells.first_column)),
        None => (first_row, cells.first_column),
    };
    let header_row = options.header_row.map_or(top, |r| r.saturating_sub(1));
    if header_row < top {
        return Err(fail(format!("headerRow {} is above the range read, which starts at row {}", header_row + 1, top + 1)));
    }
    let width = (cells.last_column - left + 1) as usize;
    let mut header = vec![Data::Empty; width];
    for (column, data) in cells.rows.get(&header_row).map(Vec::as_slice).unwrap_or_default() {
        header[(column - left) as usize] = data.clone();
    }
    let columns = header_names(&header, left);
    let data_rows = cells.rows.range(header_row + 1..).count() as u64;
    if data_rows.saturating_mul(width as u64) > options.limits.max_sheet_cells {
        return Err(fail(format!(
            "{data_rows} rows of {width} columns make more than maxSheetCells ({}) values",
            options.limits.max_sheet_cells
        )));
    }
    let mut out = ChunkWriter::new(tx, format!("{name}, sheet `{sheet}`"), "row");
    for (row, row_cells) in cells.rows.range(header_row + 1..) {
        let mut values = vec![Value::Null; width];
        for (column, data) in row_cells {
            values[(column - left) as usize] = cell_value(data);
        }
        let object: Map<String, Value> = columns.iter().cloned().zip(values).collect();
        out.push(RawRecord::Value(Value::Object(object)), u64::from(*row) + 1)?;
    }
    out.flush()
}

/// The sheet named `wanted`, or at position `wanted` counted from 1; the first sheet by default.
fn pick_sheet(sheets: &[String], wanted: Option<&str>) -> Result<String, String> {
    let list = || sheets.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", ");
    match wanted {
        None => sheets.first().cloned().ok_or_else(|| "the workbook has no sheets".to_string()),
        Some(name) if sheets.iter().any(|s| s == name) => Ok(name.to_string()),
        Some(name) => match name.parse::<usize>() {
            Ok(position) if (1..=sheets.len()).contains(&position) => Ok(sheets[position - 1].clone()),
            _ => Err(format!("no sheet `{name}`; the workbook has {}", list())),
        },
    }
}

/// Column names from the header row: a blank cell is named by its column letter, as the user sees it.
fn header_names(header: &[Data], first_column: u32) -> Vec<String> {
    let texts = header.iter().map(|cell| match cell_value(cell) {
        Value::String(s) => s,
        Value::Null => String::new(),
        other => other.to_string(),
    });
    super::unique_names(texts, |i| column_letters(first_column + i as u32))
}

fn cell_value(cell: &Data) -> Value {
    match cell {
        Data::Empty => Value::Null,
        Data::Int(i) => Value::from(*i),
        Data::Float(f) => {
            // 2^53: beyond it a float no longer holds every integer exactly.
            if f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0 {
                Value::from(*f as i64)
            } else {
                Number::from_f64(*f).map_or(Value::Null, Value::Number)
            }
        }
        Data::String(s) => Value::String(s.clone()),
        Data::Bool(b) => Value::Bool(*b),
        Data::DateTime(dt) => {
            if dt.is_duration() {
                return dt.as_duration().map_or(Value::Null, |d| Value::String(iso_duration(d)));
            }
            match dt.as_datetime() {
                Some(at) if at.time() == chrono::NaiveTime::MIN => Value::String(at.format("%Y-%m-%d").to_string()),
                Some(at) if at.date() == chrono::NaiveDate::from_ymd_opt(1899, 12, 31).expect("valid date") => {
                    Value::String(at.format("%H:%M:%S").to_string())
                }
                Some(at) => Value::String(at.format("%Y-%m-%dT%H:%M:%S").to_string()),
                None => Value::Null,
            }
        }
        Data::DateTimeIso(s) | Data::DurationIso(s) => Value::String(s.clone()),
        Data::Error(e) => Value::String(format!("#{e:?}")),
    }
}

fn iso_duration(d: chrono::Duration) -> String {
    let seconds = d.num_seconds();
    format!("PT{}H{}M{}S", seconds / 3600, (seconds % 3600) / 60, seconds % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sheets_by_name_or_position() {
        let sheets = vec!["Data".to_string(), "Notes".to_string()];
        assert_eq!(pick_sheet(&sheets, None).unwrap(), "Data");
        assert_eq!(pick_sheet(&sheets, Some("Notes")).unwrap(), "Notes");
        assert_eq!(pick_sheet(&sheets, Some("2")).unwrap(), "Notes");
        let error = pick_sheet(&sheets, Some("Pets")).unwrap_err();
        assert_eq!(error, "no sheet `Pets`; the workbook has `Data`, `Notes`");
    }

    #[test]
    fn cells_become_json() {
        assert_eq!(cell_value(&Data::Float(3.0)), Value::from(3));
        assert_eq!(cell_value(&Data::Float(2.5)), Value::from(2.5));
        assert_eq!(cell_value(&Data::Empty), Value::Null);
        assert_eq!(cell_value(&Data::String("x".into())), Value::from("x"));
    }
}
