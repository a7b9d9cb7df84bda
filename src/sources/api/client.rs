//! HTTP requests of an API source: authentication, timeouts, TLS, a rate limit, and retries with
//! exponential backoff and jitter on connect errors, timeouts, 429 and 5xx, honouring `Retry-After`.
//! Every URL that appears in an error is redacted (no user info, API keys in the query masked).
//!
//! Credentials go only to the origins the user configured (the location's, an absolute endpoint's):
//! a redirect or a link elsewhere is refused, or with `allowCrossOriginLinks` fetched without any of
//! the source's credentials, headers or client certificate, and said in a warning. A response body is
//! read up to `limits.maxResponseBytes` and no further.

use std::time::Duration;

use bytes::Bytes;
use rand::Rng;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use tokio::sync::Mutex;
use tokio::time::Instant;
use url::Url;

use super::auth::RequestTemplates;
use crate::config::{AuthKind, KeyPlacement, RetryDef, Secret, SourceDef, TextMap};
use crate::limits::{ByteSize, OverLimit};
use crate::sources::SourceError;

/// One answered request.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

enum Auth {
    None,
    Basic { username: String, password: Secret },
    Bearer(Secret),
    Header { name: HeaderName, key: Secret },
    Query { name: String, key: Secret },
}

/// How much of an error answer is kept: its start is all a message shows.
const ERROR_BODY_BYTES: usize = 64 * 1024;

/// A configured HTTP client for one source.
pub struct HttpClient {
    client: reqwest::Client,
    /// For links to other origins (`allowCrossOriginLinks`): no credentials, headers or client certificate.
    anonymous: Option<reqwest::Client>,
    /// The origins credentials may go to.
    trusted: std::sync::Mutex<Vec<url::Origin>>,
    /// What the client had to tell the user (a link followed to another origin), taken by the reader.
    warnings: std::sync::Mutex<Vec<String>>,
    max_response_bytes: ByteSize,
    auth: Auth,
    headers: HeaderMap,
    query: Vec<(String, String)>,
    retry: RetryDef,
    /// Header and query values rendered per request (OAuth and JWT tokens).
    templates: Option<RequestTemplates>,
    /// Minimum spacing of requests, and when the next may go.
    rate: Option<(Duration, Mutex<Instant>)>,
    /// When the server said its request budget is spent (`X-RateLimit-Remaining: 0`): its reset time.
    exhausted: std::sync::Mutex<Option<Instant>>,
    timeout: Duration,
    /// Where each request is recorded (the call log), when the run keeps one.
    pub(super) calls: Option<crate::calls::CallTap>,
}

