//! What a run is seen through besides its counts: the job's span in a trace, and the view of a
//! record its hash is taken over (`sourceHashMapping`).

use std::sync::Arc;

use crate::config::Pipeline;
use crate::diff::HashView;
use crate::mapping::{Filter, Mapping};
use crate::store::JobRecord;

/// A trace's span of the job (with traces off, a disabled callsite and nothing more); its outcome
/// is recorded on it by [`record_outcome`].
pub(super) fn job_span(job: &JobRecord) -> tracing::Span {
    use tracing::field::Empty;
    tracing::info_span!(target: "syncline::trace", "syncline.job", "syncline.job.id" = %job.id,
        "syncline.synchronization" = %job.synchronization, "syncline.status" = Empty, "syncline.records.found" = Empty,
        "syncline.records.created" = Empty, "syncline.records.updated" = Empty, "syncline.records.unchanged" = Empty,
        "syncline.records.skipped" = Empty, "syncline.records.deleted" = Empty, "syncline.records.failed" = Empty, error = Empty)
}

/// The job's outcome on its span: status, counts, and the error as the span's status.
pub(super) fn record_outcome(span: &tracing::Span, job: &JobRecord) {
    if span.is_disabled() {
        return;
    }
    let c = job.counts;
    span.record("syncline.status", job.status.as_str());
    span.record("syncline.records.found", c.found);
    span.record("syncline.records.created", c.created);
    span.record("syncline.records.updated", c.updated);
    span.record("syncline.records.unchanged", c.unchanged);
    span.record("syncline.records.skipped", c.skipped);
    span.record("syncline.records.deleted", c.deleted);
    span.record("syncline.records.failed", c.failed);
    if let Some(error) = &job.error {
        span.record("error", error.as_str());
    }
}

/// The hash view of mapping `name`, its fingerprint added to the run's. A record `filter` skips is
/// hashed whole: it is not written, and OpenConnector checks conditions before it maps the view (a
/// view may not even apply to such a record).
pub(super) fn hash_view(
    pipeline: &Pipeline,
    name: &str,
    filter: Option<Arc<Filter>>,
    fingerprint: &mut blake3::Hasher,
) -> Result<HashView, String> {
    let def = pipeline.mappings.get(name).ok_or_else(|| format!("no mapping named `{name}`"))?;
    let view = Mapping::compile_in(name, def, &pipeline.mappings).map_err(|e| format!("mapping `{name}`: {e}"))?;
    fingerprint.update(b"sourceHashMapping");
    fingerprint.update(&view.fingerprint());
    Ok(Arc::new(move |record| {
        if filter.as_ref().is_some_and(|filter| matches!(filter.accepts(record), Ok(false))) {
            return Ok(record.clone());
        }
        view.apply(record).map_err(|e| e.to_string())
    }))
}
