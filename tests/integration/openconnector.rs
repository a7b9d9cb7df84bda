//! OpenConnector compatibility end to end: a configuration file in its export shape (several sources,
//! mappings and synchronizations, dot-keys, `[]` buckets, references by id, uuid and slug) imported and
//! run against the fixture; export → import → export; and the API's OpenConnector run answer.

use std::path::Path;

use reqwest::StatusCode;
use serde_json::{Value, json};
use syncline::config::Pipeline;
use syncline::fixture::{self, Fixture};
use syncline::openconnector;
use syncline::store::StateDir;

use super::cli::{syncline, text};
use super::service::Service;

/// A configuration as OpenRegister exports it, pointing at `base`.
fn configuration(base: &str) -> Value {
    json!({
        "openapi": "3.0.0",
        "info": {"title": "Pets", "version": "1.0.8"},
        "x-openregister": {"type": "default", "app": "uploaded-config", "sourceType": "upload", "sourceUrl": null},
        "components": {
            "registers": {"shop": {"id": 3, "title": "Shop", "slug": "shop", "schemas": ["pet", "7"]}},
            "schemas": {
                "pet": {"slug": "pet", "title": "Pet", "properties": {
                    "title": {"type": "string", "required": true}, "category": {"type": "string"}, "photo": {"type": "file"}}},
                "tag": {"id": "7", "slug": "tag", "title": "Tag", "properties": {"title": {"type": "string"}}}
            },
            "sources": {
                "pet-store": {
                    "id": "1", "uuid": "5a7d6c1e-0000-4000-8000-000000000001", "name": "Pet store", "type": "json",
                    "location": base, "isEnabled": "true",
                    "configuration": {"headers": [], "headers.Accept": "application/json", "query.unused": "x", "timeout": 10,
                                      "verify": "false", "logBody": "true"},
                    "logRetention": 3600, "errorRetention": 86400, "objectCount": 0, "rateLimitLimit": null, "lastCall": null,
                    "slug": "pet-store"
                }
            },
            "mappings": [
                {"id": 5, "uuid": "m-uuid-1", "name": "Pet to object", "slug": "pet-to-object",
                 "mapping": {"title": "{{ name }}", "category": "category.name"}, "unset": [], "cast": [], "passThrough": "false"},
                {"id": 6, "name": "Pet names", "mapping": {"title": "name"}, "cast": {"title": "string"}, "dateCreated": "2025-02-14T13:12:21+00:00"}
            ],
            "synchronizations": {
                "pets-available": {
                    "name": "Available pets", "sourceId": "1", "sourceType": "api", "sourceTargetMapping": "m-uuid-1",
                    "sourceConfig": {"endpoint": "/pet/findByStatus", "query": [], "query.status": "available",
                                     "idPosition": "id", "resultsPosition": "_root", "usesPagination": "false"},
                    "targetType": "register/schema", "targetId": "3/pet", "targetConfig": [], "conditions": [],
                    "followUps": [], "actions": ["fetch-files"], "currentPage": 1, "status": null, "version": "0.0.3"
                },
                "pets-feed": {
                    "name": "Pet feed", "sourceId": "pet-store", "sourceTargetMapping": 6,
                    "sourceConfig": {"endpoint": "/feed/next", "idPosition": "id", "query.limit": "7", "maxPages": "50"},
                    "targetType": "register/schema", "targetId": "shop/tag", "targetConfig": [],
                    "conditions": {"==": [{"var": "status"}, "available"]}
                }
            },
            "rules": [], "endpoints": [],
            "jobs": {"feed-job": {"name": "Feed", "jobClass": "OCA\\OpenConnector\\Action\\SynchronizationAction",
                                  "arguments": {"synchronizationId": "pets-feed"}, "interval": 900, "isEnabled": true}}
        }
    })
}

fn available(fixture: &Fixture) -> usize {
    fixture.store.pets.read().unwrap().iter().filter(|p| p["status"] == "available").count()
}

