//! OpenConnector's casts, with PHP's conversion rules where OpenConnector relies on them
//! (`(int)"12abc"` is 12, `(string)true` is `"1"`, loose `==`).

use base64::Engine;
use serde_json::{Map, Number, Value};

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
    pub fn parse(name: &str) -> Option<Cast> {
        let name = name.trim();
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
    /// that exist.
    pub fn apply(&self, output: &mut Value, path: &DotPath, key: &str) {
        let Some(value) = path.get(output) else { return };
        let new = match self {
            Cast::KeyCantBeValue => {
                if loose_eq(value, key) || path.segments().last().is_some_and(|last| loose_eq(value, last)) {
                    path.remove(output);
                }
                return;
            }
            Cast::UnsetIfValue(x) => {
                if matches_value(value, x) {
                    path.remove(output);
                }
                return;
            }
            Cast::SetNullIfValue(x) => {
                if !matches_value(value, x) {
                    return;
                }
                Value::Null
            }
            Cast::CountValue(counted) => match counted.get(output) {
                Some(Value::Array(items)) => Value::from(items.len()),
                Some(Value::Object(map)) => Value::from(map.len()),
                _ => return,
            },
            other => other.convert(value),
        };
        path.set(output, new);
    }

    fn convert(&self, value: &Value) -> Value {
        match self {
            Cast::Int => Value::from(php_int(value)),
            Cast::Float => Number::from_f64(php_float(value)).map(Value::Number).unwrap_or(Value::Null),
            Cast::String => Value::String(php_string(value)),
            Cast::Bool => Value::Bool(php_bool(value)),
            Cast::NullableBool => if value.is_null() { Value::Null } else { Value::Bool(php_bool(value)) },
            Cast::Array => match value {
                Value::Null => Value::Array(Vec::new()),
                Value::Array(_) | Value::Object(_) => value.clone(),
                scalar => Value::Array(vec![scalar.clone()]),
            },
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
            Cast::Base64Decode => match base64::engine::general_purpose::STANDARD.decode(php_string(value).trim()) {
                Ok(bytes) => Value::String(String::from_utf8_lossy(&bytes).into_owned()),
                Err(_) => Value::Bool(false),
            },
            Cast::Json => Value::String(serde_json::to_string(value).unwrap_or_default()),
            Cast::JsonToArray => match value {
                Value::Array(_) | Value::Object(_) => value.clone(),
                other => serde_json::from_str(&html_decode(&php_string(other))).unwrap_or(Value::Null),
            },
            Cast::Utf8 => Value::String(deunicode::deunicode(&php_string(value))),
            Cast::NullStringToNull => if value.as_str() == Some("null") { Value::Null } else { value.clone() },
            Cast::CoordinateStringToArray => coordinates(&php_string(value)),
            Cast::MoneyStringToInt => Value::from(php_int(&Value::String(php_string(value).replace(['.', ','], "")))),
            Cast::IntToMoneyString => Value::String(money(php_float(value) / 100.0)),
            Cast::KeyCantBeValue | Cast::UnsetIfValue(_) | Cast::SetNullIfValue(_) | Cast::CountValue(_) => value.clone(),
        }
    }
}

/// `unsetIfValue==X` / `setNullIfValue==X`: loose equality, and with an empty X, "is empty".
fn matches_value(value: &Value, x: &str) -> bool {
    if x.is_empty() { is_empty_deep(value) } else { loose_eq(value, x) }
}

fn is_empty_deep(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(items) => items.iter().all(is_empty_deep),
        Value::Object(map) => map.values().all(is_empty_deep),
        Value::Bool(b) => !b,
        Value::Number(_) => false,
    }
}

/// PHP 8's `$value == $text`.
pub fn loose_eq(value: &Value, text: &str) -> bool {
    match value {
        Value::Null => text.is_empty(),
        Value::Bool(b) => *b != (text.is_empty() || text == "0"),
        Value::Number(n) => match numeric(text) {
            Some(t) => n.as_f64() == Some(t),
            None => n.to_string() == text,
        },
        Value::String(s) => match (numeric(s), numeric(text)) {
            (Some(a), Some(b)) => a == b,
            _ => s == text,
        },
        Value::Array(_) | Value::Object(_) => false,
    }
}

