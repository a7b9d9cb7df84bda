//! Sinks: where objects go. Each kind lives in its own module and implements [`Sink`].
//!
//! A sink receives batches of writes ([`Mapped`]), applies each batch atomically (one transaction), and
//! only then hands every write back as its acknowledgement ([`Ack`]). The diff stage commits a contract only on such a report, so the
//! contracts never claim more than the target holds.

pub mod api;
pub mod command;
pub mod database;
pub mod file;
pub mod register;
pub mod registry;

use futures::future::BoxFuture;
use tokio::sync::mpsc;

use crate::config::{Pipeline, Synchronization};
use crate::store::{StateDir, StoreError};
use crate::write::{Ack, Mapped};

pub type AckSender = mpsc::UnboundedSender<Vec<Ack>>;

/// A target that could not be written as a whole (a single bad record is an [`Outcome::Failed`](crate::write::Outcome::Failed)).
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("target: {0}")]
    Store(#[from] StoreError),
    #[error("schema {register}/{schema}: {message}")]
    Schema { register: String, schema: String, message: String },
    #[error("target writer stopped: {0}")]
    Stopped(String),
}

/// The boundary every target kind implements.
pub trait Sink: Send {
    /// The origin ids of the objects this target already holds for the synchronization: used after an
    /// interrupted run to adopt objects written after the last saved contracts.
    fn existing(&self) -> Result<Vec<String>, SinkError>;

    /// Objects an earlier run created on a target that gives them ids of its own (an API), as
    /// `(origin id, id there)`, recorded as they were made and not yet in the saved contracts: adopted
    /// before every run, so a run cut off never leads to creating them twice.
    fn journal(&self) -> Result<Vec<(String, String)>, SinkError> {
        Ok(Vec::new())
    }

    /// Writes every batch from `input`, each atomically, reporting outcomes on `acks` after each commit.
    /// Called once per run; returns when `input` closes.
    ///
    /// # Errors
    /// A target that fails as a whole (unreachable, full disk) ends the run; batches committed before
    /// stay reported.
    fn write_all(self: Box<Self>, input: mpsc::Receiver<Vec<Mapped>>, acks: AckSender) -> BoxFuture<'static, Result<(), SinkError>>;
}

/// The sink `sync` writes into, for its run `job`, built by its target kind's connector. Errors
/// are configuration problems, said in a line.
pub fn build(pipeline: &Pipeline, sync: &Synchronization, state: &StateDir, job: &str, dry_run: bool) -> Result<Box<dyn Sink>, String> {
    let kind = sync.target.as_ref().map_or("register", |t| t.kind.as_str());
    let connector = registry::connector(kind).ok_or_else(|| registry::unknown_kind(kind))?;
    (connector.build)(&registry::SinkContext { pipeline, sync, state, job, dry_run })
}
