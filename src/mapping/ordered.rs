//! JSON values as template values, in their key order (PHP arrays are ordered, and the order shows
//! wherever a template prints an object: `json_encode`, an `executeMapping` result). The record is
//! shared, not converted: a nested object is its root plus a path, resolved only when a template reads
//! it, so a template that reads two fields of a large record does not pay for copying all of it.

use std::sync::Arc;

use minijinja::value::{Enumerator, Object, ObjectRepr, Value as JinjaValue};
use serde_json::Value;

#[derive(Debug, Clone)]
enum Step {
    Key(String),
    Index(usize),
}

/// A list or object inside a shared JSON document.
#[derive(Debug)]
struct Json {
    root: Arc<Value>,
    path: Vec<Step>,
}

/// `value` as a template value (scalars directly, lists and objects in order).
pub fn to_jinja(value: &Value) -> JinjaValue {
    match value {
        Value::Array(_) | Value::Object(_) => JinjaValue::from_object(Json { root: Arc::new(value.clone()), path: Vec::new() }),
        scalar => scalar_to_jinja(scalar),
    }
}

fn scalar_to_jinja(value: &Value) -> JinjaValue {
    match value {
        Value::Null => JinjaValue::from(()),
        Value::Bool(b) => JinjaValue::from(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => JinjaValue::from(i),
            (None, Some(u)) => JinjaValue::from(u),
            _ => JinjaValue::from(n.as_f64().unwrap_or(0.0)),
        },
        Value::String(s) => JinjaValue::from(s.as_str()),
        container => to_jinja(container),
    }
}

impl Json {
    fn node(&self) -> &Value {
        self.path.iter().fold(&*self.root, |here, step| match step {
            Step::Key(k) => &here[k.as_str()],
            Step::Index(i) => &here[*i],
        })
    }

    fn child(&self, step: Step, value: &Value) -> JinjaValue {
        match value {
            Value::Array(_) | Value::Object(_) => {
                let mut path = self.path.clone();
                path.push(step);
                JinjaValue::from_object(Json { root: Arc::clone(&self.root), path })
            }
            scalar => scalar_to_jinja(scalar),
        }
    }
}

impl Object for Json {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        if self.node().is_array() { ObjectRepr::Seq } else { ObjectRepr::Map }
    }

    fn get_value(self: &Arc<Self>, key: &JinjaValue) -> Option<JinjaValue> {
        match self.node() {
            Value::Object(map) => {
                // `a.0` on an object asks for key "0" (PHP keys are loose about ints and strings).
                let name = key.as_str().map(str::to_string).or_else(|| key.as_i64().map(|i| i.to_string()))?;
                map.get(&name).map(|v| self.child(Step::Key(name.clone()), v))
            }
            Value::Array(items) => {
                let index = key.as_usize().or_else(|| key.as_str().and_then(|s| s.parse().ok()))?;
                items.get(index).map(|v| self.child(Step::Index(index), v))
            }
            _ => None,
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        match self.node() {
            Value::Object(map) => Enumerator::Values(map.keys().map(|k| JinjaValue::from(k.as_str())).collect()),
            Value::Array(items) => Enumerator::Seq(items.len()),
            _ => Enumerator::Empty,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keeps_key_order_and_reads_nested_values() {
        let value = to_jinja(&json!({"z": 1, "a": {"y": [10, {"b": "x"}], "c": null}}));
        let back: Value = serde_json::to_value(&value).unwrap();
        assert_eq!(back.to_string(), r#"{"z":1,"a":{"y":[10,{"b":"x"}],"c":null}}"#);
        let env = minijinja::Environment::new();
        let out = env.render_str("{{ a.y.1.b }} {{ a.y|length }} {% for k in a %}{{ k }}{% endfor %} {{ a.y[0] }}", value).unwrap();
        assert_eq!(out, "x 2 yc 10");
    }
}