/// A whole numeric string (PHP's `is_numeric`), as a number.
fn numeric(text: &str) -> Option<f64> {
    let t = text.trim();
    if t.is_empty() || t.eq_ignore_ascii_case("nan") || t.to_ascii_lowercase().contains("inf") {
        return None;
    }
    t.parse::<f64>().ok()
}

/// The leading number of a string, as PHP's `(int)`/`(float)` read it (`"12abc"` → 12).
fn leading_number(text: &str) -> f64 {
    let t = text.trim_start();
    let bytes = t.as_bytes();
    let mut end = 0;
    if end < bytes.len() && (bytes[end] == b'+' || bytes[end] == b'-') {
        end += 1;
    }
    let digits_start = end;
    while end < bytes.len() && bytes[end].is_ascii_digit() {
        end += 1;
    }
    if end < bytes.len() && bytes[end] == b'.' {
        end += 1;
        while end < bytes.len() && bytes[end].is_ascii_digit() {
            end += 1;
        }
    }
    if end == digits_start || (end == digits_start + 1 && bytes[digits_start] == b'.') {
        return 0.0;
    }
    let mantissa_end = end;
    if end < bytes.len() && (bytes[end] == b'e' || bytes[end] == b'E') {
        let mut e = end + 1;
        if e < bytes.len() && (bytes[e] == b'+' || bytes[e] == b'-') {
            e += 1;
        }
        let exp_digits = e;
        while e < bytes.len() && bytes[e].is_ascii_digit() {
            e += 1;
        }
        if e > exp_digits {
            end = e;
        }
    }
    t[..end].parse().or_else(|_| t[..mantissa_end].parse()).unwrap_or(0.0)
}

pub fn php_int(value: &Value) -> i64 {
    match value {
        Value::Null => 0,
        Value::Bool(b) => i64::from(*b),
        Value::Number(n) => n.as_i64().unwrap_or_else(|| n.as_f64().map(|f| if f.is_finite() { f.trunc() as i64 } else { 0 }).unwrap_or(0)),
        Value::String(s) => {
            let f = leading_number(s);
            if f.is_finite() { f.trunc() as i64 } else { 0 }
        }
        Value::Array(items) => i64::from(!items.is_empty()),
        Value::Object(map) => i64::from(!map.is_empty()),
    }
}

pub fn php_float(value: &Value) -> f64 {
    match value {
        Value::Number(n) => n.as_f64().unwrap_or(0.0),
        Value::String(s) => leading_number(s),
        other => php_int(other) as f64,
    }
}

/// PHP's `(string)`: true is "1", false and null are "", 1.0 is "1".
pub fn php_string(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::Bool(true) => "1".into(),
        Value::Bool(false) => String::new(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if !n.is_i64() && !n.is_u64() && f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
            _ => n.to_string(),
        },
        Value::String(s) => s.clone(),
        Value::Array(_) => "Array".into(),
        Value::Object(_) => serde_json::to_string(value).unwrap_or_default(),
    }
}

/// OpenConnector's bool cast: true iff `(int)$v === 1` or the lowercase string is `true`/`yes`.
pub fn php_bool(value: &Value) -> bool {
    if let Value::Bool(b) = value {
        return *b;
    }
    if let Value::String(s) = value
        && matches!(s.trim().to_ascii_lowercase().as_str(), "true" | "yes")
    {
        return true;
    }
    php_int(value) == 1
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

fn html_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#039;"),
            '\u{a0}' => out.push_str("&nbsp;"),
            c => out.push(c),
        }
    }
    out
}

