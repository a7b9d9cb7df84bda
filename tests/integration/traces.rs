//! OpenTelemetry traces (OTLP over HTTP/protobuf) from a real `syncline run` to an OTLP receiver in the
//! test: a job span, a child span per page request and per sink transaction with the job's trace and
//! parent ids, counts as attributes, and no secret anywhere in what was sent (the source's API key in
//! the query, the collector's ingest key in the headers).

use std::sync::{Arc, Mutex};

use syncline::fixture::{self, Fixture, RequiredAuth};

use crate::common::free_port;

/// A protobuf field as read off the wire: its number and its value (length-delimited ones as bytes).
#[derive(Debug, Clone)]
enum Wire {
    Varint(u64),
    Fixed64(u64),
    Bytes(Vec<u8>),
    Fixed32,
}

/// An independent reader of protobuf's wire format, enough to walk an OTLP request.
fn fields(mut data: &[u8]) -> Vec<(u32, Wire)> {
    fn varint(data: &mut &[u8]) -> u64 {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let (byte, rest) = data.split_first().expect("a whole varint");
            *data = rest;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                break;
            }
        }
        value
    }
    let mut out = Vec::new();
    while !data.is_empty() {
        let key = varint(&mut data);
        let value = match key & 7 {
            0 => Wire::Varint(varint(&mut data)),
            1 => {
                let (bytes, rest) = data.split_at(8);
                data = rest;
                Wire::Fixed64(u64::from_le_bytes(bytes.try_into().unwrap()))
            }
            2 => {
                let len = varint(&mut data) as usize;
                let (bytes, rest) = data.split_at(len);
                data = rest;
                Wire::Bytes(bytes.to_vec())
            }
            5 => {
                data = &data[4..];
                Wire::Fixed32
            }
            other => panic!("wire type {other}"),
        };
        out.push(((key >> 3) as u32, value));
    }
    out
}

fn all(message: &[u8], field: u32) -> Vec<Vec<u8>> {
    fields(message)
        .into_iter()
        .filter(|(f, _)| *f == field)
        .filter_map(|(_, v)| if let Wire::Bytes(b) = v { Some(b) } else { None })
        .collect()
}

fn one(message: &[u8], field: u32) -> Option<Vec<u8>> {
    all(message, field).into_iter().next()
}

/// A span as the test reads it back.
#[derive(Debug)]
struct Span {
    trace: Vec<u8>,
    id: Vec<u8>,
    parent: Option<Vec<u8>>,
    name: String,
    start: u64,
    end: u64,
    attributes: Vec<(String, String)>,
    error: Option<String>,
}

impl Span {
    fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

fn spans_of(request: &[u8]) -> Vec<Span> {
    let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
    let mut spans = Vec::new();
    for resource_spans in all(request, 1) {
        for scope_spans in all(&resource_spans, 2) {
            for span in all(&scope_spans, 2) {
                let fixed = |field| {
                    fields(&span).into_iter().find_map(|(f, v)| if let (true, Wire::Fixed64(n)) = (f == field, v) { Some(n) } else { None })
                };
                let attributes = all(&span, 9)
                    .into_iter()
                    .map(|kv| {
                        let value = fields(&one(&kv, 2).unwrap_or_default()).into_iter().next().map(|(_, v)| v);
                        let value = match value {
                            Some(Wire::Bytes(b)) => text(b),
                            Some(Wire::Varint(n)) => n.to_string(),
                            other => format!("{other:?}"),
                        };
                        (text(one(&kv, 1).unwrap()), value)
                    })
                    .collect();
                spans.push(Span {
                    trace: one(&span, 1).unwrap(),
                    id: one(&span, 2).unwrap(),
                    parent: one(&span, 4),
                    name: text(one(&span, 5).unwrap()),
                    start: fixed(7).unwrap(),
                    end: fixed(8).unwrap(),
                    attributes,
                    error: one(&span, 15).and_then(|status| one(&status, 2)).map(text),
                });
            }
        }
    }
    spans
}

/// The requests an OTLP receiver got: headers and body.
type Received = Arc<Mutex<Vec<(axum::http::HeaderMap, Vec<u8>)>>>;

/// An OTLP/HTTP receiver: keeps every request's headers and body. (The runs are awaited as child
/// processes, so this runtime keeps serving it and the fixture meanwhile.)
async fn receiver() -> (String, Received) {
    let received: Received = Arc::default();
    let kept = Arc::clone(&received);
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
            let kept = Arc::clone(&kept);
            async move {
                kept.lock().unwrap().push((headers, body.to_vec()));
                axum::http::StatusCode::OK
            }
        }),
    );
    let port = free_port();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://127.0.0.1:{port}"), received)
}

