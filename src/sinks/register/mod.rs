//! The register sink: validates each object against its schema (JSON Schema) and writes it into the
//! embedded register with its provenance and an audit entry, on a blocking thread of its own, in
//! transactions as large as the input allows (see [`WRITES_PER_COMMIT`]).

use std::sync::Arc;

use futures::future::BoxFuture;
use futures::FutureExt;
use jsonschema::error::ValidationErrorKind;
use jsonschema::{ValidationError, Validator};
use serde_json::Value;
use tokio::sync::mpsc;

use super::{Ack, AckSender, Op, Outcome, Sink, SinkError};
use crate::store::register::ObjectWrite;
use crate::store::{now_text, StateDir};

/// Writes into `register/schema`.
pub struct RegisterSink {
    state: StateDir,
    register: String,
    schema: String,
    validator: Arc<Validator>,
    synchronization: String,
    source: String,
    job: String,
    dry_run: bool,
}

impl RegisterSink {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        state: StateDir,
        register: &str,
        schema: &str,
        json_schema: &Value,
        synchronization: &str,
        source: &str,
        job: &str,
        dry_run: bool,
    ) -> Result<RegisterSink, SinkError> {
        let validator = jsonschema::validator_for(json_schema).map_err(|e| SinkError::Schema {
            register: register.into(),
            schema: schema.into(),
            message: e.to_string(),
        })?;
        Ok(RegisterSink {
            state,
            register: register.into(),
            schema: schema.into(),
            validator: Arc::new(validator),
            synchronization: synchronization.into(),
            source: source.into(),
            job: job.into(),
            dry_run,
        })
    }
}

/// Says what is wrong with an object, naming the fields ("schema does not allow field X").
pub fn describe_violations(validator: &Validator, object: &Value) -> Option<String> {
    // Most objects are valid: the yes/no check stops early and allocates no error messages.
    if validator.is_valid(object) {
        return None;
    }
    let messages: Vec<String> = validator.iter_errors(object).map(|e| describe(&e)).collect();
    (!messages.is_empty()).then(|| messages.join("; "))
}

fn describe(error: &ValidationError) -> String {
    let at = error.instance_path().to_string();
    let within = if at.is_empty() || at == "/" { String::new() } else { format!(" in `{at}`") };
    match error.kind() {
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            let fields = unexpected.iter().map(|f| format!("`{f}`")).collect::<Vec<_>>().join(", ");
            format!("schema does not allow field {fields}{within}")
        }
        ValidationErrorKind::Required { property } => {
            format!("required property `{}` is missing{within}", property.as_str().map(str::to_string).unwrap_or_else(|| property.to_string()))
        }
        _ => {
            let field = if at.is_empty() || at == "/" { "the object".to_string() } else { format!("field `{at}`") };
            format!("{field}: {error}")
        }
    }
}

impl Sink for RegisterSink {
    fn existing(&self) -> Result<Vec<String>, SinkError> {
        Ok(self.state.register()?.origin_ids_of(&self.synchronization)?)
    }

    fn write_all(self: Box<Self>, input: mpsc::Receiver<Vec<Op>>, acks: AckSender) -> BoxFuture<'static, Result<(), SinkError>> {
        let task = tokio::task::spawn_blocking(move || self.write_blocking(input, acks));
        async move { task.await.map_err(|e| SinkError::Stopped(e.to_string()))? }.boxed()
    }
}

/// A transaction is committed after this many writes, or sooner when the writer has caught up with its
/// input. Few large transactions matter: each commit writes every page it dirtied to the WAL, and with
/// ids that are random UUIDs nearly every write dirties a page of its own. On 1M objects (SQLite alone):
/// 1,000 writes per commit ran at 36k/s, 50,000 at 94k/s, 100,000 at 129k/s; end to end, 100,000 gave
/// nothing over 50,000 (another stage bounds the run by then) and held more outcomes waiting.
const WRITES_PER_COMMIT: usize = 50_000;

impl RegisterSink {
    fn write_blocking(self, mut input: mpsc::Receiver<Vec<Op>>, acks: AckSender) -> Result<(), SinkError> {
        let mut store = self.state.register()?;
        let mut closed = false;
        while !closed {
            let Some(first) = input.blocking_recv() else { break };
            let mut batch = store.batch(&self.job, &now_text())?;
            // Outcomes wait for the commit that makes them true: contracts never run ahead of the register.
            let mut unsent: Vec<Ack> = Vec::with_capacity(first.len());
            let mut ops = Some(first);
            // Everything already waiting goes into this transaction, up to its size.
            while let Some(waiting) = ops.take() {
                for op in waiting {
                    unsent.push(self.write(&mut batch, op)?);
                }
                if unsent.len() >= WRITES_PER_COMMIT {
                    break;
                }
                match input.try_recv() {
                    Ok(more) => ops = Some(more),
                    Err(mpsc::error::TryRecvError::Empty) => {}
                    Err(mpsc::error::TryRecvError::Disconnected) => closed = true,
                }
            }
            if !self.dry_run {
                batch.commit()?;
            }
            if acks.send(unsent).is_err() {
                break;
            }
        }
        Ok(())
    }

    /// Validates and writes one object (or deletes one); its outcome.
    fn write(&self, batch: &mut crate::store::register::Batch<'_>, op: Op) -> Result<Ack, SinkError> {
        Ok(match op {
            Op::Upsert { row, origin_id, target_id, hash, created, object, .. } => {
                let outcome = match describe_violations(&self.validator, &object) {
                    Some(problem) => Outcome::Failed(problem),
                    None => {
                        let text = serde_json::to_string(&object).unwrap_or_default();
                        let id = target_id.to_string();
                        batch.upsert(&ObjectWrite {
                            id: &id,
                            register: &self.register,
                            schema: &self.schema,
                            synchronization: &self.synchronization,
                            source: &self.source,
                            origin_id: &origin_id,
                            object: &text,
                        })?;
                        // The diff's view decides the count: an object a crashed run already
                        // wrote is still a creation from the contracts' point of view.
                        if created { Outcome::Created } else { Outcome::Updated }
                    }
                };
                Ack { row, origin_id, hash, outcome, remote_id: None }
            }
            Op::Delete { row, origin_id, target_id, soft, .. } => {
                batch.delete(&target_id.to_string(), &self.synchronization, soft)?;
                Ack { row, origin_id, hash: [0; 32], outcome: Outcome::Deleted, remote_id: None }
            }
        })
    }
}
