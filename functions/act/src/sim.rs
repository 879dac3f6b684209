//! The `sim` adapter: a simulated cluster — the simulation mode's world (kept in DynamoDB by the
//! agent, in its local store by an edge node).
//!
//! Resources such as `deployment/payments` have replicas, health and a version. `restart` makes an
//! unhealthy deployment healthy and counts the restart; `scale` sets replicas; `rollback` returns
//! to the previous (or a named) version. Each change is written together with its receipt in one
//! transaction, so an action is applied at most once per idempotency key.

use std::future::Future;

use naksha_contracts::TenantId;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::ActError;

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
}

impl SimResource {
    /// The body of `PUT /sim/resources/{resource}`: `{"kind","replicas","healthy","version"}`.
    pub fn parse(body: &Value) -> Result<Self, Vec<naksha_contracts::input::FieldError>> {
        use naksha_contracts::input::FieldError;
        let mut errors = Vec::new();
        let Some(o) = body.as_object() else {
            return Err(vec![FieldError::new("", "expected {\"kind\", \"replicas\", \"healthy\", \"version\"}")]);
        };
        for k in
            o.keys().filter(|k| !["kind", "replicas", "healthy", "version", "previous_version"].contains(&k.as_str()))
        {
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
        if !errors.is_empty() {
            return Err(errors);
        }
        serde_json::from_value(body.clone()).map_err(|e| vec![FieldError::new("", e.to_string())])
    }
}

/// The simulation's rules: the resource after `action`.
pub fn apply(action: &str, args: &Map<String, Value>, r: &SimResource) -> Result<SimResource, ActError> {
    apply_rules(action, args, r).map_err(ActError::Refused)
}

fn apply_rules(action: &str, args: &Map<String, Value>, r: &SimResource) -> Result<SimResource, String> {
    let mut next = r.clone();
    match action {
        "restart" => {
            next.restarts += 1;
            next.healthy = true;
        }
        "scale" => {
            let n = args.get("replicas").and_then(Value::as_u64).ok_or("scale needs replicas")?;
            next.replicas = u32::try_from(n).map_err(|_| "replicas out of range")?;
        }
        "rollback" => {
            let to = match args.get("to_version").and_then(Value::as_str) {
                Some(v) => v.to_owned(),
                None => r.previous_version.clone().ok_or("no previous version to roll back to")?,
            };
            next.previous_version = Some(r.version.clone());
            next.version = to;
        }
        other => return Err(format!("the sim adapter cannot {other}")),
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
        SimResource {
            kind: "deployment".into(),
            replicas: 3,
            healthy,
            version: "v2".into(),
            previous_version: Some("v1".into()),
            restarts: 0,
        }
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
