//! The runtime translated templates call: PHP's values and operators as Twig uses them (truthiness,
//! loose comparison, arithmetic with numeric strings, string conversion), the template's own variable
//! scope, iteration, attribute access, arrow functions, and Twig's tests, filters and functions.
//!
//! PHP arrays are both lists and ordered hashes. A list whose keys stop running 0, 1, 2… (a filtered,
//! sorted or sliced one that kept its keys) is a map here with its keys as strings, which is what
//! `json_encode` and iteration then show, as in PHP.

mod arrow;
pub mod budget;
pub(super) mod filters;
mod text;

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Mutex;

use minijinja::value::{Object, Rest, Value, ValueKind};
use minijinja::{Environment, Error, ErrorKind, State};

use super::super::php;
pub use arrow::{Arrow, call_arrow};

pub(crate) fn error(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, message.into())
}

/// Registers the runtime on `env`.
pub fn install(env: &mut Environment<'static>) {
    env.add_function("tw_bool", |v: Value| truthy(&v));
    env.add_function("tw_concat", |parts: Rest<Value>| -> Result<Value, Error> {
        let mut out = String::new();
        for part in parts.iter() {
            out.push_str(&to_php_string(part)?);
        }
        budget::built(Value::from(out))
    });
    env.add_function("tw_var", |state: &State, name: String| state.lookup(&name).unwrap_or(Value::UNDEFINED));
    env.add_function("tw_scope", || Value::from_object(Scope::default()));
    env.add_function("tw_get", |scope: Value, name: String, fallback: Value| {
        scope.downcast_object_ref::<Scope>().and_then(|s| s.get(&name)).unwrap_or(fallback)
    });
    env.add_function("tw_set", |scope: Value, names: Vec<String>, values: Vec<Value>| -> Result<Value, Error> {
        if let Some(scope) = scope.downcast_object_ref::<Scope>() {
            for (name, value) in names.into_iter().zip(values) {
                budget::check_depth(&value)?;
                scope.set(name, value);
            }
        }
        Ok(Value::from(""))
    });
    env.add_function("tw_scope_keys", |scope: Value| scope.downcast_object_ref::<Scope>().map(Scope::keys).unwrap_or_default());
    env.add_function("tw_scope_keep", |scope: Value, keys: Vec<String>| {
        if let Some(scope) = scope.downcast_object_ref::<Scope>() {
            scope.keep(&keys);
        }
        Value::from("")
    });
    env.add_function("tw_scope_values", |scope: Value, names: Vec<String>| {
        let scope = scope.downcast_object_ref::<Scope>();
        Value::from(names.iter().map(|name| scope.and_then(|s| s.get(name)).unwrap_or(Value::UNDEFINED)).collect::<Vec<_>>())
    });
    env.add_function("tw_scope_restore", |scope: Value, names: Vec<String>, values: Vec<Value>| {
        if let Some(scope) = scope.downcast_object_ref::<Scope>() {
            for (name, value) in names.into_iter().zip(values) {
                if value.is_undefined() { scope.remove(&name) } else { scope.set(name, value) }
            }
        }
        Value::from("")
    });
    env.add_function("tw_discard", |_: Value| Value::from(""));
    env.add_function("tw_missing", || Value::UNDEFINED);
    env.add_function("tw_infinity", || Value::from(f64::INFINITY));
    env.add_function("tw_values", |v: Value| Value::from(entries(&v).into_iter().map(|(_, v)| v).collect::<Vec<_>>()));
    env.add_function("tw_pairs", |v: Value| Value::from(entries(&v).into_iter().map(|(k, v)| Value::from(vec![k, v])).collect::<Vec<_>>()));
    env.add_function("tw_attr", |object: Value, key: Value| attribute(&object, &key));
    env.add_function("tw_attribute", |object: Value, key: Value| attribute(&object, &key));
    env.add_function("tw_key", |key: Value| -> Result<Value, Error> { Ok(Value::from(to_php_string(&key)?)) });
    // PHP compiles a unary minus as a multiplication by -1 (so `-0.0` is -0, and `-'a'` fails as `*`).
    env.add_function("tw_neg", |v: Value| arithmetic("*", &v, &Value::from(-1)));
    env.add_function("tw_method", |object: Value, name: String, args: Vec<Value>| -> Result<Value, Error> {
        super::date::call_method(&object, &name, &args).unwrap_or(Ok(Value::UNDEFINED))
    });
    env.add_function("tw_pos", |v: Value| arithmetic("+", &Value::from(0), &v));
    for op in ["add", "sub", "mul", "div", "floordiv", "mod", "pow"] {
        let symbol = match op {
            "add" => "+",
            "sub" => "-",
            "mul" => "*",
            "div" => "/",
            "floordiv" => "//",
            "mod" => "%",
            _ => "**",
        };
        env.add_function(format!("tw_{op}"), move |a: Value, b: Value| arithmetic(symbol, &a, &b));
    }
    env.add_function("tw_eq", |a: Value, b: Value| loose_eq(&a, &b));
    env.add_function("tw_lt", |a: Value, b: Value| compare(&a, &b) == Some(Ordering::Less));
    env.add_function("tw_spaceship", |a: Value, b: Value| match compare(&a, &b) {
        Some(Ordering::Less) => -1,
        Some(Ordering::Greater) | None => 1,
        Some(Ordering::Equal) => 0,
    });
    env.add_function("tw_in", |needle: Value, haystack: Value| contains(&haystack, &needle));
    env.add_function("tw_range", |low: Value, high: Value, step: Option<Value>| range(&low, &high, step.as_ref()));
    env.add_function("tw_starts_with", |a: Value, b: Value| match (a.as_str(), b.as_str()) {
        (Some(a), Some(b)) => a.starts_with(b),
        _ => false,
    });
    env.add_function("tw_ends_with", |a: Value, b: Value| match (a.as_str(), b.as_str()) {
        (Some(a), Some(b)) => a.ends_with(b),
        _ => false,
    });
    env.add_function("tw_matches", |subject: Value, pattern: Value| -> Result<bool, Error> {
        // Twig checks the pattern: an invalid one fails the template.
        let pattern = to_php_string(&pattern)?;
        match text::Pcre::cached(&pattern)? {
            Some(regex) => Ok(regex.is_match(&to_php_string(&subject)?)),
            None => Err(error(format!("Regexp \"{pattern}\" passed to \"matches\" is not valid"))),
        }
    });
    for (name, op) in [("tw_bitand", '&'), ("tw_bitor", '|'), ("tw_bitxor", '^')] {
        env.add_function(name, move |a: Value, b: Value| -> Result<i64, Error> {
            let (a, b) = (int_of(&a)?, int_of(&b)?);
            Ok(match op {
                '&' => a & b,
                '|' => a | b,
                _ => a ^ b,
            })
        });
    }
    // The last call of an arrow's body: what the body cost, for `call_arrow` to charge its caller.
    env.add_function("tw_spent", |state: &State, value: Value| {
        arrow::record_spent(state.fuel_levels().map_or(0, |(consumed, _)| consumed));
        value
    });
    env.add_function("tw_arrow", |params: Vec<String>, source: String, captures: Value| -> Result<Value, Error> {
        Ok(Value::from_object(Arrow::new(params, &source, captures)?))
    });
    env.add_function("tw_has_some", |state: &State, items: Value, arrow: Value| -> Result<bool, Error> {
        for (k, v) in entries(&items) {
            if truthy(&call_arrow(state, &arrow, &[v, k])?) {
                return Ok(true);
            }
        }
        Ok(false)
    });
    env.add_function("tw_has_every", |state: &State, items: Value, arrow: Value| -> Result<bool, Error> {
        for (k, v) in entries(&items) {
            if !truthy(&call_arrow(state, &arrow, &[v, k])?) {
                return Ok(false);
            }
        }
        Ok(true)
    });

    env.add_test("tw_defined", |v: Value| !v.is_undefined());
    env.add_test("tw_null", |v: Value| is_null(&v));
    env.add_test("tw_none", |v: Value| is_null(&v));
    env.add_test("tw_empty", |v: Value| is_empty(&v));
    env.add_test("tw_iterable", |v: Value| matches!(v.kind(), ValueKind::Seq | ValueKind::Map | ValueKind::Iterable));
    env.add_test("tw_same_as", |a: Value, b: Value| identical(&a, &b));
    env.add_test("tw_divisible_by", |a: Value, b: Value| -> Result<bool, Error> {
        Ok(loose_eq(&arithmetic("%", &a, &b)?, &Value::from(0)))
    });
    env.add_test("tw_even", |v: Value| -> Result<bool, Error> { Ok(int_of(&v)? % 2 == 0) });
    env.add_test("tw_odd", |v: Value| -> Result<bool, Error> { Ok(int_of(&v)? % 2 != 0) });
    filters::install(env);
}

