//! How one mapping value is computed, following OpenConnector's three rules: (a) a value that is a dot
//! path existing in the input copies that input value with its type; (b) a list or object is set as
//! written; (c) anything else is rendered as a Twig template and comes out as a string, passed through
//! `html_entity_decode`. Values are compiled once per run into the cheapest form that gives the same
//! output: `{{ a.b }}` becomes a direct lookup, and text without template tags is not rendered at all.
//!
//! Twig escapes every printed value for HTML (autoescape is on in OpenConnector's environment) and the
//! decode undoes exactly that, so a printed value comes out as it was in the input, entities and all
//! (`{{ name }}` of `"Tom &amp; Jerry"` stays `"Tom &amp; Jerry"`), while entities written in the
//! template text itself, or printed with `|raw`, are decoded. The same autoescape-then-decode runs
//! here.

use std::sync::OnceLock;

use minijinja::value::{Value as JinjaValue, ValueKind};
use minijinja::{AutoEscape, Environment, Error, UndefinedBehavior};
use serde_json::Value;

use super::entities::html_decode;
use super::php::{float_string, php_string};
use super::twig;
use crate::limits::{ByteSize, TemplateLimits};
use crate::path::DotPath;

/// How one target field gets its value.
#[derive(Debug, Clone)]
pub enum FieldSource {
    /// `{{ a.b }}`: a direct lookup; values that are lists or objects fall back to the template.
    Lookup { path: DotPath, template: String },
    /// Text without template tags: the input value at that dot path if it exists (typed, rule a),
    /// else the text as Twig renders it (entities decoded, rule c).
    PathOrText { path: DotPath, text: String },
    /// Text and prints of paths or strings through common filters only (`"{{ name }} ({{ category.name
    /// }})"`, `{{ updated_at|date("Y-m-d") }}`): printed piece by piece as the template would print
    /// it, without the engine; a list or object value, or a filter's error, falls back to it.
    Concat { parts: Vec<Part>, template: String },
    /// A real template, rendered; `context` says whether it reads the record at all.
    Template { template: String, context: bool },
    /// A list or an object: set as written (rule b).
    Literal(Value),
}

/// A piece of a [`FieldSource::Concat`].
#[derive(Debug, Clone)]
pub enum Part {
    Text(String),
    /// A value, read at a path (or written as a string), through its filters.
    Print {
        source: Operand,
        filters: Vec<(twig::plan::Filter, Vec<JinjaValue>)>,
    },
}

/// Where a [`Part::Print`] reads its value.
#[derive(Debug, Clone)]
pub enum Operand {
    Path(DotPath),
    Literal(String),
}

/// A template environment with the Twig runtime, in which Twig templates are added by name (each
/// translated, see [`twig`]). Each render is bounded: by fuel (steps taken) and by the bytes it prints.
pub struct Templates {
    pub(super) env: Environment<'static>,
    count: usize,
    max_output: usize,
    /// The templates that read no variable.
    constant: std::collections::HashSet<String>,
}

impl Templates {
    pub fn new() -> Templates {
        Self::with_limits(TemplateLimits::default())
    }

    pub fn with_limits(limits: TemplateLimits) -> Templates {
        let mut env = Environment::new();
        env.set_fuel(Some(limits.template_fuel));
        env.set_undefined_behavior(UndefinedBehavior::Chainable);
        // As Twig's default: printed values are escaped for HTML, and `evaluate` decodes the result.
        env.set_auto_escape_callback(|_| AutoEscape::Html);
        env.set_formatter(twig_formatter);
        // Whitespace is as Twig leaves it after translation (which applies Twig's own trimming); a
        // template's last newline is kept, as Twig keeps it.
        if let Ok(syntax) = minijinja::syntax::SyntaxConfig::builder().keep_trailing_newline(true).build() {
            env.set_syntax(syntax);
        }
        twig::install(&mut env);
        Templates { env, count: 0, max_output: limits.max_template_output_bytes.as_usize(), constant: Default::default() }
    }

    /// Compiles the Twig template `source` and returns the name it is kept under.
    pub fn add(&mut self, source: &str) -> Result<String, Error> {
        self.count += 1;
        let name = format!("t{}", self.count);
        let translated = twig::translate(source).map_err(|e| Error::new(minijinja::ErrorKind::SyntaxError, e.to_string()))?;
        self.env.add_template_owned(name.clone(), translated.source)?;
        if !translated.reads_context {
            self.constant.insert(name.clone());
        }
        Ok(name)
    }

