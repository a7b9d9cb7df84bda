//! Properties over random nested records: the envelope hands back each record exactly as it was, the
//! canonical hash ignores key order and whitespace and matches the parsed value's hash, records past
//! the depth limit are refused (never a crash), and a mapping maps any record without panicking.

use bytes::Bytes;
use proptest::prelude::*;
use serde_json::{Map, Value};
use syncline::config::MappingDef;
use syncline::diff::hash::{Hasher, ScanError};
use syncline::envelope::{ResultsPosition, extract};
use syncline::mapping::Mapping;

/// JSON values up to a few levels deep, with keys that need escaping now and then.
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (-1.0e12f64..1.0e12).prop_map(Value::from),
        "[a-zA-Z0-9 é\"\\\\/\u{1F600}]{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(6, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(("[a-z\"\\.]{1,6}", inner), 0..6)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// `value` written with its object keys reversed and spaces between tokens: the same record.
fn rewritten(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let parts: Vec<String> =
                map.iter().rev().map(|(k, v)| format!("{} : {}", serde_json::to_string(k).unwrap(), rewritten(v))).collect();
            format!("{{ {} }}", parts.join(" , "))
        }
        Value::Array(items) => format!("[ {} ]", items.iter().map(rewritten).collect::<Vec<_>>().join(" , ")),
        other => serde_json::to_string(other).unwrap(),
    }
}

fn nested(levels: usize) -> String {
    format!("{}0{}", "[".repeat(levels), "]".repeat(levels))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn the_envelope_hands_back_every_record_as_it_was(records in prop::collection::vec(json(), 0..8)) {
        let body = serde_json::to_vec(&serde_json::json!({"data": {"items": records}})).unwrap();
        let extracted = extract(&Bytes::from(body), &ResultsPosition::parse(Some("data.items"))).unwrap();
        prop_assert_eq!(extracted.records.len(), records.len());
        for (slice, record) in extracted.records.iter().zip(&records) {
            prop_assert_eq!(&serde_json::from_slice::<Value>(slice).unwrap(), record);
        }
    }

    #[test]
    fn the_canonical_hash_ignores_layout_and_matches_the_parsed_value(value in json()) {
        let mut hasher = Hasher::default();
        let compact = hasher.scan(serde_json::to_string(&value).unwrap().as_bytes(), &[3; 32], &[]).unwrap().hash;
        let spread = hasher.scan(rewritten(&value).as_bytes(), &[3; 32], &[]).unwrap().hash;
        prop_assert_eq!(compact, spread);
        prop_assert_eq!(hasher.hash_value(&value, &[3; 32]).unwrap(), compact);
    }

    #[test]
    fn records_past_the_depth_limit_are_refused_and_others_are_not(levels in 1usize..400, limit in 1usize..300) {
        let mut hasher = Hasher::new(limit);
        let outcome = hasher.scan(nested(levels).as_bytes(), &[0; 32], &[]);
        if levels <= limit {
            prop_assert!(outcome.is_ok());
        } else {
            prop_assert_eq!(outcome.unwrap_err(), ScanError::TooDeep { max: limit });
        }
    }

    #[test]
    fn malformed_bytes_are_an_error_never_a_crash(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = Hasher::default().scan(&bytes, &[0; 32], &["id".into()]);
        let _ = extract(&Bytes::from(bytes), &ResultsPosition::parse(Some("data.items")));
    }

    #[test]
    fn a_mapping_maps_any_record(value in json()) {
        let def: MappingDef = serde_json::from_value(serde_json::json!({
            "mapping": {"title": "{{ name }} ({{ category.name }})", "copy": "tags", "n": "{{ count|default(0) }}", "deep.a.b": "x"},
            "passThrough": true,
        }))
        .unwrap();
        let mapping = Mapping::compile("m", &def).unwrap();
        let first = mapping.apply(&value);
        let again = mapping.apply(&value);
        prop_assert_eq!(format!("{first:?}"), format!("{again:?}"), "mapping is deterministic");
    }
}
