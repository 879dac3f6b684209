//! The simulation mode's telemetry exporter: what a cluster's metrics agent, event exporter and
//! alert manager would send about each chaos-target resource of the simulated world, sent through
//! the real ingest path (validation, pseudonymisation, the stream, the consumer, the detector).
//! It runs on a schedule; it reads the world, never the chaos orchestrator: a fault is noticed
//! the way it would be in production, from what the world reports.

use std::collections::BTreeMap;
use std::future::Future;

use naksha_act::faults::report;
use naksha_act::sim::SimResource;
use naksha_contracts::{Principal, Role, TenantId};
use naksha_core::metrics::CounterStore;
use serde_json::{Value, json};

use crate::event::MAX_EVENTS;
use crate::ingest::{Ingest, IngestError};
use crate::ports::{RecordSink, SeriesIndex, StoreError};

/// The chaos targets of the simulated world, of every tenant.
pub trait SimTargets: Send + Sync {
    fn chaos_targets(&self) -> impl Future<Output = Result<Vec<(TenantId, String, SimResource)>, StoreError>> + Send;
}

impl SimTargets for naksha_core::sim::SimWorld {
    async fn chaos_targets(&self) -> Result<Vec<(TenantId, String, SimResource)>, StoreError> {
        naksha_core::sim::SimWorld::chaos_targets(self).await
    }
}

/// The events one resource's report becomes: one metric sample each, one event per warning.
pub fn events_for(resource: &str, r: &SimResource) -> Vec<Value> {
    let rep = report(r.replicas, r.restarts, &r.condition);
    let mut events: Vec<Value> = rep
        .metrics
        .iter()
        .map(|(name, value)| json!({"source": resource, "name": name, "value": value, "kind": "metric", "labels": {"origin": "sim"}}))
        .collect();
    for w in rep.warnings {
        let labels = match w.source {
            "alert" => json!({"alertname": w.reason, "severity": "warning", "origin": "sim"}),
            _ => json!({"type": "Warning", "reason": w.reason, "origin": "sim"}),
        };
        events.push(json!({"source": resource, "name": w.source, "value": 1, "kind": "event", "labels": labels, "message": w.message}));
    }
    events
}

/// What one export did.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Exported {
    pub tenants: usize,
    pub resources: usize,
    pub events: usize,
    pub warnings: usize,
    pub failed_tenants: usize,
}

/// Whether a resource is quiet: healthy, with no fault of a chaos run in it.
pub fn quiet(r: &SimResource) -> bool {
    r.healthy && r.condition.faults.is_empty()
}

/// Whether this tick is the first of its minute, for an exporter fired every `tick_s` seconds.
fn first_tick_of_minute(now_ms: i64, tick_s: u32) -> bool {
    let tick_ms = i64::from(tick_s.max(1)) * 1000;
    now_ms.div_euclid(60_000) != (now_ms - tick_ms).div_euclid(60_000)
}

/// Report every chaos target, one ingest request (or a few) per tenant. One tenant's failure
/// does not stop the others'. Like a metrics agent with a one-minute scrape interval beside an
/// event exporter that reports as things happen: a quiet resource is reported once a minute
/// (the first tick of each minute, when the exporter fires more often than every `tick_s` = 60),
/// a resource with a fault or a failing health on every tick, so a fault is noticed within a
/// tick and quiet ones do not flood the stream.
pub async fn export<T, S, C, I>(
    targets: &T,
    ingest: &Ingest<S, C, I>,
    now_ms: i64,
    tick_s: u32,
) -> Result<Exported, StoreError>
where
    T: SimTargets,
    S: RecordSink,
    C: CounterStore,
    I: SeriesIndex,
{
    let mut by_tenant: BTreeMap<TenantId, Vec<Value>> = BTreeMap::new();
    let mut out = Exported::default();
    let minute = first_tick_of_minute(now_ms, tick_s);
    for (tenant, resource, r) in targets.chaos_targets().await? {
        if !minute && quiet(&r) {
            continue;
        }
        out.resources += 1;
        by_tenant.entry(tenant).or_default().extend(events_for(&resource, &r));
    }
    out.tenants = by_tenant.len();
    for (tenant, events) in by_tenant {
        let exporter =
            Principal { tenant: tenant.clone(), subject: "sim-exporter".into(), roles: [Role::Operator].into() };
        for chunk in events.chunks(MAX_EVENTS) {
            let body = json!({"events": chunk}).to_string();
            // Each export starts a trace: a fault the world reports is followed to the run that heals it.
            let trace = naksha_contracts::trace::TraceContext::new_root().traceparent();
            match ingest.ingest_traced(&exporter, body.as_bytes(), now_ms, None, Some(&trace)).await {
                Ok(accepted) => {
                    out.events += accepted.accepted;
                    out.warnings += chunk.iter().filter(|e| e["kind"] == "event").count();
                }
                Err(e) => {
                    let e: IngestError = e;
                    tracing::warn!(tenant = %tenant, error = %e, "the simulated world's telemetry was not ingested");
                    out.failed_tenants += 1;
                    break;
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemorySink;
    use naksha_act::faults::FaultKind;
    use naksha_core::metrics::MemoryCounters;
    use naksha_core::privacy::PiiKey;
    use serde_json::Map;

    struct World(Vec<(TenantId, String, SimResource)>);
    impl SimTargets for World {
        async fn chaos_targets(&self) -> Result<Vec<(TenantId, String, SimResource)>, StoreError> {
            Ok(self.0.clone())
        }
    }

    #[tokio::test]
    async fn every_target_reports_its_metrics_and_a_fault_its_warning_through_ingest() {
        let t = TenantId::from_record("acme").unwrap();
        let mut calm = SimResource::new("deployment", 3, true, "v1");
        calm.condition.chaos_target = true;
        let broken = naksha_act::sim::inject(&calm, "run-1", FaultKind::CrashLoop, &Map::new(), "t0");
        let world = World(vec![(t.clone(), "deployment/a".into(), calm), (t.clone(), "deployment/b".into(), broken)]);
        let sink = MemorySink::default();
        let ingest = Ingest::new(sink, MemoryCounters::default(), PiiKey::from_secret(b"test-secret"));
        let out = export(&world, &ingest, 1_764_072_000_000, 60).await.unwrap();
        assert_eq!((out.tenants, out.resources, out.events, out.warnings, out.failed_tenants), (1, 2, 11, 1, 0));
        // Fired every 5 s: the first tick of a minute reports both, the others only the fault.
        let first = export(&world, &ingest, 1_764_072_002_000, 5).await.unwrap();
        let later = export(&world, &ingest, 1_764_072_007_000, 5).await.unwrap();
        assert_eq!((first.resources, later.resources, later.events, later.warnings), (2, 1, 6, 1));
        let events = events_for("deployment/b", &world.0[1].2);
        let warning = events.iter().find(|e| e["kind"] == "event").unwrap();
        assert_eq!(
            (warning["name"].as_str(), warning["labels"]["reason"].as_str()),
            (Some("k8s_event"), Some("BackOff"))
        );
        let meta = naksha_contracts::telemetry::SeriesMeta {
            source: "deployment/b".into(),
            name: "k8s_event".into(),
            labels: serde_json::from_value(warning["labels"].clone()).unwrap(),
        };
        assert_eq!(crate::warnings::signal_for(&meta).as_deref(), Some("crash_loop"));
    }
}
