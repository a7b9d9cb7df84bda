//! The database target against the PostgreSQL and MariaDB this machine runs (a table of its own per
//! test; skipped, saying why, where a server does not answer): creates, re-runs writing nothing,
//! updates, deletes (hard and soft), a bad row failing alone, a missing table refused before any write.

use mysql_async::prelude::Queryable;
use syncline::pipeline::RunOptions;

use crate::common::counts;
use crate::database::{mysql, mysql_url, postgres, postgres_url, table_name};
use crate::workspace::{completed, write_file, Workspace};

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
    let names: Vec<String> = db.query(&format!("SELECT name FROM {table} ORDER BY origin_id"), &[]).await.unwrap().iter().map(|r| r.get(0)).collect();
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
    let rows: Vec<(String, String, i64)> = db.query(format!("SELECT origin_id, name, weight FROM {table} ORDER BY origin_id")).await.unwrap();
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
    let mut ids: Vec<(String, String)> = lines(&file).iter().map(|r| (r["_id"].as_str().unwrap().to_string(), r["name"].as_str().unwrap().to_string())).collect();
    ids.sort();
    assert_eq!(ids, [("1".to_string(), "Rexy".to_string()), ("2".to_string(), "Tom".to_string())], "the edit in, the unchanged row carried over, the deleted one out");
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
