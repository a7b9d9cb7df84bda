//! Follow-up synchronizations (`followUps`): after a completed run, in order, each its own job linked
//! to the one it follows, on the command line and in the service; none after a failed run; a cycle
//! refused at load; OpenConnector's ids resolved on import.

use std::path::Path;

use reqwest::Method;
use serde_json::{Value, json};
use syncline::store::StateDir;

use crate::cli::{syncline, text};

/// a → [b, c], b → [d]; `broken` → [d] reads a folder that is not there.
fn pipeline(dir: &Path, extra: &str) -> std::path::PathBuf {
    let dir = dir.display();
    std::fs::write(format!("{dir}/pets.csv"), "id,name\n1,Rex\n2,Tom\n").unwrap();
    let sync = |name: &str, follow: &str, source: &str| {
        format!(
            "  {name}:\n    source: {source}\n    sourceConfig: {{ path: pets.csv, idPosition: id }}\n    mapping: copy\n    target: {{ type: register, register: r, schema: {name} }}\n    {follow}\n"
        )
    };
    let text = format!(
        "sources:\n  files: {{ type: file, location: \"{dir}\" }}\n  gone: {{ type: file, location: \"{dir}/gone\" }}\nmappings:\n  copy: {{ passThrough: true }}\nregisters:\n  r:\n    schemas: {{ a: {{ type: object }}, b: {{ type: object }}, c: {{ type: object }}, d: {{ type: object }}, broken: {{ type: object }} }}\nsynchronizations:\n{}{}{}{}{}{extra}",
        sync("a", "followUps: [b, c]", "files"),
        sync("b", "followUps: [d]", "files"),
        sync("c", "", "files"),
        sync("d", "", "files"),
        sync("broken", "followUps: [d]", "gone"),
    );
    let file = std::path::PathBuf::from(format!("{dir}/pipeline.yaml"));
    std::fs::write(&file, text).unwrap();
    file
}

