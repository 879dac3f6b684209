//! The consumer's fold of 1,000 stream records into per-minute aggregates (in-memory stores,
//! so this is the domain's own cost), and how many DynamoDB writes 1,000 events cost.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use naksha_contracts::TenantId;
use naksha_core::metrics::MemoryCounters;
use naksha_insight_stream::consumer::Consumer;
use naksha_insight_stream::event::{Kind, StreamRecord};
use naksha_insight_stream::memory::{MemoryAggregates, MemoryDeadLetters};
use naksha_insight_stream::series::InRecord;

/// 1,000 records: `series` distinct series, spread over `minutes` minutes.
#[global_allocator]
static ALLOC: naksha_core::Allocator = naksha_core::Allocator;

fn records(series: usize, minutes: i64) -> (Vec<String>, Vec<Vec<u8>>) {
    let t0 = 1_795_600_000_000 / 60_000 * 60_000;
    let datas = (0..1000usize)
        .map(|i| {
            serde_json::to_vec(&StreamRecord {
                v: 1,
                id: format!("e{i}"),
                tenant: TenantId::from_record("acme").unwrap(),
                source: format!("host-{}", i % series),
                name: None,
                kind: Kind::Metric,
                ts: t0 + (i as i64 * 60_000 * minutes) / 1000,
                samples: vec![("latency_ms".into(), (i % 50) as f64)],
                labels: BTreeMap::from([("region".into(), "eu".into())]),
                attrs: Default::default(),
                rq: None,
                ix: None,
                tp: None,
            })
            .unwrap()
        })
        .collect();
    let seqs = (0..1000).map(|i| format!("4959033827149025660855969253836157109592157598913658{i:04}")).collect();
    (seqs, datas)
}

type Mem = Consumer<MemoryAggregates, MemoryDeadLetters, MemoryCounters>;

fn fresh() -> Mem {
    Consumer::new(MemoryAggregates::default(), MemoryDeadLetters::default(), MemoryCounters::default())
}

fn consumer(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let mut group = c.benchmark_group("consumer");
    group.throughput(Throughput::Elements(1000));
    for (label, series, minutes) in
        [("10_series_1_min", 10, 1), ("100_series_2_min", 100, 2), ("1000_series_1_min", 1000, 1)]
    {
        let (seqs, datas) = records(series, minutes);
        let batch: Vec<InRecord<'_>> = seqs.iter().zip(&datas).map(|(s, d)| InRecord { seq: s, data: d }).collect();
        group.bench_function(format!("fold_1000_records_{label}"), |b| {
            b.iter_batched(fresh, |c| rt.block_on(c.process("shardId-000000000000", &batch)), BatchSize::SmallInput)
        });
        // Writes are counted once, outside the timing.
        let c = fresh();
        let report = rt.block_on(c.process("shardId-000000000000", &batch));
        eprintln!(
            "writes per 1000 events ({label}): {} aggregate UpdateItem + {} counter UpdateItem; {} BatchGetItem",
            c.store().writes.load(Ordering::Relaxed),
            1,
            c.store().reads.load(Ordering::Relaxed),
        );
        assert_eq!(report.applied_samples, 1000);
    }
    // The same 1,000 events (10 series, 1 minute) as ingest packs them: one record per source,
    // 100 JSON lines each.
    let (seqs, datas) = records(10, 1);
    let mut packed: Vec<Vec<u8>> = vec![Vec::new(); 10];
    for (i, d) in datas.iter().enumerate() {
        let record = &mut packed[i % 10];
        if !record.is_empty() {
            record.push(b'\n');
        }
        record.extend_from_slice(d);
    }
    let batch: Vec<InRecord<'_>> = seqs.iter().zip(&packed).map(|(s, d)| InRecord { seq: s, data: d }).collect();
    group.bench_function("fold_1000_events_packed_in_10_records_10_series_1_min", |b| {
        b.iter_batched(fresh, |c| rt.block_on(c.process("shardId-000000000000", &batch)), BatchSize::SmallInput)
    });
    let report = rt.block_on(fresh().process("shardId-000000000000", &batch));
    assert_eq!((report.records, report.events, report.applied_samples), (10, 1000, 1000));
    group.finish();
}

criterion_group!(benches, consumer);
criterion_main!(benches);
