//! Charts of runs, drawn on the server as SVG inside the page: no script, no library, nothing
//! fetched, so they work under the console's CSP and without JavaScript. Colours come from classes in
//! `app.css`; every bar carries a `<title>` with its numbers (a tooltip, and what a screen reader
//! reads), and each chart has a text alternative.

use std::fmt::Write;

use serde_json::Value;

/// What a bar is made of, bottom to top: (job field, class, label).
const OUTCOMES: [(&str, &str, &str); 5] = [
    ("entities_inserted", "created", "created"),
    ("entities_updated", "updated", "updated"),
    ("entities_deleted", "deleted", "deleted"),
    ("entities_failed", "failed", "failed"),
    ("entities_unchanged", "unchanged", "unchanged"),
];

const WIDTH: f64 = 640.0;
const LEFT: f64 = 52.0;
const TOP: f64 = 8.0;
const BOTTOM: f64 = 22.0;

/// One run, oldest first, as the charts read it from a job (the API's view).
struct Run {
    started: String,
    status: String,
    counts: [u64; 5],
    seconds: Option<f64>,
}

fn runs(jobs: &[Value]) -> Vec<Run> {
    let mut runs: Vec<Run> = jobs
        .iter()
        .filter(|job| matches!(job["status"].as_str(), Some("COMPLETED" | "FAILED" | "CANCELLED")))
        .map(|job| Run {
            started: job["created_at"].as_str().unwrap_or_default().to_string(),
            status: job["status"].as_str().unwrap_or_default().to_string(),
            counts: OUTCOMES.map(|(field, ..)| job[field].as_u64().unwrap_or(0)),
            seconds: job["duration_seconds"].as_f64(),
        })
        .collect();
    runs.sort_by(|a, b| a.started.cmp(&b.started));
    runs
}

/// Records per run by outcome, as stacked bars; `None` without a finished run.
pub fn outcomes(jobs: &[Value], height: f64, label: &str) -> Option<String> {
    let runs = runs(jobs);
    let max = runs.iter().map(|r| r.counts.iter().sum::<u64>()).max()?.max(1) as f64;
    let mut svg = open(height, &format!("{label}: records per run by outcome, last {} run(s)", runs.len()));
    axis(&mut svg, height, max);
    let (slot, bar) = slots(runs.len());
    let plot = height - TOP - BOTTOM;
    for (i, run) in runs.iter().enumerate() {
        let x = LEFT + slot * i as f64 + (slot - bar) / 2.0;
        let mut y = height - BOTTOM;
        let mut tip = format!("{} · {}", when(&run.started), run.status);
        for ((_, class, name), &n) in OUTCOMES.iter().zip(&run.counts) {
            let _ = write!(tip, " · {n} {name}");
            if n == 0 {
                continue;
            }
            let h = (n as f64 / max * plot).max(1.0);
            y -= h;
            let _ = write!(svg, r#"<rect class="{class}" x="{x:.1}" y="{y:.1}" width="{bar:.1}" height="{h:.1}"/>"#);
        }
        // The whole column carries the numbers, also where a bar is too thin to point at.
        let _ = write!(
            svg,
            r#"<rect class="hit" x="{:.1}" y="{TOP}" width="{slot:.1}" height="{plot:.1}"><title>{}</title></rect>"#,
            LEFT + slot * i as f64,
            escape(&tip)
        );
    }
    legend(&mut svg, height);
    svg.push_str("</svg>");
    Some(svg)
}

/// One value per run as bars (duration, or records a second); `None` without a run that has one.
pub fn per_run(jobs: &[Value], height: f64, label: &str, measure: Measure) -> Option<String> {
    let runs = runs(jobs);
    let values: Vec<Option<f64>> = runs.iter().map(|r| measure.of(r)).collect();
    let max = values.iter().flatten().copied().fold(0.0_f64, f64::max);
    if values.iter().all(Option::is_none) {
        return None;
    }
    let max = if max > 0.0 { max } else { 1.0 };
    let mut svg = open(height, &format!("{label}: {} per run, last {} run(s)", measure.unit(), runs.len()));
    axis(&mut svg, height, max);
    let (slot, bar) = slots(runs.len());
    let plot = height - TOP - BOTTOM;
    for (i, (run, value)) in runs.iter().zip(&values).enumerate() {
        let Some(value) = value else { continue };
        let h = (value / max * plot).max(1.0);
        let x = LEFT + slot * i as f64 + (slot - bar) / 2.0;
        let tip = format!("{} · {} {}", when(&run.started), number(*value), measure.unit());
        let _ = write!(
            svg,
            r#"<rect class="{}" x="{x:.1}" y="{:.1}" width="{bar:.1}" height="{h:.1}"><title>{}</title></rect>"#,
            measure.class(),
            height - BOTTOM - h,
            escape(&tip)
        );
    }
    svg.push_str("</svg>");
    Some(svg)
}

/// What [`per_run`] draws.
#[derive(Clone, Copy)]
pub enum Measure {
    Seconds,
    RecordsPerSecond,
}

impl Measure {
    fn of(self, run: &Run) -> Option<f64> {
        let seconds = run.seconds?;
        match self {
            Measure::Seconds => Some(seconds),
            Measure::RecordsPerSecond => {
                let records: u64 = run.counts.iter().sum();
                (seconds > 0.0).then(|| records as f64 / seconds)
            }
        }
    }

    fn unit(self) -> &'static str {
        match self {
            Measure::Seconds => "seconds",
            Measure::RecordsPerSecond => "records/s",
        }
    }

    fn class(self) -> &'static str {
        match self {
            Measure::Seconds => "duration",
            Measure::RecordsPerSecond => "rate",
        }
    }
}

