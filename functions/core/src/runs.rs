//! The message on the agent's runs stream, shared by everyone who starts or resumes a run: the
//! agent's own API, and the telemetry consumer when a series turns anomalous (D.3).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Start or resume a run. Partition key on the stream: `<tenant>/<resource>`, so runs on one
/// resource are processed in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunMessage {
    pub tenant: String,
    pub run_id: String,
    /// Present when the run does not exist yet: the worker creates it (idempotently, by id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<RunStart>,
}

/// What a run created from a message is about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunStart {
    pub signal: String,
    pub resource: String,
    pub requested_by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub telemetry: Option<Value>,
}

/// Kinesis limits a partition key to 256 characters.
pub fn partition_key(tenant: &str, resource: &str) -> String {
    format!("{tenant}/{resource}").chars().take(256).collect()
}
