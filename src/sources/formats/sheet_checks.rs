//! Checks of a spreadsheet before calamine reads it. calamine sizes its buffers from counts the file
//! declares (xlsx's `uniqueCount`, xls's DIMENSIONS record) and builds ods and xls sheets dense, so a
//! few kilobytes can ask for terabytes, and a failed allocation aborts the process. Everything here
//! reads the file's own structure, streaming, within the source's limits, before calamine sees it.

use std::io::{BufReader, Cursor, Read};

use quick_xml::events::{BytesStart, Event};
use zip::ZipArchive;

use crate::limits::{OverLimit, ReadLimits};

/// Zip entries a workbook may hold (real ones hold dozens).
const MAX_ENTRIES: usize = 10_000;
/// How far an entry over 1 MiB may expand (sheet XML compresses some 10–30 times).
const MAX_RATIO: u64 = 1_000;
/// The most a `<text:s text:c="…"/>` may repeat a space.
const MAX_SPACES: u64 = 10_000;

/// The kinds of container a spreadsheet comes in, by their first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    Zip,
    Ole,
    Unknown,
}

pub fn container(body: &[u8]) -> Container {
    if body.starts_with(b"PK\x03\x04") {
        Container::Zip
    } else if body.starts_with(&[0xD0, 0xCF, 0x11, 0xE0]) {
        Container::Ole
    } else {
        Container::Unknown
    }
}

/// The entries of a zip container, within `maxDecompressedBytes` in all and sane ratios each.
pub fn check_zip<'a>(body: &'a [u8], limits: &ReadLimits) -> Result<ZipArchive<Cursor<&'a [u8]>>, String> {
    let mut zip = ZipArchive::new(Cursor::new(body)).map_err(|e| format!("not a readable zip container: {e}"))?;
    if zip.len() > MAX_ENTRIES {
        return Err(format!("the workbook holds {} zip entries, more than {MAX_ENTRIES}", zip.len()));
    }
    let mut total = 0u64;
    for index in 0..zip.len() {
        let entry = zip.by_index_raw(index).map_err(|e| format!("zip entry {index}: {e}"))?;
        let (size, packed) = (entry.size(), entry.compressed_size());
        total = total.saturating_add(size);
        if total > limits.max_decompressed_bytes.bytes() {
            return Err(OverLimit::bytes("the workbook, unpacked,", "maxDecompressedBytes", limits.max_decompressed_bytes).to_string());
        }
        if size > 1024 * 1024 && size / packed.max(1) > MAX_RATIO {
            let name = entry.name().map(|n| n.into_owned()).unwrap_or_default();
            return Err(format!("zip entry `{name}` expands {}-fold, more than {MAX_RATIO}: not a real workbook", size / packed.max(1)));
        }
    }
    Ok(zip)
}

/// The index and declared size of every entry whose lower-cased name ends with `suffix`.
fn entries_ending(zip: &mut ZipArchive<Cursor<&[u8]>>, suffix: &str) -> Vec<(usize, u64)> {
    (0..zip.len())
        .filter_map(|i| {
            let entry = zip.by_index_raw(i).ok()?;
            let name = entry.name().ok()?.to_ascii_lowercase();
            name.ends_with(suffix).then_some((i, entry.size()))
        })
        .collect()
}

/// xlsx: calamine reserves room for `uniqueCount` shared strings before reading one. Each string takes
/// at least a few bytes of the entry, so a count beyond that is a lie.
pub fn check_xlsx(zip: &mut ZipArchive<Cursor<&[u8]>>, limits: &ReadLimits) -> Result<(), String> {
    for (index, size) in entries_ending(zip, "sharedstrings.xml") {
        let entry = zip.by_index(index).map_err(|e| format!("sharedStrings.xml: {e}"))?;
        let mut xml = quick_xml::Reader::from_reader(BufReader::new(entry.take(64 * 1024)));
        let mut buf = Vec::new();
        let declared = loop {
            buf.clear();
            match xml.read_event_into(&mut buf) {
                Ok(Event::Start(e) | Event::Empty(e)) if e.local_name().as_ref() == "sst" => break attribute(&e, "uniqueCount"),
                Ok(Event::Eof) | Err(_) => break None,
                Ok(_) => {}
            }
        };
        let Some(declared) = declared else { continue };
        let count: u64 =
            declared.trim().parse().map_err(|_| format!("sharedStrings.xml declares uniqueCount `{declared}`, not a number"))?;
        let possible = size / 4;
        if count > possible || count > limits.max_sheet_cells {
            return Err(format!(
                "sharedStrings.xml declares {count} strings, more than its {size} bytes can hold or than maxSheetCells ({}) allows",
                limits.max_sheet_cells
            ));
        }
    }
    Ok(())
}

