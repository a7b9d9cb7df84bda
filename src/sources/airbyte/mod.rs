//! The Airbyte source (`type: airbyte`): an Airbyte source connector — a pip-installed
//! `airbyte-source-*` package's entry point (`source-faker`), a connector image's entry program, any
//! executable that speaks the protocol — run as a program. Its `config` is written to a private file;
//! Test connection runs `check`; `syncline source streams` runs `discover`; a run reads the stream the
//! synchronization names (`sourceConfig.stream`, `syncMode`) with a configured catalog, RECORD
//! messages becoming records, and its STATE handed back on the next run only after a complete one.
//! LOG messages and stderr go to the job log; an error TRACE, a non-zero exit or the `timeout` fail
//! the run, and nothing is deleted after it. The hash-diff then gives exact created, updated,
//! unchanged and deleted counts, which Airbyte itself does not.

mod protocol;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::config::{SourceConfigDef, SourceDef, TextMap};
use crate::sources::command::{self, BoundedLines, Launcher, Line, Scratch, within};
use crate::sources::feed::spawn_feed;
use crate::sources::formats::{ChunkWriter, EventSender, ReadError};
use crate::sources::registry::{ConnectorSettings, FormField, Input, SettingsSchema, SourceConnector, read_settings, settings_of};
use crate::sources::{RawRecord, Source, SourceError, SourceEvent, SourceStream, StreamInfo};
use protocol::{Message, States};

/// The airbyte source, as the registry lists it.
pub const CONNECTOR: SourceConnector = SourceConnector {
    kind: "airbyte",
    label: "Airbyte connector",
    schemes: &[],
    local_paths: false,
    keys: &[],
    validate: |_| Vec::new(),
    build: |def, config, _| Ok(Box::new(AirbyteSource::new(def, config)?)),
    probe: None,
    settings: Some(SettingsSchema {
        keys: &["command", "config", "env", "workingDir", "dropFields"],
        secrets: &[],
        read: read_settings::<AirbyteSettings>,
    }),
    runs_programs: true,
    sync_settings: Some(SettingsSchema { keys: &["stream", "syncMode"], secrets: &[], read: read_settings::<AirbyteSyncSettings> }),
    names_ids: true,
    fields: &[
        FormField {
            key: "command",
            label: "Connector program and its arguments, one per line",
            input: Input::Lines,
            placeholder: "source-faker",
        },
        FormField { key: "config", label: "Connector config (JSON)", input: Input::Json, placeholder: "{\"count\": 100}" },
        FormField { key: "workingDir", label: "Working directory", input: Input::Text, placeholder: "the pipeline file's folder" },
    ],
};

/// The keys only an airbyte source reads. (`timeout`, shared with other sources, is how long a run of
/// the connector may take, none by default; `check` and `discover` get 5 minutes unless it says less.)
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AirbyteSettings {
    /// The connector's program, then its arguments (`[source-faker]`, `[python3, -m, source_x]`); the
    /// protocol's command (`read --config …`) follows them.
    #[serde(deserialize_with = "command::program_and_arguments")]
    pub command: Vec<String>,
    /// The connector's own configuration, as its `spec` describes it. Credentials in it are masked
    /// wherever it is shown: by their names (`password`, `api_key`, …) or marked `{secret: …}`.
    #[serde(default)]
    pub config: ConnectorConfig,
    /// The connector's whole environment beside `PATH`, as for a command source.
    #[serde(default, skip_serializing_if = "TextMap::is_empty")]
    pub env: TextMap,
    /// Where it runs, relative to the pipeline file (default: the pipeline file's folder).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// Dot paths taken out of every record as it is read: stamps a connector puts on each read
    /// (`source-faker`'s `updated_at` is the time of reading), which would otherwise make every record
    /// of every run an update. They reach neither the hash nor the mapping.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drop_fields: Vec<String>,
}

impl ConnectorSettings for AirbyteSettings {
    fn anchor(&mut self, base: &Path) {
        command::anchor_working_dir(&mut self.working_dir, base);
    }
}

/// A connector's `config`: any JSON object. Its credentials are remembered when read (so no message
/// carries them) and masked when it is shown or printed.
#[derive(Clone, Default)]
pub struct ConnectorConfig(Value);

impl<'de> Deserialize<'de> for ConnectorConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = match Value::deserialize(deserializer)? {
            Value::Null => Value::Object(Default::default()),
            object @ Value::Object(_) => object,
            _ => return Err(serde::de::Error::custom("a connector's config is a map")),
        };
        crate::secrets::remember_all(&value);
        Ok(ConnectorConfig(value))
    }
}

