//! The command source: real programs (POSIX shell scripts written by each test) run as sources —
//! records on stdout, stderr into the job log, exit status, timeout, cursor, and an environment of
//! only what the source names.

use std::path::Path;

use serde_json::json;
use syncline::config::Pipeline;
use syncline::pipeline::RunOptions;

use crate::common::counts;
use crate::workspace::{Workspace, completed};

/// Writes an executable shell script `name` into `dir`.
fn script(dir: &Path, name: &str, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}")).expect("script written");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("executable");
}

fn logs(ws: &Workspace, job: &str) -> Vec<String> {
    ws.state.jobs().unwrap().logs(job).unwrap().into_iter().map(|l| format!("{}: {}", l.level, l.message)).collect()
}

/// A program that prints the lines of `data/pets.ndjson`, says so on stderr, and exits with the
/// status in `data/status` (0 when missing).
fn pets_workspace() -> Workspace {
    let ws = Workspace::new();
    let data = ws.data();
    std::fs::write(data.join("pets.ndjson"), "{\"id\":1,\"name\":\"Rex\"}\n{\"id\":2,\"name\":\"Tom\"}\n{\"id\":3,\"name\":\"Kit\"}\n")
        .unwrap();
    script(
        &data,
        "pets.sh",
        "cat pets.ndjson\necho \"printed $(wc -l < pets.ndjson) pets\" >&2\nexit $(cat status 2>/dev/null || echo 0)\n",
    );
    ws.write("{ type: command, command: [./pets.sh], workingDir: data }", "{ idPosition: id }");
    ws
}

#[tokio::test]
async fn a_program_is_a_source_its_stderr_goes_to_the_job_log() {
    let ws = pets_workspace();
    let first = ws.run().await;
    completed(&first);
    assert_eq!(counts(&first), (3, 3, 0, 0, 0, 0));
    assert_eq!(ws.objects()["2"], json!({"id": 2, "name": "Tom"}));
    assert!(logs(&ws, &first.job.id).contains(&"info: stderr: printed 3 pets".to_string()), "{:?}", logs(&ws, &first.job.id));
    assert_eq!(counts(&ws.run().await), (3, 0, 0, 3, 0, 0), "unchanged output writes nothing");
    std::fs::write(ws.data().join("pets.ndjson"), "{\"id\":1,\"name\":\"Rex\"}\n{\"id\":2,\"name\":\"Tommy\"}\n").unwrap();
    let edited = ws.run().await;
    completed(&edited);
    assert_eq!(counts(&edited), (2, 0, 1, 1, 1, 0), "one changed, one gone");
}

#[tokio::test]
async fn a_failing_program_fails_the_run_and_deletes_nothing() {
    let ws = pets_workspace();
    completed(&ws.run().await);
    let data = ws.data();
    std::fs::write(data.join("pets.ndjson"), "{\"id\":1,\"name\":\"Rex\"}\n").unwrap();
    std::fs::write(data.join("status"), "3").unwrap();
    let failed = ws.run().await;
    assert_eq!(failed.job.status.as_str(), "FAILED");
    let error = failed.job.error.clone().unwrap_or_default();
    assert!(error.contains("exited with status 3") && error.contains("printed 1 pets"), "{error}");
    assert_eq!(ws.objects().len(), 3, "nothing deleted after a failed read");
    std::fs::remove_file(data.join("status")).unwrap();
    assert_eq!(counts(&ws.run().await), (1, 0, 0, 1, 2, 0), "the next complete run deletes");
}

