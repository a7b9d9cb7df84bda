//! `syncline run`: synchronizations in the foreground, with a progress bar on a terminal and plain
//! progress lines otherwise, and one summary line per synchronization.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use syncline::pipeline::{self, Progress, RunOptions, RunReport, follow_ups};
use syncline::store::{JobStatus, StateDir};
use tokio_util::sync::CancellationToken;

use super::{USAGE, load, thousands};

#[derive(Args)]
pub struct RunArgs {
    /// Pipeline file (YAML or JSON).
    file: PathBuf,
    /// Synchronizations to run (default: all in the file).
    syncs: Vec<String>,
    /// Ignore saved hashes: write every record again.
    #[arg(long)]
    force_full_sync: bool,
    /// Map and validate everything, write nothing, report what would change.
    #[arg(long)]
    dry_run: bool,
    /// Allow deleting more than the synchronization's maxDeleteShare.
    #[arg(long)]
    allow_mass_delete: bool,
    /// Print each finished job as a JSON line instead of a summary.
    #[arg(long)]
    json: bool,
    /// After the runs, write the state's metrics to this file (Prometheus' textfile-collector
    /// convention: written beside it, then renamed, so the collector never reads half a file).
    #[arg(long, value_name = "PATH")]
    metrics_textfile: Option<PathBuf>,
    /// After the runs, POST the state's metrics to this URL (a Prometheus Pushgateway:
    /// `http://host:9091/metrics/job/syncline`; credentials in the URL are sent as basic auth).
    #[arg(long, value_name = "URL")]
    metrics_push: Option<url::Url>,
}

pub async fn run(state: &super::State, args: RunArgs) -> anyhow::Result<ExitCode> {
    let pipeline = match load(&args.file) {
        Ok(p) => p,
        Err(code) => return Ok(code),
    };
    let names: Vec<String> = if args.syncs.is_empty() { pipeline.synchronizations.keys().cloned().collect() } else { args.syncs.clone() };
    if let Some(unknown) = names.iter().find(|n| !pipeline.synchronizations.contains_key(*n)) {
        let known: Vec<&String> = pipeline.synchronizations.keys().collect();
        eprintln!("error: no synchronization `{unknown}` in {} (there: {known:?})", args.file.display());
        return Ok(ExitCode::from(USAGE));
    }
    let state = state.open().await?;
    let cancel = CancellationToken::new();
    let on_signal = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("\ncancelling: finishing the writes in flight…");
            on_signal.cancel();
        }
    });
    let mut failed = false;
    let jobs = state.jobs()?;
    'runs: for name in names {
        // Depth first, in order: a synchronization, then its follow-ups (and theirs) before the next.
        let mut pending: Vec<(String, Vec<String>, Option<syncline::store::JobRecord>)> = vec![(name, Vec::new(), None)];
        while let Some((name, chain, parent)) = pending.pop() {
            let options = RunOptions {
                force_full_sync: args.force_full_sync,
                dry_run: args.dry_run,
                allow_mass_delete: args.allow_mass_delete,
                cancel: cancel.clone(),
                ..RunOptions::default()
            };
            let report = run_one(&pipeline, &name, &state, options, !args.json).await?;
            if let Some(parent) = &parent {
                follow_ups::link(&jobs, parent, &report.job)?;
            }
            failed |= report.job.status != JobStatus::Completed;
            if args.json {
                println!("{}", serde_json::to_string(&report.job)?);
            } else {
                print_report(&state, &report);
            }
            if cancel.is_cancelled() {
                break 'runs;
            }
            let next = follow_ups::due(&pipeline, &report.job, &chain, &jobs)?;
            let chain: Vec<String> = chain.into_iter().chain([name]).collect();
            pending.extend(next.into_iter().rev().map(|f| (f, chain.clone(), Some(report.job.clone()))));
        }
    }
    if let Some(path) = &args.metrics_textfile {
        write_metrics(&state, path).await?;
    }
    if let Some(url) = &args.metrics_push
        && let Err(error) = push_metrics(&state, url).await
    {
        // The runs' outcome stands; the push is reported beside it.
        eprintln!("warning: {}", syncline::secrets::scrub(&format!("{error:#}")));
    }
    Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// `syncline metrics`: prints the state's metrics, or writes them to `textfile`.
pub async fn metrics(state: &super::State, textfile: Option<&Path>) -> anyhow::Result<ExitCode> {
    let state = state.open().await?;
    match textfile {
        Some(path) => write_metrics(&state, path).await?,
        None => print!("{}", syncline::metrics::render(&state, chrono::Utc::now()).await?),
    }
    Ok(ExitCode::SUCCESS)
}

