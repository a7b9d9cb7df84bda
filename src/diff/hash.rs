//! Canonical record hashing. A record's hash is blake3 over the mapping's fingerprint and the record's
//! canonical JSON: keys sorted bytewise at every level, no whitespace, strings with their escapes
//! resolved, numbers as the source wrote them. Canonicalising makes a source that reorders keys between
//! runs look unchanged.
//!
//! The canonical form is produced straight from the raw bytes the source sent, in one pass that also
//! picks out the record's id at `idPosition`, without building a `serde_json::Value`: an unchanged
//! record is never parsed further.

use serde_json::Value;

use crate::limits::DEFAULT_MAX_DEPTH;

/// What one pass over a raw record found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scanned {
    pub hash: [u8; 32],
    /// The id at `idPosition`, as text (`7` for a number, `abc` for a string); `None` when absent.
    pub origin_id: Option<Result<String, String>>,
}

/// A record that cannot be hashed: malformed, or nested deeper than the limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScanError {
    #[error("malformed JSON at byte {offset}: {message}")]
    Malformed { offset: usize, message: &'static str },
    #[error("{}", crate::limits::too_deep("record", *.max, ""))]
    TooDeep { max: usize },
}

/// Reusable buffers, so hashing a feed allocates nothing per record.
pub struct Hasher {
    b: Buffers,
    /// Levels of objects and lists a record may nest: the walks below recurse once per level.
    max_depth: usize,
}

impl Default for Hasher {
    fn default() -> Self {
        Hasher::new(DEFAULT_MAX_DEPTH)
    }
}

#[derive(Default)]
struct Buffers {
    out: Vec<u8>,
    tmp: Vec<u8>,
    entries: Vec<Entry>,
}

#[derive(Clone, Copy)]
struct Entry {
    key: (usize, usize),
    key_escaped: bool,
    out: (usize, usize),
}

impl Hasher {
    /// A hasher for records nesting at most `max_depth` levels.
    pub fn new(max_depth: usize) -> Hasher {
        Hasher { b: Buffers::default(), max_depth }
    }

    /// Hashes the raw JSON `record` with `fingerprint`, capturing the value at `id_path`.
    pub fn scan(&mut self, record: &[u8], fingerprint: &[u8; 32], id_path: &[String]) -> Result<Scanned, ScanError> {
        self.b.out.clear();
        let mut scan = Scan { src: record, pos: 0, id_path, id: None, depth_left: self.max_depth, max_depth: self.max_depth };
        scan.skip_ws();
        let scanned = scan.value(&mut self.b, Some(0));
        // A failed scan leaves entries of the objects it was inside.
        self.b.entries.clear();
        scanned?;
        scan.skip_ws();
        if scan.pos != record.len() {
            return scan.err("trailing characters after the record");
        }
        Ok(Scanned { hash: finish(fingerprint, &self.b.out), origin_id: scan.id })
    }

    /// Hashes a parsed value into the same canonical form as [`Hasher::scan`] gives its raw bytes.
    pub fn hash_value(&mut self, value: &Value, fingerprint: &[u8; 32]) -> Result<[u8; 32], ScanError> {
        self.b.out.clear();
        // The walk says only that it went too deep; the limit is this hasher's.
        write_value(value, &mut self.b.out, self.max_depth).map_err(|_| ScanError::TooDeep { max: self.max_depth })?;
        Ok(finish(fingerprint, &self.b.out))
    }

    /// The canonical bytes of the last record hashed (for tests and debugging).
    pub fn canonical(&self) -> &[u8] {
        &self.b.out
    }
}

fn finish(fingerprint: &[u8; 32], canonical: &[u8]) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(fingerprint);
    h.update(canonical);
    *h.finalize().as_bytes()
}

struct Scan<'a> {
    src: &'a [u8],
    pos: usize,
    id_path: &'a [String],
    id: Option<Result<String, String>>,
    /// Levels of objects and lists still allowed below the current one.
    depth_left: usize,
    max_depth: usize,
}

