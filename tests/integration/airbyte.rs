//! The airbyte source against real connector programs: `fixtures/airbyte/scripted_source.py`, a small
//! protocol-conformant connector whose config says what it does (records, state, logs, an error
//! trace, a non-zero exit, a hang), and the published `airbyte-source-faker` from PyPI, which
//! `tests/run` installs into a virtual environment.

use std::path::PathBuf;

use serde_json::{Value, json};
use syncline::config::Pipeline;
use syncline::sources;

use crate::common::{counts, skipped};
use crate::workspace::{Workspace, completed};

fn scripted() -> Option<String> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/airbyte/scripted_source.py");
    let python = std::process::Command::new("python3").arg("--version").output().is_ok_and(|o| o.status.success());
    if !python {
        skipped("python3 is not installed (the scripted Airbyte connector is a Python program)");
        return None;
    }
    Some(script.display().to_string())
}

/// A workspace whose source is the scripted connector with `config`, read in `mode`.
fn workspace(script: &str, config: Value, mode: &str, extra: &str) -> Workspace {
    let ws = Workspace::new();
    let source = format!("{{ type: airbyte, command: [python3, \"{script}\"], config: {config}{extra} }}");
    ws.write(&source, &format!("{{ stream: pets, syncMode: {mode} }}"));
    ws
}

fn pets(ids: &[u64]) -> Value {
    Value::Array(ids.iter().map(|id| json!({"id": id, "name": format!("pet {id}")})).collect())
}

fn logs(ws: &Workspace, job: &str) -> Vec<String> {
    ws.state.jobs().unwrap().logs(job).unwrap().into_iter().map(|l| format!("{}: {}", l.level, l.message)).collect()
}

#[tokio::test]
async fn records_of_the_stream_ids_from_its_primary_key_logs_into_the_job_log() {
    let Some(script) = scripted() else { return };
    let ws = workspace(&script, json!({"records": pets(&[1, 2, 3]), "say": "careful"}), "full_refresh", "");
    let first = ws.run().await;
    completed(&first);
    assert_eq!(counts(&first), (3, 3, 0, 0, 0, 0), "only the synchronization's stream");
    assert_eq!(ws.objects()["2"], json!({"id": 2, "name": "pet 2"}), "idPosition from the stream's primary key");
    let log = logs(&ws, &first.job.id);
    for line in ["warn: careful", "info: a line that is not a message", "info: stderr: progress on stderr", "info: given state: null"] {
        assert!(log.iter().any(|l| l == line), "{line} in {log:?}");
    }
    assert_eq!(counts(&ws.run().await), (3, 0, 0, 3, 0, 0), "unchanged");
    let config = json!({"records": pets(&[1, 2])});
    let fewer = workspace(&script, config, "full_refresh", "");
    std::fs::copy(&fewer.file, &ws.file).unwrap();
    assert_eq!(counts(&ws.run().await), (2, 0, 0, 2, 1, 0), "a complete full refresh deletes what is gone");
}

#[tokio::test]
async fn state_goes_back_to_the_connector_after_a_complete_run_only() {
    let Some(script) = scripted() else { return };
    let ws = workspace(&script, json!({"records": pets(&[1, 2])}), "incremental", "");
    completed(&ws.run().await);
    // A failed run: its state is not kept.
    let failing = workspace(&script, json!({"records": pets(&[1, 2, 3]), "fail": "exit"}), "incremental", "");
    std::fs::copy(&failing.file, &ws.file).unwrap();
    let failed = ws.run().await;
    assert_eq!(failed.job.status.as_str(), "FAILED");
    assert!(failed.job.error.as_deref().unwrap_or_default().contains("exited with status 3"), "{:?}", failed.job.error);
    let next = workspace(&script, json!({"records": pets(&[2, 3, 4])}), "incremental", "");
    std::fs::copy(&next.file, &ws.file).unwrap();
    let report = ws.run().await;
    completed(&report);
    let given =
        r#"info: given state: [{"type": "STREAM", "stream": {"stream_descriptor": {"name": "pets"}, "stream_state": {"max_id": 2}}}]"#;
    assert!(logs(&ws, &report.job.id).iter().any(|l| l == given), "{:?}", logs(&ws, &report.job.id));
    // 3 was written by the failed run (its state was not kept, so it comes again): unchanged now.
    assert_eq!(counts(&report), (2, 1, 0, 1, 0, 0), "3 and 4 only, and 1 is not deleted by an incremental read");
    assert_eq!(ws.objects().len(), 4);
}

