//! The ingest path without I/O: parse, validate, anonymise and encode a 500-event batch.
//! Target: ≥ 500,000 events/s per core.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use naksha_core::privacy::PiiKey;
use naksha_insight_stream::ingest::prepare;
use serde_json::{Value, json};

/// A realistic mix: metrics with labels and identifiers, and log lines with addresses in text.
pub fn batch(n: usize) -> Vec<u8> {
    let events: Vec<Value> = (0..n)
        .map(|i| match i % 4 {
            0 | 1 => json!({
                "source": format!("web-{}", i % 32), "name": "http_latency_ms", "value": (i % 97) as f64 * 1.5,
                "ts": "2026-11-25T12:00:00Z", "labels": {"route": "/api/pay", "region": "eu-west-1", "status": "200"},
                "client_ip": format!("10.1.{}.{}", i % 250, (i * 7) % 250), "user_id": format!("u-{}", i % 1000)
            }),
            2 => json!({"source": format!("db-{}", i % 8), "cpu": 0.42, "mem_bytes": 1.5e9, "conns": 37, "ts": 1_795_600_000}),
            _ => json!({
                "source": "auth", "kind": "log", "name": "login_failed",
                "message": format!("failed login for user{}@example.com from 192.168.{}.{}", i, i % 250, i % 199),
                "session": format!("s-{i}")
            }),
        })
        .collect();
    json!({ "events": events }).to_string().into_bytes()
}

#[global_allocator]
static ALLOC: naksha_core::Allocator = naksha_core::Allocator;

fn ingest(c: &mut Criterion) {
    let key = PiiKey::from_secret(b"benchmark key of thirty-two bytes");
    let body = batch(500);
    // A fixed "now" an hour after the events, so no event is in the future.
    let now = 1_795_612_000_000;
    let mut group = c.benchmark_group("ingest");
    group.throughput(Throughput::Elements(500));
    group.bench_function("prepare_500_events", |b| {
        let acme = naksha_contracts::TenantId::from_record("acme").unwrap();
        b.iter(|| prepare(&key, &acme, std::hint::black_box(&body), now).unwrap())
    });
    // The exact batch the Python reference times (`py_ingest_bench.py --dump`), when `make
    // bench` passes it: the same bytes on both sides make the ratio fair.
    if let Some(path) = std::env::var_os("NAKSHA_PY_BATCH") {
        let reference = std::fs::read(&path).expect("NAKSHA_PY_BATCH names a readable file");
        group.bench_function("prepare_python_reference_batch", |b| {
            let acme = naksha_contracts::TenantId::from_record("acme").unwrap();
            b.iter(|| prepare(&key, &acme, std::hint::black_box(&reference), now).unwrap())
        });
        // Where the time goes: parsing and validating alone, the rest being pseudonymisation,
        // series ids and encoding.
        group.bench_function("parse_python_reference_batch", |b| {
            b.iter(|| naksha_insight_stream::event::parse_body(std::hint::black_box(&reference), now).unwrap())
        });
        eprintln!("python reference batch: {} bytes for 500 events", reference.len());
    }
    group.finish();
    eprintln!("ingest batch body: {} bytes for 500 events", body.len());
}

criterion_group!(benches, ingest);
criterion_main!(benches);
