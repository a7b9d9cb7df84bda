//! Subcommands of the binary; the library does the work, these parse, print and choose exit codes.

pub mod calls;
pub mod demo;
pub mod inspect;
pub mod openconnector;
pub mod run;
pub mod serve;
pub mod source;
#[cfg(feature = "sql")]
pub mod sql;
pub mod state;
pub mod webhooks;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use syncline::config::Pipeline;
use syncline::store::StateDir;

/// Where the state is: `--state DIR`, and `--contracts URL` when the contract tables are elsewhere.
pub struct State {
    pub dir: PathBuf,
    pub contracts: Option<String>,
    /// `--leases URL` and the lease time.
    pub leases: Option<(String, std::time::Duration)>,
}

impl State {
    pub async fn open(&self) -> anyhow::Result<StateDir> {
        let mut state = StateDir::open(&self.dir)?;
        if let Some(location) = &self.contracts {
            state = state.with_contracts(location).await?;
        }
        if let Some((location, lease)) = &self.leases {
            state = state.with_leases(location, *lease).await?;
        }
        Ok(state)
    }
}

/// Exit code of a bad pipeline file or bad usage.
pub const USAGE: u8 = 2;

/// Loads a pipeline file, printing every problem; `Err` holds the exit code.
pub fn load(file: &Path) -> Result<Pipeline, ExitCode> {
    let pipeline = Pipeline::load(file).map_err(|errors| {
        eprintln!("{errors}");
        ExitCode::from(USAGE)
    })?;
    for warning in &pipeline.warnings {
        eprintln!("warning: {warning}");
    }
    Ok(pipeline)
}

/// `1234567` → `1,234,567`.
/// Text from outside (ids, messages) as a terminal gets it: control characters, which could move
/// the cursor, retitle the window or hide what follows, shown as `?` (line breaks and tabs stay).
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    let hidden = |c: char| c.is_control() && c != '\n' && c != '\t';
    if text.chars().any(hidden) { text.chars().map(|c| if hidden(c) { '?' } else { c }).collect::<String>().into() } else { text.into() }
}

pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
