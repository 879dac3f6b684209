//! `naksha.agent-state`, read only (the agent writes it): the tenant's kill switch.
//!
//! | `pk` | attributes read |
//! |---|---|
//! | `halt_pk` (naksha-contracts) = `<tenant>#halt` | `reason` |

use crate::ports::{HaltSource, StoreError};
use naksha_contracts::TenantId;

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
        naksha_core::views::halted(&self.db, &self.table, tenant).await
    }
}
