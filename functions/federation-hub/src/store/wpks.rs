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
use naksha_core::ddb::{Item, get_n, get_s, s};

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

fn stored(item: &Item) -> Option<StoredWpk> {
    Some(StoredWpk {
        id: get_s(item, "id")?.to_owned(),
        version: get_n(item, "version")?,
        doc: get_s(item, "doc")?.to_owned(),
        sha256: get_s(item, "sha256")?.to_owned(),
        signature: get_s(item, "signature")?.to_owned(),
        key_id: get_s(item, "key_id")?.to_owned(),
        created_at: get_s(item, "created_at").unwrap_or_default().to_owned(),
        created_by: get_s(item, "created_by").unwrap_or_default().to_owned(),
        standing_approval: None,
        signals: Vec::new(),
        resources: Vec::new(),
    })
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
        Ok(out.items().first().and_then(stored).filter(|w| w.id == id))
    }
}
