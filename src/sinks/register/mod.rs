//! The register sink: validates each object against its schema (JSON Schema) and writes it into the
//! embedded register with its provenance and an audit entry, on blocking threads of its own, in
//! transactions as large as the input allows (see [`WRITES_PER_COMMIT`]).

use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use futures::FutureExt;
use futures::future::BoxFuture;
use jsonschema::error::ValidationErrorKind;
use jsonschema::{ValidationError, Validator};
use serde_json::Value;
use tokio::sync::mpsc;
use uuid::Uuid;

use super::registry::{SinkConnector, SinkContext};
use super::{AckSender, Sink, SinkError};
use crate::store::StateDir;
use crate::store::register::ObjectWrite;
use crate::write::{Ack, Action, Mapped};

/// The register target, as the registry lists it: the embedded register, validated against the
/// schema the synchronization names (which the pipeline's own checks resolve).
pub const CONNECTOR: SinkConnector =
    SinkConnector { kind: "register", settings: None, runs_programs: false, validate: |_, _| Ok(()), build };

fn build(context: &SinkContext) -> Result<Box<dyn Sink>, String> {
    let sync = context.sync;
    let schema = context
        .pipeline
        .registers
        .get(&sync.register)
        .and_then(|r| r.get(&sync.schema))
        .ok_or_else(|| format!("no schema {}/{}", sync.register, sync.schema))?;
    let sink = RegisterSink::new(
        context.state.clone(),
        &sync.register,
        &sync.schema,
        schema,
        &sync.name,
        &sync.source,
        context.job,
        context.dry_run,
    )
    .map_err(|e| e.to_string())?;
    Ok(Box::new(sink))
}

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
            format!(
                "required property `{}` is missing{within}",
                property.as_str().map(str::to_string).unwrap_or_else(|| property.to_string())
            )
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

    /// Two threads: one validates and serializes objects, the other writes them to SQLite, taking
    /// everything prepared while it wrote the previous transaction.
    fn write_all(self: Box<Self>, input: mpsc::Receiver<Vec<Mapped>>, acks: AckSender) -> BoxFuture<'static, Result<(), SinkError>> {
        let sink = Arc::new(*self);
        let handoff = Arc::new(Handoff::default());
        // The run's span, for the transactions' spans on the writing thread.
        let span = tracing::Span::current();
        let preparing = {
            let (sink, handoff, acks) = (Arc::clone(&sink), Arc::clone(&handoff), acks.clone());
            tokio::task::spawn_blocking(move || sink.prepare_all(input, &handoff, &acks))
        };
        let writing = tokio::task::spawn_blocking(move || {
            let _stop = OnDrop(&handoff, Handoff::stop);
            span.in_scope(|| sink.write_prepared(&handoff, acks))
        });
        async move {
            let written = writing.await.map_err(|e| SinkError::Stopped(e.to_string()))?;
            preparing.await.map_err(|e| SinkError::Stopped(e.to_string()))?;
            written
        }
        .boxed()
    }
}

/// The most writes one transaction waits for. Few large transactions matter: each commit writes every
/// page it dirtied to the WAL, and object ids are random UUIDs, so writes spread over the whole id
/// index. On 1M objects (SQLite alone, writes in id order): 10,000 writes per commit ran at 109k/s,
/// 50,000 at 181k/s, 100,000 at 218k/s; each waiting write holds its object's JSON.
const WRITES_PER_COMMIT: usize = 50_000;

/// A write ready for SQLite, with the outcome it reports once committed.
struct Prepared {
    id: Uuid,
    kind: Kind,
    ack: Ack,
}

enum Kind {
    Create(String),
    Update(String),
    Delete { soft: bool },
}

/// Prepared writes passed from the preparing thread to the writing one.
#[derive(Default)]
struct Handoff {
    pending: Mutex<Pending>,
    changed: Condvar,
}

#[derive(Default)]
struct Pending {
    /// Batches as prepared: appending them to one list would move every write once more.
    writes: Vec<Vec<Prepared>>,
    /// How many writes `writes` holds.
    count: usize,
    /// No more writes will come.
    closed: bool,
    /// The writer is gone: preparing more is pointless.
    stopped: bool,
}

