//! Twig's filters and functions, each with Twig 3's behaviour on PHP arrays and strings, registered as
//! `tw_<name>` for the templates [`super::super::emit`] writes.

use std::cmp::Ordering;

use minijinja::value::{Rest, Value, ValueKind};
use minijinja::{Environment, Error, State};

use super::{Num, array, call_arrow, compare, entries, error, int_of, is_empty, is_null, php_array, to_php_string, truthy};
use super::{budget, text};
use crate::mapping::php;

pub fn install(env: &mut Environment<'static>) {
    env.add_filter("tw_abs", |v: Value| -> Result<Value, Error> {
        Ok(match super::number(&v, "abs")? {
            Num::Int(n) => n.checked_abs().map_or(Value::from((n as f64).abs()), Value::from),
            Num::Float(f) => Value::from(f.abs()),
        })
    });
    env.add_filter("tw_batch", batch);
    env.add_filter("tw_capitalize", capitalize);
    env.add_filter("tw_column", |v: Value, name: Value, index: Option<Value>| -> Result<Value, Error> {
        if array(&v).is_none() {
            return Err(error(format!(
                "The column filter only works with arrays or \"Traversable\", got \"{}\" as first argument.",
                kind_name(&v)
            )));
        }
        let mut out = Vec::new();
        for (_, row) in entries(&v) {
            let cell = super::attribute(&row, &name);
            if cell.is_undefined() {
                continue;
            }
            let key =
                index.as_ref().map(|i| super::attribute(&row, i)).filter(|k| !k.is_undefined()).unwrap_or(Value::from(out.len() as i64));
            out.push((key, cell));
        }
        Ok(php_array(out))
    });
    env.add_filter("tw_date", super::super::date::date_filter);
    env.add_filter("tw_date_modify", super::super::date::date_modify);
    env.add_filter("tw_default", default);
    env.add_filter("tw_escape", |v: Value, strategy: Option<String>| -> Result<Value, Error> {
        if v.is_safe() && strategy.as_deref().is_none_or(|s| s == "html") {
            return Ok(v);
        }
        let escaped = text::escape(&to_php_string(&v)?, strategy.as_deref().unwrap_or("html"))?;
        budget::built(Value::from_safe_string(escaped))
    });
    env.add_filter("tw_filter", |state: &State, v: Value, arrow: Value| -> Result<Value, Error> {
        let mut kept = Vec::new();
        for (k, item) in entries(&v) {
            if truthy(&call_arrow(state, &arrow, &[item.clone(), k.clone()])?) {
                kept.push((k, item));
            }
        }
        Ok(php_array(kept))
    });
    env.add_filter("tw_first", |v: Value| -> Result<Value, Error> { Ok(edge(&v, true)) });
    env.add_filter("tw_last", |v: Value| -> Result<Value, Error> { Ok(edge(&v, false)) });
    env.add_filter("tw_format", |format: Value, args: Rest<Value>| -> Result<String, Error> {
        text::sprintf(&to_php_string(&format)?, &args).and_then(budget::built_string)
    });
    env.add_filter("tw_join", |v: Value, glue: Option<Value>, and: Option<Value>| -> Result<String, Error> {
        let glue = glue.map(|g| to_php_string(&g)).transpose()?.unwrap_or_default();
        let items: Vec<String> = entries(&v).iter().map(|(_, item)| to_php_string(item)).collect::<Result<_, _>>()?;
        // Charged before joining: a list of one long string repeated is cheap, its join is not.
        budget::check(items.iter().map(String::len).sum::<usize>().saturating_add(glue.len().saturating_mul(items.len())))?;
        Ok(match and.filter(|a| !is_null(a)) {
            Some(and) if items.len() > 1 => {
                let and = to_php_string(&and)?;
                format!("{}{and}{}", items[..items.len() - 1].join(&glue), items[items.len() - 1])
            }
            _ => items.join(&glue),
        })
    });
    env.add_filter("tw_json_encode", |v: Value, options: Option<i64>| -> Result<String, Error> {
        // Measured before it is copied out: a list may hold one long string many times.
        budget::check(budget::written_size(&v))?;
        let json = serde_json::to_value(&v).map_err(|e| error(format!("json_encode: {e}")))?;
        budget::built_string(php::json_encode_with(&json, options.unwrap_or(0)))
    });
    env.add_filter("tw_keys", |v: Value| Value::from(entries(&v).into_iter().map(|(k, _)| k).collect::<Vec<_>>()));
    env.add_filter("tw_length", |v: Value| -> Result<usize, Error> {
        Ok(match v.kind() {
            ValueKind::Undefined | ValueKind::None => 0,
            ValueKind::Seq | ValueKind::Map | ValueKind::Iterable => entries(&v).len(),
            _ => to_php_string(&v)?.chars().count(),
        })
    });
    env.add_filter("tw_lower", lower);
    env.add_filter("tw_upper", upper);
    env.add_filter("tw_map", |state: &State, v: Value, arrow: Value| -> Result<Value, Error> {
        let mut out = Vec::new();
        for (k, item) in entries(&v) {
            out.push((k.clone(), call_arrow(state, &arrow, &[item, k])?));
        }
        Ok(php_array(out))
    });
    env.add_filter("tw_merge", merge);
    env.add_filter("tw_nl2br", |v: Value| -> Result<Value, Error> {
        // Twig escapes the text first, then marks the result safe.
        let escaped = if v.is_safe() { to_php_string(&v)? } else { text::escape(&to_php_string(&v)?, "html")? };
        budget::built(Value::from_safe_string(text::nl2br(&escaped)))
    });
    env.add_filter(
        "tw_number_format",
        |v: Value, decimals: Option<Value>, point: Option<Value>, thousands: Option<Value>| -> Result<String, Error> {
            let n = super::number(&v, "number_format")?.f();
            let decimals = decimals.filter(|d| !is_null(d)).map(|d| int_of(&d)).transpose()?.unwrap_or(0).max(0) as usize;
            let point = point.filter(|p| !is_null(p)).map(|p| to_php_string(&p)).transpose()?.unwrap_or_else(|| ".".into());
            let thousands = thousands.filter(|t| !is_null(t)).map(|t| to_php_string(&t)).transpose()?.unwrap_or_else(|| ",".into());
            // PHP pads to every decimal asked for, so the digits are charged before they are made.
            budget::check(decimals)?;
            budget::built_string(text::number_format(n, decimals, &point, &thousands))
        },
    );
    env.add_filter("tw_reduce", |state: &State, v: Value, arrow: Value, initial: Option<Value>| -> Result<Value, Error> {
        let mut carry = initial.unwrap_or(Value::from(()));
        for (k, item) in entries(&v) {
            carry = call_arrow(state, &arrow, &[carry, item, k])?;
            budget::check_depth(&carry)?;
        }
        Ok(carry)
    });
    env.add_filter("tw_replace", |v: Value, from: Value| -> Result<String, Error> {
        let pairs: Vec<(String, String)> = match array(&from) {
            Some(pairs) => pairs.iter().map(|(k, r)| Ok((to_php_string(k)?, to_php_string(r)?))).collect::<Result<_, Error>>()?,
            None => return Err(error("The \"replace\" filter expects an array or \"Traversable\" as replace values")),
        };
        text::strtr(&to_php_string(&v)?, &pairs)
    });
    env.add_filter("tw_reverse", |v: Value, preserve: Option<bool>| -> Result<Value, Error> {
        Ok(match array(&v) {
            Some(pairs) => reverse_array(pairs, preserve.unwrap_or(false)),
            None => Value::from(to_php_string(&v)?.chars().rev().collect::<String>()),
        })
    });
    env.add_filter("tw_round", |v: Value, precision: Option<Value>, method: Option<String>| -> Result<f64, Error> {
        let n = super::number(&v, "round")?.f();
        let precision = precision.filter(|p| !is_null(p)).map(|p| int_of(&p)).transpose()?.unwrap_or(0);
        let scale = 10f64.powi(precision as i32);
        Ok(match method.as_deref().unwrap_or("common") {
            "common" => php_round(n, precision),
            "ceil" => (n * scale).ceil() / scale,
            "floor" => (n * scale).floor() / scale,
            _ => return Err(error("The round filter only supports the \"common\", \"ceil\", and \"floor\" methods")),
        })
    });
    env.add_filter("tw_slice", slice);
    env.add_filter("tw_sort", |state: &State, v: Value, arrow: Option<Value>| -> Result<Value, Error> {
        let mut pairs = array(&v).ok_or_else(|| error("The sort filter only works with arrays or \"Traversable\""))?;
        let mut failure = None;
        // PHP's comparisons are no total order (and an arrow may answer anything), which the
        // standard library's sort may panic on; this merge sort takes whatever it is told.
        merge_sort_by(&mut pairs, |(_, a), (_, b)| match &arrow {
            _ if failure.is_some() => Ordering::Equal,
            Some(arrow) => match call_arrow(state, arrow, &[a.clone(), b.clone()]).and_then(|r| int_of(&r)) {
                Ok(n) => n.cmp(&0),
                Err(e) => {
                    failure.get_or_insert(e);
                    Ordering::Equal
                }
            },
            None => compare(a, b).unwrap_or(Ordering::Equal),
        });
        match failure {
            Some(error) => Err(error),
            // `asort`: the keys go with their values.
            None => Ok(php_array(pairs)),
        }
    });
    env.add_filter("tw_split", |v: Value, delimiter: Value, limit: Option<Value>| -> Result<Value, Error> {
        let limit = limit.filter(|l| !is_null(l)).map(|l| int_of(&l)).transpose()?;
        budget::built(Value::from(
            text::split(&to_php_string(&v)?, &to_php_string(&delimiter)?, limit)?.into_iter().map(Value::from).collect::<Vec<_>>(),
        ))
    });
    for name in ["tw_striptags", "tw_strip_tags"] {
        env.add_filter(name, |v: Value, allowed: Option<Value>| -> Result<String, Error> {
            let allowed = allowed.filter(|a| !is_null(a)).map(|a| to_php_string(&a)).transpose()?;
            Ok(text::strip_tags(&to_php_string(&v)?, allowed.as_deref().unwrap_or("")))
        });
    }
    env.add_filter("tw_title", title);
    env.add_filter("tw_trim", trim);
    env.add_filter("tw_url_encode", |v: Value| -> Result<String, Error> {
        match array(&v) {
            Some(pairs) => text::build_query(&pairs),
            None => Ok(text::rawurlencode(&to_php_string(&v)?)),
        }
        .and_then(budget::built_string)
    });
    env.add_filter("tw_preg_replace", |v: Value, pattern: Value, replacement: Value| -> Result<Value, Error> {
        // An invalid pattern: `preg_replace` returns null.
        let Some(regex) = text::Pcre::cached(&to_php_string(&pattern)?)? else { return Ok(Value::from(())) };
        regex.replace_all(&to_php_string(&v)?, &to_php_string(&replacement)?).map(Value::from)
    });
    // OpenConnector's own filters.
    env.add_filter("tw_b64enc", |v: Value| -> Result<String, Error> {
        use base64::Engine;
        budget::built_string(base64::engine::general_purpose::STANDARD.encode(to_php_string(&v)?))
    });
    env.add_filter("tw_b64dec", |v: Value| -> Result<String, Error> {
        Ok(String::from_utf8_lossy(&php::base64_decode(&to_php_string(&v)?)).into_owned())
    });
    env.add_filter("tw_json_decode", |v: Value| -> Result<Value, Error> {
        Ok(serde_json::from_str::<serde_json::Value>(&to_php_string(&v)?)
            .map(|json| crate::mapping::ordered::to_jinja(&json))
            .unwrap_or(Value::from(())))
    });
    env.add_filter("tw_slugify", |v: Value| -> Result<String, Error> { Ok(super::super::date::slugify(&to_php_string(&v)?)) });

    env.add_function("tw_max", |args: Rest<Value>| extreme(&args, Ordering::Greater));
    env.add_function("tw_min", |args: Rest<Value>| extreme(&args, Ordering::Less));
    env.add_function("tw_date", |date: Option<Value>, timezone: Option<String>| super::super::date::date_function(date, timezone));
    env.add_function("tw_constant", |name: String, object: Option<Value>| -> Result<Value, Error> {
        if object.is_some_and(|o| !is_null(&o)) {
            return Err(error("constant() of an object's class is not supported"));
        }
        php_constant(&name).ok_or_else(|| error(format!("Undefined constant \"{name}\"")))
    });
    env.add_function("tw_random", |values: Option<Value>, max: Option<Value>| -> Result<Value, Error> {
        let roll = |bound: u64| if bound == 0 { 0 } else { rand::Rng::random_range(&mut rand::rng(), 0..bound) };
        let values = values.filter(|v| !is_null(v));
        let max = max.filter(|v| !is_null(v)).map(|m| int_of(&m)).transpose()?;
        Ok(match values {
            None => Value::from(roll(2_147_483_648) as i64),
            Some(v) if v.kind() == ValueKind::Number || max.is_some() => {
                let (low, high) = match max {
                    Some(max) => (int_of(&v)?, max),
                    None => (0.min(int_of(&v)?), 0.max(int_of(&v)?)),
                };
                let (low, high) = (low.min(high), low.max(high));
                Value::from(low.saturating_add(roll(high.abs_diff(low).saturating_add(1)) as i64))
            }
            Some(v) if v.kind() == ValueKind::String => {
                let chars: Vec<char> = to_php_string(&v)?.chars().collect();
                if chars.is_empty() {
                    return Ok(Value::from(""));
                }
                Value::from(chars[roll(chars.len() as u64) as usize].to_string())
            }
            Some(v) => {
                let items = entries(&v);
                if items.is_empty() {
                    return Err(error("The random function cannot pick from an empty array."));
                }
                items[roll(items.len() as u64) as usize].1.clone()
            }
        })
    });
    env.add_function("tw_cycle", |values: Value, position: Value| -> Result<Value, Error> {
        let items = entries(&values);
        if items.is_empty() {
            return Err(error("DivisionByZeroError: Modulo by zero"));
        }
        let at = int_of(&position)?.rem_euclid(items.len() as i64) as usize;
        Ok(items[at].1.clone())
    });
}

