//! `syncline state migrate`: moves the contract tables between the state directory and a shared
//! object store (README, "Running on several machines"), so a synchronization keeps its contracts
//! when it starts running on several machines, and when it comes back to one.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use syncline::store::StateDir;

#[derive(Subcommand)]
pub enum StateCommand {
    /// Copy every contract table from the state directory into an object store, or back.
    Migrate(MigrateArgs),
}

#[derive(Args)]
pub struct MigrateArgs {
    /// Copy into this object store (`s3://bucket/prefix`, `gs://…`, `az://…`, `file:///dir`).
    #[arg(long, value_name = "URL", required_unless_present = "from", conflicts_with = "from")]
    to: Option<String>,
    /// Copy from this object store into the state directory.
    #[arg(long, value_name = "URL")]
    from: Option<String>,
    /// Replace the tables the destination already has (without it they are kept, and the exit code is 1).
    #[arg(long)]
    replace: bool,
}

pub async fn run(state: &super::State, command: StateCommand) -> anyhow::Result<ExitCode> {
    let StateCommand::Migrate(args) = command;
    let local = StateDir::open(&state.dir)?;
    let (from, to) = match (&args.to, &args.from) {
        (Some(url), _) => (local.clone(), local.clone().with_contracts(url).await?),
        (None, Some(url)) => (local.clone().with_contracts(url).await?, local.clone()),
        (None, None) => unreachable!("clap requires --to or --from"),
    };
    let (source, destination) = (from.contract_store(), to.contract_store());
    let mut kept = 0;
    for sync in source.names().await? {
        // A run of this machine must not save over the table while it moves.
        let _lock = local.lock(&sync)?;
        match source.copy_to(destination, &sync, args.replace).await? {
            Some(rows) => {
                println!("copied `{}`: {} contract(s) into {}", super::printable(&sync), super::thousands(rows), destination.shown())
            }
            None => {
                kept += 1;
                eprintln!("kept `{}`: {} has a table of its own (--replace replaces it)", super::printable(&sync), destination.shown());
            }
        }
    }
    Ok(if kept > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
}
