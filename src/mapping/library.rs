//! `executeMapping(mapping, input, list = false)`: a mapping calling another mapping of the same
//! pipeline (by name, slug, id, uuid or reference) or an inline one (`{mapping, unset, cast,
//! passThrough}`), on one object or on every element of a list. Called mappings compile on first use
//! and are kept for the run.
//!
//! A mapping may call itself on smaller parts of its input (a tree), so recursion is allowed, but a
//! call with the same mapping and the same input as one still running can never end: that is refused
//! at once with the chain of calls, and any chain deeper than `MAX_DEPTH` is refused too, well before
//! the stack would overflow.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, Weak};

use minijinja::value::Value as JinjaValue;
use minijinja::{Error, ErrorKind};
use serde_json::{Map, Value};

use super::template::Templates;
use super::{Mapping, MappingError};
use crate::config::MappingDef;

/// How deep `executeMapping` calls may nest.
pub const MAX_DEPTH: usize = 16;
/// Mappings one record may run in all, its own included: calls that fan out (a mapping calling
/// others several times a level) stop here instead of growing without end.
pub const MAX_CALLS: usize = 10_000;

/// The mappings `executeMapping` can reach, and those compiled so far.
pub struct Library {
    defs: BTreeMap<String, MappingDef>,
    compiled: Mutex<HashMap<String, Arc<Mapping>>>,
    /// The weak handle compiled mappings get; set once the library is in its `Arc`.
    this: Weak<Library>,
}

impl Library {
    pub fn new(defs: BTreeMap<String, MappingDef>) -> Arc<Library> {
        Arc::new_cyclic(|this| Library { defs, compiled: Mutex::new(HashMap::new()), this: Weak::clone(this) })
    }

    /// The name of the definition `reference` points at: its name, or OpenConnector's slug, id, uuid
    /// or reference URL.
    fn find(&self, reference: &str) -> Option<&str> {
        if let Some((name, _)) = self.defs.get_key_value(reference) {
            return Some(name);
        }
        self.defs.iter().find_map(|(name, def)| {
            let b = &def.bookkeeping;
            let matches = b.slug.as_deref() == Some(reference)
                || b.uuid.as_deref() == Some(reference)
                || b.reference.as_deref() == Some(reference)
                || b.id.as_ref().is_some_and(|id| id.0 == reference);
            matches.then_some(name.as_str())
        })
    }

    /// The first `executeMapping('name'…)` in `template` whose literal name is not in the library.
    pub fn first_unknown_reference(&self, template: &str) -> Option<String> {
        let mut rest = template;
        while let Some(at) = rest.find("executeMapping(") {
            rest = &rest[at + "executeMapping(".len()..];
            let arg = rest.trim_start();
            let Some(quote) = arg.chars().next().filter(|c| *c == '\'' || *c == '"') else { continue };
            let Some(end) = arg[1..].find(quote) else { continue };
            let name = &arg[1..1 + end];
            if self.find(name).is_none() {
                return Some(name.to_string());
            }
        }
        None
    }

    /// The compiled mapping `reference` (a name or id, or an inline definition) stands for.
    fn resolve(&self, reference: &Value) -> Result<Arc<Mapping>, String> {
        let (key, name, def) = match reference {
            Value::String(text) => {
                let name = self.find(text).ok_or_else(|| format!("no mapping `{text}` in this pipeline"))?;
                (name.to_string(), name.to_string(), None)
            }
            Value::Number(n) => {
                let name = self.find(&n.to_string()).ok_or_else(|| format!("no mapping with id {n} in this pipeline"))?;
                (name.to_string(), name.to_string(), None)
            }
            Value::Object(fields) => {
                // Only these keys count, as in OpenConnector's `hydrate`; anything else is ignored.
                let mut def = Map::new();
                for key in ["mapping", "unset", "cast", "passThrough"] {
                    if let Some(v) = fields.get(key) {
                        def.insert(key.to_string(), v.clone());
                    }
                }
                let def: MappingDef = serde_json::from_value(Value::Object(def)).map_err(|e| format!("inline mapping: {e}"))?;
                let name = fields.get("name").and_then(Value::as_str).unwrap_or("inline").to_string();
                (format!("inline:{reference}"), name, Some(def))
            }
            other => return Err(format!("the mapping is a name, an id or an object, not `{other}`")),
        };
        let mut compiled = self.compiled.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(mapping) = compiled.get(&key) {
            return Ok(Arc::clone(mapping));
        }
        let def = match &def {
            Some(def) => def,
            None => &self.defs[&name],
        };
        let mapping = Arc::new(Mapping::build(&name, def, Weak::clone(&self.this)).map_err(|e| format!("mapping `{name}`: {e}"))?);
        compiled.insert(key, Arc::clone(&mapping));
        Ok(mapping)
    }
}