// The filters a mapping's plain prints call directly too (see `mapping::template`), so both paths
// print the same.

pub fn capitalize(v: Value) -> Result<String, Error> {
    let text = to_php_string(&v)?.to_lowercase();
    let mut chars = text.chars();
    Ok(chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default())
}

pub fn default(v: Value, default: Option<Value>) -> Value {
    if is_empty(&v) { default.unwrap_or(Value::from("")) } else { v }
}

pub fn lower(v: Value) -> Result<String, Error> {
    Ok(to_php_string(&v)?.to_lowercase())
}

pub fn upper(v: Value) -> Result<String, Error> {
    Ok(to_php_string(&v)?.to_uppercase())
}

pub fn title(v: Value) -> Result<String, Error> {
    Ok(text::title(&to_php_string(&v)?))
}

pub fn trim(v: Value, mask: Option<Value>, side: Option<Value>) -> Result<String, Error> {
    let mask = mask.filter(|m| !is_null(m)).map(|m| to_php_string(&m)).transpose()?;
    let side = side.filter(|s| !is_null(s)).map(|s| to_php_string(&s)).transpose()?;
    text::trim(&to_php_string(&v)?, mask.as_deref(), side.as_deref().unwrap_or("both"))
}

/// PHP's `round()`: half away from zero, with the pre-rounding that makes `round(1.955, 2)` 1.96.
pub fn php_round(n: f64, precision: i64) -> f64 {
    let scale = 10f64.powi(precision as i32);
    let scaled = n * scale;
    // PHP checks whether the scaled value is within an ulp of a .5 and rounds that way.
    let rounded = scaled.round();
    let pre = format!("{scaled:.15e}").parse::<f64>().unwrap_or(scaled);
    let value = if (pre - pre.trunc()).abs() == 0.5 { pre.trunc() + pre.signum() } else { rounded };
    value / scale
}

