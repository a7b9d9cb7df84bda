//! The Twig 3 conformance table (`tests/golden/twig.json`, rendered by real Twig 3.5 with
//! `tests/golden/twig/generate.php`, as OpenConnector renders: autoescape on, then
//! `html_entity_decode`): every case runs through the mapping engine's template path, and each that
//! differs from Twig is reported by name. A case Twig refuses must fail here too; a construct
//! syncline refuses on purpose is listed in [`REFUSED`] with the reason.

use std::sync::OnceLock;

use serde_json::Value;
use syncline::mapping::Templates;

/// Cases Twig runs that syncline refuses when the mapping is compiled, each with why.
const REFUSED: &[(&str, &str)] = &[
    ("rare_macro_self", "macros: a mapping is one template; no shipped OpenConnector mapping defines one"),
    ("rare_macro_import", "macros and `import`: as above"),
    ("rare_include_ignore_missing", "`include`: a mapping has no other templates to include"),
    ("rare_block_tag_and_function", "`block`: template inheritance has no meaning for a single mapping value"),
];

/// The outcome of one case: the output, or the error.
fn run(case: &Value) -> Result<String, String> {
    let mut templates = Templates::new();
    let source = templates.compile_field(&case["template"]).map_err(|e| e.to_string())?;
    let context = case.get("context").cloned().unwrap_or(Value::Null);
    let out = templates.evaluate(&source, &context, &context, &OnceLock::new()).map_err(|e| e.to_string())?;
    Ok(match out {
        Value::String(s) => s,
        other => syncline::mapping::php::php_string(&other),
    })
}

#[test]
fn every_case_renders_as_twig_3_renders_it() {
    let table: Vec<Value> = serde_json::from_str(include_str!("../golden/twig.json")).expect("the table is JSON");
    let mut failures = Vec::new();
    let mut refused = 0;
    for case in &table {
        let name = case["name"].as_str().unwrap_or("?");
        let outcome = run(case);
        if let Some((_, why)) = REFUSED.iter().find(|(n, _)| *n == name) {
            refused += 1;
            if outcome.is_ok() {
                failures.push(format!("{name}: listed as refused ({why}) but it ran"));
            }
            continue;
        }
        let wrong = match (case.get("error").and_then(Value::as_bool).unwrap_or(false), &outcome) {
            (true, Ok(out)) => Some(format!("Twig fails ({}), syncline printed {out:?}", case["twig_error"])),
            (true, Err(_)) => None,
            (false, Ok(out)) if Some(out.as_str()) == case["expected"].as_str() => None,
            (false, Ok(out)) => Some(format!("expected {:?}, got {out:?}", case["expected"])),
            (false, Err(error)) => Some(format!("expected {:?}, got error {error}", case["expected"])),
        };
        if let Some(wrong) = wrong {
            failures.push(format!("{name}: {wrong}\n    template: {}", case["template"]));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ from Twig 3 ({refused} refused on purpose):\n{}",
        failures.len(),
        table.len(),
        failures.join("\n")
    );
}
