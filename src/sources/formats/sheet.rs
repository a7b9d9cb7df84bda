//! Spreadsheets (xlsx, xls, xlsb, ods) through calamine: one record per row below the header row,
//! keyed by the header's cells. Dates become ISO 8601, whole numbers integers (a spreadsheet stores every
//! number as a float), other numbers stay numbers; empty rows are skipped.

use std::io::Cursor;

use calamine::{Data, Reader};
use serde_json::{Map, Number, Value};

use super::{column_letters, ChunkWriter, EventSender, FormatOptions, ReadError};
use crate::sources::{RawRecord, SourceError};

pub(super) fn read(body: Vec<u8>, name: &str, options: &FormatOptions, tx: &EventSender) -> Result<(), ReadError> {
    let fail = |reason: String| ReadError::Failed(SourceError::File { file: name.to_string(), reason });
    let mut workbook = calamine::open_workbook_auto_from_rs(Cursor::new(body)).map_err(|e| fail(format!("not a spreadsheet: {e}")))?;
    let sheets = workbook.sheet_names();
    let sheet = pick_sheet(&sheets, options.sheet.as_deref()).map_err(fail)?;
    let range = workbook.worksheet_range(&sheet).map_err(|e| fail(format!("cannot read sheet `{sheet}`: {e}")))?;
    let range = match options.range {
        Some((start, end)) => {
            // Clip to the used cells: an open-ended range must not allocate a sheet of empty cells.
            let used_end = range.end().unwrap_or((0, 0));
            range.range(start, (end.0.min(used_end.0), end.1.min(used_end.1)))
        }
        None => range,
    };
    let Some((first_row, first_column)) = range.start() else { return Ok(()) };
    let header_row = options.header_row.map_or(first_row, |r| r - 1);
    if header_row < first_row {
        return Err(fail(format!("headerRow {} is above the range read, which starts at row {}", header_row + 1, first_row + 1)));
    }
    let mut rows = range.rows().enumerate().map(|(i, cells)| (first_row + i as u32, cells)).skip_while(|(row, _)| *row < header_row);
    let Some((_, header)) = rows.next() else { return Ok(()) };
    let columns = header_names(header, first_column);
    let mut out = ChunkWriter::new(tx, format!("{name}, sheet `{sheet}`"), "row");
    for (row, cells) in rows {
        if cells.iter().all(|c| matches!(c, Data::Empty)) {
            continue;
        }
        let mut object = Map::with_capacity(columns.len());
        for (column, cell) in columns.iter().zip(cells) {
            object.insert(column.clone(), cell_value(cell));
        }
        out.push(RawRecord::Value(Value::Object(object)), u64::from(row) + 1)?;
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