    /// Whether the template reads any variable (a constant template needs no record context).
    pub fn reads_variables(&self, name: &str) -> bool {
        !self.constant.contains(name)
    }

    /// Renders template `name`; past the output limit the render stops with an error naming it.
    pub fn render(&self, name: &str, context: &JinjaValue) -> Result<String, Error> {
        let mut out = Capped { bytes: Vec::new(), max: self.max_output };
        let _budget = twig::begin_render(self.max_output as u64);
        match self.env.get_template(name)?.render_captured_to(context, &mut out) {
            Ok(_) => String::from_utf8(out.bytes)
                .map_err(|_| Error::new(minijinja::ErrorKind::BadSerialization, "the template printed invalid UTF-8")),
            Err(_) if out.bytes.len() > out.max => Err(Error::new(
                minijinja::ErrorKind::InvalidOperation,
                format!("the template printed more than maxTemplateOutputBytes ({})", ByteSize(out.max as u64)),
            )),
            Err(error) if error.kind() == minijinja::ErrorKind::OutOfFuel => Err(Error::new(
                minijinja::ErrorKind::OutOfFuel,
                "the template took more steps than templateFuel allows (a loop that runs too long?)",
            )),
            Err(error) => Err(error),
        }
    }

    /// Compiles one mapping value.
    pub fn compile_field(&mut self, value: &Value) -> Result<FieldSource, Error> {
        let text = match value {
            Value::Array(_) | Value::Object(_) => return Ok(FieldSource::Literal(value.clone())),
            Value::String(text) => text.clone(),
            // Numbers and booleans reach Twig as PHP strings (`5` → "5", `true` → "1"); null, which
            // OpenConnector cannot render at all, as "".
            scalar => php_string(scalar),
        };
        if !is_template(&text) {
            return Ok(FieldSource::PathOrText { path: DotPath::parse(&text), text: html_decode(&text) });
        }
        let template = self.add(&text)?;
        if let Some(path) = plain_lookup(&text) {
            return Ok(FieldSource::Lookup { path: DotPath::parse(path), template });
        }
        if let Some(parts) = plain_parts(&text) {
            return Ok(FieldSource::Concat { parts, template });
        }
        let context = self.reads_variables(&template);
        Ok(FieldSource::Template { template, context })
    }

    /// Computes a field for `input`; `encoded` is the input with `.` in keys written `&#46;`, which
    /// dot paths (rule a) address, while templates see `input` itself. `context` is the record as a
    /// template value, made on first need.
    pub fn evaluate(&self, source: &FieldSource, input: &Value, encoded: &Value, context: &OnceLock<JinjaValue>) -> Result<Value, Error> {
        let render = |template: &str, needs_record: bool| -> Result<Value, Error> {
            let rendered = if needs_record {
                self.render(template, context.get_or_init(|| super::ordered::to_jinja(input)))?
            } else {
                self.render(template, &JinjaValue::UNDEFINED)?
            };
            Ok(Value::String(html_decode(&rendered)))
        };
        match source {
            FieldSource::Literal(v) => Ok(v.clone()),
            FieldSource::PathOrText { path, text } => Ok(path.get(encoded).cloned().unwrap_or_else(|| Value::String(text.clone()))),
            FieldSource::Lookup { path, template } => match path.get(input) {
                None => Ok(Value::String(String::new())),
                // Escaped and decoded again: the string itself.
                Some(Value::String(s)) => Ok(Value::String(s.clone())),
                Some(v @ (Value::Number(_) | Value::Bool(_) | Value::Null)) => Ok(Value::String(php_string(v))),
                Some(_) => render(template, true),
            },
            FieldSource::Concat { parts, template } => {
                // What the engine prints: the text as written, each value escaped for HTML (then the
                // whole is decoded, as a rendered template is).
                let mut printed = String::new();
                for part in parts {
                    let done = match part {
                        Part::Text(text) => {
                            printed.push_str(text);
                            true
                        }
                        Part::Print { source, filters } => print(source, filters, input, &mut printed),
                    };
                    if !done || printed.len() > self.max_output {
                        // The engine prints what this cannot, and says how a limit was passed.
                        return render(template, true);
                    }
                }
                Ok(Value::String(html_decode(&printed)))
            }
            FieldSource::Template { template, context } => render(template, *context),
        }
    }
}

