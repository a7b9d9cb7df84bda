//! Pipeline files a user (or whoever can write one) hands over: YAML alias bombs and nesting a
//! hundred thousand deep, names that would become paths outside the state directory, and schema files
//! outside the pipeline's folder. Each is refused by `validate` and `run` alike with exit code 2, an
//! error naming the file, line or key, in flat memory, and nothing outside the state is touched.

use std::path::Path;

use super::{Case, Ran, file_pipeline, syncline_async};

/// `syncline validate FILE` and `syncline run FILE` of the pipeline file `text`.
async fn validate_and_run(case: &Case, text: &str) -> [Ran; 2] {
    let file = case.pipeline(text);
    let validated = syncline_async(&case.state(), &["validate", &file], &[]).await;
    let ran = syncline_async(&case.state(), &["run", &file], &[]).await;
    [validated, ran]
}

/// A working pipeline reading `data.csv` beside it.
fn working_pipeline(case: &Case) -> String {
    let data = case.path("data.csv");
    std::fs::write(&data, "id,name\n1,Rex\n").unwrap();
    file_pipeline(&data.display().to_string(), "", "")
}

/// Nine levels of nine aliases each: 9^9 (387 million) values from nine short lines.
fn billion_laughs() -> String {
    let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
    let mut text = format!("a: &a [{}]\n", ["\"lol\""; 9].join(", "));
    for pair in names.windows(2) {
        let (previous, name) = (pair[0], pair[1]);
        text.push_str(&format!("{name}: &{name} [{}]\n", std::iter::repeat_n(format!("*{previous}"), 9).collect::<Vec<_>>().join(", ")));
    }
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_billion_laughs_pipeline_is_refused_at_its_line_in_flat_memory() {
    // Lines 1–6 make some 670,000 values; the first alias on line 7 would pass a million.
    let case = Case::new();
    let text = format!("{}{}", billion_laughs(), working_pipeline(&case));
    for ran in validate_and_run(&case, &text).await {
        ran.expect(2, 200).says("pipeline.yaml:7:").says("more than 1000000 values");
    }
}

/// `levels` flow sequences nested around a number, under the key `a`.
fn nested_flow(levels: usize) -> String {
    format!("a: {}1{}\n", "[".repeat(levels), "]".repeat(levels))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequences_nested_100000_deep_are_refused_in_block_and_flow_style() {
    let case = Case::new();
    for ran in validate_and_run(&case, &format!("{}1\n", "- ".repeat(100_000))).await {
        ran.expect(2, 200).says("pipeline.yaml:1:").says("the file nests deeper than 128 levels");
    }
    // Within the scanner's own 255 flow levels the pipeline's bound of 128 is what refuses.
    let case = Case::new();
    for ran in validate_and_run(&case, &nested_flow(200)).await {
        ran.expect(2, 200).says("pipeline.yaml:1:").says("the file nests deeper than 128 levels");
    }
    // 100,000 deep: the outer `[` may yet be a key (`[…]: v`), so the scanner reads ahead inside it
    // before handing out a token and stops at its 256th level ("recursion limit exceeded"), before
    // the pipeline's bound sees 128. Either way: refused at line 1, in flat memory.
    let case = Case::new();
    for ran in validate_and_run(&case, &nested_flow(100_000)).await {
        ran.expect(2, 200).says("pipeline.yaml:1:");
        assert!(ran.out.contains("deeper than 128 levels") || ran.out.contains("recursion limit exceeded"), "{}", ran.out);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_synchronization_named_like_a_path_is_refused_and_deletes_nothing() {
    let case = Case::new();
    let data = case.path("data.csv");
    std::fs::write(&data, "id,name\n1,Rex\n").unwrap();
    // Where the journal of `../../victim` would have been: <state>/contracts/../../victim.created.ndjson.
    let victim = case.path("victim.created.ndjson");
    std::fs::write(&victim, "{\"keep\":\"me\"}\n").unwrap();
    std::fs::create_dir_all(case.state().join("contracts")).unwrap();
    let aimed = case.state().join("contracts").join("../../victim.created.ndjson");
    assert_eq!(std::fs::canonicalize(&aimed).unwrap(), std::fs::canonicalize(&victim).unwrap());
    let pipeline = format!(
        r#"
sources:
  up: {{ type: file, location: "{}" }}
mappings:
  m: {{ mapping: {{}}, passThrough: true }}
registers:
  r:
    schemas:
      s: {{ type: object }}
synchronizations:
  "../../victim":
    source: up
    sourceConfig: {{ idPosition: id }}
    mapping: m
    target: {{ type: register, register: r, schema: s }}
"#,
        data.display()
    );
    for ran in validate_and_run(&case, &pipeline).await {
        ran.expect(2, 200).says("synchronizations.../../victim: `../../victim` is not a name");
    }
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "{\"keep\":\"me\"}\n", "the file outside the state is untouched");
}

/// A pipeline whose source, mapping, register, schema and synchronization have these names.
fn named(source: &str, mapping: &str, register: &str, schema: &str, sync: &str) -> String {
    format!(
        r#"
sources:
  {source:?}: {{ type: file, location: data.csv }}
mappings:
  {mapping:?}: {{ mapping: {{}}, passThrough: true }}
registers:
  {register:?}:
    schemas:
      {schema:?}: {{ type: object }}
synchronizations:
  {sync:?}:
    source: {source:?}
    sourceConfig: {{ idPosition: id }}
    mapping: {mapping:?}
    target: {{ type: register, register: {register:?}, schema: {schema:?} }}
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_that_are_not_identifiers_are_refused_by_key() {
    let cases = [
        ("sources.a/b", "a/b", named("a/b", "m", "r", "s", "s")),
        ("mappings..hidden", ".hidden", named("up", ".hidden", "r", "s", "s")),
        ("registers.my register", "my register", named("up", "m", "my register", "s", "s")),
        ("registers.r.schemas.../s", "../s", named("up", "m", "r", "../s", "s")),
        ("synchronizations.-flag", "-flag", named("up", "m", "r", "s", "-flag")),
    ];
    for (key, name, pipeline) in cases {
        let case = Case::new();
        let file = case.pipeline(&pipeline);
        let ran = syncline_async(&case.state(), &["validate", &file], &[]).await;
        ran.expect(2, 200).says(&format!("{key}: `{name}` is not a name"));
    }
    // The same pipeline with identifiers for names is fine.
    let case = Case::new();
    let file = case.pipeline(&named("up", "m", "r", "s", "pets-to-register.v2"));
    syncline_async(&case.state(), &["validate", &file], &[]).await.expect(0, 200).says("OK");
}

/// A pipeline in `folder` whose schema `s` is `{$ref: reference}`.
fn with_schema_file(folder: &Path, reference: &str) -> String {
    let file = folder.join("pipeline.yaml");
    let text = format!(
        r#"
sources:
  up: {{ type: file, location: data.csv }}
mappings:
  m: {{ mapping: {{}}, passThrough: true }}
registers:
  r:
    schemas:
      s: {{ $ref: "{reference}" }}
synchronizations:
  s:
    source: up
    sourceConfig: {{ idPosition: id }}
    mapping: m
    target: {{ type: register, register: r, schema: s }}
"#
    );
    std::fs::write(&file, text).unwrap();
    file.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_ref_outside_the_pipeline_folder_is_refused() {
    // <tmp>/pipelines/pipeline.yaml, with readable schema files both beside it and above it.
    let case = Case::new();
    let folder = case.path("pipelines");
    std::fs::create_dir_all(&folder).unwrap();
    let outside = case.path("outside.json");
    std::fs::write(&outside, r#"{"type": "object"}"#).unwrap();
    std::fs::write(folder.join("inside.json"), r#"{"type": "object"}"#).unwrap();
    for reference in ["../outside.json".to_string(), outside.display().to_string(), "./../outside.json".to_string()] {
        let file = with_schema_file(&folder, &reference);
        let ran = syncline_async(&case.state(), &["validate", &file], &[]).await;
        ran.expect(2, 200)
            .says("registers.r.schemas.s: ")
            .says(&format!("`$ref: {reference}` must name a file inside the pipeline file's folder"));
    }
    let file = with_schema_file(&folder, "inside.json");
    syncline_async(&case.state(), &["validate", &file], &[]).await.expect(0, 200).says("OK");
}