fn edge(v: &Value, first: bool) -> Value {
    match array(v) {
        Some(pairs) => {
            let item = if first { pairs.into_iter().next() } else { pairs.into_iter().last() };
            // PHP's `current()`/`end()` of an empty array is false.
            item.map_or(Value::from(false), |(_, v)| v)
        }
        None => {
            let text = to_php_string(v).unwrap_or_default();
            let c = if first { text.chars().next() } else { text.chars().last() };
            Value::from(c.map(String::from).unwrap_or_default())
        }
    }
}

fn batch(v: Value, size: Value, fill: Option<Value>, preserve: Option<bool>) -> Result<Value, Error> {
    let size = int_of(&size)?;
    if size < 1 {
        return Err(error("array_chunk(): Argument #2 ($length) must be greater than 0"));
    }
    let size = size as usize;
    let preserve = preserve.unwrap_or(true);
    let pairs = entries(&v);
    let mut chunks = Vec::new();
    for (index, chunk) in pairs.chunks(size).enumerate() {
        let mut items: Vec<(Value, Value)> =
            chunk.iter().enumerate().map(|(i, (k, v))| (if preserve { k.clone() } else { Value::from(i as i64) }, v.clone())).collect();
        let last = (index + 1) * size >= pairs.len();
        if last && let Some(fill) = fill.as_ref().filter(|f| !is_null(f)) {
            budget::check(size.saturating_sub(items.len()).saturating_mul(budget::SLOT))?;
            while items.len() < size {
                let key = if preserve { Value::from((index * size + items.len()) as i64) } else { Value::from(items.len() as i64) };
                items.push((key, fill.clone()));
            }
        }
        chunks.push(php_array(items));
    }
    budget::built(Value::from(chunks))
}