#[tokio::test]
async fn a_configuration_imports_validates_and_runs_with_its_notes() {
    let fixture = Fixture::start(fixture::pets(23)).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("pets.configuration.json");
    std::fs::write(&config, configuration(&fixture.base_url()).to_string()).unwrap();
    let pipeline_file = dir.path().join("pets.yaml");
    let state = dir.path().join("state");
    let (import, run, rerun) = {
        let (config, pipeline_file, state) = (config.clone(), pipeline_file.clone(), state.clone());
        tokio::task::spawn_blocking(move || {
            let import = syncline(&state, &["import", config.to_str().unwrap(), "-o", pipeline_file.to_str().unwrap()]);
            let run = syncline(&state, &["run", pipeline_file.to_str().unwrap()]);
            let rerun = syncline(&state, &["run", pipeline_file.to_str().unwrap()]);
            (import, run, rerun)
        })
        .await
        .unwrap()
    };
    let notes = text(&import);
    assert_eq!(import.status.code(), Some(0), "{notes}");
    for expected in [
        "synchronizations.pets-available.actions",
        "configuration.logBody",
        "schemas.pet.properties.photo.type",
        "NOT verified",
        "validates",
    ] {
        assert!(notes.contains(expected), "the import report names {expected}:\n{notes}");
    }
    let written = std::fs::read_to_string(&pipeline_file).unwrap();
    assert!(written.contains("every 900s") && written.contains("usesPagination: true") && written.contains("verify: false"), "{written}");

    let n = available(&fixture);
    let out = text(&run);
    assert_eq!(run.status.code(), Some(0), "{out}");
    assert!(out.contains(&format!("pets-available: COMPLETED found {n}, created {n}, updated 0")), "{out}");
    // The feed follows its `links.next` pages; the JsonLogic conditions skip what is not available.
    assert!(out.contains(&format!("pets-feed: COMPLETED found 23, created {n}, updated 0, unchanged 0, skipped {}", 23 - n)), "{out}");
    assert!(!out.contains("NOT verified"), "the imported file says `verify: false` itself, so a run has nothing to warn about:\n{out}");
    let again = text(&rerun);
    assert!(again.contains(&format!("pets-available: COMPLETED found {n}, created 0, updated 0, unchanged {n}")), "{again}");

    let register = StateDir::open(&state).unwrap().register().unwrap();
    let objects = register.objects_of("pets-available").unwrap();
    let bella = objects.iter().find(|(id, _)| id == "7").map(|(_, o)| o.clone()).unwrap();
    assert_eq!(bella, json!({"title": "Bella", "category": "Dogs"}), "a bare dot path copies the value");
}

#[tokio::test]
async fn export_then_import_then_export_is_stable() {
    let config = configuration("http://127.0.0.1:9/api/v3");
    let imported = openconnector::import(&config).unwrap();
    let pipeline = Pipeline::from_value("imported", imported.pipeline, Path::new(".")).unwrap();
    let (first, _) = openconnector::export(&pipeline, "pets");
    let again = openconnector::import(&first).unwrap();
    let pipeline = Pipeline::from_value("again", again.pipeline, Path::new(".")).unwrap_or_else(|e| panic!("the export imports:\n{e}"));
    let (second, _) = openconnector::export(&pipeline, "pets");
    assert_eq!(first, second);
    // What syncline understands survives the trip.
    let sync = &second["components"]["synchronizations"]["pets-available"];
    assert_eq!((sync["sourceId"].as_str(), sync["targetId"].as_str()), (Some("pet-store"), Some("shop/pet")));
    assert_eq!(sync["sourceConfig"]["query"]["status"], "available");
    assert_eq!(second["components"]["sources"]["pet-store"]["configuration"]["headers.Accept"], "application/json");
    assert_eq!(second["components"]["sources"]["pet-store"]["configuration"]["verify"], false);
    assert_eq!(second["components"]["synchronizations"]["pets-feed"]["conditions"], json!({"==": [{"var": "status"}, "available"]}));
    assert_eq!(second["components"]["jobs"]["pets-feed-job"]["interval"], 900);
}