impl Serialize for ConnectorConfig {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        crate::secrets::masked(&self.0).serialize(serializer)
    }
}

impl std::fmt::Debug for ConnectorConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "{}", crate::secrets::masked(&self.0))
    }
}

/// What a synchronization reads of an airbyte source (its `sourceConfig` keys).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AirbyteSyncSettings {
    /// The stream to read (`syncline source streams FILE SOURCE` lists them).
    pub stream: String,
    /// `full_refresh` (default: every run reads the whole stream, and what is gone is deleted) or
    /// `incremental` (the connector's state is handed back; nothing is deleted).
    #[serde(default)]
    pub sync_mode: SyncMode,
}

impl ConnectorSettings for AirbyteSyncSettings {}

/// How an Airbyte stream is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncMode {
    #[default]
    FullRefresh,
    Incremental,
}

impl SyncMode {
    pub fn as_str(self) -> &'static str {
        match self {
            SyncMode::FullRefresh => "full_refresh",
            SyncMode::Incremental => "incremental",
        }
    }
}

/// How long `check` and `discover` may take when the source's `timeout` does not say.
const PROBE_TIMEOUT: Duration = Duration::from_secs(300);
/// The most of a `check` or `discover` answer that is read.
const MAX_ANSWER_LINE: usize = 64 * 1024 * 1024;

/// What `check` and `discover` answer.
#[derive(Default)]
struct Answers {
    catalog: Option<protocol::Catalog>,
    status: Option<protocol::ConnectionStatus>,
}

pub struct AirbyteSource {
    inner: Arc<Inner>,
}

struct Inner {
    launcher: Launcher,
    config: Value,
    stream: Option<String>,
    mode: SyncMode,
    timeout: Option<Duration>,
    max_record_bytes: usize,
    drop_fields: Vec<Vec<String>>,
}

impl AirbyteSource {
    pub fn new(def: &SourceDef, config: &SourceConfigDef) -> Result<AirbyteSource, SourceError> {
        let settings: &AirbyteSettings = settings_of(def)?;
        Ok(AirbyteSource {
            inner: Arc::new(Inner {
                launcher: Launcher::new("airbyte connector", &settings.command, &settings.env, settings.working_dir.as_deref()),
                config: protocol::unmarked(&settings.config.0),
                stream: config.settings.get::<AirbyteSyncSettings>().map(|s| s.stream.clone()),
                mode: config.settings.get::<AirbyteSyncSettings>().map(|s| s.sync_mode).unwrap_or_default(),
                timeout: def.timeout.map(|s| s.0),
                max_record_bytes: def.limits.max_record_bytes.as_usize(),
                drop_fields: settings.drop_fields.iter().map(|p| p.split('.').map(str::to_string).collect()).collect(),
            }),
        })
    }
}

impl Inner {
    fn protocol_error(&self, reason: String) -> SourceError {
        SourceError::Protocol { url: self.launcher.shown.clone(), reason }
    }

    /// Runs one protocol command (`check`, `discover`) to its end, answering its messages; its logs
    /// go to `log`.
    async fn ask(&self, scratch: &Scratch, command: &str, log: &EventSender) -> Result<Answers, ReadError> {
        let config = scratch.write(&format!("{command}-config.json"), self.config.to_string().as_bytes())?;
        let config = config.display().to_string();
        let run = async {
            let mut running = self.launcher.program(&[command, "--config", &config], Vec::new())?.spawn(log)?;
            let stdout = running.stdout().ok_or_else(|| self.protocol_error("no standard output".into()))?;
            let mut lines = BoundedLines::new(stdout, MAX_ANSWER_LINE);
            // Only the first catalog, status and error are kept: a connector that talks on and on
            // holds no more memory than that.
            let (mut answers, mut error) = (Answers::default(), None);
            while let Some(line) = lines.next().await.map_err(|e| self.protocol_error(format!("cannot read its output: {e}")))? {
                let Ok(message) = serde_json::from_slice::<Message>(line.text()) else { continue };
                // Logs of a check or a discover are kept when someone reads them (a run), else let go.
                let _ = self.relay(&message, log).await;
                error = error.or_else(|| message.trace.as_ref().and_then(protocol::trace_error));
                answers.catalog = answers.catalog.or(message.catalog);
                answers.status = answers.status.or(message.connection_status);
            }
            if let Some(error) = error {
                return Err(ReadError::Failed(self.protocol_error(format!("`{command}` reported an error: {error}"))));
            }
            running.finish().await?;
            Ok(answers)
        };
        within(Some(self.timeout.map_or(PROBE_TIMEOUT, |t| t.min(PROBE_TIMEOUT))), &self.launcher.shown, run).await
    }

