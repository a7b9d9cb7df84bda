//! A check of an xls workbook before calamine opens it. calamine reads every sheet of an xls into
//! memory when the workbook opens: it reserves what a sheet's DIMENSIONS record declares, builds each
//! sheet dense over the box of its cells, and copies a shared string into every cell that refers to it.
//! A file of a few kilobytes can so ask for terabytes, and calamine follows the container's sector
//! chains without noticing a loop. This pass reads the same structures the same way (the compound
//! file's chains, checked for loops, then the BIFF records of each sheet calamine will read) and adds
//! up what calamine would hold.

use crate::limits::{OverLimit, ReadLimits};

const END_OF_CHAIN: u32 = 0xFFFF_FFFE;
/// Bytes a sheet's dense range costs per cell in calamine (a `Data` and a formula `String`).
const CELL_BYTES: u64 = 56;

/// Refuses an xls that calamine could not read within `limits`.
pub fn check(body: &[u8], limits: &ReadLimits) -> Result<(), String> {
    let file = Compound::open(body)?;
    let stream = file.stream(&["Workbook", "Book"])?;
    let book = scan_globals(&stream)?;
    let (mut cells, mut text) = (0u64, 0u64);
    for position in book.sheets {
        let sheet = scan_sheet(stream.get(position..).ok_or("a sheet starts past the end of the workbook")?, &book.strings)?;
        cells = cells.saturating_add(sheet.cells);
        text = text.saturating_add(sheet.text);
    }
    if cells > limits.max_sheet_cells {
        return Err(format!("the workbook's sheets span more than maxSheetCells ({}) cells when read", limits.max_sheet_cells));
    }
    if text.saturating_add(cells.saturating_mul(CELL_BYTES)) > limits.max_decompressed_bytes.bytes() {
        return Err(OverLimit::bytes("the workbook, read into memory,", "maxDecompressedBytes", limits.max_decompressed_bytes).to_string());
    }
    Ok(())
}

fn u16_at(data: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(data.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(data: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(data.get(at..at + 4)?.try_into().ok()?))
}

/// A compound file (OLE2), read only as far as finding one stream.
struct Compound<'a> {
    body: &'a [u8],
    shift: u32,
    fat: Vec<u32>,
    directory: Vec<u8>,
}

