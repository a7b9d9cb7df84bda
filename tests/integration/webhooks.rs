//! Webhooks out, against a real receiver: a `serve` process delivers object events while the receiver
//! is down, is killed -9 between the writes and their delivery, and after its restart every event
//! arrives, signed, in order per object, through a receiver that answers 500 to some; a delivery that
//! keeps failing is dead-lettered, listed, and delivered when sent again; a failed job is an event.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use reqwest::Method;
use serde_json::Value;
use syncline::fixture::{self, Fixture};

use super::common::{SCHEMA, ServeProcess, job_ended, keyed_json};

const KEY: &str = "webhook-test-key-77a1";
const SECRET: &str = "whsec-5e2b90";

#[derive(Default)]
struct Receiver {
    /// (event id, type, subject, data.seq) in arrival order, of deliveries answered 2xx.
    got: Mutex<Vec<(String, String, String, i64)>>,
    /// Requests still to answer with 500.
    fail_next: AtomicU32,
    /// Whether `/dead-end` answers 500.
    dead_end_down: AtomicBool,
    bad_signatures: AtomicU32,
}

fn verified(headers: &HeaderMap, body: &[u8]) -> bool {
    let Some(header) = headers.get("x-syncline-signature").and_then(|v| v.to_str().ok()) else { return false };
    let Some((t, v1)) = header.strip_prefix("t=").and_then(|rest| rest.split_once(",v1=")) else { return false };
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, SECRET.as_bytes());
    let expected: String =
        ring::hmac::sign(&key, &[t.as_bytes(), b".", body].concat()).as_ref().iter().map(|b| format!("{b:02x}")).collect();
    let fresh = t.parse::<i64>().is_ok_and(|t| (chrono::Utc::now().timestamp() - t).abs() < 300);
    expected == v1 && fresh
}

async fn hook(State(receiver): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    if !verified(&headers, &body) {
        receiver.bad_signatures.fetch_add(1, Ordering::SeqCst);
        return StatusCode::UNAUTHORIZED;
    }
    if receiver.fail_next.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    let event: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(event["specversion"], "1.0");
    assert_eq!(headers.get("webhook-id").unwrap().to_str().unwrap(), event["id"].as_str().unwrap());
    let seq = event["data"]["seq"].as_i64().unwrap_or(0);
    let text = |key: &str| event[key].as_str().unwrap_or_default().to_string();
    receiver.got.lock().unwrap().push((text("id"), text("type"), text("subject"), seq));
    StatusCode::NO_CONTENT
}

