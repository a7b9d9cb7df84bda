//! The harness: a fixture server, a pipeline file written for it, and a state directory.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{Value, json};
use syncline::config::Pipeline;
use syncline::fixture::{self, Fixture};
use syncline::pipeline::{self, Progress, RunOptions, RunReport};
use syncline::store::StateDir;
use tempfile::TempDir;

pub const SCHEMA: &str = r#"{
  "type": "object",
  "properties": {
    "title": {"type": "string", "minLength": 1},
    "category": {"type": "string"},
    "status": {"enum": ["available", "pending", "sold"]}
  },
  "required": ["title"],
  "additionalProperties": false
}"#;

/// The synchronization under test, as YAML lines under `sourceConfig` and beside it.
pub struct Sync {
    pub source_config: String,
    pub extra: String,
    pub mapping: String,
    pub source_extra: String,
}

impl Default for Sync {
    fn default() -> Self {
        Sync {
            source_config: r#"{ endpoint: "/feed/page", idPosition: id, resultsPosition: data.items, pagination: { type: page, sizeParam: size, size: 7 } }"#.into(),
            extra: String::new(),
            mapping: r#"{ title: "{{ name }}", category: "{{ category.name }}", status: "{{ status }}" }"#.into(),
            source_extra: String::new(),
        }
    }
}

pub struct Harness {
    pub fixture: Fixture,
    pub dir: TempDir,
    pub state: StateDir,
    pub file: PathBuf,
}

impl Harness {
    pub async fn new(pets: usize) -> Harness {
        Self::with(pets, Sync::default()).await
    }

    pub async fn with(pets: usize, sync: Sync) -> Harness {
        let fixture = Fixture::start(fixture::pets(pets)).await.expect("fixture starts");
        let dir = tempfile::tempdir().expect("temp dir");
        let state = StateDir::open(&dir.path().join("state")).expect("state dir");
        let file = dir.path().join("pipeline.yaml");
        let harness = Harness { fixture, dir, state, file };
        harness.write(&sync);
        harness
    }

    /// (Re)writes the pipeline file.
    pub fn write(&self, sync: &Sync) {
        std::fs::write(self.dir.path().join("pet.schema.json"), SCHEMA).expect("schema written");
        let text = format!(
            r#"
sources:
  pets:
    type: api
    location: "{url}"
    retries: {{ initialBackoff: 10ms, maxBackoff: 50ms }}
{source_extra}
mappings:
  pet:
    mapping: {mapping}
registers:
  shop:
    schemas:
      pet: {{ $ref: pet.schema.json }}
synchronizations:
  pets:
    source: pets
    sourceConfig: {source_config}
    mapping: pet
    target: {{ type: register, register: shop, schema: pet }}
{extra}
"#,
            url = self.fixture.base_url(),
            source_extra = indent(&sync.source_extra, 4),
            mapping = sync.mapping,
            source_config = sync.source_config,
            extra = indent(&sync.extra, 4),
        );
        std::fs::write(&self.file, text).expect("pipeline written");
    }

    pub fn pipeline(&self) -> Pipeline {
        Pipeline::load(&self.file).unwrap_or_else(|e| panic!("pipeline loads:\n{e}"))
    }

    pub async fn run(&self) -> RunReport {
        self.run_with(RunOptions::default()).await
    }

    pub async fn run_with(&self, options: RunOptions) -> RunReport {
        pipeline::run(&self.pipeline(), "pets", &self.state, options, Arc::new(Progress::default())).await.expect("job recorded")
    }

    /// The register's objects of the synchronization, by origin id.
    pub fn register(&self) -> BTreeMap<String, Value> {
        self.state.register().expect("register").objects_of("pets").expect("objects").into_iter().collect()
    }

    /// What the register must hold: every pet of the fixture, mapped.
    pub fn expected(&self) -> BTreeMap<String, Value> {
        self.fixture
            .store
            .pets
            .read()
            .expect("pets")
            .iter()
            .map(|p| (p["id"].to_string(), json!({"title": p["name"], "category": p["category"]["name"], "status": p["status"]})))
            .collect()
    }
}

fn indent(text: &str, by: usize) -> String {
    text.lines().map(|l| format!("{}{l}", " ".repeat(by))).collect::<Vec<_>>().join("\n")
}

/// `(found, created, updated, unchanged, deleted, failed)` of a report.
pub fn counts(report: &RunReport) -> (u64, u64, u64, u64, u64, u64) {
    let c = report.job.counts;
    (c.found, c.created, c.updated, c.unchanged, c.deleted, c.failed)
}

/// Serves `app` on a free loopback port in the background, for tests that need an HTTP peer of their
/// own; its address, and the task to abort when done.
pub async fn serve(app: axum::Router) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, task)
}

