//! A run's call log: its sources' HTTP clients record each request into one buffer, which goes into
//! `calls.db` every second (so a run that is killed leaves all but its last second) and when the run
//! ends, after which each source's `callLogRetention` is applied.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::calls::{CallBuffer, CallTap};
use crate::config::Pipeline;
use crate::store::{StateDir, StoreError};

/// The run's buffer, and the sources whose calls it wrote.
#[derive(Default)]
pub(super) struct CallLog {
    pub buffer: Arc<CallBuffer>,
    written: Mutex<BTreeSet<String>>,
}

impl CallLog {
    /// `pipeline` with every source that keeps a call log tapped into this one.
    pub fn tap(&self, pipeline: &Pipeline) -> Pipeline {
        let mut tapped = pipeline.clone();
        for (name, def) in tapped.sources.iter_mut() {
            if def.call_log_retention.unwrap_or_default().max_count > 0 {
                def.calls = Some(CallTap { buffer: Arc::clone(&self.buffer), source: name.clone() });
            }
        }
        tapped
    }

    /// Writes what the buffer holds.
    pub fn flush(&self, state: &StateDir, job: &str) -> Result<(), StoreError> {
        let (calls, dropped) = self.buffer.take();
        if calls.is_empty() {
            return Ok(());
        }
        state.calls()?.record(job, &calls, dropped)?;
        self.written.lock().unwrap_or_else(|p| p.into_inner()).extend(calls.into_iter().map(|c| c.source));
        Ok(())
    }

    /// The last write of a run, then each source's retention.
    pub fn finish(&self, state: &StateDir, job: &str, pipeline: &Pipeline) -> Result<(), StoreError> {
        self.flush(state, job)?;
        let written = self.written.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if written.is_empty() {
            return Ok(());
        }
        let store = state.calls()?;
        let now = chrono::Utc::now().timestamp_millis();
        for source in &written {
            let retention = pipeline.sources.get(source).and_then(|d| d.call_log_retention).unwrap_or_default();
            store.prune(source, retention.max_age.0, retention.max_count, now)?;
        }
        Ok(())
    }

    /// Writes the buffer every second until dropped (abort it when the run ends).
    pub async fn keep_writing(self: Arc<Self>, state: StateDir, job: String) {
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let (log, state, job) = (Arc::clone(&self), state.clone(), job.clone());
            if let Ok(Err(error)) = tokio::task::spawn_blocking(move || log.flush(&state, &job)).await {
                tracing::warn!("call log: {error}");
            }
        }
    }
}
