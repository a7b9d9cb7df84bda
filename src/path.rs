//! Dot paths into JSON values (`category.name`, `tags.0`), as OpenConnector's `idPosition`,
//! `resultsPosition`, mapping keys and `unset` use them: `.` separates keys, a numeric segment indexes a
//! list.

use serde_json::{Map, Value};

/// A value as the text an id or a name is compared as: a string as it is, anything else as its JSON
/// (`7`, `true`).
pub fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A parsed dot path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DotPath {
    segments: Vec<String>,
}

impl DotPath {
    pub fn parse(path: &str) -> DotPath {
        DotPath { segments: path.split('.').map(str::to_string).collect() }
    }

    pub fn segments(&self) -> &[String] {
        &self.segments
    }

    /// The value at this path, if every segment exists.
    pub fn get<'v>(&self, value: &'v Value) -> Option<&'v Value> {
        self.segments.iter().try_fold(value, |v, segment| step(v, segment))
    }

    /// Sets the value at this path, creating objects (or list slots, for numeric segments into lists)
    /// on the way.
    pub fn set(&self, root: &mut Value, new: Value) {
        let mut here = root;
        for (i, segment) in self.segments.iter().enumerate() {
            let last = i + 1 == self.segments.len();
            let index = if here.is_array() { segment.parse::<usize>().ok() } else { None };
            if let Some(index) = index {
                let Value::Array(items) = here else { unreachable!("checked above") };
                if items.len() <= index {
                    items.resize(index + 1, Value::Null);
                }
                if last {
                    items[index] = new;
                    return;
                }
                here = &mut items[index];
                continue;
            }
            if !here.is_object() {
                *here = Value::Object(Map::new());
            }
            let Value::Object(map) = here else { unreachable!("made an object above") };
            if last {
                map.insert(segment.clone(), new);
                return;
            }
            here = map.entry(segment.clone()).or_insert(Value::Null);
        }
    }

    /// Removes the value at this path; returns whether there was one.
    pub fn remove(&self, root: &mut Value) -> bool {
        let Some((last, parents)) = self.segments.split_last() else { return false };
        let mut here = root;
        for segment in parents {
            here = match here {
                Value::Object(map) => match map.get_mut(segment) {
                    Some(v) => v,
                    None => return false,
                },
                Value::Array(items) => match segment.parse::<usize>().ok().and_then(|i| items.get_mut(i)) {
                    Some(v) => v,
                    None => return false,
                },
                _ => return false,
            };
        }
        match here {
            Value::Object(map) => map.shift_remove(last).is_some(),
            Value::Array(items) => match last.parse::<usize>() {
                Ok(i) if i < items.len() => {
                    items.remove(i);
                    true
                }
                _ => false,
            },
            _ => false,
        }
    }
}

fn step<'v>(value: &'v Value, segment: &str) -> Option<&'v Value> {
    match value {
        Value::Object(map) => map.get(segment),
        Value::Array(items) => segment.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn get_set_remove() {
        let mut v = json!({"a": {"b": [10, {"c": 3}]}});
        assert_eq!(DotPath::parse("a.b.1.c").get(&v), Some(&json!(3)));
        assert_eq!(DotPath::parse("a.x").get(&v), None);
        DotPath::parse("a.d.e").set(&mut v, json!("new"));
        assert_eq!(v["a"]["d"]["e"], "new");
        DotPath::parse("a.b.0").set(&mut v, json!(11));
        assert_eq!(v["a"]["b"][0], 11);
        assert!(DotPath::parse("a.b.1.c").remove(&mut v));
        assert!(!DotPath::parse("a.b.1.c").remove(&mut v));
        assert_eq!(v["a"]["b"][1], json!({}));
    }
}