    /// The streams `discover` lists.
    async fn discover(&self, scratch: &Scratch, log: &EventSender) -> Result<Vec<Value>, ReadError> {
        let catalog = self.ask(scratch, "discover", log).await?.catalog;
        Ok(catalog.ok_or_else(|| self.protocol_error("`discover` answered no CATALOG message".into()))?.streams)
    }

    /// The stream the synchronization reads, as `discover` describes it.
    async fn stream(&self, scratch: &Scratch, log: &EventSender) -> Result<Value, ReadError> {
        let wanted = self.stream.as_deref().ok_or_else(|| SourceError::Config("an airbyte source reads one `stream`".into()))?;
        let streams = self.discover(scratch, log).await?;
        let names: Vec<String> = streams.iter().map(|s| protocol::stream_info(s).name).collect();
        let found = streams.into_iter().find(|s| s.get("name").and_then(Value::as_str) == Some(wanted));
        Ok(found.ok_or_else(|| self.protocol_error(format!("it has no stream `{wanted}` (it has: {})", names.join(", "))))?)
    }

    /// A LOG message or an error TRACE, into the job log.
    async fn relay(&self, message: &Message, log: &EventSender) -> Result<(), ReadError> {
        let line = match (&message.log, &message.trace) {
            (Some(entry), _) => Some((protocol::level(&entry.level), entry.message.clone())),
            (None, Some(trace)) => protocol::trace_error(trace).map(|error| ("error", error)),
            (None, None) => None,
        };
        if let Some((level, message)) = line {
            log.send(Ok(SourceEvent::Log { level, message })).await.map_err(|_| ReadError::Stopped)?;
        }
        Ok(())
    }

    async fn feed(&self, cursor: Option<String>, tx: &EventSender) -> Result<(), ReadError> {
        let scratch = Scratch::create()?;
        let stream = self.stream(&scratch, tx).await?;
        let config = scratch.write("config.json", self.config.to_string().as_bytes())?.display().to_string();
        let catalog = protocol::configured_catalog(&stream, self.mode).to_string();
        let catalog = scratch.write("catalog.json", catalog.as_bytes())?.display().to_string();
        let mut args = vec!["read".to_string(), "--config".into(), config, "--catalog".into(), catalog];
        let state = cursor.filter(|_| self.mode == SyncMode::Incremental).as_deref().and_then(protocol::state_argument);
        if let Some(state) = state {
            args.extend(["--state".into(), scratch.write("state.json", state.to_string().as_bytes())?.display().to_string()]);
            let what = format!("{} reads what changed since its saved state", self.launcher.shown);
            tx.send(Ok(SourceEvent::Incremental(what))).await.map_err(|_| ReadError::Stopped)?;
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = async {
            let mut running = self.launcher.program(&args, Vec::new())?.spawn(tx)?;
            let stdout = running.stdout().ok_or_else(|| self.protocol_error("no standard output".into()))?;
            let (states, error) = self.records(stdout, tx).await?;
            let exit = running.finish().await;
            if let Some(error) = error {
                return Err(ReadError::Failed(
                    self.protocol_error(format!("it reported an error: {error} (nothing is deleted after a failed read)")),
                ));
            }
            exit?;
            Ok(states)
        };
        let states = within(self.timeout, &self.launcher.shown, run).await?;
        if let Some(cursor) = states.cursor() {
            tx.send(Ok(SourceEvent::Cursor(cursor))).await.map_err(|_| ReadError::Stopped)?;
        }
        Ok(())
    }

    /// Reads `read`'s messages: records of the stream into chunks, states kept, logs relayed; answers
    /// the states and the first error a TRACE reported.
    async fn records(&self, stdout: tokio::process::ChildStdout, tx: &EventSender) -> Result<(States, Option<String>), ReadError> {
        let wanted = self.stream.as_deref().unwrap_or_default();
        let origin = format!("{} stream `{wanted}`", self.launcher.shown);
        let mut writer = ChunkWriter::new(tx, origin, "line");
        let mut lines = BoundedLines::new(stdout, self.max_record_bytes);
        let (mut states, mut error, mut number) = (States::default(), None, 0u64);
        while let Some(line) = lines.next().await.map_err(|e| self.protocol_error(format!("cannot read its output: {e}")))? {
            number += 1;
            let text = match &line {
                Line::TooLong(length, _) => {
                    let over = crate::limits::OverLimit::bytes(
                        format!("a message ({length} bytes)"),
                        "maxRecordBytes",
                        crate::limits::ByteSize(self.max_record_bytes as u64),
                    );
                    writer.push_async(RawRecord::Broken(over.to_string()), number).await?;
                    continue;
                }
                Line::Whole(text) => text,
            };
            let message = match serde_json::from_slice::<Message>(text) {
                Ok(message) => message,
                // The protocol lets a connector print other lines: they are logs. An unreadable
                // message fails as a record (and so blocks deletes), never silently.
                Err(e) if text.first() == Some(&b'{') => {
                    writer.push_async(RawRecord::Broken(format!("an unreadable Airbyte message: {e}")), number).await?;
                    continue;
                }
                Err(_) => {
                    let message = String::from_utf8_lossy(text).trim_end().to_string();
                    tx.send(Ok(SourceEvent::Log { level: "info", message })).await.map_err(|_| ReadError::Stopped)?;
                    continue;
                }
            };
            match (message.kind.as_str(), message.record, message.state) {
                ("RECORD", Some(mut record), _) if record.stream == wanted => {
                    protocol::drop_fields(&mut record.data, &self.drop_fields);
                    writer.push_async(RawRecord::Value(record.data), number).await?
                }
                ("STATE", _, Some(state)) => states.keep(state, wanted),
                _ => {
                    if let Some(trace) = &message.trace {
                        error = error.or_else(|| protocol::trace_error(trace));
                    }
                    self.relay(&Message { record: None, state: None, ..message }, tx).await?;
                }
            }
        }
        writer.flush_async().await?;
        Ok((states, error))
    }
}

impl Source for AirbyteSource {
    fn open(&self, cursor: Option<String>) -> SourceStream {
        let inner = Arc::clone(&self.inner);
        spawn_feed(move |tx| async move { inner.feed(cursor, &tx).await })
    }

