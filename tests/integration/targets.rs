//! The database target against the PostgreSQL and MariaDB this machine runs (a table of its own per
//! test; skipped, saying why, where a server does not answer): creates, re-runs writing nothing,
//! updates, deletes (hard and soft), a bad row failing alone, a missing table refused before any write.

use mysql_async::prelude::Queryable;
use syncline::pipeline::RunOptions;

use crate::common::counts;
use crate::database::{mysql, mysql_url, postgres, postgres_url, table_name};
use crate::workspace::{Workspace, completed, spawn_run, write_file};

const PETS: &[u8] = b"id,name,weight,tags\n1,Rex,12,dog\n2,Tom,4,cat\n3,Kit,3,cat\n";

fn workspace(target: &str, extra: &str) -> Workspace {
    let ws = Workspace::new();
    let data = ws.data();
    write_file(&data, "pets.csv", PETS, 600);
    let source = format!("{{ type: file, location: \"{}\" }}", data.join("pets.csv").display());
    ws.write_to(&source, "{ idPosition: id }", target, extra);
    ws
}

fn edit(ws: &Workspace, csv: &[u8]) {
    write_file(&ws.data(), "pets.csv", csv, 300);
}

#[tokio::test]
async fn postgres_table_upserts_deletes_and_refuses_bad_rows_alone() {
    let Some(db) = postgres().await else { return };
    let table = table_name("target");
    let target = format!("{{ type: database, location: \"{}\", table: {table}, createTable: true }}", postgres_url());
    let ws = workspace(&target, "");
    let first = ws.run().await;
    completed(&first);
    assert_eq!(counts(&first), (3, 3, 0, 0, 0, 0));
    let row = db.query_one(&format!("SELECT name, weight, origin_id FROM {table} WHERE origin_id = '1'"), &[]).await.unwrap();
    assert_eq!((row.get::<_, String>(0), row.get::<_, i64>(1), row.get::<_, String>(2)), ("Rex".into(), 12, "1".into()));
    assert_eq!(counts(&ws.run().await), (3, 0, 0, 3, 0, 0), "a re-run writes nothing");

    // Row 1 edited, row 3 gone, and row 2's weight is text its bigint column refuses: it fails alone.
    edit(&ws, b"id,name,weight,tags\n1,Rexy,13,dog\n2,Tom,heavy,cat\n");
    let report = ws.run().await;
    completed(&report);
    assert_eq!(counts(&report), (2, 0, 1, 0, 1, 1), "{:?}", report.warnings);
    let errors = ws.state.jobs().unwrap().errors(&report.job.id, 10).unwrap();
    assert!(errors[0].message.contains("bigint"), "{:?}", errors[0]);
    let names: Vec<String> =
        db.query(&format!("SELECT name FROM {table} ORDER BY origin_id"), &[]).await.unwrap().iter().map(|r| r.get(0)).collect();
    assert_eq!(names, ["Rexy", "Tom"], "row 2 keeps its last good version, row 3 is deleted");

    let dry = ws.run_with(RunOptions { dry_run: true, force_full_sync: true, ..RunOptions::default() }).await;
    completed(&dry);
    let count: i64 = db.query_one(&format!("SELECT count(*) FROM {table}"), &[]).await.unwrap().get(0);
    assert_eq!(count, 2, "a dry run writes nothing");
    db.batch_execute(&format!("DROP TABLE {table}")).await.unwrap();
}

#[tokio::test]
async fn postgres_soft_delete_and_a_missing_table() {
    let Some(db) = postgres().await else { return };
    let table = table_name("soft");
    let target = format!("{{ type: database, location: \"{}\", table: {table}, createTable: true, primaryKey: pet_id }}", postgres_url());
    let ws = workspace(&target, "deletePolicy: soft-delete");
    completed(&ws.run().await);
    edit(&ws, b"id,name,weight,tags\n1,Rex,12,dog\n2,Tom,4,cat\n");
    let report = ws.run().await;
    assert_eq!(report.job.counts.deleted, 1);
    let deleted: Option<chrono::DateTime<chrono::Utc>> = db
        .query_one(&format!("SELECT deleted_at FROM {table} WHERE pet_id = '3'"), &[])
        .await
        .map(|r| r.get::<_, Option<std::time::SystemTime>>(0).map(Into::into))
        .unwrap();
    assert!(deleted.is_some(), "row 3 is kept, marked deleted");
    db.batch_execute(&format!("DROP TABLE {table}")).await.unwrap();

    let missing = table_name("missing");
    let ws = workspace(&format!("{{ type: database, location: \"{}\", table: {missing} }}", postgres_url()), "");
    let report = ws.run().await;
    assert_eq!(report.job.status.as_str(), "FAILED");
    assert!(report.job.error.clone().unwrap().contains("does not exist"), "{:?}", report.job.error);
    assert_eq!(report.job.counts.created, 0);
}

