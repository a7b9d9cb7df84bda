//! The command line as a user meets it: exit codes, messages with file:line:column, the inspection
//! commands.

use std::path::Path;
use std::process::{Command, Output};

use crate::common::Harness;

pub fn syncline(state: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_syncline")).arg("--state").arg(state).args(args).output().expect("syncline runs")
}

pub fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

#[test]
fn a_malformed_pipeline_file_exits_2_naming_file_line_column_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.yaml");
    let cases = [
        (
            "sources:\n  s:\n    type: api\n    location: http://x\n    lokation: typo\n",
            "bad.yaml:5:5: sources.s.lokation: unknown field `lokation`",
        ),
        (
            "sources:\n  s: { location: http://x }\nsynchronizations:\n  y:\n    source: nope\n",
            "bad.yaml:5:5: synchronizations.y.source: no source named `nope`",
        ),
        ("sources: [1, 2\n", "bad.yaml:2:"),
        (
            "sources:\n  s: { location: http://x }\nmappings:\n  m:\n    mapping:\n      t: \"{{ a | }}\"\n",
            "bad.yaml:6:7: mappings.m.mapping.t: field `t`",
        ),
        ("registers:\n  r:\n    schemas:\n      s: { type: 12 }\n", "bad.yaml:4:7: registers.r.schemas.s: not a valid JSON Schema"),
        ("sources:\n  s:\n    location: http://x\n    timeout: soon\n", "bad.yaml:4:5: sources.s.timeout: `soon` is not a duration"),
    ];
    for (yaml, expected) in cases {
        std::fs::write(&file, yaml).unwrap();
        for command in [vec!["validate"], vec!["run"]] {
            let mut args = command.clone();
            args.push(file.to_str().unwrap());
            let out = syncline(&dir.path().join("state"), &args);
            assert_eq!(out.status.code(), Some(2), "{command:?} {yaml}: {}", text(&out));
            assert!(text(&out).contains(expected), "{yaml}\nwanted: {expected}\ngot: {}", text(&out));
        }
    }
}