/// ods: calamine reads every table into memory at once, repeating a cell `number-columns-repeated`
/// times and a row `number-rows-repeated` times (up to a sheet's million rows). This pass adds up
/// what it would hold: the dense area of every table and the text copied into it.
pub fn check_ods(zip: &mut ZipArchive<Cursor<&[u8]>>, limits: &ReadLimits) -> Result<(), String> {
    let Some((index, _)) = entries_ending(zip, "content.xml").into_iter().next() else { return Ok(()) };
    let entry = zip.by_index(index).map_err(|e| format!("content.xml: {e}"))?;
    let mut xml = quick_xml::Reader::from_reader(BufReader::new(entry));
    let mut scan = OdsScan::default();
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let event = xml.read_event_into(&mut buf).map_err(|e| format!("content.xml is not well-formed XML: {e}"))?;
        match event {
            Event::Start(e) => scan.start(&e, false)?,
            Event::Empty(e) => scan.start(&e, true)?,
            Event::Text(t) => scan.text(t.len() as u64),
            Event::End(e) => scan.end(e.name().as_ref()),
            Event::Eof => break,
            _ => {}
        }
        scan.check(limits)?;
    }
    scan.end_table();
    scan.check(limits)
}

/// What calamine would materialise for the tables read so far.
#[derive(Default)]
struct OdsScan {
    /// Cells and text bytes of the tables already finished.
    cells: u64,
    text: u64,
    /// The table being read: its rows so far (repeats counted), the rows up to its last non-empty
    /// one, and its widest row.
    rows: u64,
    dense_rows: u64,
    width: u64,
    /// The row being read: cells materialised, empty ones pending (kept only if a value follows),
    /// its repeat count, and whether it holds a value.
    row_cells: u64,
    pending_empty: u64,
    row_repeats: u64,
    row_has_value: bool,
    /// The cell being read: its repeat count and text bytes.
    cell_repeats: u64,
    cell_text: u64,
    in_cell: bool,
    table_text: u64,
}

impl OdsScan {
    fn start(&mut self, e: &BytesStart, empty: bool) -> Result<(), String> {
        match e.name().as_ref() {
            "table:table" => self.end_table(),
            "table:table-row" => {
                let repeats = number(e, "table:number-rows-repeated")?.unwrap_or(1);
                self.row_repeats = repeats.min(1_048_576u64.saturating_sub(self.rows));
                self.row_cells = 0;
                self.pending_empty = 0;
                self.row_has_value = false;
            }
            "table:table-cell" | "table:covered-table-cell" => {
                let repeats = number(e, "table:number-columns-repeated")?.unwrap_or(1).min(16_384);
                let has_value = attribute(e, "office:value-type").is_some() || attribute(e, "table:formula").is_some();
                if empty && !has_value {
                    self.pending_empty += repeats;
                } else {
                    self.cell_repeats = repeats;
                    self.cell_text = 0;
                    self.in_cell = !empty;
                    self.add_cell(repeats);
                }
            }
            "text:s" => {
                let spaces = number(e, "text:c")?.unwrap_or(1);
                if spaces > MAX_SPACES {
                    return Err(format!("a cell asks for {spaces} repeated spaces, more than {MAX_SPACES}"));
                }
                self.text(spaces);
            }
            _ => {}
        }
        Ok(())
    }

    /// A cell with a value (or one read as such): the empty cells before it are materialised too.
    fn add_cell(&mut self, repeats: u64) {
        self.row_cells = (self.row_cells + self.pending_empty + repeats).min(16_384);
        self.pending_empty = 0;
        self.row_has_value = true;
    }

    fn text(&mut self, bytes: u64) {
        if self.in_cell {
            self.cell_text += bytes;
        }
    }

    fn end(&mut self, name: &str) {
        match name {
            "table:table-cell" | "table:covered-table-cell" if self.in_cell => {
                // A cell's value is copied once per repeat, and once per repeat of its row.
                self.table_text += self.cell_text.saturating_mul(self.cell_repeats).saturating_mul(self.row_repeats.max(1));
                self.in_cell = false;
            }
            "table:table-row" => {
                self.rows += self.row_repeats;
                if self.row_has_value {
                    self.dense_rows = self.rows;
                    self.width = self.width.max(self.row_cells);
                }
            }
            "table:table" => self.end_table(),
            _ => {}
        }
    }

    fn end_table(&mut self) {
        self.cells = self.cells.saturating_add(self.dense_rows.saturating_mul(self.width));
        self.text = self.text.saturating_add(self.table_text);
        (self.rows, self.dense_rows, self.width, self.table_text) = (0, 0, 0, 0);
    }

    fn check(&self, limits: &ReadLimits) -> Result<(), String> {
        let cells = self.cells.saturating_add(self.dense_rows.saturating_mul(self.width));
        if cells > limits.max_sheet_cells {
            return Err(format!("the workbook's sheets span more than maxSheetCells ({}) cells when read", limits.max_sheet_cells));
        }
        if self.text.saturating_add(self.table_text) > limits.max_decompressed_bytes.bytes() {
            return Err(OverLimit::bytes(
                "the text of the workbook's repeated cells",
                "maxDecompressedBytes",
                limits.max_decompressed_bytes,
            )
            .to_string());
        }
        Ok(())
    }
}

fn attribute(e: &BytesStart, name: &str) -> Option<String> {
    let attribute = e.try_get_attribute(name).ok()??;
    Some(attribute.value.into_owned())
}

fn number(e: &BytesStart, name: &str) -> Result<Option<u64>, String> {
    match attribute(e, name) {
        None => Ok(None),
        Some(text) => text.trim().parse().map(Some).map_err(|_| format!("`{name}` is `{text}`, not a count")),
    }
}
