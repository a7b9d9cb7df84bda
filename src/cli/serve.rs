//! `syncline serve`: the HTTP API, until SIGTERM or Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use syncline::config::Secret;
use syncline::service::{self, ServeOptions};
use tokio_util::sync::CancellationToken;

#[derive(Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// The key clients send as `x-api-key` (several: comma-separated). Prefer the environment variable:
    /// a command line is visible to other users of the machine.
    #[arg(long = "api-key", env = "SYNCLINE_API_KEY", hide_env_values = true, value_delimiter = ',')]
    api_keys: Vec<String>,
    /// Seconds between the scheduler's looks for due runs.
    #[arg(long, default_value_t = 1.0)]
    tick: f64,
    /// Where users reach the service, e.g. `https://sync.example.org` behind a proxy: an `https` address
    /// makes the console's session cookie `Secure`.
    #[arg(long, env = "SYNCLINE_PUBLIC_URL")]
    public_url: Option<url::Url>,
    /// Let sources made over the API (and the console) run programs (`type: command`, `type: airbyte`).
    /// Off by default: whoever holds an API key could then run anything as this user. Pipeline files
    /// given here may always hold them.
    #[arg(long, env = "SYNCLINE_ALLOW_PROGRAMS")]
    allow_programs: bool,
    /// Pipeline files whose definitions the service serves (read-only over the API).
    files: Vec<PathBuf>,
}

pub async fn serve(state: &super::State, args: ServeArgs) -> anyhow::Result<ExitCode> {
    let state = state.open().await?;
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    eprintln!("syncline serving on http://{} (state {})", listener.local_addr()?, state.root().display());
    let options = ServeOptions {
        listen: args.listen,
        files: args.files,
        api_keys: args.api_keys.into_iter().map(Secret::new).collect(),
        tick: Duration::from_secs_f64(args.tick.max(0.05)),
        public_url: args.public_url,
        server: service::ServerLimits::default(),
        front: Some(syncline::console::mount),
        allow_programs: args.allow_programs,
    };
    service::serve(state, listener, options, CancellationToken::new()).await?;
    eprintln!("syncline stopped");
    Ok(ExitCode::SUCCESS)
}
