//! The `syncline` command line. Exit codes: 0 done, 1 a job failed, 2 bad usage or configuration.

mod cli;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::prelude::*;
use tracing_subscriber::{Layer, Registry};

/// Keeps a register in sync with an external source.
#[derive(Parser)]
#[command(name = "syncline", version, about)]
struct Args {
    /// State directory: contracts, jobs and the embedded register.
    #[arg(long, global = true, env = "SYNCLINE_STATE", default_value = ".syncline")]
    state: PathBuf,
    /// Keep the contract tables in this object store instead of the state directory, so machines
    /// that share it share them: `s3://bucket/prefix`, `gs://…`, `az://…`, `file:///dir`. The
    /// store's credentials and endpoint come from its own variables (`AWS_ACCESS_KEY_ID`,
    /// `AWS_ENDPOINT`…).
    #[arg(long, global = true, env = "SYNCLINE_CONTRACTS", value_name = "URL")]
    contracts: Option<String>,
    /// Take a lease on this PostgreSQL database for every run (`postgres://…[?schema=NAME]`, default
    /// schema `syncline`), so machines that share no disk never run one synchronization at once, and
    /// `serve` replicas fire each schedule once between them.
    #[arg(long, global = true, env = "SYNCLINE_LEASES", value_name = "URL")]
    leases: Option<String>,
    /// How long a lease lasts without renewal: a machine that dies frees its synchronizations after
    /// this long. Renewed every third of it.
    #[arg(long, global = true, env = "SYNCLINE_LEASE_SECONDS", default_value_t = 30.0, value_name = "SECONDS")]
    lease_seconds: f64,
    /// How log lines are written to stderr: `text`, or `json` (one object a line, for log shippers).
    /// The level comes from `SYNCLINE_LOG`, else `RUST_LOG` (default `error`).
    #[arg(long, global = true, env = "SYNCLINE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run synchronizations of a pipeline file in the foreground.
    Run(cli::run::RunArgs),
    /// Check pipeline files offline.
    Validate {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Work with mappings.
    #[command(subcommand)]
    Mapping(cli::inspect::MappingCommand),
    /// Work with sources.
    #[command(subcommand)]
    Source(cli::source::SourceCommand),
    /// List the contracts of a synchronization, or remove one.
    Contracts(cli::inspect::ContractsArgs),
    /// List recent jobs.
    Jobs(cli::inspect::JobsArgs),
    /// Show a job's log lines and failed records.
    Logs {
        /// Job id (or a unique prefix).
        job: String,
    },
    /// Read the embedded register.
    #[command(subcommand)]
    Objects(cli::inspect::ObjectsCommand),
    /// The requests a source's runs made (its call log).
    Calls(cli::calls::CallsArgs),
    /// The state's metrics in Prometheus' text format, on stdout or into a textfile-collector file.
    Metrics {
        /// Write them to this file (atomically) instead of printing them.
        #[arg(long, value_name = "PATH")]
        textfile: Option<PathBuf>,
    },
    /// Query the state with SQL (read-only): jobs, contracts, calls, and every register schema.
    #[cfg(feature = "sql")]
    Sql(cli::sql::SqlArgs),
    /// Move state between the state directory and shared stores (`state migrate --to s3://…`).
    #[command(subcommand)]
    State(cli::state::StateCommand),
    /// Webhook deliveries: list them, send a dead-lettered one again.
    #[command(subcommand)]
    Webhooks(cli::webhooks::WebhooksCommand),
    /// Read an OpenConnector/OpenRegister configuration file into a pipeline file.
    Import(cli::openconnector::ImportArgs),
    /// Write a pipeline file as an OpenConnector/OpenRegister configuration file.
    Export(cli::openconnector::ExportArgs),
    /// Serve the HTTP API: definitions, runs as background jobs, a scheduler.
    Serve(cli::serve::ServeArgs),
    /// Serve the bundled pet-store API alone (to try `serve` by hand).
    Fixture(cli::demo::FixtureArgs),
    /// Start the bundled pet-store API and run pipelines/petstore.yaml against it twice.
    Demo(cli::demo::DemoArgs),
}

/// Log lines go to stderr with every secret the process knows masked, whatever library wrote them.
struct ScrubbedStderr;

impl std::io::Write for ScrubbedStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        // A log line quotes what upstreams sent (ids, error bodies): control characters print inert,
        // so none can retitle or clear a terminal (colours are off for the same reason).
        let inert: String =
            syncline::secrets::scrub(&text).chars().map(|c| if c.is_control() && c != '\n' && c != '\t' { '?' } else { c }).collect();
        std::io::Write::write_all(&mut std::io::stderr(), inert.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::Write::flush(&mut std::io::stderr())
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("SYNCLINE_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_from_default_env())
        // A job's own lines (target `syncline::job`) only when asked for: `run` prints its outcome.
        .unwrap_or_else(|_| "error,syncline::job=off".into());
    let logs = tracing_subscriber::fmt::layer().with_ansi(false).with_writer(|| ScrubbedStderr);
    let logs: Box<dyn Layer<Registry> + Send + Sync> = match args.log_format {
        LogFormat::Text => Box::new(logs.with_filter(filter)),
        // Fields (a job line's `job` and `synchronization`) as keys beside `message`.
        LogFormat::Json => Box::new(logs.json().flatten_event(true).with_current_span(false).with_span_list(false).with_filter(filter)),
    };
    // Traces only when the OTEL_* variables ask for them: otherwise no layer, and spans cost nothing.
    let (traces, telemetry) = match syncline::telemetry::Config::from_env(|name| std::env::var(name).ok()) {
        Ok(Some(config)) => match syncline::telemetry::OtlpLayer::start(config) {
            Ok((layer, telemetry)) => (Some(layer.with_filter(filter_fn(syncline::telemetry::OtlpLayer::wants))), Some(telemetry)),
            Err(error) => {
                eprintln!("warning: traces are off: cannot start their exporter: {error}");
                (None, None)
            }
        },
        Ok(None) => (None, None),
        Err(reason) => {
            eprintln!("warning: traces are off: {reason}");
            (None, None)
        }
    };
    tracing_subscriber::registry().with(logs).with(traces).init();
    // Records are walked recursively within their `maxDepth` (up to 1,024 levels): threads get room for it.
    let runtime = match tokio::runtime::Builder::new_multi_thread().thread_stack_size(16 * 1024 * 1024).enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the runtime: {error}");
            return ExitCode::from(1);
        }
    };
    let lease = Duration::from_secs_f64(args.lease_seconds.clamp(1.0, 3600.0));
    let state = cli::State { dir: args.state, contracts: args.contracts, leases: args.leases.map(|url| (url, lease)) };
    let result = runtime.block_on(async {
        match args.command {
            Command::Run(run) => cli::run::run(&state, run).await,
            Command::Validate { files } => cli::inspect::validate(&files),
            Command::Mapping(command) => cli::inspect::mapping(command),
            Command::Source(command) => cli::source::run(command).await,
            Command::Contracts(contracts) => cli::inspect::contracts(&state, contracts).await,
            Command::Jobs(jobs) => cli::inspect::jobs(&state.dir, jobs),
            Command::Logs { job } => cli::inspect::logs(&state.dir, &job),
            Command::Objects(command) => cli::inspect::objects(&state.dir, command),
            Command::Webhooks(command) => cli::webhooks::run(&state.dir, command),
            Command::Calls(calls) => cli::calls::run(&state.dir, calls),
            Command::Metrics { textfile } => cli::run::metrics(&state, textfile.as_deref()).await,
            Command::Import(import) => cli::openconnector::import(import),
            Command::Export(export) => cli::openconnector::export(export),
            #[cfg(feature = "sql")]
            Command::Sql(sql) => cli::sql::run(&state, sql).await,
            Command::State(command) => cli::state::run(&state, command).await,
            Command::Serve(serve) => cli::serve::serve(&state, serve).await,
            Command::Fixture(fixture) => cli::demo::fixture(fixture).await,
            Command::Demo(demo) => cli::demo::demo(&state.dir, demo).await,
        }
    });
    // A blocking task still running (a mapping on the blocking pool, a stalled read) does not keep
    // the process from exiting once the command is done or a signal stopped it.
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    // The spans still buffered go out before the process ends.
    if let Some(telemetry) = telemetry {
        telemetry.shutdown(std::time::Duration::from_secs(5));
    }
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {}", syncline::secrets::scrub(&format!("{error:#}")));
            ExitCode::from(1)
        }
    }
}
