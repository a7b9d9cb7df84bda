//! End-to-end benchmark: runs the real `syncline` binary against a generated paged JSON feed served
//! over loopback HTTP, and the peers (dlt, Sling) on the same data when they are installed; then a
//! generated MariaDB table into the register and into PostgreSQL, and a generated xlsx sheet, where the
//! servers answer; then writes `benches/RESULTS.md`.
//!
//! ```sh
//! cargo bench --bench pipeline                 # 1M records, then a 10M-record memory run
//! SYNCLINE_BENCH_RECORDS=100000 SYNCLINE_BENCH_BIG=0 cargo bench --bench pipeline   # quick
//! ```
//! Peers (optional, see `benches/peers/README.md`): `SYNCLINE_BENCH_PYTHON` (a Python with
//! `dlt[duckdb]` and `pyarrow`), `SYNCLINE_BENCH_SLING` (the `sling` binary) with `DUCKDB_PATH`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::Ordering;
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

/// The mapping a new user writes (issue 18): paths, a template of two expressions, filters, a `date`
/// filter on a field, a copied list; and a JSON Schema with types and `required`.
const REALISTIC_MAPPING: &str = r#"
    mapping:
      id: "{{ id }}"
      title: "{{ name }} ({{ category.name }})"
      status: "{{ status }}"
      category: "{{ category.name|lower }}"
      tags: tags
      price: "{{ price }}"
      updated: '{{ updated_at|date("Y-m-d") }}'
      email: "{{ owner.email }}"
      city: "{{ owner.city|upper }}"
      imported: '{{ "now"|date("Y-m-d") }}'"#;

const REALISTIC_SCHEMA: &str = r#"{"type": "object", "required": ["id", "title", "tags", "updated"],
  "properties": {"id": {"type": "string"}, "title": {"type": "string", "minLength": 1}, "status": {"enum": ["available", "pending", "sold"]},
    "category": {"type": "string"}, "tags": {"type": "array", "items": {"type": "string"}}, "price": {"type": "string"},
    "updated": {"type": "string"}, "email": {"type": "string"}, "city": {"type": "string"}, "imported": {"type": "string"}}}"#;

/// OpenConnector's way: every field a `{{ x }}` template, and the date of the import.
const OPENCONNECTOR_MAPPING: &str = r#"
    mapping:
      id: "{{ id }}"
      name: "{{ name }}"
      status: "{{ status }}"
      category: "{{ category.name }}"
      price: "{{ price }}"
      updated: "{{ updated_at }}"
      email: "{{ owner.email }}"
      city: "{{ owner.city }}"
      imported: '{{ "now"|date("Y-m-d") }}'"#;

/// The API pipeline of `dir` with another mapping (and schema): a workload of its own.
fn write_mapping_pipeline(dir: &Path, url: &str, mapping: &str, schema: Option<&str>) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let plain = std::fs::read_to_string(write_pipeline(dir, url)).unwrap();
    let (head, rest) = plain.split_once("  record:\n").unwrap();
    let tail = &rest[rest.find("registers:").unwrap()..];
    std::fs::write(dir.join("bench.yaml"), format!("{head}  record:{mapping}\n{tail}")).unwrap();
    if let Some(schema) = schema {
        std::fs::write(dir.join("bench.schema.json"), schema).unwrap();
    }
    dir.join("bench.yaml")
}

