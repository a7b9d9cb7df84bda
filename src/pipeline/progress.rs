//! Live counts of a running job, read by the progress bar and the HTTP API while the run goes on.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::store::Counts;

/// Counts updated by the diff stage after every chunk and every batch of outcomes.
#[derive(Debug, Default)]
pub struct Progress {
    found: AtomicU64,
    created: AtomicU64,
    updated: AtomicU64,
    unchanged: AtomicU64,
    skipped: AtomicU64,
    deleted: AtomicU64,
    failed: AtomicU64,
    pub timings: Timings,
}

impl Progress {
    pub fn set(&self, c: &Counts) {
        self.found.store(c.found, Ordering::Relaxed);
        self.created.store(c.created, Ordering::Relaxed);
        self.updated.store(c.updated, Ordering::Relaxed);
        self.unchanged.store(c.unchanged, Ordering::Relaxed);
        self.skipped.store(c.skipped, Ordering::Relaxed);
        self.deleted.store(c.deleted, Ordering::Relaxed);
        self.failed.store(c.failed, Ordering::Relaxed);
    }

    pub fn get(&self) -> Counts {
        Counts {
            found: self.found.load(Ordering::Relaxed),
            created: self.created.load(Ordering::Relaxed),
            updated: self.updated.load(Ordering::Relaxed),
            unchanged: self.unchanged.load(Ordering::Relaxed),
            skipped: self.skipped.load(Ordering::Relaxed),
            deleted: self.deleted.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
        }
    }
}

/// Where a run's time goes, for OpenConnector's `timing.stages`. Stages overlap (the run streams), so
/// each is the time that stage itself was busy or waited for, not a slice of the wall clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Compiling the mapping, opening the source and target, loading the contracts.
    Prepare,
    /// Waiting for the source's pages.
    Fetch,
    /// Parsing, filtering and mapping records.
    Map,
    /// Diffing, writing and recording outcomes, wall clock from the first page to the last outcome.
    Process,
    /// Finding and writing the deletes.
    Cleanup,
}

/// Microseconds spent per [`Stage`].
#[derive(Debug, Default)]
pub struct Timings([AtomicU64; 5]);

impl Timings {
    pub fn add(&self, stage: Stage, elapsed: std::time::Duration) {
        self.0[stage as usize].fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
    }

    /// Milliseconds spent in `stage`.
    pub fn millis(&self, stage: Stage) -> f64 {
        self.0[stage as usize].load(Ordering::Relaxed) as f64 / 1000.0
    }
}