/// The pieces of a template that prints only text and paths or strings through common filters.
fn plain_parts(text: &str) -> Option<Vec<Part>> {
    use twig::plan::{Piece, Source};
    let pieces = twig::plan::plain(text)?;
    Some(
        pieces
            .into_iter()
            .map(|piece| match piece {
                Piece::Text(text) => Part::Text(text),
                Piece::Print { source, filters } => {
                    let source = match source {
                        Source::Path(names) => Operand::Path(DotPath::parse(&names.join("."))),
                        Source::Literal(text) => Operand::Literal(text),
                    };
                    Part::Print { source, filters }
                }
            })
            .collect(),
    )
}

/// Prints one value as the engine would (see [`twig_formatter`]); `false` when only the engine can
/// (a list or an object, or a filter that fails: the engine gives its error).
fn print(source: &Operand, filters: &[(twig::plan::Filter, Vec<JinjaValue>)], input: &Value, out: &mut String) -> bool {
    use std::fmt::Write;
    let found = match source {
        Operand::Path(path) => path.get(input),
        Operand::Literal(_) => None,
    };
    if filters.is_empty() {
        match found {
            None => {}
            Some(Value::String(s)) => {
                let _ = write!(out, "{}", minijinja::HtmlEscape(s));
            }
            Some(v @ (Value::Number(_) | Value::Bool(_) | Value::Null)) => out.push_str(&php_string(v)),
            Some(_) => return false,
        }
        return true;
    }
    let mut value = match (source, found) {
        (Operand::Literal(text), _) => JinjaValue::from(text.as_str()),
        (Operand::Path(_), None) => JinjaValue::UNDEFINED,
        (Operand::Path(_), Some(Value::Array(_) | Value::Object(_))) => return false,
        (Operand::Path(_), Some(scalar)) => super::ordered::to_jinja(scalar),
    };
    for (filter, args) in filters {
        match filter.apply(value, args) {
            Ok(next) => value = next,
            Err(_) => return false,
        }
    }
    match value.kind() {
        ValueKind::None | ValueKind::Undefined => {}
        ValueKind::Bool => out.push_str(if value.is_true() { "1" } else { "" }),
        ValueKind::Number if value.is_integer() => {
            let _ = write!(out, "{value}");
        }
        ValueKind::Number => match f64::try_from(value) {
            Ok(f) => out.push_str(&float_string(f)),
            Err(_) => return false,
        },
        ValueKind::String if value.is_safe() => out.push_str(value.as_str().unwrap_or_default()),
        ValueKind::String => {
            let _ = write!(out, "{}", minijinja::HtmlEscape(value.as_str().unwrap_or_default()));
        }
        _ => return false,
    }
    true
}

impl Default for Templates {
    fn default() -> Self {
        Self::new()
    }
}

/// Output that refuses to grow past `max` bytes.
struct Capped {
    bytes: Vec<u8>,
    max: usize,
}

