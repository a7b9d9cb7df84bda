//! The command source (`type: command`): any program as a source. syncline runs `command` (no shell)
//! and reads the records it prints on its standard output, in the synchronization's `format`
//! (NDJSON by default; CSV, or one JSON document with `resultsPosition`) through the same readers as
//! files, streaming: a slow target holds the program back through its pipe. What it writes to stderr
//! goes to the job log. A non-zero exit, a kill, or running past the source's `timeout` fails the run,
//! and nothing is deleted after it.
//!
//! The program sees only the environment the source gives it (`env`, a `PATH`, and the two below),
//! none of syncline's own. A cursor is the program's to keep: it finds the file to write its new cursor
//! to in `SYNCLINE_CURSOR_FILE`; after a complete run syncline saves what it wrote there, and on the
//! next run hands it back in `SYNCLINE_CURSOR` (and then deletes nothing: the program reads only what
//! changed). `--force-full-sync` runs it without one.

mod process;

use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use serde::{Deserialize, Deserializer, Serialize};

use crate::config::{FileFormat, SourceConfigDef, SourceDef, TextMap};
use crate::sources::feed::spawn_feed;
use crate::sources::formats::{self, EventSender, FormatOptions, ReadError};
use crate::sources::registry::{ConnectorSettings, FormField, Input, SettingsSchema, SourceConnector, read_settings, settings_of};
use crate::sources::{Source, SourceError, SourceEvent, SourceStream};
pub use process::{BoundedLines, DEFAULT_PATH, Launcher, Line, Program, Running, Scratch, resolve, within};

/// The command source, as the registry lists it.
pub const CONNECTOR: SourceConnector = SourceConnector {
    kind: "command",
    label: "Custom program (command)",
    schemes: &[],
    local_paths: false,
    keys: &["format", "delimiter", "header", "encoding", "columnTypes"],
    validate,
    build: |def, config, _| Ok(Box::new(CommandSource::new(def, config)?)),
    probe: None,
    settings: Some(SettingsSchema { keys: &["command", "env", "workingDir"], secrets: &[], read: read_settings::<CommandSettings> }),
    sync_settings: None,
    runs_programs: true,
    names_ids: false,
    fields: &[
        FormField {
            key: "command",
            label: "Program and its arguments, one per line",
            input: Input::Lines,
            placeholder: "python3\nfeed.py",
        },
        FormField { key: "workingDir", label: "Working directory", input: Input::Text, placeholder: "the pipeline file's folder" },
    ],
};

/// The keys only a command source reads. (`timeout`, shared with other sources, is how long the
/// program may run, none by default.)
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CommandSettings {
    /// The program, then its arguments, each an item: `[python3, feed.py, --all]`. No shell reads
    /// them: quotes, `*` and `$VAR` reach the program as written (`${VAR}` is the pipeline file's own
    /// interpolation, done before). A program named with a `/` is found from `workingDir`, a bare name
    /// in the program's `PATH`.
    #[serde(deserialize_with = "program_and_arguments")]
    pub command: Vec<String>,
    /// The program's whole environment, beside `PATH` (unless given here: `/usr/local/bin:/usr/bin:/bin`)
    /// and `SYNCLINE_CURSOR_FILE`/`SYNCLINE_CURSOR`. Values may be `{secret: …}`.
    #[serde(default, skip_serializing_if = "TextMap::is_empty")]
    pub env: TextMap,
    /// Where it runs, relative to the pipeline file (default: the pipeline file's folder).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
}

/// A program and its arguments: a list whose first item is not blank.
pub(crate) fn program_and_arguments<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    let items = Vec::<String>::deserialize(deserializer)?;
    match items.first() {
        Some(program) if !program.trim().is_empty() => Ok(items),
        _ => Err(serde::de::Error::custom("a command is a list: the program, then its arguments (`[python3, feed.py]`)")),
    }
}

impl ConnectorSettings for CommandSettings {
    fn anchor(&mut self, base: &Path) {
        anchor_working_dir(&mut self.working_dir, base);
    }
}

/// A program's working directory relative to the pipeline file's folder `base`, which it is by default.
pub(crate) fn anchor_working_dir(dir: &mut Option<String>, base: &Path) {
    let dir = dir.get_or_insert_with(|| ".".into());
    if Path::new(dir.as_str()).is_relative() {
        *dir = base.join(&*dir).display().to_string();
    }
}