#[tokio::test]
async fn an_error_trace_or_a_hang_fails_the_run_and_deletes_nothing() {
    let Some(script) = scripted() else { return };
    let ws = workspace(&script, json!({"records": pets(&[1, 2])}), "full_refresh", "");
    completed(&ws.run().await);
    let traced = workspace(&script, json!({"records": pets(&[1]), "fail": "trace"}), "full_refresh", "");
    std::fs::copy(&traced.file, &ws.file).unwrap();
    let report = ws.run().await;
    assert_eq!(report.job.status.as_str(), "FAILED");
    assert!(report.job.error.as_deref().unwrap_or_default().contains("the upstream said no (system_error)"), "{:?}", report.job.error);
    assert_eq!(ws.objects().len(), 2, "nothing deleted");
    let hanging = workspace(&script, json!({"records": pets(&[1, 2]), "fail": "hang"}), "full_refresh", ", timeout: 3s");
    std::fs::copy(&hanging.file, &ws.file).unwrap();
    let report = ws.run().await;
    assert_eq!(report.job.error_category.as_deref(), Some("timeout"), "{:?}", report.job.error);
    assert_eq!(ws.objects().len(), 2, "nothing deleted");
}

/// A message cut off midway and a record nested past any sane depth each fail as a record, never the
/// process; with unreadable records nothing is deleted.
#[tokio::test]
async fn malformed_and_deep_messages_fail_as_records_and_block_deletes() {
    let Some(script) = scripted() else { return };
    let ws = workspace(&script, json!({"records": pets(&[1, 2])}), "full_refresh", "");
    completed(&ws.run().await);
    let noisy = workspace(&script, json!({"records": pets(&[1]), "noise": true}), "full_refresh", "");
    std::fs::copy(&noisy.file, &ws.file).unwrap();
    let report = ws.run().await;
    completed(&report);
    assert_eq!(counts(&report), (3, 0, 0, 1, 0, 2), "two unreadable messages fail alone");
    let errors = ws.state.jobs().unwrap().errors(&report.job.id, 10).unwrap();
    assert!(errors.iter().all(|e| e.message.contains("an unreadable Airbyte message")), "{errors:?}");
    assert_eq!(ws.objects().len(), 2, "nothing deleted after unreadable records");
}

#[tokio::test]
async fn check_is_test_connection_discover_lists_streams_and_the_config_stays_secret() {
    let Some(script) = scripted() else { return };
    let ws = workspace(&script, json!({"password": "airbyte-marker-3", "records": []}), "full_refresh", "");
    let pipeline = ws.pipeline();
    let source = sources::for_check(&pipeline, "src").unwrap();
    let error = source.check().await.unwrap_err().to_string();
    assert!(error.contains("check FAILED: wrong password"), "{error}");
    let streams = source.streams().await.unwrap().unwrap();
    let names: Vec<(&str, Option<&str>)> = streams.iter().map(|s| (s.name.as_str(), s.primary_key.as_deref())).collect();
    assert_eq!(names, [("pets", Some("id")), ("owners", Some("id"))]);
    let shown = format!("{:?} {}", pipeline.sources["src"], serde_json::to_string(pipeline.sources["src"].settings.shown()).unwrap());
    assert!(!shown.contains("airbyte-marker-3") && shown.contains("***"), "{shown}");
    let good = workspace(&script, json!({"password": {"secret": "open-sesame"}}), "full_refresh", "");
    let source = sources::for_check(&good.pipeline(), "src").unwrap();
    assert!(source.check().await.unwrap().contains("check SUCCEEDED"));
}

