//! Secrets are write-only. Three layers keep them so:
//!
//! - typed configuration holds them as [`crate::config::Secret`], which prints and serializes as `***`;
//! - definitions kept as JSON (the service's catalog, exports) are walked by [`spots`], which finds
//!   every value that is a credential by its key (passwords, tokens, keys, auth-like headers and
//!   query parameters, a `{secret: …}` wrapper) and the passwords inside URLs;
//! - every secret value the process has read is remembered, and [`scrub`] masks it wherever it still
//!   turns up (an upstream's error body echoing a token, a library's trace line), in job records, logs
//!   and error answers.

use std::borrow::Cow;
use std::sync::RwLock;

use serde_json::Value;

/// What a secret shows as.
pub const MASK: &str = "***";

/// Values shorter than this are not scrubbed from free text, where they would mask ordinary words
/// (where a secret sits by its key, it is masked whatever its length).
const MIN_SCRUBBED: usize = 6;

static KNOWN: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Remembers `value` as a secret, so [`scrub`] masks it from then on.
pub fn remember(value: &str) {
    if value.len() < MIN_SCRUBBED || value == MASK {
        return;
    }
    let mut known = KNOWN.write().unwrap_or_else(|p| p.into_inner());
    if !known.iter().any(|k| k == value) {
        known.push(value.to_string());
        // Longest first, so a secret that contains another is masked whole.
        known.sort_by_key(|k| std::cmp::Reverse(k.len()));
    }
}

/// `text` with every remembered secret (as it is, and as a URL would encode it) replaced by `***`.
pub fn scrub(text: &str) -> Cow<'_, str> {
    let known = KNOWN.read().unwrap_or_else(|p| p.into_inner());
    let mut out = Cow::Borrowed(text);
    for secret in known.iter() {
        for form in encodings(secret) {
            if out.contains(form.as_ref()) {
                out = Cow::Owned(out.replace(form.as_ref(), MASK));
            }
        }
    }
    out
}

/// The forms a secret takes in text: itself, percent-encoded (query strings), and JSON-escaped (an
/// upstream's error body quoting it).
fn encodings(secret: &str) -> Vec<Cow<'_, str>> {
    let mut forms = vec![Cow::Borrowed(secret)];
    // JSON-escaped as serde writes it (JSON log lines), and with `/` escaped too, as PHP writes it.
    let json = serde_json::to_string(secret).unwrap_or_default();
    let json = json[1..json.len() - 1].to_string();
    let php = json.replace('/', "\\/");
    for form in [json, php] {
        if form != secret && !forms.iter().any(|f| *f == form) {
            forms.push(Cow::Owned(form));
        }
    }
    let query: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    if query != secret {
        forms.push(Cow::Owned(query));
    }
    let path = percent_encoding::utf8_percent_encode(secret, percent_encoding::NON_ALPHANUMERIC).to_string();
    if path != secret {
        forms.push(Cow::Owned(path));
    }
    forms
}

/// Whether a key (a field, a header or a query parameter name) names a credential. Dot keys
/// (`headers.Authorization`) are judged by their last part.
pub fn is_secret_name(name: &str) -> bool {
    let last = name.rsplit('.').next().unwrap_or(name);
    let n: String = last.chars().filter(|c| !matches!(c, '-' | '_' | ' ')).flat_map(char::to_lowercase).collect();
    // Where a secret is kept, or what kind it is: not the secret itself.
    const NOT: [&str; 8] = ["url", "uri", "location", "type", "file", "position", "name", "placement"];
    if NOT.iter().any(|suffix| n.ends_with(suffix)) {
        return false;
    }
    const PARTS: [&str; 10] =
        ["password", "passwd", "passphrase", "secret", "token", "apikey", "signature", "cookie", "credential", "authorization"];
    PARTS.iter().any(|part| n.contains(part))
        || matches!(n.as_str(), "pass" | "pwd" | "sig" | "jwt" | "session" | "sessionid")
        || n.ends_with("key")
}

/// Where a secret sits in a JSON definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Spot {
    /// The whole value at this JSON pointer is a secret.
    Value(String),
    /// The string at this pointer is a URL with a password or secret query parameters in it.
    Url(String),
}

impl Spot {
    pub fn pointer(&self) -> &str {
        match self {
            Spot::Value(p) | Spot::Url(p) => p,
        }
    }
}

