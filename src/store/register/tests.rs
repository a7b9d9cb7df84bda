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