fn validate(config: &SourceConfigDef) -> Vec<(&'static str, String)> {
    let mut problems = Vec::new();
    if config.query.sql().is_some() {
        problems.push(("query", "a command source takes no query".to_string()));
    }
    if config.format == Some(FileFormat::Parquet) {
        problems.push(("format", "a program's output is read as it streams: NDJSON, CSV, JSON or a spreadsheet, not Parquet".to_string()));
    }
    problems
}

pub struct CommandSource {
    inner: Arc<Inner>,
}

struct Inner {
    launcher: Launcher,
    timeout: Option<Duration>,
    format: FileFormat,
    options: FormatOptions,
}

impl CommandSource {
    pub fn new(def: &SourceDef, config: &SourceConfigDef) -> Result<CommandSource, SourceError> {
        let settings: &CommandSettings = settings_of(def)?;
        let options = FormatOptions { limits: def.limits, ..FormatOptions::from_config(config)? };
        Ok(CommandSource {
            inner: Arc::new(Inner {
                launcher: Launcher::new("command", &settings.command, &settings.env, settings.working_dir.as_deref()),
                timeout: def.timeout.map(|s| s.0),
                format: options.format.unwrap_or(FileFormat::Ndjson),
                options,
            }),
        })
    }
}

impl Inner {
    async fn feed(&self, cursor: Option<String>, tx: &EventSender) -> Result<(), ReadError> {
        let scratch = Scratch::create()?;
        let cursor_file = scratch.write("cursor", b"")?;
        let mut extra = vec![("SYNCLINE_CURSOR_FILE".to_string(), cursor_file.display().to_string())];
        if let Some(cursor) = &cursor {
            extra.push(("SYNCLINE_CURSOR".into(), cursor.clone()));
            let what = format!("{} reads what changed since its saved cursor", self.launcher.shown);
            tx.send(Ok(SourceEvent::Incremental(what))).await.map_err(|_| ReadError::Stopped)?;
        }
        let program = self.launcher.program(&[], extra)?;
        let run = async {
            let mut running = program.spawn(tx)?;
            let stdout = running.stdout().ok_or_else(|| SourceError::Config(format!("{}: no standard output", self.launcher.shown)))?;
            formats::read_async(stdout, &self.launcher.shown, self.format, &self.options, tx).await?;
            running.finish().await.map_err(ReadError::Failed)
        };
        process::within(self.timeout, &self.launcher.shown, run).await?;
        if let Some(saved) = read_cursor(&cursor_file, &self.launcher.shown)? {
            tx.send(Ok(SourceEvent::Cursor(saved))).await.map_err(|_| ReadError::Stopped)?;
        }
        Ok(())
    }
}

impl Source for CommandSource {
    fn open(&self, cursor: Option<String>) -> SourceStream {
        let inner = Arc::clone(&self.inner);
        spawn_feed(move |tx| async move { inner.feed(cursor, &tx).await })
    }

    /// Finds the program (it is not run: a run may be long, or change things).
    fn check(&self) -> BoxFuture<'_, Result<String, SourceError>> {
        async move {
            let program = self.inner.launcher.program(&[], Vec::new())?;
            Ok(format!(
                "{}: {} is there and may be run (Test connection does not run it)",
                self.inner.launcher.shown,
                program.path.display()
            ))
        }
        .boxed()
    }
}

/// The most of a cursor file that is read.
const MAX_CURSOR_BYTES: u64 = 64 * 1024;

/// What the program left in its cursor file, trimmed; `None` when it wrote nothing.
fn read_cursor(path: &Path, shown: &str) -> Result<Option<String>, SourceError> {
    let mut text = String::new();
    let read = std::fs::File::open(path).and_then(|f| f.take(MAX_CURSOR_BYTES + 1).read_to_string(&mut text));
    let bad = |reason: String| SourceError::Protocol { url: shown.to_string(), reason };
    read.map_err(|e| bad(format!("its cursor file cannot be read: {e}")))?;
    if text.len() as u64 > MAX_CURSOR_BYTES {
        return Err(bad(format!(
            "its cursor is longer than {} (a cursor is a position, not data)",
            crate::limits::ByteSize(MAX_CURSOR_BYTES)
        )));
    }
    let text = text.trim();
    Ok((!text.is_empty()).then(|| text.to_string()))
}
