//! Follow-up synchronizations (`followUps`, as in OpenConnector): started after a run that
//! completed, in order, each as its own job linked to the one it follows. A pipeline file whose
//! follow-ups make a cycle is refused at load; at run time the chain of synchronizations that led
//! here is checked as well (the service's definitions change while it runs), so A → B → A stops at
//! the second A instead of recursing until the process dies (OpenConnector v0.2.19).

use crate::config::Pipeline;
use crate::store::{JobRecord, JobStatus, JobStore, StoreError};

/// The follow-ups to start now that `job` ended, in order: none unless it completed and wrote (a
/// dry or test run starts none). One already in `chain` (the synchronizations whose runs led here)
/// would close a cycle: it is not started, and the job's log says why.
pub fn due(pipeline: &Pipeline, job: &JobRecord, chain: &[String], jobs: &JobStore) -> Result<Vec<String>, StoreError> {
    if job.status != JobStatus::Completed || job.dry_run {
        return Ok(Vec::new());
    }
    let Some(sync) = pipeline.synchronizations.get(&job.synchronization) else { return Ok(Vec::new()) };
    let mut due = Vec::new();
    for follow_up in &sync.definition.follow_ups {
        if *follow_up == job.synchronization || chain.contains(follow_up) {
            let path: Vec<&str> = chain.iter().map(String::as_str).chain([job.synchronization.as_str(), follow_up.as_str()]).collect();
            jobs.log(&job.id, "warn", &format!("follow-up `{follow_up}` not started: it would close a cycle ({})", path.join(" → ")))?;
        } else if !pipeline.synchronizations.contains_key(follow_up) {
            jobs.log(&job.id, "warn", &format!("follow-up `{follow_up}` not started: there is no synchronization by that name"))?;
        } else {
            due.push(follow_up.clone());
        }
    }
    Ok(due)
}

/// Records that `child` follows up on `parent`: linked, and said in both jobs' logs.
pub fn link(jobs: &JobStore, parent: &JobRecord, child: &JobRecord) -> Result<(), StoreError> {
    jobs.link(&child.id, &parent.id)?;
    jobs.log(&parent.id, "info", &format!("follow-up `{}` started: job {}", child.synchronization, child.id))?;
    jobs.log(&child.id, "info", &format!("started as a follow-up of `{}` (job {})", parent.synchronization, parent.id))
}
