//! `syncline calls SOURCE`: the requests a source's runs made (its call log), newest first.

use std::path::Path;
use std::process::ExitCode;

use clap::Args;
use syncline::store::StateDir;
use syncline::store::calls::CallQuery;

use super::printable;

#[derive(Args)]
pub struct CallsArgs {
    /// The source's name.
    source: String,
    /// Of this job only.
    #[arg(long)]
    job: Option<String>,
    /// Failed calls only (no answer, or not 2xx).
    #[arg(long)]
    errors: bool,
    #[arg(long, default_value_t = 50)]
    limit: usize,
    #[arg(long)]
    json: bool,
}

pub fn run(state: &Path, args: CallsArgs) -> anyhow::Result<ExitCode> {
    let store = StateDir::open(state)?.calls()?;
    let calls = store.list(&CallQuery { source: &args.source, job: args.job.as_deref(), errors: args.errors, limit: args.limit })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&calls)?);
        return Ok(ExitCode::SUCCESS);
    }
    if calls.is_empty() {
        eprintln!("no calls recorded for `{}`", printable(&args.source));
    }
    for c in calls {
        let status = c.call.status.map(|s| s.to_string()).unwrap_or_else(|| "---".into());
        let error = c.call.error.as_deref().map(|e| format!("  {}", printable(e))).unwrap_or_default();
        println!(
            "{}  {}  {status} {:>6} ms  in {} out {}  {} {}{error}",
            c.time,
            c.job.as_deref().map_or("", |j| &j[..j.len().min(8)]),
            c.call.duration_ms,
            c.call.bytes_in,
            c.call.bytes_out,
            c.call.method,
            printable(&c.call.url)
        );
    }
    Ok(ExitCode::SUCCESS)
}