/// A pipeline whose source is a program (awk) printing `records` NDJSON records shaped like the API
/// feed's, mapped the same way into the register.
fn write_command_pipeline(dir: &Path, records: u64) -> PathBuf {
    let api = std::fs::read_to_string(write_pipeline(dir, "http://unused")).unwrap();
    let program = format!(
        r#"BEGIN {{ for (i = 1; i <= {records}; i++) printf "{{\"id\":\"%d\",\"name\":\"pet %d\",\"status\":\"available\",\"category\":{{\"name\":\"dogs\"}},\"price\":\"%d.50\",\"updated_at\":\"2026-01-01\",\"owner\":{{\"email\":\"o%d@example.org\",\"city\":\"Utrecht\"}}}}\n", i, i, i % 500, i }}"#
    );
    let source = format!("feed: {{ type: command, command: [awk, {}] }}", serde_json::to_string(&program).unwrap());
    let text = api
        .replace(r#"feed: { type: api, location: "http://unused" }"#, &source)
        .replace("idPosition: id, resultsPosition: data.items, pagination: { type: page }", "idPosition: id");
    let file = dir.join("command.yaml");
    std::fs::write(&file, text).unwrap();
    file
}

/// What a benchmark run must have done: a run that failed or counted otherwise fails the benchmark,
/// so a number is never reported for work that was not done.
#[derive(Clone, Copy, Debug)]
enum Expect {
    Created(u64),
    Unchanged(u64),
    /// `of` found, `updated` of them changed, the rest unchanged.
    Updated {
        of: u64,
        updated: u64,
    },
}

impl Expect {
    /// (found, created, updated, unchanged) as the job must count them.
    fn counts(self) -> (u64, u64, u64, u64) {
        match self {
            Expect::Created(n) => (n, n, 0, 0),
            Expect::Unchanged(n) => (n, 0, 0, n),
            Expect::Updated { of, updated } => (of, 0, updated, of - updated),
        }
    }
}

/// Runs `syncline run FILE [SYNC] --json` under `/usr/bin/time`, checks it did what `expect` says,
/// and prints its row.
fn syncline_run(state: &Path, file: &Path, sync: Option<&str>, workload: &str, expect: Expect) -> Row {
    let mut command = Command::new(env!("CARGO_BIN_EXE_syncline"));
    command.arg("--state").arg(state).arg("run").arg(file).args(sync).arg("--json");
    let (seconds, rss_mb, stdout) = timed(&mut command);
    let job: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap_or_default();
    let count = |k: &str| job[k].as_u64().unwrap_or(0);
    let counted = (count("found"), count("created"), count("updated"), count("unchanged"));
    assert!(
        job["status"] == "COMPLETED" && counted == expect.counts() && count("failed") == 0,
        "benchmark `{workload}`: expected {expect:?} (found, created, updated, unchanged = {:?}), the run gave {counted:?}: {job}",
        expect.counts()
    );
    let note =
        format!("created {}, updated {}, unchanged {}, failed {}", count("created"), count("updated"), count("unchanged"), count("failed"));
    println!(
        "syncline  {workload:<44} {:>10} records {:>8.2}s  {:>9.0} rec/s  {:>7.1} MB  ({note})",
        count("found"),
        seconds,
        count("found") as f64 / seconds,
        rss_mb
    );
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
    rows.push(syncline_run(&state, &file, None, "API feed → register, first run", Expect::Created(records)));
    rows.push(syncline_run(&state, &file, None, "API feed → register, unchanged", Expect::Unchanged(records)));
    feed.changed.store(true, Ordering::SeqCst);
    // Every 10th record (ids 10, 20, …) changes.
    let updated = Expect::Updated { of: records, updated: records / 10 };
    rows.push(syncline_run(&state, &file, None, "API feed → register, 10% changed", updated));
    feed.changed.store(false, Ordering::SeqCst);
    assert_calls_recorded(&state, records / 1000);

    // The same without a call log: what recording every request costs.
    let quiet_dir = dir.path().join("no-call-log");
    std::fs::create_dir_all(&quiet_dir).unwrap();
    let quiet = std::fs::read_to_string(write_pipeline(&quiet_dir, &server.url())).unwrap().replace(
        &format!(r#"feed: {{ type: api, location: "{}" }}"#, server.url()),
        &format!(r#"feed: {{ type: api, location: "{}", callLogRetention: {{ maxCount: 0 }} }}"#, server.url()),
    );
    let quiet_file = quiet_dir.join("bench.yaml");
    std::fs::write(&quiet_file, quiet).unwrap();
    let quiet_state = quiet_dir.join("state");
    rows.push(syncline_run(&quiet_state, &quiet_file, None, "API feed → register, first run, no call log", Expect::Created(records)));
    rows.push(syncline_run(&quiet_state, &quiet_file, None, "API feed → register, unchanged, no call log", Expect::Unchanged(records)));

    // The mappings users write: the realistic one (first, unchanged, 10% changed) and OpenConnector's.
    let realistic_dir = dir.path().join("realistic");
    let realistic = write_mapping_pipeline(&realistic_dir, &server.url(), REALISTIC_MAPPING, Some(REALISTIC_SCHEMA));
    let realistic_state = realistic_dir.join("state");
    rows.push(syncline_run(
        &realistic_state,
        &realistic,
        None,
        "API feed → register, realistic mapping, first run",
        Expect::Created(records),
    ));
    rows.push(syncline_run(
        &realistic_state,
        &realistic,
        None,
        "API feed → register, realistic mapping, unchanged",
        Expect::Unchanged(records),
    ));
    feed.changed.store(true, Ordering::SeqCst);
    rows.push(syncline_run(&realistic_state, &realistic, None, "API feed → register, realistic mapping, 10% changed", updated));
    feed.changed.store(false, Ordering::SeqCst);
    let oc_dir = dir.path().join("openconnector-style");
    let oc = write_mapping_pipeline(&oc_dir, &server.url(), OPENCONNECTOR_MAPPING, None);
    rows.push(syncline_run(
        &oc_dir.join("state"),
        &oc,
        None,
        "API feed → register, OpenConnector-style mapping, first run",
        Expect::Created(records),
    ));

    let command_dir = dir.path().join("command");
    std::fs::create_dir_all(&command_dir).unwrap();
    let command_file = write_command_pipeline(&command_dir, records);
    let command_state = command_dir.join("state");
    rows.push(syncline_run(
        &command_state,
        &command_file,
        None,
        "command (NDJSON on stdout) → register, first run",
        Expect::Created(records),
    ));
    rows.push(syncline_run(
        &command_state,
        &command_file,
        None,
        "command (NDJSON on stdout) → register, unchanged",
        Expect::Unchanged(records),
    ));

    rows.extend(peers::run(&runtime, &feed, &server.url(), dir.path()));
    rows.extend(tables::run(
        &runtime,
        dir.path(),
        env_u64("SYNCLINE_BENCH_TABLE_ROWS", 1_000_000),
        env_u64("SYNCLINE_BENCH_XLSX_ROWS", 100_000),
    ));

    if big > 0 {
        let big_feed = Arc::new(Feed::new(big, 1000));
        let big_server = runtime.block_on(FeedServer::start(big_feed)).unwrap();
        let big_dir = dir.path().join("big");
        std::fs::create_dir_all(&big_dir).unwrap();
        let big_file = write_pipeline(&big_dir, &big_server.url());
        let big_state = dir.path().join("big-state");
        rows.push(syncline_run(&big_state, &big_file, None, "API feed → register, first run (big)", Expect::Created(big)));
        rows.push(syncline_run(&big_state, &big_file, None, "API feed → register, unchanged (big)", Expect::Unchanged(big)));
    }
    write_results(&rows, records, big);
}

/// The call log of the runs in `state` holds (at least) a request per page of the last run.
fn assert_calls_recorded(state: &Path, pages: u64) {
    let output = Command::new(env!("CARGO_BIN_EXE_syncline"))
        .arg("--state")
        .arg(state)
        .args(["calls", "feed", "--json", "--limit", "10000"])
        .output()
        .unwrap();
    let calls: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_default();
    let recorded = calls.as_array().map_or(0, Vec::len) as u64;
    assert!(recorded >= pages, "the call log holds {recorded} calls, fewer than the {pages} pages of a run");
}

/// Whether two workloads read the same data (Sling's NDJSON file holds the API feed's records) for the
/// same run (first, unchanged, ...), so their rates compare.
fn same_data_and_run(a: &str, b: &str) -> bool {
    let parts = |workload: &str| {
        let (from, rest) = workload.split_once(" → ").unwrap_or((workload, ""));
        let from = if from == "NDJSON file" { "API feed" } else { from };
        (from.to_string(), rest.split_once(", ").map(|(_, run)| run.to_string()))
    };
    parts(a) == parts(b)
}

fn write_results(rows: &[Row], records: u64, big: u64) {
    let machine = format!(
        "{} cores, {}",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| m.lines().next().map(|l| l.split_whitespace().nth(1).unwrap_or("").to_string()))
            .map(|kb| format!("{} GiB", kb.parse::<u64>().unwrap_or(0) / 1024 / 1024))
            .unwrap_or_default()
    );
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| c.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string()))
        .unwrap_or_default();
    let mut out = format!(
        "# Benchmark results\n\nWritten by `cargo bench --bench pipeline` on {} ({machine}, {cpu}); {records} records of ≈260 bytes, \
         served as pages of 1,000 over loopback HTTP; big run: {big} records. Release build. Records/s is the whole \
         process's wall clock (start-up, fetch, diff, map, validate, write, contract save).\n\n\
         | tool | workload | records | seconds | records/s | peak RSS (MB) | vs syncline | note |\n|---|---|---:|---:|---:|---:|---:|---|\n",
        chrono::Utc::now().format("%Y-%m-%d")
    );
    for row in rows {
        let ours = rows.iter().find(|r| r.tool == "syncline" && same_data_and_run(&r.workload, &row.workload));
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
    let notes = std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| t.split_once("\n## Notes").map(|(_, n)| format!("\n## Notes{n}")))
        .unwrap_or_default();
    std::fs::write(&path, out + &notes).unwrap();
    println!("wrote {}", path.display());
}

