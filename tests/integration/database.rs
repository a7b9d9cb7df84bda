//! The database source against the MariaDB and PostgreSQL servers this machine runs. URLs come from
//! `SYNCLINE_TEST_MYSQL_URL` and `SYNCLINE_TEST_POSTGRES_URL` (defaults: the local servers); where a
//! server does not answer, the test says it was skipped and why. Each test uses its own table.

use mysql_async::prelude::Queryable;
use serde_json::json;
use syncline::pipeline::RunOptions;

use crate::common::counts;
use crate::workspace::{Workspace, completed};

pub fn mysql_url() -> String {
    std::env::var("SYNCLINE_TEST_MYSQL_URL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".into())
}

pub fn postgres_url() -> String {
    std::env::var("SYNCLINE_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://root@127.0.0.1:5432/test".into())
}

pub fn table_name(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple().to_string().get(..12).unwrap_or_default())
}

pub async fn mysql() -> Option<mysql_async::Conn> {
    match mysql_async::Conn::from_url(mysql_url()).await {
        Ok(conn) => Some(conn),
        Err(error) => {
            super::common::skipped(&format!("no MySQL/MariaDB at {} ({error}); start it or set SYNCLINE_TEST_MYSQL_URL", mysql_url()));
            None
        }
    }
}

#[tokio::test]
async fn mysql_types_runs_and_incremental_cursor() {
    let Some(mut db) = mysql().await else { return };
    let table = table_name("pets");
    db.query_drop(format!(
        "CREATE TABLE {table} (id INT PRIMARY KEY, name VARCHAR(40), price DECIMAL(10,2), big DECIMAL(30,2), born DATE, \
         seen DATETIME(3), stamp TIMESTAMP NULL, photo BLOB, tags JSON, note TEXT, updated_at DATETIME NOT NULL)"
    ))
    .await
    .unwrap();
    db.query_drop(format!(
        "INSERT INTO {table} VALUES \
         (1, 'Rex', 12.50, 1234567890123456789012.34, '2020-01-15', '2024-05-01 10:00:00.250', '2024-05-01 10:00:00', x'00FF', '{{\"a\": [1, 2]}}', NULL, '2024-01-01 00:00:00'), \
         (2, 'Tom', 4.00, 0, NULL, NULL, NULL, NULL, NULL, 'x', '2024-01-02 00:00:00'), \
         (3, 'Kit', 3.25, 0, NULL, NULL, NULL, NULL, NULL, 'y', '2024-01-03 00:00:00')"
    ))
    .await
    .unwrap();

    let ws = Workspace::new();
    ws.write(
        &format!("{{ type: database, location: \"{}\" }}", mysql_url()),
        &format!("{{ table: {table}, idPosition: id, cursorColumn: updated_at }}"),
    );
    let first = ws.run().await;
    completed(&first);
    assert_eq!(counts(&first), (3, 3, 0, 0, 0, 0));
    let rex = &ws.objects()["1"];
    assert_eq!(rex["price"], json!(12.5));
    assert_eq!(rex["big"], json!("1234567890123456789012.34"), "a decimal a double cannot hold stays exact text");
    assert_eq!(rex["born"], json!("2020-01-15"));
    assert_eq!(rex["seen"], json!("2024-05-01T10:00:00.250000"));
    assert_eq!(rex["stamp"], json!("2024-05-01T10:00:00Z"));
    assert_eq!(rex["photo"], json!("AP8="));
    assert_eq!(rex["tags"], json!({"a": [1, 2]}), "MariaDB's JSON (a checked LONGTEXT) arrives as an object");
    assert_eq!(rex["note"], json!(null));

    // Incremental: only rows at or past the newest updated_at seen.
    db.query_drop(format!("INSERT INTO {table} (id, name, price, big, updated_at) VALUES (4, 'Max', 1, 0, '2024-02-01 00:00:00')"))
        .await
        .unwrap();
    db.query_drop(format!("UPDATE {table} SET name = 'Tommy', updated_at = '2024-02-02 00:00:00' WHERE id = 2")).await.unwrap();
    db.query_drop(format!("DELETE FROM {table} WHERE id = 3")).await.unwrap();
    let report = ws.run().await;
    completed(&report);
    assert_eq!(counts(&report), (2, 1, 1, 0, 0, 0), "rows 4 and 2, past the cursor");
    assert_eq!(ws.objects()["2"]["name"], json!("Tommy"));
    assert!(ws.objects().contains_key("3"), "an incremental run deletes nothing");

    let full = ws.run_with(RunOptions { force_full_sync: true, ..RunOptions::default() }).await;
    completed(&full);
    assert_eq!(full.job.counts.deleted, 1, "a full sync deletes the removed row");
    db.query_drop(format!("DROP TABLE {table}")).await.unwrap();
}