/// PHP's null: Twig's undefined variables and attributes are null too (without strict variables).
pub fn is_null(v: &Value) -> bool {
    v.is_undefined() || v.is_none()
}

/// PHP's truthiness: `''`, `'0'`, `0`, `0.0`, null, false and an empty array are false.
pub fn truthy(v: &Value) -> bool {
    match v.kind() {
        ValueKind::Undefined | ValueKind::None => false,
        ValueKind::String => !matches!(v.as_str(), Some("" | "0")),
        ValueKind::Number => v.as_i64().map_or_else(|| f64::try_from(v.clone()).unwrap_or(0.0) != 0.0, |n| n != 0),
        _ => v.is_true(),
    }
}

/// Twig's `empty` test: `''`, null, false and an empty array (`0` and `'0'` are not empty).
pub fn is_empty(v: &Value) -> bool {
    match v.kind() {
        ValueKind::Undefined | ValueKind::None => true,
        ValueKind::Bool => !v.is_true(),
        ValueKind::String => v.as_str() == Some(""),
        ValueKind::Seq | ValueKind::Map | ValueKind::Iterable => v.len() == Some(0),
        _ => false,
    }
}

/// A value as PHP's `(string)` makes it; arrays are `Array`, as PHP prints them (with a warning).
pub fn to_php_string(v: &Value) -> Result<String, Error> {
    if super::date::instant_of(v).is_some() {
        return Err(error("Object of class DateTime could not be converted to string"));
    }
    Ok(match v.kind() {
        ValueKind::Undefined | ValueKind::None => String::new(),
        ValueKind::Bool => {
            if v.is_true() {
                "1".into()
            } else {
                String::new()
            }
        }
        ValueKind::Number => match v.as_i64() {
            Some(n) if v.is_integer() => n.to_string(),
            _ => php::float_string(f64::try_from(v.clone()).unwrap_or(0.0)),
        },
        ValueKind::String => v.as_str().unwrap_or_default().to_string(),
        ValueKind::Seq | ValueKind::Map | ValueKind::Iterable => "Array".into(),
        _ => v.to_string(),
    })
}

