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