impl Scan<'_> {
    fn err<T>(&self, message: &'static str) -> Result<T, ScanError> {
        Err(ScanError::Malformed { offset: self.pos, message })
    }

    /// Enters an object or a list: one level of recursion, refused past the limit.
    fn descend(&mut self) -> Result<(), ScanError> {
        if self.depth_left == 0 {
            return Err(ScanError::TooDeep { max: self.max_depth });
        }
        self.depth_left -= 1;
        Ok(())
    }

    fn skip_ws(&mut self) {
        while self.pos < self.src.len() && matches!(self.src[self.pos], b' ' | b'\t' | b'\n' | b'\r') {
            self.pos += 1;
        }
    }

    /// Writes the canonical form of the value at `pos` to `b.out`. `id_depth` is how many segments of
    /// the id path the way here has matched (None once it left the path).
    fn value(&mut self, b: &mut Buffers, id_depth: Option<usize>) -> Result<(), ScanError> {
        let start = self.pos;
        let is_id = id_depth == Some(self.id_path.len()) && !self.id_path.is_empty();
        match self.src.get(self.pos) {
            Some(open @ (b'{' | b'[')) => {
                self.descend()?;
                if *open == b'{' {
                    self.object(b, id_depth)?
                } else {
                    self.array(b, id_depth)?
                }
                self.depth_left += 1;
            }
            Some(b'"') => {
                let (s, e, escaped) = self.string()?;
                write_string(self.src, s, e, escaped, &mut b.out);
                if is_id {
                    self.id = Some(Ok(decode(&self.src[s..e], escaped)));
                }
                return Ok(());
            }
            Some(b't') => self.literal(b"true", &mut b.out)?,
            Some(b'f') => self.literal(b"false", &mut b.out)?,
            Some(b'n') => self.literal(b"null", &mut b.out)?,
            Some(b'-' | b'0'..=b'9') => {
                while self.pos < self.src.len() && matches!(self.src[self.pos], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9') {
                    self.pos += 1;
                }
                b.out.extend_from_slice(&self.src[start..self.pos]);
            }
            _ => return self.err("expected a value"),
        }
        if is_id {
            let raw = &self.src[start..self.pos];
            self.id = Some(match raw[0] {
                b'{' | b'[' => Err("idPosition points at an object or a list, not an id".to_string()),
                b'n' => Err("the id at idPosition is null".to_string()),
                _ => Ok(String::from_utf8_lossy(raw).into_owned()),
            });
        }
        Ok(())
    }

    fn literal(&mut self, word: &[u8], out: &mut Vec<u8>) -> Result<(), ScanError> {
        if self.src[self.pos..].starts_with(word) {
            self.pos += word.len();
            out.extend_from_slice(word);
            Ok(())
        } else {
            self.err("expected true, false or null")
        }
    }

    /// Scans a string at `pos`; returns the content's span (without quotes) and whether it has escapes.
    fn string(&mut self) -> Result<(usize, usize, bool), ScanError> {
        self.pos += 1;
        let start = self.pos;
        let mut escaped = false;
        loop {
            // Strings are most of a record's bytes: jump to the next quote or backslash.
            match memchr::memchr2(b'"', b'\\', self.src.get(self.pos..).unwrap_or_default()) {
                None => {
                    self.pos = self.src.len();
                    return self.err("unterminated string");
                }
                Some(skip) if self.src[self.pos + skip] == b'"' => {
                    self.pos += skip;
                    break;
                }
                Some(skip) => {
                    escaped = true;
                    self.pos += skip + 2;
                }
            }
        }
        let end = self.pos;
        self.pos += 1;
        Ok((start, end, escaped))
    }

    fn object(&mut self, b: &mut Buffers, id_depth: Option<usize>) -> Result<(), ScanError> {
        self.pos += 1;
        let base = b.entries.len();
        let object_start = b.out.len();
        b.out.push(b'{');
        self.skip_ws();
        if self.src.get(self.pos) == Some(&b'}') {
            self.pos += 1;
            b.out.push(b'}');
            return Ok(());
        }
        loop {
            self.skip_ws();
            if self.src.get(self.pos) != Some(&b'"') {
                return self.err("expected a key");
            }
            let (ks, ke, key_escaped) = self.string()?;
            self.skip_ws();
            if self.src.get(self.pos) != Some(&b':') {
                return self.err("expected `:`");
            }
            self.pos += 1;
            self.skip_ws();
            let out_start = b.out.len();
            write_string(self.src, ks, ke, key_escaped, &mut b.out);
            b.out.push(b':');
            let child_depth = match id_depth {
                Some(d) if d < self.id_path.len() && key_matches(&self.src[ks..ke], key_escaped, &self.id_path[d]) => Some(d + 1),
                _ => None,
            };
            self.value(b, child_depth)?;
            b.entries.push(Entry { key: (ks, ke), key_escaped, out: (out_start, b.out.len()) });
            self.skip_ws();
            match self.src.get(self.pos) {
                Some(b',') => {
                    self.pos += 1;
                    b.out.push(b',');
                }
                Some(b'}') => {
                    self.pos += 1;
                    break;
                }
                _ => return self.err("expected `,` or `}`"),
            }
        }
        let src = self.src;
        let entries = &mut b.entries[base..];
        let sorted = entries.windows(2).all(|w| compare_keys(src, &w[0], &w[1]) != std::cmp::Ordering::Greater);
        if !sorted {
            entries.sort_by(|x, y| compare_keys(src, x, y));
            b.tmp.clear();
            b.tmp.push(b'{');
            for (i, entry) in entries.iter().enumerate() {
                if i > 0 {
                    b.tmp.push(b',');
                }
                b.tmp.extend_from_slice(&b.out[entry.out.0..entry.out.1]);
            }
            b.out.truncate(object_start);
            b.out.extend_from_slice(&b.tmp);
        }
        b.out.push(b'}');
        b.entries.truncate(base);
        Ok(())
    }

    fn array(&mut self, b: &mut Buffers, id_depth: Option<usize>) -> Result<(), ScanError> {
        self.pos += 1;
        b.out.push(b'[');
        self.skip_ws();
        if self.src.get(self.pos) == Some(&b']') {
            self.pos += 1;
            b.out.push(b']');
            return Ok(());
        }
        let mut index = 0usize;
        loop {
            self.skip_ws();
            let child_depth = match id_depth {
                Some(d) if d < self.id_path.len() && self.id_path[d].parse() == Ok(index) => Some(d + 1),
                _ => None,
            };
            self.value(b, child_depth)?;
            self.skip_ws();
            match self.src.get(self.pos) {
                Some(b',') => {
                    self.pos += 1;
                    b.out.push(b',');
                    index += 1;
                }
                Some(b']') => {
                    self.pos += 1;
                    b.out.push(b']');
                    return Ok(());
                }
                _ => return self.err("expected `,` or `]`"),
            }
        }
    }
}

