//! Failures: retried transient errors, a source that dies mid-feed, credentials, a killed process.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::json;
use syncline::diff::contracts::ContractTable;
use syncline::fixture::RequiredAuth;
use syncline::store::JobStatus;

use crate::common::{Harness, Sync, counts};

#[tokio::test]
async fn rate_limits_and_server_errors_are_retried() {
    let h = Harness::new(20).await;
    h.fixture.store.faults.too_many_requests.store(1, Ordering::SeqCst);
    h.fixture.store.faults.server_errors.store(2, Ordering::SeqCst);
    let started = Instant::now();
    let report = h.run().await;
    assert_eq!(report.job.status, JobStatus::Completed, "{:?}", report.job.error);
    assert_eq!(report.job.counts.created, 20);
    assert!(started.elapsed() >= Duration::from_secs(1), "Retry-After: 1 was honoured");
    assert_eq!(h.register(), h.expected());
}

#[tokio::test]
async fn a_source_that_dies_mid_feed_fails_the_job_and_deletes_nothing() {
    let h = Harness::new(35).await;
    h.run().await;
    let before = h.register();
    h.fixture.store.update(1, |p| p["name"] = json!("Changed before the break"));
    h.fixture.store.requests.store(0, Ordering::SeqCst);
    h.fixture.store.faults.die_after.store(2, Ordering::SeqCst);
    let report = h.run().await;
    assert_eq!(report.job.status, JobStatus::Failed);
    assert_eq!(report.job.error_category.as_deref(), Some("http"));
    assert!(report.job.error.as_deref().unwrap().contains("HTTP 500"), "{:?}", report.job.error);
    assert_eq!(report.job.counts.deleted, 0);
    let after = h.register();
    assert_eq!(after.len(), before.len(), "nothing deleted");
    assert_eq!(after["1"]["title"], "Changed before the break", "what was read before the break was written");

    // The contracts match what was written: the next complete run only finishes the job.
    h.fixture.store.faults.die_after.store(0, Ordering::SeqCst);
    let next = h.run().await;
    assert_eq!(counts(&next), (35, 0, 0, 35, 0, 0));
}

#[tokio::test]
async fn an_unreachable_source_fails_with_a_connection_error() {
    let h = Harness::new(3).await;
    h.run().await;
    let port = h.fixture.addr.port();
    let text = std::fs::read_to_string(&h.file).unwrap().replace(&format!(":{port}/"), ":1/");
    std::fs::write(&h.file, text).unwrap();
    let report = h.run().await;
    assert_eq!(report.job.status, JobStatus::Failed);
    assert_eq!(report.job.error_category.as_deref(), Some("connection"));
    assert_eq!(h.register().len(), 3, "nothing deleted");
}

#[tokio::test]
async fn credentials_are_sent_and_never_shown() {
    let cases = [
        (
            "auth: { type: basic, username: ann, password: pw-basic-secret }",
            RequiredAuth::Basic { username: "ann".into(), password: "pw-basic-secret".into() },
        ),
        ("auth: bearer\ntoken: tok-bearer-secret", RequiredAuth::Bearer("tok-bearer-secret".into())),
        (
            "auth: { type: apiKey, name: X-Key, key: key-header-secret }",
            RequiredAuth::Header { name: "x-key".into(), key: "key-header-secret".into() },
        ),
        (
            "auth: { type: apiKey, in: query, name: api_key, key: key-query-secret }",
            RequiredAuth::Query { name: "api_key".into(), key: "key-query-secret".into() },
        ),
    ];
    for (auth, required) in cases {
        let h = Harness::with(5, Sync { source_extra: auth.into(), ..Sync::default() }).await;
        *h.fixture.store.faults.auth.lock().unwrap() = Some(required.clone());
        let report = h.run().await;
        assert_eq!(report.job.status, JobStatus::Completed, "{auth}: {:?}", report.job.error);

        // The wrong secret: a 401 whose message shows no secret.
        let wrong = match required {
            RequiredAuth::Basic { username, .. } => RequiredAuth::Basic { username, password: "other".into() },
            RequiredAuth::Bearer(_) => RequiredAuth::Bearer("other".into()),
            RequiredAuth::Header { name, .. } => RequiredAuth::Header { name, key: "other".into() },
            RequiredAuth::Query { name, .. } => RequiredAuth::Query { name, key: "other".into() },
        };
        *h.fixture.store.faults.auth.lock().unwrap() = Some(wrong);
        let report = h.run().await;
        assert_eq!(report.job.error_category.as_deref(), Some("auth"), "{auth}");
        let shown = format!("{:?} {:?}", report.job, report.warnings);
        let logs = h.state.jobs().unwrap().logs(&report.job.id).unwrap();
        let shown = format!("{shown} {logs:?}");
        assert!(!shown.contains("secret"), "{auth}: a secret leaked: {shown}");
        assert!(!std::fs::read_to_string(h.state.root().join("jobs.db")).unwrap_or_default().contains("secret"));
    }
}