/// A PHP number: an integer or a float.
#[derive(Debug, Clone, Copy)]
pub enum Num {
    Int(i64),
    Float(f64),
}

impl Num {
    fn f(self) -> f64 {
        match self {
            Num::Int(n) => n as f64,
            Num::Float(f) => f,
        }
    }

    fn value(self) -> Value {
        match self {
            Num::Int(n) => Value::from(n),
            Num::Float(f) => Value::from(f),
        }
    }
}

/// A string as a number when PHP reads all of it as one (surrounding whitespace allowed).
pub fn numeric_string(text: &str) -> Option<Num> {
    let t = text.trim_matches(|c: char| matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0B' | '\x0C'));
    if t.is_empty() {
        return None;
    }
    let body = t.strip_prefix(['+', '-']).unwrap_or(t);
    let digits_only = !body.is_empty() && body.bytes().all(|b| b.is_ascii_digit());
    if digits_only && let Ok(n) = t.parse::<i64>() {
        return Some(Num::Int(n));
    }
    let plain = body.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'));
    if plain
        && body.starts_with(|c: char| c.is_ascii_digit() || c == '.')
        && let Ok(f) = t.parse::<f64>()
    {
        return Some(Num::Float(f));
    }
    None
}

/// A value as an operand of arithmetic, as PHP 8 takes it.
fn number(v: &Value, op: &str) -> Result<Num, Error> {
    match v.kind() {
        ValueKind::Undefined | ValueKind::None => Ok(Num::Int(0)),
        ValueKind::Bool => Ok(Num::Int(i64::from(v.is_true()))),
        ValueKind::Number => Ok(match v.as_i64() {
            Some(n) if v.is_integer() => Num::Int(n),
            _ => Num::Float(f64::try_from(v.clone()).unwrap_or(0.0)),
        }),
        ValueKind::String => {
            let text = v.as_str().unwrap_or_default();
            if let Some(n) = numeric_string(text) {
                return Ok(n);
            }
            // A leading number (`5 apples`) is used, with a warning; anything else is a TypeError.
            let lead: String = text.trim_start().chars().take_while(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '+')).collect();
            match numeric_string(&lead) {
                Some(n) => Ok(n),
                None => Err(error(format!("Unsupported operand types: string {op} int"))),
            }
        }
        _ => Err(error(format!("Unsupported operand types: array {op} int"))),
    }
}

