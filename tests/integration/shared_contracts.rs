//! Contract tables in a shared object store (`--contracts URL`): two machines (two state
//! directories) running one synchronization into one MariaDB table, with their contracts on a real
//! S3-compatible server (moto's, from PyPI, which `tests/run` installs), and in a `file://` folder.
//! What is checked: a machine sees what the other saved, a lost save race fails that run cleanly
//! and the next run converges, and a manifest from a hostile store cannot point the reader elsewhere.

use std::path::Path;

use futures::TryStreamExt;
use mysql_async::prelude::Queryable;
use object_store::ObjectStore;
use syncline::store::StateDir;

use crate::database::{mysql, mysql_url, table_name};
use crate::machines::{Machine, S3, counts, job, wait_for};

#[tokio::test]
async fn two_machines_share_contracts_in_s3_and_the_loser_of_a_save_race_fails_cleanly_then_converges() {
    let Some(mut db) = mysql().await else { return };
    let bucket = "syncline-contracts";
    let Some(s3) = S3::start(bucket).await else { return };
    let root = tempfile::tempdir().unwrap();
    let table = table_name("shared");
    let target = format!("{{ type: database, location: \"{}\", table: {table}, createTable: true }}", mysql_url());
    let (a, b) = (Machine::new(root.path(), "a", &target), Machine::new(root.path(), "b", &target));
    let contracts = format!("s3://{bucket}/contracts");
    let spawn = |machine: &Machine| machine.spawn(&["--contracts", &contracts], &s3.env());
    for machine in [&a, &b] {
        machine.pets(1..=40);
        machine.gate(true);
    }

    let first = job(spawn(&a));
    assert_eq!((first["status"].as_str(), counts(&first)), (Some("COMPLETED"), (40, 0, 0, 0)), "{first}");
    // The other machine has no contracts of its own: it reads machine a's and writes nothing.
    let second = job(spawn(&b));
    assert_eq!((second["status"].as_str(), counts(&second)), (Some("COMPLETED"), (0, 0, 40, 0)), "{second}");

    // Both start a run on new data and load the same generation; b saves first.
    for machine in [&a, &b] {
        machine.pets(1..=41);
        machine.gate(false);
    }
    let (held, racing) = (spawn(&a), spawn(&b));
    wait_for("both runs to read their source", || a.started() && b.started()).await;
    b.gate(true);
    let won = job(racing);
    assert_eq!((won["status"].as_str(), counts(&won)), (Some("COMPLETED"), (1, 0, 40, 0)), "{won}");
    a.gate(true);
    let lost = job(held);
    assert_eq!(lost["status"], "FAILED", "{lost}");
    assert_eq!(lost["error_category"], "state", "{lost}");
    let error = lost["error"].as_str().unwrap();
    assert!(error.contains("another run saved generation 3") && error.contains("s3://syncline-contracts/contracts"), "{error}");

    // The loser's next run reads the winner's table: nothing to write, nothing lost, no duplicate.
    let next = job(spawn(&a));
    assert_eq!((next["status"].as_str(), counts(&next)), (Some("COMPLETED"), (0, 0, 41, 0)), "{next}");
    let rows: Vec<(u64, u64)> = db.query(format!("SELECT COUNT(*), COUNT(DISTINCT origin_id) FROM {table}")).await.unwrap();
    assert_eq!(rows, [(41, 41)]);

    // Only the newest generation is left in the bucket: its manifest and its data.
    let store = s3.store(bucket);
    let mut names: Vec<String> = store.list(None).map_ok(|meta| meta.location.to_string()).try_collect().await.expect("listing the bucket");
    names.sort();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names[0].starts_with("contracts/sync/00000000000000000004-") && names[0].ends_with(".arrow"), "{names:?}");
    assert_eq!(names[1], "contracts/sync/00000000000000000004.json", "{names:?}");
    db.query_drop(format!("DROP TABLE {table}")).await.unwrap();
}