impl<'a> Compound<'a> {
    fn open(body: &'a [u8]) -> Result<Compound<'a>, String> {
        let bad = |what: &str| format!("not a readable xls container: {what}");
        let shift = u32::from(u16_at(body, 0x1E).ok_or_else(|| bad("no header"))?);
        if !(7..=16).contains(&shift) {
            return Err(bad("a sector size out of range"));
        }
        let sector_count = body.len().saturating_sub(1 << shift) >> shift;
        // The FAT's sectors: 109 in the header, the rest on the DIFAT chain.
        let mut fat_sectors: Vec<u32> = (0..109).filter_map(|i| u32_at(body, 0x4C + 4 * i)).filter(|s| *s < END_OF_CHAIN - 2).collect();
        let mut difat = u32_at(body, 0x44).ok_or_else(|| bad("no header"))?;
        let mut seen = vec![false; sector_count];
        while difat < END_OF_CHAIN - 2 {
            let sector = Self::sector_of(body, shift, difat, &mut seen)?;
            let per = (1usize << shift) / 4 - 1;
            fat_sectors.extend((0..per).filter_map(|i| u32_at(sector, 4 * i)).filter(|s| *s < END_OF_CHAIN - 2));
            difat = u32_at(sector, 4 * per).unwrap_or(END_OF_CHAIN);
        }
        let mut fat = Vec::new();
        for sector in fat_sectors {
            let data = Self::sector_of(body, shift, sector, &mut seen)?;
            fat.extend((0..data.len() / 4).filter_map(|i| u32_at(data, 4 * i)));
        }
        let mut file = Compound { body, shift, fat, directory: Vec::new() };
        let first_directory = u32_at(body, 0x30).ok_or_else(|| bad("no header"))?;
        file.directory = file.chain(first_directory, u64::MAX)?;
        Ok(file)
    }

    /// Sector `index`, once only: a sector met twice is a loop.
    fn sector_of<'b>(body: &'b [u8], shift: u32, index: u32, seen: &mut [bool]) -> Result<&'b [u8], String> {
        let slot = seen.get_mut(index as usize).ok_or("not a readable xls container: a sector past the end of the file")?;
        if *slot {
            return Err("not a readable xls container: its sectors chain into a loop".into());
        }
        *slot = true;
        let start = (index as usize + 1) << shift;
        body.get(start..start + (1 << shift)).ok_or_else(|| "not a readable xls container: a sector past the end of the file".into())
    }

    /// The bytes of the chain starting at `first`, at most `size` of them.
    fn chain(&self, first: u32, size: u64) -> Result<Vec<u8>, String> {
        let mut seen = vec![false; self.fat.len().min(self.body.len() >> self.shift)];
        let mut out = Vec::new();
        let mut next = first;
        while next != END_OF_CHAIN && (out.len() as u64) < size {
            out.extend_from_slice(Self::sector_of(self.body, self.shift, next, &mut seen)?);
            next = *self.fat.get(next as usize).ok_or("not a readable xls container: a chain leaves its table")?;
        }
        out.truncate(size.min(out.len() as u64) as usize);
        Ok(out)
    }

    /// The first stream of these names (small ones live in the mini stream).
    fn stream(&self, names: &[&str]) -> Result<Vec<u8>, String> {
        let entries: Vec<&[u8]> = self.directory.chunks_exact(128).collect();
        let name_of = |entry: &[u8]| {
            let length = (u16_at(entry, 64).unwrap_or(0) as usize).min(64).saturating_sub(2) / 2;
            String::from_utf16_lossy(&(0..length).filter_map(|i| u16_at(entry, 2 * i)).collect::<Vec<_>>())
        };
        let entry = names
            .iter()
            .find_map(|want| entries.iter().find(|e| e[66] == 2 && name_of(e) == *want))
            .ok_or("no Workbook stream: not an xls workbook")?;
        let (start, size) = (u32_at(entry, 116).unwrap_or(END_OF_CHAIN), u64::from(u32_at(entry, 120).unwrap_or(0)));
        if size >= u64::from(u32_at(self.body, 0x38).unwrap_or(4096)) {
            return self.chain(start, size);
        }
        // The mini stream: the root entry's chain, cut into 64-byte sectors by the mini FAT.
        let root = entries.first().ok_or("an empty xls directory")?;
        let mini = self.chain(u32_at(root, 116).unwrap_or(END_OF_CHAIN), u64::from(u32_at(root, 120).unwrap_or(0)))?;
        let table = self.chain(u32_at(self.body, 0x3C).unwrap_or(END_OF_CHAIN), u64::MAX)?;
        let mini_fat: Vec<u32> = (0..table.len() / 4).filter_map(|i| u32_at(&table, 4 * i)).collect();
        let mut seen = vec![false; mini_fat.len()];
        let (mut out, mut next) = (Vec::new(), start);
        while next != END_OF_CHAIN && (out.len() as u64) < size {
            let slot = seen.get_mut(next as usize).ok_or("not a readable xls container: a mini sector out of range")?;
            if std::mem::replace(slot, true) {
                return Err("not a readable xls container: its sectors chain into a loop".into());
            }
            out.extend_from_slice(mini.get(next as usize * 64..next as usize * 64 + 64).ok_or("a mini sector past the mini stream")?);
            next = mini_fat[next as usize];
        }
        out.truncate(size.min(out.len() as u64) as usize);
        Ok(out)
    }
}

/// One BIFF record and the CONTINUE records after it, as calamine groups them.
struct Record<'a> {
    kind: u16,
    parts: Vec<&'a [u8]>,
}

/// The records of `stream` from its start, until its end or a malformed header.
fn records(mut stream: &[u8]) -> impl Iterator<Item = Result<Record<'_>, String>> {
    std::iter::from_fn(move || {
        if stream.is_empty() {
            return None;
        }
        let header = |s: &[u8]| Some((u16_at(s, 0)?, u16_at(s, 2)? as usize));
        let Some((kind, length)) = header(stream) else { return Some(Err("a truncated xls record".into())) };
        let Some(data) = stream.get(4..4 + length) else { return Some(Err("a truncated xls record".into())) };
        stream = &stream[4 + length..];
        let mut parts = vec![data];
        while let Some((0x003C, length)) = header(stream) {
            let Some(data) = stream.get(4..4 + length) else { return Some(Err("a truncated xls record".into())) };
            parts.push(data);
            stream = &stream[4 + length..];
        }
        Some(Ok(Record { kind, parts }))
    })
}

