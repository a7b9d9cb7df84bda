//! Two syncline services, each a `serve` process with its own state, federating a register schema:
//! one way, then both ways. Creates, updates and deletes arrive exactly once, and a quiet run changes
//! nothing on either side.

use std::collections::BTreeSet;
use std::path::Path;

use reqwest::Method;
use serde_json::Value;
use syncline::fixture::{self, Fixture};

use super::common::{SCHEMA, ServeProcess, free_port, job_ended, keyed_json};

const KEY: &str = "federation-key-41d2";

/// A `syncline serve` process.
struct Peer {
    _serve: ServeProcess,
    url: String,
    http: reqwest::Client,
}

impl Peer {
    /// Writes the pipeline of a peer that reads the pet fixture at `pets` and the register at `other`.
    async fn start(dir: &Path, port: u16, pets: &str, other: &str) -> Peer {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("pet.schema.json"), SCHEMA).unwrap();
        let pipeline = format!(
            r#"
sources:
  pets: {{ type: api, location: "{pets}" }}
  peer:
    type: openregister
    location: "{other}"
    register: fed
    schema: pet
    auth: apiKey
    apiKey: "{KEY}"
mappings:
  pet: {{ mapping: {{ title: "{{{{ name }}}}", category: "{{{{ category.name }}}}", status: "{{{{ status }}}}" }} }}
  copy: {{ mapping: {{ title: "{{{{ title }}}}", category: "{{{{ category }}}}", status: "{{{{ status }}}}" }} }}
registers:
  fed: {{ schemas: {{ pet: {{ $ref: pet.schema.json }} }} }}
synchronizations:
  pets:
    source: pets
    sourceConfig: {{ endpoint: "/feed/page", idPosition: id, resultsPosition: data.items, pagination: {{ type: page, sizeParam: size, size: 4 }} }}
    mapping: pet
    target: {{ type: register, register: fed, schema: pet }}
  from-peer:
    source: peer
    mapping: copy
    target: {{ type: register, register: fed, schema: pet }}
"#
        );
        let file = dir.join("pipeline.yaml");
        std::fs::write(&file, pipeline).unwrap();
        let serve = ServeProcess::start(&dir.join("state"), &file, port, &[], &[("SYNCLINE_API_KEY", KEY)]).await;
        Peer { url: serve.url.clone(), _serve: serve, http: reqwest::Client::new() }
    }

    /// Runs a synchronization to its end: `(created, updated, deleted, found)`, and the job.
    async fn run(&self, sync: &str) -> ((u64, u64, u64, u64), Value) {
        let job = keyed_json(&self.http, Method::POST, &self.url, &format!("/api/synchronizations/{sync}/run"), KEY).await;
        let id = job["id"].as_str().unwrap_or_else(|| panic!("no job: {job}"));
        let job = job_ended(&self.http, &self.url, KEY, id).await;
        assert_eq!(job["status"], "COMPLETED", "{job}");
        let n = |key: &str| job[key].as_u64().unwrap();
        ((n("entities_inserted"), n("entities_updated"), n("entities_deleted"), n("entities_found")), job)
    }

    /// The titles of the objects in fed/pet.
    async fn titles(&self) -> BTreeSet<String> {
        let page = keyed_json(&self.http, Method::GET, &self.url, "/api/registers/fed/schemas/pet/objects?limit=1000", KEY).await;
        page["results"].as_array().unwrap().iter().map(|o| o["object"]["title"].as_str().unwrap().to_string()).collect()
    }

    async fn changes(&self, query: &str) -> Value {
        keyed_json(&self.http, Method::GET, &self.url, &format!("/api/registers/fed/schemas/pet/changes?{query}"), KEY).await
    }
}

