//! The DynamoDB and Kinesis adapters of the agent's ports, one file per table or stream; each
//! opens with its key table. Every tenant-owned key starts with the tenant (P-5) and is built
//! by one function per item type.
//!
//! | file | what | written by |
//! |---|---|---|
//! | [`runs`] | `naksha.runs`: runs and their step checkpoints | the agent |
//! | [`wpks`] | `naksha.wpks`: signed playbook versions | the agent |
//! | [`audit`] | `naksha.audit`: the hash-chained audit log | the agent |
//! | [`agent_state`] | `naksha.agent-state`: kill switch, rate-limit slots, outcome counts, act receipts | the agent |
//! | [`sim`] | `naksha.sim`: the simulated cluster (simulation mode) | the agent |
//! | [`runs_stream`] | Kinesis `naksha.agent-runs` | the agent (and insight-stream's signals) |
//! | [`aggregates`] | `naksha.aggregates`, read only | insight-stream |

pub mod agent_state;
pub mod aggregates;
pub mod audit;
pub mod runs;
pub mod runs_stream;
pub mod sim;
pub mod wpks;

pub use aggregates::DynamoAggregateQuery;
pub use runs_stream::KinesisRunQueue;
pub use sim::DynamoSim;

use naksha_core::aws::describe_error;
use naksha_core::config::ConfigReader;

use crate::ports::StoreError;

/// Names of the agent's tables.
#[derive(Debug, Clone)]
pub struct Tables {
    pub runs: String,
    pub wpks: String,
    pub audit: String,
    pub state: String,
}

impl Tables {
    /// `RUNS_TABLE`, `WPKS_TABLE`, `AUDIT_TABLE`, `AGENT_STATE_TABLE`.
    pub fn from_config(r: &mut ConfigReader) -> Self {
        Self {
            runs: r.required("RUNS_TABLE"),
            wpks: r.required("WPKS_TABLE"),
            audit: r.required("AUDIT_TABLE"),
            state: r.required("AGENT_STATE_TABLE"),
        }
    }
}

/// The agent's own tables behind every store port (runs, WPKs, audit, control, receipts).
#[derive(Debug, Clone)]
pub struct DynamoAgentStore {
    db: aws_sdk_dynamodb::Client,
    t: Tables,
    /// Signs the audit checkpoint of every append (KMS, the audit key); a store without one
    /// refuses to append.
    audit_signer: Option<naksha_core::signing::KmsSigner>,
}

impl DynamoAgentStore {
    pub fn new(db: aws_sdk_dynamodb::Client, tables: Tables) -> Self {
        Self { db, t: tables, audit_signer: None }
    }

    /// The same store, able to append to the audit chain.
    pub fn with_audit_signer(mut self, signer: naksha_core::signing::KmsSigner) -> Self {
        self.audit_signer = Some(signer);
        self
    }
}

/// An SDK error as the ports see it: a request DynamoDB refuses as invalid (an item over the
/// size limit, a number it cannot store) is `Rejected` — retrying cannot help — anything else
/// `Failed`.
fn failed<E>(e: aws_sdk_dynamodb::error::SdkError<E>) -> StoreError
where
    E: std::error::Error + aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    if naksha_core::ddb::rejected(&e) {
        StoreError::Rejected(describe_error(&e))
    } else {
        StoreError::Failed(describe_error(&e))
    }
}

fn json_of<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Failed(e.to_string()))
}

fn built<T, E: std::fmt::Display>(r: Result<T, E>) -> Result<T, StoreError> {
    r.map_err(|e| StoreError::Failed(e.to_string()))
}

#[cfg(test)]
mod tests {
    use naksha_contracts::TenantId;
    use naksha_contracts::audit::run_marker_pk;
    use naksha_contracts::runs::run_pk;
    use proptest::prelude::*;

    use super::sim::sim_pk;

    proptest! {
        /// The run, audit-marker and sim keys of one tenant never carry another's prefix (the
        /// control keys are checked in `agent_state`; WPK and audit items use the bare tenant).
        #[test]
        fn no_key_function_can_name_another_tenant(
            a in "[a-z0-9][a-z0-9_-]{0,16}",
            b in "[a-z0-9][a-z0-9_-]{0,16}",
            part in ".{0,40}",
        ) {
            let (ta, tb) = (TenantId::from_record(&a).unwrap(), TenantId::from_record(&b).unwrap());
            for key in [run_pk(&ta, &part), run_marker_pk(&ta, &part), sim_pk(&ta, &part)] {
                prop_assert_eq!(TenantId::split_key(&key).map(|(t, _)| t), Some(ta.clone()));
                if a != b {
                    prop_assert!(!key.starts_with(&tb.key_prefix()));
                }
            }
        }
    }
}
