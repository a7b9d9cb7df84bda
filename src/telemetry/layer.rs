//! The tracing layer that turns syncline's spans into OTLP spans, and the thread that sends them.
//!
//! Spans are collected as they close and handed to an exporter thread through a bounded channel: a
//! slow or dead collector never holds up a run (spans beyond the buffer are dropped and counted),
//! and memory stays bounded. The exporter sends a request every second or every 512 spans, and once
//! more when the process ends ([`Telemetry::shutdown`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Metadata, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use super::Config;
use super::otlp::{AttributeValue, SpanRecord, encode_request};

/// Spans waiting for the exporter, at most.
const BUFFER: usize = 4096;
/// Spans in one request, at most.
const BATCH: usize = 512;

enum Message {
    Span(SpanRecord),
    Flush(SyncSender<()>),
}

/// The layer: install it with a filter that passes syncline's spans ([`OtlpLayer::wants`]).
pub struct OtlpLayer {
    spans: SyncSender<Message>,
    dropped: Arc<AtomicU64>,
}

/// The exporter's handle: flushes what is buffered when the process ends.
pub struct Telemetry {
    spans: SyncSender<Message>,
    dropped: Arc<AtomicU64>,
}

/// What a span carries while open.
struct Open {
    trace_id: [u8; 16],
    span_id: [u8; 8],
    parent_span_id: Option<[u8; 8]>,
    start_unix_nano: u64,
    attributes: Vec<(String, AttributeValue)>,
    error: Option<String>,
}

impl OtlpLayer {
    /// The layer and its exporter thread, sending to `config.endpoint`.
    pub fn start(config: Config) -> std::io::Result<(OtlpLayer, Telemetry)> {
        let (spans, received) = std::sync::mpsc::sync_channel(BUFFER);
        let dropped = Arc::new(AtomicU64::new(0));
        std::thread::Builder::new().name("otlp-exporter".into()).spawn(move || export(config, received))?;
        Ok((OtlpLayer { spans: spans.clone(), dropped: Arc::clone(&dropped) }, Telemetry { spans, dropped }))
    }

    /// The spans this layer exports: syncline's own, not events and not libraries'.
    pub fn wants(metadata: &Metadata<'_>) -> bool {
        metadata.is_span() && metadata.target().starts_with("syncline")
    }
}

impl Telemetry {
    /// Sends what is buffered, waiting at most `within`; says how many spans were dropped.
    pub fn shutdown(&self, within: Duration) {
        let (done, flushed) = std::sync::mpsc::sync_channel(1);
        if self.spans.send(Message::Flush(done)).is_ok() {
            let _ = flushed.recv_timeout(within);
        }
        let dropped = self.dropped.load(Ordering::Relaxed);
        if dropped > 0 {
            tracing::warn!("traces: {dropped} span(s) dropped: the collector did not keep up");
        }
    }
}

fn now_nanos() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0)
}

fn random_id<const N: usize>() -> [u8; N] {
    let mut id = [0u8; N];
    id.copy_from_slice(&uuid::Uuid::new_v4().as_bytes()[..N]);
    id
}

/// Fields as attributes: text scrubbed of secrets, `error` as the span's status.
struct Fields<'a>(&'a mut Open);

impl Fields<'_> {
    fn set(&mut self, field: &Field, value: AttributeValue) {
        let name = field.name();
        if name == "error" {
            if let AttributeValue::String(message) = value {
                self.0.error = Some(message);
            }
            return;
        }
        let attributes = &mut self.0.attributes;
        match attributes.iter_mut().find(|(k, _)| k == name) {
            Some((_, slot)) => *slot = value,
            None => attributes.push((name.to_string(), value)),
        }
    }
}

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.set(field, AttributeValue::String(crate::secrets::scrub(value).into_owned()));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.set(field, AttributeValue::Bool(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.set(field, AttributeValue::Int(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.set(field, AttributeValue::Int(value.min(i64::MAX as u64) as i64));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.set(field, AttributeValue::Double(value));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.record_str(field, &format!("{value:?}"));
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> tracing_subscriber::Layer<S> for OtlpLayer {
    fn on_new_span(&self, attributes: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        // The nearest exported ancestor is the parent; a span without one starts a trace.
        let parent = span.scope().skip(1).find_map(|ancestor| ancestor.extensions().get::<Open>().map(|o| (o.trace_id, o.span_id)));
        let mut open = Open {
            trace_id: parent.map_or_else(random_id, |(trace, _)| trace),
            span_id: random_id(),
            parent_span_id: parent.map(|(_, span)| span),
            start_unix_nano: now_nanos(),
            attributes: Vec::new(),
            error: None,
        };
        attributes.record(&mut Fields(&mut open));
        span.extensions_mut().insert(open);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id)
            && let Some(open) = span.extensions_mut().get_mut::<Open>()
        {
            values.record(&mut Fields(open));
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let Some(open) = span.extensions_mut().remove::<Open>() else { return };
        let record = SpanRecord {
            trace_id: open.trace_id,
            span_id: open.span_id,
            parent_span_id: open.parent_span_id,
            name: span.name().to_string(),
            start_unix_nano: open.start_unix_nano,
            end_unix_nano: now_nanos(),
            attributes: open.attributes,
            error: open.error,
        };
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) = self.spans.try_send(Message::Span(record)) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The exporter thread: batches spans and POSTs them, on a runtime of its own so that it outlives
/// neither nor depends on the process's.
fn export(config: Config, received: Receiver<Message>) {
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
    // No redirect is followed: the headers (an ingest key) go to the configured endpoint only.
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).timeout(config.timeout).build();
    let Ok(client) = client else { return };
    let mut batch: Vec<SpanRecord> = Vec::new();
    let mut last_sent = Instant::now();
    loop {
        let message = received.recv_timeout(Duration::from_secs(1));
        let flush = match message {
            Ok(Message::Span(span)) => {
                batch.push(span);
                None
            }
            Ok(Message::Flush(done)) => Some(done),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        if !batch.is_empty() && (flush.is_some() || batch.len() >= BATCH || last_sent.elapsed() >= Duration::from_secs(1)) {
            for chunk in batch.chunks(BATCH) {
                runtime.block_on(send(&client, &config, chunk));
            }
            batch.clear();
            last_sent = Instant::now();
        }
        if let Some(done) = flush {
            let _ = done.try_send(());
        }
    }
}

async fn send(client: &reqwest::Client, config: &Config, spans: &[SpanRecord]) {
    let body = encode_request(&config.resource, "syncline", env!("CARGO_PKG_VERSION"), spans);
    let mut request = client.post(config.endpoint.clone()).header(reqwest::header::CONTENT_TYPE, "application/x-protobuf").body(body);
    for (name, value) in &config.headers {
        request = request.header(name.as_str(), value.as_str());
    }
    let shown = crate::secrets::without_credentials(&config.endpoint);
    match request.send().await {
        Ok(response) if response.status().is_success() => {}
        Ok(response) => tracing::warn!("traces: {shown} answered {}", response.status()),
        Err(error) => tracing::warn!("traces: cannot reach {shown}: {}", crate::secrets::scrub(&error.to_string())),
    }
}
