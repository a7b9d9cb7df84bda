//! Sign-in for the console. The API key is typed once into the sign-in form and never leaves the
//! server again: the browser gets a random session id in an `HttpOnly; SameSite=Strict` cookie, so no
//! script (ours or an injected one) can read a credential, and nothing lands in the URL or storage.
//! Each session carries its own CSRF token, embedded in the pages and required on every change made
//! with the cookie: a page on another site cannot read it, so it cannot forge a change.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use std::sync::Arc;

use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::header::{COOKIE, HOST, ORIGIN, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use rand::RngCore;
use serde::Deserialize;
use subtle::ConstantTimeEq;

use super::ConsoleState;
use super::pages::render;
use crate::service::Shared;
use crate::service::auth::FrontCredential;

pub const COOKIE_NAME: &str = "syncline_session";
/// The header the console's scripts send the CSRF token in (forms send it as the `csrf` field).
pub const CSRF_HEADER: &str = "x-csrf-token";
/// A session idle this long is gone: a laptop left open does not stay signed in for days.
const IDLE: Duration = Duration::from_secs(8 * 3600);
/// However busy, a session ends this long after sign-in: a stolen cookie does not work forever.
const LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// Beyond this many live sessions the oldest are dropped, so repeated sign-ins cannot fill memory.
const MAX_SESSIONS: usize = 1000;

struct Session {
    csrf: String,
    expires: Instant,
    ends: Instant,
}

/// Live sessions, keyed by the blake3 digest of their id: the map never holds a usable cookie value.
#[derive(Default)]
pub struct Sessions {
    live: Mutex<HashMap<[u8; 32], Session>>,
}

fn digest(id: &str) -> [u8; 32] {
    *blake3::hash(id.as_bytes()).as_bytes()
}

/// 256 random bits as hex, for session ids and CSRF tokens.
fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Sessions {
    fn live(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Session>> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new session: its id (for the cookie).
    fn create(&self) -> String {
        let id = random_token();
        let now = Instant::now();
        let mut live = self.live();
        live.retain(|_, s| s.expires > now);
        while live.len() >= MAX_SESSIONS {
            let Some(oldest) = live.iter().min_by_key(|(_, s)| s.expires).map(|(k, _)| *k) else { break };
            live.remove(&oldest);
        }
        live.insert(digest(&id), Session { csrf: random_token(), expires: now + IDLE, ends: now + LIFETIME });
        id
    }

    /// The CSRF token of a live session, which is kept alive by the use.
    fn touch(&self, id: &str) -> Option<String> {
        let mut live = self.live();
        let key = digest(id);
        let now = Instant::now();
        match live.get_mut(&key) {
            Some(session) if session.expires > now && session.ends > now => {
                session.expires = (now + IDLE).min(session.ends);
                Some(session.csrf.clone())
            }
            Some(_) => {
                live.remove(&key);
                None
            }
            None => None,
        }
    }

    fn remove(&self, id: &str) {
        self.live().remove(&digest(id));
    }
}

/// The session id in the request's cookies, if any.
fn cookie(headers: &HeaderMap) -> Option<String> {
    headers.get_all(COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|pair| {
        let (name, value) = pair.trim().split_once('=')?;
        (name == COOKIE_NAME && !value.is_empty()).then(|| value.to_string())
    })
}

fn same_token(given: &str, expected: &str) -> bool {
    !given.is_empty() && bool::from(given.as_bytes().ct_eq(expected.as_bytes()))
}

/// For the API's key check (a layer around every route): with a live session the session stands in
/// for the key, and a change (anything but GET/HEAD/OPTIONS) must carry the session's CSRF token in
/// `x-csrf-token`, else the API answers 403. Without one the request goes on as it came (401 at the
/// API without a key).
pub async fn credential(mut request: Request, next: Next) -> Response {
    let session = request.extensions().get::<Arc<ConsoleState>>().and_then(|console| console.sessions.touch(&cookie(request.headers())?));
    if let Some(csrf) = session {
        let safe = matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS);
        let given = request.headers().get(CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
        let verdict = if safe || same_token(given, &csrf) {
            FrontCredential::Session
        } else {
            FrontCredential::Refused("a change made with the console's session needs its x-csrf-token header")
        };
        request.extensions_mut().insert(verdict);
    }
    next.run(request).await
}

/// The console's state, which [`super::mount`] puts on every request.
fn console_of(extensions: &axum::http::Extensions) -> Arc<ConsoleState> {
    extensions.get::<Arc<ConsoleState>>().cloned().unwrap_or_default()
}

/// A signed-in visitor of a console page, with the CSRF token the page embeds. Pages without a session
/// send the browser to the sign-in form.
pub struct SignedIn {
    pub csrf: String,
}

impl FromRequestParts<Shared> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &Shared) -> Result<Self, Self::Rejection> {
        match cookie(&parts.headers).and_then(|id| console_of(&parts.extensions).sessions.touch(&id)) {
            Some(csrf) => Ok(SignedIn { csrf }),
            None => Err(Redirect::to("/login").into_response()),
        }
    }
}

