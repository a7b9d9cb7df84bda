//! A synchronization compiled into a streaming pipeline and run as a job:
//!
//! ```text
//! source reader ─▶ identify (hash, ─▶ diff (vs contracts) ─▶ filter + mapping ─▶ sink
//!  (+ envelope)     origin id)          ▲        Unmapped              Mapped    │
//!                                       └──────── Ack, after commit ◀────────────┘
//! ```
//!
//! One write ([`crate::write::Write`]) makes the round: the diff decides it, the mapping stage swaps
//! its record for the object, and the sink hands it back as its acknowledgement.
//!
//! The source and the sink are values ([`Parts`]): the registries build them from the pipeline
//! (`sources::registry()`, `sinks::build`), and a test hands in its own (`parts_tests.rs`: a scripted
//! source, an in-memory sink). Stages are tasks joined by bounded channels carrying batches, so a
//! slow sink slows the reader and memory stays flat whatever the feed size. The diff stage owns the contract table; it commits a
//! contract only when the sink reports the write committed, and deletes only after a complete fetch
//! that every stage saw through (see [`supervise`]). A run holds its synchronization's lock, and
//! before anything else takes over from runs a dead process left behind, adopting what they wrote.

mod call_log;
pub mod follow_ups;
mod map_stage;
mod observe;
mod parts;
#[cfg(test)]
mod parts_tests;
mod progress;
mod source_log;
mod stages;
mod supervise;
#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::{Pipeline, Synchronization};
use crate::diff::Differ;
use crate::diff::contracts::ContractTable;
use crate::errors::ErrorCategory;
use crate::mapping::{Filter, Mapping};
use crate::sinks::Sink;
use crate::sources::{self, SourceError, SourceEvent};
use crate::store::{JobRecord, JobStatus, RunLock, SavedCursor, StateDir, StoreError, now_text};
use crate::write::{Ack, Unmapped};
pub use parts::Parts;
pub use progress::{Progress, Stage, Timings};
use source_log::SourceLog;
use stages::Stages;
use supervise::faults;

/// Batches in flight between two stages.
const CHANNEL_DEPTH: usize = 4;

/// How to run.
#[derive(Clone, Default)]
pub struct RunOptions {
    /// Ignore saved hashes and cursors: every record is written again.
    pub force_full_sync: bool,
    /// Map and validate, report what would change, write nothing.
    pub dry_run: bool,
    /// Let a run delete more than the synchronization's `maxDeleteShare`.
    pub allow_mass_delete: bool,
    /// Read only the first page (OpenConnector's test run); deletes nothing.
    pub first_page_only: bool,
    pub cancel: CancellationToken,
    /// How long a cancelled run waits for its target to finish the batch in hand before it stops
    /// the writer (default [`CANCEL_GRACE`]).
    pub cancel_grace: Option<std::time::Duration>,
    /// Records handed to the run instead of read from its source (an inbound hook's objects): the
    /// run is incremental, as if the source had read only them.
    pub pushed: Option<Arc<Vec<sources::RawRecord>>>,
}

/// How long a cancelled run waits for its target by default: a target that does not answer in that
/// time is stopped, and what it wrote without saying so is adopted by the next run.
pub const CANCEL_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// A finished job and what the user should read about it.
#[derive(Debug, Clone)]
pub struct RunReport {
    pub job: JobRecord,
    pub warnings: Vec<String>,
}

/// What stopped a run.
pub(crate) struct Failure {
    category: ErrorCategory,
    message: String,
}

impl Failure {
    fn new(category: ErrorCategory, message: impl Into<String>) -> Failure {
        Failure { category, message: message.into() }
    }
}

impl From<StoreError> for Failure {
    fn from(error: StoreError) -> Failure {
        Failure::new(ErrorCategory::State, error.to_string())
    }
}

impl From<SourceError> for Failure {
    fn from(error: SourceError) -> Failure {
        Failure::new(error.category(), error.to_string())
    }
}

/// Runs `sync` of `pipeline` as a new job, in the foreground.
pub async fn run(
    pipeline: &Pipeline,
    sync: &str,
    state: &StateDir,
    options: RunOptions,
    progress: Arc<Progress>,
) -> Result<RunReport, StoreError> {
    run_on(pipeline, sync, state, options, progress, None).await
}

