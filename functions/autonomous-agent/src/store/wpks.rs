//! Signed playbook versions; a version is immutable once written. The item format is
//! naksha-core's `wpks` (the federation hub reads it too).
//!
//! | attribute | value |
//! |---|---|
//! | `pk` | the tenant |
//! | `sk` | [`wpk_sk`] = `<id>#<version, 10 digits>` |
//! | `id`, `version`, `doc`, `sha256`, `signature`, `key_id` | the canonical document, its digest and KMS signature |
//! | `created_at`, `created_by` | who registered it |
//! | `signals`, `resources` | `match` copied out for choosing candidates (never trusted for acting) |
//! | `standing_approval` | the signed standing approval (JSON of a `Sealed`), set by `POST /wpk/{id}/promote` |

use aws_sdk_dynamodb::types::AttributeValue;
use naksha_contracts::TenantId;
use naksha_core::ddb::{condition_failed, n, query_all, s};

use super::{DynamoAgentStore, failed, json_of};
use crate::ports::{StoreError, WpkStore};
use crate::wpk::StoredWpk;
use naksha_contracts::signing::Sealed;

/// The sort key of a WPK version is naksha-contracts' (the federation hub reads the registry).
pub use naksha_contracts::wpk::wpk_sk;

use naksha_core::wpks::stored_wpk as parse_wpk;

impl WpkStore for DynamoAgentStore {
    async fn put_wpk(&self, tenant: &TenantId, w: &StoredWpk) -> Result<(), StoreError> {
        let mut put = self
            .db
            .put_item()
            .table_name(&self.t.wpks)
            .item("pk", s(tenant.as_str()))
            .item("sk", s(wpk_sk(&w.id, w.version)))
            .item("id", s(&w.id))
            .item("version", n(w.version))
            .item("doc", s(&w.doc))
            .item("sha256", s(&w.sha256))
            .item("signature", s(&w.signature))
            .item("key_id", s(&w.key_id))
            .item("created_at", s(&w.created_at))
            .item("created_by", s(&w.created_by))
            .item("signals", AttributeValue::L(w.signals.iter().map(s).collect()))
            .item("resources", AttributeValue::L(w.resources.iter().map(s).collect()))
            .condition_expression("attribute_not_exists(sk)");
        if let Some(a) = &w.standing_approval {
            put = put.item("standing_approval", s(json_of(a)?));
        }
        match put.send().await {
            Ok(_) => Ok(()),
            Err(e) if condition_failed(&e) => Err(StoreError::Exists),
            Err(e) => Err(failed(e)),
        }
    }

    async fn get_wpk(&self, tenant: &TenantId, id: &str, version: u32) -> Result<Option<StoredWpk>, StoreError> {
        let out = self
            .db
            .get_item()
            .table_name(&self.t.wpks)
            .key("pk", s(tenant.as_str()))
            .key("sk", s(wpk_sk(id, version)))
            .consistent_read(true)
            .send()
            .await
            .map_err(failed)?;
        Ok(out.item().and_then(parse_wpk))
    }

    async fn list_wpks(&self, tenant: &TenantId) -> Result<Vec<StoredWpk>, StoreError> {
        let query = self
            .db
            .query()
            .table_name(&self.t.wpks)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(tenant.as_str()));
        let items = query_all(query).await?;
        Ok(items.iter().filter_map(parse_wpk).collect())
    }

    async fn set_standing_approval(
        &self,
        tenant: &TenantId,
        id: &str,
        version: u32,
        a: &Sealed,
    ) -> Result<(), StoreError> {
        match self
            .db
            .update_item()
            .table_name(&self.t.wpks)
            .key("pk", s(tenant.as_str()))
            .key("sk", s(wpk_sk(id, version)))
            .update_expression("SET standing_approval = :a")
            .condition_expression("attribute_exists(sk)")
            .expression_attribute_values(":a", s(json_of(a)?))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if condition_failed(&e) => Err(StoreError::NotFound),
            Err(e) => Err(failed(e)),
        }
    }

    async fn withdraw_standing_approval(&self, tenant: &TenantId, id: &str, version: u32) -> Result<(), StoreError> {
        match self
            .db
            .update_item()
            .table_name(&self.t.wpks)
            .key("pk", s(tenant.as_str()))
            .key("sk", s(wpk_sk(id, version)))
            .update_expression("REMOVE standing_approval")
            .condition_expression("attribute_exists(sk)")
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if condition_failed(&e) => Err(StoreError::NotFound),
            Err(e) => Err(failed(e)),
        }
    }
}
