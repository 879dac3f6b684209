//! `naksha.chaos`: chaos runs, the lock each holds on its target, and a tenant's own specs.
//!
//! | item | `pk` | `sk` | attributes |
//! |---|---|---|---|
//! | run | the tenant | [`run_sk`] = `run#<run id>` (ids grow with time) | `doc` (the run, JSON), `stage`, `abort_requested` (set by the API only), `expires_epoch` (TTL, a year) |
//! | target lock | [`lock_pk`] = `<tenant>#lock#<resource>` | `lock` | `run_id`, `until` (epoch s), `expires_epoch` (TTL) |
//! | spec | the tenant | [`spec_sk`] = `spec#<spec id>` | `doc` (the spec, JSON) |

use aws_sdk_dynamodb::types::ReturnValue;
use chrono::{DateTime, Utc};
use naksha_contracts::TenantId;
use naksha_core::aws::describe_error;
use naksha_core::ddb::{Item, condition_failed, get_s, n, query_all, s};

use crate::ports::{Runs, StoreError};
use crate::run::{ChaosRun, Stage};
use crate::specs::Spec;

pub fn run_sk(run_id: &str) -> String {
    format!("run#{run_id}")
}

pub fn lock_pk(tenant: &TenantId, resource: &str) -> String {
    tenant.key(&["lock", resource])
}

pub fn spec_sk(id: &str) -> String {
    format!("spec#{id}")
}

const KEEP_RUNS: i64 = 365 * 24 * 3600;

fn failed<E>(e: aws_sdk_dynamodb::error::SdkError<E>) -> StoreError
where
    E: std::error::Error + aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    StoreError(describe_error(&e))
}

fn json<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError(e.to_string()))
}

