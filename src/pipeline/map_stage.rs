//! The filter and mapping stage: parses the records the diff let through, drops those the filter
//! rejects, maps the rest, and hands writes to the sink. It runs on a blocking thread: mapping is the
//! costliest per-record work of a first run.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::progress::{Stage, Timings};
use crate::diff::Work;
use crate::mapping::{Filter, Mapping};
use crate::sinks::{Ack, AckSender, Op, Outcome};
use crate::sources::RawRecord;

/// Runs until `input` closes or the sink goes away.
pub fn run(
    sync: &str,
    mapping: Arc<Mapping>,
    filter: Option<Arc<Filter>>,
    mut input: mpsc::Receiver<Vec<Work>>,
    output: mpsc::Sender<Vec<Op>>,
    acks: AckSender,
    timings: &Timings,
) {
    while let Some(batch) = input.blocking_recv() {
        super::supervise::faults::check(sync, "mapping");
        let busy = std::time::Instant::now();
        let mut ops = Vec::with_capacity(batch.len());
        let mut settled = Vec::new();
        for work in batch {
            match work {
                Work::Delete { row, origin_id, target_id, remote_id, soft } => {
                    ops.push(Op::Delete { row, origin_id, target_id, remote_id, soft })
                }
                Work::Upsert(change) => {
                    let parsed = match change.record {
                        // Its depth was checked when it was hashed (the source's `maxDepth`).
                        RawRecord::Json(bytes) => crate::limits::parse_checked_depth(&bytes).map_err(|e| format!("not valid JSON: {e}")),
                        RawRecord::Value(value) => Ok(value),
                        RawRecord::Broken(problem) => Err(problem),
                    };
                    let fail = |message: String| Ack {
                        row: change.row,
                        origin_id: change.origin_id.clone(),
                        hash: change.hash,
                        outcome: Outcome::Failed(message),
                        remote_id: None,
                    };
                    let record = match parsed {
                        Ok(record) => record,
                        Err(message) => {
                            settled.push(fail(message));
                            continue;
                        }
                    };
                    if let Some(filter) = &filter {
                        match filter.accepts(&record) {
                            Ok(true) => {}
                            Ok(false) => {
                                settled.push(Ack { outcome: Outcome::Skipped, ..fail(String::new()) });
                                continue;
                            }
                            Err(error) => {
                                settled.push(fail(error.to_string()));
                                continue;
                            }
                        }
                    }
                    // A record that makes the mapping panic fails alone, like any other bad record.
                    let mapped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| mapping.apply(&record)))
                        .unwrap_or_else(|panic| Err(crate::mapping::MappingError::Internal(super::supervise::panic_message(&*panic))));
                    match mapped {
                        Ok(object) => ops.push(Op::Upsert {
                            row: change.row,
                            origin_id: change.origin_id,
                            target_id: change.target_id,
                            remote_id: change.remote_id,
                            hash: change.hash,
                            created: change.created,
                            object,
                        }),
                        Err(error) => settled.push(fail(format!("mapping `{}`: {error}", mapping.name()))),
                    }
                }
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
