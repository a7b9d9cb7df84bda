//! The pipeline run on parts a test makes: a scripted source (records, errors, a cut-off feed, a
//! panic, a wait) and an in-memory sink that can be held back. They prove what the stages promise
//! without any connector: backpressure, cancellation, failures and panics ending the run with nothing
//! deleted, deletes only after a complete fetch, adoption after an interrupted run.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::{Semaphore, mpsc};

use super::{Parts, Progress, RunOptions, RunReport, run_on};
use crate::config::Pipeline;
use crate::sinks::{AckSender, Sink, SinkError};
use crate::sources::{Chunk, RawRecord, Source, SourceError, SourceEvent, SourceStream};
use crate::store::{JobStatus, StateDir};
use crate::write::{Action, Mapped};

/// One step of a scripted feed.
#[derive(Clone)]
enum Step {
    /// A chunk of records with these ids.
    Records(Vec<u64>),
    Fail,
    Truncated,
    Panic,
    /// Waits this long before the next step.
    Wait(Duration),
}

/// A source that plays its steps, counting the chunks it was asked for.
struct Scripted {
    steps: Vec<Step>,
    pulled: Arc<AtomicUsize>,
}

impl Source for Scripted {
    fn open(&self, _cursor: Option<String>) -> SourceStream {
        let (steps, pulled) = (self.steps.clone(), Arc::clone(&self.pulled));
        futures::stream::unfold(steps.into_iter(), move |mut steps| {
            let pulled = Arc::clone(&pulled);
            async move {
                loop {
                    let event = match steps.next()? {
                        Step::Records(ids) => {
                            pulled.fetch_add(1, Ordering::SeqCst);
                            let records = ids.iter().map(|id| RawRecord::Value(json!({"id": id, "name": format!("n{id}")}))).collect();
                            Ok(SourceEvent::Chunk(Chunk::new(records, "script".into())))
                        }
                        Step::Fail => Err(SourceError::Protocol { url: "script".into(), reason: "the feed broke".into() }),
                        Step::Truncated => Ok(SourceEvent::Truncated("the script stops early".into())),
                        Step::Panic => panic!("the scripted source panics"),
                        Step::Wait(time) => {
                            tokio::time::sleep(time).await;
                            continue;
                        }
                    };
                    return Some((event, steps));
                }
            }
        })
        .boxed()
    }

    fn check(&self) -> BoxFuture<'_, Result<String, SourceError>> {
        async { Ok("scripted".to_string()) }.boxed()
    }
}

/// The objects a memory sink holds, by origin id.
type Objects = Arc<Mutex<BTreeMap<String, Value>>>;

/// A sink that keeps objects in memory; with `gate`, each batch waits for a permit first.
struct Memory {
    objects: Objects,
    gate: Option<Arc<Semaphore>>,
    batches: Arc<AtomicUsize>,
}

impl Sink for Memory {
    fn existing(&self) -> Result<Vec<String>, SinkError> {
        Ok(self.objects.lock().unwrap().keys().cloned().collect())
    }

    fn write_all(self: Box<Self>, mut input: mpsc::Receiver<Vec<Mapped>>, acks: AckSender) -> BoxFuture<'static, Result<(), SinkError>> {
        async move {
            while let Some(batch) = input.recv().await {
                if let Some(gate) = &self.gate {
                    gate.acquire().await.expect("the gate stays open").forget();
                }
                self.batches.fetch_add(1, Ordering::SeqCst);
                let mut done = Vec::new();
                let mut objects = self.objects.lock().unwrap();
                for op in batch {
                    match &op.what {
                        Action::Upsert(object) => objects.insert(op.origin_id.clone(), object.clone()),
                        Action::Delete { .. } => objects.remove(&op.origin_id),
                    };
                    done.push(op.ack(None));
                }
                drop(objects);
                let _ = acks.send(done);
            }
            Ok(())
        }
        .boxed()
    }
}

struct Bench {
    _dir: tempfile::TempDir,
    pipeline: Pipeline,
    state: StateDir,
    objects: Objects,
}

impl Bench {
    fn new() -> Bench {
        let dir = tempfile::tempdir().unwrap();
        // The source and target named here are never built: each run is handed its parts.
        let text = "sources:\n  s: { type: file, location: unused.ndjson }\nmappings:\n  m: { mapping: { name: name }, passThrough: false }\n\
                    registers:\n  r: { schemas: { o: { type: object } } }\nsynchronizations:\n  t:\n    source: s\n    \
                    sourceConfig: { idPosition: id }\n    mapping: m\n    target: { type: register, register: r, schema: o }\n    maxDeleteShare: 1\n";
        let pipeline = Pipeline::from_text("t.yaml", text, dir.path(), &|_| None).unwrap();
        let state = StateDir::open(&dir.path().join("state")).unwrap();
        Bench { _dir: dir, pipeline, state, objects: Arc::default() }
    }

