//! Spreadsheets an upstream drops: workbooks crafted at test time whose declared counts, repeats,
//! dimensions and sector chains would make calamine ask for terabytes or loop forever. Each is refused
//! with an error naming the limit, in flat memory; a sparse sheet spanning the whole grid and real
//! workbooks (ods, xlsx, xls) are still read.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::Path;

use serde_json::{Value, json};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

use super::{Case, file_pipeline};

/// A zip container written entry by entry.
struct Zip(ZipWriter<File>);

impl Zip {
    fn create(path: &Path) -> Zip {
        Zip(ZipWriter::new(File::create(path).expect("workbook created")))
    }

    fn start(&mut self, name: &str, method: CompressionMethod) {
        self.0.start_file(name, SimpleFileOptions::default().compression_method(method)).expect("zip entry started");
    }

    /// A deflated entry.
    fn add(&mut self, name: &str, bytes: &[u8]) -> &mut Zip {
        self.start(name, CompressionMethod::Deflated);
        self.0.write_all(bytes).expect("zip entry written");
        self
    }

    /// A deflated entry of `mib` MiB of zero bytes, written a MiB at a time.
    fn add_zeros(&mut self, name: &str, mib: usize) -> &mut Zip {
        self.start(name, CompressionMethod::Deflated);
        let block = vec![0u8; 1 << 20];
        for _ in 0..mib {
            self.0.write_all(&block).expect("zip entry written");
        }
        self
    }

    fn finish(self) {
        self.0.finish().expect("zip finished");
    }
}

const RELS_NS: &str = "http://schemas.openxmlformats.org/package/2006/relationships";
const REL_TYPE: &str = "http://schemas.openxmlformats.org/officeDocument/2006/relationships";
const MAIN_NS: &str = "http://schemas.openxmlformats.org/spreadsheetml/2006/main";

