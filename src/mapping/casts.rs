//! OpenConnector's casts (`handleCast`), with PHP's conversion rules where OpenConnector relies on them
//! (`(int)"12abc"` is 12, `(string)true` is `"1"`, loose `==`, `empty()`).

use base64::Engine;
use serde_json::{Number, Value};

use super::dot;
use super::entities::{html_decode, html_encode};
use super::php::{self, all_leaves_empty, loose_eq, php_bool, php_empty, php_float, php_int, php_string};
use super::twig;
use crate::path::DotPath;

/// One cast, parsed once when the mapping compiles.
#[derive(Debug, Clone, PartialEq)]
pub enum Cast {
    Int,
    Float,
    String,
    Bool,
    NullableBool,
    Array,
    Date,
    Url,
    UrlDecode,
    RawUrl,
    RawUrlDecode,
    Html,
    HtmlDecode,
    Base64,
    Base64Decode,
    Json,
    JsonToArray,
    Utf8,
    NullStringToNull,
    CoordinateStringToArray,
    KeyCantBeValue,
    UnsetIfValue(String),
    SetNullIfValue(String),
    CountValue(DotPath),
    MoneyStringToInt,
    IntToMoneyString,
}

pub const KNOWN: &str = "int, integer, float, string, bool, boolean, ?bool, ?boolean, array, date, url, urlDecode, rawurl, \
rawurlDecode, html, htmlDecode, base64, base64Decode, json, jsonToArray, utf8, nullStringToNull, coordinateStringToArray, \
keyCantBeValue, unsetIfValue==X, setNullIfValue==X, countValue:path, moneyStringToInt, intToMoneyString";

impl Cast {
    /// A cast by its exact name. OpenConnector compares names exactly, so `" int"` is not `int`.
    pub fn parse(name: &str) -> Option<Cast> {
        if let Some(x) = name.strip_prefix("unsetIfValue==") {
            return Some(Cast::UnsetIfValue(x.to_string()));
        }
        if let Some(x) = name.strip_prefix("setNullIfValue==") {
            return Some(Cast::SetNullIfValue(x.to_string()));
        }
        if let Some(path) = name.strip_prefix("countValue:") {
            return Some(Cast::CountValue(DotPath::parse(path)));
        }
        Some(match name {
            "int" | "integer" => Cast::Int,
            "float" => Cast::Float,
            "string" => Cast::String,
            "bool" | "boolean" => Cast::Bool,
            "?bool" | "?boolean" => Cast::NullableBool,
            "array" => Cast::Array,
            "date" => Cast::Date,
            "url" => Cast::Url,
            "urlDecode" => Cast::UrlDecode,
            "rawurl" => Cast::RawUrl,
            "rawurlDecode" => Cast::RawUrlDecode,
            "html" => Cast::Html,
            "htmlDecode" => Cast::HtmlDecode,
            "base64" => Cast::Base64,
            "base64Decode" => Cast::Base64Decode,
            "json" => Cast::Json,
            "jsonToArray" => Cast::JsonToArray,
            "utf8" => Cast::Utf8,
            "nullStringToNull" => Cast::NullStringToNull,
            "coordinateStringToArray" => Cast::CoordinateStringToArray,
            "keyCantBeValue" => Cast::KeyCantBeValue,
            "moneyStringToInt" => Cast::MoneyStringToInt,
            "intToMoneyString" => Cast::IntToMoneyString,
            _ => return None,
        })
    }

    /// Applies this cast to the value at `path` (written as `key`) in `output`. Casts only run on paths
    /// that exist; a cast that removed its key is not undone by the next one.
    pub fn apply(&self, output: &mut Value, path: &DotPath, key: &str) {
        let Some(value) = path.get(output) else { return };
        let new = match self {
            // The whole cast key, as written, is compared: `a.b` is not removed for the value `b`.
            Cast::KeyCantBeValue => {
                if loose_eq(value, key) {
                    dot::remove(output, path);
                }
                return;
            }
            Cast::UnsetIfValue(x) => {
                if matches_value(value, x) {
                    dot::remove(output, path);
                }
                return;
            }
            Cast::SetNullIfValue(x) => {
                if !matches_value(value, x) {
                    return;
                }
                Value::Null
            }
            Cast::CountValue(counted) => {
                // PHP skips an `empty()` path, and "0" is empty.
                let text = counted.segments().join(".");
                if text.is_empty() || text == "0" {
                    return;
                }
                match counted.get(output) {
                    Some(Value::Array(items)) => Value::from(items.len()),
                    Some(Value::Object(map)) => Value::from(map.len()),
                    _ => return,
                }
            }
            other => other.convert(value),
        };
        if let Some(slot) = dot::get_mut(output, path) {
            *slot = new;
        }
    }

