//! syncline: keeps a register (or another target) in sync with an external source.
//!
//! A synchronization compiles into a streaming pipeline (see [`pipeline`]): a source reader with its
//! envelope extractor, a blake3 hash-diff against an Arrow contract table, the filter and mapping
//! stage, and a sink, joined by bounded channels.
#![deny(clippy::clone_on_ref_ptr)]

pub mod calls;
pub mod config;
pub mod console;
pub mod diff;
pub mod envelope;
pub mod errors;
pub mod fixture;
pub mod limits;
pub mod load;
pub mod mapping;
pub mod metrics;
pub mod objects;
pub mod openconnector;
pub mod path;
pub mod pipeline;
pub mod schedule;
pub mod secrets;
pub mod service;
pub mod sinks;
pub mod sources;
#[cfg(feature = "sql")]
pub mod sql;
pub mod store;
pub mod telemetry;
pub mod webhooks;
pub mod write;
