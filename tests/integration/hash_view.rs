//! `sourceHashMapping`: a mapping whose output is hashed instead of the whole record, so a field that
//! changes on every read (a fetch time) alone makes no update; a change in what the view keeps does.

use crate::common::counts;
use crate::workspace::{Workspace, completed};

fn write_rows(ws: &Workspace, rows: &[(u32, &str, &str)]) {
    let csv: String = std::iter::once("id,name,fetched_at\n".to_string())
        .chain(rows.iter().map(|(id, name, at)| format!("{id},{name},{at}\n")))
        .collect();
    std::fs::write(ws.data().join("pets.csv"), csv).unwrap();
}

#[tokio::test]
async fn a_hash_view_ignores_what_it_leaves_out_and_sees_what_it_keeps() {
    let ws = Workspace::new();
    let source = format!("{{ type: file, location: \"{}\" }}", ws.data().join("pets.csv").display());
    ws.write_to(&source, "{ idPosition: id }", "{ type: register, register: r, schema: rows }", "sourceHashMapping: stable");
    // The workspace's pipeline, and the view's mapping beside its pass-through one.
    let text = std::fs::read_to_string(&ws.file).unwrap();
    let text = text.replace("mappings:\n", "mappings:\n  stable:\n    mapping: { id: \"{{ id }}\", name: \"{{ name }}\" }\n");
    std::fs::write(&ws.file, text).unwrap();
    write_rows(&ws, &[(1, "Rex", "10:00"), (2, "Tom", "10:00")]);
    let first = ws.run().await;
    completed(&first);
    assert_eq!(counts(&first), (2, 2, 0, 0, 0, 0));
    write_rows(&ws, &[(1, "Rex", "11:00"), (2, "Tom", "11:00")]);
    assert_eq!(counts(&ws.run().await), (2, 0, 0, 2, 0, 0), "only the fetch time changed: nothing to write");
    write_rows(&ws, &[(1, "Rexy", "12:00"), (2, "Tom", "12:00")]);
    let changed = ws.run().await;
    assert_eq!(counts(&changed), (2, 0, 1, 1, 0, 0), "a name the view keeps changed");
    assert_eq!(ws.objects()["1"]["name"], "Rexy");
}

#[test]
fn a_hash_mapping_that_is_not_there_is_refused_at_load() {
    let ws = Workspace::new();
    ws.write_to(
        "{ type: file, location: \"/tmp\" }",
        "{ idPosition: id }",
        "{ type: register, register: r, schema: rows }",
        "sourceHashMapping: nowhere",
    );
    let errors = syncline::config::Pipeline::load(&ws.file).expect_err("an unknown hash mapping").to_string();
    assert!(errors.contains("synchronizations.sync.sourceHashMapping: no mapping named `nowhere`"), "{errors}");
}