    fn convert(&self, value: &Value) -> Value {
        match self {
            Cast::Int => Value::from(php_int(value)),
            Cast::Float => Number::from_f64(php_float(value)).map(Value::Number).unwrap_or(Value::Null),
            Cast::String => Value::String(php_string(value)),
            Cast::Bool => Value::Bool(php_bool(value)),
            Cast::NullableBool => {
                if value.is_null() {
                    Value::Null
                } else {
                    Value::Bool(php_bool(value))
                }
            }
            Cast::Array => match value {
                Value::Null => Value::Array(Vec::new()),
                Value::Array(_) | Value::Object(_) => value.clone(),
                scalar => Value::Array(vec![scalar.clone()]),
            },
            // PHP's `date($value)`: the value is the format, the time is now (a quirk kept as is).
            Cast::Date => {
                let zone = twig::utc_zone();
                let now = chrono::Utc::now().fixed_offset();
                Value::String(twig::format_php(&now, &php_string(value), &zone))
            }
            Cast::Url => Value::String(url_encode(&php_string(value), true)),
            Cast::RawUrl => Value::String(url_encode(&php_string(value), false)),
            Cast::UrlDecode => Value::String(url_decode(&php_string(value), true)),
            Cast::RawUrlDecode => Value::String(url_decode(&php_string(value), false)),
            Cast::Html => Value::String(html_encode(&php_string(value))),
            Cast::HtmlDecode => Value::String(html_decode(&php_string(value))),
            Cast::Base64 => Value::String(base64::engine::general_purpose::STANDARD.encode(php_string(value))),
            Cast::Base64Decode => Value::String(String::from_utf8_lossy(&php::base64_decode(&php_string(value))).into_owned()),
            Cast::Json => Value::String(php::json_encode(value)),
            Cast::JsonToArray => match value {
                Value::Array(_) | Value::Object(_) => value.clone(),
                other => serde_json::from_str(&html_decode(&php_string(other))).unwrap_or(Value::Null),
            },
            // iconv's ASCII//TRANSLIT; deunicode spells the common European letters the same way.
            Cast::Utf8 => Value::String(deunicode::deunicode(&php_string(value))),
            Cast::NullStringToNull => {
                if value.as_str() == Some("null") {
                    Value::Null
                } else {
                    value.clone()
                }
            }
            Cast::CoordinateStringToArray => coordinates(&php_string(value)),
            Cast::MoneyStringToInt => Value::from(php_int(&Value::String(php_string(value).replace(['.', ','], "")))),
            Cast::IntToMoneyString => Value::String(money(php_float(value) / 100.0)),
            Cast::KeyCantBeValue | Cast::UnsetIfValue(_) | Cast::SetNullIfValue(_) | Cast::CountValue(_) => value.clone(),
        }
    }
}

/// `unsetIfValue==X` / `setNullIfValue==X`: loose `==` with X; with an empty X, `empty()` or a list or
/// object whose leaves are all empty.
fn matches_value(value: &Value, x: &str) -> bool {
    if x.is_empty() { php_empty(value) || ((value.is_array() || value.is_object()) && all_leaves_empty(value)) } else { loose_eq(value, x) }
}

