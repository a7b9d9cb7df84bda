//! Starts the scheduled synchronizations when they are due. Due is computed from the last job's start,
//! so a run missed while the service was down happens once at start, not once per missed slot; a
//! synchronization still running is never started twice (the runner refuses, and the next tick asks
//! again).

use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use super::Shared;
use super::catalog::Section;
use super::runner::StartError;
use crate::schedule::Schedule;

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
        start_due(&shared);
    }
}

fn start_due(shared: &Shared) {
    let Ok(entries) = shared.catalog.list(Section::Synchronizations) else { return };
    let now = Utc::now();
    for entry in entries {
        let Some(text) = entry.body.get("schedule").and_then(|s| s.as_str()) else { continue };
        let Ok(schedule) = Schedule::parse(text) else { continue };
        if schedule == Schedule::Manual || shared.runner.is_running(&entry.id) {
            continue;
        }
        let Some(due) = schedule.next_due(last_start(shared, &entry.id), shared.started) else { continue };
        if due > now {
            continue;
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