/// Decodes HTML entities: the common named ones and every numeric one.
pub fn html_decode(text: &str) -> String {
    if !text.contains('&') {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        let decoded = tail.find(';').filter(|&end| end <= 10).and_then(|end| {
            let entity = &tail[1..end];
            let c = match entity {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "nbsp" => Some('\u{a0}'),
                "euro" => Some('€'),
                "copy" => Some('©'),
                _ => entity
                    .strip_prefix("#x")
                    .or_else(|| entity.strip_prefix("#X"))
                    .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                    .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                    .and_then(char::from_u32),
            };
            c.map(|c| (c, end))
        });
        match decoded {
            Some((c, end)) => {
                out.push(c);
                rest = &tail[end + 1..];
            }
            None => {
                out.push('&');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn coordinates(text: &str) -> Value {
    let parts: Vec<Value> = text.split_whitespace().map(|p| Value::String(p.to_string())).collect();
    if parts.len() == 2 {
        return Value::Array(parts);
    }
    Value::Array(parts.chunks(2).map(|pair| Value::Array(pair.to_vec())).collect())
}

/// PHP's `number_format($v, 2, ',', '.')`.
fn money(value: f64) -> String {
    let cents = (value * 100.0).round() as i64;
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

/// A `cast` entry as written: `"int,string"` or `["int", "string"]`.
pub fn parse_list(value: &Value) -> Result<Vec<Cast>, String> {
    let names: Vec<String> = match value {
        Value::String(s) => s.split(',').map(str::to_string).collect(),
        Value::Array(items) => items.iter().map(|v| v.as_str().map(str::to_string).ok_or("a cast list holds strings")).collect::<Result<_, _>>()?,
        _ => return Err("a cast is a string (`int`, `int,string`) or a list of strings".into()),
    };
    names
        .iter()
        .filter(|n| !n.trim().is_empty())
        .map(|n| Cast::parse(n).ok_or_else(|| format!("unknown cast `{}` (known: {KNOWN})", n.trim())))
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

/// An empty JSON object.
pub fn empty() -> Value {
    Value::Object(Map::new())
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
        assert_eq!(cast("bool", json!("yes")), json!(true));
        assert_eq!(cast("bool", json!("1")), json!(true));
        assert_eq!(cast("bool", json!("2")), json!(false));
        assert_eq!(cast("bool", json!(null)), json!(false));
        assert_eq!(cast("?bool", json!(null)), json!(null));
        assert_eq!(cast("array", json!("x")), json!(["x"]));
    }

    #[test]
    fn encoders_and_decoders() {
        assert_eq!(cast("base64", json!("hello")), json!("aGVsbG8="));
        assert_eq!(cast("base64Decode", json!("aGVsbG8=")), json!("hello"));
        assert_eq!(cast("json", json!({"a": 1})), json!("{\"a\":1}"));
        assert_eq!(cast("jsonToArray", json!("{&quot;a&quot;:1}")), json!({"a": 1}));
        assert_eq!(cast("jsonToArray", json!("not json")), json!(null));
        assert_eq!(cast("url", json!("a b&c")), json!("a+b%26c"));
        assert_eq!(cast("rawurl", json!("a b")), json!("a%20b"));
        assert_eq!(cast("urlDecode", json!("a+b%26c")), json!("a b&c"));
        assert_eq!(cast("html", json!("<b>")), json!("&lt;b&gt;"));
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
        assert_eq!(cast("setNullIfValue==n/a", json!("n/a")), json!(null));
        assert_eq!(cast("moneyStringToInt", json!("1.234,56")), json!(123456));
        assert_eq!(cast("intToMoneyString", json!(123456)), json!("1.234,56"));
        assert_eq!(cast("coordinateStringToArray", json!("1 2")), json!(["1", "2"]));
        assert_eq!(cast("coordinateStringToArray", json!("1 2 3 4")), json!([["1", "2"], ["3", "4"]]));
        let mut out = json!({"n": 0, "list": [1, 2, 3]});
        Cast::parse("countValue:list").unwrap().apply(&mut out, &DotPath::parse("n"), "n");
        assert_eq!(out["n"], 3);
    }

    #[test]
    fn lists_parse_and_unknown_casts_are_named() {
        assert_eq!(parse_list(&json!("int, string")).unwrap(), vec![Cast::Int, Cast::String]);
        let err = parse_list(&json!(["int", "wat"])).unwrap_err();
        assert!(err.contains("`wat`"));
    }
}
