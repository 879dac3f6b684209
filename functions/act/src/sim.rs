//! The `sim` adapter: a simulated cluster — the simulation mode's world (kept in DynamoDB by the
//! agent, in its local store by an edge node).
//!
//! Resources such as `deployment/payments` have replicas, health and a version. `restart` makes an
//! unhealthy deployment healthy and counts the restart; `scale` sets replicas; `rollback` returns
//! to the previous (or a named) version; `failover` sends traffic to a secondary dependency. Each
//! change is written together with its receipt in one transaction, so an action is applied at most
//! once per idempotency key.
//!
//! A resource's [`Condition`] holds what chaos faults did to it ([`inject`], [`revert`]); once
//! disturbed, its health follows from the condition, so only the action that addresses a fault
//! heals it (a restart does not fix a bad version; scaling out cools a CPU spike).

use std::future::Future;

use naksha_contracts::TenantId;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::ActError;
use crate::faults::{BASE_CPU_PCT, BASE_LATENCY_MS, Condition, Fault, FaultKind, param};

fn is_plain(c: &Condition) -> bool {
    *c == Condition::default()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimResource {
    pub kind: String,
    pub replicas: u32,
    pub healthy: bool,
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_version: Option<String>,
    #[serde(default)]
    pub restarts: u32,
    #[serde(default, skip_serializing_if = "is_plain")]
    pub condition: Condition,
}

impl SimResource {
    /// The body of `PUT /sim/resources/{resource}`: `{"kind","replicas","healthy","version"}`.
    pub fn parse(body: &Value) -> Result<Self, Vec<naksha_contracts::input::FieldError>> {
        use naksha_contracts::input::FieldError;
        let mut errors = Vec::new();
        let Some(o) = body.as_object() else {
            return Err(vec![FieldError::new("", "expected {\"kind\", \"replicas\", \"healthy\", \"version\"}")]);
        };
        for k in o.keys().filter(|k| {
            !["kind", "replicas", "healthy", "version", "previous_version", "chaos_target"].contains(&k.as_str())
        }) {
            errors.push(FieldError::new(format!("/{k}"), "unknown field"));
        }
        if !o.get("kind").and_then(Value::as_str).is_some_and(|k| !k.is_empty() && k.len() <= 64) {
            errors.push(FieldError::new("/kind", "required: e.g. deployment"));
        }
        if o.get("replicas").and_then(Value::as_u64).is_none_or(|r| r > 1000) {
            errors.push(FieldError::new("/replicas", "required: a whole number from 0 to 1000"));
        }
        if !o.get("healthy").is_some_and(Value::is_boolean) {
            errors.push(FieldError::new("/healthy", "required: true or false"));
        }
        if !o.get("version").and_then(Value::as_str).is_some_and(|v| !v.is_empty() && v.len() <= 128) {
            errors.push(FieldError::new("/version", "required: e.g. v1.4.2"));
        }
        if o.get("chaos_target").is_some_and(|v| !v.is_boolean()) {
            errors.push(FieldError::new("/chaos_target", "must be true or false"));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let mut plain = o.clone();
        let chaos_target = plain.remove("chaos_target").and_then(|v| v.as_bool()).unwrap_or(false);
        let mut r: SimResource =
            serde_json::from_value(Value::Object(plain)).map_err(|e| vec![FieldError::new("", e.to_string())])?;
        r.condition.chaos_target = chaos_target;
        Ok(r)
    }

    /// A plain resource: `kind`, replicas, health and version, nothing disturbed.
    pub fn new(kind: &str, replicas: u32, healthy: bool, version: &str) -> Self {
        Self {
            kind: kind.to_owned(),
            replicas,
            healthy,
            version: version.to_owned(),
            previous_version: None,
            restarts: 0,
            condition: Condition::default(),
        }
    }
}

/// Inject a fault for chaos run `run_id` (again: nothing changes).
pub fn inject(r: &SimResource, run_id: &str, kind: FaultKind, params: &Map<String, Value>, at: &str) -> SimResource {
    if r.condition.faults.contains_key(run_id) {
        return r.clone();
    }
    let mut next = r.clone();
    let c = &mut next.condition;
    let mut fault = Fault { kind, injected_at: at.to_owned(), version_before: None, previous_version_before: None };
    match kind {
        FaultKind::KillPod => {
            let pods = u32::try_from(param(params, "pods", 1)).unwrap_or(u32::MAX);
            c.ready = Some(c.ready.unwrap_or(r.replicas).saturating_sub(pods.max(1)));
        }
        FaultKind::CrashLoop => {
            fault.version_before = Some(r.version.clone());
            fault.previous_version_before = r.previous_version.clone();
            next.previous_version = Some(r.version.clone());
            next.version = format!("{}-bad", r.version);
            next.condition.crash_looping = true;
            next.condition.ready = Some(0);
        }
        FaultKind::CpuSpike => c.cpu_pct = u32::try_from(param(params, "cpu_pct", 95)).unwrap_or(100).min(100),
        FaultKind::Latency => c.latency_ms = u32::try_from(param(params, "latency_ms", 900)).unwrap_or(u32::MAX),
        FaultKind::DependencyThrottle => {
            c.throttled = true;
            c.error_permille = if c.failover {
                0
            } else {
                u32::try_from(param(params, "error_permille", 250)).unwrap_or(1000).min(1000)
            };
        }
    }
    next.condition.faults.insert(run_id.to_owned(), fault);
    next.healthy = next.condition.healthy(next.replicas);
    next
}

/// Undo what is left of chaos run `run_id`'s fault (a rollback; nothing recorded: no change).
pub fn revert(r: &SimResource, run_id: &str) -> SimResource {
    let Some(fault) = r.condition.faults.get(run_id).cloned() else { return r.clone() };
    let mut next = r.clone();
    next.condition.faults.remove(run_id);
    let c = &mut next.condition;
    match fault.kind {
        FaultKind::KillPod => c.ready = None,
        FaultKind::CrashLoop => {
            if c.crash_looping {
                c.crash_looping = false;
                c.ready = None;
                if let Some(v) = fault.version_before {
                    next.version = v;
                    next.previous_version = fault.previous_version_before;
                }
            }
        }
        FaultKind::CpuSpike => c.cpu_pct = BASE_CPU_PCT,
        FaultKind::Latency => c.latency_ms = BASE_LATENCY_MS,
        FaultKind::DependencyThrottle => {
            c.throttled = false;
            c.error_permille = 0;
            c.failover = false;
        }
    }
    next.healthy = next.condition.healthy(next.replicas);
    next
}

/// The simulation's rules: the resource after `action`.
pub fn apply(action: &str, args: &Map<String, Value>, r: &SimResource) -> Result<SimResource, ActError> {
    apply_rules(action, args, r).map_err(ActError::Refused)
}

fn apply_rules(action: &str, args: &Map<String, Value>, r: &SimResource) -> Result<SimResource, String> {
    let mut next = r.clone();
    let disturbed = r.condition.is_disturbed();
    match action {
        "restart" => {
            next.restarts += 1;
            next.healthy = true;
            // New pods: the killed ones come back, a leak is cleared; a bad version stays bad.
            if !next.condition.crash_looping {
                next.condition.ready = None;
            }
            next.condition.latency_ms = next.condition.latency_ms.min(BASE_LATENCY_MS);
        }
        "scale" => {
            let n = args.get("replicas").and_then(Value::as_u64).ok_or("scale needs replicas")?;
            let n = u32::try_from(n).map_err(|_| "replicas out of range")?;
            // The same load over more pods.
            if n > 0 && r.replicas > 0 {
                let cpu = u64::from(r.condition.cpu_pct) * u64::from(r.replicas) / u64::from(n);
                next.condition.cpu_pct = u32::try_from(cpu.min(100)).unwrap_or(100);
            }
            if !next.condition.crash_looping {
                next.condition.ready = None;
            }
            next.replicas = n;
        }
        "rollback" => {
            let to = match args.get("to_version").and_then(Value::as_str) {
                Some(v) => v.to_owned(),
                None => r.previous_version.clone().ok_or("no previous version to roll back to")?,
            };
            next.previous_version = Some(r.version.clone());
            next.version = to;
            if next.condition.crash_looping {
                next.condition.crash_looping = false;
                next.condition.ready = None;
            }
        }
        "failover" => {
            next.condition.failover = true;
            if next.condition.throttled {
                next.condition.error_permille = 0;
            }
        }
        other => return Err(format!("the sim adapter cannot {other}")),
    }
    if disturbed {
        // A disturbed resource is as healthy as its condition says, whatever was done to it.
        next.healthy = next.condition.healthy(next.replicas);
    }
    Ok(next)
}

/// The planned change of a dry-run: the fields that would change, as `[before, after]`.
pub fn change(before: &SimResource, after: &SimResource) -> Value {
    let (b, a) = (json!(before), json!(after));
    let mut out = Map::new();
    if let (Some(b), Some(a)) = (b.as_object(), a.as_object()) {
        for (k, av) in a {
            let bv = b.get(k).cloned().unwrap_or(Value::Null);
            if &bv != av {
                out.insert(k.clone(), json!([bv, av]));
            }
        }
    }
    Value::Object(out)
}

/// Where the simulated cluster lives.
pub trait SimStore: Send + Sync {
    fn get(
        &self,
        tenant: &TenantId,
        resource: &str,
    ) -> impl Future<Output = Result<Option<SimResource>, ActError>> + Send;
    fn put(
        &self,
        tenant: &TenantId,
        resource: &str,
        r: &SimResource,
    ) -> impl Future<Output = Result<(), ActError>> + Send;
    /// Replace `before` with `after` and store `receipt` under `key`, atomically; when `key`
    /// already has a receipt, change nothing and return it (`true` = reused).
    fn apply(
        &self,
        tenant: &TenantId,
        resource: &str,
        before: &SimResource,
        after: &SimResource,
        key: &str,
        receipt: &Value,
    ) -> impl Future<Output = Result<(Value, bool), ActError>> + Send;
}

/// A shared store is a store (tests hold one handle to look at the world).
impl<T: SimStore> SimStore for std::sync::Arc<T> {
    async fn get(&self, t: &TenantId, r: &str) -> Result<Option<SimResource>, ActError> {
        (**self).get(t, r).await
    }
    async fn put(&self, t: &TenantId, r: &str, s: &SimResource) -> Result<(), ActError> {
        (**self).put(t, r, s).await
    }
    async fn apply(
        &self,
        t: &TenantId,
        r: &str,
        b: &SimResource,
        a: &SimResource,
        k: &str,
        rc: &Value,
    ) -> Result<(Value, bool), ActError> {
        (**self).apply(t, r, b, a, k, rc).await
    }
}

#[derive(Debug, Clone)]
pub struct SimAdapter<S> {
    pub store: S,
}

impl<S: SimStore> SimAdapter<S> {
    pub async fn describe(&self, tenant: &TenantId, target: &str) -> Result<Option<Value>, ActError> {
        Ok(self.store.get(tenant, target).await?.map(|r| json!(r)))
    }

    pub async fn dry_run(
        &self,
        tenant: &TenantId,
        action: &str,
        target: &str,
        args: &Map<String, Value>,
    ) -> Result<Value, ActError> {
        let before = self
            .store
            .get(tenant, target)
            .await?
            .ok_or_else(|| ActError::Refused(format!("{target} does not exist")))?;
        let after = apply(action, args, &before)?;
        Ok(change(&before, &after))
    }

    pub async fn execute(
        &self,
        tenant: &TenantId,
        action: &str,
        target: &str,
        args: &Map<String, Value>,
        key: &str,
    ) -> Result<(Value, bool), ActError> {
        let before = self
            .store
            .get(tenant, target)
            .await?
            .ok_or_else(|| ActError::Refused(format!("{target} does not exist")))?;
        let after = apply(action, args, &before)?;
        let receipt = json!({"action": action, "target": target, "change": change(&before, &after), "after": after});
        self.store.apply(tenant, target, &before, &after, key, &receipt).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(healthy: bool) -> SimResource {
        SimResource { previous_version: Some("v1".into()), ..SimResource::new("deployment", 3, healthy, "v2") }
    }

    #[test]
    fn restart_heals_and_counts() {
        let after = apply("restart", &Map::new(), &deployment(false)).unwrap();
        assert!(after.healthy);
        assert_eq!(after.restarts, 1);
        assert_eq!(change(&deployment(false), &after), json!({"healthy": [false, true], "restarts": [0, 1]}));
    }

    #[test]
    fn scale_and_rollback() {
        let mut args = Map::new();
        args.insert("replicas".into(), json!(5));
        assert_eq!(apply("scale", &args, &deployment(true)).unwrap().replicas, 5);
        let rolled = apply("rollback", &Map::new(), &deployment(true)).unwrap();
        assert_eq!((rolled.version.as_str(), rolled.previous_version.as_deref()), ("v1", Some("v2")));
        let mut none = deployment(true);
        none.previous_version = None;
        assert!(apply("rollback", &Map::new(), &none).is_err());
        assert!(apply("delete_pod", &Map::new(), &none).is_err());
    }

    fn healed_by(kind: FaultKind, action: &str, args: Value) -> (SimResource, SimResource) {
        let broken = inject(&deployment(true), "run-1", kind, &Map::new(), "t0");
        assert!(!broken.healthy, "{kind:?} makes the resource unhealthy");
        let args = args.as_object().cloned().unwrap_or_default();
        (broken.clone(), apply(action, &args, &broken).unwrap())
    }

    #[test]
    fn each_fault_is_healed_by_the_action_that_addresses_it_and_not_by_others() {
        for (kind, fix, args) in [
            (FaultKind::KillPod, "restart", json!({})),
            (FaultKind::CrashLoop, "rollback", json!({})),
            (FaultKind::CpuSpike, "scale", json!({"replicas": 6})),
            (FaultKind::Latency, "restart", json!({})),
            (FaultKind::DependencyThrottle, "failover", json!({})),
        ] {
            let (_, healed) = healed_by(kind, fix, args);
            assert!(healed.healthy, "{kind:?} healed by {fix}: {healed:?}");
        }
        assert!(
            !healed_by(FaultKind::CrashLoop, "restart", json!({})).1.healthy,
            "a restart does not fix a bad version"
        );
        assert!(!healed_by(FaultKind::CpuSpike, "restart", json!({})).1.healthy, "a restart does not cool a CPU spike");
        assert!(!healed_by(FaultKind::DependencyThrottle, "restart", json!({})).1.healthy);
        // Undisturbed resources keep the old rules: a restart heals, scaling leaves health alone.
        assert!(apply("restart", &Map::new(), &deployment(false)).unwrap().healthy);
        let scaled = apply("scale", json!({"replicas": 5}).as_object().unwrap(), &deployment(false)).unwrap();
        assert!(!scaled.healthy);
    }

    #[test]
    fn a_faulted_resource_survives_its_stored_form_byte_for_byte() {
        // Writers change the world conditionally on the document they read, re-encoded: a
        // document that does not re-encode to the same bytes could never be changed.
        for kind in FaultKind::ALL {
            for r in [deployment(true), SimResource::new("deployment", 2, true, "v1")] {
                let broken = inject(&r, "run-3", kind, &Map::new(), "t0");
                let text = serde_json::to_string(&broken).unwrap();
                let again: SimResource = serde_json::from_str(&text).unwrap();
                assert_eq!(serde_json::to_string(&again).unwrap(), text, "{kind:?}");
            }
        }
    }

    #[test]
    fn a_rollback_restores_what_the_fault_replaced_and_is_idempotent() {
        let before = deployment(true);
        for kind in FaultKind::ALL {
            let broken = inject(&before, "run-9", kind, &Map::new(), "t0");
            assert_eq!(inject(&broken, "run-9", kind, &Map::new(), "t1"), broken, "injecting again changes nothing");
            let restored = revert(&broken, "run-9");
            assert_eq!(restored, before, "{kind:?} reverted");
            assert_eq!(revert(&restored, "run-9"), restored);
        }
        // Healed by the agent, then rolled back: the record goes, the healing stays.
        let (_, healed) = healed_by(FaultKind::CrashLoop, "rollback", json!({}));
        let after = revert(&healed, "run-1");
        assert!(after.healthy && after.condition.faults.is_empty() && after.version == "v2");
    }

    #[test]
    fn put_bodies_are_validated_with_every_problem_named() {
        assert!(
            SimResource::parse(&json!({"kind": "deployment", "replicas": 2, "healthy": false, "version": "v1"}))
                .is_ok()
        );
        let errs = SimResource::parse(&json!({"kind": "", "replicas": -1, "healthy": "no", "extra": 1})).unwrap_err();
        let mut p: Vec<_> = errs.into_iter().map(|e| e.pointer).collect();
        p.sort();
        assert_eq!(p, ["/extra", "/healthy", "/kind", "/replicas", "/version"]);
    }
}
