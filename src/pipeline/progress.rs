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