/// A minimal xlsx: one sheet `Sheet1` whose `<sheetData>` holds `rows`, and a sharedStrings.xml of
/// `shared` when given. Unfinished, so that a test can add entries.
fn xlsx(path: &Path, rows: &str, shared: Option<&str>) -> Zip {
    let head = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>"#;
    let types = format!(
        r#"{head}<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/><Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/></Types>"#
    );
    let root_rels = format!(
        r#"{head}<Relationships xmlns="{RELS_NS}"><Relationship Id="rId1" Type="{REL_TYPE}/officeDocument" Target="xl/workbook.xml"/></Relationships>"#
    );
    let workbook = format!(
        r#"{head}<workbook xmlns="{MAIN_NS}" xmlns:r="{REL_TYPE}"><sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>"#
    );
    let strings_rel = if shared.is_some() {
        format!(r#"<Relationship Id="rId2" Type="{REL_TYPE}/sharedStrings" Target="sharedStrings.xml"/>"#)
    } else {
        String::new()
    };
    let workbook_rels = format!(
        r#"{head}<Relationships xmlns="{RELS_NS}"><Relationship Id="rId1" Type="{REL_TYPE}/worksheet" Target="worksheets/sheet1.xml"/>{strings_rel}</Relationships>"#
    );
    let sheet = format!(r#"{head}<worksheet xmlns="{MAIN_NS}"><sheetData>{rows}</sheetData></worksheet>"#);
    let mut zip = Zip::create(path);
    zip.add("[Content_Types].xml", types.as_bytes())
        .add("_rels/.rels", root_rels.as_bytes())
        .add("xl/workbook.xml", workbook.as_bytes())
        .add("xl/_rels/workbook.xml.rels", workbook_rels.as_bytes())
        .add("xl/worksheets/sheet1.xml", sheet.as_bytes());
    if let Some(shared) = shared {
        zip.add("xl/sharedStrings.xml", format!("{head}{shared}").as_bytes());
    }
    zip
}

/// A minimal ods: one table `Sheet1` holding `rows` (its `<table:table-row>` elements). Unfinished.
fn ods(path: &Path, rows: &str) -> Zip {
    let head = r#"<?xml version="1.0" encoding="UTF-8"?>"#;
    let manifest = format!(
        r#"{head}<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.2"><manifest:file-entry manifest:full-path="/" manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/><manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/></manifest:manifest>"#
    );
    let content = format!(
        r#"{head}<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.2"><office:body><office:spreadsheet><table:table table:name="Sheet1">{rows}</table:table></office:spreadsheet></office:body></office:document-content>"#
    );
    let mut zip = Zip::create(path);
    // The mimetype comes first and stored, as OpenDocument asks.
    zip.start("mimetype", CompressionMethod::Stored);
    zip.0.write_all(b"application/vnd.oasis.opendocument.spreadsheet").expect("mimetype written");
    zip.add("META-INF/manifest.xml", manifest.as_bytes()).add("content.xml", content.as_bytes());
    zip
}

/// An inline-string cell of an xlsx row.
fn text_cell(at: &str, text: &str) -> String {
    format!(r#"<c r="{at}" t="inlineStr"><is><t>{text}</t></is></c>"#)
}

/// The register's objects by origin id.
fn objects(case: &Case) -> BTreeMap<String, Value> {
    case.objects().into_iter().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_string_count_of_a_trillion_is_refused_before_it_is_reserved() {
    let case = Case::new();
    let path = case.path("book.xlsx");
    let rows = format!(r#"<row r="1">{}</row>"#, text_cell("A1", "id"));
    let shared = format!(r#"<sst xmlns="{MAIN_NS}" count="1" uniqueCount="1000000000000"><si><t>id</t></si></sst>"#);
    xlsx(&path, &rows, Some(&shared)).finish();
    let ran = case.run(&file_pipeline(&path.display().to_string(), "", "")).await;
    ran.expect(1, 200).says("sharedStrings.xml declares 1000000000000 strings").says("maxSheetCells (20000000)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sparse_sheet_spanning_the_whole_grid_is_read_in_flat_memory() {
    // Six cells whose box is the whole grid (A1:XFD1048576): 2 data rows of 16,384 columns are
    // 32,768 values, far within maxSheetCells; only the cells there are held, never the box.
    let case = Case::new();
    let path = case.path("sparse.xlsx");
    let rows = format!(
        r#"<row r="1">{}{}</row><row r="2"><c r="A2"><v>1</v></c>{}</row><row r="1048576"><c r="A1048576"><v>2</v></c>{}</row>"#,
        text_cell("A1", "id"),
        text_cell("B1", "name"),
        text_cell("B2", "near"),
        text_cell("XFD1048576", "far"),
    );
    xlsx(&path, &rows, None).finish();
    case.run(&file_pipeline(&path.display().to_string(), "", "")).await.expect(0, 200).says("created 2");
    let objects = objects(&case);
    assert_eq!(objects.keys().collect::<Vec<_>>(), ["1", "2"]);
    assert_eq!(objects["1"]["name"], "near");
    assert_eq!(objects["2"]["XFD"], "far", "a blank header cell is named by its column letters");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_times_the_sheet_width_past_max_sheet_cells_are_refused() {
    // 1,221 data rows of one cell each, and a header cell at XFD1: the records would hold
    // 1,221 × 16,384 = 20,004,864 values, just past the 20,000,000 allowed.
    let case = Case::new();
    let path = case.path("wide.xlsx");
    let mut rows = format!(r#"<row r="1">{}{}</row>"#, text_cell("A1", "id"), text_cell("XFD1", "far"));
    for row in 2..=1222 {
        rows.push_str(&format!(r#"<row r="{row}"><c r="A{row}"><v>{}</v></c></row>"#, row - 1));
    }
    xlsx(&path, &rows, None).finish();
    let ran = case.run(&file_pipeline(&path.display().to_string(), "", "")).await;
    ran.expect(1, 200).says("1221 rows of 16384 columns make more than maxSheetCells (20000000) values");
    assert!(case.objects().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workbook_entries_unpacking_past_max_decompressed_bytes_are_refused() {
    // 50 MiB of zeros packs into some 50 KB: refused from the zip's directory, before anything unpacks.
    let case = Case::new();
    let xlsx_path = case.path("bomb.xlsx");
    let mut book = xlsx(&xlsx_path, &format!(r#"<row r="1">{}</row>"#, text_cell("A1", "id")), None);
    book.add_zeros("xl/media/image1.png", 50);
    book.finish();
    let ods_path = case.path("bomb.ods");
    let mut book = ods(
        &ods_path,
        "<table:table-row><table:table-cell office:value-type=\"string\"><text:p>id</text:p></table:table-cell></table:table-row>",
    );
    book.add_zeros("Pictures/1.png", 50);
    book.finish();
    for path in [xlsx_path, ods_path] {
        assert!(std::fs::metadata(&path).unwrap().len() < 1 << 20, "the bomb is small packed");
        let pipeline = file_pipeline(&path.display().to_string(), "limits: { maxDecompressedBytes: 20MiB }", "");
        let ran = Case::new().run(&pipeline).await;
        ran.expect(1, 200).says("the workbook, unpacked, is larger than maxDecompressedBytes (20 MiB)");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ods_cell_repeated_over_the_whole_grid_is_refused_in_flat_memory() {
    // One cell with a value, repeated 16,384 columns wide and 1,000,000 rows down: 16 billion cells
    // calamine would build dense, from a content.xml of a few hundred bytes.
    let case = Case::new();
    let path = case.path("repeated.ods");
    let rows = r#"<table:table-row table:number-rows-repeated="1000000"><table:table-cell table:number-columns-repeated="16384" office:value-type="float" office:value="1"/></table:table-row>"#;
    ods(&path, rows).finish();
    let ran = case.run(&file_pipeline(&path.display().to_string(), "", "")).await;
    ran.expect(1, 200).says("the workbook's sheets span more than maxSheetCells (20000000) cells when read");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ods_text_is_counted_at_every_copy_its_repeats_make() {
    // 1,000 bytes of text in a cell repeated 16,384 × 100 times: 1.6 million cells are allowed, the
    // 1.6 GB of text copied into them is not.
    let case = Case::new();
    let path = case.path("copies.ods");
    let rows = format!(
        r#"<table:table-row table:number-rows-repeated="100"><table:table-cell table:number-columns-repeated="16384" office:value-type="string"><text:p>{}</text:p></table:table-cell></table:table-row>"#,
        "x".repeat(1000)
    );
    ods(&path, &rows).finish();
    let ran = case.run(&file_pipeline(&path.display().to_string(), "", "")).await;
    ran.expect(1, 200).says("the text of the workbook's repeated cells is larger than maxDecompressedBytes (1 GiB)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ods_space_repeated_a_billion_times_is_refused() {
    let case = Case::new();
    let path = case.path("spaces.ods");
    let rows = r#"<table:table-row><table:table-cell office:value-type="string"><text:p>a<text:s text:c="1000000000"/>b</text:p></table:table-cell></table:table-row>"#;
    ods(&path, rows).finish();
    let ran = case.run(&file_pipeline(&path.display().to_string(), "", "")).await;
    ran.expect(1, 200).says("a cell asks for 1000000000 repeated spaces, more than 10000");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_ods_and_xlsx_workbooks_still_read_end_to_end() {
    let case = Case::new();
    let pets = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/pets.ods");
    case.run(&file_pipeline(pets, "", r#", headerRow: 3, range: "A3:C10""#)).await.expect(0, 200).says("created 3");
    assert_eq!(objects(&case)["2"], json!({"id": 2, "name": "Tom", "born": "2021-06-30"}));

    let case = Case::new();
    let path = case.path("pets.xlsx");
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    sheet.write(0, 0, "id").unwrap();
    sheet.write(0, 1, "name").unwrap();
    for (row, (id, name)) in [(1.0, "Rex"), (2.0, "Tom"), (3.0, "Kit")].into_iter().enumerate() {
        sheet.write(row as u32 + 1, 0, id).unwrap();
        sheet.write(row as u32 + 1, 1, name).unwrap();
    }
    book.save(&path).unwrap();
    case.run(&file_pipeline(&path.display().to_string(), "", "")).await.expect(0, 200).says("created 3");
    assert_eq!(objects(&case)["3"], json!({"id": 3, "name": "Kit"}));
}

// xls: an OLE2 compound file holding a `Workbook` stream of BIFF8 records.

const END_OF_CHAIN: u32 = 0xFFFF_FFFE;
const FREE_SECTOR: u32 = 0xFFFF_FFFF;
const FAT_SECTOR: u32 = 0xFFFF_FFFD;
const NO_STREAM: u32 = 0xFFFF_FFFF;

fn put16(buf: &mut [u8], at: usize, value: u16) {
    buf[at..at + 2].copy_from_slice(&value.to_le_bytes());
}

fn put32(buf: &mut [u8], at: usize, value: u32) {
    buf[at..at + 4].copy_from_slice(&value.to_le_bytes());
}

/// A BIFF record: its type, its length, its data.
fn record(kind: u16, data: &[u8]) -> Vec<u8> {
    let mut out = kind.to_le_bytes().to_vec();
    out.extend_from_slice(&(data.len() as u16).to_le_bytes());
    out.extend_from_slice(data);
    out
}

/// A BIFF8 BOF opening a substream: `kind` 0x0005 the workbook globals, 0x0010 a worksheet.
fn bof(kind: u16) -> Vec<u8> {
    let mut data = [0u8; 16];
    put16(&mut data, 0, 0x0600);
    put16(&mut data, 2, kind);
    put16(&mut data, 4, 0x0DBB);
    put16(&mut data, 6, 0x07CC);
    put32(&mut data, 12, 0x0006);
    record(0x0809, &data)
}

/// A DIMENSIONS record of BIFF8: rows `first..last` and columns `first..last` (each end exclusive).
fn dimensions(rows: (u32, u32), columns: (u16, u16)) -> Vec<u8> {
    let mut data = [0u8; 14];
    put32(&mut data, 0, rows.0);
    put32(&mut data, 4, rows.1);
    put16(&mut data, 8, columns.0);
    put16(&mut data, 10, columns.1);
    record(0x0200, &data)
}

/// A Workbook stream: globals (BOF, a BoundSheet pointing at the sheet, EOF), then the sheet (BOF,
/// `sheet`, EOF), padded to 4096 bytes so that it lives in the file's sectors, not the mini stream.
fn workbook_stream(sheet: &[u8]) -> Vec<u8> {
    let mut stream = bof(0x0005);
    let pointer = stream.len() + 4;
    // The sheet's offset (set below), a visible worksheet, and its name: 6 characters of 8 bits.
    let mut bound = vec![0u8; 4];
    bound.extend_from_slice(&[0, 0, 6, 0]);
    bound.extend_from_slice(b"Sheet1");
    stream.extend(record(0x0085, &bound));
    stream.extend(record(0x000A, &[]));
    let sheet_at = stream.len() as u32;
    put32(&mut stream, pointer, sheet_at);
    stream.extend(bof(0x0010));
    stream.extend_from_slice(sheet);
    stream.extend(record(0x000A, &[]));
    stream.resize(stream.len().max(4096), 0);
    stream
}

/// A directory entry of a compound file.
fn directory_entry(name: &str, kind: u8, child: u32, start: u32, size: u32) -> Vec<u8> {
    let mut entry = vec![0u8; 128];
    if !name.is_empty() {
        let utf16: Vec<u8> = name.encode_utf16().chain([0]).flat_map(u16::to_le_bytes).collect();
        entry[..utf16.len()].copy_from_slice(&utf16);
        put16(&mut entry, 64, utf16.len() as u16);
    }
    entry[66] = kind;
    entry[67] = 1;
    put32(&mut entry, 68, NO_STREAM);
    put32(&mut entry, 72, NO_STREAM);
    put32(&mut entry, 76, child);
    put32(&mut entry, 116, start);
    put32(&mut entry, 120, size);
    entry
}

/// A compound file (version 3, 512-byte sectors) holding `stream` as its `Workbook`: the header, the
/// FAT in sector 0, the directory in sector 1, the stream from sector 2. `looped` chains the stream's
/// last sector back to its first and has the directory claim 2 GiB, as a hostile file would.
fn compound(stream: &[u8], looped: bool) -> Vec<u8> {
    let sectors = stream.len().div_ceil(512);
    assert!(sectors + 2 <= 128, "one FAT sector maps 128 sectors");
    let mut header = vec![0u8; 512];
    header[..8].copy_from_slice(&[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1]);
    put16(&mut header, 0x18, 0x003E);
    put16(&mut header, 0x1A, 0x0003);
    put16(&mut header, 0x1C, 0xFFFE);
    put16(&mut header, 0x1E, 9);
    put16(&mut header, 0x20, 6);
    put32(&mut header, 0x2C, 1);
    put32(&mut header, 0x30, 1);
    put32(&mut header, 0x38, 4096);
    put32(&mut header, 0x3C, END_OF_CHAIN);
    put32(&mut header, 0x44, END_OF_CHAIN);
    for i in 1..109 {
        put32(&mut header, 0x4C + 4 * i, FREE_SECTOR);
    }
    let mut fat = vec![FREE_SECTOR; 128];
    fat[0] = FAT_SECTOR;
    fat[1] = END_OF_CHAIN;
    for i in 0..sectors {
        fat[2 + i] = match (i + 1 < sectors, looped) {
            (true, _) => (3 + i) as u32,
            (false, true) => 2,
            (false, false) => END_OF_CHAIN,
        };
    }
    let size = if looped { 0x7FFF_FFFF } else { stream.len() as u32 };
    let mut body = header;
    body.extend(fat.iter().flat_map(|s| s.to_le_bytes()));
    body.extend(directory_entry("Root Entry", 5, 1, END_OF_CHAIN, 0));
    body.extend(directory_entry("Workbook", 2, NO_STREAM, 2, size));
    body.extend(directory_entry("", 0, NO_STREAM, 0, 0));
    body.extend(directory_entry("", 0, NO_STREAM, 0, 0));
    body.extend_from_slice(stream);
    body.resize(512 * (2 + sectors + 1), 0);
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_xls_declaring_four_billion_rows_is_refused_before_calamine_reserves_them() {
    // DIMENSIONS of rows 0..0xFFFFFFF0 and columns 0..0xFF: a trillion cells from a 6 KB file.
    let case = Case::new();
    let path = case.path("dimensions.xls");
    std::fs::write(&path, compound(&workbook_stream(&dimensions((0, 0xFFFF_FFF0), (0, 0xFF))), false)).unwrap();
    let ran = case.run(&file_pipeline(&path.display().to_string(), "", "")).await;
    ran.expect(1, 200).says("the workbook's sheets span more than maxSheetCells (20000000) cells when read");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_xls_whose_sector_chain_loops_is_refused() {
    let case = Case::new();
    let path = case.path("loop.xls");
    std::fs::write(&path, compound(&workbook_stream(&dimensions((0, 2), (0, 2))), true)).unwrap();
    let ran = case.run(&file_pipeline(&path.display().to_string(), "", "")).await;
    ran.expect(1, 200).says("not a readable xls container: its sectors chain into a loop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_xls_still_reads_end_to_end() {
    // fixtures/pets.xls, written by xlwt (fixtures/make_pets_xls.py).
    let case = Case::new();
    let pets = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/pets.xls");
    case.run(&file_pipeline(pets, "", "")).await.expect(0, 200).says("created 3");
    let objects = objects(&case);
    let names: Vec<(&str, &str)> = objects.iter().map(|(id, object)| (id.as_str(), object["name"].as_str().unwrap_or_default())).collect();
    assert_eq!(names, [("1", "Rex"), ("2", "Tom"), ("3", "Kit")]);
}
