//! What detection costs the consumer: nanoseconds per scored point on a warm state, the
//! per-batch work for a 1,000-series tenant (load each series' stored state, score its new
//! minute, store it again), and the bytes of state per series (in memory and as stored).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use naksha_detector::detector::{Params, State};

/// Deterministic noise in [-1, 1].
fn noise(i: usize) -> f64 {
    let x = (i as u64).wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    ((x >> 33) as f64 / (1u64 << 31) as f64) * 2.0 - 1.0
}

/// A realistic series: daily cycle, noise, a spike now and then; one value per minute.
fn value(series: usize, i: usize) -> f64 {
    let day = (i as f64 / 1440.0) * std::f64::consts::TAU;
    200.0
        + 50.0 * (day + series as f64).sin()
        + 8.0 * noise(i * 31 + series)
        + if i.is_multiple_of(997) { 120.0 } else { 0.0 }
}

/// A state that has seen a week of minutes.
fn warm(p: &Params, series: usize) -> (State, usize) {
    let mut s = State::default();
    let n = 7 * 1440;
    for i in 0..n {
        s.update(p, i as i64 * 60, value(series, i));
    }
    (s, n)
}

fn detector(c: &mut Criterion) {
    let p = Params::default();
    let mut group = c.benchmark_group("detector");
    group.throughput(Throughput::Elements(1));
    let (state, n) = warm(&p, 0);
    group.bench_function("score_one_point_warm_state", |b| {
        let mut s = state.clone();
        let mut i = n;
        b.iter(|| {
            i += 1;
            s.update(&p, i as i64 * 60, value(0, i))
        })
    });
    // The consumer's work per batch: each series' state is read once (JSON), its new minute
    // scored, and written once.
    let stored: Vec<String> = (0..1000).map(|k| serde_json::to_string(&warm(&p, k).0).unwrap()).collect();
    group.throughput(Throughput::Elements(1000));
    group.bench_function("batch_1000_series_load_score_store", |b| {
        b.iter_batched(
            || stored.clone(),
            |stored| {
                stored
                    .iter()
                    .enumerate()
                    .map(|(k, json)| {
                        let mut s: State = serde_json::from_str(json).unwrap();
                        s.update(&p, (n as i64 + 1) * 60, value(k, n + 1));
                        serde_json::to_string(&s).unwrap().len()
                    })
                    .sum::<usize>()
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
    let json = stored.iter().map(String::len).sum::<usize>() / stored.len();
    let max_json = stored.iter().map(String::len).max().unwrap_or(0);
    let mem = (0..10).map(|k| warm(&p, k).0.size_bytes()).max().unwrap_or(0);
    eprintln!(
        "detector state per series: {mem} bytes in memory (max of 10), {json} bytes stored as JSON (mean of 1000; max {max_json})"
    );
}

criterion_group!(benches, detector);
criterion_main!(benches);
