//! The mapping stage: one source record becomes one target object, with OpenConnector's semantics
//! (`MappingService::executeMapping`): input keys holding `.` encoded, `passThrough`, field values by
//! rules a/b/c (see `template`), `unset`, `cast`, keys decoded, a lone `#` key replacing the root.
//! Templates compile once per run; plain lookups never reach the template engine.

pub mod casts;
pub(crate) mod dot;
pub mod entities;
mod library;
mod ordered;
pub mod php;
mod template;
pub mod twig;

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock, Weak};

use serde_json::{Map, Value};

use crate::config::MappingDef;
use crate::path::DotPath;
use casts::Cast;
use library::{Frame, Library};
pub use template::{FieldSource, Templates};

/// A mapping or filter that could not compile or render.
#[derive(Debug, Clone, thiserror::Error)]
pub enum MappingError {
    #[error("field `{field}`: {message}")]
    Template { field: String, message: String },
    #[error("cast of `{field}`: {message}")]
    Cast { field: String, message: String },
    #[error("filter: {message}")]
    Filter { message: String },
    /// `executeMapping` nested without end, or given what it cannot map.
    #[error("executeMapping: {message}")]
    Call { message: String },
    /// The mapping stopped on a bug (a panic) while mapping this record.
    #[error("internal error: {0}")]
    Internal(String),
}

impl MappingError {
    /// The key path (below the mapping) that holds the fault, for positioned config errors.
    pub fn key(&self) -> String {
        match self {
            MappingError::Template { field, .. } => format!("mapping.{field}"),
            MappingError::Cast { field, .. } => format!("cast.{field}"),
            MappingError::Filter { .. } => "filter".into(),
            MappingError::Call { .. } | MappingError::Internal(_) => "mapping".into(),
        }
    }
}

fn describe(error: &minijinja::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        text.push_str(&format!(": {inner}"));
        source = inner.source();
    }
    text
}

struct Field {
    key: String,
    out: DotPath,
    source: FieldSource,
}

/// A compiled mapping.
pub struct Mapping {
    name: String,
    templates: Templates,
    fields: Vec<Field>,
    unset: Vec<DotPath>,
    casts: Vec<(String, DotPath, Vec<Cast>)>,
    pass_through: bool,
    /// Whether a template calls `executeMapping` (only then are calls tracked, see `library`).
    calls: bool,
    /// Whether the definition itself writes `&#46;` in keys, which must be decoded in the output.
    encoded_keys: bool,
    /// The pipeline's mappings, for `executeMapping` by name. Held by the mapping a caller compiled;
    /// mappings compiled on demand for `executeMapping` only point back weakly, so nothing leaks.
    _library: Option<Arc<Library>>,
    fingerprint: [u8; 32],
}

impl Mapping {
    /// Compiles every field, cast and template of `def`, on its own: `executeMapping` can then only
    /// run inline mappings. Use `compile_in` where the pipeline's mappings are known.
    pub fn compile(name: &str, def: &MappingDef) -> Result<Mapping, MappingError> {
        Self::compile_in(name, def, &BTreeMap::new())
    }

    /// Compiles `def` as mapping `name` of a pipeline whose mappings are `library`, so that
    /// `executeMapping('other', …)` finds them; a literal name that is not there is an error now.
    pub fn compile_in(name: &str, def: &MappingDef, library: &BTreeMap<String, MappingDef>) -> Result<Mapping, MappingError> {
        let shared = Library::new(library.clone());
        let mut mapping = Self::build(name, def, Arc::downgrade(&shared))?;
        if !library.is_empty() {
            for (key, value) in &def.mapping {
                if let Some(missing) = value.as_str().and_then(|text| shared.first_unknown_reference(text)) {
                    let message = format!(
                        "executeMapping: no mapping `{missing}` in this pipeline (there: {:?})",
                        library.keys().collect::<Vec<_>>()
                    );
                    return Err(MappingError::Template { field: key.clone(), message });
                }
            }
        }
        // What a mapping that calls others produces depends on them too, so their definitions join
        // its fingerprint: changing a called mapping then updates the caller's objects as well. The
        // names may be computed in the template, so all of the pipeline's mappings count.
        if mapping.calls && !library.is_empty() {
            let others = serde_json::to_vec(
                &library.iter().map(|(n, d)| (n, (&d.mapping, &d.unset, &d.cast, d.pass_through.0))).collect::<Vec<_>>(),
            )
            .unwrap_or_default();
            let mut hasher = blake3::Hasher::new();
            hasher.update(&mapping.fingerprint);
            hasher.update(&others);
            mapping.fingerprint = *hasher.finalize().as_bytes();
        }
        mapping._library = Some(shared);
        Ok(mapping)
    }