/// A test that cannot reach a service it needs (a database, sshd, openssl) says so: in CI (`CI` set)
/// it fails, so a missing service never passes for a working one; elsewhere it is reported as skipped,
/// with the test's name and why, on stderr and in `$CARGO_TARGET_TMPDIR/syncline-skipped.txt`, which
/// `tests/run` lists at the end.
#[track_caller]
pub fn skipped(why: &str) {
    let test = std::thread::current().name().unwrap_or("a test").to_string();
    if std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false") {
        panic!("{test} cannot run in CI: {why}");
    }
    eprintln!("SKIPPED {test}: {why}");
    let list = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("syncline-skipped.txt");
    let line = format!("{test}: {why}\n");
    let _ = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(list)
        .and_then(|mut f| std::io::Write::write_all(&mut f, line.as_bytes()));
}

/// `GET`/`POST` `{url}{path}` with the API key `key`: the answer as JSON (`null` when it is not JSON).
pub async fn keyed_json(http: &reqwest::Client, method: reqwest::Method, url: &str, path: &str, key: &str) -> Value {
    let text = http.request(method, format!("{url}{path}")).header("x-api-key", key).send().await.unwrap().text().await.unwrap();
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// Polls `GET {url}/api/jobs/{id}` until the job has ended; its record.
pub async fn job_ended(http: &reqwest::Client, url: &str, key: &str, id: &str) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let job = keyed_json(http, reqwest::Method::GET, url, &format!("/api/jobs/{id}"), key).await;
        if ["COMPLETED", "FAILED", "CANCELLED"].contains(&job["status"].as_str().unwrap_or("")) {
            return job;
        }
        assert!(std::time::Instant::now() < deadline, "the job never ended: {job}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// A port nothing listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A `syncline serve` process, killed when dropped; its output goes to `serve.log`
/// and `serve.err` in the state's parent directory.
pub struct ServeProcess {
    pub url: String,
    pub process: std::process::Child,
}

impl ServeProcess {
    /// Starts `syncline --state STATE serve [args] --listen 127.0.0.1:PORT PIPELINE` with `env` set,
    /// and waits until it answers `/api/health`.
    pub async fn start(
        state: &std::path::Path,
        pipeline: &std::path::Path,
        port: u16,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> ServeProcess {
        let logs = state.parent().unwrap();
        let append = |name: &str| std::fs::OpenOptions::new().create(true).append(true).open(logs.join(name)).unwrap();
        let process = std::process::Command::new(env!("CARGO_BIN_EXE_syncline"))
            .arg("--state")
            .arg(state)
            .arg("serve")
            .args(args)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .arg(pipeline)
            .envs(env.iter().copied())
            .stdout(append("serve.log"))
            .stderr(append("serve.err"))
            .spawn()
            .unwrap();
        let url = format!("http://127.0.0.1:{port}");
        let mut serve = ServeProcess { url, process };
        let http = reqwest::Client::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while http.get(format!("{}/api/health", serve.url)).send().await.is_err() {
            if let Ok(Some(status)) = serve.process.try_wait() {
                let log = std::fs::read_to_string(logs.join("serve.err")).unwrap_or_default();
                panic!("the service exited ({status}) before it answered:\n{log}");
            }
            assert!(std::time::Instant::now() < deadline, "the service at {} never came up", serve.url);
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        serve
    }

    /// Stops it at once, as a crash would.
    pub fn kill(mut self) {
        self.process.kill().unwrap();
        self.process.wait().unwrap();
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// Writes `dir/pipeline.yaml` (and the pet schema beside it): the fixture's paged feed at `pets` into
/// register `shop`, schema `pet`, as synchronization `pets`, with `extra` lines added to it.
pub fn pet_pipeline(dir: &std::path::Path, pets: &str, extra: &str) -> PathBuf {
    std::fs::write(dir.join("pet.schema.json"), SCHEMA).unwrap();
    let file = dir.join("pipeline.yaml");
    let text = format!(
        r#"
sources:
  pets: {{ type: api, location: "{pets}" }}
mappings:
  pet: {{ mapping: {{ title: "{{{{ name }}}}", category: "{{{{ category.name }}}}", status: "{{{{ status }}}}" }} }}
registers:
  shop: {{ schemas: {{ pet: {{ $ref: pet.schema.json }} }} }}
synchronizations:
  pets:
    source: pets
    sourceConfig: {{ endpoint: "/feed/page", idPosition: id, resultsPosition: data.items, pagination: {{ type: page, sizeParam: size, size: 4 }} }}
    mapping: pet
    target: {{ type: register, register: shop, schema: pet }}
    {extra}
"#
    );
    std::fs::write(&file, text).unwrap();
    file
}
