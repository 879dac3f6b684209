//! The typed state a run carries through the graph, persisted after every step.

use std::collections::BTreeMap;

use naksha_contracts::TenantId;
use naksha_contracts::runs::{RunOutcome, RunProgress};
use naksha_contracts::signing::{canonical_json, sha256_hex};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Queued,
    Running,
    AwaitingApproval,
    Succeeded,
    Failed,
    Rejected,
    Aborted,
}

impl RunStatus {
    pub fn is_final(self) -> bool {
        matches!(self, RunStatus::Succeeded | RunStatus::Failed | RunStatus::Rejected | RunStatus::Aborted)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::Running => "running",
            RunStatus::AwaitingApproval => "awaiting_approval",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Rejected => "rejected",
            RunStatus::Aborted => "aborted",
        }
    }
}

/// What `POST /agent/run` asks for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunRequest {
    pub signal: String,
    pub resource: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub telemetry: Option<Value>,
    /// Plan only: never act.
    #[serde(default)]
    pub dry_run: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Observation {
    /// Described state of each resource the run may touch (null: unknown resource).
    pub resources: BTreeMap<String, Value>,
    /// What the observe plugins returned, by plugin name.
    pub plugins: BTreeMap<String, Value>,
}

/// Most bytes an observation may take in the run's state (DynamoDB items hold 400 KB in all).
pub const MAX_OBSERVATION_BYTES: usize = 64 * 1024;

