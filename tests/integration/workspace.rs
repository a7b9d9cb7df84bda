//! A pipeline of one source, a pass-through mapping and a schema-free register, in a temporary
//! directory: what the connector tests share. Each test writes the source and its `sourceConfig`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;
use syncline::config::Pipeline;
use syncline::pipeline::{self, Progress, RunOptions, RunReport};
use syncline::store::StateDir;
use tempfile::TempDir;

pub struct Workspace {
    pub dir: TempDir,
    pub state: StateDir,
    pub file: PathBuf,
}

impl Workspace {
    pub fn new() -> Workspace {
        let dir = tempfile::tempdir().expect("temp dir");
        let state = StateDir::open(&dir.path().join("state")).expect("state dir");
        let file = dir.path().join("pipeline.yaml");
        Workspace { dir, state, file }
    }

    /// A folder of the workspace for source files.
    pub fn data(&self) -> PathBuf {
        let path = self.dir.path().join("data");
        std::fs::create_dir_all(&path).expect("data dir");
        path
    }

    /// Writes the pipeline: `source` and `source_config` are YAML flow maps.
    pub fn write(&self, source: &str, source_config: &str) {
        self.write_to(source, source_config, "{ type: register, register: r, schema: rows }", "")
    }

    /// Writes the pipeline with its own `target` (a YAML flow map) and extra synchronization lines.
    pub fn write_to(&self, source: &str, source_config: &str, target: &str, extra: &str) {
        let text = format!(
            r#"
sources:
  src: {source}
mappings:
  copy:
    passThrough: true
registers:
  r:
    schemas:
      rows: {{ type: object }}
synchronizations:
  sync:
    source: src
    sourceConfig: {source_config}
    mapping: copy
    target: {target}
    maxDeleteShare: 1
    {extra}
"#
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
        pipeline::run(&self.pipeline(), "sync", &self.state, options, Arc::new(Progress::default())).await.expect("job recorded")
    }

    /// The register's objects, by origin id.
    pub fn objects(&self) -> BTreeMap<String, Value> {
        self.state.register().expect("register").objects_of("sync").expect("objects").into_iter().collect()
    }
}

/// Writes `text` to `dir/name`, creating folders, with its modification time `seconds_ago` in the past
/// (so incremental runs can tell files apart without sleeping).
pub fn write_file(dir: &Path, name: &str, bytes: &[u8], seconds_ago: u64) {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("folders");
    std::fs::write(&path, bytes).expect("file written");
    let when = std::time::SystemTime::now() - std::time::Duration::from_secs(seconds_ago);
    std::fs::File::options().write(true).open(&path).and_then(|f| f.set_modified(when)).expect("mtime set");
}

/// A report that must have completed, with its warnings shown when it did not.
pub fn completed(report: &RunReport) {
    assert_eq!(
        report.job.status.as_str(),
        "COMPLETED",
        "job: {:?} [{:?}] warnings: {:?}",
        report.job.error,
        report.job.error_category,
        report.warnings
    );
}

/// Kills `child` with SIGKILL (no cleanup runs) once `written()` reaches `at_least`, within a minute.
pub async fn kill_once_written(child: &mut std::process::Child, written: impl Fn() -> usize, at_least: usize) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while written() < at_least {
        assert!(std::time::Instant::now() < deadline, "the run never wrote anything");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    child.kill().expect("killed");
    child.wait().unwrap();
}

/// Starts `syncline run FILE` as a process of its own (to kill it part-way).
pub fn spawn_run(state: &Path, file: &Path) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_syncline"))
        .arg("--state")
        .arg(state)
        .arg("run")
        .arg(file)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("syncline starts")
}

/// What every file server's source must do, once `a.csv` (rows 1, 2) and a second file holding
/// `{"id": 3, "name": "Kit"}` are in its folder: create all, re-run unchanged, then an edit of `a.csv`
/// that changes row 1 and drops row 2 updates one and deletes one.
pub async fn create_rerun_edit(ws: &Workspace, data: &Path) {
    let first = ws.run().await;
    completed(&first);
    assert_eq!(crate::common::counts(&first), (3, 3, 0, 0, 0, 0));
    assert_eq!(ws.objects()["3"], serde_json::json!({"id": 3, "name": "Kit"}));
    assert_eq!(crate::common::counts(&ws.run().await), (3, 0, 0, 3, 0, 0));
    write_file(data, "exports/a.csv", b"id,name\n1,Rexy\n", 600);
    let edited = ws.run().await;
    completed(&edited);
    assert_eq!(crate::common::counts(&edited), (2, 0, 1, 1, 1, 0));
}