/// [`run`] with the source and sink given (`None`: built from the pipeline).
pub async fn run_on(
    pipeline: &Pipeline,
    sync: &str,
    state: &StateDir,
    options: RunOptions,
    progress: Arc<Progress>,
    parts: Option<Parts>,
) -> Result<RunReport, StoreError> {
    let jobs = state.jobs()?;
    let lock = state.lock_run(sync).await?;
    let report = match jobs.create(sync, JobStatus::Running, options.force_full_sync, options.dry_run) {
        Ok(job) => run_job_on(pipeline, job, state, options, progress, &lock, parts).await,
        Err(error) => Err(error),
    };
    lock.release().await;
    report
}

/// Runs an already recorded job, holding its synchronization's `lock`. Jobs of the synchronization an
/// earlier process left active are marked FAILED first, and what they (or a run that panicked) wrote
/// is adopted. A panic anywhere in the run fails the job; it never reads as done.
pub async fn run_job(
    pipeline: &Pipeline,
    job: JobRecord,
    state: &StateDir,
    options: RunOptions,
    progress: Arc<Progress>,
    lock: &RunLock,
) -> Result<RunReport, StoreError> {
    run_job_on(pipeline, job, state, options, progress, lock, None).await
}

/// [`run_job`] with the source and sink given (`None`: built from the pipeline).
pub async fn run_job_on(
    pipeline: &Pipeline,
    mut job: JobRecord,
    state: &StateDir,
    mut options: RunOptions,
    progress: Arc<Progress>,
    lock: &RunLock,
    parts: Option<Parts>,
) -> Result<RunReport, StoreError> {
    // A lost lease (`--leases`) stops the run like a cancel, and fails it: another machine may now
    // take the synchronization over. A child token, so the caller's own token stays as it was.
    options.cancel = options.cancel.child_token();
    let _lease_watch = lock.lost().cloned().map(|lost| {
        let cancel = options.cancel.clone();
        tokio_util::task::AbortOnDropHandle::new(tokio::spawn(async move {
            lost.cancelled().await;
            cancel.cancel();
        }))
    });
    let jobs = state.jobs()?;
    let interrupted = jobs.take_over(&job.synchronization, &job.id)?;
    let started = Instant::now();
    job.status = JobStatus::Running;
    job.started_at = Some(now_text());
    jobs.update(&job)?;
    let mut run = Run {
        warnings: BTreeSet::new(),
        source_log: SourceLog::default(),
        differ: None,
        cursor: None,
        recovered: false,
        writer_stopped: false,
        calls: Arc::default(),
    };
    let span = observe::job_span(&job);
    let execute = run.execute(pipeline, &job, state, &options, &progress, interrupted, parts);
    let execute = std::panic::AssertUnwindSafe(tracing::Instrument::instrument(execute, span.clone()));
    let outcome = match futures::FutureExt::catch_unwind(execute).await {
        Ok(outcome) => outcome,
        Err(panic) => {
            // Contracts were not saved for what this run wrote: the next run adopts it.
            jobs.needs_recovery(&job.synchronization)?;
            Err(Failure::new(
                ErrorCategory::Internal,
                format!("the run stopped on an internal error: {}", supervise::panic_message(&*panic)),
            ))
        }
    };
    if let Err(error) = run.calls.finish(state, &job.id, pipeline) {
        run.warnings.insert(format!("the call log could not be written: {error}"));
    }
    if run.recovered {
        jobs.recovered(&job.synchronization)?;
    }
    if run.writer_stopped {
        // Contracts were not saved for what the stopped writer may have written: the next run adopts it.
        jobs.needs_recovery(&job.synchronization)?;
    }
    if let Some(differ) = &run.differ {
        job.counts = differ.counts;
        let errors: Vec<_> = differ
            .errors
            .iter()
            .map(|e| crate::store::jobs::ObjectError { origin_id: e.origin_id.clone(), message: scrubbed(&e.message) })
            .collect();
        jobs.object_errors(&job.id, &errors)?;
    }
    progress.set(&job.counts);
    for (level, line) in run.source_log.lines() {
        job_log(&jobs, &job, level, &scrubbed(&line))?;
    }
    let warnings: Vec<String> = run.warnings.iter().map(|w| scrubbed(w)).collect();
    for warning in &warnings {
        job_log(&jobs, &job, "warn", warning)?;
    }
    job.completed_at = Some(now_text());
    job.duration_seconds = Some(started.elapsed().as_secs_f64());
    let c = job.counts;
    // A run in which every record failed did nothing it was asked to: it failed.
    let outcome = match outcome {
        Ok(()) if c.found > 0 && c.failed == c.found => {
            let first = run.differ.as_ref().and_then(|d| d.errors.first()).map(|e| scrubbed(&e.message)).unwrap_or_default();
            Err(Failure::new(ErrorCategory::Records, format!("all {} record(s) failed; the first: {first}", c.found)))
        }
        Err(failure) if failure.category == ErrorCategory::Cancelled && lock.lost().is_some_and(|l| l.is_cancelled()) => Err(Failure::new(
            ErrorCategory::State,
            format!("the run lost the lease of `{}` (it could not be renewed in time) and stopped", job.synchronization),
        )),
        other => other,
    };
    let summary = match outcome {
        Ok(()) => {
            job.status = JobStatus::Completed;
            if c.failed > 0 { format!("COMPLETED with {} failed record(s)", c.failed) } else { "COMPLETED".to_string() }
        }
        Err(failure) => {
            job.status = if failure.category == ErrorCategory::Cancelled { JobStatus::Cancelled } else { JobStatus::Failed };
            let message = scrubbed(&failure.message);
            job_log(&jobs, &job, "error", &message)?;
            job.error = Some(message);
            job.error_category = Some(failure.category.as_str().to_string());
            job.status.as_str().to_string()
        }
    };
    job_log(
        &jobs,
        &job,
        "info",
        &format!(
            "{summary}: found {}, created {}, updated {}, unchanged {}, skipped {}, deleted {}, failed {}",
            c.found, c.created, c.updated, c.unchanged, c.skipped, c.deleted, c.failed
        ),
    )?;
    jobs.update(&job)?;
    observe::record_outcome(&span, &job);
    Ok(RunReport { job, warnings })
}

