//! A pipeline file read into JSON values plus a position index, so that every later error (serde's, a
//! dangling reference, a template syntax error) can name the file, line and column of the key at fault.
//!
//! YAML and JSON go through the same YAML 1.2 event parser (JSON is YAML's flow syntax); `${VAR}`
//! interpolation happens on scalars before their type is resolved, so `port: ${PORT}` is a number.

use std::collections::HashMap;

use serde_json::{Map, Number, Value};
use yaml_rust2::Yaml;
use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use super::ConfigError;
use super::interpolate::interpolate;

/// A position in a pipeline file, 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

/// A parsed pipeline file: its value and where each key sits.
#[derive(Debug, Clone)]
pub struct Document {
    pub file: String,
    pub value: Value,
    /// Key path (`synchronizations.pets.sourceConfig`) → position of that key (or of the item, for
    /// list elements, whose path segment is the index).
    positions: HashMap<String, Position>,
    /// Read from a file (`$ref`s resolve beside it), not sent as a value.
    from_text: bool,
}

impl Document {
    /// Parses `text` (YAML or JSON) read from `file`, interpolating `${VAR}` from `env`.
    ///
    /// The events are read one at a time (yaml-rust2's own loader recurses once per level), nesting is
    /// bounded by [`MAX_DEPTH`] and the values aliases expand to by [`MAX_VALUES`], so no file can
    /// exhaust the stack or the memory: the first problem ends the read.
    pub fn parse(file: &str, text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut builder =
            Builder { env, stack: Vec::new(), anchors: HashMap::new(), root: None, positions: HashMap::new(), error: None, values: 0 };
        let mut parser = Parser::new_from_str(text);
        loop {
            let (event, mark) = match parser.next_token() {
                Ok(next) => next,
                Err(error) => {
                    let mark = error.marker();
                    // The scanner stops flow nesting (`[[[…`) by itself, well before a stack could run out.
                    let message = if error.info().contains("recursion limit") {
                        format!("the file nests deeper than {MAX_DEPTH} levels")
                    } else {
                        error.info().to_string()
                    };
                    return Err(ConfigError::at(file, Position { line: mark.line(), column: mark.col() + 1 }, "", message));
                }
            };
            // One document: the first one ends the file as far as syncline reads it.
            if matches!(event, Event::StreamEnd | Event::DocumentEnd) || builder.error.is_some() {
                break;
            }
            builder.on_event(event, mark);
        }
        if let Some((position, key, message)) = builder.error {
            return Err(ConfigError::at(file, position, &key, message));
        }
        let value = builder.root.unwrap_or(Value::Null);
        Ok(Document { file: file.to_string(), value, positions: builder.positions, from_text: true })
    }

    /// A document that was never text (definitions sent over the API): errors name keys, not lines.
    pub fn from_value(file: &str, value: Value) -> Self {
        Document { file: file.to_string(), value, positions: HashMap::new(), from_text: false }
    }

    /// Whether this document was read from text (a file) rather than sent as a value.
    pub fn is_text(&self) -> bool {
        self.from_text
    }

    /// The position of the key at `path` (dot-joined), or of its nearest ancestor that is known.
    pub fn position(&self, path: &str) -> Position {
        let mut path = path;
        loop {
            if let Some(position) = self.positions.get(path) {
                return *position;
            }
            match path.rfind('.') {
                Some(cut) => path = &path[..cut],
                None => return self.positions.get("").copied().unwrap_or(Position { line: 1, column: 1 }),
            }
        }
    }

    /// An error about the key at `path`.
    pub fn error(&self, path: &str, message: impl Into<String>) -> ConfigError {
        if self.positions.is_empty() {
            return ConfigError { file: self.file.clone(), position: None, key: path.to_string(), message: message.into() };
        }
        ConfigError::at(&self.file, self.position(path), path, message.into())
    }
}

/// How deeply a pipeline file may nest mappings and sequences.
pub const MAX_DEPTH: usize = 128;
/// How many values a pipeline file may hold, counting each value an alias repeats; text counts a
/// value per [`TEXT_PER_VALUE`] bytes (the file's strings and the paths its positions are kept
/// under), so the bound holds for bytes too: about 64 MiB.
pub const MAX_VALUES: usize = 1_000_000;
pub const TEXT_PER_VALUE: usize = 64;

enum Frame {
    Map { map: Map<String, Value>, path: String, pending_key: Option<(String, Position)>, anchor: usize, values: usize },
    Seq { items: Vec<Value>, path: String, anchor: usize, values: usize },
}

struct Builder<'e> {
    env: &'e dyn Fn(&str) -> Option<String>,
    stack: Vec<Frame>,
    anchors: HashMap<usize, (Value, usize)>,
    root: Option<Value>,
    positions: HashMap<String, Position>,
    error: Option<(Position, String, String)>,
    /// Values made so far, aliases counted at their full size.
    values: usize,
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_string() } else { format!("{path}.{key}") }
}