async fn dead_end(State(receiver): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    if receiver.dead_end_down.load(Ordering::SeqCst) {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    hook(State(receiver), headers, body).await
}

fn write_pipeline(dir: &Path, pets: &str, receiver: &str) -> std::path::PathBuf {
    std::fs::write(dir.join("pet.schema.json"), SCHEMA).unwrap();
    let text = format!(
        r#"
sources:
  pets: {{ type: api, location: "{pets}", retries: {{ maxAttempts: 1 }} }}
mappings:
  pet: {{ mapping: {{ title: "{{{{ name }}}}", category: "{{{{ category.name }}}}", status: "{{{{ status }}}}" }} }}
registers:
  shop: {{ schemas: {{ pet: {{ $ref: pet.schema.json }} }} }}
synchronizations:
  pets:
    source: pets
    sourceConfig: {{ endpoint: "/feed/page", idPosition: id, resultsPosition: data.items, pagination: {{ type: page, sizeParam: size, size: 4 }} }}
    mapping: pet
    target: {{ type: register, register: shop, schema: pet }}
webhooks:
  receiver:
    url: "{receiver}/hook"
    events: [object.*]
    register: shop
    secret: "{SECRET}"
    retry: {{ maxAttempts: 1000, initialBackoff: 20ms, maxBackoff: 200ms }}
  available-only:
    url: "{receiver}/dead-end"
    events: [object.created]
    filter: {{ "==": [{{ var: status }}, "available"] }}
    secret: "{SECRET}"
    retry: {{ maxAttempts: 2, initialBackoff: 10ms, maxBackoff: 10ms }}
  failures:
    url: "{receiver}/hook"
    events: [job.failed]
    secret: "{SECRET}"
"#
    );
    let file = dir.join("pipeline.yaml");
    std::fs::write(&file, text).unwrap();
    file
}

struct Serve(ServeProcess);

impl Serve {
    async fn start(dir: &Path, port: u16, file: &Path) -> Serve {
        Serve(ServeProcess::start(&dir.join("state"), file, port, &["--tick", "0.05"], &[("SYNCLINE_API_KEY", KEY)]).await)
    }

    async fn run(&self, sync: &str) -> Value {
        let http = reqwest::Client::new();
        let job = keyed_json(&http, Method::POST, &self.0.url, &format!("/api/synchronizations/{sync}/run"), KEY).await;
        job_ended(&http, &self.0.url, KEY, job["id"].as_str().unwrap()).await
    }

    async fn get(&self, path: &str) -> Value {
        keyed_json(&reqwest::Client::new(), Method::GET, &self.0.url, path, KEY).await
    }

    fn kill(self) {
        self.0.kill();
    }
}

async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_survive_a_down_receiver_and_a_kill_and_arrive_signed_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let pets: Fixture = Fixture::start(fixture::pets(6)).await.unwrap();
    let hook_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let file = write_pipeline(dir.path(), &pets.base_url(), &format!("http://127.0.0.1:{hook_port}"));
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();

    // The receiver is down: the writes happen, their deliveries wait; then the service dies hard.
    let service = Serve::start(dir.path(), port, &file).await;
    assert_eq!(service.run("pets").await["entities_inserted"], 6);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pending = service.get("/api/webhooks/deliveries?webhook=receiver&status=pending").await;
    assert!(!pending["results"].as_array().unwrap().is_empty(), "deliveries wait for the receiver: {pending}");
    service.kill();

    // The receiver comes up, answering 500 to its first three requests; the service restarts.
    let receiver = Arc::new(Receiver { fail_next: AtomicU32::new(3), dead_end_down: AtomicBool::new(true), ..Receiver::default() });
    let app = Router::new().route("/hook", post(hook)).route("/dead-end", post(dead_end)).with_state(Arc::clone(&receiver));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", hook_port)).await.unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let service = Serve::start(dir.path(), port, &file).await;
    let arrived = |n: usize| receiver.got.lock().unwrap().iter().filter(|e| e.1.starts_with("object.")).count() >= n;
    until("the six creates", || arrived(6)).await;

    // Changes to one object arrive in order: two updates and a delete.
    pets.store.update(1, |pet| pet["name"] = Value::from("First rename"));
    assert_eq!(service.run("pets").await["entities_updated"], 1);
    pets.store.update(1, |pet| pet["name"] = Value::from("Second rename"));
    pets.store.remove(2);
    let job = service.run("pets").await;
    assert_eq!((job["entities_updated"].as_u64(), job["entities_deleted"].as_u64()), (Some(1), Some(1)), "{job}");
    until("the updates and the delete", || arrived(9)).await;

    let got = receiver.got.lock().unwrap().clone();
    let mut by_id: BTreeMap<&str, usize> = BTreeMap::new();
    for event in &got {
        *by_id.entry(event.0.as_str()).or_default() += 1;
    }
    assert!(by_id.values().all(|n| *n == 1), "each event once here (a redelivery would repeat its id): {got:?}");
    let mut by_subject: BTreeMap<&str, Vec<(i64, &str)>> = BTreeMap::new();
    for (_, kind, subject, seq) in &got {
        by_subject.entry(subject.as_str()).or_default().push((*seq, kind.as_str()));
    }
    assert!(by_subject.values().all(|events| events.windows(2).all(|w| w[0].0 < w[1].0)), "in order per object: {by_subject:?}");
    let kinds: Vec<Vec<&str>> = by_subject.values().filter(|e| e.len() > 1).map(|e| e.iter().map(|(_, k)| *k).collect()).collect();
    assert!(kinds.contains(&vec!["object.created", "object.updated", "object.updated"]), "{kinds:?}");
    assert!(kinds.contains(&vec!["object.created", "object.deleted"]), "{kinds:?}");
    assert_eq!(receiver.bad_signatures.load(Ordering::SeqCst), 0);

    // The filtered subscription's deliveries (available pets only) failed twice: dead-lettered.
    let deadline = Instant::now() + Duration::from_secs(30);
    let dead = loop {
        let dead = service.get("/api/webhooks/deliveries?webhook=available-only&status=dead").await;
        let list = dead["results"].as_array().unwrap().clone();
        if list.len() == 4 || Instant::now() > deadline {
            break list;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(dead.len(), 4, "pets 1, 2, 4 and 5 of six are available: {dead:?}");
    // They died while the receiver was down.
    assert!(dead.iter().all(|d| d["attempts"] == 2 && d["last_error"].as_str().unwrap().contains("onnect")), "{dead:?}");
    receiver.dead_end_down.store(false, Ordering::SeqCst);
    let id = dead[0]["id"].as_i64().unwrap();
    let event_id = dead[0]["event_id"].as_str().unwrap().to_string();
    let http = reqwest::Client::new();
    let again = keyed_json(&http, Method::POST, &service.0.url, &format!("/api/webhooks/deliveries/{id}/redeliver"), KEY).await;
    assert_eq!(again["status"], "pending", "{again}");
    until("the redelivery", || receiver.got.lock().unwrap().iter().any(|e| e.0 == event_id)).await;

    // The console and the command line list the other dead letters.
    let console = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let login = console.post(format!("{}/login", service.0.url)).form(&[("key", KEY)]).send().await.unwrap();
    let cookie = login.headers().get("set-cookie").unwrap().to_str().unwrap().split(';').next().unwrap().to_string();
    let page = console.get(format!("{}/webhooks?status=dead", service.0.url)).header("cookie", &cookie).send().await.unwrap();
    let page = page.text().await.unwrap();
    assert_eq!(page.matches("data-action=\"redeliver\"").count(), 3, "{page}");
    let cli = std::process::Command::new(env!("CARGO_BIN_EXE_syncline"))
        .arg("--state")
        .arg(dir.path().join("state"))
        .args(["webhooks", "deliveries", "--status", "dead"])
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&cli.stdout);
    assert_eq!(listed.lines().filter(|l| l.contains("dead") && l.contains("available-only")).count(), 3, "{listed}");

    // A failed job is an event too.
    pets.store.faults.server_errors.store(100, Ordering::SeqCst);
    assert_eq!(service.run("pets").await["status"], "FAILED");
    until("job.failed", || receiver.got.lock().unwrap().iter().any(|e| e.1 == "job.failed" && e.2 == "pets")).await;
}

/// A minimal SMTP receiver: takes every message, keeps its DATA.
async fn smtp_receiver() -> (u16, Arc<Mutex<Vec<String>>>) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let messages = Arc::new(Mutex::new(Vec::new()));
    let kept = Arc::clone(&messages);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let kept = Arc::clone(&kept);
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut lines = BufReader::new(read).lines();
                write.write_all(b"220 receiver ESMTP\r\n").await.unwrap();
                let (mut data, mut in_data) = (String::new(), false);
                while let Ok(Some(line)) = lines.next_line().await {
                    if in_data {
                        if line == "." {
                            in_data = false;
                            kept.lock().unwrap().push(std::mem::take(&mut data));
                            write.write_all(b"250 queued\r\n").await.unwrap();
                        } else {
                            data.push_str(&line);
                            data.push('\n');
                        }
                        continue;
                    }
                    let verb = line.split_whitespace().next().unwrap_or("").to_ascii_uppercase();
                    let answer: &[u8] = match verb.as_str() {
                        "EHLO" | "HELO" => b"250 receiver\r\n",
                        "DATA" => {
                            in_data = true;
                            b"354 end with a dot\r\n"
                        }
                        "QUIT" => {
                            write.write_all(b"221 bye\r\n").await.unwrap();
                            return;
                        }
                        _ => b"250 OK\r\n",
                    };
                    write.write_all(answer).await.unwrap();
                }
            });
        }
    });
    (port, messages)
}

