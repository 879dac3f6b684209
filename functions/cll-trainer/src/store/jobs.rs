//! Training jobs and their progress.
//!
//! | attribute | value |
//! |---|---|
//! | `pk` | the tenant |
//! | `sk` | the job id |
//! | `doc` | the [`Job`] as JSON |
//! | `status` | queued, running, succeeded, failed |
//! | `expires_at` | TTL: [`JOB_RETENTION_SECS`] after the last write |
//!
//! The tenant's training slot is the item `sk` = [`SLOT_SK`] (not a job id: `#` is never in one),
//! naming the job that holds it (`job_id`) and until when (`held_until`, epoch seconds).

use naksha_contracts::TenantId;
use naksha_core::ddb::{condition_failed, get_s, n, s};

use super::failed;
use crate::jobs::{Job, SLOT_SECS};
use crate::ports::{Created, JobStore, StoreError};

/// The sort key of a tenant's training slot.
pub const SLOT_SK: &str = "#slot";

/// Jobs are kept 30 days (DynamoDB TTL on `expires_at`); versions are kept for good.
pub const JOB_RETENTION_SECS: i64 = 30 * 86_400;

#[derive(Debug, Clone)]
pub struct DynamoJobs {
    db: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoJobs {
    pub fn new(db: aws_sdk_dynamodb::Client, table: String) -> Self {
        Self { db, table }
    }

    async fn put(&self, job: &Job, only_new: bool) -> Result<bool, StoreError> {
        let doc = serde_json::to_string(job).map_err(|e| StoreError(e.to_string()))?;
        let mut put = self
            .db
            .put_item()
            .table_name(&self.table)
            .item("pk", s(job.tenant.as_str()))
            .item("sk", s(&job.job_id))
            .item("doc", s(doc))
            .item("status", s(&job.status))
            .item("expires_at", n(chrono::Utc::now().timestamp() + JOB_RETENTION_SECS));
        if only_new {
            put = put.condition_expression("attribute_not_exists(pk)");
        }
        match put.send().await {
            Ok(_) => Ok(true),
            Err(e) if only_new && condition_failed(&e) => Ok(false),
            Err(e) => Err(failed(e)),
        }
    }
}

impl DynamoJobs {
    /// Take the tenant's slot for `job_id` (free, expired, or held by this same job already).
    /// `Err(holder)` when another job holds it.
    async fn take_slot(&self, tenant: &TenantId, job_id: &str) -> Result<Result<(), String>, StoreError> {
        let now = chrono::Utc::now().timestamp();
        let put = self
            .db
            .put_item()
            .table_name(&self.table)
            .item("pk", s(tenant.as_str()))
            .item("sk", s(SLOT_SK))
            .item("job_id", s(job_id))
            .item("held_until", n(now + SLOT_SECS))
            .item("expires_at", n(now + SLOT_SECS))
            .condition_expression("attribute_not_exists(pk) OR held_until < :now OR job_id = :job")
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":job", s(job_id))
            .send()
            .await;
        match put {
            Ok(_) => Ok(Ok(())),
            Err(e) if condition_failed(&e) => {
                let held = self
                    .db
                    .get_item()
                    .table_name(&self.table)
                    .key("pk", s(tenant.as_str()))
                    .key("sk", s(SLOT_SK))
                    .consistent_read(true)
                    .send()
                    .await
                    .map_err(failed)?;
                Ok(Err(held.item().and_then(|i| get_s(i, "job_id")).unwrap_or_default().to_owned()))
            }
            Err(e) => Err(failed(e)),
        }
    }
}

impl JobStore for DynamoJobs {
    async fn create(&self, job: &Job) -> Result<Created, StoreError> {
        // A repeated schedule event names a job that exists (perhaps finished): it takes no slot.
        if self.get(&job.tenant, &job.job_id).await?.is_some() {
            return Ok(Created::Exists);
        }
        if let Err(holder) = self.take_slot(&job.tenant, &job.job_id).await? {
            return Ok(Created::Busy { job_id: holder });
        }
        if self.put(job, true).await? { Ok(Created::New) } else { Ok(Created::Exists) }
    }

    async fn release(&self, tenant: &TenantId, job_id: &str) -> Result<(), StoreError> {
        let deleted = self
            .db
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(tenant.as_str()))
            .key("sk", s(SLOT_SK))
            .condition_expression("job_id = :job")
            .expression_attribute_values(":job", s(job_id))
            .send()
            .await;
        match deleted {
            Ok(_) => Ok(()),
            // Another job holds it (this one's had expired): nothing to give back.
            Err(e) if condition_failed(&e) => Ok(()),
            Err(e) => Err(failed(e)),
        }
    }

    async fn save(&self, job: &Job) -> Result<(), StoreError> {
        self.put(job, false).await.map(|_| ())
    }

    async fn get(&self, tenant: &TenantId, job_id: &str) -> Result<Option<Job>, StoreError> {
        let out = self
            .db
            .get_item()
            .table_name(&self.table)
            .key("pk", s(tenant.as_str()))
            .key("sk", s(job_id))
            .consistent_read(true)
            .send()
            .await
            .map_err(failed)?;
        out.item()
            .and_then(|i| get_s(i, "doc"))
            .map(|d| serde_json::from_str(d).map_err(|e| StoreError(e.to_string())))
            .transpose()
    }

    async fn delete(&self, tenant: &TenantId, job_id: &str) -> Result<(), StoreError> {
        self.db
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(tenant.as_str()))
            .key("sk", s(job_id))
            .send()
            .await
            .map_err(failed)?;
        Ok(())
    }
}