/// What the workbook's globals say: where each sheet starts, and each shared string's size in UTF-8
/// (at most three bytes per character).
struct Globals {
    sheets: Vec<usize>,
    strings: Vec<u64>,
}

fn scan_globals(stream: &[u8]) -> Result<Globals, String> {
    let mut globals = Globals { sheets: Vec::new(), strings: Vec::new() };
    for record in records(stream) {
        let record = record?;
        match record.kind {
            0x0085 => globals.sheets.push(u32_at(record.parts[0], 0).ok_or("a short BoundSheet record")? as usize),
            0x00FC => globals.strings = string_sizes(&record.parts)?,
            0x000A => break,
            _ => {}
        }
    }
    Ok(globals)
}

/// The sizes of the SST's strings, read across its CONTINUE records as calamine reads them.
fn string_sizes(parts: &[&[u8]]) -> Result<Vec<u64>, String> {
    let mut cursor = Cursor { parts, part: 0, at: 8 };
    let mut sizes = Vec::new();
    while cursor.more() {
        let count = cursor.u16()?;
        let flags = cursor.byte()?;
        let runs = if flags & 0x8 != 0 { cursor.u16()? as usize } else { 0 };
        let extra = if flags & 0x4 != 0 { cursor.u32()? as usize } else { 0 };
        let mut high = flags & 0x1 != 0;
        let mut left = count as usize;
        while left > 0 {
            if cursor.remaining_here() == 0 {
                // Characters that go on in a CONTINUE record start with their own flags byte.
                cursor.next_part()?;
                high = cursor.byte()? & 0x1 != 0;
            }
            let width = if high { 2 } else { 1 };
            let take = left.min(cursor.remaining_here() / width).max(1);
            cursor.skip_here(take * width)?;
            left -= take;
        }
        cursor.skip(runs * 4 + extra)?;
        sizes.push(u64::from(count) * 3);
    }
    Ok(sizes)
}

struct Cursor<'a> {
    parts: &'a [&'a [u8]],
    part: usize,
    at: usize,
}

impl Cursor<'_> {
    fn more(&self) -> bool {
        self.at < self.parts[self.part].len() || self.parts[self.part + 1..].iter().any(|p| !p.is_empty())
    }

    fn remaining_here(&self) -> usize {
        self.parts[self.part].len().saturating_sub(self.at)
    }

    fn next_part(&mut self) -> Result<(), String> {
        if self.part + 1 >= self.parts.len() {
            return Err("a shared string runs past its record".into());
        }
        self.part += 1;
        self.at = 0;
        Ok(())
    }

    fn byte(&mut self) -> Result<u8, String> {
        while self.remaining_here() == 0 {
            self.next_part()?;
        }
        self.at += 1;
        Ok(self.parts[self.part][self.at - 1])
    }

    fn u16(&mut self) -> Result<u16, String> {
        Ok(u16::from_le_bytes([self.byte()?, self.byte()?]))
    }

    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes([self.byte()?, self.byte()?, self.byte()?, self.byte()?]))
    }

    fn skip_here(&mut self, bytes: usize) -> Result<(), String> {
        if bytes > self.remaining_here() {
            return Err("a shared string runs past its record".into());
        }
        self.at += bytes;
        Ok(())
    }

    fn skip(&mut self, mut bytes: usize) -> Result<(), String> {
        while bytes > 0 {
            while self.remaining_here() == 0 {
                self.next_part()?;
            }
            let step = bytes.min(self.remaining_here());
            self.at += step;
            bytes -= step;
        }
        Ok(())
    }
}

/// What calamine holds of one sheet: its dense range (cells, formulas) and the text copied into it.
struct SheetCost {
    cells: u64,
    text: u64,
}