#[tokio::test]
async fn a_failed_job_sends_an_email() {
    let (port, messages) = smtp_receiver().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pet.schema.json"), SCHEMA).unwrap();
    let file = dir.path().join("pipeline.yaml");
    std::fs::write(
        &file,
        format!(
            r#"
sources:
  gone: {{ type: api, location: "http://127.0.0.1:9", retries: {{ maxAttempts: 1 }} }}
mappings:
  pet: {{ mapping: {{ title: "{{{{ name }}}}" }} }}
registers:
  shop: {{ schemas: {{ pet: {{ $ref: pet.schema.json }} }} }}
synchronizations:
  broken:
    source: gone
    sourceConfig: {{ endpoint: "/pets", idPosition: id }}
    mapping: pet
    target: {{ type: register, register: shop, schema: pet }}
webhooks:
  ops:
    email: {{ server: "smtp://127.0.0.1:{port}?tls=none", from: "syncline@example.org", to: ["ops@example.org"] }}
    events: [job.failed]
    afterFailures: 2
"#
        ),
    )
    .unwrap();
    let state = tempfile::tempdir().unwrap();
    let service = super::service::Service::start(&state, vec![file]).await;
    for _ in 0..3 {
        let (_, job) = service.post("/api/synchronizations/broken/run", serde_json::json!({})).await;
        let job = service.finished(job["id"].as_str().unwrap()).await;
        assert_eq!(job["status"], "FAILED", "{job}");
    }
    until("the email", || !messages.lock().unwrap().is_empty()).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = messages.lock().unwrap().clone();
    assert_eq!(got.len(), 1, "one email, at the second failure in a row: {got:?}");
    assert!(got[0].contains("Subject: syncline: broken failed (2 in a row)") && got[0].contains("To: ops@example.org"), "{}", got[0]);
    assert!(got[0].contains("cannot connect"), "the job's error is in the message: {}", got[0]);
    service.stop().await;
}

