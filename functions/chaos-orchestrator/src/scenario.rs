//! `POST /sim/scenarios/{name}` (simulation mode): seed the caller's tenant with a small world
//! from `scenarios.yaml` — chaos-target deployments, a quarter of an hour of their telemetry through the real
//! ingest path (so the detector has history), and the signed WPKs that heal each built-in
//! spec's fault, `auto` ones with a standing approval in the seeding admin's name.
//!
//! Seeding is safe to repeat: deployments are reset to their scenario state, history is sent only
//! for deployments that did not exist, WPK versions that exist are kept as they are (versions are
//! immutable) and a standing approval is added only where none is.

use std::collections::BTreeMap;

use chrono::{DateTime, DurationRound, SecondsFormat, TimeDelta, Utc};
use naksha_act::faults::report;
use naksha_act::sim::{SimResource, SimStore};
use naksha_agent::ports::WpkStore;
use naksha_contracts::approvals::StandingApproval;
use naksha_contracts::wpk::{Mode, StoredWpk, parse};
use naksha_contracts::{Principal, Role, TenantId};
use naksha_core::metrics::CounterStore;
use naksha_core::signing::{Sign, TrustedKeys, seal};
use naksha_insight_stream::event::MAX_EVENTS;
use naksha_insight_stream::ingest::Ingest;
use naksha_insight_stream::ports::{RecordSink, SeriesIndex};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The scenarios, as shipped.
pub const SCENARIOS_YAML: &str = include_str!("../scenarios.yaml");

/// The scenario the README and the demo use.
pub const DEFAULT: &str = "default";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub description: String,
    /// Each `{name, ...}` with the body `PUT /sim/resources/{name}` takes.
    pub resources: Vec<Value>,
    pub history_minutes: u32,
    /// WPK documents, as `POST /wpk` takes them.
    pub wpks: Vec<Value>,
}

#[derive(Debug, Deserialize)]
struct Catalog {
    version: u32,
    scenarios: BTreeMap<String, Scenario>,
}

/// Every scenario by name.
pub fn scenarios() -> Result<BTreeMap<String, Scenario>, String> {
    let c: Catalog = serde_yaml::from_str(SCENARIOS_YAML).map_err(|e| format!("scenarios.yaml: {e}"))?;
    if c.version != 1 {
        return Err(format!("scenarios.yaml: version {} is not 1", c.version));
    }
    if !c.scenarios.contains_key(DEFAULT) {
        return Err("scenarios.yaml: no default scenario".into());
    }
    Ok(c.scenarios)
}