/// A line of the job's log, kept with the job and logged (target `syncline::job`, with the job and
/// its synchronization as fields, which `--log-format json` writes as keys of their own).
fn job_log(jobs: &crate::store::JobStore, job: &JobRecord, level: &str, message: &str) -> Result<(), StoreError> {
    jobs.log(&job.id, level, message)?;
    let (id, sync) = (job.id.as_str(), job.synchronization.as_str());
    match level {
        "error" => tracing::error!(target: "syncline::job", job = id, synchronization = sync, "{message}"),
        "warn" => tracing::warn!(target: "syncline::job", job = id, synchronization = sync, "{message}"),
        "debug" => tracing::debug!(target: "syncline::job", job = id, synchronization = sync, "{message}"),
        _ => tracing::info!(target: "syncline::job", job = id, synchronization = sync, "{message}"),
    }
    Ok(())
}

/// Text as it may be kept or shown: with every secret the process knows masked.
fn scrubbed(text: &str) -> String {
    crate::secrets::scrub(text).into_owned()
}

struct Run {
    warnings: BTreeSet<String>,
    /// What the source itself said (a program's stderr), for the job log.
    source_log: SourceLog,
    differ: Option<Differ>,
    /// The newest cursor the source reported.
    cursor: Option<String>,
    /// What interrupted runs wrote was adopted and the contracts holding it are saved.
    recovered: bool,
    /// The writer was stopped before it reported every write: the next run adopts what it wrote.
    writer_stopped: bool,
    /// The requests its sources and target make.
    calls: Arc<call_log::CallLog>,
}

