//! Triggers: a WPK sent to one node or rolled out to every node with a label, and each node's
//! execution of it.
//!
//! A trigger is `running` until every execution has ended (`completed`), or until the share of
//! failed and rejected results reaches the rollout's `abort_failure_percent` (`aborted`: nothing
//! more is handed out, and executions not yet delivered are `cancelled`). A rollout hands out at
//! most `max_per_minute` executions per minute; the others wait `queued`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use naksha_contracts::edge::{MAX_PARAMS_BYTES, ResultStatus, WpkForm, WpkRef, is_node_id};
use naksha_contracts::input::FieldError;
use naksha_contracts::signing::{Sealed, canonical_json};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::nodes::parse_labels;

pub const DEFAULT_TTL_SECONDS: u32 = 3600;
pub const MAX_TTL_SECONDS: u32 = 7 * 24 * 3600;
/// Most nodes one trigger may address.
pub const MAX_TARGETS: usize = 1000;

/// Where a trigger goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    Node(String),
    Labels(BTreeMap<String, String>),
}

impl Target {
    pub fn view(&self) -> Value {
        match self {
            Target::Node(id) => json!({"node_id": id}),
            Target::Labels(l) => json!({"labels": l}),
        }
    }
}

/// How fast a label rollout goes, and when it stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rollout {
    #[serde(default)]
    pub max_per_minute: Option<u32>,
    #[serde(default)]
    pub abort_failure_percent: Option<u32>,
}

/// The body of `POST /federation/triggers`.
#[derive(Debug, Clone, PartialEq)]
pub struct TriggerRequest {
    pub wpk_id: String,
    pub wpk_version: Option<u32>,
    pub target: Target,
    pub params: Map<String, Value>,
    pub ttl_seconds: u32,
    pub rollout: Option<Rollout>,
}

fn u32_in(v: &Value, range: std::ops::RangeInclusive<u32>) -> Option<u32> {
    v.as_u64().and_then(|n| u32::try_from(n).ok()).filter(|n| range.contains(n))
}

fn unknown(obj: &Map<String, Value>, allowed: &[&str], at: &str, errors: &mut Vec<FieldError>) {
    for k in obj.keys().filter(|k| !allowed.contains(&k.as_str())) {
        let k: String = k.chars().take(64).collect();
        errors.push(FieldError::new(format!("{at}/{k}"), format!("unknown field (expected {})", allowed.join(", "))));
    }
}

