//! Webhooks out: events (an object created, updated or deleted; a job completed or failed) as
//! CloudEvents 1.0 JSON bodies, signed, delivered from the outbox with retries ([`dispatch`]).
//!
//! A receiver verifies a delivery by its `X-Syncline-Signature: t=<unix seconds>,v1=<hex>` header:
//! `v1` is HMAC-SHA256, keyed with the subscription's `secret`, over `<t>.<body>` (the timestamp, a
//! dot, the raw body); it should also refuse a `t` far from its own clock (a replay). The event's `id`
//! (also in `webhook-id`) is unique: a receiver that saw it already can ignore a redelivery.

pub mod dispatch;
mod email;

use serde_json::{Value, json};

use crate::config::webhook::WebhookRetry;
use crate::store::jobs::{JobEvent, JobRecord};
use crate::store::register::Change;
use crate::store::webhooks::NewDelivery;

/// The signature header.
pub const SIGNATURE: &str = "x-syncline-signature";

/// The event type of a change.
pub fn change_kind(change: &Change) -> &'static str {
    match change.action.as_str() {
        "create" => "object.created",
        "update" => "object.updated",
        _ => "object.deleted",
    }
}

/// The CloudEvent of a register change, as `instance` numbers it.
pub fn change_event(instance: &str, change: &Change) -> NewDelivery {
    let kind = change_kind(change);
    let id = format!("{instance}-change-{}", change.seq);
    let body = json!({
        "specversion": "1.0",
        "id": id,
        "source": format!("urn:syncline:{instance}:registers/{}/schemas/{}", change.register, change.schema),
        "type": kind,
        "subject": change.id,
        "time": change.at,
        "datacontenttype": "application/json",
        "data": {
            "seq": change.seq,
            "action": change.action,
            "id": change.id,
            "register": change.register,
            "schema": change.schema,
            "originId": change.origin_id,
            "synchronization": change.synchronization,
            "job": change.job,
            "object": change.object,
        },
    });
    NewDelivery { event_id: id, kind: kind.into(), subject: change.id.clone(), body: body.to_string() }
}

/// The CloudEvent of a job that ended, with how many runs of its synchronization failed in a row.
pub fn job_event(instance: &str, event: &JobEvent, job: Option<&JobRecord>, failures_in_a_row: u32) -> NewDelivery {
    let kind = if event.status == "FAILED" { "job.failed" } else { "job.completed" };
    let id = format!("{instance}-job-{}", event.seq);
    let mut data = job.map(|job| serde_json::to_value(job).unwrap_or(Value::Null)).unwrap_or_else(|| json!({ "id": event.job }));
    data["failuresInARow"] = Value::from(failures_in_a_row);
    let body = json!({
        "specversion": "1.0",
        "id": id,
        "source": format!("urn:syncline:{instance}:synchronizations/{}", event.synchronization),
        "type": kind,
        "subject": event.synchronization,
        "time": event.at,
        "datacontenttype": "application/json",
        "data": data,
    });
    NewDelivery { event_id: id, kind: kind.into(), subject: format!("job:{}", event.synchronization), body: body.to_string() }
}

/// The `X-Syncline-Signature` value of `body` sent at `timestamp` (unix seconds).
pub fn signature(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    let mut context = ring::hmac::Context::with_key(&key);
    context.update(timestamp.to_string().as_bytes());
    context.update(b".");
    context.update(body);
    let hex: String = context.sign().as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("t={timestamp},v1={hex}")
}

/// How far a signature's timestamp may be from now: an older request is taken for a replay.
pub const SIGNATURE_TOLERANCE_SECONDS: i64 = 300;

/// Whether `header` (an `X-Syncline-Signature` value) signs `body` with `secret`, at a time within
/// [`SIGNATURE_TOLERANCE_SECONDS`] of `now` (unix seconds). Compared in constant time.
pub fn verify(secret: &[u8], header: &str, body: &[u8], now: i64) -> bool {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => t = value.parse::<i64>().ok(),
            Some(("v1", value)) => v1 = Some(value),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else { return false };
    if (now - t).abs() > SIGNATURE_TOLERANCE_SECONDS || v1.len() != 64 || !v1.bytes().all(|b| b.is_ascii_hexdigit()) {
        return false;
    }
    let tag: Vec<u8> = (0..32).filter_map(|i| u8::from_str_radix(&v1[i * 2..i * 2 + 2], 16).ok()).collect();
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    ring::hmac::verify(&key, &[t.to_string().as_bytes(), b".", body].concat(), &tag).is_ok()
}

/// How long to wait after failed attempt `attempt` (from 1): `initialBackoff × 2^(attempt−1)`, at
/// most `maxBackoff`, then between half and all of that (jitter: receivers that come back are not
/// hit by every sender at once).
pub fn backoff(retry: &WebhookRetry, attempt: u32) -> std::time::Duration {
    let doubled = retry.initial_backoff.0.saturating_mul(1u32.checked_shl(attempt.saturating_sub(1)).unwrap_or(u32::MAX));
    let capped = doubled.min(retry.max_backoff.0);
    capped.mul_f64(rand::Rng::random_range(&mut rand::rng(), 0.5..=1.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Span;
    use std::time::Duration;

    #[test]
    fn a_signature_is_hmac_sha256_over_timestamp_dot_body() {
        // As Python's hmac.new(b"whsec-test", b'1700000000.{"a":1}', hashlib.sha256).hexdigest() computes it.
        let expected = "fed7a1a6c799a6367d73724d76bc70c16678908a32a879cd1ded6565ac05cece";
        assert_eq!(signature(b"whsec-test", 1_700_000_000, br#"{"a":1}"#), format!("t=1700000000,v1={expected}"));
    }

    #[test]
    fn a_signature_verifies_within_its_time_only() {
        let header = signature(b"whsec-test", 1_700_000_000, b"{}");
        assert!(verify(b"whsec-test", &header, b"{}", 1_700_000_100));
        assert!(!verify(b"whsec-test", &header, b"{} ", 1_700_000_100), "another body");
        assert!(!verify(b"other", &header, b"{}", 1_700_000_100), "another secret");
        assert!(!verify(b"whsec-test", &header, b"{}", 1_700_000_000 + SIGNATURE_TOLERANCE_SECONDS + 1), "too old: a replay");
        for bad in ["", "t=1700000000", "v1=00", "t=x,v1=zz", &header.replace("v1=", "v1=0")] {
            assert!(!verify(b"whsec-test", bad, b"{}", 1_700_000_000), "{bad}");
        }
    }

    #[test]
    fn backoff_doubles_up_to_its_cap_with_jitter() {
        let retry =
            WebhookRetry { max_attempts: 5, initial_backoff: Span(Duration::from_secs(1)), max_backoff: Span(Duration::from_secs(10)) };
        for (attempt, full) in [(1, 1), (2, 2), (3, 4), (4, 8), (5, 10), (40, 10)] {
            let wait = backoff(&retry, attempt);
            assert!(wait <= Duration::from_secs(full) && wait >= Duration::from_secs(full) / 2, "attempt {attempt}: {wait:?}");
        }
    }
}
