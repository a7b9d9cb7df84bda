//! Per-stage micro-benchmarks on a realistic record (≈260 bytes of JSON, 8 fields, nested objects),
//! each reporting records per second: `cargo bench --bench stages`.

use std::hint::black_box;

use bytes::Bytes;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use serde_json::json;
use syncline::config::MappingDef;
use syncline::diff::Differ;
use syncline::diff::contracts::ContractTable;
use syncline::diff::hash::Hasher;
use syncline::envelope::{ResultsPosition, extract};
use syncline::fixture::feed::Feed;
use syncline::mapping::Mapping;
use syncline::sources::{Chunk, RawRecord};
use syncline::store::StateDir;
use syncline::store::register::ObjectWrite;
use syncline::write::Outcome;

const PAGE: u64 = 1000;

fn page() -> Bytes {
    Bytes::from(Feed::new(PAGE, PAGE).page(1))
}

fn records() -> Vec<Bytes> {
    extract(&page(), &ResultsPosition::parse(Some("data.items"))).unwrap().records
}

fn envelope(c: &mut Criterion) {
    let body = page();
    let position = ResultsPosition::parse(Some("data.items"));
    let mut group = c.benchmark_group("envelope");
    group.throughput(Throughput::Elements(PAGE));
    group.bench_function("extract data.items from a 1000-record page", |b| b.iter(|| black_box(extract(&body, &position).unwrap())));
    group.finish();
}

fn hashing(c: &mut Criterion) {
    let records = records();
    let id = vec!["id".to_string()];
    let mut hasher = Hasher::default();
    let mut group = c.benchmark_group("hash");
    group.throughput(Throughput::Elements(PAGE));
    group.bench_function("canonical blake3 + id, raw bytes", |b| {
        b.iter(|| {
            for r in &records {
                black_box(hasher.scan(r, &[0; 32], &id).unwrap());
            }
        })
    });
    let values: Vec<serde_json::Value> = records.iter().map(|r| serde_json::from_slice(r).unwrap()).collect();
    group.bench_function("canonical blake3, parsed value", |b| {
        b.iter(|| {
            for v in &values {
                black_box(hasher.hash_value(v, &[0; 32]).expect("the bench's records are shallow"));
            }
        })
    });
    group.finish();
}

fn mapping(c: &mut Criterion) {
    let values: Vec<serde_json::Value> = records().iter().map(|r| serde_json::from_slice(r).unwrap()).collect();
    let paths: MappingDef = serde_json::from_value(json!({"mapping": {
        "id": "{{ id }}", "name": "{{ name }}", "status": "{{ status }}", "category": "{{ category.name }}",
        "price": "{{ price }}", "updated": "{{ updated_at }}", "email": "{{ owner.email }}", "city": "{{ owner.city }}"
    }}))
    .unwrap();
    // Concatenations of paths and literals through common filters: printed without the engine.
    let printed: MappingDef = serde_json::from_value(json!({"mapping": {
        "id": "{{ id }}-x", "name": "{{ name|upper }}", "status": "{{ status }} ({{ category.name }})", "category": "{{ category.name|lower }}",
        "price": "{{ price }} EUR", "updated": "{{ updated_at|date(\"Y-m-d\") }}", "email": "<{{ owner.email }}>", "city": "{{ owner.city|default('-') }}"
    }}))
    .unwrap();
    // The same templates, made to go through the engine (a tag the printer does not take).
    let mut engine_printed = printed.clone();
    for value in engine_printed.mapping.values_mut() {
        *value = serde_json::Value::from(format!("{}{{% if false %}}{{% endif %}}", value.as_str().unwrap()));
    }
    // Templates only the engine renders (operators, tags, other filters).
    let templates: MappingDef = serde_json::from_value(json!({"mapping": {
        "id": "{{ id ~ '-x' }}", "name": "{{ name|upper|slice(0, 8) }}", "status": "{% if status == 'sold' %}gone{% else %}{{ status }}{% endif %}",
        "category": "{{ category.name|lower|replace({'a': 'A'}) }}", "price": "{{ price * 1 }}", "updated": "{{ updated_at|date(\"Y-m-d\")|split('-')|first }}",
        "email": "{{ owner.email ?? 'none' }}", "city": "{{ owner.city|length > 3 ? owner.city : 'short' }}"
    }}))
    .unwrap();
    let mut group = c.benchmark_group("mapping");
    group.throughput(Throughput::Elements(PAGE));
    for (name, def) in [
        ("8 plain path fields (direct lookups)", &paths),
        ("8 printed fields (paths, literals, common filters)", &printed),
        ("the same 8 through the engine", &engine_printed),
        ("8 template fields (through the engine)", &templates),
    ] {
        let m = Mapping::compile("bench", def).unwrap();
        group.bench_function(name, |b| {
            b.iter(|| {
                for v in &values {
                    black_box(m.apply(v).unwrap());
                }
            })
        });
    }
    group.finish();
}

fn diff(c: &mut Criterion) {
    const CONTRACTS: u64 = 100_000;
    // A table holding every record of the feed, as after a first run.
    let feed = Feed::new(CONTRACTS, PAGE);
    let mut first = Differ::new(ContractTable::new(), "bench", "id", [0; 32], false);
    for page in 1..=CONTRACTS / PAGE {
        let body = Bytes::from(feed.page(page));
        let chunk = Chunk::new(
            extract(&body, &ResultsPosition::parse(Some("data.items"))).unwrap().records.into_iter().map(RawRecord::Json).collect(),
            String::new(),
        );
        let acks = first.diff_chunk(chunk, Vec::new()).into_iter().map(|w| w.with(Outcome::Created)).collect();
        first.apply(acks);
    }
    let saved = first.table().to_record_batch().unwrap();
    let unchanged = Chunk::new(records().into_iter().map(RawRecord::Json).collect(), String::new());
    let mut group = c.benchmark_group("diff");
    group.throughput(Throughput::Elements(PAGE));
    group.bench_function("hash + lookup of an unchanged page against 100k contracts", |b| {
        b.iter_batched(
            || {
                (
                    Differ::new(ContractTable::from_batches(std::slice::from_ref(&saved)).unwrap(), "bench", "id", [0; 32], false),
                    unchanged.clone(),
                )
            },
            |(mut differ, chunk)| black_box(differ.diff_chunk(chunk, Vec::new())),
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

fn register(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let state = StateDir::open(dir.path()).unwrap();
    let mut store = state.register().unwrap();
    let objects: Vec<(String, String)> =
        records().iter().enumerate().map(|(i, r)| (i.to_string(), String::from_utf8(r.to_vec()).unwrap())).collect();
    let mut group = c.benchmark_group("register");
    group.throughput(Throughput::Elements(PAGE));
    group.sample_size(20);
    group.bench_function("create 1000 new objects in id order (one transaction)", |b| {
        b.iter_batched(
            || {
                let mut batch: Vec<_> = objects.iter().map(|(o, j)| (uuid::Uuid::new_v4(), o.clone(), j.clone())).collect();
                batch.sort_unstable_by_key(|(id, _, _)| *id);
                batch
            },
            |batch| {
                let mut tx = store.batch("job", 1_700_000_000_000).unwrap();
                let collection = tx.collection("r", "s", "bench", "src").unwrap();
                for (id, origin, json) in &batch {
                    tx.create(&ObjectWrite { id: *id, collection, origin_id: origin, object: json }).unwrap();
                }
                tx.commit().unwrap();
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(stages, envelope, hashing, mapping, diff, register);
criterion_main!(stages);