impl std::io::Write for Capped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.bytes.len() + buf.len() > self.max {
            self.bytes.resize(self.max + 1, 0);
            return Err(std::io::Error::other("the output limit is reached"));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Whether Twig would see a tag in `text` (otherwise it renders the text as it is).
pub fn is_template(text: &str) -> bool {
    text.contains("{{") || text.contains("{%") || text.contains("{#")
}

/// `{{ a.b.c }}` (only identifiers and list indexes, no filters): the path inside.
fn plain_lookup(text: &str) -> Option<&str> {
    // Text around the tag is printed too, so only the bare tag is a lookup.
    let inner = text.strip_prefix("{{")?.strip_suffix("}}")?.trim();
    let mut segments = inner.split('.');
    let first = segments.next()?;
    let ident =
        |s: &str| !s.is_empty() && !s.starts_with(|c: char| c.is_ascii_digit()) && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    let index = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
    let keywords = ["true", "false", "none", "null", "True", "False", "None", "loop", "self", "namespace"];
    (ident(first) && !keywords.contains(&first) && segments.all(|s| ident(s) || index(s))).then_some(inner)
}

/// Prints values as Twig does: null prints nothing, true prints `1`, false nothing, floats as PHP.
fn twig_formatter(out: &mut minijinja::Output, state: &mut minijinja::State, value: &JinjaValue) -> Result<(), Error> {
    match value.kind() {
        // A DateTime (`date()`) cannot be printed, in PHP either: the `date` filter formats it.
        ValueKind::Map if value.as_object().is_some_and(|_| twig::to_php_string(value).is_err()) => twig::to_php_string(value).map(drop),
        ValueKind::None | ValueKind::Undefined => Ok(()),
        ValueKind::Bool => {
            if value.is_true() {
                out.write_str("1").map_err(Error::from)?;
            }
            Ok(())
        }
        ValueKind::Number if !value.is_integer() => match f64::try_from(value.clone()) {
            Ok(f) => out.write_str(&float_string(f)).map_err(Error::from),
            Err(_) => minijinja::escape_formatter(out, state, value),
        },
        // PHP prints an array as `Array` (with a warning).
        ValueKind::Seq | ValueKind::Map | ValueKind::Iterable => out.write_str("Array").map_err(Error::from),
        _ => minijinja::escape_formatter(out, state, value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn eval(mapping_value: Value, input: Value) -> Value {
        let mut t = Templates::new();
        let source = t.compile_field(&mapping_value).unwrap();
        t.evaluate(&source, &input, &input, &OnceLock::new()).unwrap()
    }

    /// `text` as the template engine renders it: a tag the plain printer does not take keeps it there.
    fn slow(text: &str) -> String {
        format!("{text}{{% if false %}}{{% endif %}}")
    }

    fn eval_result(mapping_value: Value, input: &Value) -> Result<Value, Error> {
        let mut t = Templates::new();
        let source = t.compile_field(&mapping_value).unwrap();
        t.evaluate(&source, input, input, &OnceLock::new())
    }

    #[test]
    fn concatenations_print_like_the_template_engine() {
        let input = json!({"a": {"s": "x&amp;y <b>", "i": 7, "f": 1.5, "whole": 2.0, "t": true, "f0": false, "n": null, "list": [1, 2],
            "amp": "&", "semi": ";", "quote": "it's \"q\""}, "b": "Tom &amp; Jerry"});
        let keys = ["s", "i", "f", "whole", "t", "f0", "n", "missing", "list", "amp", "semi", "quote"];
        for (k1, k2) in keys.iter().flat_map(|k1| keys.iter().map(move |k2| (k1, k2))) {
            for shape in [
                "{{ a.K1 }} ({{ a.K2 }})",
                "&amp{{ a.K1 }}{{ a.K2 }}&#59;",
                "x {{a.K1}}-{{ b }} &lt;{{ a.K2 }}&gt;",
                "{{ a.K1 }}{{ a.K2 }}",
                "{{ a.K1|upper }} {{ a.K2|lower }}",
                "{{ a.K1|default('n/a') }}\n{{- a.K2|capitalize }}",
                "{{ a.K1|trim|title }} {{ 'x&y' }} {{ \"&lt;\"|upper }}",
            ] {
                let text = shape.replace("K1", k1).replace("K2", k2);
                let fast = eval(json!(text), input.clone());
                let slow = eval(json!(slow(&text)), input.clone());
                assert_eq!(fast, slow, "{text}");
            }
        }
        let mut t = Templates::new();
        for (text, concat) in [
            ("{{ a }} ({{ b.c }})", true),
            ("{{ a|upper }} {{ b }}", true),
            ("{{ a }}\n{{ b }}", true),
            ("{{- a }} x", true),
            ("{{ a|date('Y-m-d') }} {# note #}", true),
            ("{{ a|join(', ') }}", false),
            ("{{ a ~ b }}", false),
            ("{{ a[b] }}", false),
            ("{{ a|date(format) }}", false),
            ("{{ loop.index }}", false),
            ("{% if a %}x{% endif %}", false),
        ] {
            assert_eq!(matches!(t.compile_field(&json!(text)).unwrap(), FieldSource::Concat { .. }), concat, "{text}");
        }
    }

    #[test]
    fn filtered_prints_match_the_template_engine_on_random_records() {
        use proptest::prelude::*;
        use proptest::test_runner::{Config, TestRunner};
        let scalar = prop_oneof![
            Just(json!(null)),
            any::<bool>().prop_map(|b| json!(b)),
            any::<i32>().prop_map(|n| json!(n)),
            (-1.0e6..1.0e6f64).prop_map(|f| json!(f)),
            (0i64..2_000_000_000).prop_map(|n| json!(n)),
            "[ a-zA-Z&;<>'\"éß0-9-]{0,12}".prop_map(|s| json!(s)),
            prop_oneof![
                Just("2024-03-05T10:20:30Z"),
                Just("2024-03-05"),
                Just("2024-03-05 10:20:30+02:00"),
                Just("not a date"),
                Just(""),
                Just("&amp; DOGS"),
            ]
            .prop_map(|s| json!(s)),
            Just(json!([1, "two"])),
            Just(json!({"x": 1})),
        ];
        let filter = prop_oneof![
            Just(""),
            Just("|lower"),
            Just("|upper"),
            Just("|capitalize"),
            Just("|title"),
            Just("|trim"),
            Just("|trim('-')"),
            Just("|default('none')"),
            Just("|default"),
            Just("|date('Y-m-d')"),
            Just("|date('D, d M Y H:i', 'Europe/Amsterdam')"),
            Just("|date"),
        ];
        let field = (0usize..3, proptest::collection::vec(filter, 0..3), "[ a-z&;()]{0,4}");
        let mut runner = TestRunner::new(Config { cases: 400, failure_persistence: None, ..Config::default() });
        runner
            .run(&(proptest::collection::vec(scalar, 3), proptest::collection::vec(field, 1..4)), |(values, fields)| {
                let input = json!({"r": {"a": values[0], "b": values[1]}, "c": values[2]});
                let text: String = fields
                    .iter()
                    .map(|(key, filters, between)| format!("{between}{{{{ {}{} }}}}", ["r.a", "r.b", "c"][*key], filters.concat()))
                    .collect();
                let fast = eval_result(json!(text), &input);
                let slow = eval_result(json!(slow(&text)), &input);
                match (&fast, &slow) {
                    (Ok(fast), Ok(slow)) => prop_assert_eq!(fast, slow, "{} of {}", text, input),
                    (Err(_), Err(_)) => {}
                    _ => prop_assert!(false, "{text} of {input}: {fast:?} and {slow:?}"),
                }
                Ok(())
            })
            .unwrap();
        let input = json!({"updated_at": "2024-03-05T10:20:30Z", "owner": {"city": "Utrecht"}});
        assert_eq!(eval(json!("{{ updated_at|date(\"Y-m-d\") }} {{ owner.city|upper }}"), input), json!("2024-03-05 UTRECHT"));
    }

    #[test]
    fn lookups_render_like_the_template_engine() {
        let input = json!({"a": {"s": "x&amp;y", "i": 7, "f": 1.5, "whole": 2.0, "t": true, "f0": false, "n": null, "list": [1, 2]}});
        for key in ["s", "i", "f", "whole", "t", "f0", "n", "missing", "list"] {
            let fast = eval(json!(format!("{{{{ a.{key} }}}}")), input.clone());
            let slow = eval(json!(slow(&format!("{{{{ a.{key} }}}}"))), input.clone());
            assert_eq!(fast, slow, "field {key}");
        }
        assert_eq!(eval(json!("{{ a.i }}"), input.clone()), json!("7"));
        assert_eq!(eval(json!("{{ a.t }}"), input.clone()), json!("1"));
        assert_eq!(eval(json!("{{ a.whole }}"), input.clone()), json!("2"));
        assert_eq!(eval(json!("{{ a.s }}"), input.clone()), json!("x&amp;y"), "printed values keep their entities");
        assert_eq!(eval(json!("{{ a.s|raw }} &lt;b&gt;"), input), json!("x&y <b>"), "raw values and template text are decoded");
    }

    #[test]
    fn bare_paths_copy_typed_values_and_text_stays_text() {
        let input = json!({"category": {"name": "Dogs", "id": 3}});
        assert_eq!(eval(json!("category.id"), input.clone()), json!(3));
        assert_eq!(eval(json!("category"), input.clone()), json!({"name": "Dogs", "id": 3}));
        assert_eq!(eval(json!("Published"), input.clone()), json!("Published"));
        assert_eq!(eval(json!(["a", 1]), input.clone()), json!(["a", 1]));
        assert_eq!(eval(json!(5), input.clone()), json!("5"));
        assert_eq!(eval(json!(true), input.clone()), json!("1"));
        assert_eq!(eval(json!("R&amp;D"), input), json!("R&D"));
    }

    #[test]
    fn templates_and_twig_filters() {
        let input = json!({"name": "Bella", "tags": [{"name": "cute"}], "title": "Hello World"});
        assert_eq!(eval(json!("{{ name|upper }} ({{ tags.0.name }})"), input.clone()), json!("BELLA (cute)"));
        assert_eq!(eval(json!("{{ title|slugify }}"), input.clone()), json!("hello-world"));
        assert_eq!(eval(json!("{{ missing.deeper|default('none') }}"), input.clone()), json!("none"));
        let date = eval(json!("{{ \"now\"|date(\"Y-m-d H:i:s\") }}"), input);
        let text = date.as_str().unwrap();
        assert_eq!(text.len(), 19, "{text}");
        assert!(chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S").is_ok(), "{text}");
    }

    #[test]
    fn runaway_templates_stop_at_their_limits() {
        let limits = TemplateLimits { template_fuel: 100_000, max_template_output_bytes: ByteSize(1024) };
        let mut t = Templates::with_limits(limits);
        let loops = t
            .add("{% for i in range(1, 300) %}{% for j in range(1, 300) %}{% for k in range(1, 300) %}{% endfor %}{% endfor %}{% endfor %}")
            .unwrap();
        let error = t.render(&loops, &JinjaValue::UNDEFINED).unwrap_err().to_string();
        assert!(error.contains("templateFuel"), "{error}");
        // A value is bounded too, before it is made: a range of 10,000 is 160 KB of slots.
        let wide = t.add("{{ range(1, 10000)|length }}").unwrap();
        let error = t.render(&wide, &JinjaValue::UNDEFINED).unwrap_err().to_string();
        assert!(error.contains("8 × maxTemplateOutputBytes (8 KiB)"), "{error}");
        let big = t.add("{% for i in 1..100 %}0123456789abcdef{% endfor %}").unwrap();
        let error = t.render(&big, &JinjaValue::UNDEFINED).unwrap_err().to_string();
        assert!(error.contains("maxTemplateOutputBytes (1 KiB)"), "{error}");
        // Arrows run on fuel of their own, charged to the template: a million calls are too many.
        let arrows = t.add("{{ range(1, 300)|map(i => range(1, 300)|map(j => j)|length)|length }}").unwrap();
        let error = t.render(&arrows, &JinjaValue::UNDEFINED).unwrap_err().to_string();
        assert!(error.contains("templateFuel"), "{error}");
        let small = t.add("{{ 'ok' }}").unwrap();
        assert_eq!(t.render(&small, &JinjaValue::UNDEFINED).unwrap(), "ok");
    }

    #[test]
    fn sorting_by_no_order_at_all_neither_panics_nor_loses_items() {
        let mut t = Templates::new();
        let mixed =
            t.add("{{ [1, 'a', '10', null, true, [1], 'b', 2.5, '1e1', ' 5', -3, 'B']|merge(range(1, 200))|sort|length }}").unwrap();
        assert_eq!(t.render(&mixed, &JinjaValue::UNDEFINED).unwrap(), "212");
        let random = t.add("{{ range(1, 500)|sort((a, b) => random(2) - 1)|reduce((sum, i) => sum + i, 0) }}").unwrap();
        for _ in 0..20 {
            assert_eq!(t.render(&random, &JinjaValue::UNDEFINED).unwrap(), "125250");
        }
    }

    #[test]
    fn plain_lookup_detection() {
        assert_eq!(plain_lookup("{{ a.b }}"), Some("a.b"));
        assert_eq!(plain_lookup("{{a.0.c}}"), Some("a.0.c"));
        assert_eq!(plain_lookup("{{ a|upper }}"), None);
        assert_eq!(plain_lookup("{{ true }}"), None);
        assert_eq!(plain_lookup("x {{ a }}"), None);
        assert_eq!(plain_lookup("{{ a }}\n"), None);
    }
}