/// `array_merge`: string keys of the second overwrite the first's, integer keys are appended.
fn merge(a: Value, b: Value) -> Result<Value, Error> {
    let (Some(x), Some(y)) = (array(&a), array(&b)) else {
        let which = if array(&a).is_none() { "first" } else { "second" };
        return Err(error(format!(
            "The merge filter only works with arrays or \"Traversable\", got \"{}\" as {which} argument.",
            kind_name(if which == "first" { &a } else { &b })
        )));
    };
    budget::check((x.len() + y.len()).saturating_mul(budget::SLOT))?;
    let mut out: Vec<(Value, Value)> = Vec::with_capacity(x.len() + y.len());
    // Where each string key sits in `out`, so a merge of large hashes stays linear.
    let mut slots: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let mut next = 0i64;
    for (k, v) in x.into_iter().chain(y) {
        if is_int_key(&k) {
            out.push((Value::from(next), v));
            next += 1;
        } else {
            let key = k.as_str().map(str::to_owned).unwrap_or_else(|| k.to_string());
            match slots.get(&key) {
                Some(&slot) => out[slot].1 = v,
                None => {
                    slots.insert(key, out.len());
                    out.push((k, v));
                }
            }
        }
    }
    Ok(php_array(out))
}

fn is_int_key(k: &Value) -> bool {
    k.is_integer() || k.as_str().is_some_and(|s| s.parse::<i64>().is_ok_and(|n| n.to_string() == s))
}