fn key_matches(raw: &[u8], escaped: bool, want: &str) -> bool {
    if escaped { decode(raw, true) == want } else { raw == want.as_bytes() }
}

fn compare_keys(src: &[u8], a: &Entry, b: &Entry) -> std::cmp::Ordering {
    let ka = &src[a.key.0..a.key.1];
    let kb = &src[b.key.0..b.key.1];
    if !a.key_escaped && !b.key_escaped { ka.cmp(kb) } else { decode(ka, a.key_escaped).cmp(&decode(kb, b.key_escaped)) }
}

/// The text of a string's raw content.
fn decode(raw: &[u8], escaped: bool) -> String {
    if !escaped {
        return String::from_utf8_lossy(raw).into_owned();
    }
    let mut quoted = Vec::with_capacity(raw.len() + 2);
    quoted.push(b'"');
    quoted.extend_from_slice(raw);
    quoted.push(b'"');
    serde_json::from_slice::<String>(&quoted).unwrap_or_else(|_| String::from_utf8_lossy(raw).into_owned())
}

/// Writes a string canonically: raw when it has no escapes, else decoded and re-escaped minimally.
fn write_string(src: &[u8], start: usize, end: usize, escaped: bool, out: &mut Vec<u8>) {
    if escaped {
        let text = decode(&src[start..end], true);
        // Writing into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, &text);
    } else {
        out.push(b'"');
        out.extend_from_slice(&src[start..end]);
        out.push(b'"');
    }
}

