//! The output object as OpenConnector builds it: a PHP array written through dot paths
//! (adbario/php-dot-notation). Two PHP facts show in the JSON that comes out, so they are kept here:
//! a new array that receives key `0` (then `1`, …) is a list (`a.b.0.c` gives `{"a":{"b":[{"c":…}]}}`),
//! and removing an element from the middle of a list leaves its other keys as they were, which
//! `json_encode` then writes as an object. Input keys holding `.` are encoded as `&#46;` so dot paths
//! do not split them, and decoded in the result.

use std::borrow::Cow;

use serde_json::{Map, Value};

use crate::path::DotPath;

pub const ENCODED_DOT: &str = "&#46;";

/// Whether any key (at any depth) holds `.` or `&#46;`: only then do keys need encoding or decoding.
pub fn has_dotted_keys(value: &Value) -> bool {
    match value {
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('.') || k.contains(ENCODED_DOT) || has_dotted_keys(v)),
        Value::Array(items) => items.iter().any(has_dotted_keys),
        _ => false,
    }
}

/// The input with `.` in keys written as `&#46;` (borrowed when nothing needs it).
pub fn encode_keys(value: &Value) -> Cow<'_, Value> {
    if has_dotted_keys(value) { Cow::Owned(rekey(value, ".", ENCODED_DOT)) } else { Cow::Borrowed(value) }
}

/// Writes `&#46;` in keys back as `.`, in place.
pub fn decode_keys(value: &mut Value) {
    if has_dotted_keys(value) {
        *value = rekey(value, ENCODED_DOT, ".");
    }
}

fn rekey(value: &Value, from: &str, to: &str) -> Value {
    match value {
        Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.replace(from, to), rekey(v, from, to))).collect()),
        Value::Array(items) => Value::Array(items.iter().map(|v| rekey(v, from, to)).collect()),
        other => other.clone(),
    }
}

/// A PHP array key that PHP would store as an integer (`"0"`, `"12"`, not `"012"`).
fn index(segment: &str) -> Option<usize> {
    segment.parse::<usize>().ok().filter(|i| i.to_string() == segment)
}

fn list_to_object(items: &mut Vec<Value>) -> Map<String, Value> {
    items.drain(..).enumerate().map(|(i, v)| (i.to_string(), v)).collect()
}

/// The slot for `segment` in `here`, created as PHP creates it.
fn slot<'v>(here: &'v mut Value, segment: &str) -> &'v mut Value {
    let at = index(segment);
    let replacement = match &mut *here {
        // An empty array receiving key 0 is a list in PHP.
        Value::Object(map) if map.is_empty() && at == Some(0) => Some(Value::Array(Vec::new())),
        Value::Object(_) => None,
        Value::Array(items) => match at {
            Some(i) if i < items.len() => None,
            Some(i) if i == items.len() => {
                items.push(Value::Null);
                None
            }
            // A gap or a string key: no longer a list.
            _ => Some(Value::Object(list_to_object(items))),
        },
        // Dot::set replaces anything that is not an array.
        _ => Some(if at == Some(0) { Value::Array(Vec::new()) } else { Value::Object(Map::new()) }),
    };
    if let Some(container) = replacement {
        *here = container;
        if let (Value::Array(items), Some(0)) = (&mut *here, at) {
            items.push(Value::Null);
        }
    }
    match here {
        Value::Array(items) => &mut items[at.unwrap_or_default()],
        Value::Object(map) => map.entry(segment.to_string()).or_insert(Value::Null),
        _ => unreachable!("made a container above"),
    }
}

/// Sets `path` in `root`, replacing whatever is not an array on the way (Dot::set).
pub fn set(root: &mut Value, path: &DotPath, value: Value) {
    let mut here = root;
    for segment in path.segments() {
        here = slot(here, segment);
    }
    *here = value;
}

/// The value at `path`, mutable.
pub fn get_mut<'v>(root: &'v mut Value, path: &DotPath) -> Option<&'v mut Value> {
    path.segments().iter().try_fold(root, |here, segment| match here {
        Value::Object(map) => map.get_mut(segment),
        Value::Array(items) => index(segment).and_then(|i| items.get_mut(i)),
        _ => None,
    })
}

/// Removes `path` (Dot::delete); from a list, anything but the last element leaves an object behind.
pub fn remove(root: &mut Value, path: &DotPath) {
    let Some((last, parents)) = path.segments().split_last() else { return };
    let Some(parent) = parents.iter().try_fold(root, |here, segment| match here {
        Value::Object(map) => map.get_mut(segment).filter(|v| v.is_object() || v.is_array()),
        Value::Array(items) => index(segment).and_then(|i| items.get_mut(i)).filter(|v| v.is_object() || v.is_array()),
        _ => None,
    }) else {
        return;
    };
    let replacement = match &mut *parent {
        Value::Object(map) => {
            map.shift_remove(last);
            None
        }
        Value::Array(items) => match index(last) {
            Some(i) if i + 1 == items.len() => {
                items.pop();
                None
            }
            Some(i) if i < items.len() => {
                let mut map = list_to_object(items);
                map.shift_remove(last);
                Some(Value::Object(map))
            }
            _ => None,
        },
        _ => None,
    };
    if let Some(object) = replacement {
        *parent = object;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(path: &str) -> DotPath {
        DotPath::parse(path)
    }

    #[test]
    fn numeric_segments_make_lists_as_php_does() {
        let mut out = json!({});
        set(&mut out, &p("a.b.0.c"), json!(1));
        set(&mut out, &p("a.b.1.c"), json!(2));
        assert_eq!(out, json!({"a": {"b": [{"c": 1}, {"c": 2}]}}));
        let mut gap = json!({});
        set(&mut gap, &p("x.1"), json!("y"));
        assert_eq!(gap, json!({"x": {"1": "y"}}));
        set(&mut out, &p("a.b.x"), json!(3));
        assert_eq!(out["a"]["b"], json!({"0": {"c": 1}, "1": {"c": 2}, "x": 3}));
    }

    #[test]
    fn removing_from_lists() {
        let mut v = json!({"l": [1, 2, 3], "m": [1, 2, 3]});
        remove(&mut v, &p("l.2"));
        remove(&mut v, &p("m.0"));
        remove(&mut v, &p("nothing.here"));
        assert_eq!(v, json!({"l": [1, 2], "m": {"1": 2, "2": 3}}));
    }

    #[test]
    fn keys_with_dots() {
        let input = json!({"a.b": {"c.d": 1}, "e": [{"f.g": 2}]});
        let encoded = encode_keys(&input).into_owned();
        assert_eq!(encoded, json!({"a&#46;b": {"c&#46;d": 1}, "e": [{"f&#46;g": 2}]}));
        let mut back = encoded.clone();
        decode_keys(&mut back);
        assert_eq!(back, input);
        assert!(matches!(encode_keys(&json!({"plain": 1})), Cow::Borrowed(_)));
    }
}
