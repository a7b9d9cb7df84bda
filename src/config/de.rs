//! Small value types of pipeline files with forgiving parsers: durations (`30s`, `500ms`, a number of
//! seconds), booleans written as strings (`"false"`, as OpenConnector stores them), ids as strings or
//! numbers, string maps whose values may be numbers, and secrets that never print.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// A duration: a number of seconds, or a string such as `250ms`, `30s`, `5m`, `1h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span(pub Duration);

impl Span {
    /// Parses `250ms`, `30s`, `5m`, `2h`, `1d` or a bare number of seconds.
    pub fn parse(text: &str) -> Option<Duration> {
        let text = text.trim();
        let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let number: f64 = number.parse().ok()?;
        let seconds = match unit.trim() {
            "" | "s" | "sec" | "secs" | "second" | "seconds" => number,
            "ms" => number / 1000.0,
            "m" | "min" | "mins" | "minute" | "minutes" => number * 60.0,
            "h" | "hour" | "hours" => number * 3600.0,
            "d" | "day" | "days" => number * 86400.0,
            _ => return None,
        };
        (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds))
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SpanVisitor;
        impl Visitor<'_> for SpanVisitor {
            type Value = Span;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration such as 30s, 500ms, 5m or a number of seconds")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Span, E> {
                Ok(Span(Duration::from_secs(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Span, E> {
                u64::try_from(v).map(|v| Span(Duration::from_secs(v))).map_err(|_| E::custom("a duration cannot be negative"))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Span, E> {
                Span::parse(&v.to_string()).map(Span).ok_or_else(|| E::custom("a duration cannot be negative"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Span, E> {
                Span::parse(v).map(Span).ok_or_else(|| E::custom(format!("`{v}` is not a duration (write 30s, 500ms, 5m)")))
            }
        }
        deserializer.deserialize_any(SpanVisitor)
    }
}

impl Serialize for Span {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let ms = self.0.as_millis();
        if ms.is_multiple_of(1000) { s.serialize_str(&format!("{}s", ms / 1000)) } else { s.serialize_str(&format!("{ms}ms")) }
    }
}

/// A boolean that may arrive as `true`, `"true"`, `"1"`, `"yes"`, `1` (OpenConnector stores strings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(transparent)]
pub struct Flag(pub bool);

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FlagVisitor;
        impl Visitor<'_> for FlagVisitor {
            type Value = Flag;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("true or false")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Flag, E> {
                Ok(Flag(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Flag, E> {
                Ok(Flag(v != 0))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Flag, E> {
                Ok(Flag(v != 0))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Flag, E> {
                match v.trim().to_ascii_lowercase().as_str() {
                    "true" | "1" | "yes" | "on" => Ok(Flag(true)),
                    "false" | "0" | "no" | "off" | "" => Ok(Flag(false)),
                    _ => Err(E::custom(format!("`{v}` is not true or false"))),
                }
            }
        }
        deserializer.deserialize_any(FlagVisitor)
    }
}

/// A string written as a string or as a number (ids, query values: `"50"` and `50` alike).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Text(pub String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or a number")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            /// `{secret: "…"}`: a header or query value marked as a credential (shown as `***`).
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Text, A::Error> {
                let Some(key) = map.next_key::<String>()? else { return Err(de::Error::custom("expected a string, or {secret: …}")) };
                if key != "secret" {
                    return Err(de::Error::custom(format!("unknown key `{key}`: a value is a string, a number, or {{secret: …}}")));
                }
                let value: Text = map.next_value()?;
                if map.next_key::<String>()?.is_some() {
                    return Err(de::Error::custom("{secret: …} takes one key"));
                }
                crate::secrets::remember(&value.0);
                Ok(value)
            }
        }
        deserializer.deserialize_any(TextVisitor)
    }
}

/// An object that PHP may have written as `[]` (its empty array) or `null`: all three read as empty.
pub fn php_object<'de, D: Deserializer<'de>>(deserializer: D) -> Result<serde_json::Map<String, serde_json::Value>, D::Error> {
    match serde_json::Value::deserialize(deserializer)? {
        serde_json::Value::Object(map) => Ok(map),
        serde_json::Value::Null => Ok(serde_json::Map::new()),
        serde_json::Value::Array(items) if items.is_empty() => Ok(serde_json::Map::new()),
        other => Err(de::Error::custom(format!("expected an object, found `{other}`"))),
    }
}

/// A list of strings that may be `null` (empty).
pub fn string_list<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(deserializer)?.unwrap_or_default())
}

/// Header or query parameters: names to values, numbers accepted as values.
pub type TextMap = BTreeMap<String, Text>;

/// A whole number that may arrive as text (`"50"`): OpenConnector's UI stores every value as a string.
pub fn loose_count<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u32>, D::Error> {
    let text = Text::deserialize(deserializer)?;
    text.0.trim().parse().map(Some).map_err(|_| de::Error::custom(format!("`{}` is not a whole number", text.0)))
}

/// `sourceConfig.query`: HTTP query parameters for an API source (a map), or the SQL of a database
/// source (a string). One key serves both because both are what their users call it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum QueryDef {
    Params(TextMap),
    Sql(String),
}

