//! Secrets are write-only. A distinct marker is planted in every secret-bearing field of every kind of
//! source and target (in a pipeline file, literally and through `${VAR}`, and over the API), then every
//! GET route, the export, the console's pages, runs that succeed and runs that fail, with trace logging
//! on, are exercised; no answer, no output line and no file of the state directory may hold a marker.

use std::collections::BTreeMap;
use std::path::Path;

use reqwest::Method;
use serde_json::{Value, json};
use syncline::fixture::{self, Fixture, RequiredAuth};

use super::common::{ServeProcess, free_port, job_ended, keyed_json};

const KEY: &str = "secrets-test-key";

/// Markers by where they were planted.
struct Markers(BTreeMap<&'static str, String>);

impl Markers {
    fn new(places: &[&'static str]) -> Markers {
        let run = uuid::Uuid::new_v4().simple().to_string();
        Markers(places.iter().map(|p| (*p, format!("MRK{}{}", p.replace(['.', '-', '_'], ""), &run[..8]))).collect())
    }

    fn get(&self, place: &str) -> &str {
        &self.0[place]
    }

    /// Fails naming every marker found in `text`, and where `text` came from.
    #[track_caller]
    fn absent_from(&self, text: &str, what: &str) {
        let found: Vec<&&str> = self.0.iter().filter(|(_, marker)| text.contains(marker.as_str())).map(|(place, _)| place).collect();
        assert!(found.is_empty(), "{what} carries the secret(s) planted in {found:?}");
    }
}

/// Every file under `dir`, as bytes.
fn files_under(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(next) = stack.pop() {
        for entry in std::fs::read_dir(&next).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                out.push((path.display().to_string(), bytes));
            }
        }
    }
    out
}

const PLACES: [&str; 33] = [
    "src.password",
    "src.token",
    "src.apikey",
    "auth.password",
    "auth.key",
    "header.authorization",
    "header.marked",
    "query.token",
    "oauth.client_secret",
    "oauth.password",
    "jwt.secret",
    "tls.key",
    "env.token",
    "db.url",
    "db.password",
    "ftp.url",
    "ftp.password",
    "sftp.password",
    "sftp.key",
    "sftp.passphrase",
    "target.password",
    "target.url",
    "sync.header",
    "api.token",
    "airbyte.password",
    "airbyte.marked",
    "command.env",
    "command.target_env",
    "webhook.url",
    "webhook.secret",
    "webhook.header",
    "email.password",
    "hook.secret",
];

