//! What OpenConnector reads past and an import must too: keys its `hydrate()` drops, casts it
//! skips, references by the database id of the installation a file came from. Each is left out or
//! guessed at with a [`Notice`] naming it, never silently.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::quirks::Notice;

/// The keys a pipeline's mapping, synchronization and sourceConfig take (bookkeeping keys such as
/// `name` and `id` aside; a source's are its connector's, `sources::registry::source_keys`). OpenConnector's `hydrate()` drops keys it does not know, so an
/// object in its files may carry any (`@context`, `@type`, misspellings): on import they are left
/// out, each named; a native pipeline file stays strict.
pub(super) const MAPPING_KEYS: &[&str] = &["mapping", "unset", "cast", "passThrough", "limits"];
pub(super) const SYNCHRONIZATION_KEYS: &[&str] = &[
    "source",
    "sourceId",
    "sourceType",
    "sourceConfig",
    "mapping",
    "sourceTargetMapping",
    "target",
    "targetType",
    "targetId",
    "targetConfig",
    "conditions",
    "filter",
    "schedule",
    "deletePolicy",
    "maxDeleteShare",
    "hook",
    "sourceHashMapping",
    "followUps",
];
pub(super) const SOURCE_CONFIG_KEYS: &[&str] = &[
    "endpoint",
    "headers",
    "query",
    "path",
    "format",
    "delimiter",
    "header",
    "encoding",
    "columnTypes",
    "compression",
    "sheet",
    "headerRow",
    "range",
    "minimumAge",
    "incremental",
    "idPosition",
    "resultsPosition",
    "pagination",
    "maxPages",
    "usesPagination",
    "paginationQuery",
];

/// Leaves out the keys of `fields` a pipeline does not take, each with a notice.
pub(super) fn leave_out_unknown(fields: &mut Map<String, Value>, known: &[&str], at: &str, notices: &mut Vec<Notice>) {
    let unknown: Vec<String> =
        fields.keys().filter(|k| !known.contains(&k.as_str()) && !crate::config::is_bookkeeping(k)).cloned().collect();
    for key in unknown {
        fields.remove(&key);
        notices.push(Notice {
            key: format!("{at}.{key}"),
            message: "left out: OpenConnector drops a key it does not know, and so does the import".into(),
        });
    }
}

/// Leaves out the casts OpenConnector would skip (a name it does not know), each with a notice.
pub(super) fn leave_out_unknown_casts(fields: &mut Map<String, Value>, at: &str, notices: &mut Vec<Notice>) {
    let Some(Value::Object(casts)) = fields.get_mut("cast") else { return };
    for (path, value) in casts.iter_mut() {
        let names: Vec<String> = match value {
            Value::String(s) => s.split(',').map(str::to_string).collect(),
            Value::Array(items) => items.iter().filter_map(|v| v.as_str().map(str::to_string)).collect(),
            _ => continue,
        };
        let (known, unknown): (Vec<String>, Vec<String>) =
            names.into_iter().filter(|n| !n.is_empty()).partition(|n| crate::mapping::casts::Cast::parse(n).is_some());
        if unknown.is_empty() {
            continue;
        }
        notices.push(Notice {
            key: format!("{at}.cast.{path}"),
            message: format!(
                "left out: {} — OpenConnector skips a cast it does not know",
                unknown.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
            ),
        });
        *value = Value::String(known.join(","));
    }
}

/// The first arguments of the `executeMapping(…)` calls in a mapping's templates, as written (a
/// number, or the text of a quoted name).
pub(super) fn called_mappings(mapping: &Value) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut pending = vec![mapping];
    while let Some(value) = pending.pop() {
        match value {
            Value::String(text) => {
                for (at, _) in text.match_indices("executeMapping(") {
                    let rest = text[at + "executeMapping(".len()..].trim_start();
                    let argument: String = match rest.chars().next() {
                        Some(quote @ ('\'' | '"')) => rest[1..].chars().take_while(|c| *c != quote).collect(),
                        _ => rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect(),
                    };
                    if !argument.is_empty() && (argument.parse::<u64>().is_ok() || rest.starts_with(['\'', '"'])) {
                        found.insert(argument);
                    }
                }
            }
            Value::Array(items) => pending.extend(items),
            Value::Object(map) => pending.extend(map.values()),
            _ => {}
        }
    }
    found
}

