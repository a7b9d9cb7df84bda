//! A synchronization from the fixture API into the register: the lifecycle of objects across runs.

use serde_json::json;
use syncline::diff::contracts::ContractTable;
use syncline::pipeline::RunOptions;
use syncline::store::JobStatus;

use crate::common::{Harness, Sync, counts};

#[tokio::test]
async fn first_run_creates_rerun_is_unchanged_and_changes_are_exact() {
    let h = Harness::new(30).await;
    let first = h.run().await;
    assert_eq!(first.job.status, JobStatus::Completed, "{:?}", first.job.error);
    assert_eq!(counts(&first), (30, 30, 0, 0, 0, 0));
    assert_eq!(h.register(), h.expected());

    let again = h.run().await;
    assert_eq!(counts(&again), (30, 0, 0, 30, 0, 0), "a re-run with nothing changed writes nothing");

    h.fixture.store.update(5, |p| p["name"] = json!("Renamed"));
    let changed = h.run().await;
    assert_eq!(counts(&changed), (30, 0, 1, 29, 0, 0));
    assert_eq!(h.register()["5"]["title"], "Renamed");

    h.fixture.store.remove(9);
    let removed = h.run().await;
    assert_eq!(counts(&removed), (29, 0, 0, 29, 1, 0));
    assert_eq!(h.register(), h.expected());
}

#[tokio::test]
async fn a_changed_mapping_updates_every_object() {
    let h = Harness::new(12).await;
    h.run().await;
    h.write(&Sync {
        mapping: r#"{ title: "{{ name|upper }}", category: "{{ category.name }}", status: "{{ status }}" }"#.into(),
        ..Sync::default()
    });
    let report = h.run().await;
    assert_eq!(counts(&report), (12, 0, 12, 0, 0, 0));
    assert_eq!(h.register()["7"]["title"], "BELLA");
}

#[tokio::test]
async fn a_removed_contract_recreates_the_same_object() {
    let h = Harness::new(10).await;
    h.run().await;
    let before = h.state.register().unwrap().show(&target_of(&h, "3").await).unwrap().0;
    let mut table = ContractTable::load(&h.state, "pets").await.unwrap();
    let row = table.find("3").unwrap();
    table.remove(row);
    table.save(&h.state, "pets").await.unwrap();

    let report = h.run().await;
    assert_eq!(counts(&report), (10, 1, 0, 9, 0, 0));
    let after = h.state.register().unwrap().show(&before.id).unwrap();
    assert_eq!(after.0.id, before.id, "same target id");
    assert_eq!(h.register().len(), 10, "no duplicate");
    let actions: Vec<String> = after.1.iter().map(|a| a.action.clone()).collect();
    assert_eq!(actions, ["create", "update"], "the re-created write lands on the existing object");
}

async fn target_of(h: &Harness, origin: &str) -> String {
    let table = ContractTable::load(&h.state, "pets").await.unwrap();
    table.target_id(table.find(origin).unwrap()).to_string()
}

