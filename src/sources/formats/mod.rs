//! File formats: how the bytes of one file become records. Shared by every source that reads files
//! (local paths and object stores, FTP). Text formats stream through a blocking reader in bounded
//! chunks; spreadsheets need the whole file (a zip or OLE container is read by seeking), Parquet is read
//! a row group at a time from its store.

mod csv;
mod json;
mod parquet;
mod sheet;
mod sheet_checks;
mod sheet_xls;

use std::io::Read;

use tokio::sync::mpsc;

use crate::config::{ColumnTypes, FileFormat, SourceConfigDef};
use crate::envelope::ResultsPosition;
use crate::limits::{ByteSize, OverLimit, ReadLimits};
use crate::sources::{Chunk, RawRecord, SourceError, SourceEvent};
pub use parquet::read_parquet;

/// Records per chunk sent downstream.
pub const CHUNK_RECORDS: usize = 1024;

/// Where a format reader sends what it reads.
pub type EventSender = mpsc::Sender<Result<SourceEvent, SourceError>>;

/// How to read the files of one synchronization.
#[derive(Debug, Clone)]
pub struct FormatOptions {
    /// `None`: from each file's extension.
    pub format: Option<FileFormat>,
    pub delimiter: u8,
    pub header: bool,
    pub encoding: Option<&'static encoding_rs::Encoding>,
    pub column_types: ColumnTypes,
    pub results_position: ResultsPosition,
    pub sheet: Option<String>,
    pub header_row: Option<u32>,
    pub range: Option<CellRange>,
    /// `Some(true)`: the bytes are gzip-compressed whatever they start with (`compression: gzip`, a
    /// file target's own `.gz` snapshot); `Some(false)`: never (`compression: none`); `None`: a gzip
    /// stream is recognised by its first bytes.
    pub gzip: Option<bool>,
    /// The source's bounds on what it reads.
    pub limits: ReadLimits,
}

/// Cells `A1:F500` as 0-based (row, column) corners.
pub type CellRange = ((u32, u32), (u32, u32));

/// A `sourceConfig` key the format readers cannot read, and why: the pipeline file's checks report
/// every one (at its key), a reader built from such a configuration fails on the first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// The key under `sourceConfig`, e.g. `delimiter`.
    pub key: &'static str,
    pub message: String,
}

impl FormatOptions {
    pub fn from_config(config: &SourceConfigDef) -> Result<FormatOptions, SourceError> {
        Self::read(config).map_err(|mut problems| SourceError::Config(problems.remove(0).message))
    }

    /// The problems of `config` for the format readers (none: it reads).
    pub fn problems(config: &SourceConfigDef) -> Vec<ConfigProblem> {
        Self::read(config).err().unwrap_or_default()
    }

    fn read(config: &SourceConfigDef) -> Result<FormatOptions, Vec<ConfigProblem>> {
        let mut problems = Vec::new();
        let mut problem = |key, message| problems.push(ConfigProblem { key, message });
        let delimiter = match &config.delimiter {
            Some(text) => delimiter_byte(text).unwrap_or_else(|| {
                problem("delimiter", format!("`{text}` is not a one-byte delimiter (write `,`, `;`, `|` or `\\t`)"));
                b','
            }),
            None => b',',
        };
        let encoding = config.encoding.as_ref().and_then(|label| {
            let found = encoding_rs::Encoding::for_label(label.as_bytes());
            if found.is_none() {
                problem(
                    "encoding",
                    format!("`{label}` is not an encoding this reader knows (e.g. utf-8, windows-1252, iso-8859-1, utf-16le)"),
                );
            }
            found
        });
        let range = config.range.as_ref().and_then(|text| {
            let found = parse_range(text);
            if found.is_none() {
                problem("range", format!("`{text}` is not a cell range like `A1:F500`"));
            }
            found
        });
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(FormatOptions {
            format: config.format,
            delimiter,
            header: config.header.is_none_or(|f| f.0),
            encoding,
            column_types: config.column_types.unwrap_or_default(),
            results_position: ResultsPosition::parse(config.results_position.as_deref()),
            sheet: config.sheet.as_ref().map(|s| s.0.clone()),
            header_row: config.header_row,
            range,
            gzip: config.compression.map(|c| c == crate::config::InputCompression::Gzip),
            limits: ReadLimits::default(),
        })
    }

