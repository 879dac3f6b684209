//! `GET /health`: is every dependency of this service reachable and usable?

use std::time::Duration;

use naksha_core::aws::{Aws, describe_error};
use naksha_core::config::Backend;
use naksha_core::problem::Problem;
use serde_json::{Map, Value, json};

/// Each check gets this long before it counts as down.
const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

/// A dependency to check.
#[derive(Debug, Clone)]
pub enum Dependency {
    Stream(String),
    Table(String),
    Key(String),
}

impl Dependency {
    pub fn label(&self) -> String {
        match self {
            Dependency::Stream(n) => format!("stream:{n}"),
            Dependency::Table(n) => format!("table:{n}"),
            Dependency::Key(n) => format!("key:{n}"),
        }
    }

    async fn check(&self, aws: &Aws) -> Result<(), String> {
        match self {
            Dependency::Stream(name) => {
                let out = aws
                    .kinesis()
                    .describe_stream_summary()
                    .stream_name(name)
                    .send()
                    .await
                    .map_err(|e| describe_error(&e))?;
                let status = out.stream_description_summary().map(|s| s.stream_status().as_str().to_owned());
                match status.as_deref() {
                    Some("ACTIVE") | Some("UPDATING") => Ok(()),
                    other => Err(format!("stream is {}", other.unwrap_or("unknown"))),
                }
            }
            Dependency::Table(name) => {
                let out =
                    aws.dynamodb().describe_table().table_name(name).send().await.map_err(|e| describe_error(&e))?;
                let status = out.table().and_then(|t| t.table_status()).map(|s| s.as_str().to_owned());
                match status.as_deref() {
                    Some("ACTIVE") | Some("UPDATING") => Ok(()),
                    other => Err(format!("table is {}", other.unwrap_or("unknown"))),
                }
            }
            Dependency::Key(id) => {
                let out = aws.kms().describe_key().key_id(id).send().await.map_err(|e| describe_error(&e))?;
                match out.key_metadata().map(|m| m.enabled()) {
                    Some(true) => Ok(()),
                    _ => Err("key is disabled".to_owned()),
                }
            }
        }
    }
}

/// Check every dependency concurrently; 200 with each one's state, or a 503 problem naming
/// those that are down.
pub async fn check(aws: &Aws, backend: Backend, deps: &[Dependency]) -> Result<Value, Problem> {
    let results = futures::future::join_all(deps.iter().map(|d| async move {
        let outcome = match tokio::time::timeout(CHECK_TIMEOUT, d.check(aws)).await {
            Ok(r) => r,
            Err(_) => Err(format!("no answer within {}s", CHECK_TIMEOUT.as_secs())),
        };
        (d.label(), outcome)
    }))
    .await;
    let mut services = Map::new();
    let mut down = Vec::new();
    for (label, outcome) in results {
        match outcome {
            Ok(()) => {
                services.insert(label, json!("ok"));
            }
            Err(e) => {
                down.push(format!("{label} ({e})"));
                services.insert(label, json!(format!("down: {e}")));
            }
        }
    }
    if down.is_empty() {
        Ok(
            json!({"status": "ok", "backend": backend.as_str(), "services": services, "version": env!("CARGO_PKG_VERSION")}),
        )
    } else {
        Err(Problem::unavailable(format!("unavailable: {}", down.join("; ")))
            .with_extension("status", json!("down"))
            .with_extension("backend", json!(backend.as_str()))
            .with_extension("services", Value::Object(services)))
    }
}