/// A resource of a scenario: its name and state.
pub fn resources(s: &Scenario) -> Result<Vec<(String, SimResource)>, String> {
    s.resources
        .iter()
        .map(|r| {
            let mut body = r.as_object().cloned().ok_or("a resource is a mapping")?;
            let name =
                body.remove("name").and_then(|n| n.as_str().map(str::to_owned)).ok_or("a resource needs a name")?;
            let state = SimResource::parse(&Value::Object(body)).map_err(|e| format!("{name}: {e:?}"))?;
            Ok((name, state))
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SeedError {
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Broken(String),
}

/// What seeding did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Seeded {
    pub scenario: String,
    pub resources: Vec<SeededResource>,
    pub history_events: usize,
    pub wpks: Vec<SeededWpk>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SeededResource {
    pub name: String,
    pub chaos_target: bool,
    /// `created`, or `reset` (it existed).
    pub outcome: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SeededWpk {
    pub id: String,
    pub version: u32,
    pub mode: Mode,
    /// `registered`, or `kept` (that version existed).
    pub outcome: &'static str,
    /// Who stands behind its unattended runs (auto only).
    pub standing_approval_by: Option<String>,
}

/// What seeding uses.
#[derive(Debug)]
pub struct Seeder<'a, W, S, K, A, R, C, I> {
    pub sim: &'a W,
    pub wpks: &'a S,
    pub wpk_signer: &'a K,
    pub wpk_keys: &'a TrustedKeys,
    pub approval_signer: &'a A,
    pub ingest: &'a Ingest<R, C, I>,
}

fn unavailable(e: impl std::fmt::Display) -> SeedError {
    SeedError::Unavailable(e.to_string())
}

/// A deterministic wobble of a healthy value, so the detector learns a spread and not a line.
fn wobble(base: f64, i: u32, phase: f64) -> f64 {
    if base == 0.0 || base == 1.0 {
        return base;
    }
    (base * (1.0 + 0.04 * (f64::from(i) * 0.7 + phase).sin())).max(0.0)
}

/// The healthy telemetry of `resource` for the `minutes` before `now`, as its exporter would
/// have sent it (one sample per metric and minute).
pub fn history(resource: &str, r: &SimResource, minutes: u32, now: DateTime<Utc>) -> Vec<Value> {
    let base = report(r.replicas, 0, &naksha_act::faults::Condition::default());
    let start = now.duration_trunc(TimeDelta::minutes(1)).unwrap_or(now) - TimeDelta::minutes(i64::from(minutes));
    let phase = resource.bytes().map(f64::from).sum::<f64>();
    let mut out = Vec::new();
    for i in 0..minutes {
        let ts = start + TimeDelta::minutes(i64::from(i)) + TimeDelta::seconds(30);
        for (k, (name, value)) in base.metrics.iter().enumerate() {
            out.push(json!({
                "source": resource, "name": name, "value": wobble(*value, i, phase + k as f64),
                "kind": "metric", "labels": {"origin": "sim"},
                "ts": ts.to_rfc3339_opts(SecondsFormat::Secs, true),
            }));
        }
    }
    out
}

/// Seed `tenant` with scenario `s` named `name`, on behalf of `by` (the admin).
pub async fn seed<W, S, K, A, R, C, I>(
    p: &Seeder<'_, W, S, K, A, R, C, I>,
    tenant: &TenantId,
    by: &str,
    name: &str,
    s: &Scenario,
    now: DateTime<Utc>,
) -> Result<Seeded, SeedError>
where
    W: SimStore,
    S: WpkStore,
    K: Sign,
    A: Sign,
    R: RecordSink,
    C: CounterStore,
    I: SeriesIndex,
{
    let mut out = Seeded { scenario: name.to_owned(), ..Default::default() };
    let mut history_of = Vec::new();
    for (resource, state) in resources(s).map_err(SeedError::Broken)? {
        let existed = p.sim.get(tenant, &resource).await.map_err(unavailable)?.is_some();
        p.sim.put(tenant, &resource, &state).await.map_err(unavailable)?;
        if !existed {
            history_of.push((resource.clone(), state.clone()));
        }
        out.resources.push(SeededResource {
            name: resource,
            chaos_target: state.condition.chaos_target,
            outcome: if existed { "reset" } else { "created" },
        });
    }
    let mut events: Vec<Value> = history_of.iter().flat_map(|(n, r)| history(n, r, s.history_minutes, now)).collect();
    events.sort_by(|a, b| a["ts"].as_str().cmp(&b["ts"].as_str()));
    let exporter = Principal { tenant: tenant.clone(), subject: "sim-exporter".into(), roles: [Role::Operator].into() };
    for chunk in events.chunks(MAX_EVENTS) {
        let body = json!({"events": chunk}).to_string();
        let accepted =
            p.ingest.ingest(&exporter, body.as_bytes(), now.timestamp_millis()).await.map_err(unavailable)?;
        out.history_events += accepted.accepted;
    }
    let author = format!("scenario:{name}");
    let at = now.to_rfc3339_opts(SecondsFormat::Millis, true);
    for doc in &s.wpks {
        let w = parse(&doc.to_string(), false).map_err(|e| SeedError::Broken(format!("a scenario WPK: {e:?}")))?;
        let (stored, outcome) = match p.wpks.get_wpk(tenant, &w.id, w.version).await.map_err(unavailable)? {
            Some(existing) => (existing, "kept"),
            None => {
                let bytes = StoredWpk::signing_bytes(&w, tenant, &author, &at);
                let signature = p.wpk_signer.sign(&bytes).await.map_err(unavailable)?;
                p.wpk_keys.verify(&bytes, &signature).map_err(unavailable)?;
                let stored = StoredWpk::signed(&w, &bytes, &signature, &author, &at);
                p.wpks.put_wpk(tenant, &stored).await.map_err(unavailable)?;
                (stored, "registered")
            }
        };
        let signed = stored.verify(p.wpk_keys, tenant).map_err(unavailable)?;
        let mut standing_by = None;
        if w.safety.mode == Mode::Auto {
            match &stored.standing_approval {
                Some(existing) => {
                    standing_by = serde_json::from_str::<Value>(&existing.signed)
                        .ok()
                        .and_then(|v| v["payload"]["approver"].as_str().map(str::to_owned));
                }
                None => {
                    let standing = StandingApproval {
                        wpk_id: w.id.clone(),
                        wpk_version: w.version,
                        wpk_sha256: signed.sha256().to_owned(),
                        approver: by.to_owned(),
                        wpk_author: author.clone(),
                        justification: format!(
                            "granted by {by} when seeding the simulation scenario {name} (POST /sim/scenarios/{name})"
                        ),
                        at: at.clone(),
                    };
                    let sealed = seal(p.approval_signer, StandingApproval::PURPOSE, tenant, &standing)
                        .await
                        .map_err(unavailable)?;
                    p.wpks.set_standing_approval(tenant, &w.id, w.version, &sealed).await.map_err(unavailable)?;
                    standing_by = Some(by.to_owned());
                }
            }
        }
        out.wpks.push(SeededWpk {
            id: w.id.clone(),
            version: w.version,
            mode: w.safety.mode,
            outcome,
            standing_approval_by: standing_by,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use naksha_agent::memory::Memory;
    use naksha_contracts::signing::LocalKey;
    use naksha_core::metrics::MemoryCounters;
    use naksha_core::privacy::PiiKey;
    use naksha_insight_stream::memory::MemorySink;

    #[test]
    fn the_scenarios_load_and_heal_every_builtin_fault_of_a_deployment() {
        let all = scenarios().unwrap();
        let default = &all[DEFAULT];
        let targets: Vec<_> =
            resources(default).unwrap().into_iter().filter(|(_, r)| r.condition.chaos_target).collect();
        assert_eq!(targets.len(), 4);
        let signals: Vec<String> = default
            .wpks
            .iter()
            .flat_map(|w| w["match"]["signals"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_owned()))
            .collect();
        for want in ["deployment_unhealthy", "crash_loop", "cpu_saturation", "latency_high", "dependency_throttled"] {
            assert!(signals.iter().any(|s| s == want), "{want}");
        }
        assert!(all["bare"].wpks.is_empty());
    }

    #[tokio::test]
    async fn seeding_signs_wpks_approves_auto_ones_in_the_admins_name_sends_history_once_and_repeats_safely() {
        let t = TenantId::from_record("acme").unwrap();
        let store = Memory::default();
        let wpk_key = LocalKey::generate("wpk").unwrap();
        let approval_key = LocalKey::generate("approval").unwrap();
        let keys = TrustedKeys::from_public_keys([(wpk_key.id().to_owned(), wpk_key.public_key_der())]);
        let ingest = Ingest::new(MemorySink::default(), MemoryCounters::default(), PiiKey::from_secret(b"k"));
        let seeder = Seeder {
            sim: &store,
            wpks: &store,
            wpk_signer: &wpk_key,
            wpk_keys: &keys,
            approval_signer: &approval_key,
            ingest: &ingest,
        };
        let s = &scenarios().unwrap()[DEFAULT];
        let now = Utc::now();
        let first = seed(&seeder, &t, "ada", DEFAULT, s, now).await.unwrap();
        assert_eq!(first.history_events, 5 * 15 * 5, "five deployments, a quarter of an hour, five metrics");
        assert!(first.resources.iter().all(|r| r.outcome == "created"));
        let auto: Vec<_> = first.wpks.iter().filter(|w| w.mode == Mode::Auto).collect();
        assert_eq!(auto.len(), 4);
        assert!(auto.iter().all(|w| w.standing_approval_by.as_deref() == Some("ada")));
        let manual = first.wpks.iter().find(|w| w.id == "heal-cpu-saturation").unwrap();
        assert_eq!((manual.mode, manual.standing_approval_by.as_deref()), (Mode::Manual, None));
        // Every stored WPK verifies for this tenant, and the approval names this version.
        let stored = store.get_wpk(&t, "heal-kill-pod", 1).await.unwrap().unwrap();
        let signed = stored.verify(&keys, &t).unwrap();
        assert_eq!(signed.registered_by(), "scenario:default");
        let sealed = stored.standing_approval.unwrap();
        let approval_keys =
            TrustedKeys::from_public_keys([(approval_key.id().to_owned(), approval_key.public_key_der())]);
        let a: StandingApproval =
            sealed.open::<StandingApproval>(StandingApproval::PURPOSE, &t, &approval_keys).unwrap().into_inner();
        assert_eq!((a.approver.as_str(), a.wpk_sha256.as_str()), ("ada", signed.sha256()));
        // A broken deployment is reset; nothing is signed or sent twice.
        let mut broken = store.get(&t, "deployment/payments").await.unwrap().unwrap();
        broken.healthy = false;
        store.put(&t, "deployment/payments", &broken).await.unwrap();
        let again = seed(&seeder, &t, "bob", DEFAULT, s, now).await.unwrap();
        assert_eq!(again.history_events, 0);
        assert!(again.resources.iter().all(|r| r.outcome == "reset"));
        assert!(again.wpks.iter().all(|w| w.outcome == "kept"));
        assert!(
            again
                .wpks
                .iter()
                .filter(|w| w.mode == Mode::Auto)
                .all(|w| w.standing_approval_by.as_deref() == Some("ada")),
            "the first approval stands"
        );
        assert!(store.get(&t, "deployment/payments").await.unwrap().unwrap().healthy);
    }

    #[test]
    fn history_is_an_hour_of_healthy_minutes_before_now_with_a_spread() {
        let r = SimResource::new("deployment", 3, true, "v1");
        let now = Utc::now();
        let h = history("deployment/a", &r, 60, now);
        assert_eq!(h.len(), 300);
        let latency: Vec<f64> =
            h.iter().filter(|e| e["name"] == "latency_ms").map(|e| e["value"].as_f64().unwrap()).collect();
        let (min, max) = latency.iter().fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(*v), b.max(*v)));
        assert!(max > min && max < 1.1 * min.max(1.0) * 1.1, "{min}..{max}");
        assert!(h.iter().filter(|e| e["name"] == "ready_ratio").all(|e| e["value"] == 1.0));
        let last = h.last().unwrap()["ts"].as_str().unwrap().to_owned();
        assert!(last < now.to_rfc3339_opts(SecondsFormat::Secs, true));
    }
}
