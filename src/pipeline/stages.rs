//! The stages of a run, started and joined by their channels: the reader (the source's stream),
//! identify (hash and origin id, on a thread of its own), mapping (filter and templates, on a thread
//! of its own) and the writer (the sink). The diff, between identify and mapping, is the run's own
//! loop (`Run::feed`).

use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::supervise::{self, faults};
use super::{CHANNEL_DEPTH, Progress, Stage, map_stage};
use crate::diff::{Identifier, Identity};
use crate::mapping::{Filter, Mapping};
use crate::sinks::Sink;
use crate::sources::{self, SourceError, SourceEvent};
use crate::write::{Ack, Unmapped};

/// The running stages of a run and the ends of their channels the diff holds.
pub(super) struct Stages {
    pub reader: supervise::Stage,
    pub identify: supervise::Stage,
    pub mapper: supervise::Stage,
    pub writer: supervise::Stage,
    /// Identified source events, from the identify stage.
    pub events: mpsc::Receiver<Result<(SourceEvent, Vec<Identity>), SourceError>>,
    /// Work for the mapping stage; `None` once it is gone.
    pub work: Option<mpsc::Sender<Vec<Unmapped>>>,
    /// Outcomes, after each commit, from the mapping stage (records it failed or skipped) and the sink.
    pub acks: mpsc::UnboundedReceiver<Vec<Ack>>,
    /// What the sink's `write_all` returned.
    pub written: tokio::sync::oneshot::Receiver<Result<(), crate::sinks::SinkError>>,
}

impl Stages {
    /// Starts the reader, identify, mapping and writer stages, joined by bounded channels.
    #[allow(clippy::too_many_arguments)]
    pub fn spawn(
        name: &str,
        mut stream: sources::SourceStream,
        mut identifier: Identifier,
        sink: Box<dyn Sink>,
        mapping: Arc<Mapping>,
        filter: Option<Arc<Filter>>,
        cancel: &CancellationToken,
        progress: &Arc<Progress>,
    ) -> Stages {
        let (fetched_tx, mut fetched) = mpsc::channel::<Result<SourceEvent, SourceError>>(CHANNEL_DEPTH);
        let (event_tx, events) = mpsc::channel(CHANNEL_DEPTH);
        let (work_tx, work_rx) = mpsc::channel::<Vec<Unmapped>>(CHANNEL_DEPTH);
        let (op_tx, op_rx) = mpsc::channel(CHANNEL_DEPTH);
        let (ack_tx, acks) = mpsc::unbounded_channel::<Vec<Ack>>();

        let (cancel, timed, sync) = (cancel.clone(), Arc::clone(progress), name.to_string());
        let reader = supervise::Stage::spawn("reader", async move {
            loop {
                let waited = Instant::now();
                let next = tokio::select! {
                    _ = cancel.cancelled() => break,
                    next = stream.next() => next,
                };
                timed.timings.add(Stage::Fetch, waited.elapsed());
                let Some(event) = next else { break };
                faults::check(&sync, "reader");
                let failed = event.is_err();
                if fetched_tx.send(event).await.is_err() || failed {
                    break;
                }
            }
        });
        // Records are hashed and identified on a thread of their own, while the reader fetches the next
        // page: the diff then only looks them up in the contracts.
        let sync = name.to_string();
        let identify = supervise::Stage::blocking("identify", move || {
            while let Some(event) = fetched.blocking_recv() {
                faults::check(&sync, "identify");
                let event = event.map(|event| {
                    let identities = match &event {
                        SourceEvent::Chunk(chunk) => identifier.identify_all(&chunk.records),
                        _ => Vec::new(),
                    };
                    (event, identities)
                });
                if event_tx.blocking_send(event).is_err() {
                    break;
                }
            }
        });
        let (map_acks, timed, sync) = (ack_tx.clone(), Arc::clone(progress), name.to_string());
        let mapper =
            supervise::Stage::blocking("mapping", move || map_stage::run(&sync, mapping, filter, work_rx, op_tx, map_acks, &timed.timings));
        let sync = name.to_string();
        let (writer_tx, written) = tokio::sync::oneshot::channel();
        let writer = supervise::Stage::spawn("writer", async move {
            faults::check(&sync, "writer");
            let _ = writer_tx.send(sink.write_all(op_rx, ack_tx).await);
        });
        Stages { reader, identify, mapper, writer, events, work: Some(work_tx), acks, written }
    }
}
