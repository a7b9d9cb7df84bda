//! `syncline demo`: the bundled pet-store API on a loopback port, and `pipelines/petstore.yaml` run
//! against it twice: the first run creates every pet, the second changes nothing.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use syncline::config::{Pipeline, process_env};
use syncline::fixture::{self, Fixture};
use syncline::pipeline::RunOptions;
use syncline::store::{JobStatus, StateDir};

use super::USAGE;
use super::run::{print_report, run_one};

#[derive(Args)]
pub struct DemoArgs {
    /// The pipeline to run.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/pipelines/petstore.yaml"))]
    file: PathBuf,
    /// How many pets the fixture API serves.
    #[arg(long, default_value_t = 60)]
    pets: usize,
}

#[derive(Args)]
pub struct FixtureArgs {
    #[arg(long, default_value = "127.0.0.1:8081")]
    listen: String,
    /// How many pets it serves.
    #[arg(long, default_value_t = 60)]
    pets: usize,
    /// Also serve the benchmark's generated feed of this many records (pages of 1,000 at `/feed`, on a
    /// port of its own), to try syncline at scale.
    #[arg(long, value_name = "RECORDS")]
    feed: Option<u64>,
    /// With --feed: every 10th record has a new name and `updated_at`.
    #[arg(long, requires = "feed")]
    changed: bool,
}

/// `syncline fixture`: the bundled pet-store API alone, until Ctrl-C (for trying `serve` by hand).
pub async fn fixture(args: FixtureArgs) -> anyhow::Result<ExitCode> {
    let server = Fixture::start_on(&args.listen, fixture::pets(args.pets)).await?;
    println!("pet-store fixture API on {} ({} pets); Ctrl-C stops it", server.base_url(), args.pets);
    let _feed = match args.feed {
        Some(records) => {
            let feed = std::sync::Arc::new(fixture::feed::Feed::new(records, 1000));
            feed.changed.store(args.changed, std::sync::atomic::Ordering::SeqCst);
            let server = fixture::feed::FeedServer::start(feed).await?;
            println!("generated feed of {records} records on {} (resultsPosition data.items, page pagination)", server.url());
            Some(server)
        }
        None => None,
    };
    tokio::signal::ctrl_c().await?;
    Ok(ExitCode::SUCCESS)
}

pub async fn demo(state: &Path, args: DemoArgs) -> anyhow::Result<ExitCode> {
    let server = Fixture::start(fixture::pets(args.pets)).await?;
    let url = server.base_url();
    println!("pet-store fixture API on {url} ({} pets)", args.pets);
    let env = |name: &str| if name == "PETSTORE_URL" { Some(url.clone()) } else { process_env(name) };
    let pipeline = match Pipeline::load_with_env(&args.file, &env) {
        Ok(p) => p,
        Err(errors) => {
            eprintln!("{errors}");
            return Ok(ExitCode::from(USAGE));
        }
    };
    // A state of its own, emptied first, so the first run always starts from nothing.
    let root = state.join("demo");
    if root.exists() {
        std::fs::remove_dir_all(&root)?;
    }
    let state = StateDir::open(&root)?;
    let mut ok = true;
    for round in ["first run", "second run (nothing changed at the source)"] {
        println!("\n== {round}");
        for name in pipeline.synchronizations.keys() {
            let report = run_one(&pipeline, name, &state, RunOptions::default(), true).await?;
            ok &= report.job.status == JobStatus::Completed;
            print_report(&state, &report);
        }
    }
    let register = state.register()?;
    for sync in pipeline.synchronizations.values() {
        let objects = register.list(&sync.register, &sync.schema, &[], 3, 0)?;
        println!("\n{} objects in {}/{}; the first ones:", register.count(&sync.register, &sync.schema, &[])?, sync.register, sync.schema);
        for o in objects {
            println!("  {} {}", o.id, serde_json::to_string(&o.object)?);
        }
    }
    println!("\nstate kept in {}: try `syncline --state {} objects list dcat/dataset` or `… jobs`", root.display(), root.display());
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