impl Builder<'_> {
    /// The path a new child value at the top of the stack gets.
    fn child_path(&self) -> String {
        match self.stack.last() {
            None => String::new(),
            Some(Frame::Map { path, pending_key: Some((key, _)), .. }) => join(path, key),
            Some(Frame::Map { path, .. }) => path.clone(),
            Some(Frame::Seq { items, path, .. }) => join(path, &items.len().to_string()),
        }
    }

    fn fail(&mut self, position: Position, key: String, message: String) {
        if self.error.is_none() {
            self.error = Some((position, key, message));
        }
    }

    /// Counts `made` new values; false (with the error kept) once the file holds too many.
    fn count(&mut self, made: usize, position: Position) -> bool {
        self.values = self.values.saturating_add(made);
        if self.values <= MAX_VALUES {
            return true;
        }
        let path = self.child_path();
        self.fail(
            position,
            path,
            format!("the file holds more than {MAX_VALUES} values (each alias counted at the size of what it repeats)"),
        );
        false
    }

    /// Keeps where the value at `path` starts; the path's bytes are counted (a long key repeated
    /// down a deep file would otherwise be kept once per value under it).
    fn remember(&mut self, path: String, position: Position) {
        if self.count(path.len() / TEXT_PER_VALUE, position) {
            self.positions.entry(path).or_insert(position);
        }
    }

    /// Attaches a finished value, `size` values in all, to its parent (or makes it the root).
    fn attach(&mut self, value: Value, anchor: usize, position: Position, size: usize) {
        if anchor > 0 {
            self.anchors.insert(anchor, (value.clone(), size));
        }
        match self.stack.last_mut() {
            None => self.root = Some(value),
            Some(Frame::Seq { items, path, values, .. }) => {
                *values += size;
                let item_path = join(path, &items.len().to_string());
                items.push(value);
                self.remember(item_path, position);
            }
            Some(Frame::Map { map, pending_key, path, values, .. }) => match pending_key.take() {
                None => {
                    *values += size;
                    // This value is a key.
                    let key = match value {
                        Value::String(s) => s,
                        Value::Null => String::new(),
                        other => other.to_string(),
                    };
                    let key_path = join(path, &key);
                    if map.contains_key(&key) {
                        let message = format!("duplicate key `{key}`");
                        self.fail(position, key_path, message);
                        return;
                    }
                    *pending_key = Some((key, position));
                    self.remember(key_path, position);
                }
                Some((key, _)) => {
                    *values += size;
                    map.insert(key, value);
                }
            },
        }
    }

    fn scalar(&mut self, text: String, style: TScalarStyle, position: Position) -> Value {
        let is_key = matches!(self.stack.last(), Some(Frame::Map { pending_key: None, .. }));
        let text = if is_key {
            text
        } else {
            match interpolate(&text, self.env) {
                Ok(text) => text,
                Err(message) => {
                    let path = self.child_path();
                    self.fail(position, path, message);
                    text
                }
            }
        };
        if style != TScalarStyle::Plain || is_key {
            return Value::String(text);
        }
        match Yaml::from_str(&text) {
            Yaml::Null => Value::Null,
            Yaml::Boolean(b) => Value::Bool(b),
            Yaml::Integer(i) => Value::Number(i.into()),
            Yaml::Real(r) => match r.parse::<f64>().ok().and_then(Number::from_f64) {
                Some(n) => Value::Number(n),
                None => Value::String(text),
            },
            _ => Value::String(text),
        }
    }
}

