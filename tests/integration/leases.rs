//! Leases on the local PostgreSQL (`--leases`): machines that share no disk (each its own state
//! directory) never run one synchronization at once, a killed holder frees it within the lease time, a
//! holder whose lease is taken stops and fails, and three `serve` replicas fire each schedule once.

use std::time::{Duration, Instant};

use syncline::store::StateDir;

use crate::common::{ServeProcess, free_port};
use crate::database::{postgres, postgres_url, table_name};
use crate::machines::{Machine, counts, job, outcome, wait_for};

/// The leases' URL in a schema of the test's own, and that schema's name.
fn leases_url(prefix: &str) -> (String, String) {
    let schema = table_name(prefix);
    let mut url = url::Url::parse(&postgres_url()).unwrap();
    url.query_pairs_mut().append_pair("schema", &schema);
    (url.to_string(), schema)
}

const REGISTER: &str = "{ type: register, register: r, schema: rows }";

#[tokio::test]
async fn a_lease_keeps_other_machines_out_until_its_holder_dies_or_loses_it() {
    let Some(db) = postgres().await else { return };
    let (url, schema) = leases_url("leases");
    let root = tempfile::tempdir().unwrap();
    let (a, b) = (Machine::new(root.path(), "a", REGISTER), Machine::new(root.path(), "b", REGISTER));
    let global = ["--leases", url.as_str(), "--lease-seconds", "3"];
    for machine in [&a, &b] {
        machine.pets(1..=5);
    }

    // a holds the lease (held at its source's gate): b, with a state directory of its own, is refused.
    a.gate(false);
    let mut held = a.spawn(&global, &[]);
    wait_for("a's run to reach its source", || a.started()).await;
    b.gate(true);
    let refused = outcome(b.spawn(&global, &[])).expect_err("b must not run while a holds the lease");
    assert!(refused.contains("already running on another machine") && refused.contains("holds its lease"), "{refused}");

    // a dies without a word: its lease is not renewed, and b gets it once it has expired.
    held.kill().unwrap();
    held.wait().unwrap();
    let killed = Instant::now();
    let deadline = killed + Duration::from_secs(60);
    let taken = loop {
        match outcome(b.spawn(&global, &[])) {
            Ok(job) => break job,
            Err(refused) => {
                assert!(refused.contains("holds its lease"), "{refused}");
                assert!(Instant::now() < deadline, "the dead holder's lease never expired");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    assert_eq!((taken["status"].as_str(), counts(&taken)), (Some("COMPLETED"), (5, 0, 0, 0)), "{taken}");
    assert!(killed.elapsed() >= Duration::from_secs(1), "b ran before the dead holder's lease could have expired");

    // A holder whose lease is taken from it (as by a machine that found it expired) stops and fails.
    a.gate(false);
    let losing = a.spawn(&global, &[]);
    wait_for("a's run to reach its source", || a.started()).await;
    let stolen =
        db.execute(&format!("UPDATE \"{schema}\".leases SET holder = 'thief', expires_at = now() + interval '1 hour'"), &[]).await.unwrap();
    assert_eq!(stolen, 1);
    let lost = job(losing);
    assert_eq!(lost["status"], "FAILED", "{lost}");
    assert_eq!(lost["error_category"], "state", "{lost}");
    assert!(lost["error"].as_str().unwrap().contains("lost the lease of `sync`"), "{lost}");
    // The thief's lease stands: the lost holder did not give back what was no longer its own.
    let holder: String = db.query_one(&format!("SELECT holder FROM \"{schema}\".leases"), &[]).await.unwrap().get(0);
    assert_eq!(holder, "thief");
    db.batch_execute(&format!("DROP SCHEMA \"{schema}\" CASCADE")).await.unwrap();
}

/// Twenty synchronizations on a two-second schedule, three replicas, one killed part-way: every due
/// firing starts exactly one job on one replica, and no two jobs of a synchronization overlap.
#[tokio::test]
async fn three_replicas_fire_each_schedule_once_between_them() {
    let Some(db) = postgres().await else { return };
    let (url, schema) = leases_url("replicas");
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("pets.ndjson"), "{\"id\":1,\"name\":\"Rex\"}\n{\"id\":2,\"name\":\"Tom\"}\n").unwrap();
    let mut pipeline = format!(
        "sources:\n  pets: {{ type: file, location: \"{}\" }}\nmappings:\n  copy: {{ passThrough: true }}\nregisters:\n  r:\n    schemas:\n      rows: {{ type: object }}\nsynchronizations:\n",
        data.join("pets.ndjson").display()
    );
    for n in 0..20 {
        pipeline.push_str(&format!(
            "  s{n}:\n    source: pets\n    sourceConfig: {{ idPosition: id }}\n    mapping: copy\n    target: {REGISTER}\n    schedule: every 2s\n"
        ));
    }
    let file = root.path().join("pipeline.yaml");
    std::fs::write(&file, pipeline).unwrap();
    let args = ["--leases", url.as_str(), "--lease-seconds", "3", "--tick", "0.2"];
    let mut replicas = Vec::new();
    for n in 0..3 {
        let dir = root.path().join(format!("replica{n}"));
        std::fs::create_dir_all(&dir).unwrap();
        replicas.push(ServeProcess::start(&dir.join("state"), &file, free_port(), &args, &[("SYNCLINE_API_KEY", "replica-key")]).await);
    }
    let ready = reqwest::get(format!("{}/api/ready", replicas[1].url)).await.unwrap().text().await.unwrap();
    let ready: serde_json::Value = serde_json::from_str(&ready).unwrap();
    assert_eq!(ready["checks"]["leases"], "ok", "{ready}");
    tokio::time::sleep(Duration::from_secs(5)).await;
    replicas.remove(0).kill();
    tokio::time::sleep(Duration::from_secs(5)).await;
    drop(replicas);

    let fired: Vec<(String, i64)> = db
        .query(&format!("SELECT synchronization, fires FROM \"{schema}\".schedule ORDER BY synchronization"), &[])
        .await
        .unwrap()
        .into_iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    assert_eq!(fired.len(), 20, "every synchronization fired: {fired:?}");
    for (sync, fires) in fired {
        let mut jobs = Vec::new();
        for n in 0..3 {
            let state = StateDir::open(&root.path().join(format!("replica{n}/state"))).unwrap();
            jobs.extend(state.jobs().unwrap().list(Some(&sync), 100).unwrap());
        }
        // A replica killed between its claim and its job's record loses that one firing, no more.
        assert!(jobs.len() as i64 == fires || jobs.len() as i64 == fires - 1, "{sync}: {fires} firing(s), {} job(s)", jobs.len());
        assert!(fires >= 3, "{sync} fired {fires} time(s) in 10 s on a 2 s schedule");
        let at = |text: &str| chrono::DateTime::parse_from_rfc3339(text).unwrap();
        jobs.sort_by(|x, y| x.created_at.cmp(&y.created_at));
        for pair in jobs.windows(2) {
            let gap = at(&pair[1].created_at) - at(&pair[0].created_at);
            assert!(gap >= chrono::Duration::milliseconds(1_900), "{sync}: two firings {gap} apart: {:?}", pair);
            if let (Some(end), Some(start)) = (&pair[0].completed_at, &pair[1].started_at) {
                assert!(at(end) <= at(start), "{sync}: two runs at once: {pair:?}");
            }
        }
    }
    db.batch_execute(&format!("DROP SCHEMA \"{schema}\" CASCADE")).await.unwrap();
}