impl HttpClient {
    /// Builds the client from the source's settings plus the synchronization's extra headers and query.
    pub fn new(source: &SourceDef, extra_headers: &TextMap, extra_query: &TextMap) -> Result<Self, SourceError> {
        crate::sources::tls::install_provider();
        let timeout = source.timeout.map(|s| s.0).unwrap_or(Duration::from_secs(30));
        let trusted: Vec<url::Origin> = Url::parse(&source.location).map(|u| vec![u.origin()]).unwrap_or_default();
        let base = |redirects: reqwest::redirect::Policy| -> Result<reqwest::ClientBuilder, SourceError> {
            let mut builder = reqwest::Client::builder()
                .user_agent(concat!("syncline/", env!("CARGO_PKG_VERSION")))
                .timeout(timeout)
                .connect_timeout(source.connect_timeout.map(|s| s.0).unwrap_or(Duration::from_secs(10)))
                .danger_accept_invalid_certs(!source.tls.verify.0)
                .redirect(redirects)
                .no_proxy();
            if let Some(ca) = &source.tls.ca {
                let certificates = reqwest::Certificate::from_pem_bundle(ca.as_bytes())
                    .map_err(|e| SourceError::Config(format!("tls.ca is not a PEM certificate bundle: {}", chain(&e))))?;
                for certificate in certificates {
                    builder = builder.add_root_certificate(certificate);
                }
            }
            Ok(builder)
        };
        // Redirects are followed while they stay on the origin they started from; one that leaves it
        // comes back as the 3xx answer, for `request` to refuse or follow without credentials.
        let same_origin = reqwest::redirect::Policy::custom(|attempt| {
            let first = attempt.previous().first().map(Url::origin);
            if attempt.previous().len() >= 10 {
                attempt.error("more than 10 redirects")
            } else if first.is_some_and(|first| first == attempt.url().origin()) {
                attempt.follow()
            } else {
                attempt.stop()
            }
        });
        let mut builder = base(same_origin)?;
        let anonymous = if source.allow_cross_origin_links.0 {
            Some(
                base(reqwest::redirect::Policy::limited(10))?
                    .build()
                    .map_err(|e| SourceError::Config(format!("cannot build the HTTP client: {}", chain(&e))))?,
            )
        } else {
            None
        };
        match (&source.tls.cert, &source.tls.key) {
            (Some(cert), Some(key)) => {
                let pem = format!("{}\n{}", cert.trim_end(), key.expose());
                let identity = reqwest::Identity::from_pem(pem.as_bytes()).map_err(|e| {
                    SourceError::Config(format!("tls.cert and tls.key are not a PEM certificate and private key: {}", chain(&e)))
                })?;
                builder = builder.identity(identity);
            }
            (None, None) => {}
            _ => return Err(SourceError::Config("a client certificate needs both tls.cert and tls.key".into())),
        }
        let client = builder.build().map_err(|e| SourceError::Config(format!("cannot build the HTTP client: {}", chain(&e))))?;

        let mut header_pairs: Vec<(String, crate::config::Text)> =
            source.headers.iter().chain(extra_headers).map(|(k, v)| (k.clone(), v.clone())).collect();
        let mut query: Vec<(String, String)> = source.query.iter().chain(extra_query).map(|(k, v)| (k.clone(), v.0.clone())).collect();
        let templates = RequestTemplates::take(source, &mut header_pairs, &mut query, &client)?;
        let mut headers = HeaderMap::new();
        for (name, value) in &query {
            if crate::secrets::is_secret_name(name) {
                crate::secrets::remember(value);
            }
        }
        for (name, value) in header_pairs {
            if crate::secrets::is_secret_name(&name) {
                crate::secrets::remember(&value.0);
            }
            let name =
                HeaderName::from_bytes(name.as_bytes()).map_err(|_| SourceError::Config(format!("`{name}` is not a header name")))?;
            let value = HeaderValue::from_str(&value.0)
                .map_err(|_| SourceError::Config(format!("header `{name}` has a value that cannot be sent")))?;
            headers.insert(name, value);
        }

        let settings = &source.auth.0;
        let need = |what: &str| SourceError::Config(format!("auth needs `{what}`"));
        let auth = match settings.kind {
            AuthKind::None => Auth::None,
            AuthKind::Basic => {
                let username = settings.username.clone().or_else(|| source.username.clone()).ok_or_else(|| need("username"))?;
                let password = settings.password.clone().or_else(|| source.password.clone()).ok_or_else(|| need("password"))?;
                // The header form of the pair is a secret too: an upstream may echo it.
                use base64::Engine;
                crate::secrets::remember(&base64::engine::general_purpose::STANDARD.encode(format!("{username}:{}", password.expose())));
                Auth::Basic { username, password }
            }
            AuthKind::Bearer => Auth::Bearer(settings.token.clone().or_else(|| source.token.clone()).ok_or_else(|| need("token"))?),
            AuthKind::ApiKey => {
                let key = settings.key.clone().or_else(|| source.api_key.clone()).ok_or_else(|| need("key"))?;
                match settings.placement {
                    KeyPlacement::Header => {
                        let name = settings.name.as_deref().unwrap_or("X-API-Key");
                        let name = HeaderName::from_bytes(name.as_bytes())
                            .map_err(|_| SourceError::Config(format!("`{name}` is not a header name")))?;
                        Auth::Header { name, key }
                    }
                    KeyPlacement::Query => Auth::Query { name: settings.name.clone().unwrap_or_else(|| "api_key".into()), key },
                }
            }
        };
        let rate = source.rate_limit.map(|r| (r.per.0 / r.requests, Mutex::new(Instant::now())));
        Ok(HttpClient {
            client,
            anonymous,
            trusted: std::sync::Mutex::new(trusted),
            warnings: std::sync::Mutex::default(),
            max_response_bytes: source.limits.max_response_bytes,
            auth,
            headers,
            query,
            templates,
            retry: source.retries.clone(),
            rate,
            exhausted: std::sync::Mutex::new(None),
            timeout,
            calls: source.calls.clone(),
        })
    }