async fn pet_store(n: usize, prefix: &str) -> Fixture {
    let mut pets = fixture::pets(n);
    for pet in &mut pets {
        pet["name"] = Value::from(format!("{prefix} {}", pet["name"].as_str().unwrap()));
    }
    Fixture::start(pets).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_federate_one_way_then_both_ways_and_settle() {
    let dir = tempfile::tempdir().unwrap();
    let (store_a, store_b) = (pet_store(10, "A").await, pet_store(5, "B").await);
    let (port_a, port_b) = (free_port(), free_port());
    let (url_a, url_b) = (format!("http://127.0.0.1:{port_a}"), format!("http://127.0.0.1:{port_b}"));
    let a = Peer::start(&dir.path().join("a"), port_a, &store_a.base_url(), &url_b).await;
    let b = Peer::start(&dir.path().join("b"), port_b, &store_b.base_url(), &url_a).await;
    assert_eq!(a.run("pets").await.0, (10, 0, 0, 10));
    assert_eq!(b.run("pets").await.0, (5, 0, 0, 5));

    // One way: B reads A's register; the first run reads A's whole feed.
    assert_eq!(b.run("from-peer").await.0, (10, 0, 0, 10));
    assert_eq!(b.titles().await.len(), 15);
    let (counts, _) = b.run("from-peer").await;
    assert_eq!(counts, (0, 0, 0, 0), "a quiet run reads no change");

    // Both ways: A reads B's register, which leaves out what B read from A.
    assert_eq!(a.run("from-peer").await.0, (5, 0, 0, 5));
    assert_eq!(a.titles().await, b.titles().await);
    assert_eq!(a.titles().await.len(), 15);
    for _ in 0..2 {
        assert_eq!(b.run("from-peer").await.0, (0, 0, 0, 0), "B is not sent back what A read from it");
        assert_eq!(a.run("from-peer").await.0, (0, 0, 0, 0), "A is not sent back what B read from it");
    }

    // An update and a delete at A's source arrive at B once, as an update and a delete.
    store_a.store.update(1, |pet| pet["name"] = Value::from("A renamed"));
    store_a.store.remove(2);
    assert_eq!(a.run("pets").await.0, (0, 1, 1, 9));
    let (counts, job) = b.run("from-peer").await;
    assert_eq!(counts, (0, 1, 1, 1), "the update is a record found, the delete is reported: {job}");
    assert_eq!(b.run("from-peer").await.0, (0, 0, 0, 0));
    assert_eq!(a.run("from-peer").await.0, (0, 0, 0, 0));
    // And one at B's arrives at A.
    store_b.store.update(3, |pet| pet["status"] = Value::from("pending"));
    store_b.store.remove(4);
    assert_eq!(b.run("pets").await.0, (0, 1, 1, 4));
    assert_eq!(a.run("from-peer").await.0, (0, 1, 1, 1));
    assert_eq!(b.run("from-peer").await.0, (0, 0, 0, 0));
    let titles = a.titles().await;
    assert_eq!(titles, b.titles().await);
    assert_eq!(titles.len(), 13);
    assert!(titles.contains("A renamed") && !titles.iter().any(|t| t.ends_with(" 2") && t.starts_with("A ")), "{titles:?}");

    // The feed itself: every change numbered, in order; a peer's own changes left out for it.
    let all = a.changes("since=0&limit=1000").await;
    let seqs: Vec<i64> = all["results"].as_array().unwrap().iter().map(|c| c["seq"].as_i64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]) && seqs.len() == 10 + 5 + 2 + 2, "{all}");
    assert_eq!(all["more"], false);
    let paged = a.changes("since=0&limit=3").await;
    assert_eq!((paged["more"].as_bool(), paged["next"].as_i64()), (Some(true), Some(seqs[2])), "{paged}");
    let instance_b = b.changes("since=0&limit=1").await["instance"].as_str().unwrap().to_string();
    let for_b = a
        .http
        .get(format!("{}/api/registers/fed/schemas/pet/changes?since=0&limit=1000", a.url))
        .header("x-api-key", KEY)
        .header("X-OpenRegister-Sync-Origin", &instance_b)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let for_b: Value = serde_json::from_str(&for_b).unwrap();
    let from_b = for_b["results"].as_array().unwrap().iter().filter(|c| c["synchronization"] == "from-peer").count();
    assert_eq!(from_b, 0, "what came from B is not in the feed B reads: {for_b}");
    assert_eq!(for_b["results"].as_array().unwrap().len(), 10 + 2);
}
