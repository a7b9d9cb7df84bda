//! Subcommands that check or read: validate, mapping test, contracts, jobs, logs, objects.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use syncline::config::Pipeline;
use syncline::diff::contracts::ContractTable;
use syncline::mapping::Mapping;
use syncline::store::register::ChangeQuery;
use syncline::store::{RegisterStore, StateDir, millis_text};

use super::{USAGE, load, thousands};

pub fn validate(files: &[PathBuf]) -> anyhow::Result<ExitCode> {
    let mut ok = true;
    for file in files {
        match Pipeline::load(file) {
            Ok(p) => println!(
                "{}: OK ({} sources, {} mappings, {} registers, {} synchronizations)",
                file.display(),
                p.sources.len(),
                p.mappings.len(),
                p.registers.len(),
                p.synchronizations.len()
            ),
            Err(errors) => {
                ok = false;
                eprintln!("{errors}");
            }
        }
    }
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(USAGE) })
}

#[derive(Subcommand)]
pub enum MappingCommand {
    /// Map a sample record and print the result, or the template error with its field.
    Test {
        file: PathBuf,
        mapping: String,
        /// A JSON file holding one source record.
        #[arg(long)]
        input: PathBuf,
    },
}

pub fn mapping(command: MappingCommand) -> anyhow::Result<ExitCode> {
    let MappingCommand::Test { file, mapping, input } = command;
    let pipeline = match load(&file) {
        Ok(p) => p,
        Err(code) => return Ok(code),
    };
    let Some(def) = pipeline.mappings.get(&mapping) else {
        eprintln!("error: no mapping `{mapping}` in {} (there: {:?})", file.display(), pipeline.mappings.keys().collect::<Vec<_>>());
        return Ok(ExitCode::from(USAGE));
    };
    let text = std::fs::read_to_string(&input).with_context(|| format!("cannot read {}", input.display()))?;
    let record: serde_json::Value = serde_json::from_str(&text).with_context(|| format!("{} is not JSON", input.display()))?;
    let compiled = Mapping::compile_in(&mapping, def, &pipeline.mappings)?;
    match compiled.apply(&record) {
        Ok(object) => {
            println!("{}", serde_json::to_string_pretty(&object)?);
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            eprintln!("error: mapping `{mapping}`: {error}");
            Ok(ExitCode::from(1))
        }
    }
}

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ContractsArgs {
    #[command(subcommand)]
    command: Option<ContractsCommand>,
    /// The synchronization whose contracts to list.
    sync: Option<String>,
    /// Show at most this many.
    #[arg(long, default_value_t = 50)]
    limit: usize,
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
pub enum ContractsCommand {
    /// Remove one contract: the next run creates that object again (with the same target id).
    Rm { sync: String, origin_id: String },
}

pub async fn contracts(state: &super::State, args: ContractsArgs) -> anyhow::Result<ExitCode> {
    let state = state.open().await?;
    if let Some(ContractsCommand::Rm { sync, origin_id }) = args.command {
        let mut table = ContractTable::load(&state, &sync).await?;
        let Some(row) = table.find(&origin_id) else {
            eprintln!("error: `{sync}` has no contract for origin id `{origin_id}`");
            return Ok(ExitCode::from(1));
        };
        table.remove(row);
        table.save(&state, &sync).await?;
        println!("removed the contract of `{origin_id}` from `{sync}`; the next run creates its object again");
        return Ok(ExitCode::SUCCESS);
    }
    let Some(sync) = args.sync else {
        eprintln!("error: name a synchronization: syncline contracts SYNC");
        return Ok(ExitCode::from(USAGE));
    };
    let table = ContractTable::load(&state, &sync).await?;
    let contracts = table.contracts();
    if args.json {
        for c in contracts.iter().take(args.limit) {
            println!("{}", serde_json::to_string(c)?);
        }
        return Ok(ExitCode::SUCCESS);
    }
    println!("{} contract(s) of `{sync}`", thousands(contracts.len() as u64));
    println!("{:<20} {:<36} {:<16} {:<24} {:<24}", "ORIGIN ID", "TARGET ID", "HASH", "LAST SEEN", "LAST CHANGED");
    for c in contracts.iter().take(args.limit) {
        println!(
            "{:<20} {:<36} {:<16} {:<24} {:<24}",
            super::printable(&c.origin_id),
            c.target_id,
            c.origin_hash.get(..16).unwrap_or(&c.origin_hash),
            millis_text(c.last_seen),
            millis_text(c.last_changed)
        );
    }
    if contracts.len() > args.limit {
        println!("… {} more (--limit)", contracts.len() - args.limit);
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Args)]
pub struct JobsArgs {
    /// Only jobs of this synchronization.
    #[arg(long)]
    sync: Option<String>,
    #[arg(long, default_value_t = 20)]
    limit: usize,
    #[arg(long)]
    json: bool,
}

pub fn jobs(state: &Path, args: JobsArgs) -> anyhow::Result<ExitCode> {
    let jobs = StateDir::open(state)?.jobs()?.list(args.sync.as_deref(), args.limit)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&jobs)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<36} {:<20} {:<10} {:<24} {:>9} FOUND/CREATED/UPDATED/UNCHANGED/DELETED/FAILED",
        "JOB", "SYNCHRONIZATION", "STATUS", "STARTED", "SECONDS"
    );
    for job in jobs {
        let c = job.counts;
        println!(
            "{:<36} {:<20} {:<10} {:<24} {:>9.2} {}/{}/{}/{}/{}/{}",
            job.id,
            job.synchronization,
            job.status.as_str(),
            job.started_at.unwrap_or_default(),
            job.duration_seconds.unwrap_or(0.0),
            c.found,
            c.created,
            c.updated,
            c.unchanged,
            c.deleted,
            c.failed
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn logs(state: &Path, id: &str) -> anyhow::Result<ExitCode> {
    let store = StateDir::open(state)?.jobs()?;
    let job = match store.get(id) {
        Ok(job) => job,
        Err(error) => {
            eprintln!("error: {error}");
            return Ok(ExitCode::from(1));
        }
    };
    println!("job {} of `{}`: {}", job.id, job.synchronization, job.status.as_str());
    for line in store.logs(&job.id)? {
        println!("{} {:<5} {}", line.at, line.level, super::printable(&line.message));
    }
    let errors = store.errors(&job.id, 1000)?;
    if !errors.is_empty() {
        println!("failed records:");
        for error in errors {
            println!(
                "  {}: {}",
                if error.origin_id.is_empty() { "?".into() } else { super::printable(&error.origin_id) },
                super::printable(&error.message)
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Subcommand)]
pub enum ObjectsCommand {
    /// Objects of a schema: `syncline objects list dcat/dataset`.
    List {
        /// `<register>/<schema>`.
        schema: String,
        #[arg(long, default_value_t = 20)]
        limit: usize,
        #[arg(long, default_value_t = 0)]
        offset: usize,
        #[arg(long)]
        json: bool,
    },
    /// One object with its provenance and audit trail.
    Show { id: String },
    /// The change feed of a schema, from after change `--since`: `syncline objects changes dcat/dataset`.
    Changes {
        /// `<register>/<schema>`.
        schema: String,
        /// The number of the last change already seen (0: from the first).
        #[arg(long, default_value_t = 0)]
        since: i64,
        /// Each object's latest change only.
        #[arg(long)]
        latest: bool,
        /// Keep waiting for new changes (Ctrl-C stops).
        #[arg(long)]
        follow: bool,
        /// One JSON object per line instead of text.
        #[arg(long)]
        json: bool,
    },
}

fn schema_usage() -> ExitCode {
    eprintln!("error: write the schema as <register>/<schema>, e.g. dcat/dataset");
    ExitCode::from(USAGE)
}

/// Prints the changes after `since`, page by page, and with `follow` keeps polling for more.
fn follow_changes(
    store: &RegisterStore,
    register: &str,
    schema: &str,
    mut since: i64,
    latest: bool,
    follow: bool,
    json: bool,
) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    loop {
        let query = ChangeQuery { register: Some(register), schema: Some(schema), since, limit: 500, latest, ..ChangeQuery::default() };
        let page = store.changes(&query)?;
        for change in &page.changes {
            if json {
                writeln!(out, "{}", serde_json::to_string(change)?)?;
            } else {
                let object = change.object.as_ref().map(serde_json::to_string).transpose()?.unwrap_or_default();
                writeln!(
                    out,
                    "{:>8}  {} {:<11} {}  job {} ({})  {object}",
                    change.seq,
                    change.at,
                    change.action,
                    change.id,
                    change.job.as_deref().unwrap_or(""),
                    change.synchronization.as_deref().unwrap_or("")
                )?;
            }
        }
        out.flush()?;
        since = page.next;
        if page.more {
            continue;
        }
        if !follow {
            if !json {
                eprintln!("next: --since {since}");
            }
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
}

pub fn objects(state: &Path, command: ObjectsCommand) -> anyhow::Result<ExitCode> {
    let store = StateDir::open(state)?.register()?;
    match command {
        ObjectsCommand::Changes { schema, since, latest, follow, json } => {
            let Some((register, schema)) = schema.split_once('/') else { return Ok(schema_usage()) };
            follow_changes(&store, register, schema, since, latest, follow, json)?;
        }
        ObjectsCommand::List { schema, limit, offset, json } => {
            let Some((register, schema)) = schema.split_once('/') else { return Ok(schema_usage()) };
            let objects = store.list(register, schema, &[], limit, offset)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&objects)?);
            } else {
                println!("{} object(s) in {register}/{schema}", thousands(store.count(register, schema, &[])?));
                for o in objects {
                    println!(
                        "{}  origin {:<10} {}",
                        o.id,
                        super::printable(&o.origin_id.unwrap_or_default()),
                        serde_json::to_string(&o.object)?
                    );
                }
            }
        }
        ObjectsCommand::Show { id } => {
            let (object, trail) = match store.show(&id) {
                Ok(found) => found,
                Err(error) => {
                    eprintln!("error: {error}");
                    return Ok(ExitCode::from(1));
                }
            };
            println!("{}", serde_json::to_string_pretty(&object)?);
            println!("audit trail:");
            for entry in trail {
                println!(
                    "  {} {:<11} job {} ({})",
                    entry.at,
                    entry.action,
                    entry.job.unwrap_or_default(),
                    entry.synchronization.unwrap_or_default()
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