fn kind_name(v: &Value) -> &'static str {
    match v.kind() {
        ValueKind::Undefined | ValueKind::None => "NULL",
        ValueKind::Bool => "boolean",
        ValueKind::Number if v.is_integer() => "integer",
        ValueKind::Number => "double",
        ValueKind::String => "string",
        _ => "array",
    }
}

fn reverse_array(pairs: Vec<(Value, Value)>, preserve: bool) -> Value {
    let mut next = 0i64;
    let reversed: Vec<(Value, Value)> = pairs
        .into_iter()
        .rev()
        .map(|(k, v)| {
            if is_int_key(&k) && !preserve {
                next += 1;
                (Value::from(next - 1), v)
            } else {
                (k, v)
            }
        })
        .collect();
    php_array(reversed)
}

/// Twig's `slice`: `array_slice` on arrays (integer keys renumbered unless preserved), `mb_substr` on
/// anything else.
fn slice(v: Value, start: Value, length: Option<Value>, preserve: Option<bool>) -> Result<Value, Error> {
    let start = int_of(&start)?;
    let length = length.filter(|l| !is_null(l)).map(|l| int_of(&l)).transpose()?;
    let window = |count: usize| -> (usize, usize) {
        let count = count as i64;
        let from = if start < 0 { (count + start).max(0) } else { start.min(count) };
        let to = match length {
            None => count,
            Some(l) if l < 0 => (count + l).max(from),
            Some(l) => (from + l).min(count),
        };
        (from as usize, to.max(from) as usize)
    };
    match array(&v) {
        Some(pairs) => {
            let (from, to) = window(pairs.len());
            let preserve = preserve.unwrap_or(false);
            let mut next = 0i64;
            let kept: Vec<(Value, Value)> = pairs[from..to]
                .iter()
                .map(|(k, v)| {
                    if is_int_key(k) && !preserve {
                        next += 1;
                        (Value::from(next - 1), v.clone())
                    } else {
                        (k.clone(), v.clone())
                    }
                })
                .collect();
            Ok(php_array(kept))
        }
        None => {
            let chars: Vec<char> = to_php_string(&v)?.chars().collect();
            let (from, to) = window(chars.len());
            Ok(Value::from(chars[from..to].iter().collect::<String>()))
        }
    }
}

/// `max`/`min` of one array argument, or of all the arguments.
fn extreme(args: &[Value], wanted: Ordering) -> Result<Value, Error> {
    let values: Vec<Value> = match args {
        [only] => entries(only).into_iter().map(|(_, v)| v).collect(),
        many => many.to_vec(),
    };
    let mut best: Option<Value> = None;
    for value in values {
        match &best {
            Some(current) if compare(&value, current) != Some(wanted) => {}
            _ => best = Some(value),
        }
    }
    best.ok_or_else(|| error("max()/min(): the array must contain at least one element"))
}