pub fn int_of(v: &Value) -> Result<i64, Error> {
    Ok(match number(v, "%")? {
        Num::Int(n) => n,
        Num::Float(f) => f as i64,
    })
}

/// `a op b` with PHP's rules: integers stay integers until they overflow, `/` gives an integer only
/// when it divides exactly, `%` works on integers, `//` is Twig's floor division.
pub fn arithmetic(op: &str, a: &Value, b: &Value) -> Result<Value, Error> {
    if op == "+"
        && let (Some(x), Some(y)) = (array(a), array(b))
    {
        // Array union: the left's entries, then the right's under keys the left does not have.
        let keys: std::collections::HashSet<String> = x.iter().map(|(k, _)| to_php_string(k).unwrap_or_default()).collect();
        let mut union = x;
        union.extend(y.into_iter().filter(|(k, _)| !keys.contains(&to_php_string(k).unwrap_or_default())));
        return Ok(php_array(union));
    }
    let (x, y) = (number(a, op)?, number(b, op)?);
    let int = |checked: Option<i64>, float: f64| checked.map_or(Value::from(float), Value::from);
    Ok(match (op, x, y) {
        ("+", Num::Int(x), Num::Int(y)) => int(x.checked_add(y), x as f64 + y as f64),
        ("-", Num::Int(x), Num::Int(y)) => int(x.checked_sub(y), x as f64 - y as f64),
        ("*", Num::Int(x), Num::Int(y)) => int(x.checked_mul(y), x as f64 * y as f64),
        ("+", x, y) => Value::from(x.f() + y.f()),
        ("-", x, y) => Value::from(x.f() - y.f()),
        ("*", x, y) => Value::from(x.f() * y.f()),
        ("/" | "//", _, y) if y.f() == 0.0 => return Err(error("Division by zero")),
        ("/", Num::Int(x), Num::Int(y)) if x % y == 0 => Value::from(x / y),
        ("/", x, y) => Value::from(x.f() / y.f()),
        ("//", x, y) => Value::from((x.f() / y.f()).floor() as i64),
        ("%", x, y) => {
            let (x, y) = (int_of(&x.value())?, int_of(&y.value())?);
            if y == 0 {
                return Err(error("Modulo by zero"));
            }
            Value::from(x.wrapping_rem(y))
        }
        ("**", Num::Int(x), Num::Int(y)) if y >= 0 => int(u32::try_from(y).ok().and_then(|y| x.checked_pow(y)), (x as f64).powf(y as f64)),
        ("**", x, y) => Value::from(x.f().powf(y.f())),
        _ => return Err(error(format!("unknown operator {op}"))),
    })
}

