//! Running a training job (the jobs-stream worker) and fanning out the hourly schedule: read
//! aggregates and outcomes, train, judge against the champion, sign, register, promote.

use aws_lambda_events::event::kinesis::KinesisEvent;
use naksha_contracts::TenantId;
use naksha_contracts::models::{CHAMPION, StoredModel};
use naksha_contracts::signing::TrustedKeys;
use naksha_core::metrics::CounterStore;
use serde_json::{Value, json};

use crate::jobs::{FAILED, Job, JobMessage, MAX_ATTEMPTS, RUNNING, SUCCEEDED, now};
use crate::ports::{Created, JobQueue, JobStore, Registry, TrainingSource};
use crate::train::{Settings, train};
use naksha_core::signing::Sign;

/// Why a job failed (its `error`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum JobError {
    #[error("{0}")]
    Store(#[from] crate::ports::StoreError),
    #[error("{0}")]
    Train(#[from] crate::train::TrainError),
    #[error("signing the model failed: {0}")]
    Sign(String),
    #[error("training panicked: {0}")]
    Panicked(String),
    #[error("gave up after {0} attempts: the worker stopped before the job finished each time (timeout or crash)")]
    GaveUp(u32),
}

/// The training worker, generic over where it reads, keeps jobs, registers and signs.
#[derive(Debug)]
pub struct Trainer<S, J, R, K, C> {
    pub source: S,
    pub jobs: J,
    pub registry: R,
    pub signer: K,
    pub keys: TrustedKeys,
    pub settings: Settings,
    pub counters: C,
}

impl<S: TrainingSource, J: JobStore, R: Registry, K: Sign, C: CounterStore> Trainer<S, J, R, K, C> {
    /// Process the jobs in a batch of stream records (batch size 1 in the template). A job that
    /// fails is marked failed with its reason; nothing is retried blindly. Returns the sequence
    /// number to retry from when a job could not even be read (the jobs table was down): that
    /// message is kept, not dropped.
    pub async fn handle(&self, event: &KinesisEvent) -> Option<String> {
        for record in &event.records {
            let seq = record.kinesis.sequence_number.clone();
            let Ok(msg) = serde_json::from_slice::<JobMessage>(&record.kinesis.data.0) else {
                tracing::warn!(seq = %seq, "undecodable job message skipped");
                continue;
            };
            if let Err(e) = self.run_job(&msg.tenant, &msg.job_id).await {
                tracing::error!(tenant = %msg.tenant, job_id = %msg.job_id, error = %e, "could not read the job; it will be delivered again");
                return Some(seq);
            }
        }
        None
    }

    async fn save(&self, job: &mut Job, status: &str, stage: &str, progress: f64) {
        job.status = status.to_owned();
        job.stage = stage.to_owned();
        job.progress = progress;
        job.updated_at = now();
        if let Err(e) = self.jobs.save(job).await {
            tracing::warn!(job_id = %job.job_id, error = %e, "could not record job progress");
        }
    }

    /// Run one job to its end. `Err` only when the job could not be read at all.
    pub async fn run_job(&self, tenant: &TenantId, job_id: &str) -> Result<(), crate::ports::StoreError> {
        let Some(mut job) = self.jobs.get(tenant, job_id).await? else {
            tracing::warn!(tenant = %tenant, job_id, "message for an unknown job skipped");
            return Ok(());
        };
        if job.is_final() {
            tracing::info!(job_id, status = %job.status, "duplicate delivery of a finished job skipped");
            return self.release(&job).await;
        }
        job.attempts += 1;
        let outcome = if job.attempts > MAX_ATTEMPTS {
            Err(JobError::GaveUp(job.attempts - 1))
        } else {
            // Count the attempt before training: a worker that dies mid-job has still used it.
            if let Err(e) = self.jobs.save(&job).await {
                tracing::warn!(job_id, error = %e, "could not record the attempt");
            }
            self.execute(&mut job).await
        };
        // The tenant may train again as soon as it can see this job has ended.
        self.release(&job).await?;
        let counts = match outcome {
            Ok(result) => {
                tracing::info!(job_id, result = %result, "training job succeeded");
                let registered = u64::from(result["registered"] == true);
                let promoted = u64::from(result["alias"] == CHAMPION);
                let refused = result["refused"].as_array().map_or(0, Vec::len) as u64;
                job.result = Some(result);
                self.save(&mut job, SUCCEEDED, "done", 1.0).await;
                [
                    ("trainer_jobs_total{status=\"succeeded\"}", 1),
                    ("trainer_models_registered_total", registered),
                    ("trainer_models_promoted_total", promoted),
                    ("trainer_models_refused_total", refused),
                ]
            }
            Err(e) => {
                tracing::error!(job_id, error = %e, "training job failed");
                job.error = Some(e.to_string());
                let (stage, progress) = (job.stage.clone(), job.progress);
                self.save(&mut job, FAILED, &stage, progress).await;
                [
                    ("trainer_jobs_total{status=\"failed\"}", 1),
                    ("trainer_models_registered_total", 0),
                    ("trainer_models_promoted_total", 0),
                    ("trainer_models_refused_total", 0),
                ]
            }
        };
        if let Err(e) = self.counters.add("trainer", &counts).await {
            tracing::warn!(job_id, error = %e, "could not count the job in the fleet-wide metrics");
        }
        Ok(())
    }

    /// The job is over: its tenant may train again. A failure to say so is logged; the slot
    /// expires by itself ([`crate::jobs::SLOT_SECS`]).
    async fn release(&self, job: &Job) -> Result<(), crate::ports::StoreError> {
        if let Err(e) = self.jobs.release(&job.tenant, &job.job_id).await {
            tracing::warn!(job_id = %job.job_id, error = %e, "could not release the tenant's training slot");
        }
        Ok(())
    }

    async fn execute(&self, job: &mut Job) -> Result<Value, JobError> {
        self.save(job, RUNNING, "reading aggregates and run outcomes", 0.1).await;
        let to = job.window_to_minute;
        let from = to - i64::from(job.window_hours) * 60;
        let data = self.source.load(&job.tenant, from, to).await?;
        let alias_before = self.registry.alias(&job.tenant, CHAMPION).await?;
        let loaded = self.registry.load_champion(&job.tenant, &self.keys).await?;
        let refused: Vec<Value> =
            loaded.refused.iter().map(|(id, why)| json!({"model_id": id, "reason": why.to_string()})).collect();
        let champion = loaded.model;

        self.save(job, RUNNING, "training", 0.2).await;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, f64)>();
        let settings = self.settings.clone();
        let created_at = now();
        let champion_for_training = champion.clone();
        let work = tokio::task::spawn_blocking(move || {
            let mut progress = |stage: &str, f: f64| {
                let _ = tx.send((stage.to_owned(), f));
            };
            train(&data, champion_for_training.as_deref().map(|m| &**m), &settings, &created_at, &mut progress)
        });
        while let Some((stage, f)) = rx.recv().await {
            self.save(job, RUNNING, &stage, f).await;
        }
        let trained = work.await.map_err(|e| JobError::Panicked(e.to_string()))??;
        let a = &trained.artifact;
        let summary = json!({
            "model_id": a.model_id,
            "rows": a.window.rows,
            "series": a.window.series,
            "outcomes": a.window.outcomes,
            "metrics": a.metrics,
            "refused": refused,
        });
        if self.registry.get(&job.tenant, &a.model_id).await?.is_some() {
            let mut out = summary;
            out["registered"] = false.into();
            out["reason"] =
                "a version trained on the same data by the same code exists already; nothing new registered".into();
            return Ok(out);
        }

        self.save(job, RUNNING, "signing and registering", 0.9).await;
        let (doc, manifest, bytes) = StoredModel::prepare(a).map_err(|e| JobError::Sign(e.to_string()))?;
        let signature = self.signer.sign(&bytes).await.map_err(|e| JobError::Sign(e.to_string()))?;
        let stored = StoredModel::assemble(doc, manifest, &bytes, signature);
        let created = self.registry.put(&stored).await?;
        let mut out = summary;
        out["registered"] = created.into();
        out["sha256"] = stored.sha256.clone().into();
        if !created {
            out["reason"] = "registered concurrently by another job".into();
            return Ok(out);
        }
        let mut alias = "challenger";
        let mut reason = trained.reason.clone();
        if trained.promote {
            // Conditional on the alias as it was when the champion was loaded: if another job moved
            // it meanwhile, this version was judged against the wrong champion and stays challenger.
            let moved =
                self.registry.move_alias(&job.tenant, CHAMPION, &a.model_id, alias_before.as_ref(), &now()).await?;
            if moved {
                alias = CHAMPION;
            } else {
                reason = format!("{reason}; the champion moved meanwhile, so this version stays challenger");
            }
        }
        out["alias"] = alias.into();
        out["reason"] = reason.into();
        Ok(out)
    }
}

