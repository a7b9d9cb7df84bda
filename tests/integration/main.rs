//! End-to-end tests over real sockets: the pet-store fixture API (axum, in-process) as the source, the
//! real pipeline, the embedded register in a temporary state directory, and the real binary where the
//! command line itself is under test.

mod airbyte;
mod api;
mod calls;
mod cli;
mod command;
mod common;
mod console;
mod database;
mod faults;
mod federation;
mod files;
mod follow_ups;
mod ftp;
mod hash_view;
mod hooks;
mod hostile;
mod leases;
mod machines;
mod mapping_golden;
mod metrics;
mod oc_configurations;
mod oc_sources;
mod openconnector;
mod openregister;
mod properties;
mod replicas;
mod secrets;
mod service;
mod sftp;
mod shared_contracts;
#[cfg(feature = "sql")]
mod sql;
mod targets;
mod traces;
mod twig_golden;
mod webhooks;
mod workspace;
