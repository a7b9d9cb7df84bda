//! The web console's sign-in over real HTTP: the session cookie's flags, the CSRF token required on
//! every change made with it, a wrong key getting no cookie, and `x-api-key` working as before.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use syncline::config::Secret;
use syncline::service::{self, ServeOptions};
use syncline::store::StateDir;

const KEY: &str = "console-key-3c2b1a";

fn client() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

async fn login(http: &reqwest::Client, url: &str, key: &str) -> reqwest::Response {
    http.post(format!("{url}/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("key={key}"))
        .send()
        .await
        .unwrap()
}

/// The CSRF token a signed-in page embeds.
fn csrf_of(page: &str) -> String {
    let start =
        page.find(r#"name="csrf-token" content=""#).expect("the page embeds its CSRF token") + r#"name="csrf-token" content=""#.len();
    page[start..start + 64].to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_need_the_key_and_changes_need_the_csrf_token() {
    let state = tempfile::tempdir().unwrap();
    let options = ServeOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        files: vec![],
        api_keys: vec![Secret::new(KEY)],
        tick: Duration::from_millis(200),
        public_url: None,
        server: Default::default(),
        front: Some(syncline::console::mount),
        allow_programs: false,
    };
    let (address, stop, handle) = service::spawn(StateDir::open(state.path()).unwrap(), options).await.unwrap();
    let url = format!("http://{address}");
    let http = client();

    // Not signed in: pages send the browser to the sign-in form, the API answers 401.
    let page = http.get(format!("{url}/sources")).send().await.unwrap();
    assert_eq!((page.status(), page.headers()[LOCATION].to_str().unwrap()), (StatusCode::SEE_OTHER, "/login"));
    assert_eq!(http.get(format!("{url}/api/sources")).send().await.unwrap().status(), StatusCode::UNAUTHORIZED);

    let wrong = login(&http, &url, "not-the-key").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(wrong.headers().get(SET_COOKIE).is_none(), "a wrong key gets no cookie");

    let forged = http
        .post(format!("{url}/login"))
        .header("origin", "http://evil.example")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("key={KEY}"))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN, "sign-in from another site's page is refused");

    let signed = login(&http, &url, KEY).await;
    assert_eq!(signed.status(), StatusCode::SEE_OTHER);
    let set = signed.headers()[SET_COOKIE].to_str().unwrap().to_string();
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(flag), "{set}");
    }
    assert!(!set.contains(KEY));
    let cookie = set.split(';').next().unwrap().to_string();

    let dashboard = http.get(format!("{url}/")).header(COOKIE, &cookie).send().await.unwrap();
    assert_eq!(dashboard.status(), StatusCode::OK);
    assert!(dashboard.headers()["content-security-policy"].to_str().unwrap().contains("script-src 'self'"));
    let html = dashboard.text().await.unwrap();
    assert!(!html.contains(KEY), "the key is never in a page");
    let csrf = csrf_of(&html);

    // Reads need the cookie only; changes also need the token, in x-csrf-token.
    assert_eq!(http.get(format!("{url}/api/registers")).header(COOKIE, &cookie).send().await.unwrap().status(), StatusCode::OK);
    let register = r#"{"name": "dcat", "schemas": {"dataset": {"type": "object"}}}"#;
    let post = |token: Option<&str>| {
        let mut request =
            http.post(format!("{url}/api/registers")).header(COOKIE, &cookie).header("content-type", "application/json").body(register);
        if let Some(token) = token {
            request = request.header("x-csrf-token", token);
        }
        request.send()
    };
    assert_eq!(post(None).await.unwrap().status(), StatusCode::FORBIDDEN);
    assert_eq!(post(Some(&"0".repeat(64))).await.unwrap().status(), StatusCode::FORBIDDEN);
    assert_eq!(post(Some(&csrf)).await.unwrap().status(), StatusCode::CREATED);
    let delete = http.delete(format!("{url}/api/registers/dcat")).header(COOKIE, &cookie).send().await.unwrap();
    assert_eq!(delete.status(), StatusCode::FORBIDDEN);

    // The key keeps working as before, without any cookie or token.
    let keyed = http.delete(format!("{url}/api/registers/dcat")).header("x-api-key", KEY).send().await.unwrap();
    assert_eq!(keyed.status(), StatusCode::NO_CONTENT);
    let bad_key = http.get(format!("{url}/api/registers")).header("x-api-key", "nope").header(COOKIE, &cookie).send().await.unwrap();
    assert_eq!(bad_key.status(), StatusCode::UNAUTHORIZED, "a wrong key is not rescued by a cookie");

    // Signing out needs the token too, and ends the session.
    let no_token = http
        .post(format!("{url}/logout"))
        .header(COOKIE, &cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("csrf=")
        .send()
        .await
        .unwrap();
    assert_eq!(no_token.status(), StatusCode::FORBIDDEN);
    let out = http
        .post(format!("{url}/logout"))
        .header(COOKIE, &cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf={csrf}"))
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert!(out.headers()[SET_COOKIE].to_str().unwrap().contains("Max-Age=0"));
    assert_eq!(http.get(format!("{url}/api/registers")).header(COOKIE, &cookie).send().await.unwrap().status(), StatusCode::UNAUTHORIZED);

    stop.cancel();
    handle.await.unwrap().unwrap();
}