    /// The format of file `name`: the configured one, or its extension's (`.gz` looked past).
    pub fn format_of(&self, name: &str) -> Result<FileFormat, SourceError> {
        let plain = name.strip_suffix(".gz").or_else(|| name.strip_suffix(".GZ")).unwrap_or(name);
        self.format.or_else(|| FileFormat::from_name(plain)).ok_or_else(|| {
            SourceError::Config(format!(
                "cannot tell the format of `{name}` from its name: set `format` (csv, ndjson, json, xlsx, ods, parquet)"
            ))
        })
    }
}

/// `,`, `;`, `|`, `\t` (written as a backslash and a t, or a real tab).
pub fn delimiter_byte(text: &str) -> Option<u8> {
    match text {
        "\\t" | "\t" | "tab" => Some(b'\t'),
        _ if text.len() == 1 && text.is_ascii() => Some(text.as_bytes()[0]),
        _ => None,
    }
}

/// Parses `A1:F500` (or a single cell `B2`, meaning from there on) into 0-based corners.
pub fn parse_range(text: &str) -> Option<CellRange> {
    let (start, end) = match text.split_once(':') {
        Some((a, b)) => (cell(a)?, cell(b)?),
        None => (cell(text)?, (u32::MAX - 1, u32::MAX - 1)),
    };
    (start.0 <= end.0 && start.1 <= end.1).then_some((start, end))
}

/// `C7` → (6, 2).
fn cell(text: &str) -> Option<(u32, u32)> {
    let text = text.trim().to_ascii_uppercase();
    let split = text.find(|c: char| c.is_ascii_digit())?;
    let (letters, digits) = text.split_at(split);
    if letters.is_empty() || !letters.chars().all(|c| c.is_ascii_uppercase()) {
        return None;
    }
    let column = letters.bytes().try_fold(0u32, |acc, b| acc.checked_mul(26)?.checked_add(u32::from(b - b'A') + 1))? - 1;
    let row: u32 = digits.parse().ok()?;
    (row >= 1).then(|| (row - 1, column))
}

/// Column names as records use them: each header text trimmed, a blank one named by `blank(index)`,
/// a repeated one numbered (`name`, `name_2`).
pub fn unique_names(texts: impl Iterator<Item = String>, blank: impl Fn(usize) -> String) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    // A sheet may be 16,384 columns wide: names are looked up, not compared one by one.
    let mut taken = std::collections::HashSet::new();
    for (i, text) in texts.enumerate() {
        let text = text.trim();
        let base = if text.is_empty() { blank(i) } else { text.to_string() };
        let mut candidate = base.clone();
        let mut n = 2;
        while taken.contains(&candidate) {
            candidate = format!("{base}_{n}");
            n += 1;
        }
        taken.insert(candidate.clone());
        names.push(candidate);
    }
    names
}

/// `2` → `C`: a spreadsheet's name for column index 2.
pub fn column_letters(mut index: u32) -> String {
    let mut out = Vec::new();
    loop {
        out.push(b'A' + (index % 26) as u8);
        if index < 26 {
            break;
        }
        index = index / 26 - 1;
    }
    out.reverse();
    String::from_utf8(out).expect("ASCII letters")
}

/// Why a format reader stopped early.
#[derive(Debug)]
pub enum ReadError {
    /// The run stopped listening (cancelled, or failed elsewhere).
    Stopped,
    /// The file as a whole could not be read.
    Failed(SourceError),
}

impl From<SourceError> for ReadError {
    fn from(error: SourceError) -> Self {
        ReadError::Failed(error)
    }
}

/// Collects records into chunks and sends each full one from a blocking thread.
pub struct ChunkWriter<'a> {
    tx: &'a EventSender,
    origin: String,
    unit: &'static str,
    records: Vec<RawRecord>,
    lines: Vec<u64>,
}

impl<'a> ChunkWriter<'a> {
    pub fn new(tx: &'a EventSender, origin: String, unit: &'static str) -> Self {
        ChunkWriter { tx, origin, unit, records: Vec::with_capacity(CHUNK_RECORDS), lines: Vec::with_capacity(CHUNK_RECORDS) }
    }

    pub fn push(&mut self, record: RawRecord, line: u64) -> Result<(), ReadError> {
        self.records.push(record);
        self.lines.push(line);
        if self.records.len() >= CHUNK_RECORDS { self.flush() } else { Ok(()) }
    }