    /// Lets credentials go to `url`'s origin too: an endpoint the user wrote as an absolute URL.
    pub fn trust(&self, url: &Url) {
        let mut trusted = self.trusted.lock().unwrap_or_else(|p| p.into_inner());
        if !trusted.contains(&url.origin()) {
            trusted.push(url.origin());
        }
    }

    fn is_trusted(&self, url: &Url) -> bool {
        self.trusted.lock().unwrap_or_else(|p| p.into_inner()).contains(&url.origin())
    }

    /// What the client has to tell the user since it was last asked.
    pub fn take_warnings(&self) -> Vec<String> {
        std::mem::take(&mut *self.warnings.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// The refusal of a request to `url`, an origin credentials do not go to.
    fn cross_origin(&self, url: &Url) -> SourceError {
        SourceError::CrossOrigin { to: url.origin().ascii_serialization() }
    }

    /// The URL with the source's and synchronization's query parameters added (not the API key).
    pub fn with_query(&self, mut url: Url) -> Url {
        if !self.query.is_empty() {
            let existing: Vec<(String, String)> = url.query_pairs().into_owned().collect();
            let mut pairs = url.query_pairs_mut();
            for (k, v) in &self.query {
                if !existing.iter().any(|(ek, _)| ek == k) {
                    pairs.append_pair(k, v);
                }
            }
        }
        url
    }

    /// The URL as it may appear in messages: no user info, and the values of the API key parameter,
    /// of credential-named parameters and of any secret the process knows masked.
    pub fn redact(&self, url: &Url) -> String {
        let mut shown = url.clone();
        let _ = shown.set_username("");
        let _ = shown.set_password(None);
        let key_name = match &self.auth {
            Auth::Query { name, .. } => Some(name.as_str()),
            _ => None,
        };
        let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        let secret = |k: &str, v: &str| Some(k) == key_name || crate::secrets::is_secret_name(k) || crate::secrets::scrub(v) != v;
        if pairs.iter().any(|(k, v)| secret(k, v)) {
            shown
                .query_pairs_mut()
                .clear()
                .extend_pairs(pairs.iter().map(|(k, v)| (k.as_str(), if secret(k, v) { "***" } else { v.as_str() })));
        }
        crate::secrets::scrub(shown.as_str()).into_owned()
    }

    /// GETs `url`, retrying transient failures. Any final non-2xx answer is an error.
    pub async fn get(&self, url: &Url) -> Result<Response, SourceError> {
        self.request(reqwest::Method::GET, url, None, None).await
    }

    /// Sends `method` to `url` with a JSON `body`, with the source's auth, headers, pace and retries
    /// (connect errors, timeouts, 429 and 5xx, honouring `Retry-After`). Any final non-2xx answer is
    /// an error.
    /// `idempotency_key` goes out as `Idempotency-Key`, the same on every attempt, so an API that honours
    /// it makes one object of a create that is retried, or sent again after a run was cut off.
    pub async fn request(
        &self,
        method: reqwest::Method,
        url: &Url,
        body: Option<&serde_json::Value>,
        idempotency_key: Option<&str>,
    ) -> Result<Response, SourceError> {
        // A trace's span of the request (its fields are computed only when traces are on).
        let span = tracing::info_span!(target: "syncline::trace", "syncline.request", "http.request.method" = %method,
            "url.full" = %self.redact(url), "http.response.status_code" = tracing::field::Empty, error = tracing::field::Empty);
        let outcome = tracing::Instrument::instrument(self.attempts(method, url, body, idempotency_key), span.clone()).await;
        match &outcome {
            Ok(response) => span.record("http.response.status_code", response.status),
            Err(error) => span.record("error", error.to_string()),
        };
        outcome
    }

    async fn attempts(
        &self,
        method: reqwest::Method,
        url: &Url,
        body: Option<&serde_json::Value>,
        idempotency_key: Option<&str>,
    ) -> Result<Response, SourceError> {
        // Serialized once for every attempt, the call log and the cross-origin check.
        let body = body.map(|b| b.to_string());
        let body = body.as_deref();
        if !self.is_trusted(url) {
            let sent = super::tap::Sent::now(&method, body);
            let outcome = self.request_elsewhere(method, url, body).await;
            self.note(sent, &self.redact(&crate::secrets::without_credentials(url)), &outcome);
            return outcome;
        }
        let shown = self.redact(url);
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            self.wait_for_budget(&shown).await?;
            self.pace().await;
            let last = attempt >= self.retry.max_attempts.max(1);
            let sent = super::tap::Sent::now(&method, body);
            let outcome = self.send(method.clone(), url, body, idempotency_key, &shown).await;
            self.note(sent, &shown, &outcome);
            if let Ok(response) = &outcome {
                self.note_budget(&response.headers);
            }
            let (error, retry_after) = match outcome {
                Ok(response) if (200..300).contains(&response.status) => return Ok(response),
                // A redirect the client did not follow leaves the origin (see `new`).
                Ok(response) if (300..400).contains(&response.status) && response.headers.contains_key(reqwest::header::LOCATION) => {
                    let target =
                        response.headers.get(reqwest::header::LOCATION).and_then(|l| l.to_str().ok()).and_then(|l| url.join(l).ok());
                    return match target {
                        Some(target) if target.origin() != url.origin() => self.request_elsewhere(method, &target, body).await,
                        _ => Err(SourceError::Http {
                            url: shown.clone(),
                            status: response.status,
                            body: "a redirect syncline did not follow".into(),
                        }),
                    };
                }
                Ok(response) => {
                    let status = StatusCode::from_u16(response.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                    let error = SourceError::Http { url: shown.clone(), status: response.status, body: excerpt(&response.body) };
                    if !(status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()) {
                        return Err(error);
                    }
                    (error, retry_after(&response.headers).or_else(|| budget_reset(&response.headers)))
                }
                Err(error @ (SourceError::Connect { .. } | SourceError::Timeout { .. })) => (error, None),
                Err(error) => return Err(error),
            };
            if last {
                return Err(error);
            }
            let wait = match retry_after {
                Some(wait) if wait > self.retry.max_retry_after.0 => return Err(error),
                Some(wait) => wait,
                None => self.backoff(attempt),
            };
            tracing::warn!(url = %shown, attempt, wait_ms = wait.as_millis() as u64, error = %error, "retrying request");
            tokio::time::sleep(wait).await;
        }
    }

    /// A request to an origin credentials do not go to: refused, or sent bare with a warning when the
    /// source allows cross-origin links. Not retried.
    async fn request_elsewhere(&self, method: reqwest::Method, url: &Url, body: Option<&str>) -> Result<Response, SourceError> {
        let Some(anonymous) = &self.anonymous else { return Err(self.cross_origin(url)) };
        // A link may carry this source's key in its query (an upstream echoing it back): it stays home.
        let url = &crate::secrets::without_credentials(url);
        if body.is_some_and(|b| crate::secrets::scrub(b) != b) {
            return Err(self.cross_origin(url));
        }
        let shown = self.redact(url);
        let host = url.origin().ascii_serialization();
        self.warnings.lock().unwrap_or_else(|p| p.into_inner()).push(format!(
            "followed a link to {host}, another origin than the source's, without the source's credentials (allowCrossOriginLinks)"
        ));
        let mut request = anonymous.request(method, url.clone());
        if let Some(body) = body {
            request = request.header(reqwest::header::CONTENT_TYPE, "application/json").body(body.to_owned());
        }
        let response = request.send().await.map_err(|e| self.transport_error(&e, &shown))?;
        let response = self.read(response, &shown).await?;
        if (200..300).contains(&response.status) {
            Ok(response)
        } else {
            Err(SourceError::Http { url: shown, status: response.status, body: excerpt(&response.body) })
        }
    }

    /// Reads an answer's body: a success up to `maxResponseBytes` (more fails the request), an error
    /// answer only as far as a message shows.
    async fn read(&self, mut response: reqwest::Response, shown: &str) -> Result<Response, SourceError> {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let success = (200..300).contains(&status);
        let limit = self.max_response_bytes;
        let too_large = || SourceError::Limit(OverLimit::bytes(format!("the response of {shown}"), "maxResponseBytes", limit).to_string());
        if success && response.content_length().is_some_and(|length| length > limit.bytes()) {
            return Err(too_large());
        }
        let mut body = bytes::BytesMut::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| self.transport_error(&e, shown))? {
            if !success && body.len() + chunk.len() > ERROR_BODY_BYTES {
                body.extend_from_slice(&chunk[..ERROR_BODY_BYTES - body.len()]);
                break;
            }
            if body.len() + chunk.len() > limit.as_usize() {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Response { status, headers, body: body.freeze() })
    }

    async fn send(
        &self,
        method: reqwest::Method,
        url: &Url,
        body: Option<&str>,
        idempotency_key: Option<&str>,
        shown: &str,
    ) -> Result<Response, SourceError> {
        let mut url = url.clone();
        let mut headers = self.headers.clone();
        if let Some(templates) = &self.templates {
            let (rendered_headers, rendered_query) = templates.render().await?;
            headers.extend(rendered_headers.into_iter().map(|(k, v)| (Some(k), v)));
            if !rendered_query.is_empty() {
                url.query_pairs_mut().extend_pairs(rendered_query);
            }
        }
        if let Auth::Query { name, key } = &self.auth {
            url.query_pairs_mut().append_pair(name, key.expose());
        }
        let mut request = self.client.request(method, url).headers(headers);
        if let Some(key) = idempotency_key {
            request = request.header("idempotency-key", key);
        }
        if let Some(body) = body {
            request = request.header(reqwest::header::CONTENT_TYPE, "application/json").body(body.to_owned());
        }
        request = match &self.auth {
            Auth::None | Auth::Query { .. } => request,
            Auth::Basic { username, password } => request.basic_auth(username, Some(password.expose())),
            Auth::Bearer(token) => request.bearer_auth(token.expose()),
            Auth::Header { name, key } => request.header(name.clone(), key.expose()),
        };
        let response = request.send().await.map_err(|e| self.transport_error(&e, shown))?;
        self.read(response, shown).await
    }

    fn transport_error(&self, error: &reqwest::Error, shown: &str) -> SourceError {
        let reason = chain(error);
        let lower = reason.to_ascii_lowercase();
        if error.is_timeout() {
            SourceError::Timeout { url: shown.to_string(), reason: format!("no answer within {:?}", self.timeout) }
        } else if lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake") {
            SourceError::Tls { url: shown.to_string(), reason }
        } else {
            SourceError::Connect { url: shown.to_string(), reason }
        }
    }

    /// Waits until the rate limit lets the next request go.
    async fn pace(&self) {
        if let Some((spacing, next)) = &self.rate {
            let mut next = next.lock().await;
            let now = Instant::now();
            if *next > now {
                tokio::time::sleep_until(*next).await;
            }
            *next = Instant::now().max(*next) + *spacing;
        }
    }

    /// Remembers a spent request budget (`X-RateLimit-Remaining: 0` with `X-RateLimit-Reset`), as
    /// OpenConnector does, so the next request waits for the reset instead of being refused.
    fn note_budget(&self, headers: &HeaderMap) {
        let Some(remaining) = header_number(headers, "x-ratelimit-remaining") else { return };
        if let Ok(mut exhausted) = self.exhausted.lock() {
            *exhausted = if remaining <= 0.0 { budget_reset(headers).map(|wait| Instant::now() + wait) } else { None };
        }
    }

    /// Waits until a spent budget resets; a reset further away than `maxRetryAfter` fails the request.
    async fn wait_for_budget(&self, shown: &str) -> Result<(), SourceError> {
        let until = self.exhausted.lock().ok().and_then(|e| *e);
        let Some(until) = until else { return Ok(()) };
        let wait = until.saturating_duration_since(Instant::now());
        if wait > self.retry.max_retry_after.0 {
            return Err(SourceError::Http {
                url: shown.to_string(),
                status: 429,
                body: format!("the request budget is spent and resets in {}s, later than maxRetryAfter allows", wait.as_secs()),
            });
        }
        if !wait.is_zero() {
            tracing::warn!(url = %shown, wait_ms = wait.as_millis() as u64, "request budget spent (X-RateLimit-Remaining: 0): waiting for the reset");
            tokio::time::sleep(wait).await;
        }
        Ok(())
    }

    /// Exponential backoff with "equal jitter": half the step fixed, half random.
    fn backoff(&self, attempt: u32) -> Duration {
        let step = self.retry.initial_backoff.0.saturating_mul(1 << (attempt - 1).min(16)).min(self.retry.max_backoff.0);
        let half = step / 2;
        half + half.mul_f64(rand::rng().random::<f64>())
    }
}

/// `Retry-After` in seconds or as an HTTP date.
/// The longest wait an upstream's header is read as: further is the same (longer than any
/// `maxRetryAfter`), and stays clear of overflowing a clock when added to now.
const LONGEST_WAIT: Duration = Duration::from_secs(365 * 24 * 3600);

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds).min(LONGEST_WAIT));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(std::time::SystemTime::now()).unwrap_or(Duration::ZERO))
}

