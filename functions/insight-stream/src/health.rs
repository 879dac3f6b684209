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

    /// The answer: anonymous callers learn up or down and the backend; callers with a valid token
    /// also learn what was checked and what is down (by name, without AWS error text).
    pub fn view(&self, detailed: bool) -> Result<Value, Problem> {
        let services: Map<String, Value> =
            self.checks.iter().map(|(label, up)| (label.clone(), json!(if *up { "ok" } else { "down" }))).collect();
        if self.up() {
            let mut doc = json!({"status": "ok", "backend": self.backend.as_str()});
            if detailed {
                doc["services"] = Value::Object(services);
                doc["version"] = json!(env!("CARGO_PKG_VERSION"));
            }
            return Ok(doc);
        }
        let down: Vec<&str> = self.checks.iter().filter(|(_, up)| !up).map(|(l, _)| l.as_str()).collect();
        let detail =
            if detailed { format!("unavailable: {}", down.join(", ")) } else { "a dependency is unavailable".into() };
        let mut p = Problem::unavailable(detail)
            .with_extension("status", json!("down"))
            .with_extension("backend", json!(self.backend.as_str()));
        if detailed {
            p = p.with_extension("services", Value::Object(services));
        }
        Err(p)
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
        let ok = report(&[true, true]).view(false).unwrap();
        assert_eq!(ok, json!({"status": "ok", "backend": "moto"}));
        let down = report(&[true, false]).view(false).unwrap_err();
        assert_eq!((down.status, down.body()["status"].as_str()), (503, Some("down")));
        assert!(!down.body().to_string().contains("naksha."), "{}", down.body());
    }

    #[test]
    fn a_caller_with_a_token_learns_what_is_down_by_name() {
        let ok = report(&[true]).view(true).unwrap();
        assert_eq!(ok["services"]["table:naksha.t0"], "ok");
        let down = report(&[true, false]).view(true).unwrap_err().body();
        assert_eq!(down["services"]["table:naksha.t1"], "down");
        assert!(down["detail"].as_str().unwrap().contains("table:naksha.t1"));
    }
}
