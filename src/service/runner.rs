//! Jobs in the background: at most one active job per synchronization, each with its own cancel
//! token and live counts. A run request answers at once with the PENDING job; the run itself goes on in
//! a task the runner tracks, so a shutdown can cancel every job and wait for it to settle.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Pipeline;
use crate::errors::ErrorCategory;
use crate::pipeline::{self, Progress, RunOptions, follow_ups};
use crate::store::{JobRecord, JobStatus, StateDir, StoreError, now_text};

struct Active {
    job: String,
    cancel: CancellationToken,
    progress: Arc<Progress>,
}

/// How to run a job.
#[derive(Debug, Clone, Default)]
pub struct RunRequest {
    pub force_full_sync: bool,
    pub dry_run: bool,
    /// OpenConnector's test run: the first page only, nothing written.
    pub first_page_only: bool,
    /// The synchronizations whose completed runs led to this one, as follow-ups (empty: none).
    pub chain: Vec<String>,
}

/// A job that ended, with its warnings and where its time went.
pub struct Finished {
    pub job: JobRecord,
    pub warnings: Vec<String>,
    pub progress: Arc<Progress>,
}

pub struct Runner {
    state: StateDir,
    active: Mutex<HashMap<String, Active>>,
    tasks: TaskTracker,
    /// Set once shutdown starts: no new runs.
    closing: CancellationToken,
}

/// Frees a synchronization in the runner when its run's task ends, however it ends.
struct Release {
    runner: Arc<Runner>,
    sync: String,
}