fn header_number(headers: &HeaderMap, name: &str) -> Option<f64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

/// How long until `X-RateLimit-Reset`: a Unix time (OpenConnector's reading) or, when small, seconds.
fn budget_reset(headers: &HeaderMap) -> Option<Duration> {
    let reset = header_number(headers, "x-ratelimit-reset")?;
    // `inf`, `NaN` and `-1` parse as numbers too; none is a time.
    if !reset.is_finite() || reset < 0.0 {
        return None;
    }
    let seconds = if reset > 1_000_000_000.0 {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).ok()?.as_secs_f64();
        (reset - now).max(0.0)
    } else {
        reset
    };
    Some(Duration::from_secs_f64(seconds.min(LONGEST_WAIT.as_secs_f64())))
}

/// The start of an error body, on one line.
fn excerpt(body: &Bytes) -> String {
    // Secrets are masked before the cut, so none can show in part at its end.
    let text = crate::secrets::scrub(&String::from_utf8_lossy(body)).into_owned();
    // An upstream's text reaches terminals and pages: no control characters (escape sequences).
    let line: String =
        text.split_whitespace().collect::<Vec<_>>().join(" ").chars().map(|c| if c.is_control() { '?' } else { c }).collect();
    let cut: String = line.chars().take(300).collect();
    if cut.len() < line.len() { format!("{cut}…") } else { cut }
}

