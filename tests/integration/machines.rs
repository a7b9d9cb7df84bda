//! Machines for the tests of state shared between machines: each its own state directory and a copy
//! of one pipeline, whose program source prints `data/pets.ndjson` once the test opens its gate, so
//! that two machines can be held at the same point of a run; and the S3-compatible server they share.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{free_port, skipped};

/// moto's S3 server on a free port of loopback, stopped on drop.
pub struct S3 {
    child: Child,
    endpoint: String,
}

impl Drop for S3 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl S3 {
    pub async fn start(bucket: &str) -> Option<S3> {
        let default = std::env::var("HOME").map(|h| format!("{h}/.cache/syncline/moto/bin/moto_server")).unwrap_or_default();
        let program = std::env::var("SYNCLINE_MOTO_SERVER").unwrap_or(default);
        if !Path::new(&program).is_file() {
            skipped(&format!("no S3-compatible server: moto_server not at {program} (tests/run installs moto[server] from PyPI)"));
            return None;
        }
        let port = free_port();
        let child = Command::new(&program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server starts");
        let s3 = S3 { child, endpoint: format!("http://127.0.0.1:{port}") };
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match client.put(format!("{}/{bucket}", s3.endpoint)).send().await {
                Ok(response) if response.status().is_success() => return Some(s3),
                Ok(response) => panic!("moto refused the bucket: {}", response.status()),
                Err(_) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(100)).await,
                Err(error) => panic!("moto_server did not answer within 30 s: {error}"),
            }
        }
    }

    /// What a `syncline` process needs to reach this server.
    pub fn env(&self) -> [(&'static str, String); 4] {
        [
            ("AWS_ENDPOINT", self.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID", "test".into()),
            ("AWS_SECRET_ACCESS_KEY", "test".into()),
            ("AWS_REGION", "us-east-1".into()),
        ]
    }

    /// The store as the test reads it, to look at what the machines left.
    pub fn store(&self, bucket: &str) -> object_store::aws::AmazonS3 {
        object_store::aws::AmazonS3Builder::new()
            .with_endpoint(&self.endpoint)
            .with_allow_http(true)
            .with_bucket_name(bucket)
            .with_access_key_id("test")
            .with_secret_access_key("test")
            .with_region("us-east-1")
            .build()
            .expect("the test's S3 client")
    }
}

pub struct Machine {
    pub dir: PathBuf,
}

impl Machine {
    /// A machine under `root/name` whose synchronization `sync` writes into `target` (a YAML map).
    pub fn new(root: &Path, name: &str, target: &str) -> Machine {
        use std::os::unix::fs::PermissionsExt;
        let dir = root.join(name);
        std::fs::create_dir_all(dir.join("data")).unwrap();
        let script = dir.join("data/pets.sh");
        std::fs::write(&script, "#!/bin/sh\ntouch started\nwhile [ ! -e go ]; do sleep 0.02; done\ncat pets.ndjson\n").unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let pipeline = format!(
            r#"
sources:
  pets: {{ type: command, command: [./pets.sh], workingDir: data }}
mappings:
  copy: {{ passThrough: true }}
registers:
  r:
    schemas:
      rows: {{ type: object }}
synchronizations:
  sync:
    source: pets
    sourceConfig: {{ idPosition: id }}
    mapping: copy
    target: {target}
"#
        );
        std::fs::write(dir.join("pipeline.yaml"), pipeline).unwrap();
        Machine { dir }
    }

    pub fn pets(&self, ids: std::ops::RangeInclusive<u32>) {
        let lines: String = ids.map(|id| format!("{{\"id\":{id},\"name\":\"pet {id}\"}}\n")).collect();
        std::fs::write(self.dir.join("data/pets.ndjson"), lines).unwrap();
    }

    /// Opens or closes the gate the source waits at (and forgets that it was reached).
    pub fn gate(&self, open: bool) {
        let (go, started) = (self.dir.join("data/go"), self.dir.join("data/started"));
        let _ = std::fs::remove_file(started);
        if open {
            std::fs::write(go, "").unwrap()
        } else {
            let _ = std::fs::remove_file(go);
        }
    }

    /// Whether a run's source has reached the gate (its contracts and lease are taken by then).
    pub fn started(&self) -> bool {
        self.dir.join("data/started").exists()
    }

    /// Starts `syncline --state DIR/state [global] run --json DIR/pipeline.yaml` with `env`.
    pub fn spawn(&self, global: &[&str], env: &[(&str, String)]) -> Child {
        Command::new(env!("CARGO_BIN_EXE_syncline"))
            .arg("--state")
            .arg(self.dir.join("state"))
            .args(global)
            .args(["run", "--json"])
            .arg(self.dir.join("pipeline.yaml"))
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("syncline starts")
    }
}

/// The job a finished `syncline run --json` printed, or its error output when it printed none.
pub fn outcome(child: Child) -> Result<Value, String> {
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    match stdout.lines().last() {
        Some(line) => Ok(serde_json::from_str(line).unwrap()),
        None => Err(String::from_utf8_lossy(&out.stderr).into_owned()),
    }
}

/// The job a finished `syncline run --json` printed.
pub fn job(child: Child) -> Value {
    outcome(child).unwrap_or_else(|stderr| panic!("no job printed; stderr: {stderr}"))
}

/// (created, updated, unchanged, deleted) of a printed job.
pub fn counts(job: &Value) -> (u64, u64, u64, u64) {
    let n = |k: &str| job[k].as_u64().unwrap();
    (n("created"), n("updated"), n("unchanged"), n("deleted"))
}

pub async fn wait_for(what: &str, ready: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
