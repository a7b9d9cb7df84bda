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
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use serde::{Deserialize, Deserializer, Serialize};

use crate::config::{FileFormat, SourceConfigDef, SourceDef, TextMap};
use crate::sources::feed::spawn_feed;
use crate::sources::formats::{self, EventSender, FormatOptions, ReadError};
use crate::sources::registry::{ConnectorSettings, FormField, Input, SettingsSchema, SourceConnector, read_settings, settings_of};
use crate::sources::{Source, SourceError, SourceEvent, SourceStream};
pub use process::{DEFAULT_PATH, Program, Running, resolve};

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

fn program_and_arguments<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    let items = Vec::<String>::deserialize(deserializer)?;
    match items.first() {
        Some(program) if !program.trim().is_empty() => Ok(items),
        _ => Err(serde::de::Error::custom("a command is a list: the program, then its arguments (`[python3, feed.py]`)")),
    }
}

impl ConnectorSettings for CommandSettings {
    fn anchor(&mut self, base: &Path) {
        let dir = self.working_dir.get_or_insert_with(|| ".".into());
        if Path::new(dir.as_str()).is_relative() {
            *dir = base.join(&*dir).display().to_string();
        }
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
    command: Vec<String>,
    env: Vec<(String, String)>,
    working_dir: PathBuf,
    timeout: Option<Duration>,
    format: FileFormat,
    options: FormatOptions,
    shown: String,
}

impl CommandSource {
    pub fn new(def: &SourceDef, config: &SourceConfigDef) -> Result<CommandSource, SourceError> {
        let settings: &CommandSettings = settings_of(def)?;
        let mut env: Vec<(String, String)> = settings.env.iter().map(|(k, v)| (k.clone(), v.0.clone())).collect();
        if !settings.env.contains_key("PATH") {
            env.push(("PATH".into(), DEFAULT_PATH.into()));
        }
        let options = FormatOptions { limits: def.limits, ..FormatOptions::from_config(config)? };
        Ok(CommandSource {
            inner: Arc::new(Inner {
                shown: format!("command `{}`", settings.command[0]),
                command: settings.command.clone(),
                env,
                working_dir: PathBuf::from(settings.working_dir.as_deref().unwrap_or(".")),
                timeout: def.timeout.map(|s| s.0),
                format: options.format.unwrap_or(FileFormat::Ndjson),
                options,
            }),
        })
    }
}

impl Inner {
    /// The program as it will run, with `extra` variables beside the source's.
    fn program(&self, extra: Vec<(String, String)>) -> Result<Program, SourceError> {
        let path_var = self.env.iter().find(|(k, _)| k == "PATH").map_or(DEFAULT_PATH, |(_, v)| v.as_str());
        let path = resolve(&self.command[0], path_var, &self.working_dir).ok_or_else(|| {
            SourceError::Config(format!(
                "{}: no such program (a name is looked up in the program's PATH, {path_var}; a path from {})",
                self.shown,
                self.working_dir.display()
            ))
        })?;
        let env = self.env.iter().cloned().chain(extra).collect();
        Ok(Program { path, args: self.command[1..].to_vec(), env, working_dir: self.working_dir.clone(), shown: self.shown.clone() })
    }

    async fn feed(&self, cursor: Option<String>, tx: &EventSender) -> Result<(), ReadError> {
        let cursor_file = CursorFile::create()?;
        let mut extra = vec![("SYNCLINE_CURSOR_FILE".to_string(), cursor_file.path.display().to_string())];
        if let Some(cursor) = &cursor {
            extra.push(("SYNCLINE_CURSOR".into(), cursor.clone()));
            let what = format!("{} reads what changed since its saved cursor", self.shown);
            tx.send(Ok(SourceEvent::Incremental(what))).await.map_err(|_| ReadError::Stopped)?;
        }
        let program = self.program(extra)?;
        let run = async {
            let mut running = program.spawn(tx)?;
            let stdout = running.stdout().ok_or_else(|| SourceError::Config(format!("{}: no standard output", self.shown)))?;
            formats::read_async(stdout, &self.shown, self.format, &self.options, tx).await?;
            running.finish().await.map_err(ReadError::Failed)
        };
        match self.timeout {
            Some(limit) => tokio::time::timeout(limit, run).await.map_err(|_| {
                ReadError::Failed(SourceError::Timeout {
                    url: self.shown.clone(),
                    reason: format!("it ran longer than the source's timeout ({limit:?}) and was stopped"),
                })
            })??,
            None => run.await?,
        }
        if let Some(saved) = cursor_file.read(&self.shown)? {
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
            let program = self.inner.program(Vec::new())?;
            Ok(format!("{}: {} is there and may be run (Test connection does not run it)", self.inner.shown, program.path.display()))
        }
        .boxed()
    }
}

/// The most of a cursor file that is read.
const MAX_CURSOR_BYTES: u64 = 64 * 1024;

/// A private file the program writes its new cursor to; removed when dropped.
pub struct CursorFile {
    pub path: PathBuf,
}

impl CursorFile {
    pub fn create() -> Result<CursorFile, SourceError> {
        use std::os::unix::fs::OpenOptionsExt;
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let name = format!("syncline-cursor-{}-{nanos}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let path = std::env::temp_dir().join(name);
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| SourceError::Config(format!("cannot create a cursor file in {}: {e}", std::env::temp_dir().display())))?;
        Ok(CursorFile { path })
    }

    /// What the program left in it, trimmed; `None` when it wrote nothing.
    pub fn read(&self, shown: &str) -> Result<Option<String>, SourceError> {
        let mut text = String::new();
        let file = std::fs::File::open(&self.path);
        let read = file.and_then(|f| f.take(MAX_CURSOR_BYTES + 1).read_to_string(&mut text));
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
}

impl Drop for CursorFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
