//! A chaos run: where it stands, its timeline, and the recovery figures computed from it.
//!
//! Stages, each advanced by one worker invocation at a time (state saved after each):
//! `steady-before` → `inject` → `watch` → `rollback` → `steady-after-rollback` → `done`. Any
//! stop condition (an abort, the kill switch, a bystander failing its probe, the deadline) moves a
//! run from `steady-before`, `inject` or `watch` straight to `rollback`: rollbacks always run.

use chrono::{DateTime, Utc};
use naksha_contracts::TenantId;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::specs::Spec;

/// The run's clock: real time (the simulated world moves at the speed of the stack).
pub const CLOCK: &str = "real";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Queued,
    Running,
    Completed,
    Aborted,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Queued => "queued",
            Status::Running => "running",
            Status::Completed => "completed",
            Status::Aborted => "aborted",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    SteadyBefore,
    Inject,
    Watch,
    Rollback,
    SteadyAfterRollback,
    Done,
}

impl Stage {
    /// Stages in which a stop condition still matters (before the rollbacks).
    pub fn stoppable(self) -> bool {
        matches!(self, Stage::SteadyBefore | Stage::Inject | Stage::Watch)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Recovered,
    NotRecovered,
    Aborted,
}

/// Timeline events, in the order a recovery goes through them.
pub mod events {
    pub const STEADY_BEFORE: &str = "steady_state_before";
    pub const INJECTED: &str = "injected";
    pub const FIRST_ANOMALY: &str = "first_anomaly";
    pub const AGENT_RUN_STARTED: &str = "agent_run_started";
    pub const WPK_CHOSEN: &str = "wpk_chosen";
    pub const AWAITING_APPROVAL: &str = "awaiting_approval";
    pub const APPROVED: &str = "approved";
    pub const ACTED: &str = "acted";
    pub const RESOURCE_HEALTHY: &str = "resource_healthy";
    pub const STEADY_AFTER: &str = "steady_state_after";
    pub const ROLLBACKS_DONE: &str = "rollbacks_done";
    pub const STEADY_AFTER_ROLLBACK: &str = "steady_state_after_rollback";
    pub const ABORTED: &str = "aborted";
    pub const DRY_RUN: &str = "dry_run";

    /// The stages of a recovery, in order: the first missing one is why a run did not recover.
    pub const RECOVERY: [&str; 6] =
        [FIRST_ANOMALY, AGENT_RUN_STARTED, WPK_CHOSEN, ACTED, RESOURCE_HEALTHY, STEADY_AFTER];

    /// The stages of a `hub-partition` recovery (the hub noticing is reported, not required).
    pub const EDGE_RECOVERY: [&str; 2] = [RESOURCE_HEALTHY, STEADY_AFTER];
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub event: String,
    pub at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub detail: Value,
}

/// An agent run a chaos run saw on its target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentRun {
    pub run_id: String,
    pub signal: String,
    pub status: String,
    #[serde(default)]
    pub wpk: Option<String>,
    #[serde(default)]
    pub approved_by: Option<String>,
    pub standing_approval: bool,
    #[serde(default)]
    pub audit_seq: Option<u64>,
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RollbackDone {
    pub action: String,
    pub at: DateTime<Utc>,
    pub result: String,
}

/// The figures a run reports, in seconds of its clock (`None`: that stage did not happen).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Recovery {
    pub mttd_s: Option<f64>,
    pub time_to_decide_s: Option<f64>,
    pub approval_wait_s: Option<f64>,
    pub time_to_act_s: Option<f64>,
    pub mttr_s: Option<f64>,
    pub time_to_steady_state_s: Option<f64>,
    pub clock: &'static str,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChaosRun {
    pub run_id: String,
    pub tenant: TenantId,
    pub spec: Spec,
    pub target: String,
    pub dry_run: bool,
    pub status: Status,
    pub stage: Stage,
    #[serde(default)]
    pub verdict: Option<Verdict>,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub timeline: Vec<Event>,
    #[serde(default)]
    pub agent_runs: Vec<AgentRun>,
    #[serde(default)]
    pub rollbacks: Vec<RollbackDone>,
    /// Other chaos targets of the tenant that were healthy when the fault went in: one turning
    /// unhealthy is outside the blast radius and stops the run.
    #[serde(default)]
    pub bystanders: Vec<String>,
    #[serde(default)]
    pub abort_requested: Option<String>,
    #[serde(default)]
    pub deadline_at: Option<DateTime<Utc>>,
    /// What the run cost the orchestrator: worker steps, and the time spent in them.
    #[serde(default)]
    pub steps: u32,
    #[serde(default)]
    pub worker_ms: u64,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub updated_at: DateTime<Utc>,
}

