//! The bounds every untrusted input is read within. Records, pages, files and templates come from
//! systems the user does not control, so each buffer and each walk over nested data has a limit with a
//! named key, a default that real feeds stay far below, and an error that names the key.
//!
//! A source's limits are its `limits:` block; a mapping's are its own `limits:` block. Every key is
//! optional: what is left out keeps its default.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// How deeply a record may nest objects and lists (`{}` is one level).
pub const DEFAULT_MAX_DEPTH: usize = 128;
/// The deepest nesting a `maxDepth` may allow: stages walk records recursively within it.
pub const MAX_DEPTH_CEILING: usize = 1024;

const MIB: u64 = 1024 * 1024;

/// The keys of [`ReadLimits`], as messages name them.
pub const KEYS: [&str; 7] =
    ["maxDepth", "maxResponseBytes", "maxRecordBytes", "maxFieldBytes", "maxFileBytes", "maxDecompressedBytes", "maxSheetCells"];

/// A number of bytes: `1048576`, `512KiB`, `64MiB`, `2GiB` (or `KB`/`MB`/`GB`, read as powers of 1000).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

impl ByteSize {
    pub fn parse(text: &str) -> Option<ByteSize> {
        let text = text.trim();
        let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let number: u64 = number.parse().ok()?;
        let scale: u64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "k" | "kb" => 1000,
            "m" | "mb" => 1000 * 1000,
            "g" | "gb" => 1000 * 1000 * 1000,
            "kib" => 1024,
            "mib" => MIB,
            "gib" => 1024 * MIB,
            _ => return None,
        };
        number.checked_mul(scale).map(ByteSize)
    }

    pub fn bytes(self) -> u64 {
        self.0
    }

    /// As a buffer length (saturating on 32-bit targets).
    pub fn as_usize(self) -> usize {
        usize::try_from(self.0).unwrap_or(usize::MAX)
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let b = self.0;
        if b >= 1024 * MIB && b.is_multiple_of(1024 * MIB) {
            write!(f, "{} GiB", b / (1024 * MIB))
        } else if b >= MIB && b.is_multiple_of(MIB) {
            write!(f, "{} MiB", b / MIB)
        } else if b >= 1024 && b.is_multiple_of(1024) {
            write!(f, "{} KiB", b / 1024)
        } else {
            write!(f, "{b} bytes")
        }
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string().replace(' ', "").replace("bytes", ""))
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SizeVisitor;
        impl Visitor<'_> for SizeVisitor {
            type Value = ByteSize;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a size such as 64MiB, 512KiB or a number of bytes")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ByteSize, E> {
                u64::try_from(v).map(ByteSize).map_err(|_| E::custom("a size cannot be negative"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ByteSize, E> {
                ByteSize::parse(v).ok_or_else(|| E::custom(format!("`{v}` is not a size (write 64MiB, 512KiB or a number of bytes)")))
            }
        }
        deserializer.deserialize_any(SizeVisitor)
    }
}

/// How much a source may hand over: its `limits:` block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct ReadLimits {
    /// Levels of nested objects and lists in one record (and in an XML body), default 128.
    pub max_depth: usize,
    /// Bytes of one HTTP response (an API page, a token answer), default 64 MiB.
    pub max_response_bytes: ByteSize,
    /// Bytes of one record (a JSON record, an NDJSON or CSV line), default 16 MiB.
    pub max_record_bytes: ByteSize,
    /// Bytes of one CSV field, default 8 MiB.
    pub max_field_bytes: ByteSize,
    /// Bytes of a file that is read whole (a JSON document, a spreadsheet), default 256 MiB.
    pub max_file_bytes: ByteSize,
    /// Bytes a compressed input (`.gz`, a spreadsheet's zip entries) may expand to, default 1 GiB.
    pub max_decompressed_bytes: ByteSize,
    /// Cells of one spreadsheet sheet (as declared, and as read), default 20,000,000.
    pub max_sheet_cells: u64,
}

impl Default for ReadLimits {
    fn default() -> Self {
        ReadLimits {
            max_depth: DEFAULT_MAX_DEPTH,
            max_response_bytes: ByteSize(64 * MIB),
            max_record_bytes: ByteSize(16 * MIB),
            max_field_bytes: ByteSize(8 * MIB),
            max_file_bytes: ByteSize(256 * MIB),
            max_decompressed_bytes: ByteSize(1024 * MIB),
            max_sheet_cells: 20_000_000,
        }
    }
}