mod tables {
    //! A MariaDB table into the register and into a PostgreSQL table, and a spreadsheet into the
    //! register, where the servers answer (URLs as the tests take them).
    use super::*;
    use mysql_async::prelude::Queryable;

    const MAPPING: &str = r#"mappings:
  row:
    mapping:
      id: "{{ id }}"
      name: "{{ name }}"
      status: "{{ status }}"
      category: "{{ category }}"
      price: "{{ price }}"
      email: "{{ email }}"
      city: "{{ city }}"
      updated: "{{ updated_at }}"
registers:
  bench: { schemas: { row: { type: object } } }
"#;

    fn url(name: &str, default: &str) -> String {
        std::env::var(name).unwrap_or_else(|_| default.to_string())
    }

    pub fn run(runtime: &tokio::runtime::Runtime, dir: &Path, table_rows: u64, xlsx_rows: u64) -> Vec<Row> {
        let mut rows = Vec::new();
        let mysql = url("SYNCLINE_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/test");
        let postgres = url("SYNCLINE_TEST_POSTGRES_URL", "postgres://root@127.0.0.1:5432/test");
        if table_rows > 0 {
            match runtime.block_on(fill_mariadb(&mysql, table_rows)) {
                Ok(()) => {
                    let file = dir.join("tables.yaml");
                    std::fs::write(
                        &file,
                        format!(
                            "sources:\n  maria: {{ type: database, location: \"{mysql}\" }}\n{MAPPING}synchronizations:\n  \
                             maria-to-register:\n    source: maria\n    sourceConfig: {{ table: syncline_bench, idPosition: id }}\n    mapping: row\n    \
                             target: {{ type: register, register: bench, schema: row }}\n  \
                             maria-to-postgres:\n    source: maria\n    sourceConfig: {{ table: syncline_bench, idPosition: id }}\n    mapping: row\n    \
                             target: {{ type: database, location: \"{postgres}\", table: syncline_bench_target, createTable: true }}\n"
                        ),
                    )
                    .unwrap();
                    let state = dir.join("tables-state");
                    let run = |sync: &str, workload: &str, expect: Expect| syncline_run(&state, &file, Some(sync), workload, expect);
                    let (created, unchanged) = (Expect::Created(table_rows), Expect::Unchanged(table_rows));
                    rows.push(run("maria-to-register", "MariaDB table → register, first run", created));
                    rows.push(run("maria-to-register", "MariaDB table → register, unchanged", unchanged));
                    let _ = runtime.block_on(drop_postgres(&postgres));
                    rows.push(run("maria-to-postgres", "MariaDB table → PostgreSQL table, first run", created));
                    rows.push(run("maria-to-postgres", "MariaDB table → PostgreSQL table, unchanged", unchanged));
                    let _ = runtime.block_on(drop_postgres(&postgres));
                    rows.extend(sling_table(dir, &mysql, table_rows));
                }
                Err(error) => eprintln!("skipping the table workloads: no MariaDB at {mysql} ({error})"),
            }
        }
        if xlsx_rows > 0 {
            let book = dir.join("rows.xlsx");
            write_xlsx(&book, xlsx_rows);
            let file = dir.join("xlsx.yaml");
            std::fs::write(
                &file,
                format!(
                    "sources:\n  sheet: {{ type: excel, location: \"{}\" }}\n{MAPPING}synchronizations:\n  xlsx:\n    source: sheet\n    \
                     sourceConfig: {{ idPosition: id }}\n    mapping: row\n    target: {{ type: register, register: bench, schema: row }}\n",
                    book.display()
                ),
            )
            .unwrap();
            let state = dir.join("xlsx-state");
            rows.push(syncline_run(&state, &file, Some("xlsx"), "xlsx sheet → register, first run", Expect::Created(xlsx_rows)));
            rows.push(syncline_run(&state, &file, Some("xlsx"), "xlsx sheet → register, unchanged", Expect::Unchanged(xlsx_rows)));
        }
        rows
    }

