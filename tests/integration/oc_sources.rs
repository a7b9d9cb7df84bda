//! A Source `configuration` as OpenConnector writes it, against a real HTTP server the test starts:
//! OAuth 2 and JWT tokens in templated headers, XML bodies, `X-RateLimit-*` budgets, and next links
//! where JSON:API and HAL put them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use serde_json::{Value, json};
use syncline::config::Pipeline;
use syncline::pipeline::{self, Progress, RunOptions};
use syncline::store::StateDir;

#[derive(Default)]
struct Server {
    token_calls: AtomicU32,
    early_calls: AtomicU32,
    budget_resets: Mutex<Option<Instant>>,
}

type Shared = Arc<Server>;

fn items(page: u32) -> Vec<Value> {
    if page > 3 {
        return Vec::new();
    }
    (1..=4).map(|i| json!({"id": (page - 1) * 4 + i, "name": format!("item {page}.{i}")})).collect()
}

fn page_of(query: &HashMap<String, String>) -> u32 {
    query.get("page").and_then(|p| p.parse().ok()).unwrap_or(1)
}

async fn token(State(server): State<Shared>, Form(form): Form<HashMap<String, String>>) -> Response {
    let ok = form.get("grant_type").map(String::as_str) == Some("client_credentials")
        && form.get("client_id").map(String::as_str) == Some("app")
        && form.get("client_secret").map(String::as_str) == Some("s3cret");
    if !ok {
        return (StatusCode::UNAUTHORIZED, Json(json!({"error": "invalid_client"}))).into_response();
    }
    let n = server.token_calls.fetch_add(1, Ordering::SeqCst) + 1;
    Json(json!({"access_token": format!("tok-{n}"), "token_type": "Bearer", "expires_in": 3600})).into_response()
}

async fn oauth_items(State(server): State<Shared>, headers: HeaderMap, Query(query): Query<HashMap<String, String>>) -> Response {
    let expected = format!("Bearer tok-{}", server.token_calls.load(Ordering::SeqCst));
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
        return (StatusCode::UNAUTHORIZED, "no valid token").into_response();
    }
    Json(json!({"items": items(page_of(&query))})).into_response()
}

async fn jwt_items(headers: HeaderMap) -> Response {
    let token = headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer ")).unwrap_or("");
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.required_spec_claims.clear();
    match jsonwebtoken::decode::<Value>(token, &jsonwebtoken::DecodingKey::from_secret(b"k3y"), &validation) {
        Ok(data) if data.claims["iss"] == "syncline-test" => Json(items(1)).into_response(),
        _ => (StatusCode::UNAUTHORIZED, "bad jwt").into_response(),
    }
}

async fn xml_items() -> Response {
    let body = r#"<?xml version="1.0" encoding="UTF-8"?>
<response><items>
  <item identifier="a1"><name>Bella &amp; Max</name></item>
  <item identifier="a2"><name><![CDATA[Luna]]></name></item>
</items></response>"#;
    ([("content-type", "application/xml")], body).into_response()
}

