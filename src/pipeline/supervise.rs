//! The stages of a run as supervised tasks. A stage that panics or fails closes its channels exactly
//! as a stage that finished does, so a run cannot tell the two apart by its channels alone: every
//! stage's end is checked here, and any stage that did not end cleanly fails the run (category
//! `internal`, naming the stage), which then deletes nothing. Dropping a stage aborts its task, so a
//! run that is itself dropped leaves no stage behind.

use std::future::Future;

use tokio::task::{JoinError, JoinHandle};

use super::Failure;
use crate::errors::ErrorCategory;

/// One stage's task.
pub struct Stage {
    name: &'static str,
    handle: Option<JoinHandle<()>>,
}

impl Stage {
    /// Runs `work` on the runtime as the stage `name`, inside the span of the run (a trace's job).
    pub fn spawn(name: &'static str, work: impl Future<Output = ()> + Send + 'static) -> Stage {
        Stage { name, handle: Some(tokio::spawn(tracing::Instrument::in_current_span(work))) }
    }

    /// Runs `work` on a blocking thread as the stage `name`, inside the span of the run.
    pub fn blocking(name: &'static str, work: impl FnOnce() + Send + 'static) -> Stage {
        let span = tracing::Span::current();
        Stage { name, handle: Some(tokio::task::spawn_blocking(move || span.in_scope(work))) }
    }

    /// Waits for the stage to end; a failure unless it ended cleanly.
    pub async fn finish(mut self) -> Option<Failure> {
        let handle = self.handle.take()?;
        handle.await.err().map(|error| stage_failure(self.name, &error))
    }
}

impl Drop for Stage {
    fn drop(&mut self) {
        if let Some(handle) = &self.handle {
            handle.abort();
        }
    }
}

fn stage_failure(stage: &str, error: &JoinError) -> Failure {
    if error.is_cancelled() {
        return Failure::new(ErrorCategory::Internal, format!("the {stage} stage was stopped before it finished"));
    }
    Failure::new(ErrorCategory::Internal, format!("the {stage} stage failed: {}", panic_text(error)))
}

/// What a panic said, from a join error.
fn panic_text(error: &JoinError) -> String {
    error.to_string()
}

/// What a caught panic said.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

/// Faults injected into a stage by unit tests: a panic in the named stage of the named
/// synchronization. Compiled only into the crate's own tests.
#[cfg(test)]
pub mod faults {
    use std::collections::HashMap;
    use std::sync::Mutex;

    static PLANTED: Mutex<Option<HashMap<String, &'static str>>> = Mutex::new(None);

    /// Makes `stage` of `sync` panic on its first piece of work.
    pub fn plant(sync: &str, stage: &'static str) {
        PLANTED.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert_default().insert(sync.to_string(), stage);
    }

    pub fn check(sync: &str, stage: &str) {
        let planted = PLANTED.lock().unwrap_or_else(|p| p.into_inner()).as_ref().and_then(|m| m.get(sync).copied());
        if planted == Some(stage) {
            panic!("fault planted in the {stage} stage");
        }
    }
}

#[cfg(not(test))]
pub mod faults {
    #[inline(always)]
    pub fn check(_sync: &str, _stage: &str) {}
}