/// The name among `names` most like `name`, in order as well as in letters (`xxllnc-cases-to-zgw-zaken`
/// is `xxllnc-case-to-zgw-zaak` more than `zgw-zaak-to-xxllnc-case`): the longest common
/// subsequence of their letters, against their lengths. `None` when none shares half its letters.
pub(super) fn closest(name: &str, names: &[String]) -> Option<String> {
    let common = |a: &[u8], b: &[u8]| {
        let mut row = vec![0usize; b.len() + 1];
        for x in a {
            let mut diagonal = 0;
            for (j, y) in b.iter().enumerate() {
                let above = row[j + 1];
                row[j + 1] = if x == y { diagonal + 1 } else { row[j + 1].max(row[j]) };
                diagonal = above;
            }
        }
        row[b.len()]
    };
    // The comparison is quadratic: names longer than any a person types are not guessed at.
    const LONGEST: usize = 256;
    let mine = name.to_lowercase();
    if mine.len() > LONGEST {
        return None;
    }
    let names: Vec<&String> = names.iter().filter(|other| other.len() <= LONGEST).collect();
    let score = |other: &&String| {
        let theirs = other.to_lowercase();
        // Twice the shared letters over both lengths, in thousandths.
        2000 * common(mine.as_bytes(), theirs.as_bytes()) / (mine.len() + theirs.len()).max(1)
    };
    let best = names.iter().max_by_key(|other| score(other))?;
    (score(best) >= 500).then(|| (*best).clone())
}

#[cfg(test)]
mod tests {
    use serde::de::DeserializeOwned;
    use serde_json::json;

    use super::*;
    use crate::config::{MappingDef, SourceConfigDef, SynchronizationDef};

    /// The fields a definition takes, as serde names them when it refuses an unknown one.
    fn fields_of<T: DeserializeOwned>() -> BTreeSet<String> {
        let error = serde_json::from_value::<T>(json!({"zzUnknownProbe": 1})).err().expect("an unknown key is refused").to_string();
        let list = error.split("expected one of ").nth(1).unwrap_or_else(|| panic!("serde names the fields: {error}"));
        list.split(", ")
            .map(|field| field.trim_matches(|c: char| c == '`' || c.is_whitespace()).to_string())
            .take_while(|f| !f.contains(' '))
            .collect()
    }

    /// The hand-kept lists say exactly what the model reads: a field added to a definition and not
    /// here would be left out of every import, one here and not there refused by every pipeline.
    #[test]
    fn the_kept_keys_are_the_fields_of_the_definitions() {
        for (what, kept, model) in [
            ("mapping", MAPPING_KEYS, fields_of::<MappingDef>()),
            ("synchronization", SYNCHRONIZATION_KEYS, fields_of::<SynchronizationDef>()),
            ("sourceConfig", SOURCE_CONFIG_KEYS, fields_of::<SourceConfigDef>()),
        ] {
            let kept: BTreeSet<String> = kept.iter().map(|k| k.to_string()).collect();
            assert_eq!(kept, model, "the {what} keys");
        }
    }

    #[test]
    fn unknown_casts_are_left_out_and_known_ones_kept() {
        let mut fields = json!({"cast": {"a": "int,shout", "b": ["bool", "whisper"], "c": "unsetIfValue==x"}}).as_object().unwrap().clone();
        let mut notices = Vec::new();
        leave_out_unknown_casts(&mut fields, "mappings.m", &mut notices);
        assert_eq!(fields["cast"], json!({"a": "int", "b": "bool", "c": "unsetIfValue==x"}));
        let keys: Vec<&str> = notices.iter().map(|n| n.key.as_str()).collect();
        assert_eq!(keys, ["mappings.m.cast.a", "mappings.m.cast.b"]);
        assert!(notices[0].message.contains("`shout`"), "{}", notices[0].message);
    }

    #[test]
    fn calls_are_found_by_number_or_quoted_name_only() {
        let mapping = json!({"a": "{{ executeMapping(12, x) }}", "b": ["{{ executeMapping( 'Rol', y) }}"],
                             "c": {"d": "{{ executeMapping(variable, z) }}{{ executeMapping(\"Type\", t) }}"}});
        let found: Vec<String> = called_mappings(&mapping).into_iter().collect();
        assert_eq!(found, ["12", "Rol", "Type"]);
    }

    #[test]
    fn the_closest_name_keeps_the_order_of_its_words() {
        let names = ["zgw-zaak-to-xxllnc-case".to_string(), "xxllnc-case-to-zgw-zaak".to_string()];
        assert_eq!(closest("xxllnc-cases-to-zgw-zaken", &names).as_deref(), Some("xxllnc-case-to-zgw-zaak"));
        assert_eq!(closest("something-else-entirely", &["abc".to_string()]), None, "under half the letters in common");
        // Quadratic work is never done on names no one types.
        assert_eq!(closest(&"a".repeat(10_000), &["a".repeat(10_000)]), None);
    }
}
