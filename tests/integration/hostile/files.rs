//! Files an upstream drops: NDJSON and CSV with huge or deep lines and fields, compressed files and
//! compression bombs, documents over their size limit.

use std::io::Write;

use super::{Case, deep_object, file_pipeline};

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn errors(case: &Case) -> Vec<String> {
    let state = syncline::store::StateDir::open(&case.state()).unwrap();
    state.jobs().unwrap().errors(&case.job().id, 100).unwrap().into_iter().map(|e| e.message).collect()
}

fn ids(case: &Case) -> Vec<String> {
    case.objects().into_iter().map(|(id, _)| id).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ndjson_line_over_the_record_limit_fails_alone_with_flat_memory() {
    let case = Case::new();
    let path = case.path("feed.ndjson");
    let huge = format!(r#"{{"id":2,"pad":"{}"}}"#, "p".repeat(40_000_000));
    std::fs::write(&path, format!("{{\"id\":1}}\n{huge}\n{{\"id\":3}}\n")).unwrap();
    case.run(&file_pipeline(&path.display().to_string(), "", "")).await.expect(0, 200);
    assert_eq!(ids(&case), ["1", "3"]);
    assert!(errors(&case).iter().any(|e| e.contains("line 2") && e.contains("maxRecordBytes (16 MiB)")), "{:?}", errors(&case));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ndjson_lines_deep_or_broken_fail_alone() {
    let case = Case::new();
    let path = case.path("feed.ndjson");
    std::fs::write(&path, format!("{{\"id\":1}}\n{{\"id\":2,\"d\":{}}}\n{{\"id\":3,\n{{\"id\":4}}\n", deep_object(50_000))).unwrap();
    case.run(&file_pipeline(&path.display().to_string(), "", "")).await.expect(0, 200);
    assert_eq!(ids(&case), ["1", "4"]);
    let errors = errors(&case);
    assert!(errors.iter().any(|e| e.contains("line 2") && e.contains("nested deeper than 128 levels")), "{errors:?}");
    assert!(errors.iter().any(|e| e.contains("line 3") && e.contains("malformed JSON")), "{errors:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_with_terminal_escapes_print_inert() {
    let case = Case::new();
    let path = case.path("feed.ndjson");
    // An id that would retitle the terminal and clear the screen, on a record that fails.
    let id = "\u{1b}]0;pwned\u{7}\u{1b}[2Jx";
    std::fs::write(&path, format!("{{\"id\":{}}}\n", serde_json::to_string(id).unwrap())).unwrap();
    // A mapping that fails the record, which the run then reports by its id.
    let failing = super::pipeline(&format!("type: file\nlocation: \"{}\"", path.display()), r#"{ n: "{{ 1 // 0 }}" }"#, "idPosition: id");
    let ran = case.run(&failing).await;
    ran.expect(1, 200).says("failed ?]0;pwned??[2Jx: ");
    assert!(!ran.out.contains('\u{1b}'), "an escape reached the terminal");
    // Nor through the log, whose job lines quote the failure.
    let file = case.pipeline(&failing);
    let logged = super::syncline_async(&case.state(), &["run", &file], &[("RUST_LOG", "trace")]).await;
    assert!(logged.out.contains("syncline::job") && logged.out.contains("pwned"), "the job's lines quote it: {}", logged.out);
    assert!(!logged.out.contains('\u{1b}') && !logged.out.contains('\u{7}'), "an escape reached the terminal through the log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_that_start_with_a_byte_order_mark_read_as_without() {
    for (name, text) in [
        ("feed.csv", "id,name\n1,Bella\n2,Max\n"),
        ("feed.ndjson", "{\"id\":1,\"name\":\"Bella\"}\n{\"id\":2}\n"),
        ("feed.json", "[{\"id\":1,\"name\":\"Bella\"},{\"id\":2}]"),
    ] {
        let case = Case::new();
        let path = case.path(name);
        std::fs::write(&path, format!("\u{feff}{text}")).unwrap();
        case.run(&file_pipeline(&path.display().to_string(), "", "")).await.expect(0, 200).says("created 2");
        assert_eq!(ids(&case), ["1", "2"], "{name}");
        assert_eq!(case.objects()[0].1["name"], "Bella", "{name}");
        // Read again: nothing changed, nothing deleted.
        case.run(&file_pipeline(&path.display().to_string(), "", "")).await.expect(0, 200).says("unchanged 2");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_csv_field_of_200_mb_fails_its_row_without_being_held() {
    let case = Case::new();
    let path = case.path("feed.csv");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    writeln!(file, "id,name").unwrap();
    writeln!(file, "1,first").unwrap();
    write!(file, "2,\"").unwrap();
    let block = "q".repeat(1 << 20);
    for _ in 0..200 {
        file.write_all(block.as_bytes()).unwrap();
    }
    writeln!(file, "\"").unwrap();
    writeln!(file, "3,third").unwrap();
    drop(file);
    case.run(&file_pipeline(&path.display().to_string(), "", "")).await.expect(0, 200);
    assert_eq!(ids(&case), ["1", "3"]);
    assert!(errors(&case).iter().any(|e| e.contains("line 3") && e.contains("maxRecordBytes")), "{:?}", errors(&case));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_fields_and_rows_are_held_to_their_own_limits() {
    let case = Case::new();
    let path = case.path("feed.csv");
    // A field over maxFieldBytes, then a row of small fields over maxRecordBytes across quoted lines.
    let lines = format!("id,a,b\n1,x,y\n2,{},y\n3,\"{}\",\"{}\"\n4,x,y\n", "f".repeat(3000), "l\n".repeat(1500), "m\n".repeat(1500));
    std::fs::write(&path, lines).unwrap();
    let pipeline = file_pipeline(&path.display().to_string(), "limits: { maxFieldBytes: 2KiB, maxRecordBytes: 4KiB }", "");
    case.run(&pipeline).await.expect(0, 200);
    assert_eq!(ids(&case), ["1", "4"]);
    let errors = errors(&case);
    assert!(errors.iter().any(|e| e.contains("line 3") && e.contains("field 2") && e.contains("maxFieldBytes (2 KiB)")), "{errors:?}");
    assert!(errors.iter().any(|e| e.contains("line 4") && e.contains("maxRecordBytes (4 KiB)")), "{errors:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gzipped_csv_is_read_decompressed() {
    let case = Case::new();
    let path = case.path("feed.csv.gz");
    std::fs::write(&path, gzip(b"id,name\n1,Bella\n2,Max\n")).unwrap();
    case.run(&file_pipeline(&path.display().to_string(), "", "")).await.expect(0, 200).says("created 2");
    assert_eq!(case.objects()[0].1["name"], "Bella");
    // Named otherwise, and said to be compressed.
    let case = Case::new();
    let path = case.path("feed.dat");
    std::fs::write(&path, gzip(b"id,name\n1,Bella\n")).unwrap();
    case.run(&file_pipeline(&path.display().to_string(), "", ", format: csv, compression: gzip")).await.expect(0, 200).says("created 1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gzip_bomb_stops_at_max_decompressed_bytes() {
    let case = Case::new();
    let path = case.path("bomb.ndjson.gz");
    // 200 MB of one long line of spaces packs into a few hundred kilobytes.
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(b"{\"id\":1}\n").unwrap();
    let spaces = vec![b' '; 1 << 20];
    for _ in 0..200 {
        encoder.write_all(&spaces).unwrap();
    }
    std::fs::write(&path, encoder.finish().unwrap()).unwrap();
    let pipeline = file_pipeline(&path.display().to_string(), "limits: { maxDecompressedBytes: 50MiB }", "");
    case.run(&pipeline).await.expect(1, 200).says("is larger than maxDecompressedBytes (50 MiB)");
    assert_eq!(case.job().error_category.as_deref(), Some("limit"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_document_over_max_file_bytes_is_refused() {
    let case = Case::new();
    let path = case.path("doc.json");
    let records: Vec<String> = (0..50_000).map(|i| format!(r#"{{"id":{i},"pad":"0123456789012345678901234567890123456789"}}"#)).collect();
    std::fs::write(&path, format!("[{}]", records.join(","))).unwrap();
    let pipeline = file_pipeline(&path.display().to_string(), "limits: { maxFileBytes: 1MiB }", ", resultsPosition: _root");
    case.run(&pipeline).await.expect(1, 200).says("is larger than maxFileBytes (1 MiB)");
    assert_eq!(case.objects().len(), 0);
}