/// PHP's constants a mapping reads with `constant()`: `json_encode`'s flags, the date formats, and
/// the numeric ones.
fn php_constant(name: &str) -> Option<Value> {
    let name = name.trim_start_matches('\\');
    let date = |format: &str| Some(Value::from(format));
    let short = name.strip_prefix("DateTimeInterface::").or_else(|| name.strip_prefix("DateTime::")).map(|n| format!("DATE_{n}"));
    Some(match short.as_deref().unwrap_or(name) {
        "JSON_HEX_TAG" => Value::from(1),
        "JSON_HEX_AMP" => Value::from(2),
        "JSON_HEX_APOS" => Value::from(4),
        "JSON_HEX_QUOT" => Value::from(8),
        "JSON_FORCE_OBJECT" => Value::from(16),
        "JSON_NUMERIC_CHECK" => Value::from(32),
        "JSON_UNESCAPED_SLASHES" => Value::from(64),
        "JSON_PRETTY_PRINT" => Value::from(128),
        "JSON_UNESCAPED_UNICODE" => Value::from(256),
        "JSON_PARTIAL_OUTPUT_ON_ERROR" => Value::from(512),
        "JSON_PRESERVE_ZERO_FRACTION" => Value::from(1024),
        "JSON_UNESCAPED_LINE_TERMINATORS" => Value::from(2048),
        "JSON_THROW_ON_ERROR" => Value::from(4_194_304),
        "DATE_ATOM" | "DATE_RFC3339" | "DATE_W3C" => return date("Y-m-d\\TH:i:sP"),
        "DATE_RFC3339_EXTENDED" => return date("Y-m-d\\TH:i:s.vP"),
        "DATE_COOKIE" => return date("l, d-M-Y H:i:s T"),
        "DATE_ISO8601" => return date("Y-m-d\\TH:i:sO"),
        "DATE_RFC822" | "DATE_RFC1036" => return date("D, d M y H:i:s O"),
        "DATE_RFC850" => return date("l, d-M-y H:i:s T"),
        "DATE_RFC1123" | "DATE_RFC2822" | "DATE_RSS" => return date("D, d M Y H:i:s O"),
        "DATE_RFC7231" => return date("D, d M Y H:i:s \\G\\M\\T"),
        "PHP_EOL" => Value::from("\n"),
        "PHP_INT_MAX" => Value::from(i64::MAX),
        "PHP_INT_MIN" => Value::from(i64::MIN),
        "PHP_INT_SIZE" => Value::from(8),
        "PHP_FLOAT_EPSILON" => Value::from(f64::EPSILON),
        "PHP_FLOAT_MAX" => Value::from(f64::MAX),
        "M_PI" => Value::from(std::f64::consts::PI),
        "M_E" => Value::from(std::f64::consts::E),
        _ => return None,
    })
}

/// A stable merge sort that never panics, whatever `compare` answers (the standard library's may,
/// when the order is not total).
pub fn merge_sort_by<T: Clone>(items: &mut [T], mut compare: impl FnMut(&T, &T) -> Ordering) {
    let len = items.len();
    let mut buffer: Vec<T> = items.to_vec();
    let mut width = 1;
    while width < len {
        let mut start = 0;
        while start < len {
            let (middle, end) = ((start + width).min(len), (start + 2 * width).min(len));
            let (mut left, mut right, mut at) = (start, middle, start);
            while left < middle && right < end {
                if compare(&items[right], &items[left]) == Ordering::Less {
                    buffer[at] = items[right].clone();
                    right += 1;
                } else {
                    buffer[at] = items[left].clone();
                    left += 1;
                }
                at += 1;
            }
            for i in (left..middle).chain(right..end) {
                buffer[at] = items[i].clone();
                at += 1;
            }
            start = end;
        }
        items.clone_from_slice(&buffer);
        width *= 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_is_php_s() {
        assert_eq!(php_round(2.5, 0), 3.0);
        assert_eq!(php_round(-2.5, 0), -3.0);
        assert_eq!(php_round(1.955, 2), 1.96);
        assert_eq!(php_round(1234.5678, -2), 1200.0);
        assert!(super::super::numeric_string(" 12 ").is_some() && super::super::numeric_string("12a").is_none());
    }
}
