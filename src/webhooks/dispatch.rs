//! The service's webhook dispatcher: at every tick it takes the events each subscription wants from
//! the outbox (the register's change feed and the jobs' ends) into `webhooks.db`, then delivers what
//! is due, a few at a time, the first pending delivery about each subject only (order per object is
//! kept), retrying with backoff until a delivery is dead-lettered.
//!
//! A subscription seen for the first time starts at the newest event: it is sent what happens from
//! then on, not the register's history.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use super::{backoff, change_event, change_kind, job_event, signature};
use crate::config::webhook::WebhookDef;
use crate::mapping::Filter;
use crate::store::jobs::JobStore;
use crate::store::register::{ChangeQuery, RegisterStore};
use crate::store::webhooks::{Attempt, Cursor, Delivery, NewDelivery, WebhookStore};
use crate::store::{StateDir, StoreError};

/// Deliveries sent at once.
const IN_FLIGHT: usize = 8;
/// Events read from the outbox per step.
const PAGE: usize = 500;
/// How long one tick may spend delivering before the outbox is read again.
const TICK_BUDGET: Duration = Duration::from_secs(5);

/// The subscriptions as they are now (the service's catalog changes over its API).
pub type Subscriptions = Box<dyn Fn() -> BTreeMap<String, WebhookDef> + Send + Sync>;

/// Delivers until `stop`.
pub async fn run(state: StateDir, subscriptions: Subscriptions, tick: Duration, stop: CancellationToken) {
    let http = match reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build() {
        Ok(http) => http,
        Err(error) => return tracing::error!("webhooks: no HTTP client: {error}"),
    };
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(tick) => {}
        }
        let subs = subscriptions();
        if subs.is_empty() {
            continue;
        }
        let taking = {
            let (state, subs) = (state.clone(), subs.clone());
            tokio::task::spawn_blocking(move || take_events(&state, &subs)).await
        };
        if let Ok(Err(error)) | Err(error) = taking.map_err(|e| StoreError::NotFound(e.to_string())) {
            tracing::warn!("webhooks: reading events: {error}");
        }
        if let Err(error) = deliver_due(&state, &subs, &http, &stop).await {
            tracing::warn!("webhooks: delivering: {error}");
        }
    }
}

/// Gives each subscription seen for the first time its cursor, at the newest events: it is sent what
/// happens from now on. The service calls it as a subscription is made, before the next tick.
pub fn start_new(state: &StateDir, subs: &BTreeMap<String, WebhookDef>) -> Result<(), StoreError> {
    start_new_in(&state.webhooks()?, &state.register()?, &*state.jobs()?, subs, chrono::Utc::now().timestamp_millis())
}

fn start_new_in(
    store: &WebhookStore,
    register: &RegisterStore,
    jobs: &JobStore,
    subs: &BTreeMap<String, WebhookDef>,
    now: i64,
) -> Result<(), StoreError> {
    for (name, _) in subs.iter().filter(|(_, d)| d.is_enabled.0) {
        if store.cursor(name)?.is_none() {
            store.take(name, Cursor { changes: register.head()?, jobs: jobs.last_job_event()? }, &[], now)?;
        }
    }
    Ok(())
}

/// Takes the new events of every enabled subscription into the deliveries database.
pub fn take_events(state: &StateDir, subs: &BTreeMap<String, WebhookDef>) -> Result<(), StoreError> {
    let (store, register, jobs, instance) = (state.webhooks()?, state.register()?, state.jobs()?, state.instance()?);
    let now = chrono::Utc::now().timestamp_millis();
    start_new_in(&store, &register, &jobs, subs, now)?;
    for (name, def) in subs.iter().filter(|(_, d)| d.is_enabled.0) {
        let Some(mut cursor) = store.cursor(name)? else { continue };
        // A filter that no longer compiles (it was checked when defined) lets every object through.
        let filter = def.filter.as_ref().and_then(|f| Filter::new(None, Some(f)).ok());
        loop {
            let query = ChangeQuery {
                register: def.register.as_deref(),
                schema: def.schema.as_deref(),
                since: cursor.changes,
                limit: PAGE,
                ..ChangeQuery::default()
            };
            let page = register.changes(&query)?;
            let wanted = page.changes.iter().filter(|c| def.wants(change_kind(c)));
            let taken: Vec<NewDelivery> = wanted
                .filter(|c| match (&filter, &c.object) {
                    (Some(filter), Some(object)) => filter.accepts(object).unwrap_or(false),
                    _ => true,
                })
                .map(|c| change_event(&instance, c))
                .collect();
            cursor.changes = page.next;
            store.take(name, cursor, &taken, now)?;
            if !page.more {
                break;
            }
        }
        loop {
            let events = jobs.job_events_after(cursor.jobs, PAGE)?;
            let Some(last) = events.last().map(|e| e.seq) else { break };
            let mut taken = Vec::new();
            for event in &events {
                let failed = event.status == "FAILED";
                if !def.wants(if failed { "job.failed" } else { "job.completed" }) {
                    continue;
                }
                let in_a_row = if failed { jobs.failures_in_a_row(&event.synchronization, event.seq)? } else { 0 };
                // `afterFailures: N`: once per streak, at its Nth failure.
                if failed && def.after_failures.is_some_and(|n| in_a_row != n.max(1)) {
                    continue;
                }
                taken.push(job_event(&instance, event, jobs.get(&event.job).ok().as_ref(), in_a_row));
            }
            cursor.jobs = last;
            store.take(name, cursor, &taken, now)?;
        }
    }
    Ok(())
}