#[tokio::test]
async fn mysql_table_upserts_and_deletes() {
    let Some(mut db) = mysql().await else { return };
    let table = table_name("target");
    let target = format!("{{ type: database, location: \"{}\", table: {table}, createTable: true }}", mysql_url());
    let ws = workspace(&target, "");
    let first = ws.run().await;
    completed(&first);
    assert_eq!(counts(&first), (3, 3, 0, 0, 0, 0));
    assert_eq!(counts(&ws.run().await), (3, 0, 0, 3, 0, 0));
    edit(&ws, b"id,name,weight,tags\n1,Rexy,13,dog\n2,Tom,4,cat\n");
    let report = ws.run().await;
    completed(&report);
    assert_eq!(counts(&report), (2, 0, 1, 1, 1, 0));
    let rows: Vec<(String, String, i64)> =
        db.query(format!("SELECT origin_id, name, weight FROM {table} ORDER BY origin_id")).await.unwrap();
    assert_eq!(rows, [("1".to_string(), "Rexy".to_string(), 13), ("2".to_string(), "Tom".to_string(), 4)]);
    db.query_drop(format!("DROP TABLE {table}")).await.unwrap();
}

fn lines(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[tokio::test]
async fn a_snapshot_file_is_replaced_whole_and_only_when_something_changed() {
    let out = tempfile::tempdir().unwrap();
    let target = format!("{{ type: file, location: \"{}\", fileName: pets }}", out.path().display());
    let ws = workspace(&target, "");
    let first = ws.run().await;
    completed(&first);
    assert_eq!(counts(&first), (3, 3, 0, 0, 0, 0));
    let file = out.path().join("pets.ndjson");
    let rows = lines(&file);
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0], serde_json::json!({"_id": "1", "id": 1, "name": "Rex", "weight": 12, "tags": "dog"}));
    let written = std::fs::metadata(&file).unwrap().modified().unwrap();

    assert_eq!(counts(&ws.run().await), (3, 0, 0, 3, 0, 0));
    assert_eq!(std::fs::metadata(&file).unwrap().modified().unwrap(), written, "a re-run writes nothing");

    edit(&ws, b"id,name,weight,tags\n1,Rexy,13,dog\n2,Tom,4,cat\n");
    let report = ws.run().await;
    completed(&report);
    assert_eq!(counts(&report), (2, 0, 1, 1, 1, 0));
    let mut ids: Vec<(String, String)> =
        lines(&file).iter().map(|r| (r["_id"].as_str().unwrap().to_string(), r["name"].as_str().unwrap().to_string())).collect();
    ids.sort();
    assert_eq!(
        ids,
        [("1".to_string(), "Rexy".to_string()), ("2".to_string(), "Tom".to_string())],
        "the edit in, the unchanged row carried over, the deleted one out"
    );
    let leftovers: Vec<_> = std::fs::read_dir(out.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers.len(), 1, "no partial files left: {leftovers:?}");
}