fn stage_name(stage: Stage) -> String {
    serde_json::to_value(stage).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

fn run_of(item: &Item) -> Result<ChaosRun, StoreError> {
    let mut run: ChaosRun = serde_json::from_str(get_s(item, "doc").unwrap_or_default())
        .map_err(|e| StoreError(format!("a chaos run item does not decode: {e}")))?;
    // An abort asked for by the API lives beside the document the worker writes.
    if let Some(reason) = get_s(item, "abort_requested") {
        run.abort_requested.get_or_insert_with(|| reason.to_owned());
    }
    Ok(run)
}

#[derive(Debug, Clone)]
pub struct DynamoChaos {
    db: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoChaos {
    pub fn new(db: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self { db, table: table.into() }
    }
}

impl Runs for DynamoChaos {
    async fn create(&self, run: &ChaosRun) -> Result<bool, StoreError> {
        let out = self
            .db
            .put_item()
            .table_name(&self.table)
            .item("pk", s(run.tenant.as_str()))
            .item("sk", s(run_sk(&run.run_id)))
            .item("doc", s(json(run)?))
            .item("stage", s(stage_name(run.stage)))
            .item("expires_epoch", n(run.created_at.timestamp() + KEEP_RUNS))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match out {
            Ok(_) => Ok(true),
            Err(e) if condition_failed(&e) => Ok(false),
            Err(e) => Err(failed(e)),
        }
    }

    async fn load(&self, tenant: &TenantId, run_id: &str) -> Result<Option<ChaosRun>, StoreError> {
        let out = self
            .db
            .get_item()
            .table_name(&self.table)
            .key("pk", s(tenant.as_str()))
            .key("sk", s(run_sk(run_id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(failed)?;
        out.item().map(run_of).transpose()
    }

    async fn save(&self, run: &ChaosRun) -> Result<(), StoreError> {
        // Only the document and its stage: an abort the API recorded meanwhile stays.
        self.db
            .update_item()
            .table_name(&self.table)
            .key("pk", s(run.tenant.as_str()))
            .key("sk", s(run_sk(&run.run_id)))
            .update_expression("SET doc = :doc, stage = :stage")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":doc", s(json(run)?))
            .expression_attribute_values(":stage", s(stage_name(run.stage)))
            .send()
            .await
            .map_err(failed)?;
        Ok(())
    }

    async fn delete(&self, tenant: &TenantId, run_id: &str) -> Result<(), StoreError> {
        self.db
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(tenant.as_str()))
            .key("sk", s(run_sk(run_id)))
            .send()
            .await
            .map_err(failed)?;
        Ok(())
    }

    async fn list(&self, tenant: &TenantId, limit: usize) -> Result<Vec<ChaosRun>, StoreError> {
        let out = self
            .db
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :p)")
            .expression_attribute_values(":pk", s(tenant.as_str()))
            .expression_attribute_values(":p", s("run#"))
            .scan_index_forward(false)
            .limit(i32::try_from(limit).unwrap_or(50))
            .send()
            .await
            .map_err(failed)?;
        out.items().iter().map(run_of).collect()
    }

    async fn request_abort(&self, tenant: &TenantId, run_id: &str, reason: &str) -> Result<bool, StoreError> {
        let out = self
            .db
            .update_item()
            .table_name(&self.table)
            .key("pk", s(tenant.as_str()))
            .key("sk", s(run_sk(run_id)))
            .update_expression("SET abort_requested = if_not_exists(abort_requested, :r)")
            .condition_expression("attribute_exists(pk) AND stage <> :done")
            .expression_attribute_values(":r", s(reason))
            .expression_attribute_values(":done", s(stage_name(Stage::Done)))
            .return_values(ReturnValue::None)
            .send()
            .await;
        match out {
            Ok(_) => Ok(true),
            Err(e) if condition_failed(&e) => Ok(false),
            Err(e) => Err(failed(e)),
        }
    }

    async fn lock(
        &self,
        tenant: &TenantId,
        resource: &str,
        run_id: &str,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let out = self
            .db
            .put_item()
            .table_name(&self.table)
            .item("pk", s(lock_pk(tenant, resource)))
            .item("sk", s("lock"))
            .item("run_id", s(run_id))
            .item("until", n(until.timestamp()))
            .item("expires_epoch", n(until.timestamp()))
            .condition_expression("attribute_not_exists(pk) OR #until < :now OR run_id = :me")
            .expression_attribute_names("#until", "until")
            .expression_attribute_values(":now", n(Utc::now().timestamp()))
            .expression_attribute_values(":me", s(run_id))
            .send()
            .await;
        match out {
            Ok(_) => Ok(true),
            Err(e) if condition_failed(&e) => Ok(false),
            Err(e) => Err(failed(e)),
        }
    }

    async fn unlock(&self, tenant: &TenantId, resource: &str, run_id: &str) -> Result<(), StoreError> {
        let out = self
            .db
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(lock_pk(tenant, resource)))
            .key("sk", s("lock"))
            .condition_expression("run_id = :me")
            .expression_attribute_values(":me", s(run_id))
            .send()
            .await;
        match out {
            Ok(_) => Ok(()),
            // Not ours (any more): nothing to release.
            Err(e) if condition_failed(&e) => Ok(()),
            Err(e) => Err(failed(e)),
        }
    }

    async fn put_spec(&self, tenant: &TenantId, spec: &Spec) -> Result<bool, StoreError> {
        let out = self
            .db
            .put_item()
            .table_name(&self.table)
            .item("pk", s(tenant.as_str()))
            .item("sk", s(spec_sk(&spec.id)))
            .item("doc", s(json(spec)?))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match out {
            Ok(_) => Ok(true),
            Err(e) if condition_failed(&e) => Ok(false),
            Err(e) => Err(failed(e)),
        }
    }

    async fn specs(&self, tenant: &TenantId) -> Result<Vec<Spec>, StoreError> {
        let items = query_all(
            self.db
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :p)")
                .expression_attribute_values(":pk", s(tenant.as_str()))
                .expression_attribute_values(":p", s("spec#")),
        )
        .await?;
        Ok(items.iter().filter_map(|i| get_s(i, "doc").and_then(|d| serde_json::from_str(d).ok())).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_keys_start_with_their_tenant() {
        let (a, b) = (TenantId::from_record("acme").unwrap(), TenantId::from_record("beta").unwrap());
        for resource in ["deployment/x", "beta#lock#x", ""] {
            let k = lock_pk(&a, resource);
            assert_eq!(TenantId::split_key(&k).map(|(t, _)| t), Some(a.clone()));
            assert!(!k.starts_with(&b.key_prefix()));
        }
    }
}