impl TriggerRequest {
    pub fn parse(body: &Value) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let Some(obj) = body.as_object() else {
            return Err(vec![FieldError::new(
                "",
                "expected {\"wpk\", \"target\", \"params\", \"ttl_seconds\", \"rollout\"}",
            )]);
        };
        unknown(obj, &["wpk", "target", "params", "ttl_seconds", "rollout"], "", &mut errors);
        let (mut wpk_id, mut wpk_version) = (String::new(), None);
        match obj.get("wpk").and_then(Value::as_object) {
            Some(w) => {
                unknown(w, &["id", "version"], "/wpk", &mut errors);
                match w.get("id").and_then(Value::as_str) {
                    Some(id) if (1..=64).contains(&id.len()) && !id.contains('#') => wpk_id = id.to_owned(),
                    _ => errors.push(FieldError::new("/wpk/id", "required: a registered WPK's id")),
                }
                match w.get("version") {
                    None => {}
                    Some(v) => match u32_in(v, 1..=u32::MAX) {
                        Some(n) => wpk_version = Some(n),
                        None => errors.push(FieldError::new("/wpk/version", "must be a whole number of at least 1")),
                    },
                }
            }
            None => errors.push(FieldError::new("/wpk", "required: {\"id\", \"version\"?}")),
        }
        let target = match obj.get("target").and_then(Value::as_object) {
            Some(t) if t.len() == 1 && t.contains_key("node_id") => match t.get("node_id").and_then(Value::as_str) {
                Some(id) if is_node_id(id) => Some(Target::Node(id.to_owned())),
                _ => {
                    errors.push(FieldError::new("/target/node_id", "must be a node id (1 to 64 of a-z 0-9 - _ .)"));
                    None
                }
            },
            Some(t) if t.len() == 1 && t.contains_key("labels") => {
                let labels = parse_labels(t.get("labels"), "/target/labels", &mut errors);
                if labels.is_empty() {
                    errors.push(FieldError::new("/target/labels", "name at least one label"));
                }
                Some(Target::Labels(labels))
            }
            _ => {
                errors.push(FieldError::new("/target", "required: {\"node_id\": \"...\"} or {\"labels\": {...}}"));
                None
            }
        };
        let params = match obj.get("params") {
            Some(Value::Object(p)) => {
                if canonical_json(&Value::Object(p.clone())).len() > MAX_PARAMS_BYTES {
                    errors.push(FieldError::new("/params", format!("at most {MAX_PARAMS_BYTES} bytes")));
                }
                let r = p.get("resource").and_then(Value::as_str);
                if !r.is_some_and(|r| {
                    (1..=256).contains(&r.len()) && r.bytes().all(|b| b.is_ascii_graphic() && b != b'*' && b != b'#')
                }) {
                    errors.push(FieldError::new(
                        "/params/resource",
                        "required: the resource the WPK acts on, e.g. deployment/payments",
                    ));
                }
                p.clone()
            }
            _ => {
                errors.push(FieldError::new("/params", "required: an object with at least {\"resource\": \"...\"}"));
                Map::new()
            }
        };
        let ttl_seconds = match obj.get("ttl_seconds") {
            None => DEFAULT_TTL_SECONDS,
            Some(v) => u32_in(v, 1..=MAX_TTL_SECONDS).unwrap_or_else(|| {
                errors.push(FieldError::new(
                    "/ttl_seconds",
                    format!("must be a whole number of seconds from 1 to {MAX_TTL_SECONDS}"),
                ));
                0
            }),
        };
        let rollout = match obj.get("rollout") {
            None | Some(Value::Null) => None,
            Some(Value::Object(r)) => {
                unknown(r, &["max_per_minute", "abort_failure_percent"], "/rollout", &mut errors);
                let max = r.get("max_per_minute").map(|v| {
                    u32_in(v, 1..=10_000).unwrap_or_else(|| {
                        errors
                            .push(FieldError::new("/rollout/max_per_minute", "must be a whole number from 1 to 10000"));
                        0
                    })
                });
                let pct = r.get("abort_failure_percent").map(|v| {
                    u32_in(v, 1..=100).unwrap_or_else(|| {
                        errors.push(FieldError::new(
                            "/rollout/abort_failure_percent",
                            "must be a whole number from 1 to 100",
                        ));
                        0
                    })
                });
                Some(Rollout { max_per_minute: max, abort_failure_percent: pct })
            }
            Some(_) => {
                errors.push(FieldError::new("/rollout", "must be {\"max_per_minute\"?, \"abort_failure_percent\"?}"));
                None
            }
        };
        match target {
            Some(target) if errors.is_empty() => Ok(Self { wpk_id, wpk_version, target, params, ttl_seconds, rollout }),
            _ => Err(errors),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TriggerState {
    Running,
    Completed,
    Aborted,
}

impl TriggerState {
    pub fn as_str(self) -> &'static str {
        match self {
            TriggerState::Running => "running",
            TriggerState::Completed => "completed",
            TriggerState::Aborted => "aborted",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "running" => Some(Self::Running),
            "completed" => Some(Self::Completed),
            "aborted" => Some(Self::Aborted),
            _ => None,
        }
    }
}

/// How the executions of a trigger ended so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub succeeded: u32,
    pub failed: u32,
    pub rejected: u32,
    pub expired: u32,
    pub cancelled: u32,
}

impl Counts {
    /// Results the nodes reported.
    pub fn results(&self) -> u32 {
        self.succeeded + self.failed + self.rejected
    }

    /// Executions that ended, one way or another.
    pub fn ended(&self) -> u32 {
        self.results() + self.expired + self.cancelled
    }
}

/// The parts of a trigger that never change once it is created.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TriggerSpec {
    pub trigger_id: String,
    pub wpk: WpkRef,
    /// The signed WPK version, as verified when the trigger was created: what every node gets.
    pub wpk_form: WpkForm,
    pub target: Target,
    pub params: Map<String, Value>,
    pub ttl_seconds: u32,
    #[serde(default)]
    pub rollout: Option<Rollout>,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub expires_at: DateTime<Utc>,
    pub nodes: u32,
}

/// A trigger as it stands.
#[derive(Debug, Clone, PartialEq)]
pub struct Trigger {
    pub spec: TriggerSpec,
    pub state: TriggerState,
    pub counts: Counts,
    pub ended_at: Option<DateTime<Utc>>,
    pub abort_reason: Option<String>,
}

impl Trigger {
    /// Why the rollout must stop now, if it must: the share of failed and rejected results has
    /// reached `abort_failure_percent`.
    pub fn abort_reason(&self) -> Option<String> {
        let pct = self.spec.rollout.and_then(|r| r.abort_failure_percent)?;
        let results = self.counts.results();
        let bad = self.counts.failed + self.counts.rejected;
        (results > 0 && u64::from(bad) * 100 >= u64::from(pct) * u64::from(results))
            .then(|| format!("{bad} of {results} results failed or were rejected (abort at {pct}%)"))
    }

    /// Every execution has ended.
    pub fn all_ended(&self) -> bool {
        self.counts.ended() >= self.spec.nodes
    }

