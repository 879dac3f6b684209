//! The simulated cluster (simulation mode's world), with each act's receipt in the agent-state
//! table, written in the same transaction as the change.
//!
//! | table | `pk` | attributes |
//! |---|---|---|
//! | `naksha.sim` | `sim_pk` = `<tenant>#<resource>` | naksha-core's `sim` item format (the chaos orchestrator and insight-stream's exporter use it too) |
//! | `naksha.agent-state` | [`receipt_pk`] = `<tenant>#receipt#<idempotency key>` | `done`, `result`, `at` |

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use naksha_contracts::TenantId;
use naksha_core::aws::describe_error;
use naksha_core::ddb::{get_s, s, transaction_cancelled};
use serde_json::Value;

use super::agent_state::receipt_pk;
use crate::act::sim::{SimResource, SimStore};
use crate::ports::ActError;

pub use naksha_core::sim::sim_pk;

#[derive(Debug, Clone)]
pub struct DynamoSim {
    db: aws_sdk_dynamodb::Client,
    table: String,
    state_table: String,
    /// Plain reads and writes of the world are naksha-core's; the transaction with the receipt is ours.
    world: naksha_core::sim::SimWorld,
}

impl DynamoSim {
    pub fn new(db: aws_sdk_dynamodb::Client, table: impl Into<String>, state_table: impl Into<String>) -> Self {
        let table = table.into();
        let world = naksha_core::sim::SimWorld::new(db.clone(), table.clone());
        Self { db, table, state_table: state_table.into(), world }
    }
}

fn encode(r: &SimResource) -> Result<String, ActError> {
    naksha_core::sim::encode(r).map_err(|e| ActError::Refused(e.to_string()))
}

fn unavailable<E>(e: aws_sdk_dynamodb::error::SdkError<E>) -> ActError
where
    E: std::error::Error + aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    ActError::Unavailable(describe_error(&e))
}

impl SimStore for DynamoSim {
    async fn get(&self, tenant: &TenantId, resource: &str) -> Result<Option<SimResource>, ActError> {
        self.world.get(tenant, resource).await.map_err(|e| ActError::Unavailable(e.to_string()))
    }

    async fn put(&self, tenant: &TenantId, resource: &str, r: &SimResource) -> Result<(), ActError> {
        self.world.put(tenant, resource, r).await.map_err(|e| ActError::Unavailable(e.to_string()))
    }

    async fn apply(
        &self,
        tenant: &TenantId,
        resource: &str,
        before: &SimResource,
        after: &SimResource,
        key: &str,
        receipt: &Value,
    ) -> Result<(Value, bool), ActError> {
        let invalid = |e: aws_sdk_dynamodb::error::BuildError| ActError::Refused(e.to_string());
        let update = Update::builder()
            .table_name(&self.table)
            .key("pk", s(sim_pk(tenant, resource)))
            .update_expression("SET doc = :after")
            .condition_expression("doc = :before")
            .expression_attribute_values(":after", s(encode(after)?))
            .expression_attribute_values(":before", s(encode(before)?))
            .build()
            .map_err(invalid)?;
        let put_receipt = Put::builder()
            .table_name(&self.state_table)
            .item("pk", s(receipt_pk(tenant, key)))
            .item("done", AttributeValue::Bool(true))
            .item("result", s(receipt.to_string()))
            .item("at", s(chrono::Utc::now().to_rfc3339()))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(invalid)?;
        let result = self
            .db
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(update).build())
            .transact_items(TransactWriteItem::builder().put(put_receipt).build())
            .send()
            .await;
        match result {
            Ok(_) => Ok((receipt.clone(), false)),
            Err(e) if transaction_cancelled(&e) => {
                // Either the receipt exists (the act already happened: reuse it) or the
                // resource moved under us (refuse).
                let stored = self
                    .db
                    .get_item()
                    .table_name(&self.state_table)
                    .key("pk", s(receipt_pk(tenant, key)))
                    .consistent_read(true)
                    .send()
                    .await
                    .map_err(unavailable)?;
                match stored.item().and_then(|i| get_s(i, "result")).and_then(|r| serde_json::from_str(r).ok()) {
                    Some(previous) => Ok((previous, true)),
                    None => Err(ActError::Refused("the resource changed while acting".into())),
                }
            }
            Err(e) => Err(ActError::Unavailable(describe_error(&e))),
        }
    }
}
