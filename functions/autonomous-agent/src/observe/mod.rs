//! Observe plugins: `telemetry` (the D.1 aggregates of the resource's series) and `prometheus`
//! (PromQL over Prometheus's HTTP API). A plugin that fails reports its error in its output; it
//! does not fail the run.

pub mod prometheus;
pub mod telemetry;

use std::collections::BTreeMap;

use naksha_contracts::TenantId;
use serde_json::{Value, json};

use crate::ports::Observer;
use prometheus::PrometheusObserver;
use telemetry::{AggregateQuery, TelemetryObserver};

#[derive(Debug, Clone)]
pub struct Observers<T> {
    pub telemetry: Option<TelemetryObserver<T>>,
    pub prometheus: Option<PrometheusObserver>,
}

impl<T: AggregateQuery> Observer for Observers<T> {
    async fn observe(&self, tenant: &TenantId, resource: &str, config: &Value) -> BTreeMap<String, Value> {
        let mut out = BTreeMap::new();
        if let Some(t) = &self.telemetry {
            let window = config["telemetry"]["window_minutes"].as_i64().unwrap_or(15);
            let seen = t.observe(tenant, resource, window).await.unwrap_or_else(|e| json!({"error": e.to_string()}));
            out.insert("telemetry".to_owned(), seen);
        }
        if let (Some(p), Some(queries)) = (&self.prometheus, config["prometheus"]["queries"].as_object()) {
            let mut results = serde_json::Map::new();
            for (name, query) in queries {
                let q = query.as_str().unwrap_or_default();
                let value = p.query_for(q, resource).await.unwrap_or_else(|e| json!({"error": e.to_string()}));
                results.insert(name.clone(), value);
            }
            out.insert("prometheus".to_owned(), Value::Object(results));
        }
        out
    }
}
