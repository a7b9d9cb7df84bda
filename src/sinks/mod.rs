//! Sinks: where objects go. Each kind lives in its own module and implements [`Sink`].
//!
//! A sink receives batches of writes, applies each batch atomically (one transaction), and only then
//! reports every write's outcome. The diff stage commits a contract only on such a report, so the
//! contracts never claim more than the target holds.

pub mod api;
pub mod command;
pub mod database;
pub mod file;
pub mod register;
pub mod registry;

use futures::future::BoxFuture;
use serde_json::Value;
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::config::{Pipeline, Synchronization};
use crate::store::{StateDir, StoreError};

/// One write.
#[derive(Debug)]
pub enum Op {
    /// `remote_id`: the id another system gave the object (an API target), kept in its contract.
    Upsert {
        row: u32,
        origin_id: String,
        target_id: Uuid,
        remote_id: Option<String>,
        hash: [u8; 32],
        created: bool,
        object: Value,
    },
    Delete {
        row: u32,
        origin_id: String,
        target_id: Uuid,
        remote_id: Option<String>,
        soft: bool,
    },
}

/// What became of one record or delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Created,
    Updated,
    Deleted,
    /// The synchronization's filter left the record out.
    Skipped,
    Failed(String),
}

/// A record's outcome, reported to the diff stage.
#[derive(Debug, Clone)]
pub struct Ack {
    pub row: u32,
    pub origin_id: String,
    pub hash: [u8; 32],
    pub outcome: Outcome,
    /// The id the target gave a created object, when it gives one (an API target's POST answer).
    pub remote_id: Option<String>,
}

pub type AckSender = mpsc::UnboundedSender<Vec<Ack>>;

/// A target that could not be written as a whole (a single bad record is an [`Outcome::Failed`]).
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
    fn write_all(self: Box<Self>, input: mpsc::Receiver<Vec<Op>>, acks: AckSender) -> BoxFuture<'static, Result<(), SinkError>>;
}

/// The sink `sync` writes into, for its run `job`, built by its target kind's connector. Errors
/// are configuration problems, said in a line.
pub fn build(pipeline: &Pipeline, sync: &Synchronization, state: &StateDir, job: &str, dry_run: bool) -> Result<Box<dyn Sink>, String> {
    let kind = sync.target.as_ref().map_or("register", |t| t.kind.as_str());
    let connector = registry::connector(kind).ok_or_else(|| registry::unknown_kind(kind))?;
    (connector.build)(&registry::SinkContext { pipeline, sync, state, job, dry_run })
}
