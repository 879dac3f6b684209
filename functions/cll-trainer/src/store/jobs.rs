//! Training jobs and their progress.
//!
//! | attribute | value |
//! |---|---|
//! | `pk` | the tenant |
//! | `sk` | the job id |
//! | `doc` | the [`Job`] as JSON |
//! | `status` | queued, running, succeeded, failed |
//! | `expires_at` | TTL: [`JOB_RETENTION_SECS`] after the last write |

use naksha_contracts::TenantId;
use naksha_core::ddb::{condition_failed, get_s, n, s};

use super::failed;
use crate::jobs::Job;
use crate::ports::{JobStore, StoreError};

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

impl JobStore for DynamoJobs {
    async fn create(&self, job: &Job) -> Result<bool, StoreError> {
        self.put(job, true).await
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