/// Adds `executeMapping` to a mapping's template environment.
pub fn install(templates: &mut Templates, library: Weak<Library>) {
    templates.env.add_function(
        "executeMapping",
        move |mapping: JinjaValue, input: JinjaValue, list: Option<bool>| -> Result<JinjaValue, Error> {
            let fail = |message: String| Error::new(ErrorKind::InvalidOperation, format!("executeMapping: {message}"));
            let library = library.upgrade().ok_or_else(|| fail("the pipeline's mappings are gone".into()))?;
            let reference = serde_json::to_value(&mapping).map_err(|e| fail(e.to_string()))?;
            let input = serde_json::to_value(&input).map_err(|e| fail(e.to_string()))?;
            if !(input.is_object() || input.is_array()) {
                return Err(fail(format!("the input is a list or an object, not `{input}`")));
            }
            let child = library.resolve(&reference).map_err(fail)?;
            let output = if list.unwrap_or(false) { child.apply_list(&input) } else { child.apply(&input) };
            match output {
                Ok(value) => Ok(super::ordered::to_jinja(&value)),
                // A nesting failure deeper down is passed up as it is, not wrapped once per level.
                Err(_) if let Some(message) = NESTING.with(|n| n.borrow().clone()) => Err(fail(message)),
                Err(MappingError::Call { message }) => Err(fail(message)),
                Err(e) => Err(fail(format!("mapping `{}`: {e}", child.name()))),
            }
        },
    );
}

/// List mode. Each element is mapped; an element that is not a list or object, or any element when
/// extra values came along, becomes `{…element, value: element, …extra}`. An input
/// `{listInput: [...], …extra}` maps `listInput` with `extra` merged into every element.
pub fn apply_list(mapping: &Mapping, input: &Value) -> Result<Value, MappingError> {
    let mut extra = Map::new();
    let items = match input {
        Value::Object(fields) if fields.contains_key("listInput") => {
            extra = fields.clone();
            extra.shift_remove("value");
            extra.shift_remove("listInput").unwrap_or(Value::Null)
        }
        other => other.clone(),
    };
    let element = |value: &Value| -> Value {
        if (value.is_object() || value.is_array()) && extra.is_empty() {
            return value.clone();
        }
        // PHP's array_merge((array) $value, ['value' => $value], $extra).
        let mut merged = match value {
            Value::Object(fields) => fields.clone(),
            Value::Array(items) => items.iter().enumerate().map(|(i, v)| (i.to_string(), v.clone())).collect(),
            Value::Null => Map::new(),
            scalar => Map::from_iter([("0".to_string(), scalar.clone())]),
        };
        merged.insert("value".into(), value.clone());
        merged.extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
        Value::Object(merged)
    };
    match &items {
        Value::Array(list) => list.iter().map(|v| mapping.apply(&element(v))).collect::<Result<Vec<_>, _>>().map(Value::Array),
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| mapping.apply(&element(v)).map(|out| (k.clone(), out)))
            .collect::<Result<Map<_, _>, _>>()
            .map(Value::Object),
        other => Err(MappingError::Call { message: format!("list mode needs a list, not `{other}`") }),
    }
}

