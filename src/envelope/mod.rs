//! The envelope extractor: finds the list of records in a response body (`resultsPosition`) and splits
//! it into one byte slice per record, without parsing the records themselves.

mod walk;
pub mod xml;

use std::collections::HashMap;

use bytes::Bytes;
use serde_json::value::RawValue;

use crate::path::DotPath;
use walk::{Found, Want};

/// Where the records sit in a body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResultsPosition {
    /// `_root`: the body is the list.
    Root,
    /// `_object`: the body is one record.
    Object,
    /// A dot path such as `data.items`.
    Path(DotPath),
    /// Not set: the body if it is a list, else the first of `items`, `result`, `results`.
    Auto,
}

impl ResultsPosition {
    pub fn parse(text: Option<&str>) -> ResultsPosition {
        match text.map(str::trim) {
            None | Some("") => ResultsPosition::Auto,
            Some("_root") => ResultsPosition::Root,
            Some("_object") => ResultsPosition::Object,
            Some(path) => ResultsPosition::Path(DotPath::parse(path)),
        }
    }

    fn describe(&self) -> String {
        match self {
            ResultsPosition::Root => "_root".into(),
            ResultsPosition::Object => "_object".into(),
            ResultsPosition::Path(p) => p.segments().join("."),
            ResultsPosition::Auto => "(not set)".into(),
        }
    }
}

/// The records of one body, plus a warning when `resultsPosition` found none where it pointed.
#[derive(Debug, Default)]
pub struct Extracted {
    pub records: Vec<Bytes>,
    pub warning: Option<String>,
}

/// A body that is not JSON.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct NotJson(pub String);

const AUTO_KEYS: [&str; 3] = ["items", "result", "results"];

/// Splits `body` into its records at `position`.
pub fn extract(body: &Bytes, position: &ResultsPosition) -> Result<Extracted, NotJson> {
    // A byte-order mark is no part of the JSON (some servers and editors write one).
    let body = &if body.starts_with(b"\xEF\xBB\xBF") { body.slice(3..) } else { body.clone() };
    let text = std::str::from_utf8(body).map_err(|e| NotJson(format!("not UTF-8: {e}")))?;
    let slice = |raw: &RawValue| body.slice_ref(raw.get().as_bytes());
    let want = match position {
        ResultsPosition::Object => None,
        ResultsPosition::Root => Some(Want::At(&[])),
        ResultsPosition::Path(path) => Some(Want::At(path.segments())),
        ResultsPosition::Auto => Some(Want::Auto(&AUTO_KEYS)),
    };
    // The common case, a list where the position says, in one pass; anything else is looked at again
    // below, to take a single object or to say what the body holds.
    if let Some(want) = want
        && let Found::List(items) = walk::find(text, want).map_err(|e| NotJson(e.to_string()))?
    {
        return Ok(Extracted { records: items.into_iter().map(slice).collect(), warning: None });
    }
    let root: &RawValue = serde_json::from_str(text).map_err(|e| NotJson(e.to_string()))?;
    let found = match position {
        ResultsPosition::Object => return Ok(Extracted { records: vec![slice(root)], warning: None }),
        ResultsPosition::Root => Some(root),
        ResultsPosition::Path(path) => navigate(root, path.segments()),
        ResultsPosition::Auto if is_list(root) => Some(root),
        ResultsPosition::Auto => {
            let map = as_map(root);
            AUTO_KEYS.iter().find_map(|k| map.as_ref().and_then(|m| m.get(*k)).copied())
        }
    };
    let Some(found) = found else {
        return Ok(Extracted { records: Vec::new(), warning: Some(not_found(root, position)) });
    };
    if is_list(found) {
        let items: Vec<&RawValue> = serde_json::from_str(found.get()).map_err(|e| NotJson(e.to_string()))?;
        return Ok(Extracted { records: items.into_iter().map(slice).collect(), warning: None });
    }
    if *position == ResultsPosition::Root {
        return Ok(Extracted { records: Vec::new(), warning: Some(not_found(root, position)) });
    }
    // A single object where a list was expected is one record (OpenConnector wraps it the same way).
    if found.get().starts_with('{') {
        return Ok(Extracted { records: vec![slice(found)], warning: None });
    }
    Ok(Extracted { records: Vec::new(), warning: Some(not_found(root, position)) })
}

/// The raw value at `path` in `body`, for next links and cursors.
pub fn lookup<'a>(body: &'a str, path: &DotPath) -> Option<&'a RawValue> {
    let root: &RawValue = serde_json::from_str(body).ok()?;
    navigate(root, path.segments())
}

/// The string (or number) at `path` in `body`, if there is a non-empty one.
pub fn lookup_text(body: &str, path: &DotPath) -> Option<String> {
    let raw = lookup(body, path)?;
    match serde_json::from_str::<serde_json::Value>(raw.get()).ok()? {
        serde_json::Value::String(s) if !s.is_empty() => Some(s),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn is_list(raw: &RawValue) -> bool {
    raw.get().starts_with('[')
}

fn as_map(raw: &RawValue) -> Option<HashMap<String, &RawValue>> {
    if raw.get().starts_with('{') { serde_json::from_str(raw.get()).ok() } else { None }
}

fn navigate<'a>(root: &'a RawValue, segments: &[String]) -> Option<&'a RawValue> {
    segments.iter().try_fold(root, |here, segment| {
        if is_list(here) {
            let index: usize = segment.parse().ok()?;
            let items: Vec<&RawValue> = serde_json::from_str(here.get()).ok()?;
            items.get(index).copied()
        } else {
            as_map(here)?.get(segment.as_str()).copied()
        }
    })
}