    pub fn flush(&mut self) -> Result<(), ReadError> {
        match self.take() {
            Some(chunk) => self.tx.blocking_send(Ok(SourceEvent::Chunk(chunk))).map_err(|_| ReadError::Stopped),
            None => Ok(()),
        }
    }

    /// [`Self::push`] for a reader on the runtime (a database's row stream).
    pub async fn push_async(&mut self, record: RawRecord, line: u64) -> Result<(), ReadError> {
        self.records.push(record);
        self.lines.push(line);
        if self.records.len() >= CHUNK_RECORDS { self.flush_async().await } else { Ok(()) }
    }

    pub async fn flush_async(&mut self) -> Result<(), ReadError> {
        match self.take() {
            Some(chunk) => self.tx.send(Ok(SourceEvent::Chunk(chunk))).await.map_err(|_| ReadError::Stopped),
            None => Ok(()),
        }
    }

    fn take(&mut self) -> Option<Chunk> {
        (!self.records.is_empty()).then(|| Chunk {
            records: std::mem::replace(&mut self.records, Vec::with_capacity(CHUNK_RECORDS)),
            origin: self.origin.clone(),
            lines: std::mem::replace(&mut self.lines, Vec::with_capacity(CHUNK_RECORDS)),
            unit: self.unit,
        })
    }
}

/// Reads one file of a streamable or in-memory format (everything but Parquet), in a blocking thread.
/// `name` is the file as the user knows it, used in every message. A gzip stream (by its first bytes,
/// or as `options.gzip` says) is decompressed, up to `maxDecompressedBytes`.
pub fn read_blocking(
    reader: impl Read,
    name: &str,
    format: FileFormat,
    options: &FormatOptions,
    tx: &EventSender,
) -> Result<(), ReadError> {
    let file_error = |reason: String| ReadError::Failed(SourceError::File { file: name.to_string(), reason });
    let mut reader = std::io::BufReader::with_capacity(64 * 1024, reader);
    let gzip = match options.gzip {
        Some(gzip) => gzip,
        None => std::io::BufRead::fill_buf(&mut reader).map_err(|e| io_failure(name, e))?.starts_with(&[0x1f, 0x8b]),
    };
    let reader: Box<dyn Read + '_> = if gzip {
        let limit = options.limits.max_decompressed_bytes;
        Box::new(Bounded::new(
            flate2::bufread::MultiGzDecoder::new(reader),
            limit,
            format!("{name}, decompressed,"),
            "maxDecompressedBytes",
        ))
    } else {
        Box::new(reader)
    };
    match format {
        FileFormat::Csv => csv::read(decoded(reader, options), name, options, tx),
        FileFormat::Ndjson => json::read_lines(decoded(reader, options), name, options, tx),
        FileFormat::Json => {
            let body = read_whole(decoded(reader, options), name, options)?;
            json::read_document(body.into(), name, options, tx)
        }
        FileFormat::Xlsx | FileFormat::Xls | FileFormat::Xlsb | FileFormat::Ods => {
            let body = read_whole(reader, name, options)?;
            sheet::read(body, name, format, options, tx)
        }
        FileFormat::Parquet => Err(file_error("Parquet is read from its store, not as a stream".into())),
    }
}

/// A file read whole into memory, refused past `maxFileBytes`.
fn read_whole(reader: impl Read, name: &str, options: &FormatOptions) -> Result<Vec<u8>, ReadError> {
    let limit = options.limits.max_file_bytes;
    let mut body = Vec::new();
    Bounded::new(reader, limit, name.to_string(), "maxFileBytes").read_to_end(&mut body).map_err(|e| io_failure(name, e))?;
    Ok(body)
}

/// A reader that fails once more than `limit` bytes came through it, with an error naming the key.
pub struct Bounded<R> {
    inner: R,
    left: u64,
    limit: ByteSize,
    what: String,
    key: &'static str,
}

impl<R> Bounded<R> {
    pub fn new(inner: R, limit: ByteSize, what: String, key: &'static str) -> Bounded<R> {
        Bounded { inner, left: limit.bytes(), limit, what, key }
    }
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buf)?;
        if read as u64 > self.left {
            return Err(std::io::Error::other(LimitExceeded(OverLimit::bytes(std::mem::take(&mut self.what), self.key, self.limit))));
        }
        self.left -= read as u64;
        Ok(read)
    }
}

