//! PHP's value conversions, where OpenConnector's output depends on them: `(string)`, `(int)`,
//! `(float)`, loose `==`, `empty()`, `json_encode()` and the forgiving `base64_decode()`. OpenConnector
//! runs on PHP 8 with the default ini (`precision = 14`), so these follow PHP 8.

use serde_json::Value;

/// PHP's `(string)`: true is "1", false and null are "", floats with 14 significant digits.
pub fn php_string(value: &Value) -> String {
    match value {
        Value::Null | Value::Bool(false) => String::new(),
        Value::Bool(true) => "1".into(),
        Value::Number(n) if n.is_i64() || n.is_u64() => n.to_string(),
        Value::Number(n) => float_string(n.as_f64().unwrap_or(0.0)),
        Value::String(s) => s.clone(),
        // Lists and objects are both PHP arrays, which convert to "Array" (with a warning).
        Value::Array(_) | Value::Object(_) => "Array".into(),
    }
}

/// How PHP prints a float with `precision = 14` (`echo`, `(string)`, Twig's `{{ }}`): 14 significant
/// digits, no trailing zeros, exponent form `1.0E+15` outside 1e-5 ..= 1e15.
pub fn float_string(f: f64) -> String {
    if f.is_nan() {
        return "NAN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "INF".into() } else { "-INF".into() };
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    // `{:.13e}` rounds to 14 significant digits, as PHP's zend_gcvt(value, 14) does.
    let formatted = format!("{:.13e}", f.abs());
    let (mantissa, exponent) = formatted.split_once('e').unwrap_or((&formatted, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let digits = digits.trim_end_matches('0');
    let digits = if digits.is_empty() { "0" } else { digits };
    let sign = if f < 0.0 { "-" } else { "" };
    // PHP's decimal point position: value = 0.DIGITS × 10^decpt.
    let decpt = exponent + 1;
    if !(-3..=14).contains(&decpt) {
        let (first, rest) = digits.split_at(1);
        let rest = if rest.is_empty() { "0" } else { rest };
        let e_sign = if exponent < 0 { '-' } else { '+' };
        return format!("{sign}{first}.{rest}E{e_sign}{}", exponent.abs());
    }
    if decpt <= 0 {
        return format!("{sign}0.{}{digits}", "0".repeat(decpt.unsigned_abs() as usize));
    }
    let decpt = decpt as usize;
    if digits.len() <= decpt {
        format!("{sign}{digits}{}", "0".repeat(decpt - digits.len()))
    } else {
        format!("{sign}{}.{}", &digits[..decpt], &digits[decpt..])
    }
}

/// The numeric prefix of a string as PHP reads it (`" 12abc"` → 12, `"1e3"` → 1000.0, `".5"` → 0.5):
/// `Int` when it is a plain integer (kept exact), `Float` otherwise, `None` without digits. The
/// second value says whether the whole string was numeric (PHP's `is_numeric`, trailing
/// whitespace allowed).
enum Numeric {
    Int(i128),
    Float(f64),
}

fn numeric_prefix(text: &str) -> Option<(Numeric, bool)> {
    let t = text.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let b = t.as_bytes();
    let mut end = 0;
    if end < b.len() && (b[end] == b'+' || b[end] == b'-') {
        end += 1;
    }
    let int_start = end;
    while end < b.len() && b[end].is_ascii_digit() {
        end += 1;
    }
    let int_digits = end - int_start;
    let mut is_float = false;
    let mut frac_digits = 0;
    if end < b.len() && b[end] == b'.' {
        let mut e = end + 1;
        while e < b.len() && b[e].is_ascii_digit() {
            e += 1;
        }
        frac_digits = e - end - 1;
        if int_digits + frac_digits > 0 {
            is_float = true;
            end = e;
        }
    }
    if int_digits + frac_digits == 0 {
        return None;
    }
    if end < b.len() && (b[end] == b'e' || b[end] == b'E') {
        let mut e = end + 1;
        if e < b.len() && (b[e] == b'+' || b[e] == b'-') {
            e += 1;
        }
        let exp_start = e;
        while e < b.len() && b[e].is_ascii_digit() {
            e += 1;
        }
        if e > exp_start {
            is_float = true;
            end = e;
        }
    }
    let whole = t[end..].trim_end_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']).is_empty();
    let number = &t[..end];
    if !is_float && let Ok(i) = number.parse::<i128>() {
        return Some((Numeric::Int(i), whole));
    }
    Some((Numeric::Float(number.parse().unwrap_or(0.0)), whole))
}

/// A whole numeric string (PHP's `is_numeric`), as a number.
pub fn numeric(text: &str) -> Option<f64> {
    match numeric_prefix(text)? {
        (Numeric::Int(i), true) => Some(i as f64),
        (Numeric::Float(f), true) => Some(f),
        _ => None,
    }
}

/// A float to int as PHP does for numeric strings: truncated, saturating, NaN is 0.
fn float_to_int(f: f64) -> i64 {
    if f.is_nan() { 0 } else { f.trunc() as i64 }
}

/// PHP's `(int)`.
pub fn php_int(value: &Value) -> i64 {
    match value {
        Value::Null => 0,
        Value::Bool(b) => i64::from(*b),
        Value::Number(n) => n.as_i64().unwrap_or_else(|| float_to_int(n.as_f64().unwrap_or(0.0))),
        Value::String(s) => match numeric_prefix(s) {
            None => 0,
            Some((Numeric::Int(i), _)) => i.clamp(i64::MIN.into(), i64::MAX.into()) as i64,
            Some((Numeric::Float(f), _)) => float_to_int(f),
        },
        Value::Array(items) => i64::from(!items.is_empty()),
        Value::Object(map) => i64::from(!map.is_empty()),
    }
}

/// PHP's `(float)`.
pub fn php_float(value: &Value) -> f64 {
    match value {
        Value::Number(n) => n.as_f64().unwrap_or(0.0),
        Value::String(s) => match numeric_prefix(s) {
            None => 0.0,
            Some((Numeric::Int(i), _)) => i as f64,
            Some((Numeric::Float(f), _)) => f,
        },
        other => php_int(other) as f64,
    }
}

/// OpenConnector's bool cast: true iff `(int)$v === 1` or `strtolower($v)` is `true`/`yes` (no
/// trimming: `" yes"` is false).
pub fn php_bool(value: &Value) -> bool {
    if php_int(value) == 1 {
        return true;
    }
    matches!(value, Value::String(s) if s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("yes"))
}

/// PHP 8's `$value == $text`.
pub fn loose_eq(value: &Value, text: &str) -> bool {
    match value {
        // null == "x" compares "" with "x".
        Value::Null => text.is_empty(),
        Value::Bool(b) => *b != (text.is_empty() || text == "0"),
        Value::Number(n) => match numeric(text) {
            Some(t) => n.as_f64() == Some(t),
            None => php_string(value) == text,
        },
        Value::String(s) => match (numeric(s), numeric(text)) {
            (Some(a), Some(b)) => a == b,
            _ => s == text,
        },
        Value::Array(_) | Value::Object(_) => false,
    }
}

/// PHP's `empty()`: null, false, 0, 0.0, "", "0" and empty arrays.
pub fn php_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty() || s == "0",
        Value::Array(items) => items.is_empty(),
        Value::Object(map) => map.is_empty(),
    }
}

/// Whether every leaf of a list or object is `empty()` (an empty one counts): OpenConnector's
/// `areAllArrayKeysNull`, which despite its name tests emptiness.
pub fn all_leaves_empty(value: &Value) -> bool {
    let leaves: Box<dyn Iterator<Item = &Value>> = match value {
        Value::Array(items) => Box::new(items.iter()),
        Value::Object(map) => Box::new(map.values()),
        other => return php_empty(other),
    };
    leaves.into_iter().all(|v| if v.is_array() || v.is_object() { all_leaves_empty(v) } else { php_empty(v) })
}

/// Whether an object's keys are `"0"`, `"1"`, … in order: PHP holds such an array as a list, and
/// `json_encode` writes it as one.
fn is_php_list(map: &serde_json::Map<String, Value>) -> bool {
    map.keys().enumerate().all(|(i, k)| k.parse::<usize>() == Ok(i) && *k == i.to_string())
}

/// PHP's `json_encode($value)` with its default flags: `/` escaped as `\/`, non-ASCII as `\uXXXX`,
/// and an empty or `0..n`-keyed object written as a list (PHP cannot tell them apart).
pub fn json_encode(value: &Value) -> String {
    json_encode_with(value, 0)
}

/// `json_encode($value, $flags)` with `JSON_UNESCAPED_SLASHES` (64), `JSON_PRETTY_PRINT` (128) and
/// `JSON_UNESCAPED_UNICODE` (256) honoured.
pub fn json_encode_with(value: &Value, flags: i64) -> String {
    let mut out = String::new();
    write_json(&mut out, value, flags, 0);
    out
}

const UNESCAPED_SLASHES: i64 = 64;
const PRETTY_PRINT: i64 = 128;
const UNESCAPED_UNICODE: i64 = 256;

fn write_json(out: &mut String, value: &Value, flags: i64, level: usize) {
    let pretty = flags & PRETTY_PRINT != 0;
    let newline = |out: &mut String, level: usize| {
        if pretty {
            out.push('\n');
            out.push_str(&"    ".repeat(level));
        }
    };
    match value {
        Value::String(s) => write_json_string(out, s, flags),
        Value::Array(items) if items.is_empty() => out.push_str("[]"),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, level + 1);
                write_json(out, item, flags, level + 1);
            }
            newline(out, level);
            out.push(']');
        }
        Value::Object(map) if map.is_empty() => out.push_str("[]"),
        Value::Object(map) if is_php_list(map) => {
            out.push('[');
            for (i, item) in map.values().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, level + 1);
                write_json(out, item, flags, level + 1);
            }
            newline(out, level);
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (key, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, level + 1);
                write_json_string(out, key, flags);
                out.push_str(if pretty { ": " } else { ":" });
                write_json(out, item, flags, level + 1);
            }
            newline(out, level);
            out.push('}');
        }
        Value::Number(n) if n.is_f64() => out.push_str(&json_float(n.as_f64().unwrap_or(0.0))),
        other => out.push_str(&other.to_string()),
    }
}

