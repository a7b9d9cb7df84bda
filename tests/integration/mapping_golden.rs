//! The golden table of OpenConnector mapping semantics (`tests/golden/mapping.json`): every case is
//! run, and every failing case is reported by name with what was expected and what came out.

use std::collections::BTreeMap;

use serde_json::Value;
use syncline::config::MappingDef;
use syncline::mapping::Mapping;
use syncline::path::DotPath;

const MAIN: &str = "main";

fn def(value: &Value) -> Result<MappingDef, String> {
    serde_json::from_value(value.clone()).map_err(|e| e.to_string())
}

/// Runs one case: the output, or the error as text.
fn run(case: &Value) -> Result<Value, String> {
    let mut library = BTreeMap::new();
    if let Some(Value::Object(others)) = case.get("library") {
        for (name, value) in others {
            library.insert(name.clone(), def(value)?);
        }
    }
    let main = def(&case["mapping"])?;
    library.insert(MAIN.to_string(), main.clone());
    let mapping = Mapping::compile_in(MAIN, &main, &library).map_err(|e| e.to_string())?;
    let input = &case["input"];
    let output = if case.get("list").and_then(Value::as_bool).unwrap_or(false) { mapping.apply_list(input) } else { mapping.apply(input) };
    output.map_err(|e| e.to_string())
}

/// Checks a value whose content depends on time or chance against a shape.
fn fits(value: &Value, shape: &str) -> bool {
    let Some(text) = value.as_str() else { return false };
    if shape == "uuid-v4" {
        return uuid::Uuid::parse_str(text).is_ok_and(|u| u.get_version_num() == 4) && text == text.to_lowercase() && text.len() == 36;
    }
    if let Some(n) = shape.strip_prefix("digits:") {
        return n.parse() == Ok(text.len()) && text.chars().all(|c| c.is_ascii_digit());
    }
    if let Some(n) = shape.strip_prefix("len:") {
        return n.parse() == Ok(text.chars().count());
    }
    panic!("unknown shape `{shape}`")
}

/// What is wrong with `case`, if anything.
fn check(case: &Value) -> Option<String> {
    let outcome = run(case);
    if let Some(wanted) = case.get("error").and_then(Value::as_str) {
        return match outcome {
            Err(error) if error.contains(wanted) => None,
            Err(error) => Some(format!("expected an error containing `{wanted}`, got error `{error}`")),
            Ok(output) => Some(format!("expected an error containing `{wanted}`, got {output}")),
        };
    }
    let mut output = match outcome {
        Ok(output) => output,
        Err(error) => return Some(format!("expected {}, got error `{error}`", case["expect"])),
    };
    if let Some(Value::Object(shapes)) = case.get("shape") {
        for (path, shape) in shapes {
            let path = DotPath::parse(path);
            let shape = shape.as_str().unwrap_or_default();
            match path.get(&output) {
                Some(value) if fits(value, shape) => {
                    path.remove(&mut output);
                }
                other => return Some(format!("`{}` should be {shape}, is {other:?}", path.segments().join("."))),
            }
        }
    }
    // Compared as text, so key order counts too (PHP arrays are ordered; Value's == ignores it).
    let (expected, actual) = (case["expect"].to_string(), output.to_string());
    (expected != actual).then(|| format!("\n    expected {expected}\n    actual   {actual}"))
}

#[test]
fn golden_mapping_table() {
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/mapping.json");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(file).expect("golden file")).expect("golden file is JSON");
    let cases = doc["cases"].as_array().expect("cases");
    assert!(cases.len() >= 60, "the golden table has {} cases", cases.len());
    let mut failures = Vec::new();
    for case in cases {
        let name = case["name"].as_str().unwrap_or("?");
        assert!(case["why"].as_str().is_some_and(|w| !w.is_empty()), "case {name} says why");
        if let Some(problem) = check(case) {
            failures.push(format!("{name} ({}): {problem}", case["why"].as_str().unwrap_or_default()));
        }
    }
    assert!(failures.is_empty(), "{} of {} golden mapping cases fail:\n{}", failures.len(), cases.len(), failures.join("\n"));
}
