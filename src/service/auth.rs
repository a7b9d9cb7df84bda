//! Who may call the API: a request carries a key in `x-api-key`, or the console's session cookie.
//! Keys are compared in constant time, lengths included; a client that keeps sending wrong keys (to
//! the API or the sign-in form) is refused for a while.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{ApiError, Shared};

/// Wrong keys a client may send per window before it is refused until the window ends.
const MAX_FAILURES: u32 = 10;
const WINDOW: Duration = Duration::from_secs(300);
/// Clients remembered at most; past this the oldest records go (memory stays bounded).
const MAX_CLIENTS: usize = 10_000;

/// Failed key checks per client address.
#[derive(Default)]
pub struct Attempts(Mutex<HashMap<IpAddr, (u32, Instant)>>);

impl Attempts {
    /// How long `client` must still wait, if it is refused.
    pub fn blocked(&self, client: IpAddr) -> Option<Duration> {
        let seen = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let (failures, since) = seen.get(&client)?;
        let left = WINDOW.checked_sub(since.elapsed())?;
        (*failures >= MAX_FAILURES).then_some(left)
    }

    pub fn failed(&self, client: IpAddr) {
        let mut seen = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if seen.len() >= MAX_CLIENTS {
            seen.retain(|_, (_, since)| since.elapsed() < WINDOW);
            if seen.len() >= MAX_CLIENTS
                && let Some(oldest) = seen.iter().min_by_key(|(_, (_, since))| *since).map(|(ip, _)| *ip)
            {
                seen.remove(&oldest);
            }
        }
        let entry = seen.entry(client).or_insert((0, Instant::now()));
        if entry.1.elapsed() >= WINDOW {
            *entry = (0, Instant::now());
        }
        entry.0 += 1;
    }
}

/// Whether `given` is one of `keys`. The digests are compared (blake3's equality is constant time),
/// so neither a key's content nor its length shows in the time taken.
pub fn key_matches(keys: &[blake3::Hash], given: &[u8]) -> bool {
    if given.is_empty() {
        return false;
    }
    let given = blake3::hash(given);
    keys.iter().fold(false, |hit, key| hit | (*key == given))
}

/// The 429 a refused client gets.
pub fn refused(wait: Duration) -> Response {
    let mut response = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too many requests with a wrong key: try again later").into_response();
    response.headers_mut().insert(axum::http::header::RETRY_AFTER, HeaderValue::from(wait.as_secs().max(1)));
    response
}

/// What a front end mounted on the service (the console) made of a request's own credentials before
/// the API sees it: a live session stands in for the key; a change made with a session but without
/// its CSRF token is refused, with the front end's reason. Only server-side middleware sets it.
#[derive(Clone, Debug)]
pub enum FrontCredential {
    Session,
    Refused(&'static str),
}

/// The `x-api-key` header, or else what the front end said of the request ([`FrontCredential`]).
pub async fn require_key(State(shared): State<Shared>, request: Request, next: Next) -> Response {
    let client = request.extensions().get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip());
    if let Some(wait) = client.and_then(|ip| shared.attempts.blocked(ip)) {
        return refused(wait);
    }
    let given = request.headers().get("x-api-key").map(|v| v.as_bytes().to_vec()).unwrap_or_default();
    if given.is_empty() {
        match request.extensions().get::<FrontCredential>() {
            Some(FrontCredential::Session) => return next.run(request).await,
            Some(FrontCredential::Refused(why)) => return ApiError::new(StatusCode::FORBIDDEN, *why).into_response(),
            None => {}
        }
    }
    if !shared.key_matches(&given) {
        if let (Some(ip), false) = (client, given.is_empty()) {
            shared.attempts.failed(ip);
        }
        return ApiError::new(StatusCode::UNAUTHORIZED, "a valid x-api-key header is required").into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_match_whole_and_clients_are_refused_after_failures() {
        let keys = [blake3::hash(b"change-me"), blake3::hash(b"other")];
        assert!(key_matches(&keys, b"change-me") && key_matches(&keys, b"other"));
        assert!(!key_matches(&keys, b"change-m") && !key_matches(&keys, b"change-me!") && !key_matches(&keys, b""));
        let attempts = Attempts::default();
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        for _ in 0..MAX_FAILURES - 1 {
            attempts.failed(ip);
        }
        assert!(attempts.blocked(ip).is_none());
        attempts.failed(ip);
        assert!(attempts.blocked(ip).is_some());
        assert!(attempts.blocked("10.0.0.2".parse().unwrap()).is_none());
    }
}