    fn parts(&self, steps: Vec<Step>, gate: Option<Arc<Semaphore>>) -> (Parts, Arc<AtomicUsize>, Arc<AtomicUsize>) {
        let (pulled, batches) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let source = Box::new(Scripted { steps, pulled: Arc::clone(&pulled) });
        let sink = Box::new(Memory { objects: Arc::clone(&self.objects), gate, batches: Arc::clone(&batches) });
        (Parts { source, sink }, pulled, batches)
    }

    async fn run(&self, steps: Vec<Step>) -> RunReport {
        self.run_with(steps, RunOptions::default()).await
    }

    async fn run_with(&self, steps: Vec<Step>, options: RunOptions) -> RunReport {
        let (parts, _, _) = self.parts(steps, None);
        run_on(&self.pipeline, "t", &self.state, options, Arc::new(Progress::default()), Some(parts)).await.unwrap()
    }

    fn held(&self) -> Vec<String> {
        self.objects.lock().unwrap().keys().cloned().collect()
    }
}

fn ids(range: std::ops::RangeInclusive<u64>) -> Step {
    Step::Records(range.collect())
}

#[tokio::test]
async fn a_scripted_feed_creates_then_changes_nothing_then_deletes_what_left() {
    let bench = Bench::new();
    let first = bench.run(vec![ids(1..=3), ids(4..=5)]).await;
    assert_eq!((first.job.status, first.job.counts.created), (JobStatus::Completed, 5));
    assert_eq!(bench.objects.lock().unwrap()["4"], json!({"name": "n4"}));
    let again = bench.run(vec![ids(1..=5)]).await;
    assert_eq!((again.job.counts.unchanged, again.job.counts.created), (5, 0));
    let fewer = bench.run(vec![ids(1..=3)]).await;
    assert_eq!(fewer.job.counts.deleted, 2);
    assert_eq!(bench.held(), ["1", "2", "3"]);
}

#[tokio::test]
async fn a_feed_that_breaks_or_stops_early_deletes_nothing() {
    let bench = Bench::new();
    bench.run(vec![ids(1..=4)]).await;
    let broken = bench.run(vec![ids(1..=2), Step::Fail]).await;
    assert_eq!(broken.job.status, JobStatus::Failed);
    assert_eq!(broken.job.error_category.as_deref(), Some("protocol"), "{:?}", broken.job.error);
    assert_eq!(bench.held().len(), 4, "nothing deleted after a failed fetch");
    let cut = bench.run(vec![ids(1..=2), Step::Truncated]).await;
    assert_eq!((cut.job.status, cut.job.counts.deleted), (JobStatus::Completed, 0));
    assert_eq!(bench.held().len(), 4, "nothing deleted after a cut-off fetch");
    let whole = bench.run(vec![ids(1..=2)]).await;
    assert_eq!(whole.job.counts.deleted, 2, "a complete fetch deletes what left");
}

#[tokio::test]
async fn a_panicking_source_fails_the_run_and_the_next_run_converges() {
    let bench = Bench::new();
    bench.run(vec![ids(1..=3)]).await;
    let panicked = bench.run(vec![ids(1..=1), Step::Panic]).await;
    assert_eq!(panicked.job.status, JobStatus::Failed);
    assert_eq!(panicked.job.error_category.as_deref(), Some("internal"));
    assert!(panicked.job.error.unwrap_or_default().contains("the scripted source panics"));
    assert_eq!(bench.held().len(), 3, "nothing deleted");
    let next = bench.run(vec![ids(1..=2)]).await;
    assert_eq!((next.job.status, next.job.counts.deleted), (JobStatus::Completed, 1));
}

#[tokio::test]
async fn a_cancelled_run_ends_cancelled_with_nothing_deleted() {
    let bench = Bench::new();
    bench.run(vec![ids(1..=3)]).await;
    let options = RunOptions::default();
    let cancel = options.cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        cancel.cancel();
    });
    let steps = vec![ids(1..=1), Step::Wait(Duration::from_secs(30)), ids(2..=2)];
    let cancelled = bench.run_with(steps, options).await;
    assert_eq!(cancelled.job.status, JobStatus::Cancelled, "{:?}", cancelled.job.error);
    assert_eq!(bench.held().len(), 3, "nothing deleted");
}

