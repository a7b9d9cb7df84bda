//! Metrics in Prometheus' text exposition format (0.0.4), read from the state at each scrape: the
//! jobs table knows every run's status, counts and duration, the call log the source requests it
//! keeps, the webhook store its deliveries. Reading them, rather than counting in memory, gives the
//! same answer from `serve`, after a restart, and for runs the CLI made (`syncline metrics`, for
//! Prometheus' textfile collector). Labels carry ids and statuses only, never a URL or a secret.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::store::jobs::{DURATION_BUCKETS, JobStatus, JobTotals, RECORD_OUTCOMES};
use crate::store::{StateDir, StoreError};

/// The media type of the text [`render`] writes.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The metrics of `state` at `now`.
pub async fn render(state: &StateDir, now: chrono::DateTime<chrono::Utc>) -> Result<String, StoreError> {
    let mut out = Text::default();
    out.family("syncline_build_info", "gauge", "The running syncline's version.");
    out.sample("syncline_build_info", &[("version", env!("CARGO_PKG_VERSION"))], 1.0);
    let totals = state.jobs()?.totals()?;
    jobs(&mut out, &totals, now);
    // From each contract file's footer: no table is read.
    out.family("syncline_contracts", "gauge", "Contracts (source records known to the target) by synchronization.");
    let mut synchronizations: Vec<&str> = totals.iter().map(|t| t.synchronization.as_str()).collect();
    synchronizations.dedup();
    for sync in synchronizations {
        out.sample("syncline_contracts", &[("synchronization", sync)], state.contract_rows(sync).await? as f64);
    }
    calls(&mut out, &state.calls()?.totals()?);
    out.family("syncline_webhook_deliveries", "gauge", "Webhook deliveries kept, by subscription and status (pending, delivered, dead).");
    for (webhook, status, count) in state.webhooks()?.status_counts()? {
        out.sample("syncline_webhook_deliveries", &[("webhook", &webhook), ("status", &status)], count as f64);
    }
    Ok(out.0)
}

fn jobs(out: &mut Text, totals: &[JobTotals], now: chrono::DateTime<chrono::Utc>) {
    out.family("syncline_jobs_total", "counter", "Jobs by synchronization and status.");
    for t in totals {
        out.sample("syncline_jobs_total", &[("synchronization", &t.synchronization), ("status", &t.status)], t.jobs as f64);
    }
    out.family("syncline_jobs_running", "gauge", "Jobs pending, running or being cancelled, by synchronization.");
    let mut running: BTreeMap<&str, u64> = BTreeMap::new();
    for t in totals {
        let active = !JobStatus::parse(&t.status).is_final();
        *running.entry(&t.synchronization).or_default() += if active { t.jobs } else { 0 };
    }
    for (sync, count) in &running {
        out.sample("syncline_jobs_running", &[("synchronization", sync)], *count as f64);
    }
    out.family("syncline_records_total", "counter", "Records of all jobs by synchronization and outcome.");
    let mut records: BTreeMap<&str, [u64; 7]> = BTreeMap::new();
    for t in totals {
        let sums = records.entry(&t.synchronization).or_default();
        for (sum, n) in sums.iter_mut().zip(t.records) {
            *sum += n;
        }
    }
    for (sync, sums) in &records {
        for (outcome, n) in RECORD_OUTCOMES.iter().zip(sums) {
            out.sample("syncline_records_total", &[("synchronization", sync), ("outcome", outcome)], *n as f64);
        }
    }
    out.family("syncline_run_duration_seconds", "histogram", "How long ended runs took, by synchronization.");
    let mut durations: BTreeMap<&str, (Vec<u64>, u64, f64)> = BTreeMap::new();
    for t in totals.iter().filter(|t| JobStatus::parse(&t.status).is_final()) {
        let (buckets, count, sum) = durations.entry(&t.synchronization).or_insert_with(|| (vec![0; DURATION_BUCKETS.len()], 0, 0.0));
        for (bucket, n) in buckets.iter_mut().zip(&t.buckets) {
            *bucket += n;
        }
        *count += t.timed;
        *sum += t.seconds;
    }
    for (sync, (buckets, count, sum)) in &durations {
        for (le, n) in DURATION_BUCKETS.iter().zip(buckets) {
            out.sample("syncline_run_duration_seconds_bucket", &[("synchronization", sync), ("le", &le.to_string())], *n as f64);
        }
        out.sample("syncline_run_duration_seconds_bucket", &[("synchronization", sync), ("le", "+Inf")], *count as f64);
        out.sample("syncline_run_duration_seconds_sum", &[("synchronization", sync)], *sum);
        out.sample("syncline_run_duration_seconds_count", &[("synchronization", sync)], *count as f64);
    }
    let last_success: Vec<(&str, chrono::DateTime<chrono::Utc>)> = totals
        .iter()
        .filter(|t| t.status == JobStatus::Completed.as_str())
        .filter_map(|t| {
            let at = chrono::DateTime::parse_from_rfc3339(t.last_completed.as_deref()?).ok()?;
            Some((t.synchronization.as_str(), at.with_timezone(&chrono::Utc)))
        })
        .collect();
    out.family("syncline_last_success_timestamp_seconds", "gauge", "When the last completed run of each synchronization ended.");
    for (sync, at) in &last_success {
        out.sample("syncline_last_success_timestamp_seconds", &[("synchronization", sync)], at.timestamp_millis() as f64 / 1000.0);
    }
    out.family("syncline_seconds_since_last_success", "gauge", "Seconds since the last completed run of each synchronization ended.");
    for (sync, at) in &last_success {
        let age = (now - *at).num_milliseconds().max(0) as f64 / 1000.0;
        out.sample("syncline_seconds_since_last_success", &[("synchronization", sync)], age);
    }
}

fn calls(out: &mut Text, totals: &[crate::store::calls::CallTotals]) {
    let kept = "in the call log (kept for the source's callLogRetention)";
    out.family("syncline_source_requests", "gauge", &format!("Source requests {kept}, by source and status class."));
    for t in totals {
        out.sample("syncline_source_requests", &[("source", &t.source), ("class", &t.class)], t.calls as f64);
    }
    out.family("syncline_source_request_seconds", "gauge", &format!("Time source requests took {kept}, summed."));
    for t in totals {
        out.sample("syncline_source_request_seconds", &[("source", &t.source), ("class", &t.class)], t.millis / 1000.0);
    }
    out.family("syncline_source_bytes_read", "gauge", &format!("Bytes source requests read {kept}."));
    let mut bytes: BTreeMap<&str, f64> = BTreeMap::new();
    for t in totals {
        *bytes.entry(&t.source).or_default() += t.bytes_in;
    }
    for (source, n) in &bytes {
        out.sample("syncline_source_bytes_read", &[("source", source)], *n);
    }
}

/// The exposition text being written.
#[derive(Default)]
struct Text(String);

impl Text {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {}", help.replace('\\', "\\\\").replace('\n', "\\n"));
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (key, text)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                // Ids come from users' files and the API: escaped as the format says.
                let escaped = text.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
                let _ = write!(self.0, "{key}=\"{escaped}\"");
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {value}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped_and_values_printed_as_the_format_reads_them() {
        let mut out = Text::default();
        out.family("m", "gauge", "a\nb");
        out.sample("m", &[("synchronization", "a\"b\\c\nd")], 1.5);
        out.sample("m", &[], 3.0);
        assert_eq!(out.0, "# HELP m a\\nb\n# TYPE m gauge\nm{synchronization=\"a\\\"b\\\\c\\nd\"} 1.5\nm 3\n");
    }
}