fn pipeline(m: &Markers, fixture: &Fixture) -> String {
    format!(
        r#"
sources:
  pets:
    type: api
    location: "{url}"
    auth: {{ type: bearer, token: "{token}" }}
    headers: {{ Authorization-Extra: "{authorization}", X-Tenant: {{ secret: "{marked}" }} }}
    query: {{ access_token: "{query}" }}
    retries: {{ maxAttempts: 1 }}
  from-env:
    type: api
    location: "{url}"
    auth: {{ type: bearer, token: "${{SECRETS_TEST_TOKEN}}" }}
  basic:
    type: api
    location: "http://127.0.0.1:9"
    auth: {{ type: basic, username: u, password: "{auth_password}" }}
    password: "{src_password}"
    apiKey: "{src_apikey}"
    retries: {{ maxAttempts: 1 }}
  keyed:
    type: api
    location: "http://127.0.0.1:9"
    auth: {{ type: apiKey, in: query, name: key, key: "{auth_key}" }}
    retries: {{ maxAttempts: 1 }}
  tokens:
    type: api
    location: "http://127.0.0.1:9"
    authentication: {{ grant_type: password, tokenUrl: "http://127.0.0.1:9/token", client_id: c, client_secret: "{client_secret}", username: u, password: "{oauth_password}", algorithm: HS256, secret: "{jwt}" }}
    headers: {{ Authorization: "Bearer {{{{ oauthToken(source) }}}}" }}
    tls: {{ cert: "not a certificate", key: "{tls}" }}
  db:
    type: database
    location: "mysql://user:{db_url}@127.0.0.1:9/db"
    password: "{db_password}"
  ftp:
    type: ftp
    location: "ftp://user:{ftp_url}@127.0.0.1:9/in"
    password: "{ftp_password}"
  sftp:
    type: sftp
    location: "sftp://user@127.0.0.1:9/in"
    password: "{sftp_password}"
    privateKey: "{sftp_key}"
    passphrase: "{sftp_passphrase}"
    verifyHostKey: false
  airbyte:
    type: airbyte
    command: [python3, "{airbyte_script}"]
    config: {{ password: "{airbyte_password}", nested: {{ account: {{ secret: "{airbyte_marked}" }} }}, records: [{{ id: 1 }}] }}
  program:
    type: command
    command: [sh, -c, "echo '{{\"id\":1}}'; echo \"my token is $API_TOKEN\" >&2"]
    env: {{ API_TOKEN: {{ secret: "{command_env}" }} }}
mappings:
  pet:
    mapping: {{ title: "{{{{ name }}}}" }}
registers:
  shop:
    schemas:
      pet: {{ type: object }}
synchronizations:
  pets:
    source: pets
    sourceConfig: {{ endpoint: "/feed/page", idPosition: id, resultsPosition: data.items, headers: {{ X-Sync-Token: "{sync_header}" }},
                     pagination: {{ type: page, sizeParam: size, size: 5 }} }}
    mapping: pet
    target: {{ type: register, register: shop, schema: pet }}
    hook: {{ secret: "{hook_secret}" }}
  to-db:
    source: basic
    sourceConfig: {{ endpoint: "/x", idPosition: id }}
    mapping: pet
    target: {{ type: database, location: "postgres://user:{target_url}@127.0.0.1:9/db", password: "{target_password}", table: t }}
  keyed:
    source: keyed
    sourceConfig: {{ endpoint: "/x", idPosition: id }}
    mapping: pet
    target: {{ type: register, register: shop, schema: pet }}
  airbyte:
    source: airbyte
    sourceConfig: {{ stream: pets }}
    mapping: pet
    target: {{ type: register, register: shop, schema: pet }}
  program:
    source: program
    sourceConfig: {{ idPosition: id }}
    mapping: pet
    target: {{ type: command, command: [sh, -c, "while read -r l; do echo '{{\"ok\":true}}'; done; echo \"sink $SINK_TOKEN\" >&2"],
              env: {{ SINK_TOKEN: {{ secret: "{command_target_env}" }} }} }}
webhooks:
  notify:
    url: "http://127.0.0.1:9/hook?token={webhook_url}"
    secret: "{webhook_secret}"
    headers: {{ Authorization: "{webhook_header}" }}
    retry: {{ maxAttempts: 2, initialBackoff: 10ms }}
  mailer:
    email: {{ server: "smtp://127.0.0.1:9", from: "s@example.org", to: ["o@example.org"], username: u, password: "{email_password}" }}
    retry: {{ maxAttempts: 2, initialBackoff: 10ms }}
"#,
        url = fixture.base_url(),
        token = m.get("src.token"),
        authorization = m.get("header.authorization"),
        marked = m.get("header.marked"),
        query = m.get("query.token"),
        auth_password = m.get("auth.password"),
        src_password = m.get("src.password"),
        src_apikey = m.get("src.apikey"),
        auth_key = m.get("auth.key"),
        client_secret = m.get("oauth.client_secret"),
        oauth_password = m.get("oauth.password"),
        jwt = m.get("jwt.secret"),
        tls = m.get("tls.key"),
        db_url = m.get("db.url"),
        db_password = m.get("db.password"),
        ftp_url = m.get("ftp.url"),
        ftp_password = m.get("ftp.password"),
        sftp_password = m.get("sftp.password"),
        sftp_key = m.get("sftp.key"),
        sftp_passphrase = m.get("sftp.passphrase"),
        sync_header = m.get("sync.header"),
        target_url = m.get("target.url"),
        target_password = m.get("target.password"),
        airbyte_script = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/airbyte/scripted_source.py"),
        airbyte_password = m.get("airbyte.password"),
        airbyte_marked = m.get("airbyte.marked"),
        command_env = m.get("command.env"),
        command_target_env = m.get("command.target_env"),
        webhook_url = m.get("webhook.url"),
        webhook_secret = m.get("webhook.secret"),
        webhook_header = m.get("webhook.header"),
        email_password = m.get("email.password"),
        hook_secret = m.get("hook.secret"),
    )
}

