//! The openregister source against an OpenRegister instance's objects API. No Nextcloud runs here, so
//! the peer is a stand-in that answers as OpenRegister 0.2.13 does (routes, `_limit`/`_page`, the
//! `_order` it sorts by, `results`/`total`/`pages`, `@self`), and a feed that misbehaves.

use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use syncline::config::Pipeline;
use syncline::pipeline::{self, Progress, RunOptions, RunReport};
use syncline::store::StateDir;

use super::common::serve;

/// The instance's objects, as `(uuid, title, updated)`.
type Objects = Arc<Mutex<Vec<(String, String, String)>>>;

async fn list_objects(
    State(objects): State<Objects>,
    headers: HeaderMap,
    Query(query): Query<Vec<(String, String)>>,
) -> (StatusCode, Json<Value>) {
    // admin:app-password
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some("Basic YWRtaW46YXBwLXBhc3N3b3Jk") {
        return (StatusCode::UNAUTHORIZED, Json(json!({"message": "not logged in"})));
    }
    let param = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let limit: usize = param("_limit").and_then(|v| v.parse().ok()).unwrap_or(20);
    let page: usize = param("_page").and_then(|v| v.parse().ok()).unwrap_or(1);
    let mut all = objects.lock().unwrap().clone();
    if param("_order[_updated]").as_deref() == Some("desc") {
        all.sort_by(|a, b| b.2.cmp(&a.2));
    }
    let total = all.len();
    let results: Vec<Value> = all
        .iter()
        .skip((page - 1) * limit)
        .take(limit)
        .map(|(id, title, updated)| {
            json!({"id": id, "title": title, "@self": {"id": id, "register": 5, "schema": 24, "updated": updated, "created": "2026-01-01T00:00:00+00:00"}})
        })
        .collect();
    let pages = total.div_ceil(limit).max(1);
    (StatusCode::OK, Json(json!({"results": results, "total": total, "page": page, "pages": pages, "limit": limit})))
}

fn pipeline_file(dir: &std::path::Path, location: &str) -> Pipeline {
    let text = format!(
        r#"
sources:
  nextcloud:
    type: openregister
    location: "{location}/index.php/apps/openregister"
    register: publications
    schema: publication
    pageSize: 2
    auth: basic
    username: admin
    password: app-password
mappings:
  copy: {{ mapping: {{ title: "{{{{ title }}}}" }} }}
registers:
  local: {{ schemas: {{ publication: {{ type: object }} }} }}
synchronizations:
  publications:
    source: nextcloud
    mapping: copy
    target: {{ type: register, register: local, schema: publication }}
"#
    );
    let file = dir.join("pipeline.yaml");
    std::fs::write(&file, text).unwrap();
    Pipeline::load(&file).unwrap_or_else(|e| panic!("{e}"))
}

async fn run(pipeline: &Pipeline, state: &StateDir, force: bool) -> RunReport {
    let options = RunOptions { force_full_sync: force, ..RunOptions::default() };
    pipeline::run(pipeline, "publications", state, options, Arc::new(Progress::default())).await.unwrap()
}

fn counts(report: &RunReport) -> (u64, u64, u64, u64, u64) {
    let c = report.job.counts;
    (c.found, c.created, c.updated, c.deleted, c.failed)
}

#[tokio::test]
async fn an_openregister_instance_is_read_whole_then_since_its_cursor() {
    let objects: Objects = Arc::new(Mutex::new(
        (1..=5)
            .map(|n| {
                (format!("0000000{n}-aaaa-4bbb-8ccc-000000000000"), format!("Publication {n}"), format!("2026-01-0{n}T10:00:00+00:00"))
            })
            .collect(),
    ));
    let app = Router::new()
        .route("/index.php/apps/openregister/api/objects/publications/publication", get(list_objects))
        .with_state(Arc::clone(&objects));
    let (addr, _server) = serve(app).await;
    let dir = tempfile::tempdir().unwrap();
    let state = StateDir::open(&dir.path().join("state")).unwrap();
    let pipeline = pipeline_file(dir.path(), &format!("http://{addr}"));

    let first = run(&pipeline, &state, false).await;
    assert_eq!(counts(&first), (5, 5, 0, 0, 0), "{:?}", first.warnings);
    let stored = state.register().unwrap().objects_of("publications").unwrap();
    assert_eq!(stored[0].0, "00000001-aaaa-4bbb-8ccc-000000000000", "the uuid there is the origin id here");

    // One object changes, one is deleted: a later run reads the newest first and stops at its cursor.
    {
        let mut all = objects.lock().unwrap();
        all[1].1 = "Publication 2, revised".into();
        all[1].2 = "2026-02-01T10:00:00+00:00".into();
        all.remove(3);
    }
    let later = run(&pipeline, &state, false).await;
    assert_eq!(counts(&later), (2, 0, 1, 0, 0), "the changed object and the one at the cursor: {:?}", later.warnings);
    assert!(later.job.status.as_str() == "COMPLETED");
    // Its lists leave deleted objects out: a full read deletes them.
    let full = run(&pipeline, &state, true).await;
    assert_eq!(counts(&full), (4, 0, 4, 1, 0));
    assert_eq!(state.register().unwrap().objects_of("publications").unwrap().len(), 4);
}

/// A syncline feed that answers the same page forever, or names no instance, fails the run and
/// deletes nothing.
#[tokio::test]
async fn a_change_feed_that_does_not_move_on_fails_the_run() {
    let page = json!({"instance": "peer", "until": 9, "next": 0, "more": true, "results": []});
    let app = Router::new().route("/api/registers/r/schemas/s/changes", get(move || async move { Json(page.clone()) }));
    let (addr, _server) = serve(app).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pipeline.yaml");
    std::fs::write(
        &file,
        format!(
            "sources:\n  peer: {{ type: openregister, location: \"http://{addr}\", register: r, schema: s }}\nmappings:\n  copy: {{ mapping: {{ a: \"{{{{ a }}}}\" }} }}\n\
             registers:\n  r: {{ schemas: {{ s: {{ type: object }} }} }}\nsynchronizations:\n  from-peer: {{ source: peer, mapping: copy, target: {{ type: register, register: r, schema: s }} }}\n"
        ),
    )
    .unwrap();
    let pipeline = Pipeline::load(&file).unwrap();
    let state = StateDir::open(&dir.path().join("state")).unwrap();
    let report = pipeline::run(&pipeline, "from-peer", &state, RunOptions::default(), Arc::new(Progress::default())).await.unwrap();
    assert_eq!(report.job.status.as_str(), "FAILED");
    assert!(report.job.error.as_deref().unwrap_or("").contains("did not move on"), "{:?}", report.job.error);
}
