//! `naksha.sim`, the simulation mode's world, as every service that touches it sees it. It stands
//! in for a cluster, so — as with a real cluster's API — more than one service changes it: the
//! agent's `sim` adapter acts on it, the chaos orchestrator injects and reverts faults, and
//! insight-stream's exporter reports on it. Every change is conditional on the document read.
//!
//! | `pk` | attributes |
//! |---|---|
//! | [`sim_pk`] = `<tenant>#<resource>` | `tenant`, `resource`, `doc` (the `SimResource` as JSON), `chaos_target` (`true` on chaos targets: a sparse filter for the exporter) |

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use naksha_act::sim::SimResource;
use naksha_contracts::TenantId;

use crate::ddb::{Item, condition_failed, get_s, s, scan_all};
use crate::{StoreError, aws::describe_error};

pub fn sim_pk(tenant: &TenantId, resource: &str) -> String {
    tenant.key(&[resource])
}

pub fn encode(r: &SimResource) -> Result<String, StoreError> {
    serde_json::to_string(r).map_err(|e| StoreError(e.to_string()))
}

/// The item for a resource.
pub fn item(tenant: &TenantId, resource: &str, r: &SimResource) -> Result<Item, StoreError> {
    let mut item = HashMap::from([
        ("pk".to_owned(), s(sim_pk(tenant, resource))),
        ("tenant".to_owned(), s(tenant.as_str())),
        ("resource".to_owned(), s(resource)),
        ("doc".to_owned(), s(encode(r)?)),
    ]);
    if r.condition.chaos_target {
        item.insert("chaos_target".to_owned(), AttributeValue::Bool(true));
    }
    Ok(item)
}

/// A resource from its item (`None`: not one, or not readable).
pub fn decode(item: &Item) -> Option<(TenantId, String, SimResource)> {
    let tenant = TenantId::from_record(get_s(item, "tenant")?).ok()?;
    let resource = get_s(item, "resource")?.to_owned();
    let doc = serde_json::from_str(get_s(item, "doc")?).ok()?;
    Some((tenant, resource, doc))
}

/// The world's table.
#[derive(Debug, Clone)]
pub struct SimWorld {
    db: aws_sdk_dynamodb::Client,
    table: String,
}

impl SimWorld {
    pub fn new(db: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self { db, table: table.into() }
    }

    pub async fn get(&self, tenant: &TenantId, resource: &str) -> Result<Option<SimResource>, StoreError> {
        let out = self
            .db
            .get_item()
            .table_name(&self.table)
            .key("pk", s(sim_pk(tenant, resource)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError(describe_error(&e)))?;
        Ok(out.item().and_then(decode).map(|(_, _, r)| r))
    }

    pub async fn put(&self, tenant: &TenantId, resource: &str, r: &SimResource) -> Result<(), StoreError> {
        self.db
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item(tenant, resource, r)?))
            .send()
            .await
            .map_err(|e| StoreError(describe_error(&e)))?;
        Ok(())
    }

    /// Replace `before` with `after`; `false` when the resource is not `before` any more.
    pub async fn replace(
        &self,
        tenant: &TenantId,
        resource: &str,
        before: &SimResource,
        after: &SimResource,
    ) -> Result<bool, StoreError> {
        let out = self
            .db
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item(tenant, resource, after)?))
            .condition_expression("doc = :before")
            .expression_attribute_values(":before", s(encode(before)?))
            .send()
            .await;
        match out {
            Ok(_) => Ok(true),
            Err(e) if condition_failed(&e) => Ok(false),
            Err(e) => Err(StoreError(describe_error(&e))),
        }
    }

    /// Every chaos target of every tenant (what the exporter reports on).
    pub async fn chaos_targets(&self) -> Result<Vec<(TenantId, String, SimResource)>, StoreError> {
        let items = scan_all(
            self.db
                .scan()
                .table_name(&self.table)
                .filter_expression("chaos_target = :t")
                .expression_attribute_values(":t", AttributeValue::Bool(true)),
        )
        .await?;
        Ok(items.iter().filter_map(decode).collect())
    }

    /// A tenant's resources.
    pub async fn resources(&self, tenant: &TenantId) -> Result<Vec<(String, SimResource)>, StoreError> {
        let items = scan_all(
            self.db
                .scan()
                .table_name(&self.table)
                .filter_expression("tenant = :t")
                .expression_attribute_values(":t", s(tenant.as_str())),
        )
        .await?;
        Ok(items.iter().filter_map(decode).map(|(_, r, d)| (r, d)).collect())
    }
}