    fn build(name: &str, def: &MappingDef, library: Weak<Library>) -> Result<Mapping, MappingError> {
        let mut templates = Templates::with_limits(def.limits);
        library::install(&mut templates, library);
        let mut fields = Vec::with_capacity(def.mapping.len());
        for (key, value) in &def.mapping {
            let source =
                templates.compile_field(value).map_err(|e| MappingError::Template { field: key.clone(), message: describe(&e) })?;
            fields.push(Field { key: key.clone(), out: DotPath::parse(key), source });
        }
        let mut casts = Vec::new();
        for (key, value) in &def.cast {
            let list = casts::parse_list(value).map_err(|message| MappingError::Cast { field: key.clone(), message })?;
            casts.push((key.clone(), DotPath::parse(key), list));
        }
        let definition = serde_json::to_vec(&(&def.mapping, &def.unset, &def.cast, def.pass_through.0)).unwrap_or_default();
        let calls = def.mapping.values().any(|v| v.as_str().is_some_and(|t| t.contains("executeMapping")));
        Ok(Mapping {
            name: name.to_string(),
            templates,
            fields,
            unset: def.unset.iter().map(|p| DotPath::parse(p)).collect(),
            casts,
            pass_through: def.pass_through.0,
            calls,
            encoded_keys: String::from_utf8_lossy(&definition).contains(dot::ENCODED_DOT),
            _library: None,
            fingerprint: *blake3::hash(&definition).as_bytes(),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// A hash of the mapping's definition: part of every record's hash, so a changed mapping updates
    /// every object on the next run.
    pub fn fingerprint(&self) -> [u8; 32] {
        self.fingerprint
    }

    /// Maps one record.
    pub fn apply(&self, input: &Value) -> Result<Value, MappingError> {
        // Tracked only where this mapping can call others: a call back into itself with the same
        // input would never end.
        let _frame =
            if self.calls { Some(Frame::enter(&self.name, input).map_err(|message| MappingError::Call { message })?) } else { None };
        // Dot paths address the input with `.` in keys encoded; templates see the input as it is.
        let encoded = dot::encode_keys(input);
        let rekeyed = matches!(encoded, std::borrow::Cow::Owned(_));
        let mut output = if self.pass_through && (input.is_object() || input.is_array()) {
            encoded.as_ref().clone()
        } else {
            Value::Object(Map::with_capacity(self.fields.len()))
        };
        let context = OnceLock::new();
        for field in &self.fields {
            let value = self.templates.evaluate(&field.source, input, encoded.as_ref(), &context).map_err(|e| {
                let nested = if self.calls { library::take_nesting_failure() } else { None };
                let message = nested.map(|m| format!("executeMapping: {m}")).unwrap_or_else(|| describe(&e));
                MappingError::Template { field: field.key.clone(), message }
            })?;
            dot::set(&mut output, &field.out, value);
        }
        for path in &self.unset {
            dot::remove(&mut output, path);
        }
        casts::apply_all(&mut output, &self.casts);
        if rekeyed || self.encoded_keys {
            dot::decode_keys(&mut output);
        }
        // A lone `#` key makes its value the whole object (a scalar wrapped in a list, null empty).
        if let Value::Object(map) = &mut output
            && map.len() == 1
            && let Some(root) = map.shift_remove("#")
        {
            output = match root {
                Value::Null => Value::Object(Map::new()),
                v @ (Value::Object(_) | Value::Array(_)) => v,
                scalar => Value::Array(vec![scalar]),
            };
        }
        Ok(output)
    }

    /// Maps every element of a list (or every value of an object, keeping its keys), as
    /// `executeMapping(mapping, input, true)` does; see `library::list_elements`.
    pub fn apply_list(&self, input: &Value) -> Result<Value, MappingError> {
        library::apply_list(self, input)
    }
}

/// Which records a synchronization writes: its `filter` (a template expression) and OpenConnector's
/// `conditions` (a JsonLogic rule); a record must pass both that are set.
pub struct Filter {
    templates: Templates,
    template: Option<String>,
    logic: Option<datalogic_rs::Logic>,
    source: String,
}

/// One engine for every rule: it holds no per-rule state and is cheap to share.
fn logic_engine() -> &'static datalogic_rs::Engine {
    static ENGINE: OnceLock<datalogic_rs::Engine> = OnceLock::new();
    ENGINE.get_or_init(datalogic_rs::Engine::new)
}

impl Filter {
    /// Compiles `{{ status == "available" }}` or the bare expression `status == "available"`.
    pub fn compile(source: &str) -> Result<Filter, MappingError> {
        Self::new(Some(source), None)
    }

    /// A filter from a template expression, a JsonLogic rule (`{"==": [{"var": "status"}, "available"]}`),
    /// or both.
    pub fn new(expression: Option<&str>, conditions: Option<&Value>) -> Result<Filter, MappingError> {
        let mut templates = Templates::new();
        let template = match expression {
            Some(source) => {
                let trimmed = source.trim();
                let expression = trimmed
                    .strip_prefix("{{")
                    .and_then(|s| s.strip_suffix("}}"))
                    .filter(|inner| !inner.contains("{{") && !inner.contains("}}"))
                    .unwrap_or(trimmed);
                Some(
                    templates
                        .add(&format!("{{% if {expression} %}}1{{% endif %}}"))
                        .map_err(|e| MappingError::Filter { message: describe(&e) })?,
                )
            }
            None => None,
        };
        let logic = match conditions {
            Some(rule) => {
                let invalid =
                    |e: datalogic_rs::Error| MappingError::Filter { message: format!("conditions are not a JsonLogic rule: {e}") };
                let logic = logic_engine().compile(rule).map_err(invalid)?;
                // An unknown operator only shows when it runs: try the rule once on an empty record, so
                // a typo is a load error rather than every record failing.
                let arena = datalogic_rs::bumpalo::Bump::new();
                if let Err(error) = logic_engine().evaluate(&logic, &Value::Object(Map::new()), &arena)
                    && matches!(error.kind, datalogic_rs::ErrorKind::InvalidOperator(_))
                {
                    return Err(invalid(error));
                }
                Some(logic)
            }
            None => None,
        };
        let source =
            [expression.map(str::to_string), conditions.map(|c| c.to_string())].into_iter().flatten().collect::<Vec<_>>().join(" and ");
        Ok(Filter { templates, template, logic, source })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether `record` passes.
    pub fn accepts(&self, record: &Value) -> Result<bool, MappingError> {
        if let Some(template) = &self.template {
            let context = minijinja::Value::from(minijinja::value::Serde(record));
            let rendered = self.templates.render(template, &context).map_err(|e| MappingError::Filter { message: describe(&e) })?;
            if rendered != "1" {
                return Ok(false);
            }
        }
        if let Some(logic) = &self.logic {
            // OpenConnector hands JsonLogic keys with `.` encoded, so `{"var": "a.b"}` walks a→b only.
            let encoded = dot::encode_keys(record);
            let engine = logic_engine();
            let arena = datalogic_rs::bumpalo::Bump::new();
            let result = engine
                .evaluate(logic, encoded.as_ref(), &arena)
                .map_err(|e| MappingError::Filter { message: format!("conditions: {e}") })?;
            return Ok(engine.truthy(result));
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn mapping(def: Value) -> Mapping {
        let def: MappingDef = serde_json::from_value(def).unwrap();
        Mapping::compile("m", &def).unwrap()
    }

    #[test]
    fn seed_mapping_maps_a_pet() {
        let m = mapping(json!({"mapping": {
            "title": "{{ name }}", "category": "{{ category.name }}", "status": "Published",
            "publicatiedatum": "{{ \"now\"|date(\"Y-m-d H:i:s\") }}"
        }}));
        let out = m.apply(&json!({"id": 7, "name": "Bella", "status": "available", "category": {"name": "Dogs"}})).unwrap();
        assert_eq!(out["title"], "Bella");
        assert_eq!(out["category"], "Dogs");
        assert_eq!(out["status"], "Published");
        assert_eq!(out["publicatiedatum"].as_str().unwrap().len(), 19);
        let keys: Vec<&String> = out.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["title", "category", "status", "publicatiedatum"], "mapping order is kept");
    }

    #[test]
    fn pass_through_unset_cast_and_root() {
        let m =
            mapping(json!({"passThrough": true, "mapping": {"meta.count": "{{ n }}"}, "unset": ["secret"], "cast": {"meta.count": "int"}}));
        let out = m.apply(&json!({"n": "42", "secret": "x", "keep": 1})).unwrap();
        assert_eq!(out, json!({"n": "42", "keep": 1, "meta": {"count": 42}}));
        let root = mapping(json!({"mapping": {"#": "items"}}));
        assert_eq!(root.apply(&json!({"items": [1, 2]})).unwrap(), json!([1, 2]));
    }

    #[test]
    fn template_errors_name_the_field() {
        let def: MappingDef = serde_json::from_value(json!({"mapping": {"ok": "{{ a }}", "bad": "{{ a | }}"}})).unwrap();
        let err = Mapping::compile("m", &def).err().unwrap();
        assert!(err.to_string().starts_with("field `bad`"), "{err}");
        let def: MappingDef = serde_json::from_value(json!({"mapping": {"x": "{{ a|nosuchfilter }}"}})).unwrap();
        let m = Mapping::compile("m", &def);
        let failed = match m {
            Err(e) => e.to_string(),
            Ok(m) => m.apply(&json!({"a": 1})).unwrap_err().to_string(),
        };
        assert!(failed.contains("`x`") && failed.contains("nosuchfilter"), "{failed}");
    }

    #[test]
    fn changed_mapping_changes_fingerprint() {
        let a = mapping(json!({"mapping": {"t": "{{ name }}"}}));
        let b = mapping(json!({"mapping": {"t": "{{ name|upper }}"}}));
        assert_ne!(a.fingerprint(), b.fingerprint());
        assert_eq!(a.fingerprint(), mapping(json!({"mapping": {"t": "{{ name }}"}})).fingerprint());
    }

    #[test]
    fn a_changed_called_mapping_changes_the_callers_fingerprint() {
        let library = |child: &str| -> BTreeMap<String, MappingDef> {
            let parent = json!({"mapping": {"kids": "{{ executeMapping('child', items, true)|json_encode }}"}});
            [("parent", parent), ("child", json!({"mapping": {"n": child}}))]
                .into_iter()
                .map(|(n, d)| (n.to_string(), serde_json::from_value(d).unwrap()))
                .collect()
        };
        let (a, b) = (library("name"), library("title"));
        let fa = Mapping::compile_in("parent", &a["parent"], &a).unwrap().fingerprint();
        let fb = Mapping::compile_in("parent", &b["parent"], &b).unwrap().fingerprint();
        assert_ne!(fa, fb);
        assert_eq!(fa, Mapping::compile_in("parent", &a["parent"], &a).unwrap().fingerprint());
    }

    #[test]
    fn filters() {
        let f = Filter::compile("{{ status == \"available\" }}").unwrap();
        assert!(f.accepts(&json!({"status": "available"})).unwrap());
        assert!(!f.accepts(&json!({"status": "sold"})).unwrap());
        let f = Filter::compile("price > 10 and tags|length > 0").unwrap();
        assert!(f.accepts(&json!({"price": 11, "tags": ["a"]})).unwrap());
        assert!(Filter::compile("{{ status == }}").is_err());
    }

    #[test]
    fn json_logic_conditions() {
        let rule = json!({"and": [{"==": [{"var": "status"}, "available"]}, {">": [{"var": "price"}, 10]}]});
        let f = Filter::new(None, Some(&rule)).unwrap();
        assert!(f.accepts(&json!({"status": "available", "price": 11})).unwrap());
        assert!(!f.accepts(&json!({"status": "available", "price": 9})).unwrap());
        assert!(!f.accepts(&json!({"status": "sold", "price": 11})).unwrap());
        let dotted = Filter::new(None, Some(&json!({"==": [{"var": "a&#46;b"}, 1]}))).unwrap();
        assert!(dotted.accepts(&json!({"a.b": 1})).unwrap(), "a dotted key is addressed encoded");
        let both = Filter::new(Some("price > 10"), Some(&json!({"==": [{"var": "status"}, "sold"]}))).unwrap();
        assert!(both.accepts(&json!({"status": "sold", "price": 11})).unwrap());
        assert!(!both.accepts(&json!({"status": "sold", "price": 1})).unwrap());
        assert!(Filter::new(None, Some(&json!({"nosuchop": [1]}))).is_err());
    }
}