impl Observation {
    /// The observation within `max_bytes` of JSON: the largest parts are replaced, one at a time,
    /// by a note of their size, until it fits. A run's state stays storable however many series a
    /// resource has or however much a plugin returns.
    pub fn bounded(mut self, max_bytes: usize) -> Self {
        let size = |v: &Value| serde_json::to_vec(v).map_or(0, |b| b.len());
        loop {
            let total = serde_json::to_vec(&self).map_or(0, |b| b.len());
            if total <= max_bytes {
                return self;
            }
            let largest = self
                .plugins
                .iter_mut()
                .chain(self.resources.iter_mut())
                .filter(|(_, v)| !v.get("truncated").is_some_and(|t| t == true))
                .max_by_key(|(_, v)| size(v));
            match largest {
                Some((name, v)) => {
                    let bytes = size(v);
                    tracing::warn!(part = %name, bytes, "observation part dropped to keep the run's state storable");
                    *v = json!({"truncated": true, "bytes": bytes});
                }
                None => return Observation::default(),
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    pub id: String,
    pub version: u32,
    pub score: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub wpk_id: String,
    pub version: u32,
    pub sha256: String,
    pub score: f64,
    pub candidates: Vec<Candidate>,
    /// The trained model whose probabilities ranked the candidates (none: outcome history).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedAction {
    pub step: usize,
    pub adapter: String,
    pub action: String,
    pub target: String,
    pub args: serde_json::Map<String, Value>,
    /// What the dry-run says will change (null when the WPK skips its dry-run).
    pub change: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub actions: Vec<PlannedAction>,
    /// sha256 of the canonical described state of every target, before acting.
    pub before_digest: String,
    /// sha256 over the WPK, the planned actions and the before-state digest; approvals name it.
    pub sha256: String,
    pub dry_run_performed: bool,
}

impl Plan {
    pub fn digest(wpk: (&str, u32, &str), actions: &[PlannedAction], before_digest: &str) -> String {
        let doc = json!({
            "wpk": {"id": wpk.0, "version": wpk.1, "sha256": wpk.2},
            "actions": actions,
            "before_digest": before_digest,
        });
        sha256_hex(&canonical_json(&doc))
    }
}

/// sha256 of the canonical form of described states.
pub fn state_digest(states: &BTreeMap<String, Value>) -> String {
    sha256_hex(&canonical_json(&serde_json::to_value(states).unwrap_or(Value::Null)))
}

/// An approval as the run shows it. Only its `evidence` counts: a signed run approval (or, when
/// `standing`, the WPK version's signed standing approval), checked before anything acts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    pub approver: String,
    pub justification: String,
    pub plan_sha256: String,
    pub at: String,
    /// A standing approval of an `auto` WPK, not a human decision on this run.
    pub standing: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<naksha_contracts::signing::Sealed>,
}

/// An act that happened but whose audit record has not been written yet: the run is not done
/// until it is; the worker keeps retrying the append.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditPending {
    /// The act's receipts (idempotency keys) that the record will name.
    pub receipts: Vec<String>,
    pub attempts: u32,
    pub last_error: String,
    pub since: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Receipt {
    pub idempotency_key: String,
    pub step: usize,
    pub adapter: String,
    pub action: String,
    pub target: String,
    pub result: Value,
    pub at: String,
    /// True when the side effect had already happened and the stored receipt was reused.
    #[serde(default)]
    pub reused: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verification {
    pub ok: bool,
    pub detail: String,
    pub after_digest: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    pub status: RunStatus,
    pub reason: String,
}

/// Everything a run knows. Serialised whole into the run item after every step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunState {
    pub run_id: String,
    pub tenant: TenantId,
    pub requested_by: String,
    pub request: RunRequest,
    pub status: RunStatus,
    /// The node to run next when the run is queued or resumed.
    pub cursor: Option<String>,
    pub steps_taken: u32,
    #[serde(default)]
    pub observation: Option<Observation>,
    #[serde(default)]
    pub decision: Option<Decision>,
    #[serde(default)]
    pub plan: Option<Plan>,
    #[serde(default)]
    pub approval: Option<Approval>,
    /// Set by the gate when the resource changed since the plan was made.
    #[serde(default)]
    pub replan: bool,
    #[serde(default)]
    pub receipts: Vec<Receipt>,
    #[serde(default)]
    pub verification: Option<Verification>,
    #[serde(default)]
    pub outcome: Option<Outcome>,
    #[serde(default)]
    pub rejection: Option<Approval>,
    /// Sequence number of this run's audit record, once it acted.
    #[serde(default)]
    pub audit_seq: Option<u64>,
    /// Why an approval on record was not accepted as evidence (the run waits for a person).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_refused: Option<String>,
    /// Set while an act waits for its audit record to be written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit_pending: Option<AuditPending>,
    /// When each graph node first completed (`decide`, `gate`, `act`, …): what a chaos
    /// experiment times the agent by.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub milestones: std::collections::BTreeMap<String, String>,
    /// The W3C `traceparent` of what started the run (P-4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl RunState {
    pub fn new(run_id: String, tenant: TenantId, requested_by: String, request: RunRequest, now: String) -> Self {
        Self {
            run_id,
            tenant,
            requested_by,
            request,
            status: RunStatus::Queued,
            cursor: None,
            steps_taken: 0,
            observation: None,
            decision: None,
            plan: None,
            approval: None,
            replan: false,
            receipts: Vec::new(),
            verification: None,
            outcome: None,
            rejection: None,
            audit_seq: None,
            approval_refused: None,
            audit_pending: None,
            milestones: std::collections::BTreeMap::new(),
            trace: None,
            created_at: now.clone(),
            updated_at: now,
        }
    }

    /// Conclude the run (the record node makes it the status).
    pub fn conclude(&mut self, status: RunStatus, reason: impl Into<String>) {
        if self.outcome.is_none() {
            self.outcome = Some(Outcome { status, reason: reason.into() });
        }
    }

    /// What the trainer learns from this run: only a run that acted (it has an audit record)
    /// and then ended in success or failure.
    pub fn training_outcome(&self) -> Option<RunOutcome> {
        let audit_seq = self.audit_seq?;
        let succeeded = match self.status {
            RunStatus::Succeeded => true,
            RunStatus::Failed => false,
            _ => return None,
        };
        let decision = self.decision.as_ref()?;
        Some(RunOutcome {
            run_id: self.run_id.clone(),
            signal: self.request.signal.clone(),
            wpk_id: decision.wpk_id.clone(),
            wpk_version: decision.version,
            succeeded,
            audit_seq,
            finished_at: self.updated_at.clone(),
        })
    }

    /// How far the run has come, as other services read it (a chaos experiment's timeline).
    pub fn progress(&self) -> RunProgress {
        let signal_raised_at =
            self.request.telemetry.as_ref().and_then(|t| t["signal"]["raised_at"].as_str()).map(str::to_owned);
        let approval = self.approval.as_ref();
        RunProgress {
            run_id: self.run_id.clone(),
            signal: self.request.signal.clone(),
            resource: self.request.resource.clone(),
            status: self.status.as_str().to_owned(),
            requested_by: self.requested_by.clone(),
            signal_raised_at,
            created_at: self.created_at.clone(),
            updated_at: self.updated_at.clone(),
            wpk_id: self.decision.as_ref().map(|d| d.wpk_id.clone()),
            wpk_version: self.decision.as_ref().map(|d| d.version),
            milestones: self.milestones.clone(),
            approved_at: approval.map(|a| a.at.clone()),
            approved_by: approval.map(|a| a.approver.clone()),
            standing_approval: approval.is_some_and(|a| a.standing),
            acted_at: self.receipts.first().map(|r| r.at.clone()),
            reason: self.outcome.as_ref().map(|o| o.reason.clone()),
            audit_seq: self.audit_seq,
            trace_id: self.trace.as_deref().and_then(naksha_contracts::trace::trace_id_of),
        }
    }

    /// sha256 of the state, recorded with each checkpoint.
    pub fn digest(&self) -> String {
        sha256_hex(&canonical_json(&serde_json::to_value(self).unwrap_or(Value::Null)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_digest_covers_actions_and_before_state() {
        let action = PlannedAction {
            step: 0,
            adapter: "sim".into(),
            action: "restart".into(),
            target: "deployment/a".into(),
            args: Default::default(),
            change: json!({"healthy": [false, true]}),
        };
        let base = Plan::digest(("w", 1, "abc"), std::slice::from_ref(&action), "before");
        assert_eq!(base, Plan::digest(("w", 1, "abc"), std::slice::from_ref(&action), "before"));
        assert_ne!(base, Plan::digest(("w", 1, "abc"), std::slice::from_ref(&action), "before-2"));
        assert_ne!(base, Plan::digest(("w", 2, "abc"), std::slice::from_ref(&action), "before"));
        let mut other = action.clone();
        other.args.insert("replicas".into(), json!(3));
        assert_ne!(base, Plan::digest(("w", 1, "abc"), &[other], "before"));
    }

    #[test]
    fn only_runs_that_acted_and_ended_teach_the_trainer() {
        let req = RunRequest {
            signal: "anomaly.cpu".into(),
            resource: "deployment/a".into(),
            telemetry: None,
            dry_run: false,
        };
        let mut st = RunState::new("r1".into(), TenantId::from_record("acme").unwrap(), "u".into(), req, "t0".into());
        st.decision = Some(Decision {
            wpk_id: "shed".into(),
            version: 2,
            sha256: "x".into(),
            score: 0.5,
            candidates: vec![],
            model_id: None,
        });
        st.status = RunStatus::Succeeded;
        assert_eq!(st.training_outcome(), None, "never acted: nothing to learn");
        st.audit_seq = Some(4);
        st.updated_at = "t1".into();
        let o = st.training_outcome().unwrap();
        assert_eq!(
            (o.wpk_id.as_str(), o.wpk_version, o.succeeded, o.audit_seq, o.finished_at.as_str()),
            ("shed", 2, true, 4, "t1")
        );
        st.status = RunStatus::Failed;
        assert!(!st.training_outcome().unwrap().succeeded);
        st.status = RunStatus::Rejected;
        assert_eq!(st.training_outcome(), None);
    }

    #[test]
    fn an_observation_is_bounded_by_dropping_its_largest_parts() {
        let big: Vec<Value> = (0..5000).map(|i| json!({"name": format!("series-{i}"), "mean": i})).collect();
        let obs = Observation {
            resources: BTreeMap::from([("deployment/a".to_owned(), json!({"healthy": false}))]),
            plugins: BTreeMap::from([
                ("telemetry".to_owned(), json!({"series": big})),
                ("request".to_owned(), json!({"k": 1})),
            ]),
        };
        let bounded = obs.bounded(MAX_OBSERVATION_BYTES);
        assert!(serde_json::to_vec(&bounded).unwrap().len() <= MAX_OBSERVATION_BYTES);
        assert_eq!(bounded.plugins["telemetry"]["truncated"], true);
        assert_eq!(bounded.plugins["request"], json!({"k": 1}), "small parts stay");
        assert_eq!(bounded.resources["deployment/a"], json!({"healthy": false}));
    }

    #[test]
    fn statuses_serialise_as_the_api_names_them() {
        assert_eq!(serde_json::to_value(RunStatus::AwaitingApproval).unwrap(), "awaiting_approval");
        assert!(RunStatus::Aborted.is_final() && !RunStatus::AwaitingApproval.is_final());
    }
}