#[test]
fn validate_rejects_a_synchronization_without_id_position_and_explains_why() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("p.json");
    std::fs::write(
        &file,
        r#"{
  "sources": {"s": {"name": "S", "type": "api", "location": "http://x", "auth": "none", "isEnabled": true}},
  "mappings": {"m": {"name": "M", "mapping": {"title": "{{ name }}"}}},
  "registers": {"dcat": {"schemas": {"dataset": {"type": "object"}}}},
  "synchronizations": {"y": {"name": "Y", "sourceId": "s", "sourceType": "api", "sourceTargetMapping": "m",
     "sourceConfig": {"endpoint": "/x", "resultsPosition": "_root"},
     "targetType": "register/schema", "targetId": "dcat/dataset"}}
}"#,
    )
    .unwrap();
    let out = syncline(&dir.path().join("state"), &["validate", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let said = text(&out);
    assert!(said.contains("p.json:6:6: synchronizations.y.sourceConfig: idPosition is missing"), "{said}");
    assert!(said.contains("update from a create"), "{said}");
}

#[test]
fn an_openconnector_payload_validates_verbatim() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("oc.json");
    std::fs::write(
        &file,
        r#"{
  "sources": {"petstore": {"name": "Swagger Pet Store", "type": "api", "location": "https://petstore3.swagger.io/api/v3", "auth": "none", "isEnabled": true}},
  "mappings": {"pet-to-dataset": {"name": "Pet to dataset", "mapping": {
      "title": "{{ name }}", "category": "{{ category.name }}", "status": "Published",
      "publicatiedatum": "{{ \"now\"|date(\"Y-m-d H:i:s\") }}"}}},
  "registers": {"dcat": {"schemas": {"dataset": {"type": "object"}}}},
  "synchronizations": {"pets": {"name": "Pet store to datasets", "sourceId": "petstore", "sourceType": "api",
      "sourceTargetMapping": "pet-to-dataset",
      "sourceConfig": {"endpoint": "/pet/findByStatus?status=available", "idPosition": "id", "resultsPosition": "_root"},
      "targetType": "register/schema", "targetId": "dcat/dataset"}}
}"#,
    )
    .unwrap();
    let out = syncline(&dir.path().join("state"), &["validate", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[test]
fn mapping_test_prints_the_object_or_the_failing_field() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("p.yaml");
    std::fs::write(
        &file,
        "mappings:\n  m:\n    mapping:\n      title: \"{{ name }}\"\n      when: '{{ \"now\"|date(\"Y\") }}'\n      n: \"{{ 1 / zero }}\"\n",
    )
    .unwrap();
    let input = dir.path().join("in.json");
    std::fs::write(&input, r#"{"name": "Bella", "zero": 0}"#).unwrap();
    let out = syncline(&dir.path().join("s"), &["mapping", "test", file.to_str().unwrap(), "m", "--input", input.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("field `n`"), "{}", text(&out));

    std::fs::write(&file, "mappings:\n  m:\n    mapping:\n      title: \"{{ name }}\"\n      year: '{{ \"now\"|date(\"Y\") }}'\n").unwrap();
    let out = syncline(&dir.path().join("s"), &["mapping", "test", file.to_str().unwrap(), "m", "--input", input.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let object: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(object["title"], "Bella");
    assert_eq!(object["year"].as_str().unwrap().len(), 4);
}

#[tokio::test]
async fn run_source_test_jobs_logs_contracts_and_objects() {
    let h = Harness::new(9).await;
    let state = h.state.root().to_path_buf();
    let file = h.file.to_str().unwrap().to_string();
    let file2 = file.clone();
    let state2 = state.clone();
    let (test, run) =
        tokio::task::spawn_blocking(move || (syncline(&state2, &["source", "test", &file2, "pets"]), syncline(&state2, &["run", &file2])))
            .await
            .unwrap();
    assert_eq!(test.status.code(), Some(0), "{}", text(&test));
    assert!(text(&test).starts_with("pets: OK: HTTP 200"), "{}", text(&test));
    assert_eq!(run.status.code(), Some(0), "{}", text(&run));
    assert!(text(&run).contains("pets: COMPLETED found 9, created 9, updated 0, unchanged 0"), "{}", text(&run));

    let outputs = tokio::task::spawn_blocking(move || {
        let json = syncline(&state, &["run", &file, "--json"]);
        let jobs = syncline(&state, &["jobs"]);
        let contracts = syncline(&state, &["contracts", "pets"]);
        let rm = syncline(&state, &["contracts", "rm", "pets", "4"]);
        let list = syncline(&state, &["objects", "list", "shop/pet"]);
        let unknown = syncline(&state, &["run", &file, "nope"]);
        (json, jobs, contracts, rm, list, unknown)
    })
    .await
    .unwrap();
    let (json, jobs, contracts, rm, list, unknown) = outputs;
    let job: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!((job["status"].as_str(), job["unchanged"].as_u64()), (Some("COMPLETED"), Some(9)));
    assert!(text(&jobs).contains("COMPLETED"));
    assert!(text(&contracts).contains("9 contract(s) of `pets`"), "{}", text(&contracts));
    assert_eq!(rm.status.code(), Some(0), "{}", text(&rm));
    assert!(text(&list).contains("9 object(s) in shop/pet"), "{}", text(&list));
    assert_eq!(unknown.status.code(), Some(2));

    let id = job["id"].as_str().unwrap().to_string();
    let state = h.state.root().to_path_buf();
    let logs = tokio::task::spawn_blocking(move || syncline(&state, &["logs", &id[..13]])).await.unwrap();
    assert!(text(&logs).contains("COMPLETED: found 9"), "{}", text(&logs));
}

#[tokio::test]
async fn a_failed_job_exits_1_and_source_test_reports_the_error_in_one_line() {
    let h = Harness::new(3).await;
    let port = h.fixture.addr.port();
    let text_file = std::fs::read_to_string(&h.file).unwrap().replace(&format!(":{port}/"), ":1/");
    std::fs::write(&h.file, text_file).unwrap();
    let state = h.state.root().to_path_buf();
    let file = h.file.to_str().unwrap().to_string();
    let (run, test) =
        tokio::task::spawn_blocking(move || (syncline(&state, &["run", &file]), syncline(&state, &["source", "test", &file, "pets"])))
            .await
            .unwrap();
    assert_eq!(run.status.code(), Some(1), "{}", text(&run));
    assert!(text(&run).contains("error [connection]"), "{}", text(&run));
    assert_eq!(test.status.code(), Some(1));
    let line = String::from_utf8_lossy(&test.stdout);
    assert_eq!(line.lines().count(), 1, "{line}");
    assert!(line.starts_with("pets: FAILED [connection] cannot connect to http://127.0.0.1:1/"), "{line}");
}

#[test]
fn validate_catches_connector_settings_in_the_wrong_place() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.yaml");
    let head = "mappings:\n  m: { passThrough: true }\nregisters:\n  r: { schemas: { s: { type: object } } }\n";
    let target = "mapping: m, target: { type: register, register: r, schema: s }";
    let cases = [
        (
            format!(
                "{head}sources:\n  db: {{ type: database, location: \"mysql://root@h/test\" }}\nsynchronizations:\n  y: {{ source: db, sourceConfig: {{ idPosition: id }}, {target} }}\n"
            ),
            "synchronizations.y.sourceConfig: a database source reads a `table` or a `query` (SQL)",
        ),
        (
            format!(
                "{head}sources:\n  api: {{ type: api, location: \"http://h\" }}\nsynchronizations:\n  y: {{ source: api, sourceConfig: {{ idPosition: id, table: pets }}, {target} }}\n"
            ),
            "synchronizations.y.sourceConfig.table: `table` does not apply to a api source",
        ),
        (
            format!(
                "{head}sources:\n  f: {{ type: file, location: data }}\nsynchronizations:\n  y: {{ source: f, sourceConfig: {{ idPosition: id, delimiter: \";;\" }}, {target} }}\n"
            ),
            "synchronizations.y.sourceConfig.delimiter: `;;` is not a one-byte delimiter",
        ),
        (
            format!("{head}sources:\n  f: {{ type: ftp, location: \"http://h/x\" }}\n"),
            "sources.f.location: a ftp source reads ftp, ftps URLs, not `http:`",
        ),
        (
            format!(
                "{head}sources:\n  f: {{ type: excel, location: a.xlsx }}\nsynchronizations:\n  y: {{ source: f, sourceConfig: {{ idPosition: id, range: \"Z9:A1\" }}, {target} }}\n"
            ),
            "synchronizations.y.sourceConfig.range: `Z9:A1` is not a cell range like `A1:F500`",
        ),
    ];
    for (yaml, expected) in cases {
        std::fs::write(&file, &yaml).unwrap();
        let out = syncline(&dir.path().join("state"), &["validate", file.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{yaml}: {}", text(&out));
        assert!(text(&out).contains(expected), "{yaml}\nwanted: {expected}\ngot: {}", text(&out));
    }
}

#[test]
fn the_bundled_connector_pipelines_validate_and_preview() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    for pipeline in ["files", "excel", "ftp", "sftp", "database", "command", "petstore", "to-postgres", "to-files"] {
        let file = root.join(format!("pipelines/{pipeline}.yaml"));
        let out = Command::new(env!("CARGO_BIN_EXE_syncline"))
            .arg("--state")
            .arg(&state)
            .args(["validate"])
            .arg(&file)
            .env("FTP_PASSWORD", "x")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{pipeline}: {}", text(&out));
    }
    let files = root.join("pipelines/files.yaml");
    let out = syncline(&state, &["source", "preview", files.to_str().unwrap(), "pets-from-csv", "--limit", "2"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let said = text(&out);
    assert!(said.contains("line 2 of") && said.contains("pets.csv, id `1`"), "{said}");
    assert!(said.contains("\"name\": \"Rex\""), "{said}");
    assert!(!said.contains("Kit"), "--limit 2 shows two records: {said}");

    let excel = root.join("pipelines/excel.yaml");
    let out = syncline(&state, &["source", "test", excel.to_str().unwrap(), "sheet"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).starts_with("sheet: OK: "), "{}", text(&out));
    let out = syncline(&state, &["run", excel.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("created 3"), "{}", text(&out));

    let command = root.join("pipelines/command.yaml");
    let out = syncline(&state, &["run", command.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("found 3, created 3"), "the sold pet is left out by the program: {}", text(&out));
}

#[tokio::test]
async fn json_logs_parse_line_by_line_and_rust_log_sets_the_level() {
    let h = Harness::new(5).await;
    let state = h.state.root().to_path_buf();
    let file = h.file.to_str().unwrap().to_string();
    let (quiet, json, debug) = tokio::task::spawn_blocking(move || {
        let run = |env: &[(&str, &str)], args: &[&str]| {
            Command::new(env!("CARGO_BIN_EXE_syncline"))
                .arg("--state")
                .arg(&state)
                .args(args)
                .env_remove("SYNCLINE_LOG")
                .env_remove("RUST_LOG")
                .envs(env.iter().copied())
                .output()
                .unwrap()
        };
        (
            run(&[], &["--log-format", "json", "run", &file]),
            run(&[("RUST_LOG", "info")], &["--log-format", "json", "run", &file]),
            run(&[("RUST_LOG", "debug"), ("SYNCLINE_LOG_FORMAT", "json")], &["run", &file]),
        )
    })
    .await
    .unwrap();
    for output in [&quiet, &json, &debug] {
        assert_eq!(output.status.code(), Some(0), "{}", text(output));
    }
    assert!(quiet.stderr.is_empty(), "the default level is error: {}", String::from_utf8_lossy(&quiet.stderr));
    let lines = |output: &Output| -> Vec<serde_json::Value> {
        let stderr = String::from_utf8_lossy(&output.stderr).to_string();
        stderr.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}"))).collect()
    };
    let info = lines(&json);
    let summary = info
        .iter()
        .find(|l| l["target"] == "syncline::job" && l["message"].as_str().is_some_and(|m| m.starts_with("COMPLETED")))
        .unwrap_or_else(|| panic!("no summary line: {info:?}"));
    assert_eq!((summary["level"].as_str(), summary["synchronization"].as_str()), (Some("INFO"), Some("pets")), "{summary}");
    assert!(summary["job"].as_str().is_some_and(|j| j.len() == 36), "{summary}");
    assert!(summary["timestamp"].is_string(), "{summary}");
    let debug = lines(&debug);
    assert!(debug.iter().any(|l| l["level"] == "DEBUG"), "RUST_LOG=debug shows debug lines");
    assert!(info.iter().all(|l| l["level"] != "DEBUG"), "RUST_LOG=info does not");
}