/// Page 1 spends the budget until a reset one second later; a request before then is refused and counted.
async fn limited(State(server): State<Shared>, Query(query): Query<HashMap<String, String>>) -> Response {
    let page = page_of(&query);
    let mut resets = server.budget_resets.lock().unwrap();
    if resets.is_some_and(|at| Instant::now() < at) {
        server.early_calls.fetch_add(1, Ordering::SeqCst);
        return (StatusCode::TOO_MANY_REQUESTS, [("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "1")], "budget spent")
            .into_response();
    }
    let mut response = Json(json!({"items": items(page)})).into_response();
    if page == 1 {
        *resets = Some(Instant::now() + Duration::from_secs(1));
        response.headers_mut().insert("x-ratelimit-remaining", "0".parse().unwrap());
        response.headers_mut().insert("x-ratelimit-reset", "1".parse().unwrap());
    }
    response
}

/// HAL: the next page's link at `_links.next.href`.
async fn hal(Query(query): Query<HashMap<String, String>>) -> Response {
    let page = page_of(&query);
    let next = if page < 3 { json!({"href": format!("hal?page={}", page + 1)}) } else { json!(null) };
    Json(json!({"_embedded": {"items": items(page)}, "_links": {"next": next}})).into_response()
}

async fn start() -> (String, Shared) {
    let server = Shared::default();
    let app = Router::new()
        .route("/oauth/token", post(token))
        .route("/oauth/items", get(oauth_items))
        .route("/jwt/items", get(jwt_items))
        .route("/xml/items", get(xml_items))
        .route("/limited", get(limited))
        .route("/hal", get(hal))
        .with_state(Arc::clone(&server));
    let url = format!("http://{}", crate::common::serve(app).await.0);
    (url, server)
}

/// Runs synchronization `s` of a pipeline whose sources and synchronizations are `body` (JSON); the
/// state directory is left for the test to read (and the system's temp cleaning).
async fn run(body: Value) -> (syncline::pipeline::RunReport, StateDir) {
    let dir = tempfile::tempdir().unwrap().keep();
    let pipeline = pipeline_of(body, &dir);
    let state = StateDir::open(&dir.join("state")).unwrap();
    let report = pipeline::run(&pipeline, "s", &state, RunOptions::default(), Arc::new(Progress::default())).await.unwrap();
    (report, state)
}

/// The pipeline of `body` (sources and synchronizations), with the mapping and register every test shares.
fn pipeline_of(mut body: Value, dir: &std::path::Path) -> Pipeline {
    body["mappings"] = json!({"named": {"mapping": {"name": "name"}}});
    body["registers"] = json!({"r": {"schemas": {"s": {"type": "object"}}}});
    Pipeline::from_value("test", body, dir).unwrap_or_else(|e| panic!("{e}"))
}

/// Runs the openssl command line in `dir`; `None` when it is missing or fails.
fn openssl(dir: &std::path::Path, args: &[&str]) -> Option<()> {
    let status = std::process::Command::new("openssl").current_dir(dir).args(args).stderr(std::process::Stdio::null()).status().ok()?;
    status.success().then_some(())
}

fn sync(endpoint: &str, extra: Value) -> Value {
    let mut config = json!({"endpoint": endpoint, "idPosition": "id", "resultsPosition": "items"});
    for (k, v) in extra.as_object().unwrap() {
        config[k] = v.clone();
    }
    json!({"s": {"sourceId": "api", "sourceTargetMapping": "named", "sourceConfig": config, "targetType": "register/schema", "targetId": "r/s"}})
}

fn found_created(report: &syncline::pipeline::RunReport) -> (u64, u64) {
    assert_eq!(report.job.status.as_str(), "COMPLETED", "{:?} {:?}", report.job.error, report.warnings);
    (report.job.counts.found, report.job.counts.created)
}

#[tokio::test]
async fn oauth_tokens_are_fetched_once_and_sent_on_every_page() {
    let (url, server) = start().await;
    let source = json!({"api": {"location": url, "configuration": {
        "headers.Authorization": "Bearer {{ oauthToken(source) }}",
        "authentication": {"grant_type": "client_credentials", "tokenUrl": format!("{url}/oauth/token"), "client_id": "app", "client_secret": "s3cret"}
    }}});
    let (report, _) = run(json!({"sources": source, "synchronizations": sync("/oauth/items", json!({"usesPagination": "true"}))})).await;
    assert_eq!(found_created(&report), (12, 12));
    assert_eq!(server.token_calls.load(Ordering::SeqCst), 1, "the token is kept until it expires");
}

#[tokio::test]
async fn a_refused_token_request_fails_the_run_as_auth_without_the_secret() {
    let (url, _server) = start().await;
    let source = json!({"api": {"location": url, "configuration": {
        "headers.Authorization": "Bearer {{ oauthToken(source) }}",
        "authentication": {"tokenUrl": format!("{url}/oauth/token"), "client_id": "app", "client_secret": "wrong-secret-77"}
    }}});
    let (report, _) = run(json!({"sources": source, "synchronizations": sync("/oauth/items", json!({}))})).await;
    assert_eq!(report.job.error_category.as_deref(), Some("auth"), "{:?}", report.job.error);
    let error = report.job.error.unwrap();
    assert!(error.contains("HTTP 401") && !error.contains("wrong-secret-77"), "{error}");
}

#[tokio::test]
async fn jwt_tokens_are_signed_over_the_rendered_payload() {
    let (url, _server) = start().await;
    let source = json!({"api": {"location": url, "configuration": {
        "headers.Authorization": "Bearer {{ jwtToken(source) }}",
        "authentication": {"algorithm": "HS256", "secret": "k3y", "payload": "{\"iss\": \"syncline-test\", \"iat\": {{ 'now'|date('U') }}}"}
    }}});
    let (report, _) = run(json!({"sources": source, "synchronizations": sync("/jwt/items", json!({"resultsPosition": "_root"}))})).await;
    assert_eq!(found_created(&report), (4, 4));
}

#[tokio::test]
async fn rs256_jwt_tokens_are_signed_with_a_base64_pem_key() {
    let dir = tempfile::tempdir().unwrap();
    let made = openssl(dir.path(), &["genrsa", "-out", "key.pem", "2048"])
        .and_then(|_| openssl(dir.path(), &["rsa", "-in", "key.pem", "-pubout", "-out", "public.pem"]));
    if made.is_none() {
        super::common::skipped("the openssl command is not available to make a key");
        return;
    }
    let private = std::fs::read_to_string(dir.path().join("key.pem")).unwrap();
    let public = std::fs::read(dir.path().join("public.pem")).unwrap();
    // An RS256-checking server of its own: only a token signed by the key's private half gets items.
    let app = Router::new().route(
        "/items",
        get(move |headers: HeaderMap| {
            let public = public.clone();
            async move {
                let token = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("Bearer "))
                    .unwrap_or("")
                    .to_string();
                let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
                validation.required_spec_claims.clear();
                let key = jsonwebtoken::DecodingKey::from_rsa_pem(&public).unwrap();
                match jsonwebtoken::decode::<Value>(&token, &key, &validation) {
                    Ok(data) if data.claims["sub"] == "syncline" => Json(json!({"items": items(1)})).into_response(),
                    _ => (StatusCode::UNAUTHORIZED, "bad jwt").into_response(),
                }
            }
        }),
    );
    let url = format!("http://{}", crate::common::serve(app).await.0);
    use base64::Engine;
    let secret = base64::engine::general_purpose::STANDARD.encode(private);
    let source = json!({"api": {"location": url, "configuration": {
        "headers.Authorization": "Bearer {{ jwtToken(source) }}",
        "authentication": {"algorithm": "RS256", "secret": secret, "payload": {"sub": "syncline"}}
    }}});
    let (report, _) = run(json!({"sources": source, "synchronizations": sync("/items", json!({}))})).await;
    assert_eq!(found_created(&report), (4, 4));
}

#[tokio::test]
async fn xml_bodies_are_read_with_attributes_and_text() {
    let (url, _server) = start().await;
    // `type: xml` is OpenConnector's spelling of an API that answers XML.
    let source = json!({"api": {"type": "xml", "location": url}});
    let config = json!({"resultsPosition": "items.item", "idPosition": "@attributes.identifier"});
    let (report, state) = run(json!({"sources": source, "synchronizations": sync("/xml/items", config)})).await;
    assert_eq!(found_created(&report), (2, 2));
    let objects: HashMap<String, Value> = state.register().unwrap().objects_of("s").unwrap().into_iter().collect();
    assert_eq!(objects["a1"], json!({"name": "Bella & Max"}));
    assert_eq!(objects["a2"], json!({"name": "Luna"}));
}

#[tokio::test]
async fn a_spent_rate_limit_budget_waits_for_its_reset_instead_of_failing() {
    let (url, server) = start().await;
    let source = json!({"api": {"location": url, "retries": {"maxAttempts": 1}}});
    let (report, _) = run(json!({"sources": source, "synchronizations": sync("/limited", json!({"usesPagination": true}))})).await;
    assert_eq!(found_created(&report), (12, 12));
    assert_eq!(server.early_calls.load(Ordering::SeqCst), 0, "no request went out before the reset");
}

#[tokio::test]
async fn next_links_are_found_where_hal_puts_them() {
    let (url, _server) = start().await;
    let source = json!({"api": {"location": url}});
    let config = json!({"resultsPosition": "_embedded.items", "pagination": {"type": "next"}});
    let (report, _) = run(json!({"sources": source, "synchronizations": sync("/hal", config)})).await;
    assert_eq!(found_created(&report), (12, 12));
}

/// A client certificate and key signed by the test CA of [`certificates`] (run first, in `dir`).
fn client_certificate(dir: &std::path::Path) -> Option<(String, String)> {
    openssl(dir, &["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=syncline client", "-keyout", "client.key", "-out", "client.csr"])?;
    std::fs::write(dir.join("client.ext"), "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n").ok()?;
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "client.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "client.ext",
            "-out",
            "client.pem",
        ],
    )?;
    Some((std::fs::read_to_string(dir.join("client.pem")).ok()?, std::fs::read_to_string(dir.join("client.key")).ok()?))
}