impl ChaosRun {
    pub fn new(
        run_id: String,
        tenant: TenantId,
        spec: Spec,
        target: String,
        dry_run: bool,
        by: &str,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            run_id,
            tenant,
            spec,
            target,
            dry_run,
            status: Status::Queued,
            stage: Stage::SteadyBefore,
            verdict: None,
            reason: None,
            timeline: Vec::new(),
            agent_runs: Vec::new(),
            rollbacks: Vec::new(),
            bystanders: Vec::new(),
            abort_requested: None,
            deadline_at: None,
            steps: 0,
            worker_ms: 0,
            created_at: now,
            created_by: by.to_owned(),
            updated_at: now,
        }
    }

    pub fn is_over(&self) -> bool {
        self.stage == Stage::Done
    }

    /// Record an event the first time it happens (later observations change nothing).
    pub fn record(&mut self, event: &str, at: DateTime<Utc>, detail: Value) -> bool {
        if self.at(event).is_some() {
            return false;
        }
        self.timeline.push(Event { event: event.to_owned(), at, detail });
        self.timeline.sort_by_key(|e| e.at);
        true
    }

    pub fn at(&self, event: &str) -> Option<DateTime<Utc>> {
        self.timeline.iter().find(|e| e.event == event).map(|e| e.at)
    }

    /// Decide the verdict and go to the rollbacks (a verdict, once given, stays).
    pub fn conclude(&mut self, verdict: Verdict, reason: impl Into<String>, now: DateTime<Utc>) {
        if self.verdict.is_none() {
            self.verdict = Some(verdict);
            self.reason = Some(reason.into());
            if verdict == Verdict::Aborted {
                let reason = self.reason.clone().unwrap_or_default();
                self.record(events::ABORTED, now, json!({"reason": reason}));
            }
        }
        self.stage = Stage::Rollback;
    }

    /// The first recovery stage that never happened (a partitioned node recovers without the
    /// agent: being heard again and losing nothing are its stages).
    pub fn missing_stage(&self) -> Option<&'static str> {
        let stages: &[&'static str] =
            if self.spec.fault.kind.on_edge() { &events::EDGE_RECOVERY } else { &events::RECOVERY };
        stages.iter().copied().find(|e| self.at(e).is_none())
    }

    pub fn recovery(&self) -> Recovery {
        let secs = |from: &str, to: &str| {
            let (a, b) = (self.at(from)?, self.at(to)?);
            Some((b - a).num_milliseconds() as f64 / 1000.0)
        };
        Recovery {
            mttd_s: secs(events::INJECTED, events::FIRST_ANOMALY),
            time_to_decide_s: secs(events::FIRST_ANOMALY, events::WPK_CHOSEN),
            approval_wait_s: secs(events::AWAITING_APPROVAL, events::APPROVED),
            time_to_act_s: secs(events::WPK_CHOSEN, events::ACTED),
            mttr_s: secs(events::INJECTED, events::RESOURCE_HEALTHY),
            time_to_steady_state_s: secs(events::INJECTED, events::STEADY_AFTER),
            clock: CLOCK,
        }
    }

    /// A short view for listings.
    pub fn summary(&self) -> Value {
        json!({
            "run_id": self.run_id, "spec": self.spec.id, "target": self.target, "dry_run": self.dry_run,
            "status": self.status.as_str(), "stage": self.stage, "verdict": self.verdict,
            "created_at": self.created_at.to_rfc3339(), "recovery": self.recovery(),
        })
    }

    /// The whole run as `GET /chaos/runs/{id}` shows it.
    pub fn view(&self) -> Value {
        json!({
            "run_id": self.run_id,
            "spec": self.spec.id,
            "spec_detail": self.spec,
            "target": self.target,
            "dry_run": self.dry_run,
            "status": self.status.as_str(),
            "stage": self.stage,
            "verdict": self.verdict,
            "reason": self.reason,
            "timeline": self.timeline.iter().map(|e| json!({"event": e.event, "at": e.at.to_rfc3339(), "detail": e.detail})).collect::<Vec<_>>(),
            "recovery": self.recovery(),
            "agent_runs": self.agent_runs,
            "rollbacks": self.rollbacks,
            "abort_requested": self.abort_requested,
            "deadline_at": self.deadline_at.map(|t| t.to_rfc3339()),
            "cost": {"steps": self.steps, "worker_ms": self.worker_ms},
            "created_at": self.created_at.to_rfc3339(),
            "created_by": self.created_by,
            "updated_at": self.updated_at.to_rfc3339(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn run() -> ChaosRun {
        let spec = crate::specs::builtin().unwrap().remove(0);
        ChaosRun::new(
            "r1".into(),
            TenantId::from_record("acme").unwrap(),
            spec,
            "deployment/a".into(),
            false,
            "ada",
            Utc::now(),
        )
    }

    #[test]
    fn the_figures_are_differences_between_timeline_events() {
        let mut r = run();
        let t0 = Utc::now();
        let at = |s: i64| t0 + Duration::milliseconds(s);
        r.record(events::INJECTED, at(0), Value::Null);
        r.record(events::FIRST_ANOMALY, at(4_000), Value::Null);
        r.record(events::AGENT_RUN_STARTED, at(4_500), Value::Null);
        r.record(events::WPK_CHOSEN, at(5_000), Value::Null);
        r.record(events::AWAITING_APPROVAL, at(5_200), Value::Null);
        r.record(events::APPROVED, at(9_200), Value::Null);
        r.record(events::ACTED, at(9_700), Value::Null);
        r.record(events::RESOURCE_HEALTHY, at(11_000), Value::Null);
        assert!(!r.record(events::FIRST_ANOMALY, at(9_999), Value::Null), "the first observation stays");
        let f = r.recovery();
        assert_eq!(
            (f.mttd_s, f.time_to_decide_s, f.approval_wait_s, f.time_to_act_s, f.mttr_s),
            (Some(4.0), Some(1.0), Some(4.0), Some(4.7), Some(11.0))
        );
        assert_eq!(f.time_to_steady_state_s, None, "steady state not reached yet");
        assert_eq!(r.missing_stage(), Some(events::STEADY_AFTER));
        assert_eq!(f.clock, "real");
    }

    #[test]
    fn a_run_without_a_wpk_names_the_stage_that_never_happened_and_a_verdict_stays() {
        let mut r = run();
        let now = Utc::now();
        r.record(events::INJECTED, now, Value::Null);
        r.record(events::FIRST_ANOMALY, now, Value::Null);
        r.record(events::AGENT_RUN_STARTED, now, Value::Null);
        assert_eq!(r.missing_stage(), Some(events::WPK_CHOSEN));
        r.conclude(Verdict::NotRecovered, "wpk_chosen never happened", now);
        r.conclude(Verdict::Aborted, "later abort", now);
        assert_eq!((r.verdict, r.stage), (Some(Verdict::NotRecovered), Stage::Rollback));
        assert!(r.at(events::ABORTED).is_none());
    }
}
