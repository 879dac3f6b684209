//! Runs: the message that starts or resumes one (the agent's API and the telemetry consumer put it
//! on the runs stream), and the outcome of a finished run that acted (what the trainer learns from).
//!
//! | record | where | key |
//! |---|---|---|
//! | [`RunMessage`] | Kinesis `naksha.agent-runs` | partition key [`RunMessage::partition_key`] = `<tenant>/<resource>` |
//! | run item | DynamoDB `naksha.runs` (written by the agent) | `pk` = [`run_pk`] = `<tenant>#<run id>`, `sk` = `run` |
//! | [`RunOutcome`] | attribute `outcome` of the run item, once a run that acted has ended | read through the `by_tenant` index |
//! | [`RunProgress`] | attribute `progress` of the run item, always | read through the `by_tenant` index (chaos experiments time the agent by it) |

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::identity::TenantId;

/// Start or resume a run. Runs on one resource share a partition key, so they are processed in
/// order, never at once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunMessage {
    pub tenant: TenantId,
    pub run_id: String,
    /// Present when the run does not exist yet: the worker creates it (idempotently, by id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<RunStart>,
    /// How often this message was put back after a failure that a retry could fix; the worker
    /// gives up (the run fails with the reason) after a few, so it never blocks the shard.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub attempt: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// What a run created from a message is about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunStart {
    pub signal: String,
    pub resource: String,
    pub requested_by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub telemetry: Option<Value>,
    /// The W3C `traceparent` of what started it (the ingest request behind a signal, or the
    /// `POST /agent/run` request): the run's steps log its trace id (P-4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<String>,
}

impl RunMessage {
    /// The stream partition key for a run on `resource` (Kinesis allows 256 characters).
    pub fn partition_key(tenant: &TenantId, resource: &str) -> String {
        format!("{tenant}/{resource}").chars().take(256).collect()
    }

    /// Decode a message from the stream; a message that does not decode is poison, not a retry.
    pub fn decode(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

/// The run item's partition key.
pub fn run_pk(tenant: &TenantId, run_id: &str) -> String {
    tenant.key(&[run_id])
}

/// Name of the run item attribute that holds its [`RunOutcome`] as JSON.
pub const OUTCOME_ATTRIBUTE: &str = "outcome";

/// How a run that acted (and so has an audit record) ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunOutcome {
    pub run_id: String,
    pub signal: String,
    pub wpk_id: String,
    pub wpk_version: u32,
    /// `true`: acted and verified; `false`: acted and failed.
    pub succeeded: bool,
    /// The audit record of the act.
    pub audit_seq: u64,
    /// RFC 3339.
    pub finished_at: String,
}

/// Name of the run item attribute that holds its [`RunProgress`] as JSON.
pub const PROGRESS_ATTRIBUTE: &str = "progress";

/// How far a run has come: written with every change of the run, so a reader (a chaos
/// experiment) can time detection, decision, approval and action without the agent's internals.
/// Times are RFC 3339 as the agent writes them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunProgress {
    pub run_id: String,
    pub signal: String,
    pub resource: String,
    /// `queued`, `running`, `awaiting_approval`, `succeeded`, `failed`, `rejected`, `aborted`.
    pub status: String,
    /// Who started it: a person, `detector`, or `cluster-warning`.
    pub requested_by: String,
    /// When the signal that started it was raised (runs started by a signal).
    #[serde(default)]
    pub signal_raised_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    #[serde(default)]
    pub wpk_id: Option<String>,
    #[serde(default)]
    pub wpk_version: Option<u32>,
    /// When each graph node first completed (`decide`, `gate`, `act`, `verify`, …).
    #[serde(default)]
    pub milestones: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub approved_at: Option<String>,
    #[serde(default)]
    pub approved_by: Option<String>,
    /// The approval was a standing one (an `auto` WPK): no person decided this run.
    #[serde(default)]
    pub standing_approval: bool,
    /// The first act.
    #[serde(default)]
    pub acted_at: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub audit_seq: Option<u64>,
    /// The W3C trace id the run belongs to (P-4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_a_bad_tenant_does_not_decode() {
        let m = RunMessage {
            tenant: TenantId::from_record("acme").unwrap(),
            run_id: "r1".into(),
            attempt: 0,
            start: Some(RunStart {
                signal: "anomaly.cpu".into(),
                resource: "deployment/a".into(),
                requested_by: "detector".into(),
                telemetry: Some(serde_json::json!({"score": 0.9})),
                trace: None,
            }),
        };
        let bytes = serde_json::to_vec(&m).unwrap();
        assert_eq!(RunMessage::decode(&bytes).unwrap(), m);
        assert!(RunMessage::decode(br#"{"tenant":"ACME#x","run_id":"r1"}"#).is_err());
        let resume = RunMessage { start: None, ..m.clone() };
        assert!(!String::from_utf8(serde_json::to_vec(&resume).unwrap()).unwrap().contains("start"));
        let again = RunMessage { attempt: 2, ..m };
        assert_eq!(RunMessage::decode(&serde_json::to_vec(&again).unwrap()).unwrap().attempt, 2);
    }

    #[test]
    fn keys_start_with_the_tenant_and_partition_keys_fit_kinesis() {
        let t = TenantId::from_record("acme").unwrap();
        assert_eq!(run_pk(&t, "r1"), "acme#r1");
        assert_eq!(RunMessage::partition_key(&t, "deployment/a"), "acme/deployment/a");
        assert_eq!(RunMessage::partition_key(&t, &"x".repeat(400)).chars().count(), 256);
    }

    #[test]
    fn outcomes_round_trip() {
        let o = RunOutcome {
            run_id: "r1".into(),
            signal: "anomaly.cpu".into(),
            wpk_id: "shed".into(),
            wpk_version: 2,
            succeeded: true,
            audit_seq: 7,
            finished_at: "2026-11-25T10:00:30.123Z".into(),
        };
        assert_eq!(serde_json::from_str::<RunOutcome>(&serde_json::to_string(&o).unwrap()).unwrap(), o);
    }
}
