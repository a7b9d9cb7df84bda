//! A panic planted in each stage of a real run (an NDJSON file into the register): the job fails with
//! the stage named, nothing is deleted, and the next run converges.

use std::sync::Arc;

use super::supervise::faults;
use super::{Progress, RunOptions, run};
use crate::config::Pipeline;
use crate::store::{JobStatus, StateDir};

struct Setup {
    _dir: tempfile::TempDir,
    feed: std::path::PathBuf,
    pipeline: Pipeline,
    state: StateDir,
}

fn setup(sync: &str) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let feed = dir.path().join("feed.ndjson");
    std::fs::write(&feed, "{\"id\":1}\n{\"id\":2}\n{\"id\":3}\n").unwrap();
    let text = format!(
        "sources:\n  f: {{ type: file, location: \"{}\" }}\nmappings:\n  m: {{ mapping: {{}}, passThrough: true }}\n\
         registers:\n  r: {{ schemas: {{ s: {{ type: object }} }} }}\nsynchronizations:\n  {sync}:\n    source: f\n    \
         sourceConfig: {{ idPosition: id }}\n    mapping: m\n    target: {{ type: register, register: r, schema: s }}\n    maxDeleteShare: 1\n",
        feed.display()
    );
    let pipeline = Pipeline::from_text("p.yaml", &text, dir.path(), &|_| None).unwrap();
    let state = StateDir::open(&dir.path().join("state")).unwrap();
    Setup { _dir: dir, feed, pipeline, state }
}

async fn run_once(setup: &Setup, sync: &str) -> super::RunReport {
    run(&setup.pipeline, sync, &setup.state, RunOptions::default(), Arc::new(Progress::default())).await.unwrap()
}

fn stored(setup: &Setup, sync: &str) -> usize {
    setup.state.register().unwrap().objects_of(sync).unwrap().len()
}

async fn a_panic_in(stage: &'static str) {
    let sync = format!("panic-in-{stage}");
    let setup = setup(&sync);
    assert_eq!(run_once(&setup, &sync).await.job.counts.created, 3);
    // Record 3 leaves the feed: a run that completed would delete it.
    std::fs::write(&setup.feed, "{\"id\":1}\n{\"id\":2,\"changed\":true}\n").unwrap();
    faults::plant(&sync, stage);
    let report = run_once(&setup, &sync).await;
    assert_eq!(report.job.status, JobStatus::Failed, "{stage}: {:?}", report.job);
    assert_eq!(report.job.error_category.as_deref(), Some("internal"), "{stage}");
    let error = report.job.error.clone().unwrap_or_default();
    assert!(error.contains(&format!("fault planted in the {stage} stage")), "{stage}: {error}");
    assert_eq!(report.job.counts.deleted, 0, "{stage}");
    assert_eq!(stored(&setup, &sync), 3, "{stage}: nothing deleted");
    faults::plant(&sync, "none");
    let next = run_once(&setup, &sync).await;
    assert_eq!(next.job.status, JobStatus::Completed, "{stage}: {:?}", next.job.error);
    assert_eq!(stored(&setup, &sync), 2, "{stage}: the next run converges");
}

#[tokio::test]
async fn a_panicking_reader_fails_the_run_and_deletes_nothing() {
    a_panic_in("reader").await;
}

#[tokio::test]
async fn a_panicking_identify_stage_fails_the_run_and_deletes_nothing() {
    a_panic_in("identify").await;
}

#[tokio::test]
async fn a_panicking_diff_fails_the_run_and_deletes_nothing() {
    a_panic_in("diff").await;
}

#[tokio::test]
async fn a_panicking_mapping_stage_fails_the_run_and_deletes_nothing() {
    a_panic_in("mapping").await;
}

#[tokio::test]
async fn a_panicking_writer_fails_the_run_and_deletes_nothing() {
    a_panic_in("writer").await;
}

#[tokio::test]
async fn a_run_where_every_record_fails_is_failed() {
    let setup = setup("all-fail");
    std::fs::write(&setup.feed, "{\"x\":1}\nnot json\n").unwrap();
    let report = run_once(&setup, "all-fail").await;
    assert_eq!(report.job.status, JobStatus::Failed);
    assert_eq!(report.job.error_category.as_deref(), Some("records"));
    assert!(report.job.error.unwrap().starts_with("all 2 record(s) failed; the first: line 1"));
    std::fs::write(&setup.feed, "{\"id\":1}\nnot json\n").unwrap();
    let report = run_once(&setup, "all-fail").await;
    assert_eq!(report.job.status, JobStatus::Completed, "some failed: still completed");
    let logs = setup.state.jobs().unwrap().logs(&report.job.id).unwrap();
    assert!(logs.iter().any(|l| l.message.starts_with("COMPLETED with 1 failed record(s)")), "{logs:?}");
}