/// Sends what is due, until nothing is or the tick's budget is spent.
async fn deliver_due(
    state: &StateDir,
    subs: &BTreeMap<String, WebhookDef>,
    http: &reqwest::Client,
    stop: &CancellationToken,
) -> Result<(), StoreError> {
    let store = std::sync::Arc::new(state.webhooks()?);
    let started = std::time::Instant::now();
    while started.elapsed() < TICK_BUDGET && !stop.is_cancelled() {
        let now = chrono::Utc::now().timestamp_millis();
        let due = {
            let store = std::sync::Arc::clone(&store);
            tokio::task::spawn_blocking(move || store.due(now, IN_FLIGHT * 4)).await.map_err(|e| StoreError::NotFound(e.to_string()))??
        };
        if due.is_empty() {
            return Ok(());
        }
        let attempts: Vec<(i64, Attempt)> = futures::stream::iter(due)
            .map(|delivery| async move {
                let attempt = match subs.get(&delivery.webhook).filter(|d| d.is_enabled.0) {
                    Some(def) => send(http, def, &delivery).await,
                    None => Attempt { error: Some("the subscription was removed or disabled".into()), ..Attempt::default() },
                };
                (delivery.id, attempt)
            })
            .buffer_unordered(IN_FLIGHT)
            .collect()
            .await;
        let store = std::sync::Arc::clone(&store);
        tokio::task::spawn_blocking(move || {
            let now = chrono::Utc::now().timestamp_millis();
            attempts.iter().try_for_each(|(id, attempt)| store.attempted(*id, attempt, now))
        })
        .await
        .map_err(|e| StoreError::NotFound(e.to_string()))??;
    }
    Ok(())
}

/// One attempt at `delivery`: delivered on a 2xx answer (or an email the server took), else failed,
/// with when to try again.
async fn send(http: &reqwest::Client, def: &WebhookDef, delivery: &Delivery) -> Attempt {
    let timeout = def.timeout.map_or(Duration::from_secs(10), |t| t.0);
    let (status, error) = match (&def.url, &def.email) {
        (Some(url), _) => match post(http, def, url, timeout, delivery).await {
            Ok(status) => return Attempt { delivered: true, status: Some(status), ..Attempt::default() },
            Err(failed) => failed,
        },
        (None, Some(email)) => match super::email::send(email, delivery, timeout).await {
            Ok(()) => return Attempt { delivered: true, ..Attempt::default() },
            Err(error) => (None, error),
        },
        (None, None) => (None, "the subscription has no url or email".to_string()),
    };
    let attempts = delivery.attempts + 1;
    let retry_at = (attempts < def.retry.max_attempts)
        .then(|| chrono::Utc::now().timestamp_millis() + backoff(&def.retry, attempts).as_millis() as i64);
    Attempt { delivered: false, status, error: Some(error), retry_at }
}

/// POSTs the event: its 2xx status, or the status (if any) and why it failed.
async fn post(
    http: &reqwest::Client,
    def: &WebhookDef,
    url: &str,
    timeout: Duration,
    delivery: &Delivery,
) -> Result<u16, (Option<u16>, String)> {
    let timestamp = chrono::Utc::now().timestamp();
    let mut request = http
        .post(url)
        .timeout(timeout)
        .header("content-type", "application/cloudevents+json")
        .header("webhook-id", &delivery.event_id)
        .header("x-syncline-delivery", delivery.id.to_string());
    for (name, value) in &def.headers {
        request = request.header(name.as_str(), value.0.as_str());
    }
    if let Some(secret) = &def.secret {
        request = request.header(super::SIGNATURE, signature(secret.expose().as_bytes(), timestamp, delivery.body.as_bytes()));
    }
    match request.body(delivery.body.clone()).send().await {
        Ok(response) if response.status().is_success() => Ok(response.status().as_u16()),
        Ok(response) => Err((Some(response.status().as_u16()), format!("the receiver answered HTTP {}", response.status().as_u16()))),
        // Without the URL: a receiver's URL may carry a token.
        Err(error) => Err((None, crate::secrets::scrub(&crate::sources::api::error_chain(&error)).into_owned())),
    }
}
