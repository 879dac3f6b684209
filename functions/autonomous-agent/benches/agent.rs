//! The graph runtime's overhead per step, and the decide step over a registry of 1,000 WPKs
//! (ranking plus verifying the chosen one's signature; no I/O). Target: decide ≤ 1 ms p99.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::time::Instant;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use naksha_agent::act::Adapters;
use naksha_agent::act::sim::{SimAdapter, SimResource, SimStore};
use naksha_agent::agent::Agent;
use naksha_agent::memory::Memory;
use naksha_agent::observe::Observers;
use naksha_agent::observe::telemetry::{AggregateQuery, ObserveError};
use naksha_agent::ports::{OutcomeHistory, RemediationModel};
use naksha_agent::spec::Graph;
use naksha_agent::state::{RunRequest, RunState};
use naksha_agent::wpk::{StoredWpk, parse, rank};
use naksha_contracts::TenantId;
use naksha_contracts::signing::{LocalKey, TrustedKeys};
use naksha_contracts::telemetry::AggregateRow;
use serde_json::json;

#[global_allocator]
static ALLOC: naksha_core::Allocator = naksha_core::Allocator;

struct NoAggregates;
impl AggregateQuery for NoAggregates {
    async fn by_source(&self, _: &TenantId, _: &str, _: i64) -> Result<Vec<AggregateRow>, ObserveError> {
        Ok(vec![])
    }
}

const STEPS: u32 = 50;

fn looping_graph() -> Graph {
    Graph::load(&format!(
        "version: 1\nstart: observe\nmax_steps: {STEPS}\non_error: record\nnodes:\n  observe: {{kind: observe}}\n  record: {{kind: record}}\nedges:\n  observe: [{{to: observe}}]\n  record: [{{to: $end}}]\n"
    ))
    .unwrap()
}

/// 1,000 signed WPKs: 100 ids × 10 versions; 10 ids handle `deployment_unhealthy`.
fn acme() -> TenantId {
    TenantId::from_record("acme").unwrap()
}

fn registry(key: &LocalKey) -> Vec<StoredWpk> {
    let mut all = Vec::with_capacity(1000);
    for i in 0..100 {
        for v in 1..=10 {
            let signal = if i % 10 == 0 { "deployment_unhealthy".to_owned() } else { format!("signal_{i}") };
            let doc = json!({
                "id": format!("wpk-{i:03}"), "version": v, "title": format!("Playbook {i} v{v}"),
                "match": {"signals": [signal, "other_signal"], "resources": ["deployment/*", "statefulset/*"]},
                "steps": [{"adapter": "sim", "action": "scale", "args": {"replicas": 1 + i % 5}}, {"adapter": "sim", "action": "restart"}],
                "verify": {"healthy": true},
                "limits": {"blast_radius": 1, "max_runs_per_hour": 3}
            });
            let wpk = parse(&doc.to_string(), false).unwrap();
            let bytes = StoredWpk::signing_bytes(&wpk, &acme(), "ada", "now");
            let signature = key.sign(&bytes).unwrap();
            all.push(StoredWpk::signed(&wpk, &bytes, &signature, "ada", "now"));
        }
    }
    all
}

fn decide(all: &[StoredWpk], keys: &TrustedKeys, history: &std::collections::BTreeMap<String, (u32, u32)>) -> String {
    let model = OutcomeHistory;
    let ranked =
        rank(all, "deployment_unhealthy", "deployment/payments", |id| model.score("deployment_unhealthy", id, history));
    let (_, chosen) = ranked[0];
    let signed = chosen.verify(keys, &acme()).unwrap();
    assert!(signed.wpk().matches("deployment_unhealthy", "deployment/payments"));
    signed.wpk().id.clone()
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let key = LocalKey::generate("k").unwrap();
    let keys: TrustedKeys = key.trusted();
    let acme = TenantId::from_record("acme").unwrap();

    // --- runtime overhead per step: a graph that observes STEPS times, then records ---
    let mem = Arc::new(Memory::default());
    let sim = SimResource::new("deployment", 3, true, "v1");
    rt.block_on(mem.put(&acme, "deployment/payments", &sim)).unwrap();
    let agent = Agent {
        store: Arc::clone(&mem),
        actuator: Adapters { sim: Some(SimAdapter { store: Arc::clone(&mem) }), k8s: None, receipts: Arc::clone(&mem) },
        observer: Observers::<NoAggregates> { telemetry: None, prometheus: None },
        model: OutcomeHistory,
        keys: naksha_agent::agent::AgentKeys { wpk: keys.clone(), approval: keys.clone() },
        graph: looping_graph(),
        default_adapter: "sim".into(),
    };
    let fresh = || {
        let req =
            RunRequest { signal: "x".into(), resource: "deployment/payments".into(), telemetry: None, dry_run: false };
        RunState::new("run".into(), acme.clone(), "u".into(), req, "now".into())
    };
    let mut group = c.benchmark_group("runtime");
    group.throughput(Throughput::Elements(u64::from(STEPS) + 1));
    group.bench_function("advance_51_steps_in_memory", |b| {
        b.iter_batched(fresh, |mut s| rt.block_on(agent.advance(&mut s)).unwrap(), BatchSize::SmallInput)
    });
    group.finish();
    mem.steps.lock().unwrap().clear();

    // --- decide over 1,000 WPKs ---
    let all = registry(&key);
    let history = std::collections::BTreeMap::from([("wpk-010".to_owned(), (5, 0)), ("wpk-020".to_owned(), (1, 3))]);
    assert_eq!(decide(&all, &keys, &history), "wpk-010");
    let mut group = c.benchmark_group("decide");
    group.bench_function("rank_1000_wpks_and_verify_chosen", |b| {
        b.iter(|| decide(std::hint::black_box(&all), &keys, &history))
    });
    group.bench_function("rank_1000_wpks_only", |b| {
        b.iter(|| rank(std::hint::black_box(&all), "deployment_unhealthy", "deployment/payments", |_| 0.5).len())
    });
    group.finish();

    // Percentiles from raw samples (criterion reports means and medians, not p99).
    let mut samples: Vec<f64> = (0..20_000)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(decide(&all, &keys, &history));
            t.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    let pct = |p: f64| samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)];
    eprintln!(
        "decide over 1000 WPKs (rank + verify chosen), 20000 samples: p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs",
        pct(0.50),
        pct(0.99),
        samples[samples.len() - 1]
    );
    let mut steps: Vec<f64> = (0..300)
        .map(|_| {
            let mut s = fresh();
            let t = Instant::now();
            rt.block_on(agent.advance(&mut s)).unwrap();
            t.elapsed().as_secs_f64() * 1e6 / (f64::from(STEPS) + 1.0)
        })
        .collect();
    steps.sort_by(f64::total_cmp);
    eprintln!(
        "graph runtime per step (node + checkpoint: state digest and save, in memory): p50 {:.1} µs, p99 {:.1} µs",
        steps[steps.len() / 2],
        steps[steps.len() * 99 / 100]
    );
}

criterion_group!(agent, benches);
criterion_main!(agent);
