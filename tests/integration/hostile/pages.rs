//! API pages an upstream controls: deep, huge and malformed bodies, XML, and links and redirects that
//! try to take the source's credentials to another host.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::{Case, api_pipeline, deep_object};
use crate::common::serve;

/// An upstream answering `/page` with `body` (and `content_type`).
async fn upstream(body: impl Into<Bytes>, content_type: &'static str) -> (String, tokio::task::JoinHandle<()>) {
    let body: Bytes = body.into();
    let app = Router::new().route("/page", get(move || async move { ([(header::CONTENT_TYPE, content_type)], body.clone()) }));
    let (addr, task) = serve(app).await;
    (format!("http://{addr}"), task)
}

fn page(records: &[String]) -> String {
    format!(r#"{{"items":[{}]}}"#, records.join(","))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_nested_100000_deep_fails_alone_and_the_page_goes_on() {
    let records = [
        r#"{"id":1,"name":"a"}"#.to_string(),
        format!(r#"{{"id":2,"deep":{}}}"#, deep_object(100_000)),
        r#"{"id":3,"name":"c"}"#.to_string(),
    ];
    let (url, _server) = upstream(page(&records), "application/json").await;
    let case = Case::new();
    case.run(&api_pipeline(&url, "", "")).await.expect(0, 200).says("failed 1");
    let ids: Vec<String> = case.objects().into_iter().map(|(id, _)| id).collect();
    assert_eq!(ids, ["1", "3"]);
    let job = case.job();
    assert_eq!(job.status.as_str(), "COMPLETED");
    let errors = StateErrors::of(&case);
    assert!(errors.iter().any(|e| e.contains("record 2 of page 1") && e.contains("nested deeper than 128 levels")), "{errors:?}");
}

/// The per-object errors of the newest job of `s`.
struct StateErrors;

impl StateErrors {
    fn of(case: &Case) -> Vec<String> {
        let state = syncline::store::StateDir::open(&case.state()).unwrap();
        let job = case.job();
        state.jobs().unwrap().errors(&job.id, 100).unwrap().into_iter().map(|e| e.message).collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn depth_is_bounded_at_the_limit_and_a_raised_limit_reads_deeper() {
    // A record is one level; `deep_object(n)` inside it n more.
    let records = [format!(r#"{{"id":1,"d":{}}}"#, deep_object(127)), format!(r#"{{"id":2,"d":{}}}"#, deep_object(128))];
    let (url, _server) = upstream(page(&records), "application/json").await;
    let case = Case::new();
    case.run(&api_pipeline(&url, "", "")).await.expect(0, 200);
    assert_eq!(case.objects().into_iter().map(|(id, _)| id).collect::<Vec<_>>(), ["1"], "128 levels pass, 129 do not");

    let records = [format!(r#"{{"id":7,"d":{}}}"#, deep_object(1000))];
    let (url, _deeper) = upstream(page(&records), "application/json").await;
    let case = Case::new();
    case.run(&api_pipeline(&url, "limits: { maxDepth: 1024 }", "")).await.expect(0, 300).says("created 1");
    // Read back on a thread with room for a value 1,000 levels deep (this test's own code is not
    // optimised, so its frames are large).
    let state = case.state();
    let levels = std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(move || {
            let (_, stored) = syncline::store::StateDir::open(&state).unwrap().register().unwrap().objects_of("s").unwrap().remove(0);
            let mut here = &stored["d"];
            let mut levels = 0;
            while let Some(inner) = here.get("a") {
                here = inner;
                levels += 1;
            }
            levels
        })
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(levels, 1000, "the deep record is stored whole");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_over_max_response_bytes_fails_the_job_and_deletes_nothing() {
    let small = page(&[r#"{"id":1}"#.into(), r#"{"id":2}"#.into()]);
    let big = Arc::new(Mutex::new(false));
    let flag = Arc::clone(&big);
    let huge = Bytes::from(page(&(0..60_000).map(|i| format!(r#"{{"id":{i},"pad":"{}"}}"#, "x".repeat(80))).collect::<Vec<_>>()));
    let app = Router::new().route(
        "/page",
        get(move || {
            let (small, huge, big) = (small.clone(), huge.clone(), *flag.lock().unwrap());
            async move { if big { huge } else { Bytes::from(small) } }
        }),
    );
    let (addr, _server) = serve(app).await;
    let case = Case::new();
    let pipeline = api_pipeline(&format!("http://{addr}"), "limits: { maxResponseBytes: 1MiB }", "");
    case.run(&pipeline).await.expect(0, 200);
    *big.lock().unwrap() = true;
    let ran = case.run(&pipeline).await;
    ran.expect(1, 200).says("is larger than maxResponseBytes (1 MiB)");
    assert_eq!(case.job().error_category.as_deref(), Some("limit"));
    assert_eq!(case.objects().len(), 2, "nothing deleted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_streamed_past_the_default_limit_is_cut_off_with_flat_memory() {
    // 80 MB sent in chunks, no Content-Length: the reader stops at 64 MiB instead of holding it all.
    let app = Router::new().route(
        "/page",
        get(|| async {
            let chunk = Bytes::from(format!(r#"{{"id":1,"pad":"{}"}},"#, "y".repeat(1_000_000)));
            let head = futures::stream::once(async { Ok::<_, std::io::Error>(Bytes::from_static(br#"{"items":["#)) });
            let body = futures::stream::iter((0..80).map(move |_| Ok::<_, std::io::Error>(chunk.clone())));
            Body::from_stream(futures::StreamExt::chain(head, body))
        }),
    );
    let (addr, _server) = serve(app).await;
    let case = Case::new();
    case.run(&api_pipeline(&format!("http://{addr}"), "", "")).await.expect(1, 250).says("maxResponseBytes (64 MiB)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_without_its_records_where_they_should_be_deletes_nothing() {
    // The upstream answers 200 with something else than its list: an error, a null, an empty object.
    let answer = Arc::new(Mutex::new(page(&[r#"{"id":1}"#.into(), r#"{"id":2}"#.into()])));
    let now = Arc::clone(&answer);
    let app = Router::new().route(
        "/page",
        get(move || {
            let body = now.lock().unwrap().clone();
            async move { ([(header::CONTENT_TYPE, "application/json")], body) }
        }),
    );
    let (addr, _server) = serve(app).await;
    let case = Case::new();
    let pipeline = api_pipeline(&format!("http://{addr}"), "", "");
    case.run(&pipeline).await.expect(0, 200).says("created 2");
    for body in [r#"{"error":"maintenance"}"#, r#"{"items":null}"#, "{}", r#"{"items":"none"}"#] {
        *answer.lock().unwrap() = body.to_string();
        case.run(&pipeline).await.expect(0, 200).says("found no records").says("nothing is deleted");
        assert_eq!(case.objects().len(), 2, "{body}: nothing deleted");
    }
    // An empty list is an answer (the records are gone), which the mass-delete guard then weighs.
    *answer.lock().unwrap() = r#"{"items":[]}"#.to_string();
    case.run(&pipeline).await.expect(1, 200).says("refusing to delete 2 of 2 objects");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_of_many_records_goes_on_in_chunks_that_keep_their_numbers() {
    let mut records: Vec<String> = (1..=5000).map(|i| format!(r#"{{"id":{i}}}"#)).collect();
    records[2999] = format!(r#"{{"id":3000,"d":{}}}"#, deep_object(200));
    let (url, _server) = upstream(page(&records), "application/json").await;
    let case = Case::new();
    case.run(&api_pipeline(&url, "", "")).await.expect(0, 300).says("created 4,999").says("failed 1");
    let errors = StateErrors::of(&case);
    assert!(errors.iter().any(|e| e.contains("record 3000 of page 1")), "{errors:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_over_max_record_bytes_fails_alone() {
    let records = [r#"{"id":1}"#.to_string(), format!(r#"{{"id":2,"pad":"{}"}}"#, "z".repeat(4096)), r#"{"id":3}"#.to_string()];
    let (url, _server) = upstream(page(&records), "application/json").await;
    let case = Case::new();
    case.run(&api_pipeline(&url, "limits: { maxRecordBytes: 1KiB }", "")).await.expect(0, 200);
    assert_eq!(case.objects().len(), 2);
    assert!(StateErrors::of(&case).iter().any(|e| e.contains("maxRecordBytes (1 KiB)")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_that_are_not_json_fail_the_job_with_format() {
    let bodies: [(&[u8], &str); 4] = [
        (b"<html><body>Maintenance</body>", "text/html"),
        (br#"{"items":[{"id":1},{"id":2"#, "application/json"),
        (b"{\"items\":[{\"id\":1,\"name\":\"\xff\xfe\"}]}", "application/json"),
        (b"", "application/json"),
    ];
    for (body, kind) in bodies {
        let (url, _server) = upstream(body.to_vec(), kind).await;
        let case = Case::new();
        case.run(&api_pipeline(&url, "", "")).await.expect(1, 200);
        assert_eq!(case.job().error_category.as_deref(), Some("format"), "{:?}", String::from_utf8_lossy(body));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_envelope_nested_100000_deep_is_walked_without_recursion() {
    // Beside the records: skipped without a stack of its own; the page is valid JSON.
    let (url, _server) = upstream(format!(r#"{{"items":[{{"id":1}}],"meta":{}}}"#, deep_object(100_000)), "application/json").await;
    let case = Case::new();
    case.run(&api_pipeline(&url, "", "")).await.expect(0, 200).says("created 1");
    // Where the records are: the one record fails, and with it (the only one) the run.
    let (url, _deeper) =
        upstream(format!(r#"{{"items":{}}}"#, deep_object(100_000).replace("{\"a\":", "[").replace('}', "]")), "application/json").await;
    let case = Case::new();
    case.run(&api_pipeline(&url, "", "")).await.expect(1, 200).says("nested deeper than 128 levels");
    assert_eq!(case.job().error_category.as_deref(), Some("records"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_xml_body_nested_100000_deep_fails_cleanly() {
    let xml = format!("<?xml version=\"1.0\"?><r>{}x{}</r>", "<a>".repeat(100_000), "</a>".repeat(100_000));
    let (url, _server) = upstream(xml, "application/xml").await;
    let case = Case::new();
    case.run(&api_pipeline(&url, "", "")).await.expect(1, 200).says("nested deeper than 128 levels");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xml_entity_definitions_are_never_expanded() {
    let mut laughs = String::from("<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\">");
    for i in 1..10 {
        let previous = if i == 1 { "lol".to_string() } else { format!("lol{}", i - 1) };
        laughs.push_str(&format!("<!ENTITY lol{i} \"{}\">", format!("&{previous};").repeat(10)));
    }
    laughs.push_str("]><r><items><item><id>1</id><name>&lol9;</name></item></items></r>");
    let (url, _server) = upstream(laughs, "application/xml").await;
    let case = Case::new();
    case.run(&api_pipeline(&url, "", "")).await.expect(1, 200).says("unknown entity");
}

/// An upstream on another origin that records what it was sent.
#[derive(Clone, Default)]
struct Elsewhere(Arc<Mutex<Vec<HeaderMap>>>);

impl Elsewhere {
    async fn start(&self) -> String {
        let seen = self.clone();
        let app = Router::new().route(
            "/steal",
            get(move |headers: HeaderMap| {
                seen.0.lock().unwrap().push(headers);
                async { r#"{"items":[{"id":9,"name":"from elsewhere"}]}"# }
            }),
        );
        let (addr, task) = serve(app).await;
        std::mem::forget(task);
        format!("http://{addr}")
    }

    fn requests(&self) -> Vec<HeaderMap> {
        self.0.lock().unwrap().clone()
    }
}

/// The source's credentials: a bearer token and a custom key header.
const CREDENTIALS: &str = "auth: { type: bearer, token: tok-must-stay-home }\nheaders: { X-API-Key: key-must-stay-home }";

async fn linking(respond: impl Fn(String) -> Response + Clone + Send + Sync + 'static, elsewhere: &str) -> String {
    let elsewhere = elsewhere.to_string();
    let app = Router::new().route(
        "/page",
        get(move || {
            let (respond, elsewhere) = (respond.clone(), elsewhere.clone());
            async move { respond(elsewhere) }
        }),
    );
    let (addr, task) = serve(app).await;
    std::mem::forget(task);
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_and_redirects_to_another_origin_are_refused_and_get_no_credentials() {
    type Respond = fn(String) -> Response;
    let cases: [(&str, Respond, &str); 3] = [
        ("body next link", |to| format!(r#"{{"items":[{{"id":1}}],"next":"{to}/steal"}}"#).into_response(), ", pagination: { type: next }"),
        (
            "Link header",
            |to| ([(header::LINK, format!("<{to}/steal>; rel=\"next\""))], r#"{"items":[{"id":1}]}"#).into_response(),
            ", pagination: { type: link }",
        ),
        ("redirect", |to| (StatusCode::FOUND, [(header::LOCATION, format!("{to}/steal"))]).into_response(), ""),
    ];
    for (what, respond, pagination) in cases {
        let elsewhere = Elsewhere::default();
        let other = elsewhere.start().await;
        let url = linking(respond, &other).await;
        let case = Case::new();
        let ran = case.run(&api_pipeline(&url, CREDENTIALS, pagination)).await;
        ran.expect(1, 200).says("another origin than the source's").says(&other);
        assert_eq!(case.job().error_category.as_deref(), Some("http"), "{what}");
        assert!(elsewhere.requests().is_empty(), "{what}: the other origin was never called");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowed_cross_origin_links_are_followed_without_credentials_and_said() {
    let elsewhere = Elsewhere::default();
    let other = elsewhere.start().await;
    let url = linking(|to| format!(r#"{{"items":[{{"id":1}}],"next":"{to}/steal"}}"#).into_response(), &other).await;
    let case = Case::new();
    let source = format!("{CREDENTIALS}\nallowCrossOriginLinks: true");
    let ran = case.run(&api_pipeline(&url, &source, ", pagination: { type: next }")).await;
    ran.expect(0, 200).says("created 2").says(&format!("followed a link to {other}"));
    let seen = elsewhere.requests();
    assert_eq!(seen.len(), 1);
    assert!(seen[0].get(header::AUTHORIZATION).is_none() && seen[0].get("x-api-key").is_none(), "{:?}", seen[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_on_the_same_origin_keeps_its_credentials() {
    let seen = Elsewhere::default();
    let record = seen.clone();
    let app = Router::new().route("/page", get(|| async { (StatusCode::FOUND, [(header::LOCATION, "/moved")]) })).route(
        "/moved",
        get(move |headers: HeaderMap| {
            record.0.lock().unwrap().push(headers);
            async { r#"{"items":[{"id":1}]}"# }
        }),
    );
    let (addr, _server) = serve(app).await;
    let case = Case::new();
    case.run(&api_pipeline(&format!("http://{addr}"), CREDENTIALS, "")).await.expect(0, 200).says("created 1");
    let headers = seen.requests();
    assert_eq!(headers[0].get(header::AUTHORIZATION).unwrap(), "Bearer tok-must-stay-home");
}