impl Handoff {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds writes, waiting while a transaction's worth is already waiting; false once the writer stopped.
    fn put(&self, writes: Vec<Prepared>) -> bool {
        let mut pending = self.lock();
        while pending.count >= WRITES_PER_COMMIT && !pending.stopped {
            pending = self.changed.wait(pending).unwrap_or_else(|p| p.into_inner());
        }
        if pending.stopped {
            return false;
        }
        if !writes.is_empty() {
            pending.count += writes.len();
            pending.writes.push(writes);
            self.changed.notify_all();
        }
        true
    }

    /// Everything waiting, once there is something; `None` when closed and drained.
    fn take(&self) -> Option<Vec<Vec<Prepared>>> {
        let mut pending = self.lock();
        while pending.count == 0 && !pending.closed {
            pending = self.changed.wait(pending).unwrap_or_else(|p| p.into_inner());
        }
        let writes = std::mem::take(&mut pending.writes);
        pending.count = 0;
        self.changed.notify_all();
        (!writes.is_empty()).then_some(writes)
    }

    fn close(&self) {
        self.lock().closed = true;
        self.changed.notify_all();
    }

    fn stop(&self) {
        self.lock().stopped = true;
        self.changed.notify_all();
    }
}

/// Calls its function when dropped, even by a panic: neither thread may leave the other waiting.
struct OnDrop<'a>(&'a Handoff, fn(&Handoff));

impl Drop for OnDrop<'_> {
    fn drop(&mut self) {
        (self.1)(self.0)
    }
}

impl RegisterSink {
    /// Validates and serializes each object; an invalid one fails at once, alone.
    fn prepare_all(&self, mut input: mpsc::Receiver<Vec<Mapped>>, handoff: &Handoff, acks: &AckSender) {
        let _close = OnDrop(handoff, Handoff::close);
        while let Some(ops) = input.blocking_recv() {
            let mut writes = Vec::with_capacity(ops.len());
            let mut failed = Vec::new();
            for op in ops {
                let kind = match &op.what {
                    Action::Upsert(object) => {
                        if let Some(problem) = describe_violations(&self.validator, object) {
                            failed.push(op.fail(problem));
                            continue;
                        }
                        let text = serde_json::to_string(object).unwrap_or_default();
                        // The diff's view decides the count: an object a crashed run already wrote
                        // is still a creation from the contracts' point of view.
                        if op.created { Kind::Create(text) } else { Kind::Update(text) }
                    }
                    Action::Delete { soft } => Kind::Delete { soft: *soft },
                };
                writes.push(Prepared { id: op.target_id, kind, ack: op.ack(None) });
            }
            if !failed.is_empty() && acks.send(failed).is_err() {
                break;
            }
            if !handoff.put(writes) {
                break;
            }
        }
    }

    /// Writes what was prepared, a transaction at a time, in id order; outcomes wait for the commit
    /// that makes them true, so contracts never run ahead of the register.
    fn write_prepared(&self, handoff: &Handoff, acks: AckSender) -> Result<(), SinkError> {
        let mut store = self.state.register()?;
        while let Some(batches) = handoff.take() {
            let writes: Vec<&Prepared> = batches.iter().flatten().collect();
            let _transaction =
                tracing::info_span!(target: "syncline::trace", "syncline.transaction", "syncline.writes" = writes.len()).entered();
            let mut order: Vec<(Uuid, u32)> = writes.iter().enumerate().map(|(i, w)| (w.id, i as u32)).collect();
            order.sort_unstable();
            let mut batch = store.batch(&self.job, chrono::Utc::now().timestamp_millis())?;
            let collection = batch.collection(&self.register, &self.schema, &self.synchronization, &self.source)?;
            for w in order.into_iter().map(|(_, i)| writes[i as usize]) {
                let write = |object| ObjectWrite { id: w.id, collection, origin_id: &w.ack.origin_id, object };
                match &w.kind {
                    Kind::Create(text) => {
                        batch.create(&write(text))?;
                    }
                    Kind::Update(text) => {
                        batch.update(&write(text))?;
                    }
                    Kind::Delete { soft } => {
                        batch.delete(&w.id, *soft)?;
                    }
                }
            }
            if !self.dry_run {
                batch.commit()?;
            }
            drop(writes);
            if acks.send(batches.into_iter().flatten().map(|w| w.ack).collect()).is_err() {
                break;
            }
        }
        Ok(())
    }
}
