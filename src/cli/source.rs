//! `source test` and `source preview`: a source checked or read on its own, before the first run.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use futures::StreamExt;
use syncline::config::Pipeline;
use syncline::envelope::lookup_text;
use syncline::path::DotPath;
use syncline::sources::{self, Chunk, RawRecord, Source, SourceError, SourceEvent};

use super::{USAGE, load};

#[derive(Subcommand)]
pub enum SourceCommand {
    /// Check that a source answers: OK, or the protocol-level error, in one line. NAME is a source, or
    /// a synchronization (to check what it reads: its endpoint, table or files).
    Test { file: PathBuf, name: String },
    /// Print the first records after envelope extraction, with the id each would get, to check
    /// resultsPosition and idPosition before the first run. NAME is a source or a synchronization.
    Preview {
        file: PathBuf,
        name: String,
        /// How many records to show.
        #[arg(long, default_value_t = 5)]
        limit: usize,
    },
    /// List the streams a source offers (an Airbyte connector's `discover`): each name, its primary
    /// key and sync modes, to pick `sourceConfig.stream`.
    Streams { file: PathBuf, name: String },
}

pub async fn run(command: SourceCommand) -> anyhow::Result<ExitCode> {
    let (file, name) = match &command {
        SourceCommand::Test { file, name } | SourceCommand::Preview { file, name, .. } | SourceCommand::Streams { file, name } => {
            (file, name)
        }
    };
    let pipeline = match load(file) {
        Ok(p) => p,
        Err(code) => return Ok(code),
    };
    let Some((source, id_position)) = resolve(&pipeline, name) else {
        eprintln!(
            "error: no source or synchronization `{name}` in {} (sources: {:?}; synchronizations: {:?})",
            file.display(),
            pipeline.sources.keys().collect::<Vec<_>>(),
            pipeline.synchronizations.keys().collect::<Vec<_>>()
        );
        return Ok(ExitCode::from(USAGE));
    };
    let source = match source {
        Ok(source) => source,
        Err(error) => return Ok(failed(name, &error)),
    };
    match command {
        SourceCommand::Test { .. } => match source.check().await {
            Ok(line) => {
                println!("{name}: {line}");
                Ok(ExitCode::SUCCESS)
            }
            Err(error) => Ok(failed(name, &error)),
        },
        SourceCommand::Preview { limit, .. } => preview(name, source.as_ref(), id_position.as_deref(), limit).await,
        SourceCommand::Streams { .. } => match source.streams().await {
            Ok(Some(streams)) => {
                for stream in streams {
                    let key = stream.primary_key.as_deref().unwrap_or("(none: set idPosition)");
                    println!("{}\tprimary key: {key}\tsync modes: {}", stream.name, stream.sync_modes.join(", "));
                }
                Ok(ExitCode::SUCCESS)
            }
            Ok(None) => {
                println!("{name}: a single feed, without streams");
                Ok(ExitCode::SUCCESS)
            }
            Err(error) => Ok(failed(name, &error)),
        },
    }
}

fn failed(name: &str, error: &SourceError) -> ExitCode {
    println!("{name}: FAILED [{}] {error}", error.category());
    ExitCode::from(1)
}

/// A source ready to read (or why not), and the idPosition its records are identified by.
type Resolved = (Result<Box<dyn Source>, SourceError>, Option<String>);

/// The source `name` names, read with the settings of a synchronization: the one named `name`, or the
/// first that reads the source; with none, the source's location alone. Also the idPosition used.
fn resolve(pipeline: &Pipeline, name: &str) -> Option<Resolved> {
    if let Some(sync) = pipeline.synchronizations.get(name) {
        return Some((sources::build(pipeline, sync), Some(sync.id_position.clone())));
    }
    pipeline.sources.get(name)?;
    let id_position = pipeline.synchronizations.values().find(|s| s.source == name).map(|s| s.id_position.clone());
    Some((sources::for_check(pipeline, name), id_position))
}

async fn preview(name: &str, source: &dyn Source, id_position: Option<&str>, limit: usize) -> anyhow::Result<ExitCode> {
    let id_path = id_position.map(DotPath::parse);
    let mut stream = source.open(None);
    let mut shown = 0;
    while shown < limit {
        let Some(event) = stream.next().await else { break };
        let chunk: Chunk = match event {
            Ok(SourceEvent::Chunk(chunk)) => chunk,
            Ok(SourceEvent::Warning(warning) | SourceEvent::Truncated(warning)) => {
                eprintln!("warning: {warning}");
                continue;
            }
            Ok(SourceEvent::Log { level, message }) => {
                eprintln!("{level}: {}", syncline::secrets::scrub(&message));
                continue;
            }
            Ok(SourceEvent::Incremental(_) | SourceEvent::Cursor(_)) => continue,
            Err(error) => return Ok(failed(name, &error)),
        };
        for (index, record) in chunk.records.iter().enumerate().take(limit - shown) {
            shown += 1;
            let place = Chunk::locate(&chunk.origin, &chunk.lines, chunk.unit, index);
            let text = match record {
                RawRecord::Json(bytes) => String::from_utf8_lossy(bytes).into_owned(),
                RawRecord::Value(value) => value.to_string(),
                RawRecord::Gone(id) => format!("(deleted: `{id}`)"),
                RawRecord::Broken(problem) => {
                    println!("── {place}: cannot be read: {problem}");
                    continue;
                }
            };
            let id = match &id_path {
                Some(path) => match lookup_text(&text, path) {
                    Some(id) => format!(", id `{id}`"),
                    None => format!(", NO id at idPosition `{}`", id_position.unwrap_or_default()),
                },
                None => String::new(),
            };
            println!("── {place}{id}");
            let pretty =
                serde_json::from_str::<serde_json::Value>(&text).map_or(text, |v| serde_json::to_string_pretty(&v).unwrap_or_default());
            println!("{pretty}");
        }
    }
    if shown == 0 {
        println!("{name}: no records (check resultsPosition, the path glob or the query)");
    }
    Ok(ExitCode::SUCCESS)
}
