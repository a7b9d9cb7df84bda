//! Events by email: one message per delivery, through the subscription's SMTP server. A refused or
//! unreachable server is a failed attempt, retried like an HTTP receiver's.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde_json::Value;

use crate::config::webhook::EmailDef;
use crate::store::webhooks::Delivery;

/// Sends `delivery` as an email; `Err` says why not (never with the password).
pub async fn send(email: &EmailDef, delivery: &Delivery, timeout: Duration) -> Result<(), String> {
    let server = url::Url::parse(&email.server).map_err(|e| format!("email.server: {e}"))?;
    let host = server.host_str().ok_or("email.server names no host")?.to_string();
    let plain = server.query_pairs().any(|(k, v)| k == "tls" && v == "none");
    let tls = |required: bool| -> Result<Tls, String> {
        let parameters = TlsParameters::new(host.clone()).map_err(|e| format!("TLS: {e}"))?;
        Ok(if required {
            Tls::Wrapper(parameters)
        } else if email.password.is_some() {
            Tls::Required(parameters)
        } else {
            Tls::Opportunistic(parameters)
        })
    };
    let tls = match (server.scheme(), plain) {
        ("smtps", _) => tls(true)?,
        (_, true) => Tls::None,
        _ => tls(false)?,
    };
    let port = server.port().unwrap_or(if server.scheme() == "smtps" { 465 } else { 587 });
    let mut transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&host).port(port).tls(tls).timeout(Some(timeout));
    if let (Some(username), Some(password)) = (&email.username, &email.password) {
        transport = transport.credentials(Credentials::new(username.clone(), password.expose().to_string()));
    }
    let event: Value = serde_json::from_str(&delivery.body).unwrap_or(Value::Null);
    let subject = match event["type"].as_str().unwrap_or_default() {
        "job.failed" => {
            format!("syncline: {} failed ({} in a row)", event["subject"].as_str().unwrap_or(""), event["data"]["failuresInARow"])
        }
        kind => format!("syncline: {kind} {}", event["subject"].as_str().unwrap_or("")),
    };
    let error = event["data"]["error"].as_str().map(|e| format!("{e}\n\n")).unwrap_or_default();
    let body = format!("{error}{}\n", serde_json::to_string_pretty(&event).unwrap_or_default());
    let mut message = Message::builder()
        .from(email.from.parse().map_err(|e| format!("email.from: {e}"))?)
        .subject(subject)
        .header(ContentType::TEXT_PLAIN);
    for to in &email.to {
        message = message.to(to.parse().map_err(|e| format!("email.to: {e}"))?);
    }
    let message = message.body(body).map_err(|e| format!("the message: {e}"))?;
    transport.build().send(message).await.map(|_| ()).map_err(|e| crate::secrets::scrub(&e.to_string()).into_owned())
}