#[test]
fn an_airbyte_source_needs_a_stream() {
    let text = "sources:\n  s: { type: airbyte, command: [x] }\nmappings:\n  m: { passThrough: true }\nregisters:\n  r: { schemas: { s: {} } }\n\
                synchronizations:\n  x: { source: s, mapping: m, sourceConfig: {}, target: { type: register, register: r, schema: s } }\n";
    let error = Pipeline::from_text("p.yaml", text, std::path::Path::new("."), &|_| None).unwrap_err().to_string();
    assert!(error.contains("synchronizations.x.sourceConfig: missing field `stream`"), "{error}");
    let misplaced = text.replace("sourceConfig: {}", "sourceConfig: { stream: users, table: t }");
    let error = Pipeline::from_text("p.yaml", &misplaced, std::path::Path::new("."), &|_| None).unwrap_err().to_string();
    assert!(error.contains("sourceConfig.table: `table` does not apply to a airbyte source"), "{error}");
    assert!(!error.contains("idPosition"), "its ids come from the stream's primary key: {error}");
}

/// Where `tests/run` installs `airbyte-source-faker` (or `SYNCLINE_AIRBYTE_FAKER`).
fn faker() -> Option<String> {
    let path = std::env::var("SYNCLINE_AIRBYTE_FAKER").ok().unwrap_or_else(|| {
        let home = std::env::var("HOME").unwrap_or_default();
        format!("{home}/.cache/syncline/airbyte-faker/bin/source-faker")
    });
    if std::path::Path::new(&path).exists() {
        return Some(path);
    }
    skipped(&format!("airbyte-source-faker is not installed at {path} (tests/run installs it from PyPI into a virtual environment)"));
    None
}

/// The published faker connector: its `users` stream read twice (all created, then all unchanged),
/// then with another seed (updates counted). Its `updated_at` is the time of reading, so the source
/// drops it.
#[tokio::test]
async fn the_published_faker_source_runs_unchanged() {
    let Some(faker) = faker() else { return };
    let ws = Workspace::new();
    let write = |seed: u64| {
        let text = format!(
            "sources:\n  fake:\n    type: airbyte\n    command: [\"{faker}\"]\n    config: {{ count: 50, seed: {seed}, parallelism: 1, always_updated: false }}\n\
             \x20   dropFields: [updated_at]\n\
             mappings:\n  users:\n    passThrough: true\n\
             registers:\n  r:\n    schemas:\n      users: {{ type: object }}\n\
             synchronizations:\n  sync:\n    source: fake\n    sourceConfig: {{ stream: users }}\n    mapping: users\n\
             \x20   target: {{ type: register, register: r, schema: users }}\n"
        );
        std::fs::write(&ws.file, text).unwrap();
    };
    write(1);
    let source = sources::for_check(&ws.pipeline(), "fake").unwrap();
    assert!(source.check().await.unwrap().contains("check SUCCEEDED"));
    let streams = source.streams().await.unwrap().unwrap();
    assert!(streams.iter().any(|s| s.name == "users" && s.primary_key.as_deref() == Some("id")), "{streams:?}");
    let first = ws.run().await;
    completed(&first);
    assert_eq!(counts(&first), (50, 50, 0, 0, 0, 0));
    assert_eq!(counts(&ws.run().await), (50, 0, 0, 50, 0, 0), "the same seed: nothing changed");
    write(2);
    let reseeded = ws.run().await;
    completed(&reseeded);
    let c = reseeded.job.counts;
    assert_eq!((c.found, c.created, c.deleted, c.failed), (50, 0, 0, 0), "the same ids");
    assert!(c.updated > 40, "another seed makes other people: {:?}", c);
}

/// What connectors read apart (a source's `config`, a synchronization's `stream`, a command target's
/// `command`) is exported with the rest, secrets masked.
#[test]
fn connector_keys_are_exported() {
    let text = "sources:\n  s: { type: airbyte, command: [x], config: { password: export-marker-5, count: 3 } }\n\
                mappings:\n  m: { passThrough: true }\n\
                synchronizations:\n  x: { source: s, mapping: m, sourceConfig: { stream: users }, target: { type: command, command: [cat] } }\n";
    let pipeline = Pipeline::from_text("p.yaml", text, std::path::Path::new("."), &|_| None).unwrap();
    let (exported, _) = syncline::openconnector::export(&pipeline, "t");
    let shown = exported.to_string();
    assert_eq!(exported["components"]["synchronizations"]["x"]["sourceConfig"]["stream"], "users", "{shown}");
    assert_eq!(exported["components"]["synchronizations"]["x"]["target"]["command"], json!(["cat"]), "{shown}");
    assert_eq!(exported["components"]["sources"]["s"]["config"]["count"], 3, "{shown}");
    assert!(!shown.contains("export-marker-5"), "{shown}");
}