    /// Sling on the same MariaDB table, into DuckDB with upserts on `id`, when it is installed.
    fn sling_table(dir: &Path, mysql: &str, table_rows: u64) -> Vec<Row> {
        let Ok(sling) = std::env::var("SYNCLINE_BENCH_SLING") else { return Vec::new() };
        let scratch = dir.join("sling-table");
        std::fs::create_dir_all(&scratch).unwrap();
        let database = mysql.rsplit('/').next().unwrap_or("test").to_string();
        let mut rows = Vec::new();
        for workload in ["MariaDB table → DuckDB, first run", "MariaDB table → DuckDB, unchanged"] {
            let mut command = Command::new(&sling);
            command
                .args(["run", "--src-conn", "MARIA", "--src-stream"])
                .arg(format!("{database}.syncline_bench"))
                .args(["--tgt-conn", "DUCKDB", "--tgt-object", "main.bench", "--mode", "incremental", "--primary-key", "id"])
                .env("MARIA", mysql)
                .env("DUCKDB", format!("duckdb://{}", scratch.join("sling.duckdb").display()))
                .env("SLING_DISABLE_TELEMETRY", "true");
            if let Ok(home) = std::env::var("SYNCLINE_BENCH_SLING_HOME") {
                command.env("HOME", home);
            }
            let (seconds, rss_mb, _) = timed(&mut command);
            println!(
                "sling     {workload:<44} {table_rows:>10} records {seconds:>8.2}s  {:>9.0} rec/s  {rss_mb:>7.1} MB",
                table_rows as f64 / seconds
            );
            rows.push(Row {
                tool: "Sling".into(),
                workload: workload.into(),
                records: table_rows,
                seconds,
                rss_mb,
                note: "incremental, primary key id".into(),
            });
        }
        rows
    }

