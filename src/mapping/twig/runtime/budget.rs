//! The largest value one render may build. minijinja's fuel already charges the steps a render
//! takes and the bytes it creates, but only once a value exists; a function that makes a value from
//! a small input (`'%2000000000d'|format`, `number_format(1, 1000000000)`, a `join` of one long
//! string listed a million times) would allocate it first, and an allocation that fails aborts the
//! process. Those functions check the size they are about to make here.
//!
//! Depth is bounded here too: a value nested in itself in a loop (`{% set a = [a] %}`, a `reduce`
//! whose carry wraps the last one) grows a level per step, and a value nested a few hundred thousand
//! levels deep overflows the stack when it is dropped or written out. What a template keeps (sets,
//! reduce carries) is measured, each list and hash once per render.

use std::cell::Cell;

use minijinja::Error;
use minijinja::value::{Value, ValueKind};

/// How many times the output limit one value may hold.
pub const VALUE_FACTOR: u64 = 8;

/// How deep a template may nest lists and hashes (PHP's `json_encode` stops at 512 too).
pub const MAX_VALUE_DEPTH: usize = 512;

thread_local! {
    /// The largest value the render running on this thread may build, if one is running.
    static LARGEST: Cell<Option<u64>> = const { Cell::new(None) };
    /// The depth of every list and hash measured in this render, by the address of its items
    /// (stable while the value lives; with its length, so a reused address is measured again).
    static DEPTHS: std::cell::RefCell<std::collections::HashMap<usize, (usize, usize)>> = Default::default();
}

/// The limit of one top-level render; nested renders (`executeMapping` inside a template) keep it.
pub struct Render {
    opened: bool,
}

/// Sets the largest value to `VALUE_FACTOR × max_output` bytes for the render on this thread.
pub fn begin(max_output: u64) -> Render {
    LARGEST.with(|largest| {
        if largest.get().is_some() {
            return Render { opened: false };
        }
        largest.set(Some(max_output.saturating_mul(VALUE_FACTOR)));
        Render { opened: true }
    })
}

impl Drop for Render {
    fn drop(&mut self) {
        if self.opened {
            LARGEST.with(|largest| largest.set(None));
            DEPTHS.with(|depths| depths.borrow_mut().clear());
        }
    }
}

/// The items of a list or hash and where they live, if `value` is one minijinja or the runtime made.
fn items(value: &Value) -> Option<(usize, Vec<Value>)> {
    let object = value.as_object()?;
    if let Some(list) = object.downcast_ref::<Vec<Value>>() {
        return Some((list.as_ptr() as usize, list.clone()));
    }
    if let Some(map) = object.downcast_ref::<indexmap::IndexMap<Value, Value>>() {
        return Some((map as *const _ as usize, map.values().cloned().collect()));
    }
    None
}

/// Fails when `value` nests lists and hashes deeper than [`MAX_VALUE_DEPTH`]. Iterative, and each
/// list or hash is measured once per render, so keeping a growing value in a loop stays linear.
pub fn check_depth(value: &Value) -> Result<(), Error> {
    /// A list or hash being measured: its address, the children left to look at, the deepest so far.
    struct Frame {
        address: usize,
        len: usize,
        children: std::vec::IntoIter<Value>,
        deepest_child: usize,
    }
    let too_deep = || super::error(format!("the template nests lists and hashes deeper than {MAX_VALUE_DEPTH} levels"));
    DEPTHS.with(|depths| {
        let mut depths = depths.borrow_mut();
        let known = |depths: &std::collections::HashMap<usize, (usize, usize)>, address: usize, len: usize| {
            depths.get(&address).filter(|(known_len, _)| *known_len == len).map(|(_, depth)| *depth)
        };
        let Some((address, children)) = items(value) else { return Ok(()) };
        if known(&depths, address, children.len()).is_some() {
            return Ok(());
        }
        let mut stack = vec![Frame { address, len: children.len(), children: children.into_iter(), deepest_child: 0 }];
        while let Some(frame) = stack.last_mut() {
            match frame.children.next() {
                Some(child) => {
                    let Some((address, children)) = items(&child) else { continue };
                    match known(&depths, address, children.len()) {
                        Some(depth) => frame.deepest_child = frame.deepest_child.max(depth),
                        None if stack.len() >= MAX_VALUE_DEPTH => return Err(too_deep()),
                        None => stack.push(Frame { address, len: children.len(), children: children.into_iter(), deepest_child: 0 }),
                    }
                }
                None => {
                    let depth = frame.deepest_child + 1;
                    let (address, len) = (frame.address, frame.len);
                    stack.pop();
                    if depth + stack.len() > MAX_VALUE_DEPTH {
                        return Err(too_deep());
                    }
                    depths.insert(address, (len, depth));
                    if let Some(parent) = stack.last_mut() {
                        parent.deepest_child = parent.deepest_child.max(depth);
                    }
                }
            }
        }
        Ok(())
    })
}

/// The bytes a value may still take; unlimited outside a render.
pub fn room() -> usize {
    LARGEST.with(|largest| largest.get().map_or(usize::MAX, |n| usize::try_from(n).unwrap_or(usize::MAX)))
}

/// Fails when a value of `bytes` is larger than a render may build, naming the limit.
pub fn check(bytes: usize) -> Result<(), Error> {
    if bytes > room() {
        return Err(too_large());
    }
    Ok(())
}

pub fn too_large() -> Error {
    super::error(format!(
        "the template builds a value larger than {VALUE_FACTOR} × maxTemplateOutputBytes ({})",
        crate::limits::ByteSize(room() as u64)
    ))
}

/// `value`, if it is within the limit (a string's bytes, a list's or map's slots).
pub fn built(value: Value) -> Result<Value, Error> {
    check(size(&value))?;
    Ok(value)
}

/// `text`, if it is within the limit.
pub fn built_string(text: String) -> Result<String, Error> {
    check(text.len())?;
    Ok(text)
}

/// What one list item or map entry is counted as.
pub const SLOT: usize = 16;

/// A value's own size, not counting what it shares with others (a list of strings holds references).
pub fn size(value: &Value) -> usize {
    match value.kind() {
        ValueKind::String | ValueKind::Bytes => value.as_str().map_or(SLOT, str::len),
        ValueKind::Seq | ValueKind::Map | ValueKind::Iterable => value.len().unwrap_or(0).saturating_mul(SLOT),
        _ => SLOT,
    }
}

/// A bound on what `value` holds when written out whole (as JSON), counting shared parts each time
/// they appear; it stops counting once past the limit, so a list of a million references to one
/// long string costs no more than the limit to measure.
pub fn written_size(value: &Value) -> usize {
    let limit = room();
    let mut total = 0usize;
    let mut pending = vec![value.clone()];
    while let Some(value) = pending.pop() {
        total = total.saturating_add(size(&value));
        if total > limit {
            break;
        }
        if let Some((_, children)) = items(&value) {
            pending.extend(children);
        }
    }
    total
}