/// The I/O error a [`Bounded`] reader fails with.
#[derive(Debug)]
struct LimitExceeded(OverLimit);

impl std::fmt::Display for LimitExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for LimitExceeded {}

/// A file that could not be read on: its limit, or the I/O error.
pub fn io_failure(name: &str, error: std::io::Error) -> ReadError {
    ReadError::Failed(
        limit_error(error).unwrap_or_else(|e| SourceError::File { file: name.to_string(), reason: format!("cannot read: {e}") }),
    )
}

/// The source error of an I/O error that is a [`Bounded`] reader's limit; the error itself otherwise.
pub fn limit_error(error: std::io::Error) -> Result<SourceError, std::io::Error> {
    match error.get_ref().and_then(|inner| inner.downcast_ref::<LimitExceeded>()) {
        Some(LimitExceeded(over)) => Ok(SourceError::Limit(over.to_string())),
        None => Err(error),
    }
}

/// Reads one file arriving as an async byte stream (a download): text formats stream through a
/// blocking reader as the bytes come; a spreadsheet is collected first (its container is read by
/// seeking). The stream is handed back, so a protocol can close its transfer.
pub async fn read_async<R>(mut reader: R, name: &str, format: FileFormat, options: &FormatOptions, tx: &EventSender) -> Result<R, ReadError>
where
    R: tokio::io::AsyncRead + Unpin + Send + 'static,
{
    let stopped = |e: tokio::task::JoinError| ReadError::Failed(SourceError::Config(format!("the file reader stopped: {e}")));
    let (name, options, tx) = (name.to_string(), options.clone(), tx.clone());
    if format.is_spreadsheet() {
        let limit = options.limits.max_file_bytes;
        let mut body = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut tokio::io::AsyncReadExt::take(&mut reader, limit.bytes() + 1), &mut body)
            .await
            .map_err(|e| ReadError::Failed(SourceError::Connect { url: name.clone(), reason: format!("the download broke off: {e}") }))?;
        if body.len() as u64 > limit.bytes() {
            return Err(ReadError::Failed(SourceError::Limit(OverLimit::bytes(name, "maxFileBytes", limit).to_string())));
        }
        tokio::task::spawn_blocking(move || read_blocking(std::io::Cursor::new(body), &name, format, &options, &tx))
            .await
            .map_err(stopped)??;
        return Ok(reader);
    }
    let bridge = tokio_util::io::SyncIoBridge::new(reader);
    let (bridge, result) = tokio::task::spawn_blocking(move || {
        let mut bridge = bridge;
        let result = read_blocking(&mut bridge, &name, format, &options, &tx);
        (bridge, result)
    })
    .await
    .map_err(stopped)?;
    result.map(|()| bridge.into_inner())
}

/// Text in the configured encoding, as UTF-8; a byte-order mark is honoured and removed. UTF-8 passes
/// through unchecked: a bad byte then fails only its own record.
fn decoded<R: Read>(reader: R, options: &FormatOptions) -> encoding_rs_io::DecodeReaderBytes<R, Vec<u8>> {
    encoding_rs_io::DecodeReaderBytesBuilder::new().encoding(options.encoding).utf8_passthru(true).build(reader)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_columns() {
        assert_eq!(parse_range("A1:F500"), Some(((0, 0), (499, 5))));
        assert_eq!(parse_range("b2:AA3"), Some(((1, 1), (2, 26))));
        assert_eq!(parse_range("B2").map(|r| r.0), Some((1, 1)));
        assert_eq!(parse_range("F5:A1"), None);
        assert_eq!(parse_range("A0:B2"), None);
        assert_eq!(parse_range("1A"), None);
        assert_eq!(column_letters(0), "A");
        assert_eq!(column_letters(25), "Z");
        assert_eq!(column_letters(26), "AA");
        assert_eq!(column_letters(27), "AB");
        assert_eq!(column_letters(701), "ZZ");
        assert_eq!(column_letters(702), "AAA");
    }

    #[test]
    fn delimiters() {
        assert_eq!(delimiter_byte(";"), Some(b';'));
        assert_eq!(delimiter_byte("\\t"), Some(b'\t'));
        assert_eq!(delimiter_byte(";;"), None);
        assert_eq!(delimiter_byte("é"), None);
    }
}