/// PHP 8's `==`.
pub fn loose_eq(a: &Value, b: &Value) -> bool {
    if let (Some(x), Some(y)) = (array(a), array(b)) {
        if x.len() != y.len() {
            return false;
        }
        let by_key: HashMap<String, &Value> = y.iter().map(|(k, v)| (to_php_string(k).unwrap_or_default(), v)).collect();
        return x.iter().all(|(k, v)| by_key.get(&to_php_string(k).unwrap_or_default()).is_some_and(|v2| loose_eq(v, v2)));
    }
    compare(a, b) == Some(Ordering::Equal)
}

fn keys_equal(a: &Value, b: &Value) -> bool {
    to_php_string(a).ok() == to_php_string(b).ok()
}

/// PHP 8's comparison of two values (`<=>`); `None` where PHP calls them uncomparable.
pub fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    use ValueKind as K;
    if let (Some(x), Some(y)) = (super::date::instant_of(a), super::date::instant_of(b)) {
        return Some(x.cmp(&y));
    }
    let (ka, kb) = (kind_of(a), kind_of(b));
    match (ka, kb) {
        (K::None, K::None) => Some(Ordering::Equal),
        // null against a string: the string against ''.
        (K::None, K::String) => Some(if b.as_str() == Some("") { Ordering::Equal } else { Ordering::Less }),
        (K::String, K::None) => Some(if a.as_str() == Some("") { Ordering::Equal } else { Ordering::Greater }),
        // Against a bool or null: both as bools.
        (K::Bool | K::None, _) | (_, K::Bool | K::None) => Some(truthy(a).cmp(&truthy(b))),
        (K::Number, K::Number) => number(a, "<=>").ok()?.f().partial_cmp(&number(b, "<=>").ok()?.f()),
        (K::String, K::String) => {
            let (x, y) = (a.as_str().unwrap_or_default(), b.as_str().unwrap_or_default());
            match (numeric_string(x), numeric_string(y)) {
                (Some(x), Some(y)) => x.f().partial_cmp(&y.f()),
                _ => Some(x.as_bytes().cmp(y.as_bytes())),
            }
        }
        // A number against a string: numerically when the string is numeric, else as strings.
        (K::Number, K::String) | (K::String, K::Number) => {
            let (text, num, flipped) = if ka == K::String { (a, b, false) } else { (b, a, true) };
            let text_str = text.as_str().unwrap_or_default();
            let ordering = match numeric_string(text_str) {
                Some(n) => n.f().partial_cmp(&number(num, "<=>").ok()?.f())?,
                None => text_str.as_bytes().cmp(to_php_string(num).ok()?.as_bytes()),
            };
            Some(if flipped { ordering.reverse() } else { ordering })
        }
        (K::Seq | K::Map, K::Seq | K::Map) => {
            let (x, y) = (array(a)?, array(b)?);
            if x.len() != y.len() {
                return Some(x.len().cmp(&y.len()));
            }
            let by_key: HashMap<String, &Value> = y.iter().map(|(k, v)| (to_php_string(k).unwrap_or_default(), v)).collect();
            for (k, v) in &x {
                let other = by_key.get(&to_php_string(k).unwrap_or_default())?;
                match compare(v, other)? {
                    Ordering::Equal => {}
                    unequal => return Some(unequal),
                }
            }
            Some(Ordering::Equal)
        }
        // An array is greater than anything but an array.
        (K::Seq | K::Map, _) => Some(Ordering::Greater),
        (_, K::Seq | K::Map) => Some(Ordering::Less),
        _ => None,
    }
}

