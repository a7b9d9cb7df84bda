//! End-to-end benchmark: runs the real `syncline` binary against a generated paged JSON feed served
//! over loopback HTTP, and the peers (dlt, Sling) on the same data when they are installed, then
//! writes `benches/RESULTS.md`.
//!
//! ```sh
//! cargo bench --bench pipeline                 # 1M records, then a 10M-record memory run
//! SYNCLINE_BENCH_RECORDS=100000 SYNCLINE_BENCH_BIG=0 cargo bench --bench pipeline   # quick
//! ```
//! Peers (optional, see `benches/peers/README.md`): `SYNCLINE_BENCH_PYTHON` (a Python with
//! `dlt[duckdb]` and `pyarrow`), `SYNCLINE_BENCH_SLING` (the `sling` binary) with `DUCKDB_PATH`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use syncline::fixture::feed::{Feed, FeedServer};

/// One measured run.
struct Row {
    tool: String,
    workload: String,
    records: u64,
    seconds: f64,
    rss_mb: f64,
    note: String,
}

impl Row {
    fn rate(&self) -> f64 {
        self.records as f64 / self.seconds.max(1e-9)
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Runs `command` under `/usr/bin/time -v`: (wall seconds, peak RSS in MB, stdout).
fn timed(command: &mut Command) -> (f64, f64, String) {
    let program = command.get_program().to_owned();
    let args: Vec<_> = command.get_args().map(|a| a.to_owned()).collect();
    let envs: Vec<_> = command.get_envs().map(|(k, v)| (k.to_owned(), v.map(|v| v.to_owned()))).collect();
    let mut wrapped = Command::new("/usr/bin/time");
    wrapped.arg("-v").arg(program).args(args);
    for (k, v) in envs {
        match v {
            Some(v) => wrapped.env(k, v),
            None => wrapped.env_remove(k),
        };
    }
    let started = Instant::now();
    let output = wrapped.output().expect("/usr/bin/time runs (apt-get install time)");
    let seconds = started.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        eprintln!("command failed: {stderr}");
    }
    let rss_kb: f64 = stderr
        .lines()
        .find_map(|l| l.trim().strip_prefix("Maximum resident set size (kbytes):"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0);
    (seconds, rss_kb / 1024.0, String::from_utf8_lossy(&output.stdout).into_owned())
}

fn write_pipeline(dir: &Path, url: &str) -> PathBuf {
    std::fs::write(
        dir.join("bench.schema.json"),
        r#"{"type": "object", "properties": {"id": {"type": "string"}, "name": {"type": "string"}, "price": {"type": "string"},
            "email": {"type": "string"}}, "required": ["id", "name"]}"#,
    )
    .unwrap();
    let file = dir.join("bench.yaml");
    std::fs::write(
        &file,
        format!(
            r#"
sources:
  feed: {{ type: api, location: "{url}" }}
mappings:
  record:
    mapping:
      id: "{{{{ id }}}}"
      name: "{{{{ name }}}}"
      status: "{{{{ status }}}}"
      category: "{{{{ category.name }}}}"
      price: "{{{{ price }}}}"
      updated: "{{{{ updated_at }}}}"
      email: "{{{{ owner.email }}}}"
      city: "{{{{ owner.city }}}}"
      imported: '{{{{ "now"|date("Y-m-d") }}}}'
registers:
  bench: {{ schemas: {{ record: {{ $ref: bench.schema.json }} }} }}
synchronizations:
  feed:
    source: feed
    sourceConfig: {{ idPosition: id, resultsPosition: data.items, pagination: {{ type: page }} }}
    mapping: record
    target: {{ type: register, register: bench, schema: record }}
"#
        ),
    )
    .unwrap();
    file
}