fn url_encode(text: &str, plus_for_space: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => out.push(b as char),
            b'~' if !plus_for_space => out.push('~'),
            b' ' if plus_for_space => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn url_decode(text: &str, plus_is_space: bool) -> String {
    let replaced = if plus_is_space { text.replace('+', " ") } else { text.to_string() };
    percent_encoding::percent_decode_str(&replaced).decode_utf8_lossy().into_owned()
}

/// `"x1 y1 x2 y2"` → `[["x1","y1"],["x2","y2"]]`, one pair → `["x","y"]`. Split on single spaces, as
/// PHP's `explode(' ', …)`, so the parts stay strings.
fn coordinates(text: &str) -> Value {
    let parts: Vec<Value> = text.split(' ').map(|p| Value::String(p.to_string())).collect();
    let mut points: Vec<Value> = parts.chunks(2).map(|pair| Value::Array(pair.to_vec())).collect();
    if points.len() == 1 { points.remove(0) } else { Value::Array(points) }
}

/// PHP's `number_format($v, 2, ',', '.')`, rounding half away from zero after PHP's pre-rounding to 15
/// significant digits (so 1.005 → "1,01", as PHP prints it).
fn money(value: f64) -> String {
    let scaled: f64 = format!("{:.14e}", value * 100.0).parse().unwrap_or(value * 100.0);
    let cents = scaled.round() as i64;
    let (sign, cents) = if cents < 0 { ("-", -cents) } else { ("", cents) };
    let whole = (cents / 100).to_string();
    let mut grouped = String::new();
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            grouped.push('.');
        }
        grouped.push(c);
    }
    format!("{sign}{grouped},{:02}", cents % 100)
}

/// A `cast` entry as written: `"int,string"` (split on `,` as PHP's `explode`) or `["int", "string"]`.
/// OpenConnector silently skips a name it does not know; syncline refuses it when the mapping loads,
/// because a skipped cast changes the output without a word (a name with spaces around it is such a
/// name in OpenConnector, so it is refused too, with a hint).
pub fn parse_list(value: &Value) -> Result<Vec<Cast>, String> {
    let names: Vec<String> = match value {
        Value::String(s) => s.split(',').map(str::to_string).collect(),
        Value::Array(items) => {
            items.iter().map(|v| v.as_str().map(str::to_string).ok_or("a cast list holds strings")).collect::<Result<_, _>>()?
        }
        _ => return Err("a cast is a string (`int`, `int,string`) or a list of strings".into()),
    };
    names
        .iter()
        // An empty name (`"int,"`) does nothing in OpenConnector either.
        .filter(|n| !n.is_empty())
        .map(|n| {
            Cast::parse(n).ok_or_else(|| {
                if n.trim() != n && Cast::parse(n.trim()).is_some() {
                    format!("cast `{n}` has spaces around it: OpenConnector would skip it; write `{}`", n.trim())
                } else {
                    format!("unknown cast `{n}` (known: {KNOWN})")
                }
            })
        })
        .collect()
}