impl Run {
    #[allow(clippy::too_many_arguments)]
    async fn execute(
        &mut self,
        pipeline: &Pipeline,
        job: &JobRecord,
        state: &StateDir,
        options: &RunOptions,
        progress: &Arc<Progress>,
        interrupted: bool,
        parts: Option<Parts>,
    ) -> Result<(), Failure> {
        let prepared = Instant::now();
        let config = |message: String| Failure::new(ErrorCategory::Config, message);
        let sync: &Synchronization = pipeline
            .synchronizations
            .get(&job.synchronization)
            .ok_or_else(|| config(format!("no synchronization named `{}`", job.synchronization)))?;
        let mapping_def = pipeline.mappings.get(&sync.mapping).ok_or_else(|| config(format!("no mapping named `{}`", sync.mapping)))?;
        let mapping = Arc::new(
            Mapping::compile_in(&sync.mapping, mapping_def, &pipeline.mappings)
                .map_err(|e| config(format!("mapping `{}`: {e}", sync.mapping)))?,
        );
        let conditions = sync.definition.conditions.as_ref();
        let filter = match (&sync.filter, conditions) {
            (None, None) => None,
            (text, conditions) => Some(Arc::new(Filter::new(text.as_deref(), conditions).map_err(|e| config(e.to_string()))?)),
        };
        let Parts { source, sink } = match parts {
            Some(parts) => parts,
            None => Parts::build(&self.calls.tap(pipeline), sync, state, &job.id, options)?,
        };
        let _calls =
            tokio_util::task::AbortOnDropHandle::new(tokio::spawn(Arc::clone(&self.calls).keep_writing(state.clone(), job.id.clone())));

        // The fingerprint covers everything that shapes an object besides the record itself.
        let mut fingerprint = blake3::Hasher::new();
        fingerprint.update(&mapping.fingerprint());
        fingerprint.update(sync.filter.as_deref().unwrap_or("").as_bytes());
        if let Some(conditions) = conditions {
            fingerprint.update(conditions.to_string().as_bytes());
        }
        // What is hashed instead of the whole record, when the synchronization says (its own mapping).
        let hash_view = match &sync.definition.source_hash_mapping {
            None => None,
            Some(name) => Some(observe::hash_view(pipeline, &name.0, filter.clone(), &mut fingerprint).map_err(config)?),
        };
        let fingerprint = *fingerprint.finalize().as_bytes();
        let cursor = self.start_cursor(state, sync, &fingerprint, options)?;
        let table = ContractTable::load(state, &sync.name).await?;
        // A source that names its ids itself (an Airbyte stream's primary key) says where they are.
        let id_position = match sync.id_position.as_str() {
            "" => source.id_position().await?.ok_or_else(|| config("idPosition is missing".into()))?,
            given => given.to_string(),
        };
        let mut differ = Differ::new(table, &sync.name, &id_position, fingerprint, options.force_full_sync);
        differ.set_delete_policy(sync.delete_policy);
        if let Some(view) = hash_view {
            differ.set_hash_view(view);
        }
        if let Some(def) = pipeline.sources.get(&sync.source) {
            differ.set_max_depth(def.limits.max_depth);
        }
        let target_error = |e: crate::sinks::SinkError| Failure::new(ErrorCategory::Target, e.to_string());
        if interrupted {
            let adopted = differ.adopt(sink.existing().map_err(target_error)?);
            if adopted > 0 {
                self.warnings.insert(format!("adopted {adopted} object(s) written by an interrupted run"));
            }
        }
        let adopted = differ.adopt_created(sink.journal().map_err(target_error)?);
        if adopted > 0 {
            self.warnings.insert(format!("adopted {adopted} object(s) a run that was cut off created on the target"));
        }
        self.differ = Some(differ);
        progress.timings.add(Stage::Prepare, prepared.elapsed());
        let result = self.pump(sync, source.open(cursor), sink, mapping, filter, options, progress).await;
        let differ = self.differ.as_mut().expect("set above");
        progress.set(&differ.counts);
        if !options.dry_run {
            // Saved even after a failure: contracts then describe exactly what was written.
            differ.take_table().save(state, &sync.name).await?;
            // The contracts now hold every create the journal recorded, and what was adopted.
            state.clear_journal(&sync.name)?;
            self.recovered = interrupted;
            if result.is_ok() {
                self.save_cursor(state, sync, &fingerprint)?;
            }
        }
        result
    }

    /// The cursor to read from: none for a full sync, or when the mapping changed since it was saved
    /// (the records before it were shaped by the old mapping and must be read again).
    fn start_cursor(
        &mut self,
        state: &StateDir,
        sync: &Synchronization,
        fingerprint: &[u8; 32],
        options: &RunOptions,
    ) -> Result<Option<String>, Failure> {
        if options.force_full_sync {
            return Ok(None);
        }
        let Some(saved) = state.jobs()?.cursor(&sync.name)? else { return Ok(None) };
        if saved.fingerprint != blake3::Hash::from(*fingerprint).to_hex().as_str() {
            self.warnings.insert("the mapping or filter changed since the last run, so this run reads the whole source".into());
            return Ok(None);
        }
        Ok(Some(saved.value))
    }