#[tokio::test]
async fn mysql_query_source_and_failures() {
    let Some(mut db) = mysql().await else { return };
    let table = table_name("orders");
    db.query_drop(format!("CREATE TABLE {table} (id INT PRIMARY KEY, total INT)")).await.unwrap();
    db.query_drop(format!("INSERT INTO {table} VALUES (1, 10), (2, 20), (3, 30)")).await.unwrap();
    let ws = Workspace::new();
    let config = format!("{{ query: \"SELECT id, total * 2 AS doubled FROM {table} WHERE total > 10;\", idPosition: id }}");
    ws.write(&format!("{{ type: database, location: \"{}\" }}", mysql_url()), &config);
    let report = ws.run().await;
    completed(&report);
    assert_eq!(ws.objects()["3"], json!({"id": 3, "doubled": 60}));

    // A wrong password: auth, and the password appears nowhere.
    let url = mysql_url().replacen("mysql://root@", "mysql://root:Secret-Pw-42@", 1);
    ws.write(&format!("{{ type: database, location: \"{url}\" }}"), &config);
    let report = ws.run().await;
    assert_eq!(report.job.status.as_str(), "FAILED");
    let error = report.job.error.clone().unwrap();
    assert_eq!(report.job.error_category.as_deref(), Some("auth"), "{error}");
    assert!(!error.contains("Secret-Pw-42"), "{error}");

    // No server: a connection failure, nothing deleted.
    ws.write("{ type: database, location: \"mysql://root@127.0.0.1:9/test\" }", &config);
    let report = ws.run().await;
    assert_eq!(report.job.error_category.as_deref(), Some("connection"), "{:?}", report.job.error);
    assert_eq!(ws.objects().len(), 2);
    db.query_drop(format!("DROP TABLE {table}")).await.unwrap();
}

pub async fn postgres() -> Option<tokio_postgres::Client> {
    match tokio_postgres::connect(&postgres_url(), tokio_postgres::NoTls).await {
        Ok((client, connection)) => {
            tokio::spawn(connection);
            Some(client)
        }
        Err(error) => {
            super::common::skipped(&format!("no PostgreSQL at {} ({error}); start it or set SYNCLINE_TEST_POSTGRES_URL", postgres_url()));
            None
        }
    }
}

#[tokio::test]
async fn postgres_types_runs_and_incremental_cursor() {
    let Some(db) = postgres().await else { return };
    let table = table_name("pets");
    db.batch_execute(&format!(
        "CREATE TABLE {table} (id int PRIMARY KEY, name text, price numeric(10,2), born date, stamp timestamptz, \
         photo bytea, tags jsonb, updated_at timestamp NOT NULL);
         INSERT INTO {table} VALUES
         (1, 'Rex', 12.50, '2020-01-15', '2024-05-01 10:00:00+02', '\\x00ff', '{{\"a\": [1, 2]}}', '2024-01-01'),
         (2, 'Tom', 4, NULL, NULL, NULL, NULL, '2024-01-02'),
         (3, 'Kit', 3.25, NULL, NULL, NULL, NULL, '2024-01-03');"
    ))
    .await
    .unwrap();
    let ws = Workspace::new();
    ws.write(
        &format!("{{ type: database, location: \"{}\" }}", postgres_url()),
        &format!("{{ table: {table}, idPosition: id, cursorColumn: updated_at }}"),
    );
    let first = ws.run().await;
    completed(&first);
    assert_eq!(counts(&first), (3, 3, 0, 0, 0, 0));
    let rex = &ws.objects()["1"];
    assert_eq!(rex["price"], json!(12.5));
    assert_eq!(rex["born"], json!("2020-01-15"));
    assert_eq!(rex["stamp"], json!("2024-05-01T08:00:00+00:00"));
    assert_eq!(rex["photo"], json!("AP8="));
    assert_eq!(rex["tags"], json!({"a": [1, 2]}));
    assert_eq!(counts(&ws.run().await), (1, 0, 0, 1, 0, 0), "a re-run reads from the cursor: only the newest row");

    db.batch_execute(&format!(
        "UPDATE {table} SET name = 'Tommy', updated_at = '2024-02-02' WHERE id = 2; DELETE FROM {table} WHERE id = 3;"
    ))
    .await
    .unwrap();
    let report = ws.run().await;
    completed(&report);
    assert_eq!(counts(&report), (1, 0, 1, 0, 0, 0), "row 3 (at the cursor) is gone, row 2 changed: {:?}", report.warnings);
    let full = ws.run_with(RunOptions { force_full_sync: true, ..RunOptions::default() }).await;
    assert_eq!(full.job.counts.deleted, 1);

    // No server: a connection failure, nothing deleted.
    ws.write("{ type: database, location: \"postgres://root@127.0.0.1:9/test\" }", &format!("{{ table: {table}, idPosition: id }}"));
    let report = ws.run_with(RunOptions { force_full_sync: true, ..RunOptions::default() }).await;
    assert_eq!(report.job.error_category.as_deref(), Some("connection"), "{:?}", report.job.error);
    assert_eq!(ws.objects().len(), 2);
    db.batch_execute(&format!("DROP TABLE {table}")).await.unwrap();
}