/// Every secret in `value`, found by key at any depth (the walk keeps its own stack).
pub fn spots(value: &Value) -> Vec<Spot> {
    let mut out = Vec::new();
    let mut stack: Vec<(String, Option<&str>, &Value)> = vec![(String::new(), None, value)];
    while let Some((pointer, key, value)) = stack.pop() {
        let secret_key = key.is_some_and(is_secret_name);
        match value {
            // A placeholder (`${TOKEN}`, as export writes and pipeline files read) holds no secret.
            Value::String(s) if is_placeholder(s) => {}
            Value::String(s) if secret_key && s != MASK && !s.is_empty() => out.push(Spot::Value(pointer)),
            Value::Number(_) if secret_key => out.push(Spot::Value(pointer)),
            Value::String(s) if url_has_secrets(s) => out.push(Spot::Url(pointer)),
            // `{secret: "…"}`: a header or query value the user marked as a credential.
            Value::Object(map) if map.len() == 1 && map.contains_key("secret") => out.push(Spot::Value(format!("{pointer}/secret"))),
            Value::Object(map) => {
                for (k, v) in map {
                    stack.push((format!("{pointer}/{}", escape(k)), Some(k.as_str()), v));
                }
            }
            // Guzzle's `auth: [user, password]` (OpenConnector's source configuration).
            Value::Array(items) if key == Some("auth") => {
                out.extend((1..items.len()).map(|i| Spot::Value(format!("{pointer}/{i}"))));
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    stack.push((format!("{pointer}/{i}"), key.filter(|_| secret_key), v));
                }
            }
            _ => {}
        }
    }
    out.sort_by(|a, b| a.pointer().cmp(b.pointer()));
    out
}

/// `${NAME}` (or `${NAME:-default}`), written where a secret is to be read from the environment.
fn is_placeholder(text: &str) -> bool {
    text.strip_prefix("${").and_then(|t| t.strip_suffix('}')).is_some_and(|name| !name.is_empty() && !name.contains('}'))
}

fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// Whether `text` is a URL carrying a password, or query parameters named like credentials.
fn url_has_secrets(text: &str) -> bool {
    if !text.contains("://") {
        return false;
    }
    let Ok(url) = url::Url::parse(text) else { return false };
    url.password().is_some() || url.query_pairs().any(|(k, _)| is_secret_name(&k))
}

/// Text that should be a URL but may not parse, as a message may show it: anything between `://`
/// and an `@` (user info) masked.
pub fn mask_unparsed_url(text: &str) -> String {
    if let Ok(url) = url::Url::parse(text) {
        return mask_url(url.as_str());
    }
    match (text.find("://"), text.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme + 3 => format!("{}{MASK}{}", &text[..scheme + 3], &text[at..]),
        _ => text.to_string(),
    }
}

/// `url` as it may go to a host credentials are not meant for: no user info, and none of the query
/// parameters that are named like a credential or hold a secret syncline knows.
pub fn without_credentials(url: &url::Url) -> url::Url {
    let mut out = url.clone();
    let _ = out.set_username("");
    let _ = out.set_password(None);
    let kept: Vec<(String, String)> =
        url.query_pairs().into_owned().filter(|(k, v)| !is_secret_name(k) && scrub(v) == v.as_str()).collect();
    if kept.is_empty() {
        out.set_query(None);
    } else {
        out.query_pairs_mut().clear().extend_pairs(kept);
    }
    out
}

/// `url` with its password and the values of credential-named query parameters masked.
pub fn mask_url(text: &str) -> String {
    let Ok(mut url) = url::Url::parse(text) else { return text.to_string() };
    if url.password().is_some() {
        let _ = url.set_password(Some(MASK));
    }
    let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    if pairs.iter().any(|(k, _)| is_secret_name(k)) {
        url.query_pairs_mut()
            .clear()
            .extend_pairs(pairs.iter().map(|(k, v)| (k.as_str(), if is_secret_name(k) { MASK } else { v.as_str() })));
    }
    url.to_string()
}

/// `value` with every secret replaced by `***` (passwords inside URLs by `***` in their place), and
/// every secret the process knows masked in any other string (a value once marked `{secret: …}`).
pub fn masked(value: &Value) -> Value {
    let mut out = value.clone();
    for spot in spots(value) {
        let Some(slot) = out.pointer_mut(spot.pointer()) else { continue };
        *slot = match (&spot, &*slot) {
            (Spot::Url(_), Value::String(url)) => Value::String(mask_url(url)),
            _ => Value::String(MASK.into()),
        };
    }
    let mut stack = vec![&mut out];
    while let Some(value) = stack.pop() {
        match value {
            Value::String(text) => {
                if let Cow::Owned(scrubbed) = scrub(text) {
                    *text = scrubbed;
                }
            }
            Value::Object(map) => stack.extend(map.values_mut()),
            Value::Array(items) => stack.extend(items.iter_mut()),
            _ => {}
        }
    }
    out
}