impl Builder<'_> {
    fn on_event(&mut self, event: Event, mark: Marker) {
        let position = Position { line: mark.line(), column: mark.col() + 1 };
        match event {
            Event::MappingStart(anchor, _) | Event::SequenceStart(anchor, _) => {
                let path = self.child_path();
                if self.stack.len() >= MAX_DEPTH {
                    self.fail(position, path, format!("the file nests deeper than {MAX_DEPTH} levels"));
                    return;
                }
                self.remember(path.clone(), position);
                let frame = match event {
                    Event::MappingStart(..) => Frame::Map { map: Map::new(), path, pending_key: None, anchor, values: 1 },
                    _ => Frame::Seq { items: Vec::new(), path, anchor, values: 1 },
                };
                self.stack.push(frame);
            }
            // A container counts itself when it ends; its contents were counted as they came.
            Event::MappingEnd => {
                if let Some(Frame::Map { map, anchor, values, .. }) = self.stack.pop()
                    && self.count(1, position)
                {
                    self.attach(Value::Object(map), anchor, position, values);
                }
            }
            Event::SequenceEnd => {
                if let Some(Frame::Seq { items, anchor, values, .. }) = self.stack.pop()
                    && self.count(1, position)
                {
                    self.attach(Value::Array(items), anchor, position, values);
                }
            }
            Event::Scalar(text, style, anchor, _) if self.count(1 + text.len() / TEXT_PER_VALUE, position) => {
                let size = 1 + text.len() / TEXT_PER_VALUE;
                let value = self.scalar(text, style, position);
                self.attach(value, anchor, position, size);
            }
            Event::Alias(anchor) => {
                let size = self.anchors.get(&anchor).map_or(1, |(_, size)| *size);
                // Counted before the copy is made: a bomb is refused before it costs anything.
                if self.count(size, position) {
                    let value = self.anchors.get(&anchor).map_or(Value::Null, |(value, _)| value.clone());
                    self.attach(value, 0, position, size);
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn yaml_and_json_give_the_same_value_and_positions() {
        let yaml = "sources:\n  pets:\n    type: api\n    port: 8080\n";
        let doc = Document::parse("p.yaml", yaml, &no_env).unwrap();
        assert_eq!(doc.value["sources"]["pets"]["port"], 8080);
        assert_eq!(doc.position("sources.pets.type"), Position { line: 3, column: 5 });
        let json = "{\n\t\"sources\": {\"pets\": {\"type\": \"api\", \"port\": 8080}}\n}";
        let doc = Document::parse("p.json", json, &no_env).unwrap();
        assert_eq!(doc.value["sources"]["pets"]["port"], 8080);
        assert_eq!(doc.position("sources.pets").line, 2);
    }

    #[test]
    fn interpolation_happens_before_typing() {
        let env = |k: &str| (k == "PORT").then(|| "9090".to_string());
        let doc = Document::parse("p.yaml", "port: ${PORT}\nname: \"${PORT}\"\n", &env).unwrap();
        assert_eq!(doc.value["port"], 9090);
        assert_eq!(doc.value["name"], "9090");
    }

    #[test]
    fn unset_variable_names_its_position() {
        let err = Document::parse("p.yaml", "a:\n  b: ${NOPE}\n", &no_env).unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("p.yaml:2:"), "{text}");
        assert!(text.contains("NOPE"), "{text}");
    }

    #[test]
    fn nesting_and_alias_bombs_are_refused_with_their_line() {
        let deep = format!("a: {}1{}\n", "[".repeat(100_000), "]".repeat(100_000));
        let error = Document::parse("p.yaml", &deep, &no_env).unwrap_err().to_string();
        assert!(error.starts_with("p.yaml:1:") && error.contains("deeper than 128 levels"), "{error}");
        let block = format!("{}1\n", "- ".repeat(100_000));
        let error = Document::parse("p.yaml", &block, &no_env).unwrap_err().to_string();
        assert!(error.starts_with("p.yaml:1:") && error.contains("deeper than 128 levels"), "{error}");
        let mut laughs = String::from("a: &a [\"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\"]\n");
        for (i, name) in ["b", "c", "d", "e", "f", "g", "h", "i"].iter().enumerate() {
            let prev = ["a", "b", "c", "d", "e", "f", "g", "h"][i];
            laughs
                .push_str(&format!("{name}: &{name} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"));
        }
        let error = Document::parse("bomb.yaml", &laughs, &no_env).unwrap_err().to_string();
        assert!(error.starts_with("bomb.yaml:") && error.contains("more than 1000000 values"), "{error}");
        // A long string repeated, and a long key down a deep file, count their bytes.
        let long = format!("a: &a \"{}\"\nb: [{}]\n", "x".repeat(1 << 20), vec!["*a"; 100].join(", "));
        let error = Document::parse("long.yaml", &long, &no_env).unwrap_err().to_string();
        assert!(error.contains("more than 1000000 values"), "{error}");
        let key = "k".repeat(60_000);
        let deep_keys = format!("a: {}[{}]{}\n", format!("{{{key}: ").repeat(100), vec!["1"; 20_000].join(","), "}".repeat(100));
        let error = Document::parse("keys.yaml", &deep_keys, &no_env).map(|_| ()).unwrap_err().to_string();
        assert!(error.contains("more than 1000000 values"), "{error}");
        // Aliases of ordinary size still work.
        let doc = Document::parse("p.yaml", "base: &b {x: 1}\nother: *b\n", &no_env).unwrap();
        assert_eq!(doc.value["other"]["x"], 1);
    }

    #[test]
    fn syntax_error_names_line() {
        let err = Document::parse("p.yaml", "a: [1, 2\nb: 3\n", &no_env).unwrap_err();
        assert!(err.to_string().starts_with("p.yaml:"), "{err}");
    }
}
