//! `syncline import` and `syncline export`: OpenConnector/OpenRegister configuration files in and out.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use serde_json::Value;
use yaml_rust2::{Yaml, YamlEmitter};

use syncline::config::Pipeline;
use syncline::openconnector::{self, Notice};

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The configuration file (JSON, as OpenConnector and OpenRegister export it), or a folder of
    /// one file per object (`sources/`, `mappings/`, `synchronizations/`, `rules/`, …, as
    /// OpenConnector's repository ships its `configurations/`).
    pub file: PathBuf,
    /// Where to write the pipeline (`.yaml`/`.yml` or `.json`); standard output (YAML) without it.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The pipeline file.
    pub file: PathBuf,
    /// Where to write the configuration (JSON); standard output without it.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// The configuration's title (default: the pipeline file's name).
    #[arg(long)]
    pub title: Option<String>,
}

/// Imports a configuration into a pipeline file, reports what was not carried over, and checks the
/// result as `validate` would.
pub fn import(args: ImportArgs) -> anyhow::Result<ExitCode> {
    let config = if args.file.is_dir() { folder_configuration(&args.file)? } else { read_json(&args.file)? };
    let imported = match openconnector::import(&config) {
        Ok(imported) => imported,
        Err(error) => {
            eprintln!("{}: {error}", args.file.display());
            return Ok(ExitCode::from(super::USAGE));
        }
    };
    let yaml = args.output.as_deref().is_none_or(|p| p.extension().is_none_or(|e| e != "json"));
    let rendered = if yaml { to_yaml(&imported.pipeline)? } else { serde_json::to_string_pretty(&imported.pipeline)? + "\n" };
    match &args.output {
        Some(path) => std::fs::write(path, &rendered).with_context(|| format!("cannot write {}", path.display()))?,
        None => print!("{rendered}"),
    }
    report(&imported.notices);
    let count = |key: &str| imported.pipeline.get(key).and_then(Value::as_object).map_or(0, |m| m.len());
    let label = args.output.as_deref().unwrap_or(Path::new("<stdout>")).display().to_string();
    let base = args.output.as_deref().and_then(Path::parent).unwrap_or(Path::new("."));
    // Checked as written, with the locations left to be filled in standing for some URL.
    let env = |name: &str| {
        std::env::var(name).ok().or_else(|| imported.variables.iter().any(|v| v == name).then(|| "https://location.invalid/".to_string()))
    };
    match Pipeline::from_text(&label, &rendered, base, &env) {
        Ok(_) => {
            eprintln!(
                "imported {} source(s), {} mapping(s), {} register(s), {} synchronization(s); the pipeline validates",
                count("sources"),
                count("mappings"),
                count("registers"),
                count("synchronizations")
            );
            if !imported.variables.is_empty() {
                eprintln!("set {} before running it", imported.variables.join(", "));
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => {
            eprintln!("the imported pipeline does not validate yet; fix these and run `syncline validate`:\n{errors}");
            Ok(ExitCode::from(super::USAGE))
        }
    }
}

fn read_json(path: &Path) -> anyhow::Result<Value> {
    let text = syncline::config::read_definition(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))
}

/// The buckets of a configuration that a folder of per-object files may hold, each a sub-folder.
const BUCKETS: [&str; 8] = ["sources", "mappings", "synchronizations", "rules", "registers", "schemas", "endpoints", "jobs"];

/// A folder of one JSON file per object, as one configuration: `components.<bucket>` lists the
/// files of each sub-folder, in name order.
fn folder_configuration(folder: &Path) -> anyhow::Result<Value> {
    let mut components = serde_json::Map::new();
    for bucket in BUCKETS {
        let dir = folder.join(bucket);
        if !dir.is_dir() {
            continue;
        }
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .with_context(|| format!("cannot read {}", dir.display()))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| path.extension().is_some_and(|e| e == "json"))
            .collect();
        files.sort();
        let objects = files.iter().map(|path| read_json(path)).collect::<anyhow::Result<Vec<_>>>()?;
        components.insert(bucket.to_string(), Value::Array(objects));
    }
    if components.is_empty() {
        anyhow::bail!("{} holds none of the folders {} of a configuration", folder.display(), BUCKETS.join(", "));
    }
    Ok(serde_json::json!({ "components": components }))
}

/// Writes a pipeline as a configuration file.
pub fn export(args: ExportArgs) -> anyhow::Result<ExitCode> {
    let pipeline = match super::load(&args.file) {
        Ok(pipeline) => pipeline,
        Err(code) => return Ok(code),
    };
    let title = args.title.unwrap_or_else(|| args.file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default());
    let (file, notices) = openconnector::export(&pipeline, &title);
    let rendered = serde_json::to_string_pretty(&file)? + "\n";
    match &args.output {
        Some(path) => std::fs::write(path, rendered).with_context(|| format!("cannot write {}", path.display()))?,
        None => print!("{rendered}"),
    }
    report(&notices);
    Ok(ExitCode::SUCCESS)
}

fn report(notices: &[Notice]) {
    if notices.is_empty() {
        return;
    }
    eprintln!("{} note(s): what was read differently or not carried over:", notices.len());
    for notice in notices {
        eprintln!("  - {notice}");
    }
}

/// A JSON value as a YAML document (the pipeline files in `pipelines/` are YAML).
fn to_yaml(value: &Value) -> anyhow::Result<String> {
    fn convert(value: &Value) -> Yaml {
        match value {
            Value::Null => Yaml::Null,
            Value::Bool(b) => Yaml::Boolean(*b),
            Value::Number(n) => n.as_i64().map(Yaml::Integer).unwrap_or_else(|| Yaml::Real(n.to_string())),
            Value::String(s) => Yaml::String(s.clone()),
            Value::Array(items) => Yaml::Array(items.iter().map(convert).collect()),
            Value::Object(map) => Yaml::Hash(map.iter().map(|(k, v)| (Yaml::String(k.clone()), convert(v))).collect()),
        }
    }
    let mut out = String::new();
    let mut emitter = YamlEmitter::new(&mut out);
    emitter.multiline_strings(true);
    emitter.dump(&convert(value)).map_err(|e| anyhow::anyhow!("cannot write YAML: {e:?}"))?;
    out.push('\n');
    Ok(out)
}
