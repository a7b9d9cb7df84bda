//! SQL over the state (DataFusion): answers match the register's API and the state's own records on
//! the same data, a register schema's fields are typed columns, nothing that writes is accepted, and
//! the limits hold; `POST /api/sql` is behind the key and answers the same.

use reqwest::Method;
use serde_json::{Value, json};
use syncline::sql::{Limits, SqlError, query};

use crate::common::Harness;

async fn rows(h: &Harness, sql: &str) -> Vec<serde_json::Map<String, Value>> {
    query(&h.state, sql, Limits::default()).await.unwrap_or_else(|e| panic!("{sql}: {e}")).json_rows().unwrap()
}

#[tokio::test]
async fn sql_answers_match_the_register_the_jobs_and_the_contracts() {
    let h = Harness::new(60).await;
    assert_eq!(h.run().await.job.counts.created, 60);
    h.fixture.store.remove(3);
    h.run().await;

    let register = h.state.register().unwrap();
    let filter = [("status".to_string(), "available".to_string())];
    let available = register.count("shop", "pet", &filter).unwrap();
    let counted = rows(&h, "SELECT count(*) AS n FROM shop.pet WHERE status = 'available'").await;
    assert_eq!(counted[0]["n"], json!(available));
    // Every live object, with the ids and fields the API lists.
    let listed: Vec<(String, Value)> =
        register.list("shop", "pet", &[], 1000, 0).unwrap().into_iter().map(|o| (o.id, o.object["title"].clone())).collect();
    let mut listed = listed;
    listed.sort_by(|a, b| a.0.cmp(&b.0));
    let queried: Vec<(String, Value)> = rows(&h, "SELECT _id, title FROM shop.pet ORDER BY _id")
        .await
        .into_iter()
        .map(|r| (r["_id"].as_str().unwrap().to_string(), r["title"].clone()))
        .collect();
    assert_eq!(queried, listed);
    assert_eq!(queried.len(), 59, "the deleted object is not a row");
    // Objects as JSON text, and a field's JSON path through DataFusion's own functions.
    let one = rows(&h, "SELECT _object, _synchronization, _origin_id FROM shop.pet WHERE _origin_id = '5'").await;
    let object: Value = serde_json::from_str(one[0]["_object"].as_str().unwrap()).unwrap();
    assert_eq!(object, h.register()["5"]);
    assert_eq!(one[0]["_synchronization"], "pets");

    let jobs = rows(&h, "SELECT status, created, deleted FROM jobs ORDER BY created_at").await;
    assert_eq!(
        jobs,
        [json!({"status": "COMPLETED", "created": 60, "deleted": 0}), json!({"status": "COMPLETED", "created": 0, "deleted": 1})]
            .map(|v| v.as_object().unwrap().clone())
    );
    let contracts = rows(&h, "SELECT synchronization, count(*) AS n, count(DISTINCT target_id) AS ids FROM contracts GROUP BY 1").await;
    assert_eq!(contracts, [json!({"synchronization": "pets", "n": 59, "ids": 59}).as_object().unwrap().clone()]);
    // A contract's target id is its object's id: the join the state's two halves share.
    let joined =
        rows(&h, "SELECT count(*) AS n FROM contracts c JOIN shop.pet p ON p._id = c.target_id AND p._origin_id = c.origin_id").await;
    assert_eq!(joined[0]["n"], 59);
    let calls = rows(&h, "SELECT count(*) AS n FROM calls WHERE method = 'GET' AND status = 200").await;
    assert!(calls[0]["n"].as_u64().unwrap() >= 18, "{calls:?}");
}

#[tokio::test]
async fn nothing_that_writes_runs_and_the_limits_hold() {
    let h = Harness::new(20).await;
    h.run().await;
    for sql in [
        "DELETE FROM jobs",
        "INSERT INTO jobs (id) VALUES ('x')",
        "CREATE TABLE t AS SELECT 1",
        "DROP TABLE jobs",
        "COPY jobs TO '/tmp/syncline-sql-copy.csv'",
        "SET datafusion.execution.batch_size = 1",
        "SELECT 1; DELETE FROM jobs",
        "SELECT * FROM '/etc/passwd'",
    ] {
        match query(&h.state, sql, Limits::default()).await {
            Err(SqlError::Query(message)) => assert!(!message.is_empty(), "{sql}"),
            Err(other) => panic!("{sql}: {other}"),
            Ok(_) => panic!("{sql} ran"),
        }
    }
    assert!(!std::path::Path::new("/tmp/syncline-sql-copy.csv").exists());
    assert_eq!(h.register().len(), 20, "the register is as it was");
    let cut = query(&h.state, "SELECT * FROM shop.pet", Limits { rows: 7, ..Limits::default() }).await.unwrap();
    assert_eq!((cut.rows(), cut.truncated), (7, true));
    let whole = query(&h.state, "SELECT * FROM shop.pet", Limits { rows: 20, ..Limits::default() }).await.unwrap();
    assert_eq!((whole.rows(), whole.truncated), (20, false));
    let slow = "SELECT count(*) FROM (SELECT a.title FROM shop.pet a, shop.pet b, shop.pet c, shop.pet d, shop.pet e, shop.pet f)";
    let timed = query(&h.state, slow, Limits { time: std::time::Duration::from_millis(50), ..Limits::default() }).await;
    assert!(matches!(timed, Err(SqlError::Timeout(_))), "64M rows within 50 ms?");
}

#[tokio::test]
async fn post_api_sql_is_behind_the_key_and_refuses_writes() {
    let state = tempfile::tempdir().unwrap();
    let service = crate::service::Service::start(&state, Vec::new()).await;
    let http = reqwest::Client::new();
    let anonymous = http
        .post(format!("{}/api/sql", service.url()))
        .header("content-type", "application/json")
        .body(r#"{"query": "SELECT 1"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let (status, answer) = service.call(Method::POST, "/api/sql", Some(json!({"query": "SELECT 1 AS one, 'a' AS letter"}))).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["rows"], json!([{"one": 1, "letter": "a"}]));
    assert_eq!(answer["columns"][0], json!({"name": "one", "type": "Int64"}));
    let (status, answer) = service.call(Method::POST, "/api/sql", Some(json!({"query": "DELETE FROM jobs"}))).await;
    assert_eq!(status, 400, "{answer}");
    let (status, answer) = service.call(Method::POST, "/api/sql", Some(json!({"query": "SELECT * FROM jobs", "limit": 1000000}))).await;
    assert_eq!((status.as_u16(), answer["truncated"].clone()), (200, json!(false)), "{answer}");
    service.stop().await;
}