/// Remembers every secret `value` holds, for [`scrub`].
pub fn remember_all(value: &Value) {
    for spot in spots(value) {
        match value.pointer(spot.pointer()) {
            Some(Value::String(s)) if matches!(spot, Spot::Value(_)) => remember(s),
            Some(Value::Number(n)) => remember(&n.to_string()),
            Some(Value::String(s)) => {
                if let Ok(url) = url::Url::parse(s) {
                    if let Some(password) = url.password() {
                        remember(password);
                        remember(&percent_encoding::percent_decode_str(password).decode_utf8_lossy());
                    }
                    for (k, v) in url.query_pairs() {
                        if is_secret_name(&k) {
                            remember(&v);
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_of_credentials() {
        for secret in [
            "password",
            "apiKey",
            "apikey",
            "api_key",
            "X-API-Key",
            "Authorization",
            "headers.Authorization",
            "client_secret",
            "token",
            "X-Auth-Token",
            "Ocp-Apim-Subscription-Key",
            "passphrase",
            "privateKey",
            "access_token",
            "Cookie",
            "sig",
            "key",
        ] {
            assert!(is_secret_name(secret), "{secret}");
        }
        for plain in [
            "tokenUrl",
            "tokenLocation",
            "token_type",
            "privateKeyFile",
            "name",
            "location",
            "auth",
            "Accept",
            "page",
            "idPosition",
            "keyPlacement",
            "monkey_name",
            "type",
        ] {
            assert!(!is_secret_name(plain), "{plain}");
        }
    }

    #[test]
    fn spots_mask_and_remember() {
        let source = json!({
            "location": "mysql://u:pw%40x@h/db", "auth": {"type": "bearer", "token": "t0ken-1"},
            "headers": {"Authorization": "Bearer abcd", "Accept": "json", "X-Tenant": {"secret": "tenant-9"}},
            "query": {"api_key": 12345, "page": 1}, "configuration": {"auth": ["user", "gz-pass"]},
            "endpoint": "https://h/x?access_token=tok-query&page=2", "verifyHostKey": false
        });
        let shown = masked(&source);
        assert_eq!(shown["location"], "mysql://u:***@h/db");
        assert_eq!(shown["auth"], json!({"type": "bearer", "token": "***"}));
        assert_eq!(shown["headers"], json!({"Authorization": "***", "Accept": "json", "X-Tenant": {"secret": "***"}}));
        assert_eq!(shown["query"], json!({"api_key": "***", "page": 1}));
        assert_eq!(shown["configuration"]["auth"], json!(["user", "***"]));
        assert_eq!(shown["endpoint"], "https://h/x?access_token=***&page=2");
        assert_eq!(shown["verifyHostKey"], false);
        remember_all(&source);
        assert_eq!(scrub("GET /x?k=t0ken-1 with tenant-9 and gz-pass failed"), "GET /x?k=*** with *** and *** failed");
        assert_eq!(scrub("q=tok-query"), "q=***");
        assert_eq!(scrub("plain text"), "plain text");
        // As an upstream's JSON error body quotes it, and in a URL that does not parse.
        remember("p/w\"q-42");
        assert_eq!(scrub(r#"{"error":"bad password p\/w\"q-42"}"#), r#"{"error":"bad password ***"}"#);
        // As a JSON log line writes it (serde leaves `/` alone), and ending in an escaped quote.
        assert_eq!(scrub(r#"{"message":"bad password p/w\"q-42"}"#), r#"{"message":"bad password ***"}"#);
        remember("ends-in-quote-7\"");
        assert_eq!(scrub(r#"{"message":"k=ends-in-quote-7\""}"#), r#"{"message":"k=***"}"#);
        assert_eq!(mask_unparsed_url("https://user:pa ss@exa mple/x"), "https://***@exa mple/x");
        let elsewhere = url::Url::parse("https://u:p@other/x?page=2&api_key=k&q=t0ken-1&sort=name").unwrap();
        assert_eq!(without_credentials(&elsewhere).as_str(), "https://other/x?page=2&sort=name");
    }
}