    /// `rows` generated rows in `syncline_bench` (the server's sequence engine makes them).
    async fn fill_mariadb(url: &str, rows: u64) -> Result<(), mysql_async::Error> {
        let mut conn = mysql_async::Conn::from_url(url).await?;
        conn.query_drop("DROP TABLE IF EXISTS syncline_bench").await?;
        conn.query_drop(
            "CREATE TABLE syncline_bench (id INT PRIMARY KEY, name VARCHAR(40), status VARCHAR(12), category VARCHAR(20), \
             price DECIMAL(10,2), email VARCHAR(60), city VARCHAR(30), updated_at DATETIME NOT NULL)",
        )
        .await?;
        conn.query_drop(format!(
            "INSERT INTO syncline_bench SELECT seq, CONCAT('pet-', seq), ELT(1 + seq % 3, 'available', 'pending', 'sold'), \
             ELT(1 + seq % 4, 'Dogs', 'Cats', 'Birds', 'Fish'), (seq % 10000) / 100, CONCAT('owner', seq, '@example.org'), \
             ELT(1 + seq % 5, 'Utrecht', 'Amsterdam', 'Leiden', 'Delft', 'Gouda'), '2026-01-01' + INTERVAL (seq % 100000) SECOND \
             FROM seq_1_to_{rows}"
        ))
        .await?;
        conn.disconnect().await
    }

