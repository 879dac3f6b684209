//! `GET /health`: is every dependency of this service reachable and usable?

use std::time::Duration;

use naksha_core::aws::{Aws, describe_error};
use naksha_core::config::Backend;
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

/// Whether each dependency answered. Why one did not (AWS error text) is logged, never returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub backend: Backend,
    /// (label, up) for each dependency, in the configured order.
    pub checks: Vec<(String, bool)>,
}

impl Report {
    pub fn up(&self) -> bool {
        self.checks.iter().all(|(_, up)| *up)
    }

    /// The answer, `{"status": "ok" | "down", "backend"}` (API.md), as 200 or 503: anonymous
    /// callers learn only that; callers with a valid token also learn what was checked and what is
    /// down (by name, without AWS error text). The 503 is plain JSON, not problem+json: its
    /// `status` is the health state the contract names.
    pub fn view(&self, detailed: bool) -> (u16, Value) {
        let services: Map<String, Value> =
            self.checks.iter().map(|(label, up)| (label.clone(), json!(if *up { "ok" } else { "down" }))).collect();
        let up = self.up();
        let mut doc = json!({"status": if up { "ok" } else { "down" }, "backend": self.backend.as_str()});
        if detailed {
            doc["services"] = Value::Object(services);
            doc["version"] = json!(env!("CARGO_PKG_VERSION"));
            if !up {
                let down: Vec<&str> = self.checks.iter().filter(|(_, up)| !up).map(|(l, _)| l.as_str()).collect();
                doc["detail"] = json!(format!("unavailable: {}", down.join(", ")));
            }
        }
        (if up { 200 } else { 503 }, doc)
    }
}

/// Check every dependency concurrently, each within [`CHECK_TIMEOUT`].
pub async fn check(aws: &Aws, backend: Backend, deps: &[Dependency]) -> Report {
    let results = futures::future::join_all(deps.iter().map(|d| async move {
        let outcome = match tokio::time::timeout(CHECK_TIMEOUT, d.check(aws)).await {
            Ok(r) => r,
            Err(_) => Err(format!("no answer within {}s", CHECK_TIMEOUT.as_secs())),
        };
        if let Err(e) = &outcome {
            tracing::warn!(dependency = %d.label(), error = %e, "health check failed");
        }
        (d.label(), outcome.is_ok())
    }))
    .await;
    Report { backend, checks: results }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(up: &[bool]) -> Report {
        let checks = up.iter().enumerate().map(|(i, u)| (format!("table:naksha.t{i}"), *u)).collect();
        Report { backend: Backend::Moto, checks }
    }

    #[test]
    fn anonymous_callers_learn_only_up_or_down_and_the_backend() {
        assert_eq!(report(&[true, true]).view(false), (200, json!({"status": "ok", "backend": "moto"})));
        assert_eq!(report(&[true, false]).view(false), (503, json!({"status": "down", "backend": "moto"})));
    }

    #[test]
    fn a_caller_with_a_token_learns_what_is_down_by_name() {
        let (status, ok) = report(&[true]).view(true);
        assert_eq!((status, ok["services"]["table:naksha.t0"].as_str()), (200, Some("ok")));
        let (status, down) = report(&[true, false]).view(true);
        assert_eq!((status, down["status"].as_str()), (503, Some("down")));
        assert_eq!(down["services"]["table:naksha.t1"], "down");
        assert!(down["detail"].as_str().unwrap().contains("table:naksha.t1"));
    }
}