fn syncline_run(state: &Path, file: &Path, workload: &str, expect: &str) -> Row {
    let (seconds, rss_mb, stdout) = timed(Command::new(env!("CARGO_BIN_EXE_syncline")).arg("--state").arg(state).arg("run").arg(file).arg("--json"));
    let job: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap_or_default();
    let count = |k: &str| job[k].as_u64().unwrap_or(0);
    let note = format!("created {}, updated {}, unchanged {}, failed {}", count("created"), count("updated"), count("unchanged"), count("failed"));
    if job["status"] != "COMPLETED" {
        eprintln!("syncline {workload}: {job}");
    }
    println!("syncline  {workload:<34} {:>10} records {:>8.2}s  {:>9.0} rec/s  {:>7.1} MB  ({note}; expected {expect})", count("found"), seconds, count("found") as f64 / seconds, rss_mb);
    Row { tool: "syncline".into(), workload: workload.into(), records: count("found"), seconds, rss_mb, note }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` and test discovery
    }
    let records = env_u64("SYNCLINE_BENCH_RECORDS", 1_000_000);
    let big = env_u64("SYNCLINE_BENCH_BIG", 10_000_000);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut rows = Vec::new();

    let feed = Arc::new(Feed::new(records, 1000));
    let server = runtime.block_on(FeedServer::start(Arc::clone(&feed))).unwrap();
    let file = write_pipeline(dir.path(), &server.url());
    let state = dir.path().join("state");
    rows.push(syncline_run(&state, &file, "API feed → register, first run", "all created"));
    rows.push(syncline_run(&state, &file, "API feed → register, unchanged", "all unchanged"));
    feed.changed.store(true, Ordering::SeqCst);
    rows.push(syncline_run(&state, &file, "API feed → register, 10% changed", "10% updated"));
    feed.changed.store(false, Ordering::SeqCst);

    rows.extend(peers::run(&runtime, &feed, &server.url(), dir.path()));

    if big > 0 {
        let big_feed = Arc::new(Feed::new(big, 1000));
        let big_server = runtime.block_on(FeedServer::start(big_feed)).unwrap();
        let big_dir = dir.path().join("big");
        std::fs::create_dir_all(&big_dir).unwrap();
        let big_file = write_pipeline(&big_dir, &big_server.url());
        rows.push(syncline_run(&dir.path().join("big-state"), &big_file, "API feed → register, first run (big)", "all created"));
        rows.push(syncline_run(&dir.path().join("big-state"), &big_file, "API feed → register, unchanged (big)", "all unchanged"));
    }
    write_results(&rows, records, big);
}

fn write_results(rows: &[Row], records: u64, big: u64) {
    let machine = format!(
        "{} cores, {}",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| m.lines().next().map(|l| l.split_whitespace().nth(1).unwrap_or("").to_string())).map(|kb| format!("{} GiB", kb.parse::<u64>().unwrap_or(0) / 1024 / 1024)).unwrap_or_default()
    );
    let cpu = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|c| c.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())).unwrap_or_default();
    let mut out = format!(
        "# Benchmark results\n\nWritten by `cargo bench --bench pipeline` on {} ({machine}, {cpu}); {records} records of ≈260 bytes, \
         served as pages of 1,000 over loopback HTTP; big run: {big} records. Release build. Records/s is the whole \
         process's wall clock (start-up, fetch, diff, map, validate, write, contract save).\n\n\
         | tool | workload | records | seconds | records/s | peak RSS (MB) | vs syncline | note |\n|---|---|---:|---:|---:|---:|---:|---|\n",
        chrono::Utc::now().format("%Y-%m-%d")
    );
    for row in rows {
        let ours = rows.iter().find(|r| r.tool == "syncline" && r.workload.split(", ").nth(1) == row.workload.split(", ").nth(1));
        let ratio = match ours {
            Some(o) if row.tool != "syncline" => match o.rate() / row.rate().max(1e-9) {
                ratio if ratio >= 1.0 => format!("syncline {ratio:.1}× faster"),
                ratio => format!("{} {:.1}× faster", row.tool, 1.0 / ratio.max(1e-9)),
            },
            _ => String::new(),
        };
        out.push_str(&format!(
            "| {} | {} | {} | {:.2} | {:.0} | {:.0} | {} | {} |\n",
            row.tool,
            row.workload,
            row.records,
            row.seconds,
            row.rate(),
            row.rss_mb,
            ratio,
            row.note
        ));
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/RESULTS.md");
    let notes = std::fs::read_to_string(&path).ok().and_then(|t| t.split_once("\n## Notes").map(|(_, n)| format!("\n## Notes{n}"))).unwrap_or_default();
    std::fs::write(&path, out + &notes).unwrap();
    println!("wrote {}", path.display());
}

mod peers {
    //! dlt and Sling on the same feed, when installed.
    use super::*;

    pub fn run(runtime: &tokio::runtime::Runtime, feed: &Arc<Feed>, url: &str, dir: &Path) -> Vec<Row> {
        let _ = runtime;
        let mut rows = Vec::new();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/peers/dlt_feed.py");
        match std::env::var("SYNCLINE_BENCH_PYTHON") {
            Err(_) => println!("dlt: skipped (set SYNCLINE_BENCH_PYTHON to a Python with dlt[duckdb] and pyarrow; see benches/peers/README.md)"),
            Ok(python) => {
                let scratch = dir.join("dlt");
                std::fs::create_dir_all(&scratch).unwrap();
                for (workload, changed) in [("API feed → DuckDB, first run", false), ("API feed → DuckDB, unchanged", false), ("API feed → DuckDB, 10% changed", true)] {
                    feed.changed.store(changed, Ordering::SeqCst);
                    let (seconds, rss_mb, stdout) = timed(
                        Command::new(&python)
                            .arg(&script)
                            .arg(url)
                            .arg(scratch.join("dlt_feed.duckdb"))
                            .env("DLT_DATA_DIR", &scratch)
                            .env("RUNTIME__DLTHUB_TELEMETRY", "false"),
                    );
                    let loaded: u64 = stdout.trim().lines().last().and_then(|l| l.parse().ok()).unwrap_or(0);
                    println!("dlt       {workload:<34} {loaded:>10} records {seconds:>8.2}s  {:>9.0} rec/s  {rss_mb:>7.1} MB", loaded as f64 / seconds);
                    rows.push(Row { tool: "dlt".into(), workload: workload.into(), records: loaded, seconds, rss_mb, note: "merge on id, parquet loader".into() });
                }
                feed.changed.store(false, Ordering::SeqCst);
            }
        }
        match std::env::var("SYNCLINE_BENCH_SLING") {
            Err(_) => println!("sling: skipped (set SYNCLINE_BENCH_SLING to the sling binary; see benches/peers/README.md)"),
            Ok(sling) => {
                let scratch = dir.join("sling");
                std::fs::create_dir_all(&scratch).unwrap();
                for (workload, changed) in [("NDJSON file → DuckDB, first run", false), ("NDJSON file → DuckDB, unchanged", false), ("NDJSON file → DuckDB, 10% changed", true)] {
                    feed.changed.store(changed, Ordering::SeqCst);
                    let file = scratch.join("feed.ndjson");
                    feed.write_ndjson(&file).unwrap();
                    let mut command = Command::new(&sling);
                    command
                        .args(["run", "--src-stream"])
                        .arg(format!("file://{}", file.display()))
                        .args(["--src-options", r#"{"format": "jsonlines", "flatten": true}"#])
                        .args(["--tgt-conn", "DUCKDB", "--tgt-object", "main.feed", "--mode", "incremental", "--primary-key", "id"])
                        .env("DUCKDB", format!("duckdb://{}", scratch.join("sling.duckdb").display()))
                        .env("SLING_DISABLE_TELEMETRY", "true");
                    // Sling's DuckDB target loads its extensions from $HOME/.duckdb (it cannot download them here).
                    if let Ok(home) = std::env::var("SYNCLINE_BENCH_SLING_HOME") {
                        command.env("HOME", home);
                    }
                    let (seconds, rss_mb, _) = timed(&mut command);
                    let records = feed.total;
                    println!("sling     {workload:<34} {records:>10} records {seconds:>8.2}s  {:>9.0} rec/s  {rss_mb:>7.1} MB", records as f64 / seconds);
                    rows.push(Row { tool: "Sling".into(), workload: workload.into(), records, seconds, rss_mb, note: "incremental, primary key id".into() });
                }
                feed.changed.store(false, Ordering::SeqCst);
            }
        }
        rows
    }
}
