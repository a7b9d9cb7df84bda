//! Machines for the tests of state shared between machines: each its own state directory and a copy
//! of one pipeline, whose program source prints `data/pets.ndjson` once the test opens its gate, so
//! that two machines can be held at the same point of a run.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

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
