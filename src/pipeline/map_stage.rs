//! The filter and mapping stage: parses the records the diff let through, drops those the filter
//! rejects, maps the rest, and hands writes to the sink. It runs on a blocking thread: mapping is the
//! costliest per-record work of a first run.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::progress::{Stage, Timings};
use crate::mapping::{Filter, Mapping};
use crate::sinks::AckSender;
use crate::sources::RawRecord;
use crate::write::{Ack, Action, Mapped, Outcome, Unmapped};

/// Runs until `input` closes or the sink goes away.
pub fn run(
    sync: &str,
    mapping: Arc<Mapping>,
    filter: Option<Arc<Filter>>,
    mut input: mpsc::Receiver<Vec<Unmapped>>,
    output: mpsc::Sender<Vec<Mapped>>,
    acks: AckSender,
    timings: &Timings,
) {
    while let Some(batch) = input.blocking_recv() {
        super::supervise::faults::check(sync, "mapping");
        let busy = std::time::Instant::now();
        let mut ops = Vec::with_capacity(batch.len());
        let mut settled = Vec::new();
        for write in batch {
            match map_one(write, &mapping, filter.as_deref()) {
                Step::Write(mapped) => ops.push(mapped),
                Step::Settled(ack) => settled.push(ack),
            }
        }
        timings.add(Stage::Map, busy.elapsed());
        if !settled.is_empty() && acks.send(settled).is_err() {
            return;
        }
        if !ops.is_empty() && output.blocking_send(ops).is_err() {
            return;
        }
    }
}

/// Where a write goes from the mapping stage.
enum Step {
    /// On to the sink.
    Write(Mapped),
    /// Back to the diff, settled here: failed (unparsable, a filter or mapping error) or skipped.
    Settled(Ack),
}

fn map_one(write: Unmapped, mapping: &Mapping, filter: Option<&Filter>) -> Step {
    let (write, action) = write.split();
    let record = match action {
        Action::Delete { soft } => return Step::Write(write.with(Action::Delete { soft })),
        Action::Upsert(record) => record,
    };
    let parsed = match record {
        // Its depth was checked when it was hashed (the source's `maxDepth`).
        RawRecord::Json(bytes) => crate::limits::parse_checked_depth(&bytes).map_err(|e| format!("not valid JSON: {e}")),
        RawRecord::Value(value) => Ok(value),
        RawRecord::Broken(problem) => Err(problem),
        // The diff turns a reported delete into a delete: none reaches here as a record.
        RawRecord::Gone(id) => Err(format!("`{id}` was reported deleted")),
    };
    let record = match parsed {
        Ok(record) => record,
        Err(message) => return Step::Settled(write.fail(message)),
    };
    if let Some(filter) = filter {
        match filter.accepts(&record) {
            Ok(true) => {}
            Ok(false) => return Step::Settled(write.with(Outcome::Skipped)),
            Err(error) => return Step::Settled(write.fail(error.to_string())),
        }
    }
    // A record that makes the mapping panic fails alone, like any other bad record.
    let mapped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| mapping.apply(&record)))
        .unwrap_or_else(|panic| Err(crate::mapping::MappingError::Internal(super::supervise::panic_message(&*panic))));
    match mapped {
        Ok(object) => Step::Write(write.with(Action::Upsert(object))),
        Err(error) => Step::Settled(write.fail(format!("mapping `{}`: {error}", mapping.name()))),
    }
}