#[tokio::test]
async fn a_configuration_file_runs_as_it_is_and_a_bad_one_says_why() {
    let pipeline = Pipeline::from_value("oc.json", configuration("http://127.0.0.1:9/api/v3"), Path::new(".")).unwrap();
    assert_eq!(pipeline.synchronizations.len(), 2);
    assert!(pipeline.warnings.iter().any(|w| w.message.contains("NOT verified")), "{:?}", pipeline.warnings);
    // An imported mapping stays callable by its OpenConnector id.
    let imported = openconnector::import(&configuration("http://127.0.0.1:9/api/v3")).unwrap();
    let pipeline = Pipeline::from_value("imported", imported.pipeline, Path::new(".")).unwrap();
    let caller: syncline::config::MappingDef = serde_json::from_value(
        json!({"mapping": {"inner": "{{ executeMapping(5, {'name': 'Rex', 'category': {'name': 'Dogs'}})|json_encode }}"}}),
    )
    .unwrap();
    let caller = syncline::mapping::Mapping::compile_in("caller", &caller, &pipeline.mappings).unwrap();
    assert_eq!(caller.apply(&json!({})).unwrap()["inner"], r#"{"title":"Rex","category":"Dogs"}"#);
    let mut broken = configuration("http://127.0.0.1:9/api/v3");
    broken["components"]["synchronizations"]["pets-feed"]["sourceTargetMapping"] = json!("no-such-mapping");
    let errors = Pipeline::from_value("oc.json", broken, Path::new(".")).unwrap_err().to_string();
    assert!(errors.contains("no-such-mapping"), "{errors}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_imports_runs_in_openconnector_shape_and_exports() {
    let fixture = Fixture::start(fixture::pets(12)).await.unwrap();
    let state = tempfile::tempdir().unwrap();
    let service = Service::start(&state, Vec::new()).await;
    let (status, body) = service.post("/api/import", configuration(&fixture.base_url())).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["created"].as_array().unwrap().contains(&json!("synchronizations/pets-available")), "{body}");
    assert!(body["notices"].as_array().unwrap().iter().any(|n| n["key"] == "synchronizations.pets-available.actions"), "{body}");

    let n = available(&fixture) as u64;
    let (status, test) = service.post("/api/synchronizations/pets-available/run", json!({"test": true})).await;
    assert_eq!(status, StatusCode::OK, "{test}");
    assert_eq!((test["message"].as_str(), test["test"].as_bool()), (Some("Success"), Some(true)));
    assert_eq!(test["result"]["objects"]["found"], n);
    let (_, objects) = service.get("/api/registers/shop/schemas/pet/objects").await;
    assert_eq!(objects["total"], 0, "a test run writes nothing: {objects}");

    let (status, run) = service.post("/api/synchronizations/pets-available/run", json!({"force": "false"})).await;
    assert_eq!(status, StatusCode::OK, "{run}");
    assert_eq!(run["result"]["objects"], json!({"found": n, "skipped": 0, "created": n, "updated": 0, "deleted": 0, "invalid": 0}));
    assert_eq!(run["status"], "COMPLETED");
    for stage in ["configuration_validation", "fetch_objects", "object_preparation", "process_objects", "cleanup_invalid"] {
        assert!(run["timing"]["stages"][stage]["duration_ms"].is_number(), "{stage}: {run}");
    }
    let (_, rerun) = service.post("/api/synchronizations/pets-available/run", json!({"test": "false", "force": false})).await;
    assert_eq!(rerun["result"]["objects"]["skipped"], n, "unchanged objects count as skipped, as OpenConnector counts them");

    let (status, export) = service.get("/api/export").await;
    assert_eq!(status, StatusCode::OK, "{export}");
    assert_eq!(export["components"]["synchronizations"]["pets-feed"]["sourceTargetMapping"], "pet-names");
    let (status, bad) = service.post("/api/import", json!({"openapi": "3.0.0"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    // All or nothing: one broken reference keeps every definition of the file out.
    let mut broken = configuration(&fixture.base_url());
    broken["components"]["sources"]["pet-store"]["slug"] = json!("other-store");
    broken["components"]["synchronizations"]["pets-feed"]["sourceTargetMapping"] = json!("missing-mapping");
    let (status, refused) = service.post("/api/import", broken).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert!(refused.to_string().contains("missing-mapping"), "{refused}");
    let (_, sources) = service.get("/api/sources").await;
    assert!(!sources.to_string().contains("other-store"), "nothing of the refused file was kept: {sources}");
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_serves_a_configuration_file_given_on_its_command_line() {
    let fixture = Fixture::start(fixture::pets(6)).await.unwrap();
    let state = tempfile::tempdir().unwrap();
    let file = state.path().join("pets.configuration.json");
    std::fs::write(&file, configuration(&fixture.base_url()).to_string()).unwrap();
    let service = Service::start(&state, vec![file]).await;
    let (_, syncs) = service.get("/api/synchronizations").await;
    assert!(syncs.to_string().contains("pets-available") && syncs.to_string().contains("pets-feed"), "{syncs}");
    let (status, run) = service.post("/api/synchronizations/pets-available/run", json!({"force": false})).await;
    assert_eq!((status, run["result"]["objects"]["created"].as_u64()), (StatusCode::OK, Some(available(&fixture) as u64)), "{run}");
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mapping_calls_another_by_name_in_the_service() {
    let fixture = Fixture::start(fixture::pets(5)).await.unwrap();
    let state = tempfile::tempdir().unwrap();
    let service = Service::start(&state, Vec::new()).await;
    let created = |body: Value| async { service.post("/api/mappings", body).await };
    assert_eq!(created(json!({"name": "Category", "mapping": {"label": "{{ name|upper }}"}})).await.0, StatusCode::CREATED);
    let parent = json!({"name": "Pet with category", "mapping": {"title": "name", "category": "{{ executeMapping('category', category)|json_encode }}"},
                        "cast": {"category": "jsonToArray"}});
    assert_eq!(created(parent).await.0, StatusCode::CREATED);
    let (status, tested) = service
        .post(
            "/api/mappings/test",
            json!({"mapping": {"mapping": {"c": "{{ executeMapping('category', {'name': 'dogs'})|json_encode }}"}}, "inputObject": {}}),
        )
        .await;
    assert_eq!((status, tested["result"]["c"].as_str()), (StatusCode::OK, Some(r#"{"label":"DOGS"}"#)), "{tested}");

    let source = json!({"name": "Pets", "type": "api", "location": fixture.base_url()});
    assert_eq!(service.post("/api/sources", source).await.0, StatusCode::CREATED);
    assert_eq!(
        service.post("/api/registers", json!({"name": "shop", "schemas": {"pet": {"type": "object"}}})).await.0,
        StatusCode::CREATED
    );
    let sync = json!({"name": "Pets", "sourceId": "pets", "sourceTargetMapping": "pet-with-category",
                      "sourceConfig": {"endpoint": "/pet/findByStatus", "idPosition": "id", "resultsPosition": "_root"},
                      "targetType": "register/schema", "targetId": "shop/pet"});
    let (status, body) = service.post("/api/synchronizations", sync).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, run) = service.post("/api/synchronizations/pets/run", json!({"force": false})).await;
    assert_eq!((status, run["result"]["objects"]["created"].as_u64()), (StatusCode::OK, Some(5)), "{run}");
    let (_, objects) = service.get("/api/registers/shop/schemas/pet/objects").await;
    let max = objects["results"].as_array().unwrap().iter().find(|o| o["object"]["title"] == "Max 1").cloned();
    assert_eq!(max.map(|m| m["object"]["category"].clone()), Some(json!({"label": "CATS"})), "{objects}");
    service.stop().await;
}
