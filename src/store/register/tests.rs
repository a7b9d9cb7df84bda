use super::*;

fn store() -> (tempfile::TempDir, RegisterStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = RegisterStore::open(&dir.path().join("register.db")).unwrap();
    (dir, store)
}

fn id(n: u128) -> Uuid {
    Uuid::from_u128(0x1234_5678_9abc_4def_8000_0000_0000_0000 + n)
}

#[test]
fn writes_show_in_listings_and_the_audit_trail() {
    let (_dir, mut store) = store();
    let mut batch = store.batch("job-1", 1_700_000_000_000).unwrap();
    let collection = batch.collection("pets", "pet", "sync", "api").unwrap();
    let write = |n, object| ObjectWrite { id: id(n), collection, origin_id: if n == 1 { "one" } else { "two" }, object };
    assert_eq!(batch.create(&write(1, r#"{"name":"Rex"}"#)).unwrap(), Written::Created);
    assert_eq!(batch.create(&write(2, r#"{"name":"Tom"}"#)).unwrap(), Written::Created);
    batch.commit().unwrap();

    let mut batch = store.batch("job-2", 1_700_000_060_000).unwrap();
    let collection2 = batch.collection("pets", "pet", "sync", "api").unwrap();
    assert_eq!(collection2, collection, "one collection per register, schema, synchronization and source");
    // Believed new, but stored already (a run cut off before its contracts were saved): an update.
    assert_eq!(batch.create(&write(1, r#"{"name":"Rex II"}"#)).unwrap(), Written::Updated);
    assert!(batch.delete(&id(2), true).unwrap());
    assert!(!batch.delete(&id(3), false).unwrap(), "nothing to delete");
    // Believed stored, but missing: a create.
    let write3 = ObjectWrite { id: id(3), collection, origin_id: "three", object: "{}" };
    assert_eq!(batch.update(&write3).unwrap(), Written::Created);
    batch.commit().unwrap();

    let listed = store.list("pets", "pet", &[], 10, 0).unwrap();
    assert_eq!(
        listed.iter().map(|o| o.origin_id.as_deref().unwrap()).collect::<Vec<_>>(),
        ["one", "three"],
        "soft-deleted objects are not listed"
    );
    assert_eq!(listed[0].id, id(1).to_string());
    assert_eq!(listed[0].object["name"], "Rex II");
    assert_eq!(listed[0].created_at, "2023-11-14T22:13:20.000Z");
    assert_eq!(listed[0].updated_at, "2023-11-14T22:14:20.000Z");
    assert_eq!(listed[0].synchronization.as_deref(), Some("sync"));
    assert_eq!(store.count("pets", "pet", &[("name".into(), "Rex II".into())]).unwrap(), 1);
    assert_eq!(store.origin_ids_of("sync").unwrap().len(), 2);

    let (object, trail) = store.show(&id(1).to_string()).unwrap();
    assert_eq!(object.id, id(1).to_string());
    let actions: Vec<(&str, Option<&str>)> = trail.iter().map(|e| (e.action.as_str(), e.job.as_deref())).collect();
    assert_eq!(actions, [("create", Some("job-1")), ("update", Some("job-2"))]);
    let (gone, trail) = store.show(&id(2).simple().to_string()).unwrap();
    assert_eq!(gone.deleted_at.as_deref(), Some("2023-11-14T22:14:20.000Z"));
    assert_eq!(trail.last().unwrap().action, "soft-delete");
    assert!(store.show("12345678").unwrap_err().to_string().contains("more than one"));
    assert!(store.show("ffff").unwrap_err().to_string().contains("no object"));
    assert!(store.show("not-hex").unwrap_err().to_string().contains("no object"));
}

#[test]
fn an_id_prefix_spans_the_ids_it_begins() {
    let (low, high) = id_range("1234-5").unwrap();
    assert_eq!(Uuid::from_slice(&low).unwrap().to_string(), "12345000-0000-0000-0000-000000000000");
    assert_eq!(Uuid::from_slice(&high).unwrap().to_string(), "12345fff-ffff-ffff-ffff-ffffffffffff");
    assert!(id_range("").is_none() && id_range("xyz").is_none() && id_range(&"a".repeat(33)).is_none());
}

#[test]
fn a_batch_not_committed_leaves_nothing_behind() {
    let (_dir, mut store) = store();
    let mut batch = store.batch("dry", 1).unwrap();
    let collection = batch.collection("pets", "pet", "sync", "api").unwrap();
    batch.create(&ObjectWrite { id: id(1), collection, origin_id: "one", object: "{}" }).unwrap();
    drop(batch);
    let rows: i64 = store
        .conn
        .query_row("SELECT (SELECT count(*) FROM objects) + (SELECT count(*) FROM collections) + (SELECT count(*) FROM jobs)", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(rows, 0);
}

/// A register written before objects were stored lean (every field as text) is migrated on open.
#[test]
fn a_register_of_the_first_layout_is_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("register.db");
    let old = rusqlite::Connection::open(&path).unwrap();
    old.execute_batch(
        "CREATE TABLE objects (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, register TEXT NOT NULL, schema TEXT NOT NULL,
             synchronization TEXT, source TEXT, origin_id TEXT, object TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
             deleted_at TEXT, created_job TEXT, updated_job TEXT);
         CREATE INDEX objects_by_schema ON objects(register, schema, seq);
         CREATE TABLE audit (seq INTEGER PRIMARY KEY, object_seq INTEGER NOT NULL, action TEXT NOT NULL, job TEXT, synchronization TEXT, at TEXT NOT NULL);
         CREATE INDEX audit_by_object ON audit(object_seq);
         INSERT INTO objects VALUES (1, '12345678-9abc-4def-8000-000000000001', 'pets', 'pet', 'sync', 'api', '1', '{\"name\":\"Rex\"}',
             '2024-01-01T00:00:00.000Z', '2024-01-02T00:00:00.500Z', NULL, 'job-1', 'job-2');
         INSERT INTO objects VALUES (2, '12345678-9abc-4def-8000-000000000002', 'pets', 'pet', 'sync', 'api', '2', '{\"name\":\"Tom\"}',
             '2024-01-01T00:00:00.000Z', '2024-01-03T00:00:00.000Z', '2024-01-03T00:00:00.000Z', 'job-1', 'job-3');
         INSERT INTO audit VALUES (1, 1, 'create', 'job-1', 'sync', '2024-01-01T00:00:00.000Z');
         INSERT INTO audit VALUES (2, 1, 'update', 'job-2', 'sync', '2024-01-02T00:00:00.500Z');
         INSERT INTO audit VALUES (3, 2, 'soft-delete', 'job-3', 'sync', '2024-01-03T00:00:00.000Z');",
    )
    .unwrap();
    drop(old);

    let mut store = RegisterStore::open(&path).unwrap();
    let listed = store.list("pets", "pet", &[], 10, 0).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, "12345678-9abc-4def-8000-000000000001");
    assert_eq!((listed[0].created_at.as_str(), listed[0].updated_at.as_str()), ("2024-01-01T00:00:00.000Z", "2024-01-02T00:00:00.500Z"));
    let (_, trail) = store.show("12345678-9abc-4def-8000-000000000002").unwrap();
    let actions: Vec<(&str, &str, &str)> = trail.iter().map(|e| (e.action.as_str(), e.job.as_deref().unwrap(), e.at.as_str())).collect();
    assert_eq!(actions, [("create", "job-1", "2024-01-01T00:00:00.000Z"), ("soft-delete", "job-3", "2024-01-03T00:00:00.000Z")]);
    let (_, trail) = store.show("12345678-9abc-4def-8000-000000000001").unwrap();
    assert_eq!(
        trail.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
        ["create", "update"],
        "the old create row is kept, not doubled"
    );

    // The migrated register takes writes as a new one does, and opening it again changes nothing.
    let mut batch = store.batch("job-4", 1_800_000_000_000).unwrap();
    let collection = batch.collection("pets", "pet", "sync", "api").unwrap();
    assert_eq!(batch.create(&ObjectWrite { id: id(2), collection, origin_id: "2", object: "{}" }).unwrap(), Written::Updated);
    batch.commit().unwrap();
    drop(store);
    let store = RegisterStore::open(&path).unwrap();
    assert_eq!(store.origin_ids_of("sync").unwrap().len(), 2);
}

fn changes(store: &RegisterStore, query: ChangeQuery) -> Vec<(i64, String, String)> {
    let page = store.changes(&query).unwrap();
    page.changes.into_iter().map(|c| (c.seq, c.action, c.origin_id.unwrap_or_default())).collect()
}

fn query(since: i64) -> ChangeQuery<'static> {
    ChangeQuery { register: Some("pets"), schema: Some("pet"), since, limit: 100, ..ChangeQuery::default() }
}

#[test]
fn every_change_is_numbered_in_the_feed_of_its_schema() {
    let (_dir, mut store) = store();
    let mut batch = store.batch("job-1", 1_000).unwrap();
    let pets = batch.collection("pets", "pet", "sync", "api").unwrap();
    let other = batch.collection("pets", "owner", "sync", "api").unwrap();
    for n in 1..=3 {
        batch.create(&ObjectWrite { id: id(n), collection: pets, origin_id: &n.to_string(), object: &format!(r#"{{"n":{n}}}"#) }).unwrap();
    }
    batch.create(&ObjectWrite { id: id(9), collection: other, origin_id: "9", object: "{}" }).unwrap();
    batch.commit().unwrap();
    let mut batch = store.batch("job-2", 2_000).unwrap();
    batch.update(&ObjectWrite { id: id(1), collection: pets, origin_id: "1", object: r#"{"n":10}"# }).unwrap();
    batch.delete(&id(2), false).unwrap();
    batch.delete(&id(3), true).unwrap();
    batch.commit().unwrap();

    let all = changes(&store, query(0));
    let actions: Vec<&str> = all.iter().map(|c| c.1.as_str()).collect();
    assert_eq!(actions, ["create", "create", "create", "update", "delete", "soft-delete"], "the owner schema's create is not in it");
    assert!(all.windows(2).all(|w| w[0].0 < w[1].0), "numbered in order: {all:?}");
    let page = store.changes(&query(0)).unwrap();
    assert_eq!(page.changes[3].object.as_ref().unwrap()["n"], 10, "an update carries the object as it is");
    assert!(page.changes[0].object.is_some() && page.changes[1].object.is_none(), "a deleted object's create carries none");
    assert_eq!((page.changes[4].job.as_deref(), page.changes[4].synchronization.as_deref()), (Some("job-2"), Some("sync")));
    assert_eq!(page.changes[4].id, id(2).to_string(), "a hard delete still names its object");
    assert_eq!((page.next, page.until, page.more), (store.head().unwrap(), store.head().unwrap(), false));

    let latest = changes(&store, ChangeQuery { latest: true, ..query(0) });
    let actions: Vec<&str> = latest.iter().map(|c| c.1.as_str()).collect();
    assert_eq!(actions, ["update", "delete", "soft-delete"], "each object once, at its latest change");
    let after = changes(&store, query(all[3].0));
    assert_eq!(after.len(), 2);

    // A peer that this synchronization reads from is not sent back what it wrote.
    store.set_origin("sync", "peer").unwrap();
    assert!(changes(&store, ChangeQuery { exclude_origin: Some("peer"), ..query(0) }).is_empty());
    assert_eq!(changes(&store, ChangeQuery { exclude_origin: Some("someone-else"), ..query(0) }).len(), 6);
}

/// Pages read while another connection writes: the pages a reader follows from `next` hold every
/// change once, in order, and the objects they end with are the register's.
#[test]
fn paging_through_the_feed_under_concurrent_writes_skips_and_repeats_nothing() {
    let (dir, store) = store();
    let path = dir.path().join("register.db");
    let writer = std::thread::spawn(move || {
        let mut store = RegisterStore::open(&path).unwrap();
        for round in 0..200u128 {
            let mut batch = store.batch(&format!("job-{round}"), round as i64).unwrap();
            let pets = batch.collection("pets", "pet", "sync", "api").unwrap();
            for n in 0..5 {
                let object = format!(r#"{{"round":{round}}}"#);
                batch.update(&ObjectWrite { id: id(round * 3 % 50 + n), collection: pets, origin_id: "x", object: &object }).unwrap();
            }
            if round % 7 == 0 {
                batch.delete(&id(round % 50), round % 2 == 0).unwrap();
            }
            batch.commit().unwrap();
        }
    });
    let mut seen = Vec::new();
    let mut since = 0;
    let mut copy = std::collections::BTreeMap::new();
    loop {
        let finished = writer.is_finished();
        let page = store.changes(&ChangeQuery { limit: 7, ..query(since) }).unwrap();
        for change in &page.changes {
            seen.push(change.seq);
            if change.is_delete() {
                copy.remove(&change.id);
            } else {
                copy.insert(change.id.clone(), ());
            }
        }
        since = page.next;
        if finished && !page.more && page.changes.is_empty() {
            break;
        }
    }
    writer.join().unwrap();
    let expected: Vec<i64> = store
        .conn
        .prepare("SELECT seq FROM audit ORDER BY seq")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(seen, expected, "every change once, in order");
    let live: Vec<String> = store.list("pets", "pet", &[], 1000, 0).unwrap().into_iter().map(|o| o.id).collect();
    assert_eq!(copy.into_keys().collect::<Vec<_>>(), {
        let mut l = live;
        l.sort();
        l
    });
}

/// A register of the second layout (creates on the object row alone) gets its creates into the
/// trail and the feed, and its other changes their objects' ids.
#[test]
fn a_register_of_the_second_layout_is_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("register.db");
    let old = rusqlite::Connection::open(&path).unwrap();
    old.execute_batch(
        "CREATE TABLE collections (ref INTEGER PRIMARY KEY, register TEXT NOT NULL, schema TEXT NOT NULL, synchronization TEXT NOT NULL,
             source TEXT NOT NULL, UNIQUE (register, schema, synchronization, source));
         CREATE TABLE jobs (ref INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE);
         CREATE TABLE objects (seq INTEGER PRIMARY KEY, id BLOB NOT NULL UNIQUE, collection INTEGER NOT NULL REFERENCES collections(ref),
             origin_id TEXT, object TEXT NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, deleted_at INTEGER,
             created_job INTEGER REFERENCES jobs(ref), updated_job INTEGER REFERENCES jobs(ref));
         CREATE TABLE audit (seq INTEGER PRIMARY KEY, object_seq INTEGER NOT NULL, action TEXT NOT NULL, job INTEGER REFERENCES jobs(ref),
             at INTEGER NOT NULL);
         CREATE INDEX audit_by_object ON audit(object_seq);
         INSERT INTO collections VALUES (1, 'pets', 'pet', 'sync', 'api');
         INSERT INTO jobs VALUES (1, 'job-1'), (2, 'job-2');
         INSERT INTO objects VALUES (1, unhex('123456789abc4def8000000000000001'), 1, 'one', '{\"n\":1}', 1000, 2000, NULL, 1, 2);
         INSERT INTO objects VALUES (2, unhex('123456789abc4def8000000000000002'), 1, 'two', '{\"n\":2}', 1000, 1000, NULL, 1, 1);
         INSERT INTO audit VALUES (1, 1, 'update', 2, 2000);
         PRAGMA user_version = 2;",
    )
    .unwrap();
    drop(old);
    let store = RegisterStore::open(&path).unwrap();
    let (_, trail) = store.show(&id(1).to_string()).unwrap();
    assert_eq!(
        trail.iter().map(|e| (e.action.as_str(), e.job.as_deref().unwrap())).collect::<Vec<_>>(),
        [("create", "job-1"), ("update", "job-2")]
    );
    let feed = changes(&store, ChangeQuery { latest: true, ..query(0) });
    // The creates are numbered after what the trail held (so `one`'s latest is its create): each still
    // carries the object as it is.
    assert_eq!(feed.iter().map(|c| c.2.as_str()).collect::<Vec<_>>(), ["one", "two"], "each object once: {feed:?}");
    assert_eq!(changes(&store, query(0)).len(), 3);
    drop(store);
    assert_eq!(changes(&RegisterStore::open(&path).unwrap(), query(0)).len(), 3, "opening it again adds nothing");
}