    /// Keeps the cursor where it was while records failed, so they are read again by the next run.
    fn save_cursor(&mut self, state: &StateDir, sync: &Synchronization, fingerprint: &[u8; 32]) -> Result<(), Failure> {
        let Some(value) = self.cursor.take() else { return Ok(()) };
        let failed = self.differ.as_ref().map_or(0, |d| d.counts.failed);
        if failed > 0 {
            self.warnings.insert(format!("{failed} record(s) failed, so the cursor stays where it was and the next run reads them again"));
            return Ok(());
        }
        let cursor = SavedCursor { value, fingerprint: blake3::Hash::from(*fingerprint).to_hex().to_string() };
        Ok(state.jobs()?.save_cursor(&sync.name, &cursor)?)
    }

    /// Runs the stages over `stream` into `sink` and waits for all of them: what they fetched is
    /// diffed, mapped and written, and deletes follow only a complete fetch.
    #[allow(clippy::too_many_arguments)]
    async fn pump(
        &mut self,
        sync: &Synchronization,
        stream: sources::SourceStream,
        sink: Box<dyn Sink>,
        mapping: Arc<Mapping>,
        filter: Option<Arc<Filter>>,
        options: &RunOptions,
        progress: &Arc<Progress>,
    ) -> Result<(), Failure> {
        let processing = Instant::now();
        let identifier = self.differ.as_ref().expect("set before pumping").identifier();
        let mut stages = Stages::spawn(&sync.name, stream, identifier, sink, mapping, filter, &options.cancel, progress);
        let mut fed = self.feed(sync, &mut stages, options, progress).await;
        drop(stages.events);
        // The channels close alike when a stage finishes and when it dies: only a feed that both the
        // reader and the identify stage saw through to its end may lead to deletes. A run that failed
        // already stops them (a reader may be waiting on a slow page).
        let feed = [stages.identify, stages.reader];
        if fed.failure.is_none() {
            for stage in feed {
                if let Some(stopped) = stage.finish().await {
                    fed.failure = Some(stopped);
                }
            }
        } else {
            drop(feed);
        }

        let cleanup = Instant::now();
        if fed.failure.is_none()
            && let Some(work) = &stages.work
        {
            fed.failure = self.delete_missing(sync, &fed, work, &mut stages.acks, options).await.err();
        }
        drop(stages.work);
        let differ = self.differ.as_mut().expect("set before pumping");
        let mut failure = fed.failure;
        // Drain every outcome: the mapping stage and the sink hold the last senders. A cancelled run
        // gives the target a grace period for the batch in hand, then stops it.
        let drained = {
            let drain = async {
                while let Some(batch) = stages.acks.recv().await {
                    differ.apply(batch);
                    progress.set(&differ.counts);
                }
            };
            tokio::pin!(drain);
            let mut drained = tokio::select! {
                biased;
                _ = &mut drain => true,
                _ = options.cancel.cancelled() => false,
            };
            if !drained {
                failure = failure.or_else(|| Some(Failure::new(ErrorCategory::Cancelled, "the run was cancelled")));
                drained = tokio::time::timeout(options.cancel_grace.unwrap_or(CANCEL_GRACE), &mut drain).await.is_ok();
            }
            drained
        };
        if drained {
            for stage in [stages.mapper, stages.writer] {
                if let Some(stopped) = stage.finish().await {
                    failure = failure.or(Some(stopped));
                }
            }
        } else {
            // Dropping the stages aborts the writer; the mapping stage ends when its sends fail.
            self.writer_stopped = true;
            self.warnings.insert("the target did not finish its batch in time after the cancel, so the writer was stopped".into());
        }
        progress.timings.add(Stage::Cleanup, cleanup.elapsed());
        progress.timings.add(Stage::Process, processing.elapsed());
        match stages.written.try_recv() {
            Ok(Ok(())) => {}
            Ok(Err(error)) => failure = failure.or(Some(Failure::new(ErrorCategory::Target, error.to_string()))),
            // The writer stage's own failure is already recorded.
            Err(_) => {}
        }
        if differ.counts.found == 0 && failure.is_none() && !fed.incremental {
            self.warnings.insert(format!(
                "the source returned no records: check the endpoint and resultsPosition (`{}`)",
                sync.source_config.results_position.as_deref().unwrap_or("not set")
            ));
        }
        failure.map_or(Ok(()), Err)
    }