impl ReadLimits {
    /// What is wrong with these limits, if anything (checked when a pipeline file loads).
    pub fn problem(&self) -> Option<String> {
        if !(1..=MAX_DEPTH_CEILING).contains(&self.max_depth) {
            return Some(format!("maxDepth must be between 1 and {MAX_DEPTH_CEILING}"));
        }
        let sizes = [
            ("maxResponseBytes", self.max_response_bytes),
            ("maxRecordBytes", self.max_record_bytes),
            ("maxFieldBytes", self.max_field_bytes),
            ("maxFileBytes", self.max_file_bytes),
            ("maxDecompressedBytes", self.max_decompressed_bytes),
        ];
        sizes.iter().find(|(_, size)| size.0 == 0).map(|(key, _)| format!("{key} must be more than 0"))
    }
}

/// How much one template may do: a mapping's `limits:` block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct TemplateLimits {
    /// Steps one template may take to render one value (loops, calls, prints), default 5,000,000.
    pub template_fuel: u64,
    /// Bytes one template may print for one value, default 16 MiB.
    pub max_template_output_bytes: ByteSize,
}

impl Default for TemplateLimits {
    fn default() -> Self {
        TemplateLimits { template_fuel: 5_000_000, max_template_output_bytes: ByteSize(16 * MIB) }
    }
}

impl TemplateLimits {
    /// These limits, lowered to `ceiling` where they exceed it (the service's own bounds).
    pub fn within(self, ceiling: TemplateLimits) -> TemplateLimits {
        TemplateLimits {
            template_fuel: self.template_fuel.min(ceiling.template_fuel),
            max_template_output_bytes: self.max_template_output_bytes.min(ceiling.max_template_output_bytes),
        }
    }
}

/// An input over one of the limits: the message names the key that raises it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} is larger than {key} ({limit}){hint}", hint = if self.hint.is_empty() { String::new() } else { format!("; {}", self.hint) })]
pub struct OverLimit {
    pub what: String,
    pub key: &'static str,
    pub limit: String,
    pub hint: String,
}

impl OverLimit {
    pub fn bytes(what: impl Into<String>, key: &'static str, limit: ByteSize) -> OverLimit {
        OverLimit {
            what: what.into(),
            key,
            limit: limit.to_string(),
            hint: format!("raise `limits.{key}` on the source if this is expected"),
        }
    }
}

/// Parses JSON whose depth was already bounded by a `maxDepth` (a record that was hashed, an object
/// the register stored), which may allow more than the parser's own fixed 128 levels.
pub fn parse_checked_depth(bytes: &[u8]) -> serde_json::Result<serde_json::Value> {
    let mut parser = serde_json::Deserializer::from_slice(bytes);
    parser.disable_recursion_limit();
    let value = serde::Deserialize::deserialize(&mut parser)?;
    parser.end()?;
    Ok(value)
}

/// `what` nested deeper than `max` levels at `path` (dot path, may be empty).
pub fn too_deep(what: &str, max: usize, path: &str) -> String {
    let at = if path.is_empty() { String::new() } else { format!(" at {path}") };
    format!("{what} nested deeper than {max} levels{at} (maxDepth; raise `limits.maxDepth` on the source if this is expected)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_and_print() {
        assert_eq!(ByteSize::parse("64MiB"), Some(ByteSize(64 * MIB)));
        assert_eq!(ByteSize::parse("64 mb"), Some(ByteSize(64_000_000)));
        assert_eq!(ByteSize::parse("512KiB"), Some(ByteSize(512 * 1024)));
        assert_eq!(ByteSize::parse("100"), Some(ByteSize(100)));
        assert_eq!(ByteSize::parse("1.5GiB"), None);
        assert_eq!(ByteSize::parse("99999999999999999999GiB"), None);
        assert_eq!(ByteSize(64 * MIB).to_string(), "64 MiB");
        assert_eq!(ByteSize(1000).to_string(), "1000 bytes");
        assert_eq!(serde_json::to_string(&ByteSize(2 * 1024 * MIB)).unwrap(), "\"2GiB\"");
    }

    #[test]
    fn limits_read_partially_and_refuse_unknown_keys() {
        let limits: ReadLimits = serde_json::from_value(serde_json::json!({"maxDepth": 16, "maxResponseBytes": "1MiB"})).unwrap();
        assert_eq!(limits.max_depth, 16);
        assert_eq!(limits.max_response_bytes, ByteSize(MIB));
        assert_eq!(limits.max_record_bytes, ReadLimits::default().max_record_bytes);
        assert!(serde_json::from_value::<ReadLimits>(serde_json::json!({"maxDeep": 3})).is_err());
        assert!(ReadLimits { max_depth: 0, ..ReadLimits::default() }.problem().is_some());
        assert!(ReadLimits { max_depth: 5000, ..ReadLimits::default() }.problem().is_some());
        let error = OverLimit::bytes("the response of http://h/x", "maxResponseBytes", ByteSize(MIB)).to_string();
        assert_eq!(
            error,
            "the response of http://h/x is larger than maxResponseBytes (1 MiB); raise `limits.maxResponseBytes` on the source if this is expected"
        );
    }
}
