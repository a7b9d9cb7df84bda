//! The command target (`target: {type: command, command: [prog, args…]}`): a program that receives
//! each write as one JSON object a line on its stdin — `{"op": "create"|"update"|"delete", "id": …,
//! "targetId": …, "remoteId": …, "object": {…}}` — and answers one line per write, in order:
//! `{"ok": true}` (optionally `"id"`: the id it gave the object, kept as its remote id) or
//! `{"ok": false, "error": "…"}`. Writes go in batches; a batch's answers come before the next batch is
//! sent, and only what the program confirmed moves a contract: a refused object fails alone and is
//! written again next run. The program runs once per run, with only the environment its `env` names;
//! its stderr goes to the job log. An answer that is not one of those lines, a program that stops
//! answering for `answerTimeout` or exits early, fails the run.

use std::path::Path;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use super::registry::{SinkConnector, SinkContext, target_of};
use super::{AckSender, Sink, SinkError};
use crate::config::{Span, TextMap};
use crate::sources::command::{self, BoundedLines, Launcher, Line, Running};
use crate::sources::registry::{ConnectorSettings, SettingsSchema, read_settings};
use crate::sources::{SourceError, SourceEvent};
use crate::store::StateDir;
use crate::write::{Ack, Action, Mapped};

/// The command target, as the registry lists it.
pub const CONNECTOR: SinkConnector = SinkConnector {
    kind: "command",
    runs_programs: true,
    settings: Some(SettingsSchema {
        keys: &["command", "env", "workingDir", "answerTimeout"],
        secrets: &[],
        read: read_settings::<CommandTargetSettings>,
    }),
    validate: |target, _| match target.settings.get::<CommandTargetSettings>() {
        Some(_) => Ok(()),
        None => Err("a command target needs a `command`: the program, then its arguments".into()),
    },
    build: |context| Ok(Box::new(CommandSink::new(context)?)),
};

/// The keys only a command target reads.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CommandTargetSettings {
    /// The program, then its arguments; no shell reads them.
    #[serde(deserialize_with = "command::program_and_arguments")]
    pub command: Vec<String>,
    /// Its whole environment beside `PATH`, as for a command source.
    #[serde(default, skip_serializing_if = "TextMap::is_empty")]
    pub env: TextMap,
    /// Where it runs, relative to the pipeline file (default: the pipeline file's folder).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// How long it may take to answer a batch (default 5m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer_timeout: Option<Span>,
}

impl ConnectorSettings for CommandTargetSettings {
    fn anchor(&mut self, base: &Path) {
        command::anchor_working_dir(&mut self.working_dir, base);
    }
}

/// The longest answer line read.
const MAX_ANSWER_BYTES: usize = 1024 * 1024;

pub struct CommandSink {
    launcher: Launcher,
    answer_timeout: Duration,
    dry_run: bool,
    state: StateDir,
    job: String,
}

/// A started program's two pipes: where writes go, and its answers.
type Pipes = (tokio::process::ChildStdin, BoundedLines<tokio::process::ChildStdout>);

impl CommandSink {
    fn new(context: &SinkContext) -> Result<CommandSink, String> {
        let target = target_of(context.sync)?;
        let settings = target.settings.get::<CommandTargetSettings>().ok_or("a command target needs a `command`")?;
        Ok(CommandSink {
            launcher: Launcher::new("command target", &settings.command, &settings.env, settings.working_dir.as_deref()),
            answer_timeout: settings.answer_timeout.map_or(Duration::from_secs(300), |s| s.0),
            dry_run: context.dry_run,
            state: context.state.clone(),
            job: context.job.to_string(),
        })
    }

    fn failed(&self, reason: impl std::fmt::Display) -> SinkError {
        SinkError::Stopped(format!("{}: {reason}", self.launcher.shown))
    }

    /// Starts the program, its stderr logged through `log`.
    fn start(&self, log: &mpsc::Sender<Result<SourceEvent, SourceError>>) -> Result<(Running, Pipes), SinkError> {
        let mut running = self.launcher.program(&[], Vec::new()).and_then(|p| p.spawn_piped(log)).map_err(|e| self.failed(e))?;
        let pipes = running.stdin().zip(running.stdout()).ok_or_else(|| self.failed("its pipes could not be opened"))?;
        Ok((running, (pipes.0, BoundedLines::new(pipes.1, MAX_ANSWER_BYTES))))
    }