    async fn drop_postgres(url: &str) -> Result<(), tokio_postgres::Error> {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
        tokio::spawn(connection);
        client.batch_execute("DROP TABLE IF EXISTS syncline_bench_target").await
    }

    fn write_xlsx(path: &Path, rows: u64) {
        let mut book = rust_xlsxwriter::Workbook::new();
        let sheet = book.add_worksheet();
        for (c, title) in ["id", "name", "status", "category", "price", "email", "city", "updated_at"].iter().enumerate() {
            sheet.write(0, c as u16, *title).unwrap();
        }
        for i in 1..=rows {
            let r = i as u32;
            sheet.write(r, 0, i as f64).unwrap();
            sheet.write(r, 1, format!("pet-{i}")).unwrap();
            sheet.write(r, 2, ["available", "pending", "sold"][(i % 3) as usize]).unwrap();
            sheet.write(r, 3, ["Dogs", "Cats", "Birds", "Fish"][(i % 4) as usize]).unwrap();
            sheet.write(r, 4, (i % 10000) as f64 / 100.0).unwrap();
            sheet.write(r, 5, format!("owner{i}@example.org")).unwrap();
            sheet.write(r, 6, ["Utrecht", "Amsterdam", "Leiden", "Delft", "Gouda"][(i % 5) as usize]).unwrap();
            sheet.write(r, 7, format!("2026-01-01T{:02}:{:02}:00", (i / 60) % 24, i % 60)).unwrap();
        }
        book.save(path).unwrap();
    }
}

mod peers {
    //! dlt and Sling on the same feed, when installed.
    use super::*;

    pub fn run(runtime: &tokio::runtime::Runtime, feed: &Arc<Feed>, url: &str, dir: &Path) -> Vec<Row> {
        let _ = runtime;
        let mut rows = Vec::new();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/peers/dlt_feed.py");
        match std::env::var("SYNCLINE_BENCH_PYTHON") {
            Err(_) => {
                println!("dlt: skipped (set SYNCLINE_BENCH_PYTHON to a Python with dlt[duckdb] and pyarrow; see benches/peers/README.md)")
            }
            Ok(python) => {
                let scratch = dir.join("dlt");
                std::fs::create_dir_all(&scratch).unwrap();
                for (workload, changed) in [
                    ("API feed → DuckDB, first run", false),
                    ("API feed → DuckDB, unchanged", false),
                    ("API feed → DuckDB, 10% changed", true),
                ] {
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
                    println!(
                        "dlt       {workload:<34} {loaded:>10} records {seconds:>8.2}s  {:>9.0} rec/s  {rss_mb:>7.1} MB",
                        loaded as f64 / seconds
                    );
                    rows.push(Row {
                        tool: "dlt".into(),
                        workload: workload.into(),
                        records: loaded,
                        seconds,
                        rss_mb,
                        note: "merge on id, parquet loader".into(),
                    });
                }
                feed.changed.store(false, Ordering::SeqCst);
            }
        }
        match std::env::var("SYNCLINE_BENCH_SLING") {
            Err(_) => println!("sling: skipped (set SYNCLINE_BENCH_SLING to the sling binary; see benches/peers/README.md)"),
            Ok(sling) => {
                let scratch = dir.join("sling");
                std::fs::create_dir_all(&scratch).unwrap();
                for (workload, changed) in [
                    ("NDJSON file → DuckDB, first run", false),
                    ("NDJSON file → DuckDB, unchanged", false),
                    ("NDJSON file → DuckDB, 10% changed", true),
                ] {
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
                    println!(
                        "sling     {workload:<34} {records:>10} records {seconds:>8.2}s  {:>9.0} rec/s  {rss_mb:>7.1} MB",
                        records as f64 / seconds
                    );
                    rows.push(Row {
                        tool: "Sling".into(),
                        workload: workload.into(),
                        records,
                        seconds,
                        rss_mb,
                        note: "incremental, primary key id".into(),
                    });
                }
                feed.changed.store(false, Ordering::SeqCst);
            }
        }
        rows
    }
}
