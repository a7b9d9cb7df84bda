//! A webhook subscription (`webhooks:` in a pipeline file, `/api/webhooks` in the service): which
//! events go where, signed with which secret, retried how.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Flag;
use super::de::{Secret, Span, TextMap};
use super::model::{Bookkeeping, enabled, is_enabled};

/// The events a subscription can name (`object.*` and `job.*` name a family, `*` all).
pub const EVENTS: &[&str] = &["object.created", "object.updated", "object.deleted", "job.completed", "job.failed"];

/// Where events are delivered.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WebhookDef {
    /// The receiver: an `http` or `https` URL, POSTed each event as a CloudEvents 1.0 JSON body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Or an email for each event, through an SMTP server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<EmailDef>,
    /// Which events (see [`EVENTS`]); all when empty.
    #[serde(default)]
    pub events: Vec<String>,
    /// Object events of this register only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub register: Option<String>,
    /// Object events of this schema only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// A JsonLogic rule on the object: an object event is delivered only when it holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<Value>,
    /// Signs each delivery (`X-Syncline-Signature`, HMAC-SHA256 over timestamp and body).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<Secret>,
    /// Extra headers sent with each delivery.
    #[serde(default, skip_serializing_if = "TextMap::is_empty")]
    pub headers: TextMap,
    /// How deliveries are retried before they are dead-lettered.
    #[serde(default)]
    pub retry: WebhookRetry,
    /// How long a receiver may take to answer (default 10s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Span>,
    /// `job.failed` only once a synchronization failed this many runs in a row (default 1: every failure).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_failures: Option<u32>,
    #[serde(default = "enabled", skip_serializing_if = "is_enabled")]
    pub is_enabled: Flag,
    #[serde(skip)]
    pub bookkeeping: Bookkeeping,
}

/// Events by email.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EmailDef {
    /// `smtp://host:587` (STARTTLS when the server offers it, required with a password), `smtps://host:465`
    /// (TLS from the start), or `smtp://host:25?tls=none` (plain: a local relay only).
    pub server: String,
    pub from: String,
    pub to: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret>,
}

/// Exponential backoff with jitter: attempt `n` waits about `initialBackoff × 2ⁿ⁻¹`, at most
/// `maxBackoff`; after `maxAttempts` failed attempts the delivery is dead-lettered.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WebhookRetry {
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    #[serde(default = "default_initial")]
    pub initial_backoff: Span,
    #[serde(default = "default_max")]
    pub max_backoff: Span,
}

impl Default for WebhookRetry {
    fn default() -> Self {
        WebhookRetry { max_attempts: default_attempts(), initial_backoff: default_initial(), max_backoff: default_max() }
    }
}

fn default_attempts() -> u32 {
    8
}

fn default_initial() -> Span {
    Span(std::time::Duration::from_secs(1))
}

fn default_max() -> Span {
    Span(std::time::Duration::from_secs(600))
}

impl WebhookDef {
    /// Whether it takes events of `kind` (`object.updated`).
    pub fn wants(&self, kind: &str) -> bool {
        self.events.is_empty()
            || self
                .events
                .iter()
                .any(|e| e == kind || e == "*" || e.strip_suffix(".*").is_some_and(|family| kind.starts_with(&format!("{family}."))))
    }

    /// Its problems, each a key under it and a message (the filter is checked by the mapping engine).
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut problems = Vec::new();
        match (&self.url, &self.email) {
            (Some(text), None) => match url::Url::parse(text) {
                Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {}
                _ => problems.push(("url", format!("`{}` is not an http or https URL", crate::secrets::mask_unparsed_url(text)))),
            },
            (None, Some(email)) => {
                match url::Url::parse(&email.server) {
                    Ok(url) if matches!(url.scheme(), "smtp" | "smtps") && url.host().is_some() => {}
                    _ => problems.push(("email.server", "an smtp:// or smtps:// URL".into())),
                }
                if email.to.is_empty() {
                    problems.push(("email.to", "at least one address".into()));
                }
                for address in email.to.iter().chain([&email.from]) {
                    if address.parse::<lettre::Address>().is_err() {
                        problems.push(("email", format!("`{address}` is not an email address")));
                    }
                }
            }
            _ => problems.push(("url", "a subscription has a `url` or an `email`, one of them".into())),
        }
        for event in &self.events {
            let family = event.strip_suffix(".*");
            if event != "*" && !EVENTS.contains(&event.as_str()) && !family.is_some_and(|f| f == "object" || f == "job") {
                problems.push(("events", format!("`{event}` is not an event; one of {}, object.*, job.* or *", EVENTS.join(", "))));
            }
        }
        if self.retry.max_attempts == 0 {
            problems.push(("retry.maxAttempts", "at least one attempt".into()));
        }
        problems
    }
}