    /// Diffs what the feed brings, sending the work on and applying outcomes as they come, until the
    /// feed ends, fails, or the run is cancelled. `stages.work` is taken when the mapping stage is gone.
    async fn feed(&mut self, sync: &Synchronization, stages: &mut Stages, options: &RunOptions, progress: &Arc<Progress>) -> Fed {
        let differ = self.differ.as_mut().expect("set before pumping");
        let mut fed = Fed { failure: None, truncated: false, incremental: false };
        loop {
            tokio::select! {
                biased;
                Some(batch) = stages.acks.recv() => differ.apply(batch),
                _ = options.cancel.cancelled() => {
                    fed.failure = Some(Failure::new(ErrorCategory::Cancelled, "the run was cancelled"));
                    break;
                }
                event = stages.events.recv() => match event {
                    None => break,
                    Some(Err(error)) => {
                        fed.failure = Some(error.into());
                        break;
                    }
                    Some(Ok((SourceEvent::Warning(warning), _))) => {
                        self.warnings.insert(warning);
                    }
                    Some(Ok((SourceEvent::Truncated(reason), _))) => {
                        fed.truncated = true;
                        self.warnings.insert(reason);
                    }
                    Some(Ok((SourceEvent::Incremental(_), _))) => fed.incremental = true,
                    Some(Ok((SourceEvent::Cursor(value), _))) => self.cursor = Some(value),
                    Some(Ok((SourceEvent::Log { level, message }, _))) => self.source_log.push(level, message),
                    Some(Ok((SourceEvent::Chunk(chunk), identities))) => {
                        faults::check(&sync.name, "diff");
                        let work = differ.diff_chunk(chunk, identities);
                        progress.set(&differ.counts);
                        if !work.is_empty() {
                            let Some(tx) = &stages.work else { break };
                            if !send_draining(tx, work, &mut stages.acks, differ, &options.cancel).await {
                                stages.work = None;
                                break;
                            }
                        }
                        if options.first_page_only {
                            // A test run (OpenConnector's `test: true`) looks at the first page alone.
                            fed.truncated = true;
                            self.warnings.insert("test run: only the first page was read, and nothing was written".into());
                            break;
                        }
                    }
                }
            }
        }
        fed
    }

    /// After a complete fetch, deletes the objects whose records are gone (as the delete policy and
    /// guard allow); after any other, says why nothing is deleted.
    async fn delete_missing(
        &mut self,
        sync: &Synchronization,
        fed: &Fed,
        work: &mpsc::Sender<Vec<Unmapped>>,
        acks: &mut mpsc::UnboundedReceiver<Vec<Ack>>,
        options: &RunOptions,
    ) -> Result<(), Failure> {
        let differ = self.differ.as_mut().expect("set before pumping");
        if fed.truncated {
            if !options.first_page_only {
                self.warnings.insert("the fetch was incomplete, so no objects were deleted".into());
            }
            return Ok(());
        }
        if differ.unidentified > 0 {
            self.warnings.insert(format!(
                "{} record(s) could not be read or had no id, so no objects were deleted (a record that cannot be \
                 identified cannot be told apart from one that is gone)",
                differ.unidentified
            ));
            return Ok(());
        }
        if fed.incremental {
            // An incremental read sees only what changed: absence means nothing.
            return Ok(());
        }
        let deletes = differ
            .deletions(sync.delete_policy, sync.max_delete_share, options.allow_mass_delete)
            .map_err(|refusal| Failure::new(ErrorCategory::DeleteGuard, refusal))?;
        let mut deletes = deletes.into_iter();
        loop {
            let batch: Vec<Unmapped> = deletes.by_ref().take(1024).collect();
            if batch.is_empty() || !send_draining(work, batch, acks, differ, &options.cancel).await {
                return Ok(());
            }
        }
    }
}

/// How a feed went: failed (cancelled, an error), cut short, or read incrementally.
struct Fed {
    failure: Option<Failure>,
    truncated: bool,
    incremental: bool,
}

/// Sends `work` downstream, applying outcomes while it waits for room (the sink reports on an
/// unbounded channel, so this never deadlocks). Returns false when the mapping stage is gone or the
/// run is cancelled.
async fn send_draining(
    tx: &mpsc::Sender<Vec<Unmapped>>,
    work: Vec<Unmapped>,
    acks: &mut mpsc::UnboundedReceiver<Vec<Ack>>,
    differ: &mut Differ,
    cancel: &CancellationToken,
) -> bool {
    let mut send = std::pin::pin!(tx.send(work));
    loop {
        tokio::select! {
            sent = &mut send => return sent.is_ok(),
            Some(batch) = acks.recv() => differ.apply(batch),
            // A target that takes nothing must not keep a cancelled run waiting here.
            _ = cancel.cancelled() => return false,
        }
    }
}
