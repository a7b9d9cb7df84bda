//! The call log's record of one request, and the buffer a run's HTTP clients write into. The run
//! moves the buffer into `calls.db` (`store::calls`) every second and when it ends.

use std::sync::{Arc, Mutex};

use serde::Serialize;

/// One request a source or a target made.
#[derive(Debug, Clone, Serialize)]
pub struct Call {
    /// Milliseconds since the epoch, when it was sent.
    pub at: i64,
    /// The source whose settings it went out with.
    pub source: String,
    pub method: String,
    /// With every secret masked (credential-named query parameters, user info).
    pub url: String,
    pub status: Option<u16>,
    pub duration_ms: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub error: Option<String>,
}

/// The calls of a run not yet written. It holds at most [`MAX_BUFFERED`]; more are counted, and the
/// count written as a call of its own, so a flood of requests cannot fill memory.
#[derive(Default)]
pub struct CallBuffer {
    calls: Mutex<(Vec<Call>, u64)>,
}

/// The most calls held between two writes.
pub const MAX_BUFFERED: usize = 50_000;

impl std::fmt::Debug for CallBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CallBuffer")
    }
}

impl CallBuffer {
    pub fn push(&self, call: Call) {
        let mut held = self.calls.lock().unwrap_or_else(|p| p.into_inner());
        if held.0.len() < MAX_BUFFERED {
            held.0.push(call);
        } else {
            held.1 += 1;
        }
    }

    /// What was buffered, and how many calls did not fit.
    pub fn take(&self) -> (Vec<Call>, u64) {
        std::mem::take(&mut *self.calls.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// Where an HTTP client records its calls: a run's buffer, under the name of the source it serves.
#[derive(Debug, Clone)]
pub struct CallTap {
    pub buffer: Arc<CallBuffer>,
    pub source: String,
}
