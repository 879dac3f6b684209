//! `naksha.wpks`, read only (the agent writes it): the signed WPK version a trigger sends.
//!
//! | `pk` | `sk` | attributes read |
//! |---|---|---|
//! | the tenant | `wpk_sk` (naksha-contracts) = `<id>#<version, 10 digits>` | `id`, `version`, `doc`, `sha256`, `signature`, `key_id` |
//!
//! Nothing read here is trusted: the hub verifies the version before it sends it, and every node
//! verifies it again before it acts.

use naksha_contracts::TenantId;
use naksha_contracts::wpk::{StoredWpk, wpk_sk};
use naksha_core::ddb::s;
use naksha_core::wpks::stored_wpk;

use super::failed;
use crate::ports::{StoreError, WpkSource};

#[derive(Debug, Clone)]
pub struct DynamoWpks {
    db: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoWpks {
    pub fn new(db: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self { db, table: table.into() }
    }
}

impl WpkSource for DynamoWpks {
    async fn wpk(&self, tenant: &TenantId, id: &str, version: Option<u32>) -> Result<Option<StoredWpk>, StoreError> {
        let query = self
            .db
            .query()
            .table_name(&self.table)
            .consistent_read(true)
            .expression_attribute_values(":pk", s(tenant.as_str()));
        let query = match version {
            Some(v) => query
                .key_condition_expression("pk = :pk AND sk = :sk")
                .expression_attribute_values(":sk", s(wpk_sk(id, v))),
            // Versions sort numerically under `<id>#`: the last one is the latest.
            None => query
                .key_condition_expression("pk = :pk AND begins_with(sk, :id)")
                .expression_attribute_values(":id", s(format!("{id}#")))
                .scan_index_forward(false)
                .limit(1),
        };
        let out = query.send().await.map_err(failed)?;
        Ok(out.items().first().and_then(stored_wpk).filter(|w| w.id == id))
    }
}