#[tokio::test]
async fn a_program_past_its_timeout_is_killed_with_what_it_started() {
    let ws = Workspace::new();
    let data = ws.data();
    script(&data, "hang.sh", "echo '{\"id\":1}'\nsleep 60 &\necho $! > sleeper.pid\nwait\n");
    ws.write("{ type: command, command: [./hang.sh], workingDir: data, timeout: 1s }", "{ idPosition: id }");
    let report = ws.run().await;
    assert_eq!(report.job.status.as_str(), "FAILED");
    assert_eq!(report.job.error_category.as_deref(), Some("timeout"), "{:?}", report.job.error);
    assert!(report.job.error.as_deref().unwrap_or_default().contains("longer than the source's timeout"), "{:?}", report.job.error);
    assert!(ws.objects().is_empty() || ws.objects().len() == 1);
    let pid = std::fs::read_to_string(data.join("sleeper.pid")).unwrap().trim().to_string();
    for _ in 0..100 {
        let alive = std::process::Command::new("kill").args(["-0", &pid]).status().unwrap().success();
        if !alive {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("the program's child {pid} outlived the timeout");
}

#[tokio::test]
async fn the_cursor_goes_back_to_the_program_after_a_complete_run_only() {
    let ws = Workspace::new();
    let data = ws.data();
    // Prints the pets with an id above the cursor, then writes the highest id it printed as the cursor.
    script(
        &data,
        "since.sh",
        "since=${SYNCLINE_CURSOR:-0}\necho \"cursor=$since\" >&2\nmax=$since\n\
         while read -r id name; do\n  if [ \"$id\" -gt \"$since\" ]; then echo \"{\\\"id\\\":$id,\\\"name\\\":\\\"$name\\\"}\"; max=$id; fi\n\
         done < pets.txt\necho $max > \"$SYNCLINE_CURSOR_FILE\"\n",
    );
    std::fs::write(data.join("pets.txt"), "1 Rex\n2 Tom\n").unwrap();
    ws.write("{ type: command, command: [./since.sh], workingDir: data }", "{ idPosition: id }");
    let first = ws.run().await;
    completed(&first);
    assert_eq!(counts(&first), (2, 2, 0, 0, 0, 0));
    assert!(logs(&ws, &first.job.id).contains(&"info: stderr: cursor=0".to_string()));
    std::fs::write(data.join("pets.txt"), "2 Tom\n3 Kit\n").unwrap();
    let second = ws.run().await;
    completed(&second);
    assert!(logs(&ws, &second.job.id).contains(&"info: stderr: cursor=2".to_string()), "{:?}", logs(&ws, &second.job.id));
    assert_eq!(counts(&second), (1, 1, 0, 0, 0, 0), "only what changed, and nothing deleted");
    assert_eq!(ws.objects().len(), 3);
    let full = ws.run_with(RunOptions { force_full_sync: true, ..RunOptions::default() }).await;
    completed(&full);
    assert!(logs(&ws, &full.job.id).contains(&"info: stderr: cursor=0".to_string()), "a full sync runs without a cursor");
    assert_eq!(counts(&full), (2, 0, 2, 0, 1, 0), "a full sync writes every record again and deletes what is gone");
}

/// A cursor file past its 64 KiB bound fails the run (nothing deleted) and is never handed back.
#[tokio::test]
async fn a_cursor_past_its_bound_fails_the_run_and_is_not_kept() {
    let ws = Workspace::new();
    let data = ws.data();
    script(
        &data,
        "big.sh",
        "echo \"cursor=${SYNCLINE_CURSOR:-none}\" >&2\necho '{\"id\":1}'\n\
         if [ -f big ]; then head -c 102400 /dev/zero | tr '\\0' 7 > \"$SYNCLINE_CURSOR_FILE\"; fi\n",
    );
    ws.write("{ type: command, command: [./big.sh], workingDir: data }", "{ idPosition: id }");
    completed(&ws.run().await);
    std::fs::write(data.join("big"), "").unwrap();
    let failed = ws.run().await;
    assert_eq!(failed.job.status.as_str(), "FAILED");
    let error = failed.job.error.clone().unwrap_or_default();
    assert!(error.contains("cursor is longer than") && error.len() < 2_000, "{error}");
    assert_eq!((counts(&failed).4, ws.objects().len()), (0, 1), "nothing deleted");
    std::fs::remove_file(data.join("big")).unwrap();
    let next = ws.run().await;
    completed(&next);
    assert!(logs(&ws, &next.job.id).contains(&"info: stderr: cursor=none".to_string()), "{:?}", logs(&ws, &next.job.id));
}

#[tokio::test]
async fn the_program_sees_only_the_environment_the_source_names_and_its_secrets_stay_out_of_the_log() {
    let ws = Workspace::new();
    let data = ws.data();
    script(
        &data,
        "env.sh",
        "echo \"{\\\"id\\\":\\\"env\\\",\\\"home\\\":\\\"$HOME\\\",\\\"region\\\":\\\"$REGION\\\",\\\"count\\\":$(env | wc -l)}\"\n\
         echo \"token is $API_TOKEN\" >&2\n",
    );
    ws.write(
        "{ type: command, command: [./env.sh], workingDir: data, env: { REGION: eu, API_TOKEN: { secret: command-marker-7 } } }",
        "{ idPosition: id }",
    );
    let report = ws.run().await;
    completed(&report);
    let object = &ws.objects()["env"];
    assert_eq!((object["home"].as_str(), object["region"].as_str()), (Some(""), Some("eu")), "{object}");
    // REGION, API_TOKEN, PATH, SYNCLINE_CURSOR_FILE, and what the shell sets itself (PWD, SHLVL, _).
    assert!(object["count"].as_u64().unwrap() <= 7, "{object}");
    let log = logs(&ws, &report.job.id);
    assert!(log.iter().any(|l| l.contains("token is ***")), "{log:?}");
    assert!(!log.iter().any(|l| l.contains("command-marker-7")), "{log:?}");
}

#[tokio::test]
async fn csv_on_stdout_and_a_missing_program() {
    let ws = Workspace::new();
    let data = ws.data();
    script(&data, "csv.sh", "printf 'code;name\\n007;Bond\\n'\n");
    ws.write(
        "{ type: command, command: [sh, csv.sh], workingDir: data }",
        "{ idPosition: code, format: csv, delimiter: \";\", columnTypes: text }",
    );
    completed(&ws.run().await);
    assert_eq!(ws.objects()["007"], json!({"code": "007", "name": "Bond"}));

    ws.write("{ type: command, command: [no-such-program-here], workingDir: data }", "{ idPosition: id }");
    let report = ws.run().await;
    assert_eq!(report.job.status.as_str(), "FAILED");
    assert!(report.job.error.as_deref().unwrap_or_default().contains("no such program"), "{:?}", report.job.error);
    assert_eq!(ws.objects().len(), 1, "nothing deleted");
}

#[test]
fn a_command_source_is_checked_when_loaded() {
    let errors = |source: &str, config: &str| {
        let text = format!(
            "sources:\n  s: {source}\nmappings:\n  m: {{ passThrough: true }}\nregisters:\n  r: {{ schemas: {{ s: {{}} }} }}\n\
             synchronizations:\n  x: {{ source: s, mapping: m, sourceConfig: {config}, target: {{ type: register, register: r, schema: s }} }}\n"
        );
        Pipeline::from_text("p.yaml", &text, Path::new("."), &|_| None).map(|_| String::new()).unwrap_or_else(|e| e.to_string())
    };
    assert!(
        errors("{ type: command }", "{ idPosition: id }").contains("sources.s: missing field `command`"),
        "{}",
        errors("{ type: command }", "{}")
    );
    assert!(errors("{ type: command, command: [] }", "{ idPosition: id }").contains("sources.s.command: a command is a list"));
    assert!(errors("{ type: command, command: [x], location: /tmp }", "{ idPosition: id }").contains("a command source takes no location"));
    let misplaced = errors("{ type: command, command: [x] }", "{ idPosition: id, endpoint: /pets }");
    assert!(misplaced.contains("`endpoint` does not apply to a command source"), "{misplaced}");
    let parquet = errors("{ type: command, command: [x] }", "{ idPosition: id, format: parquet }");
    assert!(parquet.contains("not Parquet"), "{parquet}");
    assert_eq!(errors("{ type: command, command: [x] }", "{ idPosition: id }"), "");
}

/// A command target that refuses the ids listed in `data/refuse` and logs every write it gets.
#[tokio::test]
async fn a_command_target_moves_contracts_only_for_what_the_program_confirmed() {
    let ws = pets_workspace();
    let data = ws.data();
    script(
        &data,
        "sink.sh",
        "while IFS= read -r line; do\n  echo \"$line\" >> received.log\n  id=$(echo \"$line\" | sed 's/.*\"id\":\"\\([^\"]*\\)\".*/\\1/')\n\
           if grep -qx \"$id\" refuse 2>/dev/null; then echo '{\"ok\":false,\"error\":\"not today\"}'; else echo \"{\\\"ok\\\":true,\\\"id\\\":\\\"r$id\\\"}\"; fi\n\
         done\necho 'all written' >&2\n",
    );
    std::fs::write(data.join("refuse"), "2\n").unwrap();
    ws.write_to(
        "{ type: command, command: [./pets.sh], workingDir: data }",
        "{ idPosition: id }",
        "{ type: command, command: [./sink.sh], workingDir: data }",
        "",
    );
    let first = ws.run().await;
    completed(&first);
    assert_eq!(counts(&first), (3, 2, 0, 0, 0, 1), "the refused object fails alone");
    let errors = ws.state.jobs().unwrap().errors(&first.job.id, 10).unwrap();
    assert!(errors[0].message.contains("not today"), "{errors:?}");
    assert!(logs(&ws, &first.job.id).contains(&"info: stderr: all written".to_string()), "{:?}", logs(&ws, &first.job.id));
    let received = std::fs::read_to_string(data.join("received.log")).unwrap();
    assert!(received.lines().all(|l| l.contains("\"op\":\"create\"")), "{received}");

    std::fs::write(data.join("refuse"), "").unwrap();
    let second = ws.run().await;
    completed(&second);
    assert_eq!(counts(&second), (3, 1, 0, 2, 0, 0), "the refused one is written again, the confirmed ones are not");
    std::fs::write(data.join("pets.ndjson"), "{\"id\":1,\"name\":\"Rex\"}\n{\"id\":2,\"name\":\"Tommy\"}\n").unwrap();
    let third = ws.run().await;
    completed(&third);
    assert_eq!(counts(&third), (2, 0, 1, 1, 1, 0));
    let received = std::fs::read_to_string(data.join("received.log")).unwrap();
    let last: Vec<&str> = received.lines().rev().take(2).collect();
    assert!(last.iter().any(|l| l.contains("\"op\":\"delete\"") && l.contains("\"remoteId\":\"r3\"")), "{last:?}");
    assert!(last.iter().any(|l| l.contains("\"op\":\"update\"") && l.contains("Tommy")), "{last:?}");
}

#[tokio::test]
async fn a_command_target_that_answers_nonsense_or_dies_fails_the_run() {
    // A 2 MiB answer line: held to its 1 MiB bound (the rest is skipped, not buffered), then refused.
    let huge = "read -r line\nhead -c 2097152 /dev/zero | tr '\\0' x\necho\n";
    for (name, body) in [("nonsense.sh", "read -r line\necho 'sure'\n"), ("dies.sh", "read -r line\nexit 4\n"), ("huge.sh", huge)] {
        let ws = pets_workspace();
        script(&ws.data(), name, body);
        ws.write_to(
            "{ type: command, command: [./pets.sh], workingDir: data }",
            "{ idPosition: id }",
            &format!("{{ type: command, command: [./{name}], workingDir: data }}"),
            "",
        );
        let report = ws.run().await;
        assert_eq!(report.job.status.as_str(), "FAILED", "{name}");
        let error = report.job.error.clone().unwrap_or_default();
        let expected = ["is not an answer", "ended before answering", "an answer longer than 1 MiB"];
        assert!(expected.iter().any(|e| error.contains(e)), "{name}: {error}");
        if name == "huge.sh" {
            assert!(error.contains("longer than 1 MiB") && error.len() < 2_000, "{name}: {error}");
        }
        assert_eq!(counts(&report).1, 0, "{name}: nothing confirmed, nothing counted as created");
    }
}

/// A program that answers each write as it reads it, with long answers: more than a pipe holds per
/// batch, so syncline must read answers while it is still writing.
#[tokio::test]
async fn a_command_target_that_answers_at_once_does_not_deadlock() {
    let ws = Workspace::new();
    ws.write_to(
        "{ type: command, command: [awk, \"BEGIN { for (i = 1; i <= 3000; i++) printf \\\"{\\\\\\\"id\\\\\\\":%d}\\\\n\\\", i }\"] }",
        "{ idPosition: id }",
        "{ type: command, command: [awk, \"{ printf \\\"{\\\\\\\"ok\\\\\\\":true,\\\\\\\"id\\\\\\\":\\\\\\\"%0300d\\\\\\\"}\\\\n\\\", NR; fflush() }\"], answerTimeout: 20s }",
        "",
    );
    let report = ws.run().await;
    completed(&report);
    assert_eq!(counts(&report), (3000, 3000, 0, 0, 0, 0));
}

#[tokio::test]
async fn a_run_killed_mid_program_converges_and_the_program_does_not_linger() {
    let ws = Workspace::new();
    let data = ws.data();
    // 3,000 records, slowly while `slow` exists (records travel in chunks of 1,024 lines), so the run
    // can be killed part-way.
    script(
        &data,
        "pets-stream.sh",
        "i=1\nwhile [ $i -le 3000 ]; do\n  echo \"{\\\"id\\\":$i,\\\"name\\\":\\\"pet $i\\\"}\"\n  [ -f slow ] && [ $((i % 50)) -eq 0 ] && sleep 0.05\n  i=$((i+1))\ndone\n",
    );
    std::fs::write(data.join("slow"), "").unwrap();
    ws.write("{ type: command, command: [./pets-stream.sh], workingDir: data }", "{ idPosition: id }");
    let mut child = crate::workspace::spawn_run(ws.state.root(), &ws.file);
    let written = || ws.state.register().ok().and_then(|r| r.count("r", "rows", &[]).ok()).unwrap_or(0) as usize;
    crate::workspace::kill_once_written(&mut child, written, 20).await;
    let written = ws.objects().len();
    assert!(written < 3000, "killed part-way ({written} written)");

    // The program writes into a pipe nobody reads any more: it dies at its next line.
    let script_path = data.join("pets-stream.sh").display().to_string();
    let alive = || std::process::Command::new("pgrep").args(["-f", &script_path]).status().map(|s| s.success()).unwrap_or(false);
    let gone_by = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while alive() {
        assert!(std::time::Instant::now() < gone_by, "the program outlived the killed run");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    std::fs::remove_file(data.join("slow")).unwrap();
    let next = ws.run().await;
    completed(&next);
    let objects = ws.objects();
    assert_eq!(objects.len(), 3000, "nothing lost, no duplicate");
    assert!((1..=3000).all(|i| objects[&i.to_string()] == json!({"id": i, "name": format!("pet {i}")})));
    let jobs = ws.state.jobs().unwrap().list(Some("sync"), 10).unwrap();
    assert_eq!(jobs.last().unwrap().status.as_str(), "FAILED", "the killed job is marked failed");
    assert_eq!(counts(&ws.run().await), (3000, 0, 0, 3000, 0, 0), "then nothing changes");
}
