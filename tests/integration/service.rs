//! Service mode over real HTTP: the seed's curl flow against a running service and the pet-store
//! fixture, jobs in the background (409, cancel), restarts, keys, secrets, the scheduler.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use syncline::config::Secret;
use syncline::fixture::{self, Fixture};
use syncline::service::{self, ServeOptions};
use syncline::store::StateDir;
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;

const KEY: &str = "test-key-9f8e7d";

pub struct Service {
    url: String,
    stop: CancellationToken,
    handle: tokio::task::JoinHandle<Result<(), service::ServiceError>>,
    http: reqwest::Client,
}

impl Service {
    pub async fn start(state: &TempDir, files: Vec<std::path::PathBuf>) -> Service {
        let state = StateDir::open(state.path()).unwrap();
        let options = ServeOptions {
            listen: "127.0.0.1:0".parse().unwrap(),
            files,
            api_keys: vec![Secret::new(KEY)],
            tick: Duration::from_millis(100),
            public_url: None,
            server: Default::default(),
            front: Some(syncline::console::mount),
            allow_programs: false,
        };
        let (address, stop, handle) = service::spawn(state, options).await.unwrap();
        Service { url: format!("http://{address}"), stop, handle, http: reqwest::Client::new() }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub async fn stop(self) {
        self.stop.cancel();
        self.handle.await.unwrap().unwrap();
    }

    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.url)).header("x-api-key", KEY);
        if let Some(body) = body {
            request = request.header("content-type", "application/json").body(body.to_string());
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(reqwest::Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    /// Polls a job until it ends.
    pub async fn finished(&self, job: &str) -> Value {
        super::common::job_ended(&self.http, &self.url, KEY, job).await
    }
}

/// The seed's three objects plus a register, created over the API.
async fn define(service: &Service, fixture: &Fixture, extra: Value) {
    let (status, source) = service
        .post(
            "/api/sources",
            json!({ "name": "Swagger Pet Store", "type": "api", "location": fixture.base_url(), "auth": "none", "isEnabled": true }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{source}");
    assert_eq!(source["id"], "swagger-pet-store");
    let mapping =
        json!({ "name": "Pet to dataset", "mapping": { "title": "{{ name }}", "category": "{{ category.name }}", "status": "Published" } });
    assert_eq!(service.post("/api/mappings", mapping).await.0, StatusCode::CREATED);
    let schema = json!({ "type": "object", "properties": { "title": { "type": "string" } }, "required": ["title"] });
    assert_eq!(service.post("/api/registers", json!({ "name": "dcat", "schemas": { "dataset": schema } })).await.0, StatusCode::CREATED);
    let mut sync = json!({
        "name": "Pet store to datasets", "sourceId": "swagger-pet-store", "sourceType": "api", "sourceTargetMapping": "pet-to-dataset",
        "sourceConfig": { "endpoint": "/feed/page", "idPosition": "id", "resultsPosition": "data.items", "pagination": { "type": "page", "sizeParam": "size", "size": 5 } },
        "targetType": "register/schema", "targetId": "dcat/dataset"
    });
    for (k, v) in extra.as_object().unwrap() {
        sync[k] = v.clone();
    }
    let (status, body) = service.post("/api/synchronizations", sync).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_curl_flow_runs_polls_and_reruns_unchanged() {
    let fixture = Fixture::start(fixture::pets(12)).await.unwrap();
    let state = tempfile::tempdir().unwrap();
    let service = Service::start(&state, vec![]).await;
    define(&service, &fixture, json!({})).await;

    let (_, source_test) = service.post("/api/sources/swagger-pet-store/test", json!({})).await;
    assert_eq!(source_test["ok"], true, "the source is tested on the endpoint its synchronization reads: {source_test}");
    let (status, tested) =
        service.post("/api/mappings/test", json!({ "mapping": { "title": "{{ name }}" }, "inputObject": { "name": "Bella" } })).await;
    assert_eq!((status, tested["result"]["title"].as_str()), (StatusCode::OK, Some("Bella")));
    let (status, broken) = service.post("/api/mappings/test", json!({ "mapping": { "title": "{{ name | }}" }, "inputObject": {} })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(broken["error"].as_str().unwrap().contains("title"), "{broken}");

    let (status, job) = service.post("/api/synchronizations/pet-store-to-datasets/run", json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{job}");
    assert_eq!(job["status"], "PENDING");
    let done = service.finished(job["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "COMPLETED", "{done}");
    assert_eq!(done["entities_inserted"], 12);
    assert!(done["duration_seconds"].as_f64().is_some());

    let (_, job) = service.post("/api/synchronizations/pet-store-to-datasets/run", json!({})).await;
    let again = service.finished(job["id"].as_str().unwrap()).await;
    assert_eq!((again["entities_inserted"].as_u64(), again["entities_unchanged"].as_u64()), (Some(0), Some(12)), "{again}");

    let (_, objects) = service.get("/api/registers/dcat/schemas/dataset/objects?limit=5&status=Published").await;
    assert_eq!((objects["total"].as_u64(), objects["results"].as_array().unwrap().len()), (Some(12), 5));
    let (_, none) = service.get("/api/registers/dcat/schemas/dataset/objects?status=Withdrawn").await;
    assert_eq!(none["total"], 0);
    let id = objects["results"][0]["id"].as_str().unwrap().to_string();
    let (_, object) = service.get(&format!("/api/objects/{id}")).await;
    assert_eq!(object["audit"][0]["action"], "create", "{object}");

    let (_, contracts) = service.get("/api/synchronizations/pet-store-to-datasets/contracts?limit=3").await;
    assert_eq!((contracts["total"].as_u64(), contracts["results"].as_array().unwrap().len()), (Some(12), 3));
    let origin = contracts["results"][0]["origin_id"].as_str().unwrap().to_string();
    let status =
        service.call(reqwest::Method::DELETE, &format!("/api/synchronizations/pet-store-to-datasets/contracts/{origin}"), None).await.0;
    assert_eq!(status, StatusCode::NO_CONTENT);

    let (_, dashboard) = service.get("/api/dashboard").await;
    assert_eq!(
        (dashboard["sources"].as_u64(), dashboard["synchronizations"].as_u64(), dashboard["contracts"].as_u64()),
        (Some(1), Some(1), Some(11))
    );
    assert_eq!(dashboard["jobs"]["COMPLETED"], 2);
    let (_, logs) = service.get(&format!("/api/jobs/{}/logs", done["id"].as_str().unwrap())).await;
    assert!(logs["logs"].as_array().unwrap().iter().any(|l| l["message"].as_str().unwrap().contains("created 12")), "{logs}");
    let (_, openapi) = service.get("/api/openapi.json").await;
    assert!(openapi["paths"]["/api/synchronizations/{id}/run"].is_object(), "{openapi}");
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_bad_bodies_and_write_only_secrets() {
    let state = tempfile::tempdir().unwrap();
    let service = Service::start(&state, vec![]).await;
    let http = reqwest::Client::new();
    let health = http.get(format!("{}/api/health", service.url)).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    for key in [None, Some("wrong")] {
        let mut request = http.get(format!("{}/api/sources", service.url));
        if let Some(key) = key {
            request = request.header("x-api-key", key);
        }
        assert_eq!(request.send().await.unwrap().status(), StatusCode::UNAUTHORIZED);
    }
    let bad = http
        .post(format!("{}/api/sources", service.url))
        .header("x-api-key", KEY)
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert!(bad.text().await.unwrap().contains("error"));
    let huge = http
        .post(format!("{}/api/sources", service.url))
        .header("x-api-key", KEY)
        .header("content-type", "application/json")
        .body(vec![b' '; 3 << 20])
        .send()
        .await
        .unwrap();
    assert_eq!(huge.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let (status, invalid) =
        service.post("/api/sources", json!({ "name": "x", "type": "api", "location": "ftp://nope", "lokation": 1 })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(invalid["errors"].to_string().contains("lokation"), "{invalid}");
    // A program as a source would let any key holder run anything here: refused unless the service
    // was started with --allow-programs.
    for kind in ["command", "airbyte"] {
        let (status, refused) = service.post("/api/sources", json!({ "name": "Shell", "type": kind, "command": ["sh", "-c", "id"] })).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
        assert!(refused.to_string().contains("--allow-programs"), "{refused}");
    }
    let sync = json!({ "name": "Out", "source": "x", "mapping": "m", "target": { "type": "command", "command": ["sh"] } });
    let (status, refused) = service.post("/api/synchronizations", sync).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert!(refused.to_string().contains("a `command` target runs a program"), "{refused}");

    let source = json!({ "name": "Vault", "type": "api", "location": "http://127.0.0.1:9/api", "auth": { "type": "basic", "username": "u", "password": "hunter2-secret" } });
    let (status, created) = service.post("/api/sources", source).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["auth"]["password"], "***");
    // A client that reads, edits and saves back keeps the secret it never saw.
    let mut edited = service.get("/api/sources/vault").await.1;
    edited["headers"] = json!({ "X-Team": "data" });
    let (status, saved) = service.call(reqwest::Method::PUT, "/api/sources/vault", Some(edited)).await;
    assert_eq!(status, StatusCode::OK, "{saved}");
    let db = rusqlite::Connection::open(state.path().join("catalog.db")).unwrap();
    let stored: String = db.query_row("SELECT body FROM definitions WHERE id = 'vault'", [], |r| r.get(0)).unwrap();
    let stored: Value = serde_json::from_str(&stored).unwrap();
    assert!(
        stored["headers"]["X-Team"] == "data" && stored["auth"]["password"].as_str().unwrap().starts_with("enc:v1:"),
        "the secret is kept, sealed, beside the edit: {stored}"
    );
    assert!(!stored.to_string().contains("hunter2"), "no secret in the clear at rest");
    let (_, tested) = service.post("/api/sources/vault/test", json!({})).await;
    assert_eq!(tested["ok"], false);
    for path in ["/api/sources", "/api/sources/vault", "/api/dashboard"] {
        assert!(!service.get(path).await.1.to_string().contains("hunter2"), "{path} shows the secret");
    }
    assert!(!tested.to_string().contains("hunter2"));
    service.stop().await;
}

/// Waits until the fixture has been asked `n` requests in all (a run is under way), not a fixed time.
async fn requested(fixture: &Fixture, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while fixture.store.requests.load(Ordering::SeqCst) < n {
        assert!(Instant::now() < deadline, "the run never reached the source");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_run_at_a_time_cancel_restart_and_orphans() {
    let fixture = Fixture::start(fixture::pets(200)).await.unwrap();
    let state = tempfile::tempdir().unwrap();
    let service = Service::start(&state, vec![]).await;
    define(&service, &fixture, json!({})).await;
    fixture.store.faults.delay_ms.store(50, Ordering::SeqCst);
    let (_, job) = service.post("/api/synchronizations/pet-store-to-datasets/run", json!({})).await;
    let id = job["id"].as_str().unwrap().to_string();
    let (status, busy) = service.post("/api/synchronizations/pet-store-to-datasets/run", json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{busy}");
    // Cancelled mid-run: once the source has answered a request.
    requested(&fixture, 1).await;
    let (status, cancelling) = service.post(&format!("/api/jobs/{id}/cancel"), json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert!(["CANCELLING", "CANCELLED"].contains(&cancelling["status"].as_str().unwrap()), "{cancelling}");
    let cancelled = service.finished(&id).await;
    assert_eq!(cancelled["status"], "CANCELLED", "{cancelled}");
    assert!(cancelled["entities_inserted"].as_u64().unwrap() < 200);

    // Shutting down cancels a running job cleanly, and says so in its record.
    let (_, job) = service.post("/api/synchronizations/pet-store-to-datasets/run", json!({})).await;
    let running = job["id"].as_str().unwrap().to_string();
    requested(&fixture, fixture.store.requests.load(Ordering::SeqCst) + 1).await;
    let stopping = Instant::now();
    service.stop().await;
    assert!(stopping.elapsed() < Duration::from_secs(10), "shutdown took {:?}", stopping.elapsed());
    let jobs = StateDir::open(state.path()).unwrap().jobs().unwrap();
    assert_eq!(jobs.get(&running).unwrap().status, syncline::store::JobStatus::Cancelled);

    // A restart keeps the definitions; a job a dead process left RUNNING is marked FAILED.
    let orphan = jobs.create("pet-store-to-datasets", syncline::store::JobStatus::Running, false, false).unwrap();
    drop(jobs);
    let service = Service::start(&state, vec![]).await;
    let (_, orphaned) = service.get(&format!("/api/jobs/{}", orphan.id)).await;
    assert_eq!(orphaned["status"], "FAILED", "{orphaned}");
    let (_, syncs) = service.get("/api/synchronizations").await;
    assert_eq!(syncs["total"], 1);

    // The next run converges: every pet once.
    fixture.store.faults.delay_ms.store(0, Ordering::SeqCst);
    let (_, job) = service.post("/api/synchronizations/pet-store-to-datasets/run", json!({})).await;
    let done = service.finished(job["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "COMPLETED", "{done}");
    let (_, objects) = service.get("/api/registers/dcat/schemas/dataset/objects?limit=1").await;
    assert_eq!(objects["total"], 200);
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_interval_runs_on_time_and_never_twice_at_once() {
    let fixture = Fixture::start(fixture::pets(5)).await.unwrap();
    let state = tempfile::tempdir().unwrap();
    let service = Service::start(&state, vec![]).await;
    define(&service, &fixture, json!({ "schedule": "every 1s" })).await;
    let (_, sync) = service.get("/api/synchronizations/pet-store-to-datasets").await;
    assert!(sync["next_run"].is_string(), "{sync}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, jobs) = service.get("/api/jobs?synchronization=pet-store-to-datasets&status=COMPLETED").await;
        if jobs["results"].as_array().unwrap().len() >= 2 {
            break;
        }
        assert!(Instant::now() < deadline, "the schedule did not run twice: {jobs}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, jobs) = service.get("/api/jobs?synchronization=pet-store-to-datasets").await;
    let times: Vec<chrono::DateTime<chrono::Utc>> =
        jobs["results"].as_array().unwrap().iter().map(|j| j["created_at"].as_str().unwrap().parse().unwrap()).collect();
    assert!(times.windows(2).all(|w| (w[0] - w[1]).num_milliseconds() >= 900), "runs at least the interval apart: {times:?}");
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipeline_files_are_served_read_only() {
    let state = tempfile::tempdir().unwrap();
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines/petstore.yaml");
    let service = Service::start(&state, vec![file]).await;
    let (_, syncs) = service.get("/api/synchronizations").await;
    assert_eq!(syncs["results"][0]["id"], "pets-to-datasets", "{syncs}");
    assert!(syncs["results"][0]["file"].as_str().unwrap().ends_with("petstore.yaml"));
    let (_, register) = service.get("/api/registers/dcat").await;
    assert!(register["schemas"]["dataset"]["properties"]["title"].is_object(), "the schema file is read in: {register}");
    let (status, refused) = service.call(reqwest::Method::DELETE, "/api/sources/petstore", None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    assert!(refused["error"].as_str().unwrap().contains("petstore.yaml"), "{refused}");
    service.stop().await;
}