#[tokio::test]
async fn a_run_sends_its_job_span_with_request_and_transaction_children_and_no_secret() {
    let (endpoint, received) = receiver().await;
    let fixture = Fixture::start(fixture::pets(12)).await.unwrap();
    let api_key = format!("MRKquery{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let ingest_key = format!("MRKingest{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    *fixture.store.faults.auth.lock().unwrap() = Some(RequiredAuth::Query { name: "api_key".into(), key: api_key.clone() });
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pipeline.yaml");
    std::fs::write(
        &file,
        format!(
            r#"
sources:
  pets: {{ type: api, location: "{}", auth: {{ type: apiKey, in: query, name: api_key, key: {api_key} }} }}
mappings:
  pet: {{ mapping: {{ title: "{{{{ name }}}}" }} }}
registers:
  shop: {{ schemas: {{ pet: {{ type: object }} }} }}
synchronizations:
  pets:
    source: pets
    sourceConfig: {{ endpoint: "/feed/page", idPosition: id, resultsPosition: data.items, pagination: {{ type: page, sizeParam: size, size: 5 }} }}
    mapping: pet
    target: {{ type: register, register: shop, schema: pet }}
"#,
            fixture.base_url()
        ),
    )
    .unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_syncline"))
        .arg("--state")
        .arg(dir.path().join("state"))
        .args(["run", "--json"])
        .arg(&file)
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)
        .env("OTEL_EXPORTER_OTLP_HEADERS", format!("x-ingest-key={ingest_key}"))
        .env("OTEL_SERVICE_NAME", "syncline-test")
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let job: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();

    // Flushed before the process ended: every span is here already.
    let received = received.lock().unwrap().clone();
    assert!(!received.is_empty(), "no OTLP request arrived");
    for (headers, body) in &received {
        assert_eq!(headers["content-type"], "application/x-protobuf");
        assert_eq!(headers["x-ingest-key"], ingest_key.as_str(), "the configured headers go with each request");
        for marker in [&api_key, &ingest_key] {
            assert!(!body.windows(marker.len()).any(|w| w == marker.as_bytes()), "a secret in the exported spans");
        }
        assert!(body.windows(13).any(|w| w == b"syncline-test"), "the service name is the resource's");
    }
    let spans: Vec<Span> = received.iter().flat_map(|(_, body)| spans_of(body)).collect();
    let jobs: Vec<&Span> = spans.iter().filter(|s| s.name == "syncline.job").collect();
    assert_eq!(jobs.len(), 1, "{spans:#?}");
    let root = jobs[0];
    assert_eq!(root.parent, None);
    assert_eq!(root.attribute("syncline.job.id"), job["id"].as_str());
    assert_eq!(root.attribute("syncline.synchronization"), Some("pets"));
    assert_eq!(root.attribute("syncline.status"), Some("COMPLETED"));
    assert_eq!(root.attribute("syncline.records.created"), Some("12"));
    assert_eq!(root.error, None);
    let children = |name: &str| spans.iter().filter(|s| s.name == name).collect::<Vec<_>>();
    let requests = children("syncline.request");
    assert_eq!(requests.len(), 3, "three pages of five: {requests:#?}");
    let transactions = children("syncline.transaction");
    assert!(!transactions.is_empty());
    for child in requests.iter().chain(&transactions) {
        assert_eq!(child.trace, root.trace, "one trace for the job");
        assert_eq!(child.parent.as_deref(), Some(root.id.as_slice()), "{} is the job's child", child.name);
        assert!(root.start <= child.start && child.end <= root.end, "{} lies within the job", child.name);
    }
    for request in &requests {
        assert_eq!(request.attribute("http.request.method"), Some("GET"));
        assert_eq!(request.attribute("http.response.status_code"), Some("200"));
        let url = request.attribute("url.full").unwrap();
        assert!(url.contains("/feed/page?page=") && !url.contains(&api_key), "{url}");
    }
    let written: u64 = transactions.iter().map(|t| t.attribute("syncline.writes").unwrap().parse::<u64>().unwrap()).sum();
    assert_eq!(written, 12);
}

#[tokio::test]
async fn a_failed_job_carries_its_error_as_the_span_status() {
    let (endpoint, received) = receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pipeline.yaml");
    let dead = format!("http://127.0.0.1:{}", free_port());
    std::fs::write(
        &file,
        format!(
            "sources:\n  down: {{ type: api, location: \"{dead}\", retries: {{ maxAttempts: 1 }} }}\nmappings:\n  m: {{ passThrough: true }}\nregisters:\n  r: {{ schemas: {{ s: {{ type: object }} }} }}\nsynchronizations:\n  s:\n    source: down\n    sourceConfig: {{ endpoint: /x, idPosition: id }}\n    mapping: m\n    target: {{ type: register, register: r, schema: s }}\n"
        ),
    )
    .unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_syncline"))
        .arg("--state")
        .arg(dir.path().join("state"))
        .args(["run", "--json"])
        .arg(&file)
        .env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", format!("{endpoint}/v1/traces"))
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let spans: Vec<Span> = received.lock().unwrap().iter().flat_map(|(_, body)| spans_of(body)).collect();
    let job = spans.iter().find(|s| s.name == "syncline.job").expect("the job's span");
    assert_eq!(job.attribute("syncline.status"), Some("FAILED"));
    assert!(job.error.as_deref().is_some_and(|e| e.contains("127.0.0.1")), "{job:?}");
    let request = spans.iter().find(|s| s.name == "syncline.request").expect("the request's span");
    assert!(request.error.is_some(), "{request:?}");
}