    pub fn view(&self, executions: &[Execution], now: DateTime<Utc>) -> Value {
        json!({
            "trigger_id": self.spec.trigger_id,
            "state": self.state.as_str(),
            "wpk": self.spec.wpk,
            "target": self.spec.target.view(),
            "params": self.spec.params,
            "ttl_seconds": self.spec.ttl_seconds,
            "rollout": self.spec.rollout,
            "created_at": self.spec.created_at.to_rfc3339(),
            "created_by": self.spec.created_by,
            "expires_at": self.spec.expires_at.to_rfc3339(),
            "ended_at": self.ended_at.map(|t| t.to_rfc3339()),
            "abort_reason": self.abort_reason,
            "nodes": self.spec.nodes,
            "counts": self.counts,
            "executions": executions.iter().map(|e| e.view(self.spec.expires_at, now)).collect::<Vec<_>>(),
        })
    }
}

/// One node's execution of a trigger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExecState {
    Queued,
    Delivered,
    Succeeded,
    Failed,
    Rejected,
    Expired,
    Cancelled,
}

impl ExecState {
    pub fn as_str(self) -> &'static str {
        match self {
            ExecState::Queued => "queued",
            ExecState::Delivered => "delivered",
            ExecState::Succeeded => "succeeded",
            ExecState::Failed => "failed",
            ExecState::Rejected => "rejected",
            ExecState::Expired => "expired",
            ExecState::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Queued, Self::Delivered, Self::Succeeded, Self::Failed, Self::Rejected, Self::Expired, Self::Cancelled]
            .into_iter()
            .find(|e| e.as_str() == s)
    }

    pub fn is_final(self) -> bool {
        !matches!(self, ExecState::Queued | ExecState::Delivered)
    }

    pub fn of(status: ResultStatus) -> Self {
        match status {
            ResultStatus::Succeeded => ExecState::Succeeded,
            ResultStatus::Failed => ExecState::Failed,
            ResultStatus::Rejected => ExecState::Rejected,
        }
    }

    /// The trigger counter this final state adds to.
    pub fn counter(self) -> Option<&'static str> {
        match self {
            ExecState::Succeeded => Some("n_succeeded"),
            ExecState::Failed => Some("n_failed"),
            ExecState::Rejected => Some("n_rejected"),
            ExecState::Expired => Some("n_expired"),
            ExecState::Cancelled => Some("n_cancelled"),
            ExecState::Queued | ExecState::Delivered => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Execution {
    pub trigger_id: String,
    pub node_id: String,
    pub state: ExecState,
    pub seq: Option<u64>,
    pub queued_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub reason: Option<String>,
    /// The node's signed result, as it sent it.
    pub result: Option<Sealed>,
}

impl Execution {
    pub fn queued(trigger_id: &str, node_id: &str, at: DateTime<Utc>) -> Self {
        Self {
            trigger_id: trigger_id.to_owned(),
            node_id: node_id.to_owned(),
            state: ExecState::Queued,
            seq: None,
            queued_at: at,
            delivered_at: None,
            finished_at: None,
            reason: None,
            result: None,
        }
    }

    /// Its state as a reader should see it: not yet ended but past the trigger's expiry reads
    /// `expired` before the sweep has recorded it.
    pub fn shown_state(&self, expires_at: DateTime<Utc>, now: DateTime<Utc>) -> ExecState {
        if !self.state.is_final() && now >= expires_at { ExecState::Expired } else { self.state }
    }

    pub fn view(&self, expires_at: DateTime<Utc>, now: DateTime<Utc>) -> Value {
        let result: Option<Value> = self.result.as_ref().and_then(|s| {
            let env: Value = serde_json::from_str(&s.signed).ok()?;
            Some(json!({"payload": env.get("payload").cloned().unwrap_or(Value::Null), "signature": s.signature, "key_id": s.key_id, "sha256": s.sha256()}))
        });
        json!({
            "node_id": self.node_id,
            "state": self.shown_state(expires_at, now).as_str(),
            "seq": self.seq,
            "queued_at": self.queued_at.to_rfc3339(),
            "delivered_at": self.delivered_at.map(|t| t.to_rfc3339()),
            "finished_at": self.finished_at.map(|t| t.to_rfc3339()),
            "reason": self.reason,
            "result": result,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(extra: Value) -> Value {
        let mut b = json!({"wpk": {"id": "restart-edge"}, "target": {"node_id": "node-a"}, "params": {"resource": "deployment/payments"}});
        if let (Some(b), Some(e)) = (b.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                b.insert(k.clone(), v.clone());
            }
        }
        b
    }

    #[test]
    fn a_trigger_request_parses_with_defaults() {
        let r = TriggerRequest::parse(&body(json!({}))).unwrap();
        assert_eq!((r.wpk_id.as_str(), r.wpk_version, r.ttl_seconds), ("restart-edge", None, DEFAULT_TTL_SECONDS));
        assert_eq!(r.target, Target::Node("node-a".into()));
        let r = TriggerRequest::parse(&body(json!({"target": {"labels": {"tier": "edge"}}, "rollout": {"max_per_minute": 2, "abort_failure_percent": 50}, "ttl_seconds": 60, "wpk": {"id": "x", "version": 3}})))
            .unwrap();
        assert_eq!(r.rollout, Some(Rollout { max_per_minute: Some(2), abort_failure_percent: Some(50) }));
        assert_eq!((r.wpk_version, r.ttl_seconds), (Some(3), 60));
    }

    #[test]
    fn every_problem_with_a_trigger_request_is_named() {
        let errs = TriggerRequest::parse(&json!({
            "wpk": {"version": 0, "x": 1}, "target": {"node_id": "Bad/Id"}, "params": {"resource": "*"},
            "ttl_seconds": 0, "rollout": {"max_per_minute": 0, "abort_failure_percent": 101}, "extra": true
        }))
        .unwrap_err();
        let mut p: Vec<_> = errs.into_iter().map(|e| e.pointer).collect();
        p.sort();
        assert_eq!(
            p,
            [
                "/extra",
                "/params/resource",
                "/rollout/abort_failure_percent",
                "/rollout/max_per_minute",
                "/target/node_id",
                "/ttl_seconds",
                "/wpk/id",
                "/wpk/version",
                "/wpk/x"
            ]
        );
        assert!(TriggerRequest::parse(&body(json!({"target": {"node_id": "a", "labels": {"a": "b"}}}))).is_err());
        assert!(TriggerRequest::parse(&body(json!({"target": {"labels": {}}}))).is_err());
        let big = "x".repeat(MAX_PARAMS_BYTES);
        assert!(TriggerRequest::parse(&body(json!({"params": {"resource": "deployment/a", "note": big}}))).is_err());
    }

    fn trigger(pct: Option<u32>, counts: Counts, nodes: u32) -> Trigger {
        let now = Utc::now();
        Trigger {
            spec: TriggerSpec {
                trigger_id: "t".into(),
                wpk: WpkRef { id: "w".into(), version: 1, sha256: "0".repeat(64) },
                wpk_form: WpkForm {
                    id: "w".into(),
                    version: 1,
                    doc: String::new(),
                    sha256: String::new(),
                    signature: String::new(),
                    key_id: String::new(),
                },
                target: Target::Labels(BTreeMap::new()),
                params: Map::new(),
                ttl_seconds: 60,
                rollout: Some(Rollout { max_per_minute: Some(1), abort_failure_percent: pct }),
                created_at: now,
                created_by: "a".into(),
                expires_at: now,
                nodes,
            },
            state: TriggerState::Running,
            counts,
            ended_at: None,
            abort_reason: None,
        }
    }

    #[test]
    fn a_rollout_aborts_once_failures_reach_their_share_of_results() {
        let c = |s, f, r| Counts { succeeded: s, failed: f, rejected: r, ..Counts::default() };
        assert_eq!(trigger(Some(50), c(0, 0, 0), 5).abort_reason(), None);
        assert_eq!(trigger(Some(50), c(2, 1, 0), 5).abort_reason(), None);
        assert!(trigger(Some(50), c(1, 0, 1), 5).abort_reason().is_some(), "a rejection counts as a failure");
        assert!(trigger(Some(34), c(2, 1, 0), 5).abort_reason().is_none());
        assert!(trigger(Some(33), c(2, 1, 0), 5).abort_reason().is_some());
        assert_eq!(trigger(None, c(0, 5, 0), 5).abort_reason(), None, "no threshold, no abort");
        assert!(trigger(None, Counts { succeeded: 3, expired: 1, cancelled: 1, ..Counts::default() }, 5).all_ended());
        assert!(!trigger(None, c(3, 1, 0), 5).all_ended());
    }

    #[test]
    fn an_execution_past_its_expiry_reads_expired_until_the_sweep_records_it() {
        let now = Utc::now();
        let e = Execution::queued("t", "n", now);
        assert_eq!(e.shown_state(now + chrono::Duration::seconds(1), now), ExecState::Queued);
        assert_eq!(e.shown_state(now, now), ExecState::Expired);
        let done = Execution { state: ExecState::Succeeded, ..e };
        assert_eq!(done.shown_state(now, now), ExecState::Succeeded);
        for s in ["queued", "delivered", "succeeded", "failed", "rejected", "expired", "cancelled"] {
            assert_eq!(ExecState::parse(s).map(ExecState::as_str), Some(s));
        }
    }
}