/// A float as `json_encode` writes it (`serialize_precision = -1`): the shortest digits that read
/// back the same, `2.0` as `2`, and exponent form below 1e-4 and from 1e17 (`1.0e+17`, `1.0e-5`).
pub fn json_float(f: f64) -> String {
    if f == 0.0 {
        return if f.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    let scientific = format!("{:e}", f.abs());
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let sign = if f < 0.0 { "-" } else { "" };
    if !(-4..17).contains(&exponent) {
        let (first, rest) = digits.split_at(1);
        let rest = if rest.is_empty() { "0" } else { rest };
        return format!("{sign}{first}.{rest}e{}{}", if exponent < 0 { "-" } else { "+" }, exponent.abs());
    }
    let point = exponent + 1;
    let text = if point <= 0 {
        format!("0.{}{digits}", "0".repeat((-point) as usize))
    } else if point as usize >= digits.len() {
        format!("{digits}{}", "0".repeat(point as usize - digits.len()))
    } else {
        format!("{}.{}", &digits[..point as usize], &digits[point as usize..])
    };
    format!("{sign}{text}")
}

fn write_json_string(out: &mut String, s: &str, flags: i64) {
    use std::fmt::Write;
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '/' if flags & UNESCAPED_SLASHES == 0 => out.push_str("\\/"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || ((c as u32) > 0x7e && flags & UNESCAPED_UNICODE == 0) => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// PHP's non-strict `base64_decode`: characters outside the alphabet (padding, whitespace, junk) are
/// skipped and a dangling partial byte is dropped, so it never fails.
pub fn base64_decode(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut bits, mut count) = (0u32, 0u32);
    for b in text.bytes() {
        let six = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => continue,
        };
        bits = (bits << 6) | u32::from(six);
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_floats_as_php_writes_them() {
        for (f, text) in [
            (1.0, "1"),
            (2.5, "2.5"),
            (1e20, "1.0e+20"),
            (0.00001, "1.0e-5"),
            (1.5e14, "150000000000000"),
            (1e16, "10000000000000000"),
            (1e17, "1.0e+17"),
            (123456789012345678.0, "1.2345678901234568e+17"),
            (0.0001, "0.0001"),
            (0.00012, "0.00012"),
            (-0.0, "-0"),
            (1.25e-7, "1.25e-7"),
            (3.0e300, "3.0e+300"),
            (-2.75, "-2.75"),
        ] {
            assert_eq!(json_float(f), text, "{f:?}");
        }
    }

    #[test]
    fn floats_print_with_fourteen_digits() {
        let cases = [
            (1.5, "1.5"),
            (2.0, "2"),
            (0.1 + 0.2, "0.3"),
            (1.0 / 3.0, "0.33333333333333"),
            (-2.5, "-2.5"),
            (1e15, "1.0E+15"),
            (1e14, "1.0E+14"),
            (12345678901234.0, "12345678901234"),
            (123456789012344.0, "1.2345678901234E+14"),
            (0.0001, "0.0001"),
            (0.00001, "1.0E-5"),
            (1.25e-7, "1.25E-7"),
            (100.0, "100"),
            (-0.0, "-0"),
        ];
        for (f, text) in cases {
            assert_eq!(float_string(f), text, "{f:?}");
        }
    }

    #[test]
    fn int_reads_the_numeric_prefix() {
        for (text, n) in [
            ("12abc", 12),
            (" 42", 42),
            ("abc", 0),
            ("1e3", 1000),
            ("1.9", 1),
            ("-7.5x", -7),
            (".5", 0),
            ("9007199254740993", 9007199254740993),
            ("99999999999999999999", i64::MAX),
            ("0x1A", 0),
        ] {
            assert_eq!(php_int(&json!(text)), n, "{text}");
        }
        assert_eq!(php_float(&json!(".5")), 0.5);
        assert_eq!(php_float(&json!("1.5kg")), 1.5);
    }

    #[test]
    fn loose_equality_and_emptiness() {
        assert!(loose_eq(&json!(0), "0") && !loose_eq(&json!(0), "a") && loose_eq(&json!(100), "1e2"));
        assert!(loose_eq(&json!("1"), "01") && !loose_eq(&json!("abc"), "ABC"));
        assert!(loose_eq(&json!(null), "") && !loose_eq(&json!(null), "0"));
        assert!(loose_eq(&json!(true), "x") && loose_eq(&json!(false), "0"));
        assert!(php_empty(&json!("0")) && php_empty(&json!(0.0)) && !php_empty(&json!(" ")));
        assert!(all_leaves_empty(&json!({"a": [null, ""], "b": {"c": 0}})));
        assert!(!all_leaves_empty(&json!({"a": [null, "x"]})));
    }

    #[test]
    fn json_encode_like_php() {
        assert_eq!(json_encode(&json!({"u": "a/b é", "n": [1, 2.5, true, null]})), r#"{"u":"a\/b \u00e9","n":[1,2.5,true,null]}"#);
        assert_eq!(json_encode(&json!({})), "[]");
        assert_eq!(json_encode(&json!({"0": "a", "1": "b"})), r#"["a","b"]"#);
        assert_eq!(json_encode(&json!("😀")), r#""\ud83d\ude00""#);
    }

    #[test]
    fn base64_decode_forgives() {
        assert_eq!(base64_decode("aGVsbG8="), b"hello");
        assert_eq!(base64_decode("aGVsbG8"), b"hello");
        assert_eq!(base64_decode("aGV sbG8=\n"), b"hello");
        assert_eq!(base64_decode("!!"), b"");
    }
}
