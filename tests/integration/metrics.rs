//! Operating the service: `/metrics` and `syncline metrics` (Prometheus' text format, read by an
//! independent parser, prometheus-parse, counting what the runs counted), and `/api/ready`.

use std::collections::HashMap;

use reqwest::Method;
use syncline::fixture::{self, Fixture};

use super::common::{Harness, ServeProcess, free_port, job_ended, keyed_json, pet_pipeline, serve};

const KEY: &str = "metrics-key-5e1a";

fn scrape(text: &str) -> prometheus_parse::Scrape {
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap_or_else(|e| panic!("not the text format: {e}\n{text}"))
}

/// The value of the sample `name` whose labels include `labels`.
fn value(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let sample = scrape.samples.iter().find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))?;
    Some(match &sample.value {
        prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Gauge(v) | prometheus_parse::Value::Untyped(v) => *v,
        prometheus_parse::Value::Histogram(buckets) => buckets.iter().map(|b| b.count).fold(0.0, f64::max),
        prometheus_parse::Value::Summary(_) => return None,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_what_the_runs_counted_in_the_text_format() {
    let pets = Fixture::start(fixture::pets(9)).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = pet_pipeline(dir.path(), &pets.base_url(), "");
    let state = dir.path().join("state");
    let serve = ServeProcess::start(&state, &file, free_port(), &[], &[("SYNCLINE_API_KEY", KEY)]).await;
    let http = reqwest::Client::new();
    let mut jobs = Vec::new();
    for _ in 0..2 {
        let job = keyed_json(&http, Method::POST, &serve.url, "/api/synchronizations/pets/run", KEY).await;
        let job = job_ended(&http, &serve.url, KEY, job["id"].as_str().unwrap_or_else(|| panic!("{job}"))).await;
        assert_eq!(job["status"], "COMPLETED", "{job}");
        jobs.push(job);
    }

    let refused = http.get(format!("{}/metrics", serve.url)).send().await.unwrap();
    assert_eq!(refused.status(), reqwest::StatusCode::UNAUTHORIZED, "metrics are behind the key");
    let answer = http.get(format!("{}/metrics", serve.url)).header("x-api-key", KEY).send().await.unwrap();
    assert_eq!(answer.status(), reqwest::StatusCode::OK);
    let kind = answer.headers()["content-type"].to_str().unwrap().to_string();
    assert!(kind.starts_with("text/plain; version=0.0.4"), "{kind}");
    let text = answer.text().await.unwrap();
    let metrics = scrape(&text);
    let sync = ("synchronization", "pets");
    assert_eq!(value(&metrics, "syncline_jobs_total", &[sync, ("status", "COMPLETED")]), Some(2.0), "{text}");
    assert_eq!(value(&metrics, "syncline_jobs_running", &[sync]), Some(0.0), "{text}");
    let sum = |key: &str| jobs.iter().map(|j| j[key].as_u64().unwrap()).sum::<u64>() as f64;
    let expected = HashMap::from([
        ("found", sum("entities_found")),
        ("created", sum("entities_inserted")),
        ("updated", sum("entities_updated")),
        ("deleted", sum("entities_deleted")),
    ]);
    for (outcome, n) in &expected {
        assert_eq!(value(&metrics, "syncline_records_total", &[sync, ("outcome", outcome)]), Some(*n), "{outcome}: {text}");
    }
    assert_eq!(expected["created"], 9.0, "the first run created every pet");
    assert_eq!(value(&metrics, "syncline_records_total", &[sync, ("outcome", "unchanged")]), Some(9.0), "the second changed nothing");
    assert_eq!(value(&metrics, "syncline_run_duration_seconds", &[sync]), Some(2.0), "both runs are in the histogram: {text}");
    let age = value(&metrics, "syncline_seconds_since_last_success", &[sync]).unwrap();
    assert!((0.0..60.0).contains(&age), "{age}");
    // Three pages of four per run, each in the call log.
    let requests = value(&metrics, "syncline_source_requests", &[("source", "pets"), ("class", "2xx")]).unwrap();
    assert!(requests >= 6.0, "{requests}: {text}");
    assert!(value(&metrics, "syncline_source_bytes_read", &[("source", "pets")]).unwrap() > 0.0);
    assert_eq!(value(&metrics, "syncline_contracts", &[sync]), Some(9.0), "{text}");
    drop(serve);

    // The command line writes the same, for the textfile collector.
    let textfile = dir.path().join("syncline.prom");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_syncline"))
        .arg("--state")
        .arg(&state)
        .args(["metrics", "--textfile"])
        .arg(&textfile)
        .status()
        .unwrap();
    assert!(status.success());
    let written = scrape(&std::fs::read_to_string(&textfile).unwrap());
    assert_eq!(value(&written, "syncline_jobs_total", &[sync, ("status", "COMPLETED")]), Some(2.0));
    assert!(!dir.path().join(".syncline.prom.partial").exists(), "the file was renamed into place");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_checks_the_state_and_names_what_failed() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pipeline.yaml");
    std::fs::write(&file, "sources: {}\n").unwrap();
    let state = dir.path().join("state");
    let serve = ServeProcess::start(&state, &file, free_port(), &[], &[("SYNCLINE_API_KEY", KEY)]).await;
    let http = reqwest::Client::new();
    let ready = http.get(format!("{}/api/ready", serve.url)).send().await.unwrap();
    assert_eq!(ready.status(), reqwest::StatusCode::OK, "no key needed");
    let body: serde_json::Value = serde_json::from_str(&ready.text().await.unwrap()).unwrap();
    assert_eq!(body["status"], "ready", "{body}");
    assert!(body["checks"].as_object().unwrap().values().all(|v| v == "ok"), "{body}");

    // The register's database is gone, a directory in its place.
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(state.join(format!("register.db{suffix}")));
    }
    std::fs::create_dir(state.join("register.db")).unwrap();
    let broken = http.get(format!("{}/api/ready", serve.url)).send().await.unwrap();
    assert_eq!(broken.status(), reqwest::StatusCode::SERVICE_UNAVAILABLE);
    let text = broken.text().await.unwrap();
    let body: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!((body["status"].as_str(), body["checks"]["register"].as_str()), (Some("not ready"), Some("failed")), "{body}");
    assert_eq!(body["checks"]["jobs"], "ok", "{body}");
    assert!(!text.contains(state.to_str().unwrap()), "no path in the answer: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_run_pushes_its_metrics_with_the_credentials_of_the_url_and_never_shows_them() {
    use axum::http::HeaderMap;
    use std::sync::{Arc, Mutex};
    type Pushed = Arc<Mutex<Vec<(String, String, String)>>>;
    let pushed: Pushed = Arc::default();
    let kept = Arc::clone(&pushed);
    let app = axum::Router::new().route(
        "/metrics/job/{job}",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let kept = Arc::clone(&kept);
            async move {
                let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
                kept.lock().unwrap().push((header("authorization"), header("content-type"), body));
                if header("authorization").is_empty() { axum::http::StatusCode::UNAUTHORIZED } else { axum::http::StatusCode::OK }
            }
        }),
    );
    let (addr, _server) = serve(app).await;
    let h = Harness::new(4).await;
    let state = h.state.root().to_path_buf();
    let file = h.file.to_str().unwrap().to_string();
    let secret = "push-pass-83f1";
    let (with_auth, refused) = tokio::task::spawn_blocking(move || {
        let run = |url: String| {
            std::process::Command::new(env!("CARGO_BIN_EXE_syncline"))
                .arg("--state")
                .arg(&state)
                .args(["run", &file, "--metrics-push", &url])
                .output()
                .unwrap()
        };
        (run(format!("http://ops:{secret}@{addr}/metrics/job/syncline")), run(format!("http://{addr}/metrics/job/syncline")))
    })
    .await
    .unwrap();
    assert_eq!(with_auth.status.code(), Some(0), "{}", String::from_utf8_lossy(&with_auth.stderr));
    assert!(with_auth.stderr.is_empty(), "{}", String::from_utf8_lossy(&with_auth.stderr));
    let pushed = pushed.lock().unwrap().clone();
    assert_eq!(pushed.len(), 2);
    let (authorization, kind, body) = &pushed[0];
    use base64::Engine;
    assert_eq!(authorization, &format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("ops:{secret}"))));
    assert!(kind.starts_with("text/plain; version=0.0.4"), "{kind}");
    let metrics = scrape(body);
    assert_eq!(value(&metrics, "syncline_jobs_total", &[("synchronization", "pets"), ("status", "COMPLETED")]), Some(1.0), "{body}");
    assert!(!body.contains(secret));
    // A refused push is a warning beside a run that worked, naming the URL without credentials.
    assert_eq!(refused.status.code(), Some(0));
    let warning = String::from_utf8_lossy(&refused.stderr);
    assert!(warning.contains("metrics push to http://127.0.0.1:") && warning.contains("HTTP 401"), "{warning}");
    assert!(!String::from_utf8_lossy(&with_auth.stdout).contains(secret));
}