#[tokio::test]
async fn a_wrong_results_position_finds_nothing_and_says_so() {
    let h = Harness::with(
        10,
        Sync { source_config: r#"{ endpoint: "/feed/page", idPosition: id, resultsPosition: items }"#.into(), ..Sync::default() },
    )
    .await;
    let report = h.run().await;
    assert_eq!(report.job.counts.found, 0);
    let warning = report.warnings.iter().find(|w| w.contains("resultsPosition `items`")).expect("a warning names resultsPosition");
    assert!(warning.contains("data.items"), "it says where the records are: {warning}");
}

#[tokio::test]
async fn a_schema_violation_fails_that_record_naming_the_field() {
    let h = Harness::new(8).await;
    h.fixture.store.update(4, |p| p["status"] = json!("lost"));
    h.write(&Sync {
        mapping: r#"{ title: "{{ name }}", category: "{{ category.name }}", status: "{{ status }}", extra: "x" }"#.into(),
        ..Sync::default()
    });
    let report = h.run().await;
    // Every record broken: each failed alone, and the run that did nothing it was asked is FAILED.
    assert_eq!(report.job.status, JobStatus::Failed);
    assert_eq!(report.job.error_category.as_deref(), Some("records"));
    assert_eq!(report.job.counts.failed, 8);
    let errors = h.state.jobs().unwrap().errors(&report.job.id, 10).unwrap();
    assert!(errors.iter().all(|e| e.message.contains("schema does not allow field `extra`")), "{errors:?}");

    h.write(&Sync::default());
    let report = h.run().await;
    assert_eq!(report.job.status, JobStatus::Completed, "a broken record fails that record, not the run");
    assert_eq!((report.job.counts.created, report.job.counts.failed), (7, 1));
    let errors = h.state.jobs().unwrap().errors(&report.job.id, 10).unwrap();
    assert_eq!(errors[0].origin_id, "4");
    assert!(errors[0].message.contains("/status"), "{}", errors[0].message);
    assert!(!h.register().contains_key("4"));
}

#[tokio::test]
async fn every_pagination_style_reads_the_whole_feed() {
    let styles = [
        r#"{ endpoint: "/feed/page", idPosition: id, resultsPosition: data.items, pagination: { type: page, sizeParam: size, size: 6 } }"#,
        r#"{ endpoint: "/feed/page?size=6", idPosition: id, resultsPosition: data.items, pagination: { type: page } }"#,
        r#"{ endpoint: "/feed/offset", idPosition: id, resultsPosition: items, pagination: { type: offset, size: 50 } }"#,
        r#"{ endpoint: "/feed/next?limit=6", idPosition: id, resultsPosition: results, pagination: { type: next, path: links.next } }"#,
        r#"{ endpoint: "/feed/link?per_page=6", idPosition: id, resultsPosition: _root, pagination: { type: link } }"#,
        r#"{ endpoint: "/feed/cursor?limit=6", idPosition: id, resultsPosition: data, pagination: { type: cursor, path: meta.next_cursor } }"#,
        r#"{ endpoint: "/pet/findByStatus", idPosition: id, resultsPosition: _root, usesPagination: "true", paginationQuery: page }"#,
    ];
    for style in styles {
        let h = Harness::with(40, Sync { source_config: style.into(), ..Sync::default() }).await;
        let report = h.run().await;
        assert_eq!(report.job.status, JobStatus::Completed, "{style}: {:?}", report.job.error);
        assert_eq!(report.job.counts.found, 40, "{style}: {:?}", report.warnings);
        assert_eq!(h.register(), h.expected(), "{style}");
    }
}

#[tokio::test]
async fn max_pages_cuts_the_feed_and_then_nothing_is_deleted() {
    let h = Harness::new(30).await;
    h.run().await;
    h.write(&Sync {
        source_config: r#"{ endpoint: "/feed/page", idPosition: id, resultsPosition: data.items, maxPages: 2, pagination: { type: page, sizeParam: size, size: 7 } }"#.into(),
        ..Sync::default()
    });
    let report = h.run().await;
    assert_eq!(report.job.status, JobStatus::Completed);
    assert_eq!((report.job.counts.found, report.job.counts.deleted), (14, 0));
    assert!(report.warnings.iter().any(|w| w.contains("maxPages")), "{:?}", report.warnings);
    assert_eq!(h.register().len(), 30);
}

#[tokio::test]
async fn the_filter_skips_records_without_deleting_them() {
    let filter = r#"filter: '{{ status == "available" }}'"#;
    let h = Harness::with(30, Sync { extra: filter.into(), ..Sync::default() }).await;
    let report = h.run().await;
    assert_eq!((report.job.counts.created, report.job.counts.skipped), (20, 10));
    assert!(h.register().values().all(|o| o["status"] == "available"));

    // An object written before becomes filtered out: skipped, and still there.
    h.fixture.store.update(1, |p| p["status"] = json!("sold"));
    let report = h.run().await;
    assert_eq!((report.job.counts.skipped, report.job.counts.deleted), (11, 0));
    assert!(h.register().contains_key("1"));
}

#[tokio::test]
async fn the_delete_guard_refuses_mass_deletes_unless_allowed() {
    let h = Harness::new(20).await;
    h.run().await;
    for id in 1..=15 {
        h.fixture.store.remove(id);
    }
    let refused = h.run().await;
    assert_eq!(refused.job.status, JobStatus::Failed);
    assert_eq!(refused.job.error_category.as_deref(), Some("delete_guard"));
    assert!(refused.job.error.as_deref().unwrap_or("").contains("refusing to delete 15 of 20"));
    assert_eq!(h.register().len(), 20, "nothing deleted");

    let allowed = h.run_with(RunOptions { allow_mass_delete: true, ..RunOptions::default() }).await;
    assert_eq!((allowed.job.status, allowed.job.counts.deleted), (JobStatus::Completed, 15));
    assert_eq!(h.register(), h.expected());
}

#[tokio::test]
async fn soft_delete_keeps_the_object_marked_and_a_return_revives_it() {
    let h = Harness::with(10, Sync { extra: "deletePolicy: soft-delete".into(), ..Sync::default() }).await;
    h.run().await;
    let removed = h.fixture.store.pets.read().unwrap().iter().find(|p| p["id"] == 2).cloned().unwrap();
    h.fixture.store.remove(2);
    let report = h.run().await;
    assert_eq!(report.job.counts.deleted, 1);
    assert!(!h.register().contains_key("2"), "not listed as live");
    let id = syncline::diff::contracts::target_id(&syncline::diff::contracts::target_namespace(), "pets", "2").to_string();
    let (object, trail) = h.state.register().unwrap().show(&id).unwrap();
    assert!(object.deleted_at.is_some());
    assert_eq!(trail.last().unwrap().action, "soft-delete");

    h.fixture.store.pets.write().unwrap().push(removed);
    let report = h.run().await;
    assert_eq!(report.job.counts.created, 1);
    assert_eq!(h.register(), h.expected());
}

#[tokio::test]
async fn a_dry_run_writes_nothing() {
    let h = Harness::new(10).await;
    let dry = h.run_with(RunOptions { dry_run: true, ..RunOptions::default() }).await;
    assert_eq!(counts(&dry), (10, 10, 0, 0, 0, 0));
    assert!(h.register().is_empty());
    assert_eq!(ContractTable::load(&h.state, "pets").await.unwrap().committed(), 0);
    let real = h.run().await;
    assert_eq!(real.job.counts.created, 10);
}

#[tokio::test]
async fn force_full_sync_rewrites_every_object() {
    let h = Harness::new(10).await;
    h.run().await;
    let forced = h.run_with(RunOptions { force_full_sync: true, ..RunOptions::default() }).await;
    assert_eq!(counts(&forced), (10, 0, 10, 0, 0, 0));
}

#[tokio::test]
async fn objects_keep_provenance_and_an_audit_trail() {
    let h = Harness::new(5).await;
    let first = h.run().await;
    h.fixture.store.update(2, |p| p["name"] = json!("Changed"));
    let second = h.run().await;
    let id = syncline::diff::contracts::target_id(&syncline::diff::contracts::target_namespace(), "pets", "2").to_string();
    let (object, trail) = h.state.register().unwrap().show(&id[..8]).unwrap();
    assert_eq!(
        (object.synchronization.as_deref(), object.source.as_deref(), object.origin_id.as_deref()),
        (Some("pets"), Some("pets"), Some("2"))
    );
    let jobs: Vec<(String, String)> = trail.iter().map(|a| (a.action.clone(), a.job.clone().unwrap())).collect();
    assert_eq!(jobs, [("create".to_string(), first.job.id), ("update".to_string(), second.job.id)]);
}
