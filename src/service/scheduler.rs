//! Starts the scheduled synchronizations when they are due. Due is computed from the last job's start,
//! so a run missed while the service was down happens once at start, not once per missed slot; a
//! synchronization still running is never started twice (the runner refuses, and the next tick asks
//! again).
//!
//! With leases (`--leases`), replicas share the schedule: due is computed from the last firing on any
//! replica, a synchronization whose lease is held elsewhere is left alone, and a due firing is
//! claimed first (compare-and-set on the firing count), so exactly one replica starts it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use super::Shared;
use super::catalog::Section;
use super::runner::StartError;
use crate::schedule::Schedule;
use crate::store::leases::{Fired, Leases};

/// When the newest job of `sync` was created.
pub(super) fn last_start(shared: &Shared, sync: &str) -> Option<DateTime<Utc>> {
    let text = shared.state.jobs().ok()?.last_created(sync).ok()??;
    DateTime::parse_from_rfc3339(&text).ok().map(|t| t.with_timezone(&Utc))
}

pub(super) async fn run(shared: Shared, tick: Duration, stop: CancellationToken) {
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = interval.tick() => {}
        }
        start_due(&shared).await;
    }
}

/// What the replicas' shared schedule says of `sync`: `None` when this replica cannot start it now
/// (another holds its lease, or the database did not answer); else the firings seen and the last.
async fn shared_last(leases: &Leases, sync: &str) -> Option<(Option<Fired>, Option<DateTime<Utc>>)> {
    let asked = async {
        if leases.holder(sync).await?.is_some() {
            return Ok(None);
        }
        let fired = leases.fired(sync).await?;
        Ok::<_, crate::store::StoreError>(Some((fired, fired.and_then(|f| DateTime::from_timestamp_millis(f.last_fired_ms)))))
    };
    match asked.await {
        Ok(seen) => seen,
        Err(error) => {
            tracing::warn!("scheduler: {error}");
            None
        }
    }
}

async fn start_due(shared: &Shared) {
    let Ok(entries) = shared.catalog.list(Section::Synchronizations) else { return };
    let now = Utc::now();
    for entry in entries {
        let Some(text) = entry.body.get("schedule").and_then(|s| s.as_str()) else { continue };
        let Ok(schedule) = Schedule::parse(text) else { continue };
        if schedule == Schedule::Manual || shared.runner.is_running(&entry.id) {
            continue;
        }
        let (seen, last) = match shared.state.leases() {
            Some(leases) => match shared_last(leases, &entry.id).await {
                Some(seen) => seen,
                None => continue,
            },
            None => (None, last_start(shared, &entry.id)),
        };
        let Some(due) = schedule.next_due(last, shared.started) else { continue };
        if due > now {
            continue;
        }
        if let Some(leases) = shared.state.leases() {
            match leases.claim_firing(&entry.id, seen).await {
                Ok(true) => {}
                Ok(false) => continue,
                Err(error) => {
                    tracing::warn!("scheduler: {error}");
                    continue;
                }
            }
        }
        let started = shared.catalog.pipeline_for(&entry.id).map_err(|e| e.to_string()).and_then(|pipeline| {
            shared.runner.start(pipeline, &entry.id, false).map_err(|e| match e {
                StartError::Busy { .. } | StartError::Closing => String::new(),
                other => other.to_string(),
            })
        });
        match started {
            Ok(job) => tracing::info!("scheduled run of `{}` ({text}): job {}", entry.id, job.id),
            Err(message) if message.is_empty() => {}
            Err(message) => tracing::warn!("scheduled run of `{}` could not start: {message}", entry.id),
        }
    }
}