/// A sink that does not take its batches holds the reader back: the source is asked for a bounded
/// number of chunks, not the whole feed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_sink_bounds_how_much_the_source_has_read() {
    let bench = Bench::new();
    let feed: Vec<Step> = (1..=2_000u64).map(|i| Step::Records(vec![i])).collect();
    let gate = Arc::new(Semaphore::new(0));
    let (parts, pulled, batches) = bench.parts(feed, Some(Arc::clone(&gate)));
    let (pipeline, state) = (bench.pipeline.clone(), bench.state.clone());
    let run =
        tokio::spawn(
            async move { run_on(&pipeline, "t", &state, RunOptions::default(), Arc::new(Progress::default()), Some(parts)).await },
        );
    // Until the reader stops: the sink holds its first batch, every channel between fills.
    let mut last = usize::MAX;
    while pulled.load(Ordering::SeqCst) != last {
        last = pulled.load(Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(last < 200, "the reader ran ahead of a sink that took nothing: {last} of 2000 chunks read");
    assert_eq!(batches.load(Ordering::SeqCst), 0);
    gate.add_permits(1_000_000);
    let report = run.await.unwrap().unwrap();
    assert_eq!((report.job.status, report.job.counts.created), (JobStatus::Completed, 2_000));
}

/// Objects an interrupted run wrote, of which no contract was saved, are adopted by the next run
/// rather than created twice.
#[tokio::test]
async fn what_an_interrupted_run_wrote_is_adopted() {
    let bench = Bench::new();
    bench.run(vec![ids(1..=2)]).await;
    // A run that died after writing 3 and 4: in the target, not in the contracts, its job left RUNNING.
    bench.objects.lock().unwrap().extend([("3".to_string(), json!({"name": "n3"})), ("4".to_string(), json!({"name": "n4"}))]);
    bench.state.jobs().unwrap().create("t", JobStatus::Running, false, false).unwrap();
    let next = bench.run(vec![ids(1..=4)]).await;
    assert_eq!(next.job.counts.created, 0, "nothing created twice: {:?}", next.job.counts);
    assert_eq!(bench.held().len(), 4);
    assert!(next.warnings.iter().any(|w| w.contains("adopted 2 object(s)")), "{:?}", next.warnings);
}

/// A run cancelled while its sink is stuck on a batch ends CANCELLED all the same, with nothing
/// deleted: cancelling does not wait for a target that does not answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_cancelled_while_the_sink_is_stuck_ends_cancelled() {
    let bench = Bench::new();
    bench.run(vec![ids(1..=3)]).await;
    let gate = Arc::new(Semaphore::new(0));
    let (parts, _, _) = bench.parts(vec![ids(1..=2), ids(3..=5)], Some(Arc::clone(&gate)));
    let options = RunOptions { cancel_grace: Some(Duration::from_millis(200)), ..RunOptions::default() };
    let cancel = options.cancel.clone();
    let (pipeline, state) = (bench.pipeline.clone(), bench.state.clone());
    let run = tokio::spawn(async move { run_on(&pipeline, "t", &state, options, Arc::new(Progress::default()), Some(parts)).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    cancel.cancel();
    let report = tokio::time::timeout(Duration::from_secs(30), run).await.expect("the cancelled run ends").unwrap().unwrap();
    assert_eq!(report.job.status, JobStatus::Cancelled, "{:?}", report.job.error);
    assert!(report.warnings.iter().any(|w| w.contains("the writer was stopped")), "{:?}", report.warnings);
    assert_eq!(bench.held().len(), 3, "nothing deleted");
    // The next run adopts what the stopped writer may have written, and converges.
    gate.add_permits(1_000);
    let next = bench.run(vec![ids(1..=5)]).await;
    assert_eq!((next.job.status, bench.held().len()), (JobStatus::Completed, 5), "{:?}", next.job.error);
}

/// The same while the reader is held back by that stuck sink, mid-feed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_held_back_by_a_stuck_sink_ends_cancelled_when_cancelled() {
    let bench = Bench::new();
    let feed: Vec<Step> = (1..=2_000u64).map(|i| Step::Records(vec![i])).collect();
    let (parts, pulled, _) = bench.parts(feed, Some(Arc::new(Semaphore::new(0))));
    let options = RunOptions { cancel_grace: Some(Duration::from_millis(200)), ..RunOptions::default() };
    let cancel = options.cancel.clone();
    let (pipeline, state) = (bench.pipeline.clone(), bench.state.clone());
    let run = tokio::spawn(async move { run_on(&pipeline, "t", &state, options, Arc::new(Progress::default()), Some(parts)).await });
    while pulled.load(Ordering::SeqCst) < 10 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    cancel.cancel();
    let report = tokio::time::timeout(Duration::from_secs(30), run).await.expect("the cancelled run ends").unwrap().unwrap();
    assert_eq!(report.job.status, JobStatus::Cancelled, "{:?}", report.job.error);
    assert!(pulled.load(Ordering::SeqCst) < 2_000);
}