fn kind_of(v: &Value) -> ValueKind {
    match v.kind() {
        ValueKind::Undefined => ValueKind::None,
        ValueKind::Iterable => ValueKind::Seq,
        other => other,
    }
}

/// PHP's `===`: the same type and value (arrays: the same pairs in the same order).
pub fn identical(a: &Value, b: &Value) -> bool {
    match (kind_of(a), kind_of(b)) {
        (ValueKind::Number, ValueKind::Number) => a.is_integer() == b.is_integer() && a == b,
        (ValueKind::Seq | ValueKind::Map, ValueKind::Seq | ValueKind::Map) => {
            let (Some(x), Some(y)) = (array(a), array(b)) else { return false };
            x.len() == y.len() && x.iter().zip(&y).all(|((k1, v1), (k2, v2))| keys_equal(k1, k2) && identical(v1, v2))
        }
        (x, y) => x == y && a == b,
    }
}

/// An array's (key, value) pairs in order; `None` for anything else.
pub fn array(v: &Value) -> Option<Vec<(Value, Value)>> {
    match v.kind() {
        ValueKind::Seq | ValueKind::Iterable => Some(v.try_iter().ok()?.enumerate().map(|(i, v)| (Value::from(i as i64), v)).collect()),
        ValueKind::Map => Some(v.try_iter().ok()?.map(|k| (k.clone(), v.get_item(&k).unwrap_or(Value::UNDEFINED))).collect()),
        _ => None,
    }
}

/// What `for` walks: an array's pairs; nothing for anything else (PHP warns and skips the loop).
pub fn entries(v: &Value) -> Vec<(Value, Value)> {
    array(v).unwrap_or_default()
}

/// An array of `pairs`: a list while the keys run 0, 1, 2…, else a map keyed by their text.
pub fn php_array(pairs: Vec<(Value, Value)>) -> Value {
    let sequential = pairs
        .iter()
        .enumerate()
        .all(|(i, (k, _))| k.as_i64() == Some(i as i64) || k.as_str().and_then(|s| s.parse::<usize>().ok()) == Some(i));
    if sequential {
        return Value::from(pairs.into_iter().map(|(_, v)| v).collect::<Vec<_>>());
    }
    Value::from_object(
        pairs
            .into_iter()
            .map(|(k, v)| (Value::from(to_php_string(&k).unwrap_or_default()), v))
            .collect::<indexmap::IndexMap<Value, Value>>(),
    )
}

/// `object.key` / `object[key]` as Twig reads an array: a list by its index (a numeric string too), a
/// hash by its key (an integer too); undefined when absent.
pub fn attribute(object: &Value, key: &Value) -> Value {
    match object.kind() {
        ValueKind::Seq | ValueKind::Iterable => {
            let index = match key.kind() {
                ValueKind::Number => key.as_i64(),
                ValueKind::String => key.as_str().and_then(|s| s.parse::<i64>().ok()),
                ValueKind::Bool => Some(i64::from(key.is_true())),
                _ => None,
            };
            index
                .and_then(|i| usize::try_from(i).ok())
                .and_then(|i| object.get_item_by_index(i).ok())
                .filter(|v| !v.is_undefined())
                .unwrap_or(Value::UNDEFINED)
        }
        ValueKind::Map => {
            let text = to_php_string(key).unwrap_or_default();
            match object.get_item(&Value::from(text.as_str())) {
                Ok(found) if !found.is_undefined() => found,
                _ => object.get_item(key).unwrap_or(Value::UNDEFINED),
            }
        }
        ValueKind::Plain => object.get_attr(&to_php_string(key).unwrap_or_default()).unwrap_or(Value::UNDEFINED),
        _ => Value::UNDEFINED,
    }
}