/// POSTs the metrics of `state` to `url`, within 30 seconds.
async fn push_metrics(state: &StateDir, url: &url::Url) -> anyhow::Result<()> {
    if let Some(password) = url.password() {
        syncline::secrets::remember(password);
    }
    let shown = syncline::secrets::without_credentials(url);
    let text = syncline::metrics::render(state, chrono::Utc::now()).await?;
    let mut request = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        // A redirect would carry the metrics, and the credentials, elsewhere.
        .redirect(reqwest::redirect::Policy::none())
        .build()?
        .post(shown.clone())
        .header(reqwest::header::CONTENT_TYPE, syncline::metrics::CONTENT_TYPE)
        .body(text);
    if !url.username().is_empty() || url.password().is_some() {
        let user = percent_encoding::percent_decode_str(url.username()).decode_utf8_lossy().into_owned();
        let password = url.password().map(|p| percent_encoding::percent_decode_str(p).decode_utf8_lossy().into_owned());
        request = request.basic_auth(user, password);
    }
    let response = request.send().await.map_err(|e| anyhow::anyhow!("metrics push to {shown}: {}", e.without_url()))?;
    let status = response.status();
    anyhow::ensure!(status.is_success(), "metrics push to {shown}: HTTP {status}");
    Ok(())
}

/// Writes the metrics of `state` to `path`, atomically.
pub async fn write_metrics(state: &StateDir, path: &Path) -> anyhow::Result<()> {
    let text = syncline::metrics::render(state, chrono::Utc::now()).await?;
    let name = path.file_name().ok_or_else(|| anyhow::anyhow!("{} names no file", path.display()))?;
    let partial = path.with_file_name(format!(".{}.partial", name.to_string_lossy()));
    std::fs::write(&partial, text).with_context(|| format!("writing {}", partial.display()))?;
    std::fs::rename(&partial, path).with_context(|| format!("renaming {} to {}", partial.display(), path.display()))?;
    Ok(())
}

/// Runs one synchronization while showing its progress.
pub async fn run_one(
    pipeline: &syncline::config::Pipeline,
    name: &str,
    state: &StateDir,
    options: RunOptions,
    show_progress: bool,
) -> anyhow::Result<RunReport> {
    let progress = Arc::new(Progress::default());
    let ticker = show_progress.then(|| tokio::spawn(show(name.to_string(), Arc::clone(&progress))));
    let report = pipeline::run(pipeline, name, state, options, progress).await;
    if let Some(ticker) = ticker {
        ticker.abort();
        let _ = ticker.await;
    }
    Ok(report?)
}

/// A spinner with counts and rate on a terminal; a plain line every 5 seconds otherwise.
async fn show(name: String, progress: Arc<Progress>) {
    let started = Instant::now();
    let terminal = std::io::stderr().is_terminal();
    let bar = terminal.then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {msg}").unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        bar
    });
    struct Clear(Option<indicatif::ProgressBar>);
    impl Drop for Clear {
        fn drop(&mut self) {
            if let Some(bar) = &self.0 {
                bar.finish_and_clear();
            }
        }
    }
    let guard = Clear(bar);
    let period = if terminal { Duration::from_millis(120) } else { Duration::from_secs(5) };
    let mut ticks = tokio::time::interval(period);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        let c = progress.get();
        let rate = c.found as f64 / started.elapsed().as_secs_f64().max(0.001);
        let line = format!(
            "{name}: {} records ({} records/s), created {}, updated {}, unchanged {}, failed {}",
            thousands(c.found),
            thousands(rate as u64),
            thousands(c.created),
            thousands(c.updated),
            thousands(c.unchanged),
            thousands(c.failed)
        );
        match &guard.0 {
            Some(bar) => {
                bar.set_message(line);
                bar.tick();
            }
            None => eprintln!("{line}"),
        }
    }
}

/// One summary line, then warnings, the error and the first failed records.
pub fn print_report(state: &StateDir, report: &RunReport) {
    let job = &report.job;
    let c = &job.counts;
    let seconds = job.duration_seconds.unwrap_or(0.0);
    let rate = c.found as f64 / seconds.max(0.000_001);
    let dry = if job.dry_run { " (dry run: nothing written)" } else { "" };
    println!(
        "{}: {} found {}, created {}, updated {}, unchanged {}, skipped {}, deleted {}, failed {} in {:.2}s ({} records/s){dry}",
        job.synchronization,
        job.status.as_str(),
        thousands(c.found),
        thousands(c.created),
        thousands(c.updated),
        thousands(c.unchanged),
        thousands(c.skipped),
        thousands(c.deleted),
        thousands(c.failed),
        seconds,
        thousands(rate as u64),
    );
    for warning in &report.warnings {
        eprintln!("  warning: {}", super::printable(warning));
    }
    if let Some(error) = &job.error {
        eprintln!("  error [{}]: {}", job.error_category.as_deref().unwrap_or("internal"), super::printable(error));
    }
    if c.failed > 0
        && let Ok(jobs) = state.jobs()
        && let Ok(errors) = jobs.errors(&job.id, 5)
    {
        for error in &errors {
            let id = if error.origin_id.is_empty() { String::new() } else { format!("{}: ", super::printable(&error.origin_id)) };
            eprintln!("  failed {id}{}", super::printable(&error.message));
        }
        if c.failed > errors.len() as u64 {
            eprintln!("  … and {} more: syncline logs {}", c.failed - errors.len() as u64, job.id);
        }
    }
}