#[tokio::test]
async fn change_files_in_csv_and_a_parquet_snapshot() {
    let out = tempfile::tempdir().unwrap();
    let target = format!("{{ type: file, location: \"{}\", format: csv, mode: changes }}", out.path().display());
    let ws = workspace(&target, "");
    completed(&ws.run().await);
    completed(&ws.run().await);
    edit(&ws, b"id,name,weight,tags\n1,Rexy,13,dog\n2,Tom,4,cat\n");
    let report = ws.run().await;
    completed(&report);
    let mut files: Vec<_> = std::fs::read_dir(out.path()).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort_by_key(|p| std::fs::metadata(p).unwrap().modified().unwrap());
    assert_eq!(files.len(), 2, "one file per run that changed something: {files:?}");
    let last = std::fs::read_to_string(files[1].to_str().unwrap()).unwrap();
    let mut rows: Vec<&str> = last.lines().collect();
    let header = rows.remove(0);
    assert!(header.starts_with("_id,id,name,weight,tags,_op,_job"), "{header}");
    assert!(rows.iter().any(|r| r.starts_with("1,1,Rexy,13,dog,updated,")), "{last}");
    assert!(rows.iter().any(|r| r.starts_with("3,,,,,deleted,")), "{last}");

    let out = tempfile::tempdir().unwrap();
    let target = format!("{{ type: file, location: \"{}\", format: parquet }}", out.path().display());
    let ws = workspace(&target, "");
    completed(&ws.run().await);
    edit(&ws, b"id,name,weight,tags\n1,Rexy,13,dog\n2,Tom,4,cat\n3,Kit,3,cat\n4,Max,9,dog\n");
    let report = ws.run().await;
    completed(&report);
    let file = std::fs::File::open(out.path().join("sync.parquet")).unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file).unwrap().build().unwrap();
    let total: usize = reader.map(|b| b.unwrap().num_rows()).sum();
    assert_eq!(total, 4, "two carried over, one updated, one created");
}

/// An API that records what it receives: POST creates `srv-N`, PUT updates, DELETE deletes; a pet
/// named `Bad` is refused with 422.
#[derive(Default)]
struct Receiver {
    requests: std::sync::Mutex<Vec<(String, String, serde_json::Value)>>,
    next: std::sync::atomic::AtomicU64,
    /// Answers creates this much later: a slow API.
    delay_ms: std::sync::atomic::AtomicU64,
    /// Idempotency-Key → the id its create gave.
    keys: std::sync::Mutex<std::collections::HashMap<String, String>>,
}