/// A form post must come from a page of this very host: the `Origin` a browser sends names it. This
/// guards the sign-in form (which has no session yet, so no CSRF token) against login CSRF.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(ORIGIN).and_then(|v| v.to_str().ok()) else { return true };
    let host = headers.get(HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
    origin.split_once("://").is_some_and(|(_, rest)| rest == host)
}

/// The session cookie; `Secure` where the service is reached over HTTPS (its `--public-url`, or a
/// proxy in front saying so in `X-Forwarded-Proto`), so the browser never sends it in clear text.
fn session_cookie(shared: &Shared, headers: &HeaderMap, value: &str, max_age: u64) -> HeaderValue {
    let forwarded = headers.get("x-forwarded-proto").and_then(|v| v.to_str().ok()).is_some_and(|p| p.trim().eq_ignore_ascii_case("https"));
    let secure = if shared.public_https() || forwarded { "; Secure" } else { "" };
    HeaderValue::from_str(&format!("{COOKIE_NAME}={value}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age}{secure}"))
        .expect("a hex id makes a valid header")
}

pub async fn login_page(Extension(console): Extension<Arc<ConsoleState>>, headers: HeaderMap) -> Response {
    if cookie(&headers).and_then(|id| console.sessions.touch(&id)).is_some() {
        return Redirect::to("/").into_response();
    }
    render("login.html", serde_json::json!({ "title": "Sign in" }))
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    key: String,
}

pub async fn login(State(shared): State<Shared>, request: axum::extract::Request) -> Response {
    let (parts, body) = request.into_parts();
    let headers = &parts.headers;
    if !same_origin(headers) {
        return (StatusCode::FORBIDDEN, "sign in from this service's own page").into_response();
    }
    let client = crate::service::client_of(&parts).map(|a| a.ip());
    if let Some(wait) = client.and_then(|ip| shared.attempts.blocked(ip)) {
        let mut page =
            render("login.html", serde_json::json!({ "title": "Sign in", "error": "Too many failed sign-ins: try again later." }));
        *page.status_mut() = StatusCode::TOO_MANY_REQUESTS;
        page.headers_mut().insert(axum::http::header::RETRY_AFTER, HeaderValue::from(wait.as_secs().max(1)));
        return page;
    }
    let Ok(Form(form)) = Form::<LoginForm>::from_request(axum::extract::Request::from_parts(parts.clone(), body), &shared).await else {
        return (StatusCode::BAD_REQUEST, "a sign-in form has a `key` field").into_response();
    };
    if !shared.key_matches(form.key.as_bytes()) {
        if let Some(ip) = client {
            shared.attempts.failed(ip);
        }
        let mut page = render("login.html", serde_json::json!({ "title": "Sign in", "error": "That key is not valid." }));
        *page.status_mut() = StatusCode::UNAUTHORIZED;
        return page;
    }
    let id = console_of(&parts.extensions).sessions.create();
    let mut response = Redirect::to("/").into_response();
    response.headers_mut().insert(SET_COOKIE, session_cookie(&shared, headers, &id, IDLE.as_secs()));
    response
}

#[derive(Deserialize)]
pub struct LogoutForm {
    #[serde(default)]
    csrf: String,
}

pub async fn logout(
    State(shared): State<Shared>,
    Extension(console): Extension<Arc<ConsoleState>>,
    headers: HeaderMap,
    Form(form): Form<LogoutForm>,
) -> Response {
    let Some(id) = cookie(&headers) else { return Redirect::to("/login").into_response() };
    match console.sessions.touch(&id) {
        Some(csrf) if same_token(&form.csrf, &csrf) => console.sessions.remove(&id),
        Some(_) => return (StatusCode::FORBIDDEN, "signing out needs the page's CSRF token").into_response(),
        None => {}
    }
    let mut response = Redirect::to("/login").into_response();
    response.headers_mut().insert(SET_COOKIE, session_cookie(&shared, &headers, "", 0));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_live_until_removed_and_ids_are_not_stored() {
        let sessions = Sessions::default();
        let id = sessions.create();
        let csrf = sessions.touch(&id).expect("live");
        assert_eq!(csrf.len(), 64);
        assert_ne!(csrf, id);
        assert!(sessions.touch("0000").is_none());
        assert!(!sessions.live().keys().any(|k| k == id.as_bytes()));
        sessions.remove(&id);
        assert!(sessions.touch(&id).is_none());
    }

    #[test]
    fn a_busy_session_still_ends_at_its_lifetime() {
        let sessions = Sessions::default();
        let id = sessions.create();
        let now = Instant::now();
        sessions.live().get_mut(&digest(&id)).unwrap().ends = now;
        assert!(sessions.touch(&id).is_none(), "past its lifetime, however recently used");
        let fresh = sessions.create();
        sessions.touch(&fresh).unwrap();
        let session = &sessions.live()[&digest(&fresh)];
        assert!(session.expires <= session.ends, "an idle extension never passes the lifetime");
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(COOKIE, HeaderValue::from_static("a=1; syncline_session=abc; b=2"));
        assert_eq!(cookie(&headers).as_deref(), Some("abc"));
        assert!(same_token("abc", "abc") && !same_token("", "") && !same_token("abd", "abc"));
    }
}
