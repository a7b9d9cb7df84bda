//! The call log's tap on the HTTP client: each attempt of each request, as it went.

use std::time::Instant;

use super::client::{HttpClient, Response};
use crate::calls::Call;
use crate::sources::SourceError;

/// A request as it left.
pub(super) struct Sent {
    at: i64,
    started: Instant,
    method: String,
    bytes_out: u64,
}

impl Sent {
    /// `body`: as it goes out.
    pub(super) fn now(method: &reqwest::Method, body: Option<&str>) -> Sent {
        let bytes_out = body.map_or(0, |b| b.len() as u64);
        Sent { at: chrono::Utc::now().timestamp_millis(), started: Instant::now(), method: method.to_string(), bytes_out }
    }
}

impl HttpClient {
    /// Records one attempt (`shown`: its URL, redacted) in the run's call log, if it keeps one.
    pub(super) fn note(&self, sent: Sent, shown: &str, outcome: &Result<Response, SourceError>) {
        let Some(tap) = &self.calls else { return };
        let (status, bytes_in, error) = match outcome {
            Ok(response) if (200..300).contains(&response.status) => (Some(response.status), response.body.len() as u64, None),
            Ok(response) => (Some(response.status), response.body.len() as u64, Some(format!("HTTP {}", response.status))),
            Err(SourceError::Http { status, body, .. }) => (Some(*status), body.len() as u64, Some(format!("HTTP {status}"))),
            Err(error) => (None, 0, Some(crate::secrets::scrub(&error.to_string()).into_owned())),
        };
        tap.buffer.push(Call {
            at: sent.at,
            source: tap.source.clone(),
            method: sent.method,
            url: shown.to_string(),
            status,
            duration_ms: sent.started.elapsed().as_millis() as u64,
            bytes_in,
            bytes_out: sent.bytes_out,
            error,
        });
    }
}