/// Create a job and put it on the stream; if the stream refuses it, the job is removed again
/// and its slot given back (no job that nothing will run).
pub async fn submit<J: JobStore, Q: JobQueue>(
    jobs: &J,
    queue: &Q,
    job: &Job,
) -> Result<Created, crate::ports::StoreError> {
    let created = jobs.create(job).await?;
    if created != Created::New {
        return Ok(created);
    }
    if let Err(e) = queue.enqueue(&JobMessage { tenant: job.tenant.clone(), job_id: job.job_id.clone() }).await {
        if let Err(d) = jobs.delete(&job.tenant, &job.job_id).await {
            tracing::error!(job_id = %job.job_id, error = %d, "could not remove a job that was never queued");
        }
        if let Err(d) = jobs.release(&job.tenant, &job.job_id).await {
            tracing::error!(job_id = %job.job_id, error = %d, "could not release the slot of a job that was never queued");
        }
        return Err(e);
    }
    Ok(Created::New)
}

/// Why the schedule could not fan out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("the scheduled event has no time")]
    NoTime,
    #[error("event time {0:?}: {1}")]
    BadTime(String, String),
    #[error("{0}")]
    Store(#[from] crate::ports::StoreError),
}

/// The hourly schedule: one job per tenant with series, id derived from the hour so a repeated
/// delivery of the same event creates nothing. `detail.tenants` (optional) limits the run to
/// the named tenants, for an operator re-running the schedule by hand.
pub async fn schedule<S: TrainingSource, J: JobStore, Q: JobQueue>(
    source: &S,
    jobs: &J,
    queue: &Q,
    event: &Value,
    window_hours: u32,
) -> Result<Value, ScheduleError> {
    let time = event.get("time").and_then(Value::as_str).ok_or(ScheduleError::NoTime)?;
    let at =
        chrono::DateTime::parse_from_rfc3339(time).map_err(|e| ScheduleError::BadTime(time.into(), e.to_string()))?;
    let to_minute = at.timestamp().div_euclid(60);
    let hour = at.format("%Y%m%dT%H").to_string();
    let tenants: Vec<TenantId> = match event.pointer("/detail/tenants").and_then(Value::as_array) {
        Some(list) => list
            .iter()
            .filter_map(Value::as_str)
            .filter_map(|t| {
                let parsed = TenantId::from_record(t);
                if parsed.is_err() {
                    tracing::warn!(tenant = %t, "not a tenant id; skipped");
                }
                parsed.ok()
            })
            .collect(),
        None => source.tenants().await?.into_iter().collect(),
    };
    let (mut created, mut existing, mut busy) = (Vec::new(), 0usize, 0usize);
    for tenant in tenants {
        let job = Job::new(&tenant, format!("sched-{hour}"), "scheduled", "schedule", window_hours, to_minute);
        match submit(jobs, queue, &job).await? {
            Created::New => created.push(json!({"tenant": tenant, "job_id": job.job_id})),
            Created::Exists => existing += 1,
            // The tenant's previous job is still queued or running: this hour is skipped for it.
            Created::Busy { .. } => busy += 1,
        }
    }
    Ok(json!({"created": created, "already_existed": existing, "busy": busy}))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::Job;
    use crate::memory::{MemoryJobs, MemoryQueue, MemoryRegistry, MemorySource};
    use crate::train::{SeriesData, TrainingData};
    use naksha_contracts::signing::LocalKey;
    use naksha_core::metrics::MemoryCounters;

    type TestTrainer = Trainer<MemorySource, MemoryJobs, MemoryRegistry, LocalKey, MemoryCounters>;

    const TO: i64 = 29_000_000;

    fn trainer(with_data: bool) -> TestTrainer {
        let key = LocalKey::generate("model-key").unwrap();
        let source = MemorySource::default();
        if with_data {
            let tenant = TenantId::from_record("acme").unwrap();
            let mut data = TrainingData::new(tenant.clone());
            let points = (0..3 * 1440).map(|i| (TO - 3 * 1440 + i, 100.0 + ((i * 7919) % 13) as f64 * 0.1)).collect();
            data.series.push(SeriesData { series_id: "s1".into(), points });
            source.data.lock().unwrap().insert(tenant, data);
        }
        Trainer {
            source,
            jobs: MemoryJobs::default(),
            registry: MemoryRegistry::default(),
            keys: key.trusted(),
            signer: key,
            settings: Settings::default(),
            counters: MemoryCounters::default(),
        }
    }

    async fn job(t: &TestTrainer, id: &str) -> Job {
        let acme = TenantId::from_record("acme").unwrap();
        let job = Job::new(&acme, id.into(), "on_demand", "ada", 72, TO);
        assert_eq!(t.jobs.create(&job).await.unwrap(), Created::New);
        t.run_job(&acme, id).await.unwrap();
        t.jobs.get(&acme, id).await.unwrap().unwrap()
    }

    #[tokio::test]
    async fn a_job_registers_a_signed_version_and_the_first_one_becomes_champion() {
        let t = trainer(true);
        let done = job(&t, "job-1").await;
        assert_eq!((done.status.as_str(), done.progress), (SUCCEEDED, 1.0), "{:?}", done.error);
        let result = done.result.unwrap();
        assert_eq!((result["registered"].as_bool(), result["alias"].as_str()), (Some(true), Some(CHAMPION)));
        let acme = TenantId::from_record("acme").unwrap();
        let stored = t.registry.get(&acme, result["model_id"].as_str().unwrap()).await.unwrap().unwrap();
        assert!(stored.verify(&t.keys).is_ok(), "registered signed, verifiable with the trusted key");
        assert_eq!(t.registry.alias(&acme, CHAMPION).await.unwrap().unwrap().model_id, stored.model_id);
        let stages: Vec<String> = t.jobs.history.lock().unwrap().iter().map(|j| j.stage.clone()).collect();
        assert!(stages.iter().any(|s| s == "signing and registering"), "{stages:?}");
        assert_eq!(t.counters.get("trainer_models_promoted_total"), 1);

        // The same data trained again: the same id, nothing new registered.
        let again = job(&t, "job-2").await.result.unwrap();
        assert_eq!(
            (again["registered"].as_bool(), again["model_id"].clone()),
            (Some(false), result["model_id"].clone())
        );
        assert_eq!(t.registry.list(&acme).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_job_without_data_fails_with_its_reason_and_is_counted() {
        let t = trainer(false);
        let done = job(&t, "job-1").await;
        assert_eq!(done.status, FAILED);
        assert!(done.error.unwrap().contains("no aggregates"));
        assert_eq!(t.counters.get("trainer_jobs_total{status=\"failed\"}"), 1);
        assert!(t.registry.versions.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn one_job_per_tenant_at_a_time_and_a_finished_job_frees_the_slot() {
        let t = trainer(true);
        let (acme, other) = (TenantId::from_record("acme").unwrap(), TenantId::from_record("other").unwrap());
        let new = |tenant: &TenantId, id: &str| Job::new(tenant, id.into(), "on_demand", "ada", 72, TO);
        assert_eq!(t.jobs.create(&new(&acme, "job-1")).await.unwrap(), Created::New);
        assert_eq!(t.jobs.create(&new(&acme, "job-2")).await.unwrap(), Created::Busy { job_id: "job-1".into() });
        assert_eq!(t.jobs.create(&new(&other, "job-3")).await.unwrap(), Created::New, "tenants do not share a slot");
        assert_eq!(t.jobs.create(&new(&acme, "job-1")).await.unwrap(), Created::Exists);
        t.run_job(&acme, "job-1").await.unwrap();
        assert_eq!(t.jobs.create(&new(&acme, "job-2")).await.unwrap(), Created::New);
        // The schedule skips a busy tenant rather than queueing behind it.
        let queue = MemoryQueue::default();
        let report = schedule(&t.source, &t.jobs, &queue, &json!({"time": "2026-11-25T16:00:00Z"}), 24).await.unwrap();
        assert_eq!((report["created"].as_array().unwrap().len(), report["busy"].as_u64()), (0, Some(1)));
    }

    #[tokio::test]
    async fn a_job_whose_worker_keeps_dying_is_failed_instead_of_blocking_the_shard() {
        let t = trainer(true);
        let acme = TenantId::from_record("acme").unwrap();
        let mut job = Job::new(&acme, "job-1".into(), "on_demand", "ada", 72, TO);
        assert_eq!(t.jobs.create(&job).await.unwrap(), Created::New);
        // Two deliveries started it and never finished (the function timed out each time).
        job.attempts = MAX_ATTEMPTS;
        job.status = RUNNING.into();
        t.jobs.save(&job).await.unwrap();
        t.run_job(&acme, "job-1").await.unwrap();
        let done = t.jobs.get(&acme, "job-1").await.unwrap().unwrap();
        assert_eq!(done.status, FAILED);
        assert!(done.error.as_deref().unwrap().contains("gave up after 2 attempts"), "{:?}", done.error);
        assert!(t.registry.versions.lock().unwrap().is_empty(), "nothing was trained on the last delivery");
        assert!(t.jobs.slots.lock().unwrap().is_empty(), "the slot is free again");
    }

    #[tokio::test]
    async fn a_job_that_cannot_be_read_is_delivered_again_not_dropped() {
        let t = trainer(true);
        let msg = serde_json::to_vec(&json!({"tenant": "acme", "job_id": "job-1"})).unwrap();
        let mut event: KinesisEvent = serde_json::from_str(&sample("trainer-worker.json")).unwrap();
        event.records[0].kinesis.data.0 = msg;
        t.jobs.down.store(true, std::sync::atomic::Ordering::Relaxed);
        assert_eq!(t.handle(&event).await, Some(event.records[0].kinesis.sequence_number.clone()));
        t.jobs.down.store(false, std::sync::atomic::Ordering::Relaxed);
        assert_eq!(t.handle(&event).await, None, "an unknown job is skipped");
    }

    #[tokio::test]
    async fn the_schedule_queues_one_job_per_tenant_per_hour() {
        let t = trainer(true);
        let queue = MemoryQueue::default();
        let event = json!({"time": "2026-11-25T16:00:00Z"});
        let first = schedule(&t.source, &t.jobs, &queue, &event, 24).await.unwrap();
        assert_eq!(first["created"].as_array().unwrap().len(), 1);
        let again = schedule(&t.source, &t.jobs, &queue, &event, 24).await.unwrap();
        assert_eq!((again["created"].as_array().unwrap().len(), again["already_existed"].as_u64()), (0, Some(1)));
        assert_eq!(queue.sent.lock().unwrap().len(), 1);
        let bad = json!({"time": "2026-11-25T17:00:00Z", "detail": {"tenants": ["ACME#x"]}});
        assert_eq!(schedule(&t.source, &t.jobs, &queue, &bad, 24).await.unwrap()["created"], json!([]));
    }

    fn sample(name: &str) -> String {
        std::fs::read_to_string(format!("{}/../../events/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }

    #[test]
    fn the_sample_events_parse_as_the_functions_receive_them() {
        let worker: KinesisEvent = serde_json::from_str(&sample("trainer-worker.json")).unwrap();
        let msg: JobMessage = serde_json::from_slice(&worker.records[0].kinesis.data.0).unwrap();
        assert_eq!(
            msg,
            JobMessage { tenant: TenantId::from_record("acme").unwrap(), job_id: "sched-20261125T16".into() }
        );
        let schedule: Value = serde_json::from_str(&sample("trainer-schedule.json")).unwrap();
        assert_eq!(schedule["time"], "2026-11-25T16:00:00Z");
        let http: lambda_http::request::LambdaRequest = serde_json::from_str(&sample("models-train.json")).unwrap();
        assert!(matches!(http, lambda_http::request::LambdaRequest::ApiGatewayV2(_)));
    }
}