fn jobs_printed(stdout: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn follow_ups_run_in_order_after_a_completed_run_each_linked_to_its_parent() {
    let dir = tempfile::tempdir().unwrap();
    let file = pipeline(dir.path(), "");
    let state = dir.path().join("state");
    let out = syncline(&state, &["run", "--json", file.to_str().unwrap(), "a"]);
    assert!(out.status.success(), "{}", text(&out));
    let jobs = jobs_printed(&out.stdout);
    let order: Vec<&str> = jobs.iter().map(|j| j["synchronization"].as_str().unwrap()).collect();
    assert_eq!(order, ["a", "b", "d", "c"], "depth first, in the order written");
    assert!(jobs.iter().all(|j| j["status"] == "COMPLETED" && j["created"] == 2), "{jobs:?}");
    let store = StateDir::open(&state).unwrap().jobs().unwrap();
    let id = |n: usize| jobs[n]["id"].as_str().unwrap().to_string();
    assert_eq!(store.parent_of(&id(0)).unwrap(), None);
    assert_eq!(store.parent_of(&id(1)).unwrap(), Some(id(0)));
    assert_eq!(store.parent_of(&id(2)).unwrap(), Some(id(1)));
    assert_eq!(store.parent_of(&id(3)).unwrap(), Some(id(0)));
    assert_eq!(store.follow_ups_of(&id(0)).unwrap(), [id(1), id(3)]);
    let logs: Vec<String> = store.logs(&id(0)).unwrap().into_iter().map(|l| l.message).collect();
    assert!(logs.iter().any(|l| l == &format!("follow-up `b` started: job {}", id(1))), "{logs:?}");

    // A failed run starts no follow-up.
    let out = syncline(&state, &["run", "--json", file.to_str().unwrap(), "broken"]);
    assert_eq!(out.status.code(), Some(1));
    let jobs = jobs_printed(&out.stdout);
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(jobs[0]["status"], "FAILED");
}

#[test]
fn follow_ups_that_make_a_cycle_are_refused_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "  e:\n    source: files\n    sourceConfig: { path: pets.csv, idPosition: id }\n    mapping: copy\n    target: { type: register, register: r, schema: a }\n    followUps: [f]\n  f:\n    source: files\n    sourceConfig: { path: pets.csv, idPosition: id }\n    mapping: copy\n    target: { type: register, register: r, schema: a }\n    followUps: [c, e]\n",
            "the follow-ups make a cycle: e → f → e",
        ),
        (
            "  g:\n    source: files\n    sourceConfig: { path: pets.csv, idPosition: id }\n    mapping: copy\n    target: { type: register, register: r, schema: a }\n    followUps: [g]\n",
            "the follow-ups make a cycle: g → g",
        ),
        (
            "  h:\n    source: files\n    sourceConfig: { path: pets.csv, idPosition: id }\n    mapping: copy\n    target: { type: register, register: r, schema: a }\n    followUps: [nowhere]\n",
            "synchronizations.h.followUps: no synchronization named `nowhere`",
        ),
    ];
    for (extra, expected) in cases {
        let file = pipeline(dir.path(), extra);
        let out = syncline(&dir.path().join("state"), &["validate", file.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        assert!(text(&out).contains(expected), "{expected}: {}", text(&out));
    }
}

#[tokio::test]
async fn the_service_starts_follow_ups_after_a_run_and_links_them() {
    let dir = tempfile::tempdir().unwrap();
    let file = pipeline(dir.path(), "");
    let state = tempfile::tempdir().unwrap();
    let service = crate::service::Service::start(&state, vec![file]).await;
    let (status, job) = service.call(Method::POST, "/api/synchronizations/a/run", None).await;
    assert_eq!(status, 201, "{job}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let jobs = loop {
        let (_, answer) = service.call(Method::GET, "/api/jobs?limit=20", None).await;
        let jobs = answer["results"].as_array().cloned().unwrap_or_default();
        if jobs.len() == 4 && jobs.iter().all(|j| j["status"] == "COMPLETED") {
            break jobs;
        }
        assert!(std::time::Instant::now() < deadline, "the follow-ups never all ran: {answer}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let mut names: Vec<&str> = jobs.iter().map(|j| j["synchronization"].as_str().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["a", "b", "c", "d"]);
    let store = StateDir::open(state.path()).unwrap().jobs().unwrap();
    let of = |sync: &str| jobs.iter().find(|j| j["synchronization"] == sync).unwrap()["id"].as_str().unwrap().to_string();
    assert_eq!(store.parent_of(&of("b")).unwrap(), Some(of("a")));
    assert_eq!(store.parent_of(&of("d")).unwrap(), Some(of("b")));
    assert_eq!(store.parent_of(&of("c")).unwrap(), Some(of("a")));
    service.stop().await;
}

#[test]
fn openconnector_follow_ups_and_hash_mappings_by_id_import_as_names() {
    let config = json!({"components": {
        "sources": {"s": {"id": 1, "name": "S", "type": "api", "location": "http://x"}},
        "mappings": {"stable": {"id": 5, "name": "Stable", "mapping": {"name": "{{ name }}"}}},
        "synchronizations": {
            "first": {"id": 10, "name": "First", "sourceId": 1, "sourceConfig": {"idPosition": "id"}, "followUps": [11, "99"], "sourceHashMapping": 5},
            "second": {"id": 11, "uuid": "b6f2", "name": "Second", "sourceId": 1, "sourceConfig": {"idPosition": "id"}, "followUps": []}
        }
    }});
    let imported = syncline::openconnector::import(&config).unwrap();
    let syncs = &imported.pipeline["synchronizations"];
    assert_eq!(syncs["first"]["followUps"], json!(["second"]));
    assert_eq!(syncs["first"]["sourceHashMapping"], "stable", "the hash mapping by its id, as its name");
    assert!(syncs["second"].get("followUps").is_none());
    let notice = imported.notices.iter().find(|n| n.key == "synchronizations.first.followUps").expect("a notice for the unknown id");
    assert!(notice.message.contains("\"99\""), "{}", notice.message);
}