async fn get(http: &reqwest::Client, url: &str, cookie: Option<&str>) -> String {
    let mut request = http.get(url);
    request = match cookie {
        Some(cookie) => request.header("cookie", cookie),
        None => request.header("x-api-key", KEY),
    };
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    assert!(status.is_success(), "GET {url}: {status} {text}");
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_answer_log_line_job_record_export_or_file_carries_a_secret() {
    let m = Markers::new(&PLACES);
    let fixture = Fixture::start(fixture::pets(12)).await.unwrap();
    *fixture.store.faults.auth.lock().unwrap() = Some(RequiredAuth::Bearer(m.get("src.token").to_string()));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pipeline.yaml");
    std::fs::write(&file, pipeline(&m, &fixture)).unwrap();
    let state = dir.path().join("state");
    let trace = [("RUST_LOG", "trace"), ("SECRETS_TEST_TOKEN", m.get("env.token"))];
    let mut outputs = Vec::new();

    // The command line, with trace logging: a run that works, runs that fail, validation, export.
    let file_arg = file.display().to_string();
    let commands: [Vec<&str>; 11] = [
        vec!["run", &file_arg, "airbyte"],
        vec!["run", &file_arg, "program"],
        vec!["source", "test", &file_arg, "airbyte"],
        vec!["run", &file_arg, "pets"],
        vec!["run", &file_arg, "to-db"],
        vec!["run", &file_arg, "keyed"],
        vec!["validate", &file_arg],
        vec!["export", &file_arg],
        vec!["source", "test", &file_arg, "tokens"],
        // Log lines as JSON, where secrets come out escaped.
        vec!["--log-format", "json", "run", &file_arg, "to-db"],
        vec!["--log-format", "json", "run", &file_arg, "keyed"],
    ];
    for args in commands {
        let output =
            std::process::Command::new(env!("CARGO_BIN_EXE_syncline")).arg("--state").arg(&state).args(&args).envs(trace).output().unwrap();
        outputs.push((
            format!("syncline {}", args.join(" ")),
            format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr)),
        ));
    }
    assert!(outputs[3].1.contains("created 12"), "the working run worked: {}", outputs[3].1);
    assert!(outputs[0].1.contains("created 1") && outputs[1].1.contains("created 1"), "{outputs:?}");

    // The service, with the same file and more definitions over the API, also tracing.
    let log = dir.path().join("serve.log");
    let env: Vec<(&str, &str)> = [("SYNCLINE_API_KEY", KEY)].into_iter().chain(trace).collect();
    let serve = ServeProcess::start(&state, &file, free_port(), &[], &env).await;
    let url = serve.url.clone();
    let http = reqwest::Client::new();
    let api_source =
        json!({"id": "over-api", "type": "api", "location": "http://127.0.0.1:9", "auth": {"type": "bearer", "token": m.get("api.token")}});
    let created = http
        .post(format!("{url}/api/sources"))
        .header("x-api-key", KEY)
        .header("content-type", "application/json")
        .body(api_source.to_string())
        .send()
        .await
        .unwrap();
    let created_text = created.text().await.unwrap();
    outputs.push(("POST /api/sources".into(), created_text));
    for sync in ["pets", "to-db", "keyed", "airbyte", "program"] {
        let job = keyed_json(&http, Method::POST, &url, &format!("/api/synchronizations/{sync}/run"), KEY).await;
        job_ended(&http, &url, KEY, job["id"].as_str().unwrap()).await;
    }
    // The inbound hook, with a wrong signature: refused, and saying nothing of the right one.
    let refused = http
        .post(format!("{url}/api/hooks/pets"))
        .header("x-syncline-signature", "sha256=00")
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), reqwest::StatusCode::UNAUTHORIZED);
    outputs.push(("POST /api/hooks/pets, badly signed".into(), refused.text().await.unwrap()));
    let _ = http.post(format!("{url}/api/sources/tokens/test")).header("x-api-key", KEY).send().await.unwrap().text().await;
    let jobs = keyed_json(&http, Method::GET, &url, "/api/jobs", KEY).await;
    let mut paths: Vec<String> = [
        "/api/sources",
        "/api/mappings",
        "/api/registers",
        "/api/webhooks",
        "/api/synchronizations",
        "/api/export",
        "/api/dashboard",
        "/api/jobs",
        "/api/openapi.json",
        "/api/webhooks/deliveries",
        "/metrics",
    ]
    .iter()
    .map(|p| p.to_string())
    .collect();
    for section in ["sources", "synchronizations", "mappings", "registers", "webhooks"] {
        let list = keyed_json(&http, Method::GET, &url, &format!("/api/{section}"), KEY).await;
        for entry in list["results"].as_array().unwrap() {
            paths.push(format!("/api/{section}/{}", entry["id"].as_str().unwrap()));
            if section == "sources" {
                paths.push(format!("/api/sources/{}/calls", entry["id"].as_str().unwrap()));
            }
        }
    }
    for job in jobs["results"].as_array().unwrap() {
        let id = job["id"].as_str().unwrap();
        paths.push(format!("/api/jobs/{id}"));
        paths.push(format!("/api/jobs/{id}/logs"));
    }
    paths.push("/api/synchronizations/pets/contracts".into());
    for path in &paths {
        outputs.push((format!("GET {path}"), get(&http, &format!("{url}{path}"), None).await));
    }
    // The console, signed in.
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let login = client.post(format!("{url}/login")).form(&[("key", KEY)]).send().await.unwrap();
    let cookie = login.headers().get("set-cookie").unwrap().to_str().unwrap().split(';').next().unwrap().to_string();
    let mut pages = vec!["/".to_string(), "/sources".into(), "/synchronizations".into(), "/jobs".into(), "/mappings".into()];
    for source in ["pets", "from-env", "basic", "keyed", "tokens", "db", "ftp", "sftp", "over-api", "airbyte", "program"] {
        pages.push(format!("/sources/{source}"));
    }
    for sync in ["pets", "to-db", "keyed", "airbyte", "program"] {
        pages.push(format!("/synchronizations/{sync}"));
    }
    for job in jobs["results"].as_array().unwrap() {
        pages.push(format!("/jobs/{}", job["id"].as_str().unwrap()));
    }
    for page in &pages {
        outputs.push((format!("console {page}"), get(&client, &format!("{url}{page}"), Some(&cookie)).await));
    }
    serve.kill();
    outputs.push(("serve's output".into(), std::fs::read_to_string(&log).unwrap_or_default()));
    outputs.push(("serve's log".into(), std::fs::read_to_string(dir.path().join("serve.err")).unwrap_or_default()));

    // The programs did print their secrets on stderr: the job logs hold the lines, masked.
    let logged = |needle: &str| outputs.iter().any(|(what, text)| what.ends_with("/logs") && text.contains(needle));
    assert!(logged("my token is ***") && logged("sink ***"), "the programs' stderr is in the job logs, masked");
    for (what, text) in &outputs {
        m.absent_from(text, what);
    }
    for (path, bytes) in files_under(&state) {
        m.absent_from(&String::from_utf8_lossy(&bytes), &path);
    }
    // The file's own `${VAR}` shows as written, never resolved.
    let shown: Value = serde_json::from_str(&outputs.iter().find(|(w, _)| w == "GET /api/sources/from-env").unwrap().1).unwrap();
    assert_eq!(shown["auth"]["token"], "${SECRETS_TEST_TOKEN}", "{shown}");
}
