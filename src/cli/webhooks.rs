//! `syncline webhooks`: the deliveries of webhook subscriptions (the service sends them), and sending
//! a dead-lettered one again.

use std::path::Path;
use std::process::ExitCode;

use clap::Subcommand;
use syncline::store::StateDir;

use super::printable;

#[derive(Subcommand)]
pub enum WebhooksCommand {
    /// Deliveries, newest first: `syncline webhooks deliveries --status dead`.
    Deliveries {
        /// Of this subscription only.
        #[arg(long)]
        webhook: Option<String>,
        /// `pending`, `delivered` or `dead`.
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
    /// Sends a delivery again from its first attempt (the running service picks it up).
    Redeliver { id: i64 },
}

pub fn run(state: &Path, command: WebhooksCommand) -> anyhow::Result<ExitCode> {
    let store = StateDir::open(state)?.webhooks()?;
    match command {
        WebhooksCommand::Deliveries { webhook, status, limit, json } => {
            let deliveries = store.list(webhook.as_deref(), status.as_deref(), limit)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&deliveries)?);
                return Ok(ExitCode::SUCCESS);
            }
            for d in deliveries {
                let last = match (&d.last_status, &d.last_error) {
                    (_, Some(error)) => format!("  last: {}", printable(error)),
                    (Some(status), None) => format!("  HTTP {status}"),
                    _ => String::new(),
                };
                println!(
                    "{:>6}  {:<9} {:<14} {}  {}  attempts {}{last}",
                    d.id,
                    d.status,
                    d.kind,
                    printable(&d.webhook),
                    d.event_id,
                    d.attempts
                );
            }
        }
        WebhooksCommand::Redeliver { id } => {
            if !store.redeliver(id, chrono::Utc::now().timestamp_millis())? {
                eprintln!("error: no delivery {id}");
                return Ok(ExitCode::from(1));
            }
            println!("delivery {id} is pending again; a running `syncline serve` sends it");
        }
    }
    Ok(ExitCode::SUCCESS)
}
