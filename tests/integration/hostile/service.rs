//! The service under abuse: slow and half-open clients, huge and deep request bodies, runaway
//! templates, key guessing, names that are paths; and `serve` killed mid-run, which must converge like
//! the command line.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use syncline::config::Secret;
use syncline::service::{self, ServeOptions, ServerLimits};
use syncline::store::StateDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{job_ended, keyed_json};

const KEY: &str = "hostile-test-key";

struct Running {
    url: String,
    addr: std::net::SocketAddr,
    stop: tokio_util::sync::CancellationToken,
    _state: tempfile::TempDir,
    http: reqwest::Client,
}

impl Running {
    async fn start(server: ServerLimits) -> Running {
        Self::start_at(server, None).await
    }

    async fn start_at(server: ServerLimits, public_url: Option<url::Url>) -> Running {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(dir.path()).unwrap();
        let options = ServeOptions {
            listen: "127.0.0.1:0".parse().unwrap(),
            files: vec![],
            api_keys: vec![Secret::new(KEY)],
            tick: Duration::from_secs(1),
            public_url,
            server,
            front: Some(syncline::console::mount),
            allow_programs: false,
        };
        let (addr, stop, _handle) = service::spawn(state, options).await.unwrap();
        Running { url: format!("http://{addr}"), addr, stop, _state: dir, http: reqwest::Client::new() }
    }