/// Says where the records could be instead: the dot paths of the lists near the top of the body.
fn not_found(root: &RawValue, position: &ResultsPosition) -> String {
    let mut lists = Vec::new();
    find_lists(root, String::new(), 3, &mut lists);
    let hint = match (lists.is_empty(), is_list(root)) {
        (_, true) => "the body itself is a list: use `resultsPosition: _root`".to_string(),
        (true, _) => "the body holds no list of records".to_string(),
        (false, _) if lists.len() > 10 => format!("lists found at: {}, and {} more", lists[..10].join(", "), lists.len() - 10),
        (false, _) => format!("lists found at: {}", lists.join(", ")),
    };
    format!("resultsPosition `{}` found no records in the response; {hint}", position.describe())
}

fn find_lists(raw: &RawValue, path: String, depth: usize, out: &mut Vec<String>) {
    let Some(map) = as_map(raw) else { return };
    let mut keys: Vec<_> = map.into_iter().collect();
    keys.sort_by(|a, b| a.0.cmp(&b.0));
    for (key, value) in keys {
        let here = if path.is_empty() { key } else { format!("{path}.{key}") };
        if is_list(value) {
            out.push(here);
        } else if depth > 1 {
            find_lists(value, here, depth - 1, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(body: &str, position: &str) -> (Vec<String>, Option<String>) {
        let out = extract(&Bytes::from(body.to_string()), &ResultsPosition::parse(Some(position))).unwrap();
        (out.records.iter().map(|b| String::from_utf8(b.to_vec()).unwrap()).collect(), out.warning)
    }

    #[test]
    fn positions() {
        assert_eq!(records(r#"[{"id":1}, {"id":2}]"#, "_root").0, [r#"{"id":1}"#, r#"{"id":2}"#]);
        assert_eq!(records(r#"{"data":{"items":[{"id":1}]}}"#, "data.items").0, [r#"{"id":1}"#]);
        assert_eq!(records(r#"{"id":1}"#, "_object").0, [r#"{"id":1}"#]);
        assert_eq!(records(r#"{"results":[{"id":3}]}"#, "").0, [r#"{"id":3}"#]);
        assert_eq!(records(r#"{"a":[{"x":[{"id":9}]}]}"#, "a.0.x").0, [r#"{"id":9}"#]);
        assert_eq!(records(r#"{"data":{"id":1}}"#, "data").0, [r#"{"id":1}"#]);
        assert_eq!(records("\u{feff}[{\"id\":1}]", "_root").0, [r#"{"id":1}"#], "a byte-order mark is no part of the JSON");
    }

    #[test]
    fn wrong_position_warns_and_names_resultsposition() {
        let (found, warning) = records(r#"{"data":{"items":[{"id":1}]},"meta":{}}"#, "_root");
        assert!(found.is_empty());
        let warning = warning.unwrap();
        assert!(warning.contains("resultsPosition `_root`") && warning.contains("data.items"), "{warning}");
        let (found, warning) = records(r#"[{"id":1}]"#, "items");
        assert!(found.is_empty());
        assert!(warning.unwrap().contains("_root"));
    }

    #[test]
    fn not_json_is_an_error() {
        assert!(extract(&Bytes::from_static(b"<html>"), &ResultsPosition::Root).is_err());
        // Broken outside the list, or after the body: the one pass still reads all of it.
        let data_items = ResultsPosition::parse(Some("data.items"));
        assert!(extract(&Bytes::from_static(br#"{"data":{"items":[{"id":1}]},"meta":{"x":}}"#), &data_items).is_err());
        assert!(extract(&Bytes::from_static(br#"{"data":{"items":[{"id":1}]}} trailing"#), &data_items).is_err());
        assert!(extract(&Bytes::from_static(br#"{"data":{"items":[{"id":1},]}}"#), &data_items).is_err());
    }

    #[test]
    fn auto_takes_the_root_list_or_the_first_known_key() {
        // `items` is looked for before `result` and `results`, wherever it sits in the body.
        assert_eq!(records(r#"{"results":[{"id":1}],"meta":{"items":3},"items":[{"id":2}]}"#, "").0, [r#"{"id":2}"#]);
        assert_eq!(records(r#"{"result":{"id":5},"other":[1]}"#, "").0, [r#"{"id":5}"#], "an object under the key is one record");
        assert_eq!(records(r#"[{"id":1}]"#, "").0, [r#"{"id":1}"#]);
        let (found, warning) = records(r#"{"rows":[{"id":1}]}"#, "");
        assert!(found.is_empty() && warning.unwrap().contains("rows"));
        // Escaped keys and a path through a list index.
        assert_eq!(records(r#"{"d\u0061ta":{"items":[{"id":1}]}}"#, "data.items").0, [r#"{"id":1}"#]);
        assert_eq!(records(r#"{"pages":[{"rows":[]},{"rows":[{"id":7}]}]}"#, "pages.1.rows").0, [r#"{"id":7}"#]);
        assert!(records(r#"{"pages":[{"rows":[{"id":7}]}]}"#, "pages.4.rows").1.is_some());
    }

    #[test]
    fn lookups() {
        let body = r#"{"next":"http://x/2","meta":{"cursor":42,"none":null}}"#;
        assert_eq!(lookup_text(body, &DotPath::parse("next")).as_deref(), Some("http://x/2"));
        assert_eq!(lookup_text(body, &DotPath::parse("meta.cursor")).as_deref(), Some("42"));
        assert_eq!(lookup_text(body, &DotPath::parse("meta.none")), None);
    }
}