#[tokio::test]
async fn a_subscription_made_over_the_api_gets_what_happens_right_after() {
    let pets = Fixture::start(fixture::pets(3)).await.unwrap();
    let receiver = Arc::new(Receiver::default());
    let app = Router::new().route("/hook", post(hook)).with_state(Arc::clone(&receiver));
    let (address, _server) = super::common::serve(app).await;
    let dir = tempfile::tempdir().unwrap();
    let file = write_pipeline(dir.path(), &pets.base_url(), "http://127.0.0.1:9");
    let state = tempfile::tempdir().unwrap();
    let service = super::service::Service::start(&state, vec![file]).await;
    let subscription =
        serde_json::json!({"id": "fresh", "url": format!("http://{address}/hook"), "events": ["object.created"], "secret": SECRET});
    let (status, made) = service.post("/api/webhooks", subscription).await;
    assert_eq!(status, reqwest::StatusCode::CREATED, "{made}");
    assert_eq!(made["secret"], "***", "{made}");
    let (_, job) = service.post("/api/synchronizations/pets/run", serde_json::json!({})).await;
    assert_eq!(service.finished(job["id"].as_str().unwrap()).await["entities_inserted"], 3);
    until("the three creates", || receiver.got.lock().unwrap().len() == 3).await;
    service.stop().await;
}