/// A test CA and a certificate for 127.0.0.1 it signed, made with openssl: (CA, certificate, key) as PEM.
fn certificates(dir: &std::path::Path) -> Option<(String, String, String)> {
    std::fs::write(dir.join("leaf.ext"), "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n").ok()?;
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=syncline test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ],
    )?;
    openssl(dir, &["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "key.pem", "-out", "leaf.csr"])?;
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "leaf.ext",
            "-out",
            "cert.pem",
        ],
    )?;
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).ok();
    Some((read("ca.pem")?, read("cert.pem")?, read("key.pem")?))
}

/// An HTTPS server answering every request with one page of items: enough HTTP/1.1 for one client.
async fn start_https(cert: &str, key: &str, client_ca: Option<&str>) -> String {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    syncline::sources::tls::install_provider();
    let certs = CertificateDer::pem_slice_iter(cert.as_bytes()).collect::<Result<Vec<_>, _>>().unwrap();
    let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
    let builder = rustls::ServerConfig::builder();
    let config = match client_ca {
        // Mutual TLS: only clients with a certificate this CA signed get through the handshake.
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(ca.as_bytes()) {
                roots.add(cert.unwrap()).unwrap();
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder(Arc::new(roots)).build().unwrap();
            builder.with_client_cert_verifier(verifier).with_single_cert(certs, key).unwrap()
        }
        None => builder.with_no_client_auth().with_single_cert(certs, key).unwrap(),
    };
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://127.0.0.1:{}", listener.local_addr().unwrap().port());
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let body = json!({"items": items(1)}).to_string();
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(response.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    url
}

#[tokio::test]
async fn verify_takes_a_ca_bundle_and_the_string_false_turns_checks_off_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let Some((ca, cert, key)) = certificates(dir.path()) else {
        super::common::skipped("the openssl command is not available to make a certificate");
        return;
    };
    let url = start_https(&cert, &key, None).await;
    let with = |configuration: Value| {
        json!({"sources": {"api": {"location": url, "retries": {"maxAttempts": 1}, "configuration": configuration}},
                                             "synchronizations": sync("/items", json!({}))})
    };
    let (refused, _) = run(with(json!({}))).await;
    assert_eq!(refused.job.error_category.as_deref(), Some("tls"), "{:?}", refused.job.error);
    let (trusted, _) = run(with(json!({"verify": ca.replace('\n', "\\n")}))).await;
    assert_eq!(found_created(&trusted), (4, 4));
    let pipeline = pipeline_of(with(json!({"verify": "false"})), dir.path());
    assert!(pipeline.warnings.iter().any(|w| w.message.contains("NOT verified")), "{:?}", pipeline.warnings);
    let (unverified, _) = run(with(json!({"verify": "false"}))).await;
    assert_eq!(found_created(&unverified), (4, 4));
}

#[tokio::test]
async fn a_client_certificate_opens_a_server_that_asks_for_one() {
    let dir = tempfile::tempdir().unwrap();
    let Some((ca, cert, key)) = certificates(dir.path()) else {
        super::common::skipped("the openssl command is not available to make certificates");
        return;
    };
    let Some((client_cert, client_key)) = client_certificate(dir.path()) else {
        super::common::skipped("openssl could not sign a client certificate");
        return;
    };
    let url = start_https(&cert, &key, Some(&ca)).await;
    let with = |configuration: Value| {
        json!({"sources": {"api": {"location": url, "retries": {"maxAttempts": 1}, "configuration": configuration}},
                                             "synchronizations": sync("/items", json!({}))})
    };
    let (refused, _) = run(with(json!({"verify": ca}))).await;
    assert_eq!(refused.job.status.as_str(), "FAILED", "no client certificate, no entry");
    let (admitted, _) = run(with(json!({"verify": ca, "cert": client_cert, "ssl_key": client_key}))).await;
    assert_eq!(found_created(&admitted), (4, 4));
}
