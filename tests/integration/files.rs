//! The file source on a local folder: CSV, NDJSON, JSON, xlsx (written by a real spreadsheet writer),
//! ods (a LibreOffice file in `fixtures/`) and Parquet (written by the arrow writer).

use std::sync::Arc;

use serde_json::json;
use syncline::pipeline::RunOptions;

use crate::common::counts;
use crate::workspace::{Workspace, completed, write_file};

const PETS_CSV: &str = "id,name,postcode,weight,vaccinated\n1,Rex,01234,12.5,true\n2,Tom,99999,4,false\n3,Kit,,3.25,true\n";

fn csv_workspace() -> Workspace {
    let ws = Workspace::new();
    let data = ws.data();
    write_file(&data, "exports/pets.csv", PETS_CSV.as_bytes(), 600);
    ws.write(&format!("{{ type: file, location: \"{}\" }}", data.display()), r#"{ path: "exports/*.csv", idPosition: id }"#);
    ws
}

#[tokio::test]
async fn csv_create_rerun_update_delete() {
    let ws = csv_workspace();
    let first = ws.run().await;
    completed(&first);
    assert_eq!(counts(&first), (3, 3, 0, 0, 0, 0));
    let objects = ws.objects();
    // Columns are typed from the sample; a postcode keeps its leading zero; an empty cell is null.
    assert_eq!(objects["1"], json!({"id": 1, "name": "Rex", "postcode": "01234", "weight": 12.5, "vaccinated": true}));
    assert_eq!(objects["3"]["postcode"], json!(null));

    assert_eq!(counts(&ws.run().await), (3, 0, 0, 3, 0, 0), "an unchanged file writes nothing");

    let data = ws.data();
    write_file(&data, "exports/pets.csv", b"id,name,postcode,weight,vaccinated\n1,Rex,01234,13,true\n2,Tom,99999,4,false\n", 300);
    let edited = ws.run().await;
    completed(&edited);
    assert_eq!(counts(&edited), (2, 0, 1, 1, 1, 0), "one row edited, one removed");
    assert_eq!(ws.objects()["1"]["weight"], json!(13));
    assert!(!ws.objects().contains_key("3"));
}

#[tokio::test]
async fn a_malformed_row_fails_alone_and_blocks_deletes() {
    let ws = csv_workspace();
    completed(&ws.run().await);
    let data = ws.data();
    // Line 3 has a field too few; row 3 is gone, but with an unreadable row nothing may be deleted.
    write_file(&data, "exports/pets.csv", b"id,name,postcode,weight,vaccinated\n1,Rex,01234,12.5,true\n2,Tom,99999\n", 300);
    let report = ws.run().await;
    completed(&report);
    assert_eq!(counts(&report), (2, 0, 0, 1, 0, 1));
    let errors = ws.state.jobs().unwrap().errors(&report.job.id, 10).unwrap();
    assert!(errors[0].message.contains("line 3 of") && errors[0].message.contains("pets.csv"), "{:?}", errors[0]);
    assert!(errors[0].message.contains("has 3 field(s), the header has 5"), "{:?}", errors[0]);
    assert!(report.warnings.iter().any(|w| w.contains("no objects were deleted")), "{:?}", report.warnings);
    assert_eq!(ws.objects().len(), 3);
}

#[tokio::test]
async fn csv_options_delimiter_encoding_and_text_columns() {
    let ws = Workspace::new();
    let data = ws.data();
    // "Café" in windows-1252, semicolons, and every value kept as text.
    let mut bytes = b"code;name\n007;Caf".to_vec();
    bytes.push(0xE9);
    bytes.extend_from_slice(b"\n008;Bar\n");
    write_file(&data, "menu.csv", &bytes, 600);
    let location = data.join("menu.csv");
    ws.write(
        &format!("{{ type: file, location: \"{}\" }}", location.display()),
        r#"{ idPosition: code, delimiter: ";", encoding: windows-1252, columnTypes: text }"#,
    );
    let report = ws.run().await;
    completed(&report);
    assert_eq!(ws.objects()["007"], json!({"code": "007", "name": "Café"}));
}

#[tokio::test]
async fn ndjson_and_json_documents_with_results_position() {
    let ws = Workspace::new();
    let data = ws.data();
    write_file(&data, "a.ndjson", b"{\"id\": 1, \"n\": \"a\"}\n\n{\"id\": 2, \"n\": \"b\"}\nnot json\n", 600);
    ws.write(&format!("{{ type: file, location: \"{}\" }}", data.display()), r#"{ path: "*.ndjson", idPosition: id }"#);
    let report = ws.run().await;
    assert_eq!(counts(&report), (3, 2, 0, 0, 0, 1));
    let errors = ws.state.jobs().unwrap().errors(&report.job.id, 10).unwrap();
    assert!(errors[0].message.starts_with("line 4 of"), "{:?}", errors[0]);

    let ws = Workspace::new();
    let data = ws.data();
    write_file(&data, "page.json", br#"{"data": {"items": [{"id": "x", "v": 1}, {"id": "y", "v": 2}]}}"#, 600);
    ws.write(
        &format!("{{ type: file, location: \"{}\" }}", data.join("page.json").display()),
        r#"{ idPosition: id, resultsPosition: data.items }"#,
    );
    let report = ws.run().await;
    completed(&report);
    assert_eq!(ws.objects()["y"], json!({"id": "y", "v": 2}));
}

#[tokio::test]
async fn incremental_runs_read_only_new_files_and_delete_nothing() {
    let ws = Workspace::new();
    let data = ws.data();
    write_file(&data, "in/1.csv", b"id,v\n1,a\n2,b\n", 3600);
    ws.write(&format!("{{ type: file, location: \"{}\" }}", data.display()), r#"{ path: "in/*.csv", idPosition: id, incremental: true }"#);
    assert_eq!(counts(&ws.run().await), (2, 2, 0, 0, 0, 0));
    write_file(&data, "in/2.csv", b"id,v\n3,c\n", 60);
    let report = ws.run().await;
    completed(&report);
    // The newest file read before is read again (same instant is never lost), then the new one.
    assert_eq!(counts(&report), (3, 1, 0, 2, 0, 0));
    std::fs::remove_file(data.join("in/1.csv")).unwrap();
    let report = ws.run().await;
    assert_eq!(counts(&report), (1, 0, 0, 1, 0, 0), "an incremental run deletes nothing");
    let full = ws.run_with(RunOptions { force_full_sync: true, ..RunOptions::default() }).await;
    assert_eq!(full.job.counts.deleted, 2, "a full sync deletes what is gone");
}

#[tokio::test]
async fn minimum_age_skips_files_being_written() {
    let ws = Workspace::new();
    let data = ws.data();
    write_file(&data, "old.csv", b"id\n1\n", 600);
    write_file(&data, "fresh.csv", b"id\n2\n", 0);
    ws.write(&format!("{{ type: file, location: \"{}\" }}", data.display()), r#"{ path: "*.csv", idPosition: id, minimumAge: 1m }"#);
    let report = ws.run().await;
    assert_eq!(counts(&report), (1, 1, 0, 0, 0, 0));
}

fn write_xlsx(path: &std::path::Path, rows: &[(i64, &str, f64)]) {
    use rust_xlsxwriter::{ExcelDateTime, Format, Workbook};
    let mut book = Workbook::new();
    let notes = book.add_worksheet().set_name("Notes").unwrap();
    notes.write(0, 0, "not data").unwrap();
    let sheet = book.add_worksheet().set_name("Pets").unwrap();
    let date = Format::new().set_num_format("yyyy-mm-dd");
    for (col, title) in ["id", "name", "weight", "born"].iter().enumerate() {
        sheet.write(0, col as u16, *title).unwrap();
    }
    for (i, (id, name, weight)) in rows.iter().enumerate() {
        // A blank row in the middle: skipped.
        let row = (i as u32) + if i >= 1 { 2 } else { 1 };
        sheet.write(row, 0, *id as f64).unwrap();
        sheet.write(row, 1, *name).unwrap();
        sheet.write(row, 2, *weight).unwrap();
        sheet.write_with_format(row, 3, ExcelDateTime::from_ymd(2020, 1, 1 + i as u8).unwrap(), &date).unwrap();
    }
    book.save(path).unwrap();
}

#[tokio::test]
async fn xlsx_sheets_dates_numbers_and_a_wrong_sheet() {
    let ws = Workspace::new();
    let data = ws.data();
    let book = data.join("pets.xlsx");
    write_xlsx(&book, &[(1, "Rex", 12.5), (2, "Tom", 4.0)]);
    ws.write(&format!("{{ type: excel, location: \"{}\" }}", book.display()), r#"{ idPosition: id, sheet: Pets }"#);
    let report = ws.run().await;
    completed(&report);
    assert_eq!(counts(&report), (2, 2, 0, 0, 0, 0));
    assert_eq!(ws.objects()["1"], json!({"id": 1, "name": "Rex", "weight": 12.5, "born": "2020-01-01"}));
    assert_eq!(ws.objects()["2"]["weight"], json!(4), "whole numbers are integers");
    assert_eq!(counts(&ws.run().await), (2, 0, 0, 2, 0, 0));

    ws.write(&format!("{{ type: excel, location: \"{}\" }}", book.display()), r#"{ idPosition: id, sheet: Dogs }"#);
    let report = ws.run().await;
    assert_eq!(report.job.status.as_str(), "FAILED");
    assert_eq!(report.job.error_category.as_deref(), Some("format"));
    let error = report.job.error.unwrap();
    assert!(error.contains("no sheet `Dogs`; the workbook has `Notes`, `Pets`"), "{error}");
    assert_eq!(ws.objects().len(), 2, "a failed read deletes nothing");
}

#[tokio::test]
async fn ods_from_fixtures_with_range_and_header_row() {
    let ws = Workspace::new();
    let book = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/pets.ods");
    ws.write(&format!("{{ type: excel, location: \"{}\" }}", book.display()), r#"{ idPosition: id, headerRow: 3, range: "A3:C10" }"#);
    let report = ws.run().await;
    completed(&report);
    assert_eq!(counts(&report), (3, 3, 0, 0, 0, 0));
    assert_eq!(ws.objects()["2"], json!({"id": 2, "name": "Tom", "born": "2021-06-30"}));
}

#[tokio::test]
async fn parquet_columns_arrive_typed() {
    use arrow::array::{Float64Array, Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use arrow::record_batch::RecordBatch;
    let ws = Workspace::new();
    let data = ws.data();
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
        Field::new("weight", DataType::Float64, true),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from(vec![1, 2])),
            Arc::new(StringArray::from(vec![Some("Rex"), None])),
            Arc::new(Float64Array::from(vec![12.5, 4.0])),
        ],
    )
    .unwrap();
    let file = std::fs::File::create(data.join("pets.parquet")).unwrap();
    let mut writer = parquet::arrow::ArrowWriter::try_new(file, schema, None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    ws.write(&format!("{{ type: file, location: \"{}\" }}", data.display()), r#"{ path: "*.parquet", idPosition: id }"#);
    let report = ws.run().await;
    completed(&report);
    assert_eq!(ws.objects()["1"], json!({"id": 1, "name": "Rex", "weight": 12.5}));
    assert_eq!(ws.objects()["2"]["name"], json!(null));
}

#[tokio::test]
async fn a_missing_folder_fails_the_job_and_deletes_nothing() {
    let ws = csv_workspace();
    completed(&ws.run().await);
    std::fs::remove_dir_all(ws.data()).unwrap();
    let report = ws.run().await;
    assert_eq!(report.job.status.as_str(), "FAILED");
    assert_eq!(ws.objects().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_csv_over_https_style_urls_through_the_http_store() {
    use axum::http::header;
    let app = axum::Router::new().route(
        "/exports/pets.csv",
        axum::routing::get(|| async {
            ([(header::CONTENT_TYPE, "text/csv"), (header::LAST_MODIFIED, "Mon, 02 Nov 2026 10:00:00 GMT")], PETS_CSV)
        }),
    );
    let (addr, server) = crate::common::serve(app).await;
    let port = addr.port();
    let ws = Workspace::new();
    ws.write(&format!("{{ type: file, location: \"http://127.0.0.1:{port}/exports/pets.csv\" }}"), "{ idPosition: id }");
    let report = ws.run().await;
    completed(&report);
    assert_eq!(counts(&report), (3, 3, 0, 0, 0, 0));
    assert_eq!(ws.objects()["2"]["name"], json!("Tom"));
    server.abort();
}