#[tokio::test]
async fn a_killed_run_converges_on_the_next_run() {
    let h = Harness::with(
        200,
        Sync { source_config: r#"{ endpoint: "/feed/page", idPosition: id, resultsPosition: data.items, pagination: { type: page, sizeParam: size, size: 5 } }"#.into(), ..Sync::default() },
    )
    .await;
    h.fixture.store.faults.delay_ms.store(40, Ordering::SeqCst);
    let mut child = crate::workspace::spawn_run(h.state.root(), &h.file);
    let written = || h.state.register().ok().and_then(|r| r.count("shop", "pet", &[]).ok()).unwrap_or(0) as usize;
    crate::workspace::kill_once_written(&mut child, written, 20).await;
    let written = h.register().len();
    assert!(written < 200, "killed part-way ({written} written)");
    assert_eq!(ContractTable::load(&h.state, "pets").await.unwrap().committed(), 0, "no contracts saved by the killed run");

    // Meanwhile the source changes: one pet written by the killed run disappears.
    h.fixture.store.remove(3);
    h.fixture.store.faults.delay_ms.store(0, Ordering::SeqCst);
    let report = h.run().await;
    assert_eq!(report.job.status, JobStatus::Completed, "{:?}", report.job.error);
    assert_eq!(h.register(), h.expected(), "the register equals the source: no duplicates, nothing lost, no orphan");
    let jobs = h.state.jobs().unwrap().list(Some("pets"), 10).unwrap();
    assert_eq!(jobs.last().unwrap().status, JobStatus::Failed, "the killed job is marked failed");
    assert_eq!(h.run().await.job.counts.unchanged, 199);
}

#[tokio::test]
async fn the_rate_limit_spaces_requests() {
    let h = Harness::with(30, Sync { source_extra: "rateLimit: 20/s".into(), ..Sync::default() }).await;
    let started = Instant::now();
    let report = h.run().await;
    assert_eq!(report.job.counts.created, 30);
    // 5 requests (4 full pages and the short last one) at most 20 a second: at least 4 gaps of 50 ms.
    assert!(started.elapsed() >= Duration::from_millis(200), "{:?}", started.elapsed());
}

#[tokio::test]
async fn one_synchronization_runs_once_at_a_time() {
    let h = Harness::new(3).await;
    let lock = h.state.lock("pets").expect("lock");
    let busy = syncline::pipeline::run(&h.pipeline(), "pets", &h.state, Default::default(), Default::default()).await;
    let Err(error) = busy else { panic!("a run must be refused while the synchronization is locked") };
    let error = error.to_string();
    assert!(error.contains("already running"), "{error}");
    drop(lock);
    assert_eq!(h.run().await.job.counts.created, 3);
}

#[tokio::test]
async fn a_cancelled_run_ends_cancelled_and_the_next_run_converges() {
    let h = Harness::with(
        120,
        Sync { source_config: r#"{ endpoint: "/feed/page", idPosition: id, resultsPosition: data.items, pagination: { type: page, sizeParam: size, size: 5 } }"#.into(), ..Sync::default() },
    )
    .await;
    h.fixture.store.faults.delay_ms.store(20, Ordering::SeqCst);
    let cancel = tokio_util::sync::CancellationToken::new();
    let trigger = cancel.clone();
    let store = std::sync::Arc::clone(&h.fixture.store);
    tokio::spawn(async move {
        while store.requests.load(Ordering::SeqCst) < 5 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        trigger.cancel();
    });
    let report = h.run_with(syncline::pipeline::RunOptions { cancel, ..Default::default() }).await;
    assert_eq!(report.job.status, JobStatus::Cancelled);
    assert_eq!(report.job.error_category.as_deref(), Some("cancelled"));
    let written = h.register().len();
    assert!(written > 0 && written < 120, "{written} written before the cancel");
    assert_eq!(ContractTable::load(&h.state, "pets").await.unwrap().committed(), written, "contracts match what was written");

    h.fixture.store.faults.delay_ms.store(0, Ordering::SeqCst);
    let next = h.run().await;
    assert_eq!((next.job.counts.created, next.job.counts.unchanged), (120 - written as u64, written as u64));
    assert_eq!(h.register(), h.expected());
}
