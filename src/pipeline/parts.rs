//! What a run reads from and writes to, built from the pipeline by the registries: the source (or
//! the records a hook pushed, read as if the source had), told of the register it writes into when
//! it reads another one, and the sink.

use std::sync::Arc;

use super::{Failure, RunOptions};
use crate::config::{Pipeline, Synchronization};
use crate::errors::ErrorCategory;
use crate::sinks::{self, Sink};
use crate::sources::{self, Source};
use crate::store::StateDir;

/// What a run reads from and writes to. In production the registries build them from the
/// pipeline ([`Parts::build`]); a test hands in its own (a scripted source, an in-memory sink).
pub struct Parts {
    pub source: Box<dyn Source>,
    pub sink: Box<dyn Sink>,
}

impl Parts {
    /// The source and the sink `sync` names, as its run `job` uses them.
    pub(crate) fn build(
        pipeline: &Pipeline,
        sync: &Synchronization,
        state: &StateDir,
        job: &str,
        options: &RunOptions,
    ) -> Result<Parts, Failure> {
        let dry_run = options.dry_run;
        let mut source = sources::build(pipeline, sync)?;
        if let Some(records) = &options.pushed {
            let origin = "the records pushed to the hook".to_string();
            source = Box::new(sources::pushed::Pushed { source, records: Arc::clone(records), origin });
        }
        if source.reads_a_register() {
            let instance = state.instance()?;
            let (state, name) = (state.clone(), sync.name.clone());
            let record_origin: sources::RecordOrigin = match dry_run {
                true => Box::new(|_| Ok(())),
                false => Box::new(move |origin| state.register().and_then(|r| r.set_origin(&name, origin)).map_err(|e| e.to_string())),
            };
            source.federate(sources::Federation { instance, record_origin });
        }
        let sink = sinks::build(pipeline, sync, state, job, dry_run).map_err(|message| Failure::new(ErrorCategory::Config, message))?;
        Ok(Parts { source, sink })
    }
}
