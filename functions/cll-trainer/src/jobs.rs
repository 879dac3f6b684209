//! Training jobs: what `POST /models/train` and the hourly schedule ask for, and how far a job has got.

use naksha_contracts::TenantId;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const QUEUED: &str = "queued";
pub const RUNNING: &str = "running";
pub const SUCCEEDED: &str = "succeeded";
pub const FAILED: &str = "failed";

/// Default training window when a request or the schedule names none (one week).
pub const DEFAULT_WINDOW_HOURS: u32 = 168;
pub const MAX_WINDOW_HOURS: u32 = 720;

/// How long a tenant's training slot is held at most, should its job never finish (a lost
/// message): longer than a job can take through all its attempts (3 × 15 minutes) and the queue.
pub const SLOT_SECS: i64 = 2 * 3600;

/// Deliveries of one job that may start training. A job that was delivered again this often
/// without finishing (its worker timed out or crashed each time) is failed on its next delivery
/// instead of blocking the jobs shard once more.
pub const MAX_ATTEMPTS: u32 = 2;

/// A training job as stored in `naksha.jobs` and shown by `GET /jobs/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub job_id: String,
    pub tenant: TenantId,
    pub kind: String,
    pub status: String,
    pub stage: String,
    pub progress: f64,
    pub requested_by: String,
    pub requested_at: String,
    /// Training window: the `window_hours` before `window_to` (minute, fixed at request time so
    /// a redelivered job trains on the same data).
    pub window_hours: u32,
    pub window_to_minute: i64,
    pub updated_at: String,
    #[serde(default)]
    pub result: Option<Value>,
    #[serde(default)]
    pub error: Option<String>,
    /// Deliveries that started this job (see [`MAX_ATTEMPTS`]).
    #[serde(default)]
    pub attempts: u32,
}

impl Job {
    /// A new, queued job for `tenant`, fixed to the window ending at `to_minute`.
    pub fn new(
        tenant: &TenantId,
        job_id: String,
        kind: &str,
        requested_by: &str,
        window_hours: u32,
        to_minute: i64,
    ) -> Self {
        let at = now();
        Self {
            job_id,
            tenant: tenant.clone(),
            kind: kind.to_owned(),
            status: QUEUED.into(),
            stage: "queued".into(),
            progress: 0.0,
            requested_by: requested_by.to_owned(),
            requested_at: at.clone(),
            window_hours,
            window_to_minute: to_minute,
            updated_at: at,
            result: None,
            error: None,
            attempts: 0,
        }
    }

    pub fn is_final(&self) -> bool {
        self.status == SUCCEEDED || self.status == FAILED
    }
}

/// Whether `id` could be a job id (checked before any lookup).
pub fn is_job_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
}

/// The message on the jobs stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobMessage {
    pub tenant: TenantId,
    pub job_id: String,
}

pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_jobs_are_queued_with_their_window_fixed() {
        let j = Job::new(&TenantId::from_record("acme").unwrap(), "job-1".into(), "on_demand", "ada", 24, 29_000_000);
        assert_eq!((j.status.as_str(), j.progress, j.window_hours, j.window_to_minute), (QUEUED, 0.0, 24, 29_000_000));
        assert!(!j.is_final());
        let back: Job = serde_json::from_str(&serde_json::to_string(&j).unwrap()).unwrap();
        assert_eq!(back, j);
    }

    #[test]
    fn job_ids_are_checked_before_any_lookup() {
        assert!(is_job_id("job-0193a1b2c3d4") && is_job_id("sched-20261125T16"));
        assert!(!is_job_id("") && !is_job_id("a/b") && !is_job_id(&"x".repeat(65)));
    }
}
