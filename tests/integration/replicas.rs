//! Three `serve` replicas sharing contracts on an S3-compatible server (moto's) and leases on the local
//! PostgreSQL, synchronizing the fixture API into one MariaDB table; the replica running the large
//! run is killed with SIGKILL part-way. Another replica takes the synchronization over once the lease
//! has expired, and the table converges on the source with no duplicate row and no contract without
//! its row; no two runs of the synchronization ever overlap.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use mysql_async::prelude::Queryable;
use object_store::{ObjectStore, ObjectStoreExt};
use syncline::store::{JobStatus, StateDir};

use crate::common::{ServeProcess, free_port};
use crate::database::{mysql, mysql_url, postgres, postgres_url, table_name};
use crate::machines::S3;

/// (rows, distinct origin ids) in the target table; (0, 0) before it exists.
async fn rows(target: &mut mysql_async::Conn, table: &str) -> (u64, u64) {
    let sql = format!("SELECT COUNT(*), COUNT(DISTINCT origin_id) FROM {table}");
    target.query_first::<(u64, u64), _>(sql).await.ok().flatten().unwrap_or((0, 0))
}

#[tokio::test]
async fn a_replica_killed_in_a_large_run_is_taken_over_and_the_target_converges() {
    let Some(mut target) = mysql().await else { return };
    let Some(pg) = postgres().await else { return };
    let bucket = "syncline-replicas";
    let Some(s3) = S3::start(bucket).await else { return };
    let fixture = syncline::fixture::Fixture::start(syncline::fixture::pets(400)).await.unwrap();
    // 80 pages of 5, each answered after 25 ms: a run of two seconds or more, long enough to be killed in.
    fixture.store.faults.delay_ms.store(25, Ordering::SeqCst);

    let root = tempfile::tempdir().unwrap();
    let table = table_name("replicas");
    let schema = table_name("replicas");
    let mut leases = url::Url::parse(&postgres_url()).unwrap();
    leases.query_pairs_mut().append_pair("schema", &schema);
    let file = root.path().join("pipeline.yaml");
    std::fs::write(
        &file,
        format!(
            r#"
sources:
  pets: {{ type: api, location: "{}" }}
mappings:
  pet: {{ mapping: {{ name: "{{{{ name }}}}", status: "{{{{ status }}}}" }} }}
synchronizations:
  pets:
    source: pets
    sourceConfig: {{ endpoint: "/feed/page", idPosition: id, resultsPosition: data.items, pagination: {{ type: page, sizeParam: size, size: 5 }} }}
    mapping: pet
    target: {{ type: database, location: "{}", table: {table}, createTable: true }}
    schedule: every 1s
"#,
            fixture.base_url(),
            mysql_url()
        ),
    )
    .unwrap();
    let contracts = format!("s3://{bucket}/contracts");
    let args = ["--contracts", contracts.as_str(), "--leases", leases.as_str(), "--lease-seconds", "3", "--tick", "0.2"];
    let env: Vec<(&str, String)> = s3.env().into_iter().chain([("SYNCLINE_API_KEY", "replica-key".to_string())]).collect();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut replicas = Vec::new();
    for n in 0..3 {
        let dir = root.path().join(format!("replica{n}"));
        std::fs::create_dir_all(&dir).unwrap();
        replicas.push(ServeProcess::start(&dir.join("state"), &file, free_port(), &args, &env).await);
    }

    // Kill whichever replica holds the lease once its run has written part of the table.
    let deadline = Instant::now() + Duration::from_secs(60);
    while rows(&mut target, &table).await.0 < 40 {
        assert!(Instant::now() < deadline, "no replica ever wrote");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let holder: String =
        pg.query_one(&format!("SELECT holder FROM \"{schema}\".leases WHERE synchronization = 'pets'"), &[]).await.unwrap().get(0);
    let victim =
        replicas.iter().position(|r| holder.split('/').nth(1) == Some(&r.process.id().to_string())).expect("the holder is a replica");
    let written = rows(&mut target, &table).await.0;
    let killed_at = chrono::Utc::now();
    replicas.remove(victim).kill();
    assert!(written < 400, "killed part-way ({written} rows written)");

    // Another replica takes over once the lease has expired and completes a run.
    let completed_after_kill = || {
        (0..3)
            .filter(|&n| n != victim)
            .flat_map(|n| {
                let state = StateDir::open(&root.path().join(format!("replica{n}/state"))).unwrap();
                state.jobs().unwrap().list(Some("pets"), 100).unwrap()
            })
            .filter(|job| {
                job.status == JobStatus::Completed
                    && job.created_at.as_str() > killed_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true).as_str()
            })
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(90);
    while completed_after_kill() < 2 {
        assert!(Instant::now() < deadline, "no replica completed a run after the kill");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(replicas);

    assert_eq!(rows(&mut target, &table).await, (400, 400), "the table equals the source: nothing lost, no duplicate");
    // The newest contract table holds a contract for every row, and for no other.
    let store = s3.store(bucket);
    let mut manifests: Vec<_> = store.list(Some(&"contracts/pets".into())).map_ok(|m| m.location).try_collect().await.unwrap();
    manifests.retain(|m| m.as_ref().ends_with(".json"));
    manifests.sort();
    let newest = store.get(manifests.last().unwrap()).await.unwrap().bytes().await.unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(&newest).unwrap();
    assert_eq!(manifest["rows"], 400, "{manifest}");

    // No two runs overlapped: each run started after the one before it ended, on whichever replica.
    let mut jobs: Vec<_> = (0..3)
        .flat_map(|n| {
            StateDir::open(&root.path().join(format!("replica{n}/state"))).unwrap().jobs().unwrap().list(Some("pets"), 100).unwrap()
        })
        .filter(|job| job.started_at.is_some())
        .collect();
    jobs.sort_by(|a, b| a.started_at.cmp(&b.started_at));
    for pair in jobs.windows(2) {
        // The killed run never recorded its end: the next one may start only once its lease expired.
        let end = pair[0].completed_at.clone().unwrap_or_else(|| killed_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
        assert!(end.as_str() <= pair[1].started_at.as_deref().unwrap(), "two runs at once: {pair:?}");
    }
    target.query_drop(format!("DROP TABLE {table}")).await.unwrap();
    pg.batch_execute(&format!("DROP SCHEMA \"{schema}\" CASCADE")).await.unwrap();
}