    async fn post(&self, path: &str, body: String) -> (StatusCode, Value) {
        let response = self
            .http
            .post(format!("{}{path}", self.url))
            .header("x-api-key", KEY)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.text().await.ok().and_then(|t| serde_json::from_str(&t).ok()).unwrap_or(Value::Null))
    }

    /// `/api/health` answers within `within` (to a client other than the one abusing the service).
    async fn healthy_within(&self, within: Duration) {
        let started = Instant::now();
        loop {
            let answer = tokio::time::timeout(within, self.http.get(format!("{}/api/health", self.url)).send()).await;
            if matches!(answer, Ok(Ok(ref r)) if r.status() == StatusCode::OK) {
                return;
            }
            assert!(started.elapsed() < within, "health did not answer within {within:?}: {answer:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A connection from another loopback address than the test's own requests (127.0.0.2): an
    /// abusive client, kept apart from the one checking the service still answers.
    async fn connect_from_elsewhere(&self) -> tokio::net::TcpStream {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
        socket.connect(self.addr).await.unwrap()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_open_connections_neither_block_the_service_nor_stay() {
    let limits = ServerLimits { header_timeout: Duration::from_secs(2), ..ServerLimits::default() };
    let service = Running::start(limits).await;
    let mut held = Vec::new();
    for _ in 0..400 {
        let mut stream = service.connect_from_elsewhere().await;
        // A request line and half a header, then silence (past the per-client cap, the service has
        // closed the connection already).
        let _ = stream.write_all(b"GET /api/health HTTP/1.1\r\nHost: x\r\nX-Slow: ").await;
        held.push(stream);
    }
    service.healthy_within(Duration::from_secs(3)).await;
    // The header timeout closes them: each reads its end (or an answer) instead of hanging.
    let mut first = held.remove(0);
    let mut buf = [0u8; 256];
    let closed = tokio::time::timeout(Duration::from_secs(10), first.read(&mut buf)).await;
    assert!(closed.is_ok(), "a half-open connection was kept past the header timeout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_client_cannot_take_every_connection() {
    let limits = ServerLimits { max_connections_per_client: 20, header_timeout: Duration::from_secs(30), ..ServerLimits::default() };
    let service = Running::start(limits).await;
    let mut held = Vec::new();
    for _ in 0..20 {
        held.push(service.connect_from_elsewhere().await);
    }
    // The 21st connection from the same address is closed at once; others are served.
    service.healthy_within(Duration::from_secs(3)).await;
    let mut extra = service.connect_from_elsewhere().await;
    let _ = extra.write_all(b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), extra.read_to_end(&mut buf)).await.expect("closed promptly");
    assert!(read.is_err() || buf.is_empty(), "the connection past the cap was served: {}", String::from_utf8_lossy(&buf));
    drop(held);
    service.healthy_within(Duration::from_secs(3)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_bodies_are_bounded_in_size_time_and_depth() {
    let limits = ServerLimits { body_timeout: Duration::from_secs(1), ..ServerLimits::default() };
    let service = Running::start(limits).await;
    let (status, _) = service.post("/api/mappings/test", format!(r#"{{"mapping":{{"a":"{}"}}}}"#, "x".repeat(3 * 1024 * 1024))).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let deep = format!(r#"{{"mapping":{{"a":"b"}},"inputObject":{}}}"#, super::deep_object(100_000));
    let (status, _) = service.post("/api/mappings/test", deep).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a body nested past the JSON parser's limit is refused, not a crash");
    // A body that trickles in is cut off.
    let mut stream = tokio::net::TcpStream::connect(service.addr).await.unwrap();
    let head = format!(
        "POST /api/mappings/test HTTP/1.1\r\nHost: x\r\nx-api-key: {KEY}\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{{"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0u8; 512];
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut answer)).await.expect("answered").unwrap();
    assert!(String::from_utf8_lossy(&answer[..read]).starts_with("HTTP/1.1 408"), "{}", String::from_utf8_lossy(&answer[..read]));
    service.healthy_within(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runaway_templates_stop_at_their_budget_and_the_service_answers_meanwhile() {
    let service = Running::start(ServerLimits::default()).await;
    let loops = json!({"mapping": {"a": "{% for i in range(1, 10000) %}{% for j in range(1, 10000) %}{{ j }}{% endfor %}{% endfor %}"}, "inputObject": {}});
    let started = Instant::now();
    let test = service.post("/api/mappings/test", loops.to_string());
    let health = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        service.healthy_within(Duration::from_secs(2)).await;
    };
    let ((status, answer), ()) = tokio::join!(test, health);
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    let said = answer["error"].as_str().unwrap_or_default();
    assert!(said.contains("templateFuel") || said.contains("maxTemplateOutputBytes") || said.contains("took longer"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(15), "{:?}", started.elapsed());

    // Doubling a string 21 times prints 20 MiB; 40 times would build a terabyte, and stops at the build budget.
    let doubling =
        |times: u32| format!("{{% set s = 'xxxxxxxxxx' %}}{{% for i in 1..{times} %}}{{% set s = s ~ s %}}{{% endfor %}}{{{{ s }}}}");
    let big = json!({"mapping": {"a": doubling(21)}, "inputObject": {}});
    let (status, answer) = service.post("/api/mappings/test", big.to_string()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(answer["error"].as_str().unwrap_or_default().contains("printed more than maxTemplateOutputBytes"), "{answer}");
    for mapping in [
        doubling(40),
        // A capture block's buffer is not the output, but what a loop prints into it costs fuel all the same.
        format!("{{% set s %}}{{% for i in 1..100000 %}}{}{{% endfor %}}{{% endset %}}{{{{ s|length }}}}", "abcdefghijklmnopqrstuvwxyz".repeat(80)),
        "{% set a = [1] %}{% for i in 1..40 %}{% set a = a|merge(a) %}{% endfor %}{{ a|length }}".into(),
        "{% set a = ['xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'] %}{% for i in 1..22 %}{% set a = a|merge(a) %}{% endfor %}{{ a|join(a|join) }}".into(),
        "{% set a = ['xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'] %}{% for i in 1..22 %}{% set a = a|merge(a) %}{% endfor %}{{ a|json_encode|length }}".into(),
        "{{ ('x' ~ 'y')|replace({'x': 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'})|replace({'x': 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'})|replace({'x': 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'})|replace({'x': 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'})|length }}".into(),
        "{{ '%2000000000d'|format(1) }}".into(),
        "{{ 1|number_format(1000000000) }}".into(),
    ] {
        let (status, answer) = service.post("/api/mappings/test", json!({"mapping": {"a": mapping}, "inputObject": {}}).to_string()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{mapping}: {answer}");
        let said = answer["error"].as_str().unwrap_or_default();
        assert!(said.contains("maxTemplateOutputBytes") || said.contains("templateFuel"), "{mapping}: {answer}");
    }
    // A value nested in itself a level per step would overflow the stack when dropped.
    for mapping in [
        "{% set a = [] %}{% for i in 1..400000 %}{% set a = [a] %}{% endfor %}{{ a|length }}",
        "{% set a = {} %}{% for i in 1..400000 %}{% set a = {x: a, y: i} %}{% endfor %}{{ a|length }}",
        "{{ range(1, 400000)|reduce((carry, i) => [carry, i], [])|length }}",
    ] {
        let (status, answer) = service.post("/api/mappings/test", json!({"mapping": {"a": mapping}, "inputObject": {}}).to_string()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{mapping}: {answer}");
        assert!(answer["error"].as_str().unwrap_or_default().contains("deeper than 512 levels"), "{mapping}: {answer}");
    }
    // Deep but within bounds, and wide: kept, measured once per list.
    let wide = "{% set a = [] %}{% for i in 1..2000 %}{% set a = a|merge([[i, [i]]]) %}{% endfor %}{% set b = [] %}{% for i in 1..300 %}{% set b = [b] %}{% endfor %}{{ a|length }}";
    let (status, answer) = service.post("/api/mappings/test", json!({"mapping": {"a": wide}, "inputObject": {}}).to_string()).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["result"]["a"], "2000", "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_guessing_is_refused_after_ten_tries() {
    let service = Running::start(ServerLimits::default()).await;
    for guess in 0..10 {
        let response =
            service.http.get(format!("{}/api/sources", service.url)).header("x-api-key", format!("guess-{guess}")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let response = service.http.get(format!("{}/api/sources", service.url)).header("x-api-key", "guess-11").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().contains_key("retry-after"));
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let login = client.post(format!("{}/login", service.url)).form(&[("key", KEY)]).send().await.unwrap();
    assert_eq!(login.status(), StatusCode::TOO_MANY_REQUESTS, "even the right key waits out the window");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_cookie_is_secure_behind_https() {
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let cookie = |service: &Running, forwarded: Option<&'static str>| {
        let mut request = client.post(format!("{}/login", service.url)).form(&[("key", KEY)]);
        if let Some(proto) = forwarded {
            request = request.header("x-forwarded-proto", proto);
        }
        async move { request.send().await.unwrap().headers().get("set-cookie").unwrap().to_str().unwrap().to_string() }
    };
    let plain = Running::start(ServerLimits::default()).await;
    assert!(!cookie(&plain, None).await.contains("Secure"));
    assert!(cookie(&plain, Some("https")).await.contains("; Secure"), "a proxy said the user came over HTTPS");
    let public = Running::start_at(ServerLimits::default(), Some("https://sync.example.org".parse().unwrap())).await;
    let set = cookie(&public, None).await;
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.contains("; Secure"), "{set}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_that_are_paths_are_refused_over_the_api() {
    let service = Running::start(ServerLimits::default()).await;
    let (status, source) =
        service.post("/api/sources", json!({"id": "src", "type": "api", "location": "http://127.0.0.1:9"}).to_string()).await;
    assert_eq!(status, StatusCode::CREATED, "{source}");
    for id in ["../../victim", "a/b", ".hidden"] {
        let body = json!({"id": id, "source": "src", "mapping": "m", "sourceConfig": {"idPosition": "id"}, "target": {"type": "register", "register": "r", "schema": "s"}});
        let (status, answer) = service.post("/api/synchronizations", body.to_string()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{id}: {answer}");
        assert!(answer.to_string().contains("is not a name"), "{id}: {answer}");
    }
    // Paging numbers past what the stores count in are answered, not failed.
    for query in ["limit=18446744073709551615&offset=18446744073709551615", "offset=-1&limit=abc", "limit=0"] {
        let answer = service
            .http
            .get(format!("{}/api/registers/r/schemas/s/objects?{query}", service.url))
            .header("x-api-key", KEY)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::OK, "{query}");
    }
}

/// `syncline serve` as a child process, on a port of its own.
fn spawn_serve(state: &std::path::Path, file: &std::path::Path, port: u16) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_syncline"))
        .args(["--state", state.to_str().unwrap(), "serve", "--listen", &format!("127.0.0.1:{port}"), file.to_str().unwrap()])
        .env("SYNCLINE_API_KEY", KEY)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("serve starts")
}

async fn wait_for(url: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while reqwest::get(format!("{url}/api/health")).await.is_err() {
        assert!(Instant::now() < deadline, "the service never came up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_killed_mid_run_converges_on_the_next_run() {
    use std::sync::atomic::Ordering;
    let harness = crate::common::Harness::with(
        120,
        crate::common::Sync {
            source_config: r#"{ endpoint: "/feed/page", idPosition: id, resultsPosition: data.items, pagination: { type: page, sizeParam: size, size: 5 } }"#.into(),
            extra: "maxDeleteShare: 1".into(),
            ..crate::common::Sync::default()
        },
    )
    .await;
    harness.fixture.store.faults.delay_ms.store(40, Ordering::SeqCst);
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let mut serve = spawn_serve(harness.state.root(), &harness.file, port);
    wait_for(&url).await;
    let http = reqwest::Client::new();
    let run = http.post(format!("{url}/api/synchronizations/pets/run")).header("x-api-key", KEY).send().await.unwrap();
    assert_eq!(run.status(), StatusCode::CREATED);
    let deadline = Instant::now() + Duration::from_secs(60);
    while harness.state.register().ok().and_then(|r| r.count("shop", "pet", &[]).ok()).unwrap_or(0) < 60 {
        assert!(Instant::now() < deadline, "the run never wrote enough");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    serve.kill().unwrap();
    serve.wait().unwrap();
    let written = harness.register().len();
    assert!((60..120).contains(&written), "killed part-way ({written} written)");

    // The source shrinks below what the killed run wrote: the objects past it must go.
    harness.fixture.store.set_pets(syncline::fixture::pets(30));
    harness.fixture.store.faults.delay_ms.store(0, Ordering::SeqCst);
    let mut serve = spawn_serve(harness.state.root(), &harness.file, port);
    wait_for(&url).await;
    let jobs = keyed_json(&http, Method::GET, &url, "/api/jobs?synchronization=pets", KEY).await;
    assert_eq!(jobs["results"][0]["status"], "FAILED", "the killed job is marked failed at start: {jobs}");
    let run = keyed_json(&http, Method::POST, &url, "/api/synchronizations/pets/run", KEY).await;
    let done = job_ended(&http, &url, KEY, run["id"].as_str().unwrap()).await;
    serve.kill().unwrap();
    serve.wait().unwrap();
    assert_eq!(done["status"], "COMPLETED", "{done}");
    assert_eq!(harness.register(), harness.expected(), "the register equals the source: adopted, then the missing ones deleted");
}
