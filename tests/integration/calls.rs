//! The call log: every request of a run, with its status, duration and sizes, secrets masked; kept
//! by the source's retention; shown by the command line.

use std::sync::atomic::Ordering;

use syncline::fixture::RequiredAuth;
use syncline::store::calls::CallQuery;

use crate::common::{Harness, Sync};

#[tokio::test]
async fn every_request_is_recorded_with_its_status_and_no_secret() {
    let secret = "call-log-secret-8c1f";
    let sync = Sync {
        source_extra: format!("auth: {{ type: apiKey, in: query, name: api_key, key: {secret} }}\ncallLogRetention: {{ maxCount: 6 }}"),
        ..Sync::default()
    };
    let h = Harness::with(20, sync).await;
    *h.fixture.store.faults.auth.lock().unwrap() = Some(RequiredAuth::Query { name: "api_key".into(), key: secret.into() });
    // Three pages of 7, the first answered 500 once and retried.
    h.fixture.store.faults.server_errors.store(1, Ordering::SeqCst);
    let report = h.run().await;
    assert_eq!(report.job.counts.created, 20, "{:?}", report.job.error);
    let store = h.state.calls().unwrap();
    let query = |errors| CallQuery { source: "pets", job: None, errors, limit: 100 };
    let calls = store.list(&query(false)).unwrap();
    assert_eq!(calls.len(), 4, "three pages and a retry: {calls:?}");
    assert!(calls.iter().all(|c| c.job.as_deref() == Some(report.job.id.as_str()) && c.call.method == "GET"));
    let failed = store.list(&query(true)).unwrap();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!((failed[0].call.status, failed[0].call.error.as_deref()), (Some(500), Some("HTTP 500")));
    let ok = &calls[0];
    assert!(ok.call.status == Some(200) && ok.call.bytes_in > 100 && ok.call.url.contains("/feed/page"), "{ok:?}");
    let shown = serde_json::to_string(&calls).unwrap();
    assert!(!shown.contains(secret), "{shown}");

    // The command line shows them, the failed one with its status.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_syncline"))
        .arg("--state")
        .arg(h.state.root())
        .args(["calls", "pets", "--errors"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("500") && text.contains("GET") && !text.contains(secret), "{text}");

    // Retention: the newest six of the source's calls stay.
    h.run().await;
    assert_eq!(store.list(&query(false)).unwrap().len(), 6);
}