    /// Runs the connector's `check`: its CONNECTION_STATUS.
    fn check(&self) -> BoxFuture<'_, Result<String, SourceError>> {
        async move {
            let scratch = Scratch::create()?;
            let status = self.inner.ask(&scratch, "check", &quiet()).await.map_err(failed)?.status;
            match status {
                Some(s) if s.status == "SUCCEEDED" => Ok(format!("{}: check SUCCEEDED", self.inner.launcher.shown)),
                Some(s) => Err(SourceError::Auth {
                    url: self.inner.launcher.shown.clone(),
                    reason: format!("check {}: {}", s.status, s.message.unwrap_or_default()),
                }),
                None => Err(self.inner.protocol_error("`check` answered no CONNECTION_STATUS message".into())),
            }
        }
        .boxed()
    }

    fn streams(&self) -> BoxFuture<'_, Result<Option<Vec<StreamInfo>>, SourceError>> {
        async move {
            let scratch = Scratch::create()?;
            let streams = self.inner.discover(&scratch, &quiet()).await.map_err(failed)?;
            Ok(Some(streams.iter().map(protocol::stream_info).collect()))
        }
        .boxed()
    }

    /// The stream's primary key, from `discover`.
    fn id_position(&self) -> BoxFuture<'_, Result<Option<String>, SourceError>> {
        async move {
            let scratch = Scratch::create()?;
            let stream = self.inner.stream(&scratch, &quiet()).await.map_err(failed)?;
            let key = protocol::primary_key(&stream).ok_or_else(|| {
                SourceError::Config(format!(
                    "stream `{}` declares no single-field primary key: set `idPosition` to the dot path of each record's id",
                    self.inner.stream.as_deref().unwrap_or_default()
                ))
            })?;
            Ok(Some(key))
        }
        .boxed()
    }
}

/// A log sink for commands whose logs nobody reads (a check from the command line).
fn quiet() -> EventSender {
    mpsc::channel(1).0
}

fn failed(error: ReadError) -> SourceError {
    match error {
        ReadError::Failed(error) => error,
        ReadError::Stopped => SourceError::Config("stopped".into()),
    }
}