/// The same store on a local folder (`file://`): a save that follows an older generation is refused,
/// and a manifest that names a file outside its generation is refused as corrupt.
#[tokio::test]
async fn a_shared_folder_refuses_a_stale_save_and_a_manifest_pointing_elsewhere() {
    use syncline::diff::contracts::ContractTable;
    let root = tempfile::tempdir().unwrap();
    let shared = format!("file://{}", root.path().join("shared").display());
    let open = |name: &str| {
        let dir = root.path().join(name);
        let shared = shared.clone();
        async move { StateDir::open(&dir).unwrap().with_contracts(&shared).await.unwrap() }
    };
    let (one, two) = (open("one").await, open("two").await);
    let mut table = ContractTable::load(&one, "s").await.unwrap();
    let row = table.insert("a", [1; 16]);
    table.commit(row, [1; 32], 1);
    table.save(&one, "s").await.unwrap();
    assert_eq!(two.contract_rows("s").await.unwrap(), 1, "the other machine sees the saved table");

    let stale = ContractTable::load(&one, "s").await.unwrap();
    let mut fresh = ContractTable::load(&two, "s").await.unwrap();
    let row = fresh.insert("b", [2; 16]);
    fresh.commit(row, [2; 32], 2);
    fresh.save(&two, "s").await.unwrap();
    let error = stale.save(&one, "s").await.expect_err("a save following an older generation").to_string();
    assert!(error.contains("another run saved generation 2"), "{error}");
    assert_eq!(ContractTable::load(&one, "s").await.unwrap().contracts().len(), 2, "the winner's table stands");

    // A hostile manifest: the newest generation names a data file that is not its own.
    let folder = root.path().join("shared/s");
    std::fs::write(folder.join("00000000000000000009.json"), r#"{"generation":9,"data":"../../etc/passwd","rows":1,"savedAt":""}"#)
        .unwrap();
    let error = ContractTable::load(&one, "s").await.err().expect("a manifest naming another file is refused").to_string();
    assert!(error.contains("manifest 9 names `../../etc/passwd`"), "{error}");
    std::fs::write(folder.join("00000000000000000009.json"), vec![b' '; 100_000]).unwrap();
    let error = ContractTable::load(&one, "s").await.err().expect("an oversized manifest is refused").to_string();
    assert!(error.contains("manifest 9 is 100000 bytes"), "{error}");
}

/// `syncline state migrate` moves every contract table into a shared store and back, unchanged: a run
/// on the moved tables writes nothing, the tables come back equal, and a table the destination
/// already has is kept (exit 1) unless `--replace`.
#[test]
fn state_migrate_moves_every_contract_table_to_a_shared_store_and_back() {
    use crate::cli::{syncline, text};
    let root = tempfile::tempdir().unwrap();
    let machine = Machine::new(root.path(), "m", "{ type: register, register: r, schema: rows }");
    machine.pets(1..=25);
    machine.gate(true);
    let state = machine.dir.join("state");
    let pipeline = machine.dir.join("pipeline.yaml");
    let pipeline = pipeline.to_str().unwrap();
    let shared = format!("file://{}", root.path().join("shared").display());
    assert!(syncline(&state, &["run", pipeline]).status.success());
    let listed = |state: &Path, global: &[&str]| {
        let out = syncline(state, &[global, &["contracts", "sync", "--json"]].concat());
        assert!(out.status.success(), "{}", text(&out));
        String::from_utf8(out.stdout).unwrap()
    };
    let before = listed(&state, &[]);
    assert_eq!(before.lines().count(), 25);

    let moved = syncline(&state, &["state", "migrate", "--to", &shared]);
    assert!(moved.status.success(), "{}", text(&moved));
    assert!(text(&moved).contains("copied `sync`: 25 contract(s) into file://"), "{}", text(&moved));
    assert_eq!(listed(&state, &["--contracts", &shared]), before, "the shared store holds the same table");
    let rerun = syncline(&state, &["--contracts", &shared, "run", "--json", pipeline]);
    let job: serde_json::Value = serde_json::from_slice(&rerun.stdout).unwrap();
    assert_eq!(counts(&job), (0, 0, 25, 0), "a run on the moved contracts writes nothing: {job}");

    let again = syncline(&state, &["state", "migrate", "--to", &shared]);
    assert_eq!(again.status.code(), Some(1), "{}", text(&again));
    assert!(text(&again).contains("kept `sync`"), "{}", text(&again));
    assert!(syncline(&state, &["state", "migrate", "--to", &shared, "--replace"]).status.success());

    let back = root.path().join("back");
    let returned = syncline(&back, &["state", "migrate", "--from", &shared]);
    assert!(returned.status.success(), "{}", text(&returned));
    // The re-run moved last_seen forward in the shared table: compare what identifies each contract.
    let identity = |listing: &str| -> Vec<(String, String, String)> {
        listing
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .map(|c| (c["origin_id"].to_string(), c["target_id"].to_string(), c["origin_hash"].to_string()))
            .collect()
    };
    assert_eq!(identity(&listed(&back, &[])), identity(&before), "the tables come back with every contract");
}
