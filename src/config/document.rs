//! A pipeline file read into JSON values plus a position index, so that every later error (serde's, a
//! dangling reference, a template syntax error) can name the file, line and column of the key at fault.
//!
//! YAML and JSON go through the same YAML 1.2 event parser (JSON is YAML's flow syntax); `${VAR}`
//! interpolation happens on scalars before their type is resolved, so `port: ${PORT}` is a number.

use std::collections::HashMap;

use serde_json::{Map, Number, Value};
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};
use yaml_rust2::Yaml;

use super::interpolate::interpolate;
use super::ConfigError;

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
}

impl Document {
    /// Parses `text` (YAML or JSON) read from `file`, interpolating `${VAR}` from `env`.
    pub fn parse(file: &str, text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut builder = Builder { env, stack: Vec::new(), anchors: HashMap::new(), root: None, positions: HashMap::new(), error: None };
        let mut parser = Parser::new_from_str(text);
        if let Err(error) = parser.load(&mut builder, false) {
            let mark = error.marker();
            return Err(ConfigError::at(file, Position { line: mark.line(), column: mark.col() + 1 }, "", error.info().to_string()));
        }
        if let Some((position, key, message)) = builder.error {
            return Err(ConfigError::at(file, position, &key, message));
        }
        let value = builder.root.unwrap_or(Value::Null);
        Ok(Document { file: file.to_string(), value, positions: builder.positions })
    }

    /// A document that was never text (definitions sent over the API): errors name keys, not lines.
    pub fn from_value(file: &str, value: Value) -> Self {
        Document { file: file.to_string(), value, positions: HashMap::new() }
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

enum Frame {
    Map { map: Map<String, Value>, path: String, pending_key: Option<(String, Position)>, anchor: usize },
    Seq { items: Vec<Value>, path: String, anchor: usize },
}

struct Builder<'e> {
    env: &'e dyn Fn(&str) -> Option<String>,
    stack: Vec<Frame>,
    anchors: HashMap<usize, Value>,
    root: Option<Value>,
    positions: HashMap<String, Position>,
    error: Option<(Position, String, String)>,
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

    /// Attaches a finished value to its parent (or makes it the root).
    fn attach(&mut self, value: Value, anchor: usize, position: Position) {
        if anchor > 0 {
            self.anchors.insert(anchor, value.clone());
        }
        match self.stack.last_mut() {
            None => self.root = Some(value),
            Some(Frame::Seq { items, path, .. }) => {
                let item_path = join(path, &items.len().to_string());
                self.positions.entry(item_path).or_insert(position);
                items.push(value);
            }
            Some(Frame::Map { map, pending_key, path, .. }) => match pending_key.take() {
                None => {
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
                    self.positions.insert(key_path, position);
                    *pending_key = Some((key, position));
                }
                Some((key, _)) => {
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

impl MarkedEventReceiver for Builder<'_> {
    fn on_event(&mut self, event: Event, mark: Marker) {
        let position = Position { line: mark.line(), column: mark.col() + 1 };
        match event {
            Event::MappingStart(anchor, _) => {
                let path = self.child_path();
                self.positions.entry(path.clone()).or_insert(position);
                self.stack.push(Frame::Map { map: Map::new(), path, pending_key: None, anchor });
            }
            Event::SequenceStart(anchor, _) => {
                let path = self.child_path();
                self.positions.entry(path.clone()).or_insert(position);
                self.stack.push(Frame::Seq { items: Vec::new(), path, anchor });
            }
            Event::MappingEnd => {
                if let Some(Frame::Map { map, anchor, .. }) = self.stack.pop() {
                    self.attach(Value::Object(map), anchor, position);
                }
            }
            Event::SequenceEnd => {
                if let Some(Frame::Seq { items, anchor, .. }) = self.stack.pop() {
                    self.attach(Value::Array(items), anchor, position);
                }
            }
            Event::Scalar(text, style, anchor, _) => {
                let value = self.scalar(text, style, position);
                self.attach(value, anchor, position);
            }
            Event::Alias(anchor) => {
                let value = self.anchors.get(&anchor).cloned().unwrap_or(Value::Null);
                self.attach(value, 0, position);
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
    fn syntax_error_names_line() {
        let err = Document::parse("p.yaml", "a: [1, 2\nb: 3\n", &no_env).unwrap_err();
        assert!(err.to_string().starts_with("p.yaml:"), "{err}");
    }
}
