//! `naksha.agent-state`, read only (the agent writes it): the tenant's kill switch.
//!
//! | `pk` | attributes read |
//! |---|---|
//! | `halt_pk` (naksha-contracts) = `<tenant>#halt` | `reason` |

use naksha_contracts::TenantId;
use naksha_contracts::control::{HALT_REASON, halt_pk};
use naksha_core::ddb::{get_s, s};

use super::failed;
use crate::ports::{HaltSource, StoreError};

#[derive(Debug, Clone)]
pub struct DynamoHalt {
    db: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoHalt {
    pub fn new(db: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self { db, table: table.into() }
    }
}

impl HaltSource for DynamoHalt {
    async fn halted(&self, tenant: &TenantId) -> Result<Option<String>, StoreError> {
        let out = self
            .db
            .get_item()
            .table_name(&self.table)
            .key("pk", s(halt_pk(tenant)))
            .consistent_read(true)
            .send()
            .await
            .map_err(failed)?;
        Ok(out.item().map(|i| get_s(i, HALT_REASON).unwrap_or("halted").to_owned()))
    }
}