impl Default for QueryDef {
    fn default() -> Self {
        QueryDef::Params(TextMap::new())
    }
}

impl QueryDef {
    /// The query parameters (none when this is SQL).
    pub fn params(&self) -> &TextMap {
        static EMPTY: TextMap = TextMap::new();
        match self {
            QueryDef::Params(params) => params,
            QueryDef::Sql(_) => &EMPTY,
        }
    }
    pub fn sql(&self) -> Option<&str> {
        match self {
            QueryDef::Sql(sql) => Some(sql),
            QueryDef::Params(_) => None,
        }
    }
}

impl<'de> Deserialize<'de> for QueryDef {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct QueryVisitor;
        impl<'de> Visitor<'de> for QueryVisitor {
            type Value = QueryDef;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map of query parameters, or an SQL query")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<QueryDef, E> {
                Ok(QueryDef::Sql(v.to_string()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<QueryDef, E> {
                Ok(QueryDef::default())
            }
            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<QueryDef, A::Error> {
                TextMap::deserialize(de::value::MapAccessDeserializer::new(map)).map(QueryDef::Params)
            }
        }
        deserializer.deserialize_any(QueryVisitor)
    }
}

/// A credential. Debug, Display and Serialize print `***`; only [`Secret::expose`] gives the value.
/// Every secret read is remembered by [`crate::secrets`], so no message can carry it either.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // A number is a secret too (a PIN, a numeric key); `{secret: …}` is the marked form.
        Text::deserialize(deserializer).map(|text| Secret::new(text.0))
    }
}

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        let value = value.into();
        crate::secrets::remember(&value);
        Secret(value)
    }
    /// The secret value, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("***")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_parse() {
        assert_eq!(Span::parse("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(Span::parse("30s"), Some(Duration::from_secs(30)));
        assert_eq!(Span::parse("5m"), Some(Duration::from_secs(300)));
        assert_eq!(Span::parse("2"), Some(Duration::from_secs(2)));
        assert_eq!(Span::parse("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(Span::parse("5 parsecs"), None);
        let span: Span = serde_json::from_str("\"1h\"").unwrap();
        assert_eq!(span.0, Duration::from_secs(3600));
    }

    #[test]
    fn flags_accept_strings() {
        let flag: Flag = serde_json::from_str("\"false\"").unwrap();
        assert!(!flag.0);
        let flag: Flag = serde_json::from_str("\"TRUE\"").unwrap();
        assert!(flag.0);
        assert!(serde_json::from_str::<Flag>("\"maybe\"").is_err());
    }

    #[test]
    fn secrets_never_print() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret:?}"), "***");
        assert_eq!(serde_json::to_string(&secret).unwrap(), "\"***\"");
        assert_eq!(secret.expose(), "hunter2");
    }
}