/// An error and its causes, without the URL (which callers print redacted).
pub fn chain(error: &reqwest::Error) -> String {
    let mut parts = Vec::new();
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        let text = inner.to_string();
        if !parts.contains(&text) {
            parts.push(text);
        }
        source = inner.source();
    }
    if parts.is_empty() {
        parts.push(if error.is_connect() { "connection failed".into() } else { "request failed".into() });
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(yaml: serde_json::Value) -> SourceDef {
        serde_json::from_value(yaml).unwrap()
    }

    #[test]
    fn redacts_query_keys_and_user_info() {
        let s =
            source(serde_json::json!({"location": "http://x", "auth": {"type": "apiKey", "in": "query", "name": "key", "key": "s3cret"}}));
        let client = HttpClient::new(&s, &TextMap::new(), &TextMap::new()).unwrap();
        let shown = client.redact(&Url::parse("http://u:p@host/a?key=s3cret&page=2").unwrap());
        assert_eq!(shown, "http://host/a?key=***&page=2");
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let s = source(serde_json::json!({"location": "http://x", "retries": {"initialBackoff": "100ms", "maxBackoff": "1s"}}));
        let client = HttpClient::new(&s, &TextMap::new(), &TextMap::new()).unwrap();
        for attempt in 1..10 {
            let step = Duration::from_millis(100 * (1 << (attempt - 1))).min(Duration::from_secs(1));
            let wait = client.backoff(attempt);
            assert!(wait >= step / 2 && wait <= step, "attempt {attempt}: {wait:?}");
        }
    }

    #[test]
    fn waits_an_upstream_names_are_numbers_within_reason() {
        for (name, value) in [
            ("x-ratelimit-reset", "inf"),
            ("x-ratelimit-reset", "NaN"),
            ("x-ratelimit-reset", "-inf"),
            ("x-ratelimit-reset", "1e308"),
            (RETRY_AFTER.as_str(), "18446744073709551615"),
        ] {
            let mut h = HeaderMap::new();
            h.insert(HeaderName::from_static(name), HeaderValue::from_static(value));
            let wait = retry_after(&h).or_else(|| budget_reset(&h));
            assert!(wait.is_none_or(|w| w <= LONGEST_WAIT), "{name}: {value} → {wait:?}");
            // Added to now, as the budget's reset is, without overflowing.
            let _ = wait.map(|w| Instant::now() + w);
        }
    }

    #[test]
    fn retry_after_forms() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("3"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
        h.insert(RETRY_AFTER, HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"));
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
    }

    #[test]
    fn rate_limit_resets() {
        let mut h = HeaderMap::new();
        h.insert("x-ratelimit-reset", HeaderValue::from_static("2"));
        assert_eq!(budget_reset(&h), Some(Duration::from_secs(2)));
        let soon = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 60;
        h.insert("x-ratelimit-reset", HeaderValue::from_str(&soon.to_string()).unwrap());
        let wait = budget_reset(&h).unwrap();
        assert!(wait > Duration::from_secs(58) && wait <= Duration::from_secs(60), "{wait:?}");
    }
}