    /// Sends one batch and reads its answers, one per write, in order. Writing and reading go on at
    /// once: a program that answers each line as it reads it could otherwise fill its stdout pipe
    /// while syncline is still writing, and both would wait for ever.
    async fn exchange(&self, (stdin, answers): &mut Pipes, batch: Vec<Mapped>) -> Result<Vec<Ack>, SinkError> {
        let mut text = String::new();
        for op in &batch {
            text.push_str(&request(op).to_string());
            text.push('\n');
        }
        let write = async {
            let sent = async {
                stdin.write_all(text.as_bytes()).await?;
                stdin.flush().await
            };
            // A program that stops reading holds the write up: it gets as long as an answer.
            match tokio::time::timeout(self.answer_timeout, sent).await {
                Ok(sent) => sent.map_err(|e| self.failed(format!("it stopped reading: {e}"))),
                Err(_) => Err(self.failed(format!("it read nothing for {:?}", self.answer_timeout))),
            }
        };
        let read = async {
            let mut lines = Vec::with_capacity(batch.len());
            for _ in 0..batch.len() {
                let line = tokio::time::timeout(self.answer_timeout, answers.next())
                    .await
                    .map_err(|_| self.failed(format!("no answer within {:?}", self.answer_timeout)))?
                    .map_err(|e| self.failed(format!("its answers cannot be read: {e}")))?
                    .ok_or_else(|| self.failed("it ended before answering every write"))?;
                lines.push(answer(&line).map_err(|e| self.failed(e))?);
            }
            Ok(lines)
        };
        let ((), answered) = tokio::try_join!(write, read)?;
        Ok(batch.into_iter().zip(answered).map(|(op, done)| ack(op, done)).collect())
    }

    async fn run(self, mut input: mpsc::Receiver<Vec<Mapped>>, acks: AckSender) -> Result<(), SinkError> {
        let (log, logged) = mpsc::channel(16);
        let logger = tokio::spawn(job_log(self.state.clone(), self.job.clone(), logged));
        let mut started: Option<(Running, Pipes)> = None;
        while let Some(batch) = input.recv().await {
            if self.dry_run {
                let _ = acks.send(batch.into_iter().map(|op| ack(op, Ok(None))).collect());
                continue;
            }
            if started.is_none() {
                started = Some(self.start(&log)?);
            }
            let (_, pipes) = started.as_mut().expect("started above");
            let outcomes = self.exchange(pipes, batch).await?;
            let _ = acks.send(outcomes);
        }
        if let Some((running, pipes)) = started {
            // Its stdin closes: the program sees the end of the writes and exits.
            drop(pipes);
            running.finish().await.map_err(|e| SinkError::Stopped(e.to_string()))?;
        }
        drop(log);
        let _ = logger.await;
        Ok(())
    }
}

/// The line a write is sent as.
fn request(op: &Mapped) -> Value {
    let (id, target_id, remote_id) = (&op.origin_id, op.target_id.to_string(), &op.remote_id);
    match &op.what {
        Action::Upsert(object) => json!({
            "op": if op.created { "create" } else { "update" }, "id": id, "targetId": target_id,
            "remoteId": remote_id, "object": object,
        }),
        Action::Delete { soft } => json!({"op": "delete", "id": id, "targetId": target_id, "remoteId": remote_id, "soft": soft}),
    }
}

/// A program's answer: `Ok(Ok(id))` done (with the id it gave), `Ok(Err(why))` refused, `Err` not an
/// answer at all.
fn answer(line: &Line) -> Result<Result<Option<String>, String>, String> {
    #[derive(Deserialize)]
    struct Answer {
        ok: bool,
        #[serde(default)]
        id: Option<Value>,
        #[serde(default)]
        error: Option<String>,
    }
    let Line::Whole(text) = line else { return Err("an answer longer than 1 MiB".into()) };
    let parsed: Answer = serde_json::from_slice(text).map_err(|e| {
        format!("`{}` is not an answer ({{\"ok\": true}} or {{\"ok\": false, \"error\": …}}): {e}", String::from_utf8_lossy(text))
    })?;
    if !parsed.ok {
        return Ok(Err(parsed.error.unwrap_or_else(|| "refused by the program".into())));
    }
    Ok(Ok(parsed.id.as_ref().map(crate::path::text_of)))
}

fn ack(op: Mapped, done: Result<Option<String>, String>) -> Ack {
    match done {
        Ok(given) => op.ack(None).given(given),
        Err(why) => op.fail(why),
    }
}

/// Writes the program's stderr lines into the job log as they come.
async fn job_log(state: StateDir, job: String, mut lines: mpsc::Receiver<Result<SourceEvent, SourceError>>) {
    while let Some(Ok(SourceEvent::Log { level, message })) = lines.recv().await {
        if let Ok(jobs) = state.jobs() {
            let _ = jobs.log(&job, level, &crate::secrets::scrub(&message));
        }
    }
}

impl Sink for CommandSink {
    /// A program keeps its own records: after an interruption, writes it confirmed but whose contracts
    /// were not saved come again (a create for an id it has must act as an update).
    fn existing(&self) -> Result<Vec<String>, SinkError> {
        Ok(Vec::new())
    }

    fn write_all(self: Box<Self>, input: mpsc::Receiver<Vec<Mapped>>, acks: AckSender) -> BoxFuture<'static, Result<(), SinkError>> {
        self.run(input, acks).boxed()
    }
}