/// Applies every cast in order to `output`.
pub fn apply_all(output: &mut Value, casts: &[(String, DotPath, Vec<Cast>)]) {
    for (key, path, list) in casts {
        for cast in list {
            cast.apply(output, path, key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cast(name: &str, v: Value) -> Value {
        let mut out = json!({ "k": v });
        Cast::parse(name).unwrap().apply(&mut out, &DotPath::parse("k"), "k");
        out.get("k").cloned().unwrap_or(json!("<unset>"))
    }

    #[test]
    fn php_scalars() {
        assert_eq!(cast("int", json!("12abc")), json!(12));
        assert_eq!(cast("int", json!("abc")), json!(0));
        assert_eq!(cast("integer", json!(12.9)), json!(12));
        assert_eq!(cast("int", json!("1e3")), json!(1000));
        assert_eq!(cast("float", json!("1.5kg")), json!(1.5));
        assert_eq!(cast("string", json!(true)), json!("1"));
        assert_eq!(cast("string", json!(false)), json!(""));
        assert_eq!(cast("string", json!(7)), json!("7"));
        assert_eq!(cast("string", json!(2.0)), json!("2"));
        assert_eq!(cast("string", json!(0.1 + 0.2)), json!("0.3"));
        assert_eq!(cast("bool", json!("yes")), json!(true));
        assert_eq!(cast("bool", json!("TRUE")), json!(true));
        assert_eq!(cast("bool", json!(" yes")), json!(false));
        assert_eq!(cast("bool", json!("1")), json!(true));
        assert_eq!(cast("bool", json!("2")), json!(false));
        assert_eq!(cast("bool", json!(null)), json!(false));
        assert_eq!(cast("?bool", json!(null)), json!(null));
        assert_eq!(cast("array", json!("x")), json!(["x"]));
    }

    #[test]
    fn encoders_and_decoders() {
        assert_eq!(cast("base64", json!("hello")), json!("aGVsbG8="));
        assert_eq!(cast("base64Decode", json!("aGVsbG8")), json!("hello"));
        assert_eq!(cast("json", json!({"a": "x/y"})), json!("{\"a\":\"x\\/y\"}"));
        assert_eq!(cast("jsonToArray", json!("{&quot;a&quot;:1}")), json!({"a": 1}));
        assert_eq!(cast("jsonToArray", json!("not json")), json!(null));
        assert_eq!(cast("url", json!("a b&c")), json!("a+b%26c"));
        assert_eq!(cast("rawurl", json!("a b~")), json!("a%20b~"));
        assert_eq!(cast("urlDecode", json!("a+b%26c")), json!("a b&c"));
        assert_eq!(cast("html", json!("<b>é")), json!("&lt;b&gt;&eacute;"));
        assert_eq!(cast("htmlDecode", json!("&lt;b&gt; &#233;")), json!("<b> é"));
        assert_eq!(cast("utf8", json!("Crème brûlée")), json!("Creme brulee"));
        assert_eq!(cast("nullStringToNull", json!("null")), json!(null));
        assert_eq!(cast("nullStringToNull", json!("x")), json!("x"));
    }

    #[test]
    fn value_tests() {
        assert_eq!(cast("keyCantBeValue", json!("k")), json!("<unset>"));
        assert_eq!(cast("keyCantBeValue", json!("v")), json!("v"));
        assert_eq!(cast("unsetIfValue==0", json!(0)), json!("<unset>"));
        assert_eq!(cast("unsetIfValue==", json!(["", null])), json!("<unset>"));
        assert_eq!(cast("unsetIfValue==", json!("0")), json!("<unset>"));
        assert_eq!(cast("unsetIfValue==", json!({"a": [0, ""]})), json!("<unset>"));
        assert_eq!(cast("unsetIfValue==", json!(["x"])), json!(["x"]));
        assert_eq!(cast("setNullIfValue==n/a", json!("n/a")), json!(null));
        assert_eq!(cast("moneyStringToInt", json!("1.234,56")), json!(123456));
        assert_eq!(cast("intToMoneyString", json!(123456)), json!("1.234,56"));
        assert_eq!(cast("intToMoneyString", json!(-5)), json!("-0,05"));
        assert_eq!(cast("coordinateStringToArray", json!("1 2")), json!(["1", "2"]));
        assert_eq!(cast("coordinateStringToArray", json!("1 2 3 4")), json!([["1", "2"], ["3", "4"]]));
        assert_eq!(cast("coordinateStringToArray", json!("1 2 3")), json!([["1", "2"], ["3"]]));
        assert_eq!(cast("coordinateStringToArray", json!("5")), json!(["5"]));
        let mut out = json!({"n": 0, "list": [1, 2, 3]});
        Cast::parse("countValue:list").unwrap().apply(&mut out, &DotPath::parse("n"), "n");
        assert_eq!(out["n"], 3);
        // keyCantBeValue compares the whole key.
        let mut out = json!({"a": {"b": "b"}});
        Cast::KeyCantBeValue.apply(&mut out, &DotPath::parse("a.b"), "a.b");
        assert_eq!(out, json!({"a": {"b": "b"}}));
    }

    #[test]
    fn lists_parse_and_unknown_casts_are_named() {
        assert_eq!(parse_list(&json!("int,string,")).unwrap(), vec![Cast::Int, Cast::String]);
        let err = parse_list(&json!(["int", "wat"])).unwrap_err();
        assert!(err.contains("`wat`"));
        let err = parse_list(&json!("int, string")).unwrap_err();
        assert!(err.contains("spaces") && err.contains("`string`"), "{err}");
    }
}