fn open(height: f64, label: &str) -> String {
    let label = escape(label);
    format!(r#"<svg class="chart" viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{label}"><title>{label}</title>"#)
}

/// Bar width and the slot each bar sits in; at most 40 px wide, so few runs still look like bars.
fn slots(n: usize) -> (f64, f64) {
    let slot = (WIDTH - LEFT - 4.0) / n.max(1) as f64;
    (slot, (slot * 0.7).min(40.0))
}

/// The left axis: zero and the top value (compact: `44.1k`), and a line at each. The unit is the
/// chart's caption's to say: beside the axis it would not fit.
fn axis(svg: &mut String, height: f64, max: f64) {
    let base = height - BOTTOM;
    let x = LEFT - 6.0;
    let _ = write!(
        svg,
        r#"<line class="gridline" x1="{LEFT}" y1="{TOP}" x2="{WIDTH}" y2="{TOP}"/><line class="axis" x1="{LEFT}" y1="{base}" x2="{WIDTH}" y2="{base}"/><text class="tick" x="{x}" y="{}" text-anchor="end">{}</text><text class="tick" x="{x}" y="{base}" text-anchor="end">0</text>"#,
        TOP + 10.0,
        compact(max),
    );
}

fn legend(svg: &mut String, height: f64) {
    let y = height - 6.0;
    let mut x = LEFT;
    for (_, class, name) in OUTCOMES {
        let _ = write!(
            svg,
            r#"<rect class="{class}" x="{x}" y="{}" width="10" height="10"/><text class="tick" x="{}" y="{y}">{name}</text>"#,
            y - 9.0,
            x + 14.0
        );
        x += 96.0;
    }
}

/// A number as a chart label: whole where large, two significant places where small.
fn number(value: f64) -> String {
    if value >= 100.0 {
        format!("{value:.0}")
    } else if value >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

/// An axis label: `950`, `44.1k`, `1.2M`.
fn compact(value: f64) -> String {
    match value {
        v if v >= 1e6 => format!("{:.1}M", v / 1e6),
        v if v >= 1e4 => format!("{:.0}k", v / 1e3),
        v if v >= 1e3 => format!("{:.1}k", v / 1e3),
        v => number(v),
    }
}

/// `2026-12-03T08:01:12.345Z` → `2026-12-03 08:01:12`.
fn when(text: &str) -> String {
    text.get(..19).unwrap_or(text).replace('T', " ")
}

/// Text for SVG markup: whatever a job carries cannot open an element or an attribute.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => out.push('?'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn job(at: &str, status: &str, created: u64, unchanged: u64, seconds: f64) -> Value {
        json!({ "created_at": at, "status": status, "entities_inserted": created, "entities_unchanged": unchanged, "duration_seconds": seconds })
    }

    #[test]
    fn bars_stack_each_outcome_oldest_first_with_their_numbers() {
        let jobs = [job("2026-12-03T10:00:05.000Z", "COMPLETED", 0, 40, 2.0), job("2026-12-03T10:00:00.000Z", "COMPLETED", 40, 0, 4.0)];
        let svg = outcomes(&jobs, 200.0, "pets").unwrap();
        assert!(
            svg.starts_with(
                r#"<svg class="chart" viewBox="0 0 640 200" role="img" aria-label="pets: records per run by outcome, last 2 run(s)">"#
            ),
            "{svg}"
        );
        let first = svg.find("2026-12-03 10:00:00 · COMPLETED · 40 created").unwrap();
        let second = svg.find("2026-12-03 10:00:05 · COMPLETED · 0 created · 0 updated · 0 deleted · 0 failed · 40 unchanged").unwrap();
        assert!(first < second, "oldest first");
        // Both bars are full height (40 of 40): the plot is 200 - 8 - 22 = 170 high.
        assert_eq!(svg.matches(r#"height="170.0"/>"#).count(), 2, "{svg}");
        let rate = per_run(&jobs, 120.0, "pets", Measure::RecordsPerSecond).unwrap();
        assert!(rate.contains("10.0 records/s") && rate.contains("20.0 records/s"), "{rate}");
    }

    #[test]
    fn running_jobs_are_not_drawn_and_text_from_outside_stays_text() {
        let running = json!({ "created_at": "x", "status": "RUNNING", "entities_inserted": 5 });
        assert_eq!(outcomes(&[running], 200.0, "s"), None);
        let svg = outcomes(&[job("<script>", "COMPLETED", 1, 0, 1.0)], 200.0, "a\"b<img onerror=x>").unwrap();
        assert!(!svg.contains("<script>") && !svg.contains("<img") && !svg.contains("a\"b"), "{svg}");
        assert!(svg.contains("&lt;script&gt;") && svg.contains("a&quot;b&lt;img onerror=x&gt;"), "{svg}");
    }
}