async fn start_receiver() -> (String, std::sync::Arc<Receiver>, tokio::task::JoinHandle<()>) {
    use axum::Json;
    use axum::extract::{Path, State};
    use axum::http::StatusCode;
    use axum::routing::{post, put};
    use std::sync::Arc;
    type Shared = Arc<Receiver>;
    async fn create(
        State(r): State<Shared>,
        headers: axum::http::HeaderMap,
        Json(body): Json<serde_json::Value>,
    ) -> (StatusCode, Json<serde_json::Value>) {
        let delay = r.delay_ms.load(std::sync::atomic::Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
        }
        // An API that honours Idempotency-Key: a create sent again answers the object made the first time.
        let key = headers.get("idempotency-key").and_then(|v| v.to_str().ok()).map(str::to_string);
        if let Some(id) = key.as_ref().and_then(|k| r.keys.lock().unwrap().get(k).cloned()) {
            r.requests.lock().unwrap().push(("POST".into(), "replayed".into(), body.clone()));
            return (StatusCode::CREATED, Json(serde_json::json!({"data": {"id": id}})));
        }
        if body["name"] == "Down" {
            r.requests.lock().unwrap().push(("POST".into(), "unavailable".into(), body.clone()));
            return (StatusCode::SERVICE_UNAVAILABLE, Json(serde_json::json!({"message": "try later"})));
        }
        if body["name"] == "Bad" {
            r.requests.lock().unwrap().push(("POST".into(), "refused".into(), body.clone()));
            return (StatusCode::UNPROCESSABLE_ENTITY, Json(serde_json::json!({"message": "name Bad is not allowed"})));
        }
        let n = r.next.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        if let Some(key) = key {
            r.keys.lock().unwrap().insert(key, format!("srv-{n}"));
        }
        // The path field records the id this create gave.
        r.requests.lock().unwrap().push(("POST".into(), format!("/api/items/srv-{n}"), body.clone()));
        (StatusCode::CREATED, Json(serde_json::json!({"data": {"id": format!("srv-{n}")}})))
    }
    async fn update(State(r): State<Shared>, Path(id): Path<String>, Json(body): Json<serde_json::Value>) -> StatusCode {
        r.requests.lock().unwrap().push(("PUT".into(), format!("/api/items/{id}"), body));
        StatusCode::OK
    }
    async fn remove(State(r): State<Shared>, Path(id): Path<String>) -> StatusCode {
        r.requests.lock().unwrap().push(("DELETE".into(), format!("/api/items/{id}"), serde_json::Value::Null));
        StatusCode::NO_CONTENT
    }
    let receiver = Arc::new(Receiver::default());
    let app = axum::Router::new()
        .route("/api/items", post(create))
        .route("/api/items/{id}", put(update).delete(remove))
        .with_state(Arc::clone(&receiver));
    let (addr, task) = crate::common::serve(app).await;
    (format!("http://{addr}/api"), receiver, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_push_creates_updates_deletes_and_fails_refused_records_alone() {
    let (url, receiver, server) = start_receiver().await;
    let ws = Workspace::new();
    write_file(&ws.data(), "pets.csv", b"id,name\n1,Rex\n2,Tom\n3,Bad\n4,Down\n", 600);
    let text = format!(
        r#"
sources:
  feed: {{ type: file, location: "{csv}" }}
  remote: {{ type: api, location: "{url}", retries: {{ maxAttempts: 3, initialBackoff: 10ms, maxBackoff: 20ms }} }}
mappings:
  pet: {{ mapping: {{ name: "{{{{ name }}}}" }} }}
synchronizations:
  sync:
    source: feed
    sourceConfig: {{ idPosition: id }}
    mapping: pet
    targetType: api
    targetId: remote
    targetConfig: {{ endpoint: /items, idPosition: data.id }}
    maxDeleteShare: 1
"#,
        csv = ws.data().join("pets.csv").display()
    );
    std::fs::write(&ws.file, text).unwrap();
    let taken = |r: &Receiver| std::mem::take(&mut *r.requests.lock().unwrap());

    let first = ws.run().await;
    completed(&first);
    assert_eq!(counts(&first), (4, 2, 0, 0, 0, 2), "{:?}", first.warnings);
    let errors = ws.state.jobs().unwrap().errors(&first.job.id, 10).unwrap();
    assert!(errors[0].message.contains("422") && errors[0].message.contains("name Bad is not allowed"), "{:?}", errors[0]);
    let created = taken(&receiver);
    assert_eq!(created.iter().filter(|(_, p, _)| p == "unavailable").count(), 3, "a 5xx is retried (3 attempts), then fails the record");
    let errors = ws.state.jobs().unwrap().errors(&first.job.id, 10).unwrap();
    assert!(errors.iter().any(|e| e.message.contains("503")), "{errors:?}");
    let rex_at = created.iter().find(|(_, _, body)| body["name"] == "Rex").map(|(_, path, _)| path.clone()).unwrap();

    // Unchanged rows send nothing; the refused one is tried again.
    let again = ws.run().await;
    assert_eq!(counts(&again), (4, 0, 0, 2, 0, 2));
    assert_eq!(taken(&receiver).len(), 4, "only the failed records are tried again (one 422, three 503 attempts)");

    // An edit goes to the id the API gave at create; a vanished record is deleted there.
    write_file(&ws.data(), "pets.csv", b"id,name\n1,Rexy\n", 300);
    let report = ws.run().await;
    completed(&report);
    assert_eq!(counts(&report), (1, 0, 1, 0, 1, 0));
    let requests = taken(&receiver);
    assert_eq!(requests.len(), 2, "{requests:?}");
    let put = requests.iter().find(|(m, _, _)| m == "PUT").expect("an update");
    let delete = requests.iter().find(|(m, _, _)| m == "DELETE").expect("a delete");
    assert_eq!(put.2, serde_json::json!({"name": "Rexy"}));
    assert_eq!(put.1, rex_at, "the update goes to the id Rex's create got");
    assert!(delete.1 != rex_at && delete.1.starts_with("/api/items/srv-"), "{delete:?}");
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_push_killed_mid_run_creates_nothing_twice() {
    let (url, receiver, server) = start_receiver().await;
    let ws = Workspace::new();
    let csv: String = std::iter::once("id,name".to_string()).chain((1..=120).map(|i| format!("{i},pet{i}"))).collect::<Vec<_>>().join("\n");
    write_file(&ws.data(), "pets.csv", csv.as_bytes(), 600);
    let text = format!(
        r#"
sources:
  feed: {{ type: file, location: "{csv}" }}
  remote: {{ type: api, location: "{url}" }}
mappings:
  pet: {{ mapping: {{ name: "{{{{ name }}}}" }} }}
synchronizations:
  sync:
    source: feed
    sourceConfig: {{ idPosition: id }}
    mapping: pet
    target: {{ type: api, source: remote, endpoint: /items, idPosition: data.id, concurrency: 2 }}
"#,
        csv = ws.data().join("pets.csv").display()
    );
    std::fs::write(&ws.file, text).unwrap();
    // A slow API: the run is killed with some objects created there and none of its contracts saved.
    receiver.delay_ms.store(25, std::sync::atomic::Ordering::SeqCst);
    let mut child = spawn_run(ws.state.root(), &ws.file);
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    child.kill().unwrap();
    child.wait().unwrap();
    let before = receiver.requests.lock().unwrap().len();
    assert!(before > 0 && before < 120, "killed mid-run: {before} creates");

    receiver.delay_ms.store(0, std::sync::atomic::Ordering::SeqCst);
    let report = ws.run().await;
    completed(&report);
    assert!(report.warnings.iter().any(|w| w.contains("cut off created on the target")), "{:?}", report.warnings);
    let requests = receiver.requests.lock().unwrap().clone();
    let made: Vec<&str> =
        requests.iter().filter(|(m, p, _)| m == "POST" && p != "replayed").map(|(_, _, b)| b["name"].as_str().unwrap()).collect();
    let replayed = requests.iter().filter(|(_, p, _)| p == "replayed").count();
    let mut distinct = made.clone();
    distinct.sort();
    distinct.dedup();
    // Answered creates are adopted from the journal; the ones in flight when the process died (at most
    // `concurrency`) are sent again, and their Idempotency-Key makes the API answer the same object.
    assert_eq!((made.len(), distinct.len()), (120, 120), "every pet made once there, none twice");
    assert!(replayed <= 2, "{replayed} creates sent again: at most the 2 in flight at the kill");
    // The rerun saw every pet: the adopted ones are brought up to date where the API keeps them.
    assert_eq!(report.job.counts.created + report.job.counts.updated, 120);
    let again = ws.run().await;
    assert_eq!(counts(&again), (120, 0, 0, 120, 0, 0), "then nothing changes");
    server.abort();
}

#[tokio::test]
async fn a_gzip_snapshot_is_merged_through_its_compression() {
    use std::io::Read;
    let out = tempfile::tempdir().unwrap();
    let target = format!("{{ type: file, location: \"{}\", compression: gzip }}", out.path().display());
    let ws = workspace(&target, "");
    completed(&ws.run().await);
    edit(&ws, b"id,name,weight,tags\n1,Rexy,13,dog\n2,Tom,4,cat\n");
    let report = ws.run().await;
    completed(&report);
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(out.path().join("sync.ndjson.gz")).unwrap()).read_to_string(&mut text).unwrap();
    let mut names: Vec<String> =
        text.lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["name"].as_str().unwrap().to_string()).collect();
    names.sort();
    assert_eq!(names, ["Rexy", "Tom"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_killed_mid_write_to_postgres_converges_without_duplicates() {
    use std::sync::atomic::Ordering;
    let Some(db) = postgres().await else { return };
    let fixture = syncline::fixture::Fixture::start(syncline::fixture::pets(200)).await.unwrap();
    fixture.store.faults.delay_ms.store(40, Ordering::SeqCst);
    let table = table_name("killed");
    let ws = Workspace::new();
    let text = format!(
        r#"
sources:
  pets: {{ type: api, location: "{url}" }}
mappings:
  pet: {{ mapping: {{ name: "{{{{ name }}}}", status: "{{{{ status }}}}" }} }}
synchronizations:
  sync:
    source: pets
    sourceConfig: {{ endpoint: /feed/page, idPosition: id, resultsPosition: data.items, pagination: {{ type: page, sizeParam: size, size: 5 }} }}
    mapping: pet
    target: {{ type: database, location: "{pg}", table: {table}, createTable: true }}
"#,
        url = fixture.base_url(),
        pg = postgres_url()
    );
    std::fs::write(&ws.file, text).unwrap();
    let mut child = spawn_run(ws.state.root(), &ws.file);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let written: i64 = match db.query_one(&format!("SELECT count(*) FROM {table}"), &[]).await {
            Ok(row) => row.get(0),
            Err(_) => 0,
        };
        if written >= 20 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the run never wrote");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    fixture.store.faults.delay_ms.store(0, Ordering::SeqCst);
    let report = ws.run().await;
    completed(&report);
    assert!(report.warnings.iter().any(|w| w.contains("adopted")), "the rows the killed run wrote are adopted: {:?}", report.warnings);
    let (rows, distinct): (i64, i64) = {
        let row = db.query_one(&format!("SELECT count(*), count(DISTINCT name) FROM {table}"), &[]).await.unwrap();
        (row.get(0), row.get(1))
    };
    assert_eq!((rows, distinct), (200, 200), "every pet once");
    assert_eq!(counts(&ws.run().await), (200, 0, 0, 200, 0, 0), "and then nothing to do");
    db.batch_execute(&format!("DROP TABLE {table}")).await.unwrap();
}

#[tokio::test]
async fn change_files_split_at_rows_per_file() {
    let out = tempfile::tempdir().unwrap();
    let target = format!("{{ type: file, location: \"{}\", mode: changes, rowsPerFile: 2, fileName: pets }}", out.path().display());
    let ws = workspace(&target, "");
    let report = ws.run().await;
    completed(&report);
    let mut files: Vec<String> =
        std::fs::read_dir(out.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    files.sort();
    assert_eq!(files.len(), 2, "3 rows, 2 a file: {files:?}");
    assert!(files[0].ends_with("-0001.ndjson") && files[1].ends_with("-0002.ndjson"), "{files:?}");
    let rows: usize = files.iter().map(|f| lines(&out.path().join(f)).len()).sum();
    assert_eq!(rows, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_killed_mid_write_to_a_file_leaves_the_last_complete_one() {
    use std::sync::atomic::Ordering;
    let fixture = syncline::fixture::Fixture::start(syncline::fixture::pets(200)).await.unwrap();
    let out = tempfile::tempdir().unwrap();
    let ws = Workspace::new();
    let text = |size: u32| {
        format!(
            r#"
sources:
  pets: {{ type: api, location: "{url}" }}
mappings:
  pet: {{ mapping: {{ name: "{{{{ name }}}}" }} }}
synchronizations:
  sync:
    source: pets
    sourceConfig: {{ endpoint: /feed/page, idPosition: id, resultsPosition: data.items, pagination: {{ type: page, sizeParam: size, size: {size} }} }}
    mapping: pet
    target: {{ type: file, location: "{dir}", fileName: pets }}
"#,
            url = fixture.base_url(),
            dir = out.path().display()
        )
    };
    std::fs::write(&ws.file, text(5)).unwrap();
    fixture.store.faults.delay_ms.store(40, Ordering::SeqCst);
    let mut child = spawn_run(ws.state.root(), &ws.file);
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!out.path().join("pets.ndjson").exists(), "no file appears before its run completes");
    fixture.store.faults.delay_ms.store(0, Ordering::SeqCst);
    let report = ws.run().await;
    completed(&report);
    assert_eq!(report.job.counts.created, 200, "nothing was committed by the killed run");
    let rows = lines(&out.path().join("pets.ndjson"));
    let mut ids: Vec<&str> = rows.iter().map(|r| r["_id"].as_str().unwrap()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!((rows.len(), ids.len()), (200, 200), "every pet once");
    let leftovers: Vec<String> = std::fs::read_dir(out.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".partial-"))
        .collect();
    assert!(leftovers.is_empty(), "the killed run's staging file is cleaned up: {leftovers:?}");
}

#[tokio::test]
async fn files_on_the_in_memory_object_store() {
    use object_store::{ObjectStoreExt, path::Path as StorePath};
    let ws = Workspace::new();
    let data = ws.data();
    edit(&ws, b"id,name\n1,Rex\n2,Tom\n");
    let bucket = format!("targets-{}", std::process::id());
    ws.write_to(
        &format!("{{ type: file, location: \"{}\" }}", data.display()),
        r#"{ path: "pets.csv", idPosition: id }"#,
        &format!("{{ type: file, location: \"memory://{bucket}/exports\", fileName: pets }}"),
        "",
    );
    completed(&ws.run().await);
    let store = syncline::sources::file::memory_store(&bucket);
    let read = |store: std::sync::Arc<dyn object_store::ObjectStore>| async move {
        let bytes = store.get(&StorePath::from("exports/pets.ndjson")).await.unwrap().bytes().await.unwrap();
        String::from_utf8(bytes.to_vec())
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(read(store.clone()).await.len(), 2);
    edit(&ws, b"id,name\n1,Rex\n");
    let report = ws.run().await;
    completed(&report);
    assert_eq!(report.job.counts.deleted, 1);
    assert_eq!(read(store).await, vec![serde_json::json!({"_id": "1", "id": 1, "name": "Rex"})]);
}