thread_local! {
    /// The mappings running on this thread, outermost first, with a hash of their input.
    static FRAMES: RefCell<Vec<(String, [u8; 32])>> = const { RefCell::new(Vec::new()) };
    /// Why the innermost call was refused, so every level reports that once instead of wrapping it.
    static NESTING: RefCell<Option<String>> = const { RefCell::new(None) };
    /// Mappings entered since the outermost one started.
    static CALLS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// For the outermost mapping: why a call deep inside was refused, if that is what failed.
pub fn take_nesting_failure() -> Option<String> {
    let outermost = FRAMES.with(|frames| frames.borrow().len() <= 1);
    if outermost { NESTING.with(|n| n.borrow_mut().take()) } else { None }
}

/// One running mapping; leaving it (also by an error) pops it.
pub struct Frame;

impl Frame {
    pub fn enter(name: &str, input: &Value) -> Result<Frame, String> {
        let hash = *blake3::hash(&serde_json::to_vec(input).unwrap_or_default()).as_bytes();
        let refused = FRAMES.with(|frames| {
            let mut frames = frames.borrow_mut();
            if frames.is_empty() {
                NESTING.with(|n| n.borrow_mut().take());
                CALLS.with(|c| c.set(0));
            }
            let calls = CALLS.with(|c| {
                c.set(c.get() + 1);
                c.get()
            });
            if calls > MAX_CALLS {
                return Err(format!("one record ran more than {MAX_CALLS} mappings (executeMapping fans out too far)"));
            }
            let chain = || frames.iter().map(|(n, _)| n.as_str()).chain([name]).collect::<Vec<_>>().join(" → ");
            if frames.iter().any(|(n, h)| n == name && *h == hash) {
                return Err(format!("mapping `{name}` calls itself with the same input, which would never end ({})", chain()));
            }
            if frames.len() >= MAX_DEPTH {
                return Err(format!("mappings nested more than {MAX_DEPTH} deep ({})", chain()));
            }
            frames.push((name.to_string(), hash));
            Ok(Frame)
        });
        if let Err(message) = &refused {
            NESTING.with(|n| *n.borrow_mut() = Some(message.clone()));
        }
        refused
    }
}

impl Drop for Frame {
    fn drop(&mut self) {
        FRAMES.with(|frames| {
            frames.borrow_mut().pop();
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn def(value: Value) -> MappingDef {
        serde_json::from_value(value).unwrap()
    }

    fn library(entries: Value) -> BTreeMap<String, MappingDef> {
        entries.as_object().unwrap().iter().map(|(k, v)| (k.clone(), def(v.clone()))).collect()
    }

    #[test]
    fn calls_by_name_inline_and_in_list_mode() {
        let lib = library(json!({
            "child": {"mapping": {"n": "name", "up": "{{ name|upper }}"}},
            "parent": {"mapping": {
                "one": "{{ executeMapping('child', item)|json_encode }}",
                "many": "{{ executeMapping('child', items, true)|json_encode }}",
                "inline": "{{ executeMapping({'mapping': {'v': 'value'}}, ['a', 'b'], true)|json_encode }}",
                "first": "{{ executeMapping('child', items.0).up }}"
            }}
        }));
        let m = Mapping::compile_in("parent", &lib["parent"], &lib).unwrap();
        let out = m.apply(&json!({"item": {"name": "x"}, "items": [{"name": "a"}, {"name": "b"}]})).unwrap();
        assert_eq!(out["one"], r#"{"n":"x","up":"X"}"#);
        assert_eq!(out["many"], r#"[{"n":"a","up":"A"},{"n":"b","up":"B"}]"#);
        assert_eq!(out["inline"], r#"[{"v":"a"},{"v":"b"}]"#);
        assert_eq!(out["first"], "A");
    }

    #[test]
    fn calls_that_fan_out_stop_at_max_calls() {
        // Each level calls the next ten times: 10^5 mappings for one record.
        let call = |next: &str| json!({"mapping": {"x": format!("{{% for i in 1..10 %}}{{{{ executeMapping('{next}', {{'i': i}})|json_encode }}}}{{% endfor %}}")}});
        let lib = library(
            json!({"l0": call("l1"), "l1": call("l2"), "l2": call("l3"), "l3": call("l4"), "l4": call("l5"), "l5": {"mapping": {"i": "i"}}}),
        );
        let m = Mapping::compile_in("l0", &lib["l0"], &lib).unwrap();
        let error = m.apply(&json!({})).map(|_| "it ran").unwrap_err().to_string();
        assert!(error.contains("more than 10000 mappings"), "{error}");
        // The count starts again for the next record, and a narrower fan-out runs.
        let m = Mapping::compile_in("l2", &lib["l2"], &lib).unwrap();
        assert!(m.apply(&json!({})).is_ok());
        assert!(m.apply(&json!({})).is_ok());
    }

    #[test]
    fn list_input_merges_extra_values() {
        let lib = library(json!({"el": {"mapping": {"id": "id", "org": "org", "v": "value.id"}}}));
        let m = Mapping::compile_in("el", &lib["el"], &lib).unwrap();
        let out = m.apply_list(&json!({"listInput": [{"id": 1}, {"id": 2}], "org": "o"})).unwrap();
        assert_eq!(out, json!([{"id": 1, "org": "o", "v": 1}, {"id": 2, "org": "o", "v": 2}]));
        let scalars = Mapping::compile("s", &def(json!({"mapping": {"v": "value", "zero": "0"}}))).unwrap();
        assert_eq!(scalars.apply_list(&json!(["a"])).unwrap(), json!([{"v": "a", "zero": "a"}]));
    }

    #[test]
    fn endless_recursion_is_an_error() {
        let lib = library(json!({
            "loop": {"mapping": {"again": "{{ executeMapping('loop', _self_input|default({'x': 1}))|json_encode }}"}},
            "tree": {"mapping": {"name": "name", "children": "{% if children %}{{ executeMapping('tree', children, true)|json_encode }}{% endif %}"}}
        }));
        let looping = Mapping::compile_in("loop", &lib["loop"], &lib).unwrap();
        let err = looping.apply(&json!({"x": 1})).unwrap_err().to_string();
        assert!(err.contains("calls itself with the same input") && err.contains("loop → loop"), "{err}");
        // A tree maps fine: every call gets a smaller input.
        let tree = Mapping::compile_in("tree", &lib["tree"], &lib).unwrap();
        let out = tree.apply(&json!({"name": "a", "children": [{"name": "b", "children": []}]})).unwrap();
        assert_eq!(out["name"], "a");
        assert!(out["children"].as_str().unwrap().contains(r#""name":"b""#), "{out}");
        FRAMES.with(|f| assert!(f.borrow().is_empty(), "frames are popped"));
    }

    #[test]
    fn deep_nesting_stops_with_an_error_not_a_stack_overflow() {
        let lib = library(json!({"deep": {"mapping": {"next": "{% if next %}{{ executeMapping('deep', next)|json_encode }}{% endif %}"}}}));
        let m = Mapping::compile_in("deep", &lib["deep"], &lib).unwrap();
        let mut input = json!({});
        for _ in 0..40 {
            input = json!({ "next": input });
        }
        let err = m.apply(&input).unwrap_err().to_string();
        assert!(err.starts_with("field `next`: executeMapping: mappings nested more than 16 deep (deep → deep"), "{err}");
        assert_eq!(err.matches("field").count(), 1, "reported once, not per level: {err}");
        FRAMES.with(|f| assert!(f.borrow().is_empty(), "frames are popped"));
    }

    #[test]
    fn references_by_slug_and_id() {
        let mut lib = library(json!({
            "child": {"mapping": {"n": "name"}},
            "parent": {"mapping": {"a": "{{ executeMapping('pet-child', item).n }}", "b": "{{ executeMapping(12, item).n }}"}}
        }));
        let child = lib.get_mut("child").unwrap();
        child.bookkeeping.slug = Some("pet-child".into());
        child.bookkeeping.id = Some(crate::config::Text("12".into()));
        let m = Mapping::compile_in("parent", &lib["parent"], &lib).unwrap();
        assert_eq!(m.apply(&json!({"item": {"name": "x"}})).unwrap(), json!({"a": "x", "b": "x"}));
    }

    #[test]
    fn unknown_literal_names_fail_at_compile_time() {
        let lib = library(json!({"m": {"mapping": {"x": "{{ executeMapping('nope', a) }}"}}}));
        let err = Mapping::compile_in("m", &lib["m"], &lib).err().unwrap().to_string();
        assert!(err.starts_with("field `x`") && err.contains("`nope`"), "{err}");
    }
}