/// The box of the cells a sheet's records place, and the reservation its DIMENSIONS record asks for.
#[derive(Default)]
struct Bounds {
    rows: Option<(u32, u32)>,
    columns: Option<(u32, u32)>,
}

impl Bounds {
    fn add(&mut self, row: u32, column: u32) {
        let grow = |range: &mut Option<(u32, u32)>, v: u32| *range = Some(range.map_or((v, v), |(lo, hi)| (lo.min(v), hi.max(v))));
        grow(&mut self.rows, row);
        grow(&mut self.columns, column);
    }

    fn area(&self) -> u64 {
        match (self.rows, self.columns) {
            (Some((r0, r1)), Some((c0, c1))) => u64::from(r1 - r0 + 1) * u64::from(c1 - c0 + 1),
            _ => 0,
        }
    }
}

fn scan_sheet(stream: &[u8], strings: &[u64]) -> Result<SheetCost, String> {
    let (mut cells, mut formulas) = (Bounds::default(), Bounds::default());
    let (mut reserved, mut text) = (0u64, 0u64);
    let (mut seen_bof, mut depth) = (false, 0usize);
    let position = |data: &[u8]| Some((u32::from(u16_at(data, 0)?), u32::from(u16_at(data, 2)?)));
    for record in records(stream) {
        let record = record?;
        let data = record.parts[0];
        if depth > 0 {
            match record.kind {
                0x0809 => depth += 1,
                0x000A => depth -= 1,
                _ => {}
            }
            continue;
        }
        match record.kind {
            0x0809 if seen_bof => depth += 1,
            0x0809 => seen_bof = true,
            0x0200 => reserved = reserved.saturating_add(dimensions(data)?),
            0x0203 | 0x0204 | 0x00D6 | 0x0205 | 0x027E | 0x0207 => {
                if let Some((row, column)) = position(data) {
                    cells.add(row, column);
                }
                if matches!(record.kind, 0x0204 | 0x00D6 | 0x0207) {
                    text += data.len() as u64 * 2;
                }
            }
            0x00FD => {
                let (row, column) = position(data).ok_or("a short LabelSst record")?;
                cells.add(row, column);
                let index = u32_at(data, 6).ok_or("a short LabelSst record")? as usize;
                text += strings.get(index).copied().unwrap_or(0);
            }
            0x00BD => {
                let (row, first) = position(data).ok_or("a short MulRk record")?;
                let last = data.len().checked_sub(2).and_then(|at| u16_at(data, at)).ok_or("a short MulRk record")?;
                cells.add(row, first);
                cells.add(row, u32::from(last).max(first));
            }
            0x0006 => {
                if let Some((row, column)) = position(data) {
                    cells.add(row, column);
                    formulas.add(row, column);
                }
            }
            0x000A => break,
            _ => {}
        }
    }
    Ok(SheetCost { cells: cells.area().saturating_add(formulas.area()).max(reserved), text })
}

/// The cells a DIMENSIONS record makes calamine reserve, read as calamine reads it; an inverted one
/// (which calamine would subtract into a wrapped size) is refused.
fn dimensions(data: &[u8]) -> Result<u64, String> {
    let read = match data.len() {
        10 => (u16_at(data, 0).map(u32::from), u16_at(data, 2).map(u32::from), u16_at(data, 4), u16_at(data, 6)),
        14 | 16 => (u32_at(data, 0), u32_at(data, 4), u16_at(data, 8), u16_at(data, 10)),
        _ => return Err("a DIMENSIONS record of an unknown length".into()),
    };
    let (Some(first_row), Some(last_row), Some(first_col), Some(last_col)) = read else { return Err("a short DIMENSIONS record".into()) };
    let (first_col, last_col) = (u32::from(first_col), u32::from(last_col));
    let first_col = if first_col > 0xFF || last_col < first_col { 0 } else { first_col };
    if last_row == 0 || last_col == 0 {
        return Ok(1);
    }
    if last_row - 1 < first_row || last_col - 1 < first_col {
        return Err("a DIMENSIONS record whose end lies before its start".into());
    }
    Ok(u64::from(last_row - first_row) * u64::from(last_col - first_col))
}