impl Drop for Release {
    fn drop(&mut self) {
        self.runner.active().remove(&self.sync);
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("synchronization `{sync}` is already running (job {job})")]
    Busy { sync: String, job: String },
    #[error("the service is shutting down and takes no new runs")]
    Closing,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Runner {
    pub fn new(state: StateDir) -> Runner {
        Runner { state, active: Mutex::new(HashMap::new()), tasks: TaskTracker::new(), closing: CancellationToken::new() }
    }

    fn active(&self) -> std::sync::MutexGuard<'_, HashMap<String, Active>> {
        self.active.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a PENDING job for `sync` and runs it in the background.
    pub fn start(self: &Arc<Self>, pipeline: Pipeline, sync: &str, force_full_sync: bool) -> Result<JobRecord, StartError> {
        let request = RunRequest { force_full_sync, ..RunRequest::default() };
        self.start_with(pipeline, sync, request).map(|(job, _)| job)
    }

    /// Starts a run and also hands back a receiver for how it ended (OpenConnector's synchronous run).
    pub fn start_with(
        self: &Arc<Self>,
        pipeline: Pipeline,
        sync: &str,
        request: RunRequest,
    ) -> Result<(JobRecord, oneshot::Receiver<Finished>), StartError> {
        self.spawn_run(pipeline, sync, request, None)
    }

    /// Starts a run of `records` instead of what the source reads (an inbound hook's objects).
    pub fn start_pushed(
        self: &Arc<Self>,
        pipeline: Pipeline,
        sync: &str,
        records: Vec<crate::sources::RawRecord>,
    ) -> Result<(JobRecord, oneshot::Receiver<Finished>), StartError> {
        self.spawn_run(pipeline, sync, RunRequest::default(), Some(Arc::new(records)))
    }

    fn spawn_run(
        self: &Arc<Self>,
        pipeline: Pipeline,
        sync: &str,
        request: RunRequest,
        pushed: Option<Arc<Vec<crate::sources::RawRecord>>>,
    ) -> Result<(JobRecord, oneshot::Receiver<Finished>), StartError> {
        let RunRequest { force_full_sync, dry_run, first_page_only, chain } = request;
        if self.closing.is_cancelled() {
            return Err(StartError::Closing);
        }
        let mut active = self.active();
        if let Some(running) = active.get(sync) {
            return Err(StartError::Busy { sync: sync.to_string(), job: running.job.clone() });
        }
        let jobs = self.state.jobs()?;
        let job = jobs.create(sync, JobStatus::Pending, force_full_sync, dry_run)?;
        let cancel = self.closing.child_token();
        let progress = Arc::new(Progress::default());
        active.insert(sync.to_string(), Active { job: job.id.clone(), cancel: cancel.clone(), progress: Arc::clone(&progress) });
        drop(active);

        let runner = Arc::clone(self);
        let (record, sync) = (job.clone(), sync.to_string());
        let (done_tx, done_rx) = oneshot::channel();
        self.tasks.spawn(async move {
            // However the run ends (a panic included), the synchronization is free again; when it
            // ends normally, before whoever waits for it hears so.
            let release = Release { runner: Arc::clone(&runner), sync };
            let options = RunOptions { force_full_sync, dry_run, first_page_only, cancel, pushed, ..RunOptions::default() };
            let (job, warnings) = runner.execute(&pipeline, record, options, Arc::clone(&progress)).await;
            drop(release);
            let _ = done_tx.send(Finished { job: job.clone(), warnings, progress });
            runner.follow_up(&pipeline, &job, chain).await;
        });
        Ok((job, done_rx))
    }

    /// Starts the follow-ups of `job` (see [`follow_ups`]), one after the other: each when the one
    /// before it has ended.
    async fn follow_up(self: &Arc<Self>, pipeline: &Pipeline, job: &JobRecord, chain: Vec<String>) {
        let Ok(jobs) = self.state.jobs() else { return };
        let due = match follow_ups::due(pipeline, job, &chain, &jobs) {
            Ok(due) => due,
            Err(error) => return tracing::warn!("follow-ups of job {}: {error}", job.id),
        };
        let chain: Vec<String> = chain.into_iter().chain([job.synchronization.clone()]).collect();
        for follow_up in due {
            let request = RunRequest { chain: chain.clone(), ..RunRequest::default() };
            match self.spawn_run(pipeline.clone(), &follow_up, request, None) {
                Ok((child, done)) => {
                    if let Err(error) = follow_ups::link(&jobs, job, &child) {
                        tracing::warn!("follow-up job {}: {error}", child.id);
                    }
                    let _ = done.await;
                }
                Err(error) => {
                    let _ = jobs.log(&job.id, "warn", &format!("follow-up `{follow_up}` not started: {error}"));
                }
            }
        }
    }

    /// Runs the job; how it ended, and its warnings.
    async fn execute(
        &self,
        pipeline: &Pipeline,
        mut job: JobRecord,
        options: RunOptions,
        progress: Arc<Progress>,
    ) -> (JobRecord, Vec<String>) {
        let fail = |job: &mut JobRecord, category: ErrorCategory, message: String| {
            job.status = JobStatus::Failed;
            job.error = Some(message);
            job.error_category = Some(category.as_str().to_string());
            job.completed_at = Some(now_text());
            if let Ok(jobs) = self.state.jobs() {
                let _ = jobs.update(job);
            }
        };
        // The same lock a command-line run takes: never two runs of one synchronization, whoever starts them.
        let lock = match self.state.lock_run(&job.synchronization).await {
            Ok(lock) => lock,
            Err(error) => {
                fail(&mut job, ErrorCategory::State, error.to_string());
                return (job, Vec::new());
            }
        };
        let ended = match pipeline::run_job(pipeline, job.clone(), &self.state, options, progress, &lock).await {
            Ok(report) => (report.job, report.warnings),
            Err(error) => {
                fail(&mut job, ErrorCategory::State, error.to_string());
                (job, Vec::new())
            }
        };
        lock.release().await;
        ended
    }

    /// Takes over the jobs earlier processes left active: each synchronization's under its lock, so a
    /// job another live process (a command-line run) is running stays as it is. Returns how many
    /// synchronizations were taken over; their next run adopts what the dead runs wrote.
    pub fn take_over_orphans(&self) -> Result<usize, StoreError> {
        let jobs = self.state.jobs()?;
        let mut taken = 0;
        for sync in jobs.active_synchronizations()? {
            match self.state.lock(&sync) {
                Ok(_lock) => {
                    jobs.take_over(&sync, "")?;
                    taken += 1;
                }
                Err(StoreError::Busy(_)) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(taken)
    }

    /// Asks the job to stop: CANCELLING now, CANCELLED once its writes settle. `None`: not running here.
    pub fn cancel(&self, job_id: &str) -> Result<Option<JobRecord>, StoreError> {
        let active = self.active();
        let Some(entry) = active.values().find(|a| a.job == job_id) else { return Ok(None) };
        let jobs = self.state.jobs()?;
        let mut job = jobs.get(job_id)?;
        if !job.status.is_final() {
            job.status = JobStatus::Cancelling;
            jobs.update(&job)?;
        }
        entry.cancel.cancel();
        Ok(Some(job))
    }

    /// Live counts of a running job.
    pub fn progress(&self, job_id: &str) -> Option<crate::store::Counts> {
        self.active().values().find(|a| a.job == job_id).map(|a| a.progress.get())
    }

    pub fn is_running(&self, sync: &str) -> bool {
        self.active().contains_key(sync)
    }

    /// Stops taking runs, cancels every job and waits for all of them to record how they ended.
    pub async fn shutdown(&self) {
        self.closing.cancel();
        self.tasks.close();
        self.tasks.wait().await;
    }
}