fn write_value(value: &Value, out: &mut Vec<u8>, depth_left: usize) -> Result<(), ScanError> {
    if matches!(value, Value::Object(_) | Value::Array(_)) && depth_left == 0 {
        return Err(ScanError::TooDeep { max: 0 });
    }
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push(b'{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                let _ = serde_json::to_writer(&mut *out, key);
                out.push(b':');
                write_value(&map[key], out, depth_left - 1)?;
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(item, out, depth_left - 1)?;
            }
            out.push(b']');
        }
        other => {
            let _ = serde_json::to_writer(&mut *out, other);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(p: &str) -> Vec<String> {
        p.split('.').map(str::to_string).collect()
    }

    fn scan(json: &str, id: &str) -> (Scanned, String) {
        let mut h = Hasher::default();
        let s = h.scan(json.as_bytes(), &[0; 32], &path(id)).unwrap();
        (s, String::from_utf8(h.canonical().to_vec()).unwrap())
    }

    #[test]
    fn canonical_form_sorts_keys_at_every_level() {
        let (a, text) = scan(r#" { "b": 1, "a": {"d": [3, {"z": 1, "y": 2}], "c": "x"} } "#, "b");
        assert_eq!(text, r#"{"a":{"c":"x","d":[3,{"y":2,"z":1}]},"b":1}"#);
        let (b, _) = scan(r#"{"a":{"c":"x","d":[3,{"y":2,"z":1}]},"b":1}"#, "b");
        assert_eq!(a.hash, b.hash);
        assert_eq!(a.origin_id, Some(Ok("1".into())));
    }

    #[test]
    fn escapes_resolve_to_the_same_hash() {
        let (a, _) = scan(r#"{"name":"caf\u00e9","k\u0065y":1}"#, "key");
        let (b, _) = scan(r#"{"key":1,"name":"café"}"#, "key");
        assert_eq!(a.hash, b.hash);
        assert_eq!(a.origin_id, Some(Ok("1".into())));
    }

    #[test]
    fn value_hash_equals_raw_hash() {
        let raw = r#"{"id":7,"name":"Bella \"B\"","tags":[{"n":"a"}],"category":{"name":"Dogs","id":1},"x":null,"ok":true}"#;
        let (scanned, _) = scan(raw, "id");
        let value: Value = serde_json::from_str(raw).unwrap();
        assert_eq!(Hasher::default().hash_value(&value, &[0; 32]).unwrap(), scanned.hash);
    }

    #[test]
    fn ids_at_nested_paths_and_list_indexes() {
        assert_eq!(scan(r#"{"meta":{"id":"abc"},"id":1}"#, "meta.id").0.origin_id, Some(Ok("abc".into())));
        assert_eq!(scan(r#"{"ids":[5,6]}"#, "ids.1").0.origin_id, Some(Ok("6".into())));
        assert_eq!(scan(r#"{"x":1}"#, "id").0.origin_id, None);
        assert!(matches!(scan(r#"{"id":{"a":1}}"#, "id").0.origin_id, Some(Err(_))));
        assert!(matches!(scan(r#"{"id":null}"#, "id").0.origin_id, Some(Err(_))));
    }

    #[test]
    fn fingerprint_changes_the_hash_and_content_matters() {
        let mut h = Hasher::default();
        let a = h.scan(br#"{"a":1}"#, &[0; 32], &[]).unwrap().hash;
        let b = h.scan(br#"{"a":1}"#, &[1; 32], &[]).unwrap().hash;
        let c = h.scan(br#"{"a":2}"#, &[0; 32], &[]).unwrap().hash;
        assert_ne!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn depth_is_bounded_without_recursing_past_the_limit() {
        let mut h = Hasher::new(4);
        let nested = |levels: usize| format!("{}{}", "[".repeat(levels), "]".repeat(levels));
        assert!(h.scan(nested(4).as_bytes(), &[0; 32], &[]).is_ok());
        assert_eq!(h.scan(nested(5).as_bytes(), &[0; 32], &[]).unwrap_err(), ScanError::TooDeep { max: 4 });
        // A record far deeper than any stack: refused at the limit, so it costs nothing to refuse.
        let deep = format!("{}1{}", r#"{"a":"#.repeat(200_000), "}".repeat(200_000));
        let error = Hasher::default().scan(deep.as_bytes(), &[0; 32], &[]).unwrap_err();
        assert!(error.to_string().contains("nested deeper than 128 levels"), "{error}");
        // The same hasher goes on with the next record as if nothing happened.
        assert!(h.scan(br#"{"b":1,"a":2}"#, &[0; 32], &[]).is_ok());
        assert_eq!(h.canonical(), br#"{"a":2,"b":1}"#);
        let value: Value = serde_json::from_str(&nested(5)).unwrap();
        assert_eq!(h.hash_value(&value, &[0; 32]).unwrap_err(), ScanError::TooDeep { max: 4 });
    }

    #[test]
    fn malformed_records_are_errors() {
        let mut h = Hasher::default();
        for bad in [r#"{"a":}"#, r#"{"a":1"#, r#"{"a" 1}"#, "[1,2", r#"{"a":"x}"#, "{} x"] {
            assert!(h.scan(bad.as_bytes(), &[0; 32], &[]).is_err(), "{bad}");
        }
    }
}
