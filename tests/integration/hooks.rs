//! Webhooks in: a signed push of one object goes through the mapping, hash-diff and contracts; a bad
//! signature is 401 and changes nothing; a replayed event id runs nothing again; the API key alone
//! starts a run.

use reqwest::StatusCode;
use serde_json::{Value, json};
use syncline::fixture::{self, Fixture};

use super::common::pet_pipeline;
use super::service::Service;

const SECRET: &str = "hook-secret-3f9a";

async fn push(service: &Service, body: &Value, secret: &str, event: Option<&str>) -> (StatusCode, Value) {
    let body = body.to_string();
    let signature = syncline::webhooks::signature(secret.as_bytes(), chrono::Utc::now().timestamp(), body.as_bytes());
    let mut request = reqwest::Client::new()
        .post(format!("{}/api/hooks/pets", service.url()))
        .header("content-type", "application/json")
        .header("x-syncline-signature", signature);
    if let Some(event) = event {
        request = request.header("webhook-id", event);
    }
    let response = request.body(body).send().await.unwrap();
    let status = response.status();
    (status, serde_json::from_str(&response.text().await.unwrap()).unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_signed_push_synchronizes_one_object_and_a_bad_one_changes_nothing() {
    let pets = Fixture::start(fixture::pets(3)).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = pet_pipeline(dir.path(), &pets.base_url(), &format!("hook: {{ secret: \"{SECRET}\" }}"));
    let state = tempfile::tempdir().unwrap();
    let service = Service::start(&state, vec![file]).await;
    let object = json!({"object": {"id": 100, "name": "Pushed", "category": {"name": "Dogs"}, "status": "available"}});

    let (status, _) = push(&service, &object, "wrong-secret", Some("e-0")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let unsigned = reqwest::Client::new().post(format!("{}/api/hooks/pets", service.url())).body(object.to_string()).send().await.unwrap();
    assert_eq!(unsigned.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(service.get("/api/jobs").await.1["results"].as_array().unwrap().len(), 0, "nothing ran");

    let (status, job) = push(&service, &object, SECRET, Some("e-1")).await;
    assert_eq!(status, StatusCode::OK, "{job}");
    assert_eq!((job["status"].as_str(), job["entities_inserted"].as_u64()), (Some("COMPLETED"), Some(1)), "{job}");
    let objects = service.get("/api/registers/shop/schemas/pet/objects").await.1;
    assert_eq!(objects["total"], 1);
    assert_eq!(objects["results"][0]["object"]["title"], "Pushed");
    assert_eq!(objects["results"][0]["origin_id"], "100");

    let (status, replay) = push(&service, &object, SECRET, Some("e-1")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!((replay["replay"].as_bool(), replay["job"].as_str()), (Some(true), job["id"].as_str()), "{replay}");
    assert_eq!(service.get("/api/jobs").await.1["results"].as_array().unwrap().len(), 1, "a replay runs nothing");

    // The same object again is unchanged; a CloudEvent carries it as its data; a delete deletes it.
    let (_, again) = push(&service, &object, SECRET, Some("e-2")).await;
    assert_eq!(again["entities_unchanged"], 1, "{again}");
    let event = json!({"specversion": "1.0", "id": "e-3", "type": "pet.changed", "source": "test", "data": {"object": {"id": 100, "name": "Renamed", "category": {"name": "Dogs"}, "status": "sold"}}});
    let (_, changed) = push(&service, &event, SECRET, None).await;
    assert_eq!(changed["entities_updated"], 1, "{changed}");
    let (_, replayed) = push(&service, &event, SECRET, None).await;
    assert_eq!(replayed["replay"], true, "a CloudEvent's id is its event id: {replayed}");
    let (_, deleted) = push(&service, &json!({"delete": 100}), SECRET, Some("e-4")).await;
    assert_eq!(deleted["entities_deleted"], 1, "{deleted}");
    assert_eq!(service.get("/api/registers/shop/schemas/pet/objects").await.1["total"], 0);

    // Nothing pushed, the API key: a run.
    let (status, run) = service.post("/api/hooks/pets", json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{run}");
    let ended = service.finished(run["id"].as_str().unwrap()).await;
    assert_eq!(ended["entities_inserted"], 3, "{ended}");
    let (status, bad) = push(&service, &json!({"object": "not an object"}), SECRET, Some("e-5")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    // A body nested 50,000 levels deep (100 kB, under the body limit) is refused as JSON, and the
    // service stays up.
    let deep = format!("{{\"object\": {}{}}}", "[".repeat(50_000), "]".repeat(50_000));
    let signature = syncline::webhooks::signature(SECRET.as_bytes(), chrono::Utc::now().timestamp(), deep.as_bytes());
    let response = reqwest::Client::new()
        .post(format!("{}/api/hooks/pets", service.url()))
        .header("x-syncline-signature", signature)
        .body(deep)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.text().await.unwrap().contains("recursion limit"));
    assert_eq!(service.get("/api/health").await.0, StatusCode::OK);
    service.stop().await;
}