/// Twig's `in`: a value in an array (loosely compared), or a substring of a string.
fn contains(haystack: &Value, needle: &Value) -> bool {
    match haystack.kind() {
        ValueKind::Seq | ValueKind::Map | ValueKind::Iterable => entries(haystack).iter().any(|(_, v)| loose_eq(v, needle)),
        ValueKind::String if matches!(needle.kind(), ValueKind::String | ValueKind::Number) => {
            let needle = to_php_string(needle).unwrap_or_default();
            needle.is_empty() || haystack.as_str().unwrap_or_default().contains(&needle)
        }
        _ => false,
    }
}

/// PHP's `range()`: inclusive, counting down when `low > high`; letters for one-letter strings.
pub fn range(low: &Value, high: &Value, step: Option<&Value>) -> Result<Value, Error> {
    let letter = |v: &Value| v.as_str().filter(|s| s.len() == 1 && !s.as_bytes()[0].is_ascii_digit()).map(|s| s.as_bytes()[0]);
    if let (Some(a), Some(b)) = (letter(low), letter(high)) {
        let step = step.map(int_of).transpose()?.unwrap_or(1).unsigned_abs().max(1) as usize;
        let chars: Vec<Value> = if a <= b {
            (a..=b).step_by(step).map(|c| Value::from((c as char).to_string())).collect()
        } else {
            (b..=a).rev().step_by(step).map(|c| Value::from((c as char).to_string())).collect()
        };
        return Ok(Value::from(chars));
    }
    // One letter against a number: PHP reads the letter as 0.
    let as_number = |v: &Value| if letter(v).is_some() { Ok(Num::Int(0)) } else { number(v, "..") };
    let (a, b) = (as_number(low)?, as_number(high)?);
    let step = match step {
        Some(s) => number(s, "..")?,
        None => Num::Int(1),
    };
    if step.f() == 0.0 {
        return Err(error("range(): Argument #3 ($step) cannot be 0"));
    }
    if let (Num::Int(a), Num::Int(b), Num::Int(s)) = (a, b, step) {
        let s = s.unsigned_abs();
        let count = a.abs_diff(b) / s + 1;
        if count > 10_000_000 {
            return Err(error("range(): the range holds more than 10,000,000 values"));
        }
        budget::check((count as usize).saturating_mul(budget::SLOT))?;
        let values: Vec<Value> = (0..count).map(|i| Value::from(if a <= b { a + (i * s) as i64 } else { a - (i * s) as i64 })).collect();
        return Ok(Value::from(values));
    }
    let (a, b, s) = (a.f(), b.f(), step.f().abs());
    let count = ((a - b).abs() / s).floor() as u64 + 1;
    if count > 10_000_000 {
        return Err(error("range(): the range holds more than 10,000,000 values"));
    }
    budget::check((count as usize).saturating_mul(budget::SLOT))?;
    Ok(Value::from((0..count).map(|i| Value::from(if a <= b { a + i as f64 * s } else { a - i as f64 * s })).collect::<Vec<_>>()))
}

/// The variables a template sets, visible to the whole template as Twig's context is (a loop's own
/// new variables are dropped when it ends: see `tw_scope_keep`).
#[derive(Debug, Default)]
struct Scope(Mutex<Vec<(String, Value)>>);

impl Object for Scope {}

impl Scope {
    fn get(&self, name: &str) -> Option<Value> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).iter().find(|(n, _)| n == name).map(|(_, v)| v.clone())
    }

    fn set(&self, name: String, value: Value) {
        let mut vars = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match vars.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = value,
            None => vars.push((name, value)),
        }
    }

    fn keys(&self) -> Value {
        Value::from(self.0.lock().unwrap_or_else(|p| p.into_inner()).iter().map(|(n, _)| Value::from(n.as_str())).collect::<Vec<_>>())
    }

    fn remove(&self, name: &str) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).retain(|(n, _)| n != name);
    }

    fn keep(&self, keys: &[String]) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).retain(|(n, _)| keys.contains(n));
    }
}
