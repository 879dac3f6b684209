//! Running a training job (the jobs-stream worker) and fanning out the hourly schedule.

use aws_lambda_events::event::kinesis::KinesisEvent;
use naksha_core::metrics::{CounterStore, DynamoCounters};
use naksha_core::model::{CHAMPION, ModelRegistry, StoredModel};
use naksha_core::signing::{KmsSigner, TrustedKeys};
use serde_json::{Value, json};

use crate::store::{FAILED, Job, JobMessage, JobQueue, Jobs, QUEUED, RUNNING, SUCCEEDED, TrainingSource};
use crate::train::{Settings, train};

pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Default training window when a request or the schedule names none (one week).
pub const DEFAULT_WINDOW_HOURS: u32 = 168;
pub const MAX_WINDOW_HOURS: u32 = 720;

#[derive(Debug)]
pub struct Trainer {
    pub source: TrainingSource,
    pub jobs: Jobs,
    pub registry: ModelRegistry,
    pub signer: KmsSigner,
    pub keys: TrustedKeys,
    pub settings: Settings,
    pub counters: DynamoCounters,
}

/// Process the jobs in a batch of stream records (batch size 1 in the template). A job that
/// fails is marked failed with its reason; nothing is retried blindly.
pub async fn handle(t: &Trainer, event: &KinesisEvent) {
    for record in &event.records {
        let Ok(msg) = serde_json::from_slice::<JobMessage>(&record.kinesis.data.0) else {
            tracing::warn!(seq = %record.kinesis.sequence_number, "undecodable job message skipped");
            continue;
        };
        run_job(t, &msg.tenant, &msg.job_id).await;
    }
}

async fn save(t: &Trainer, job: &mut Job, status: &str, stage: &str, progress: f64) {
    job.status = status.to_owned();
    job.stage = stage.to_owned();
    job.progress = progress;
    job.updated_at = now();
    if let Err(e) = t.jobs.save(job).await {
        tracing::warn!(job_id = %job.job_id, error = %e, "could not record job progress");
    }
}

pub async fn run_job(t: &Trainer, tenant: &str, job_id: &str) {
    let mut job = match t.jobs.get(tenant, job_id).await {
        Ok(Some(j)) => j,
        Ok(None) => return tracing::warn!(tenant, job_id, "message for an unknown job skipped"),
        Err(e) => return tracing::error!(tenant, job_id, error = %e, "could not read the job"),
    };
    if job.is_final() {
        return tracing::info!(job_id, status = %job.status, "duplicate delivery of a finished job skipped");
    }
    let counts = match execute(t, &mut job).await {
        Ok(result) => {
            tracing::info!(job_id, result = %result, "training job succeeded");
            let registered = u64::from(result["registered"] == true);
            let promoted = u64::from(result["alias"] == CHAMPION);
            let refused = result["refused"].as_array().map_or(0, Vec::len) as u64;
            job.result = Some(result);
            save(t, &mut job, SUCCEEDED, "done", 1.0).await;
            [
                ("trainer_jobs_total{status=\"succeeded\"}", 1),
                ("trainer_models_registered_total", registered),
                ("trainer_models_promoted_total", promoted),
                ("trainer_models_refused_total", refused),
            ]
        }
        Err(e) => {
            tracing::error!(job_id, error = %e, "training job failed");
            job.error = Some(e);
            let stage = job.stage.clone();
            let progress = job.progress;
            save(t, &mut job, FAILED, &stage, progress).await;
            [
                ("trainer_jobs_total{status=\"failed\"}", 1),
                ("trainer_models_registered_total", 0),
                ("trainer_models_promoted_total", 0),
                ("trainer_models_refused_total", 0),
            ]
        }
    };
    if let Err(e) = t.counters.add("trainer", &counts).await {
        tracing::warn!(job_id, error = %e, "could not count the job in the fleet-wide metrics");
    }
}

async fn execute(t: &Trainer, job: &mut Job) -> Result<Value, String> {
    save(t, job, RUNNING, "reading aggregates and run outcomes", 0.1).await;
    let to = job.window_to_minute;
    let from = to - i64::from(job.window_hours) * 60;
    let data = t.source.load(&job.tenant, from, to).await?;
    let alias_before = t.registry.alias(&job.tenant, CHAMPION).await.map_err(|e| e.to_string())?;
    let loaded = t.registry.load_champion(&job.tenant, &t.keys).await.map_err(|e| e.to_string())?;
    let refused: Vec<Value> = loaded.refused.iter().map(|(id, why)| json!({"model_id": id, "reason": why})).collect();
    let champion = loaded.artifact;

    save(t, job, RUNNING, "training", 0.2).await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, f64)>();
    let settings = t.settings.clone();
    let created_at = now();
    let champion_for_training = champion.clone();
    let work = tokio::task::spawn_blocking(move || {
        let mut progress = |stage: &str, f: f64| {
            let _ = tx.send((stage.to_owned(), f));
        };
        train(&data, champion_for_training.as_deref(), &settings, &created_at, &mut progress)
    });
    while let Some((stage, f)) = rx.recv().await {
        save(t, job, RUNNING, &stage, f).await;
    }
    let trained = work.await.map_err(|e| format!("training panicked: {e}"))?.map_err(|e| e.to_string())?;
    let a = &trained.artifact;
    let summary = json!({
        "model_id": a.model_id,
        "rows": a.window.rows,
        "series": a.window.series,
        "outcomes": a.window.outcomes,
        "metrics": a.metrics,
        "refused": refused,
    });
    if t.registry.get(&job.tenant, &a.model_id).await.map_err(|e| e.to_string())?.is_some() {
        let mut out = summary;
        out["registered"] = false.into();
        out["reason"] =
            "a version trained on the same data by the same code exists already; nothing new registered".into();
        return Ok(out);
    }

    save(t, job, RUNNING, "signing and registering", 0.9).await;
    let stored = StoredModel::sign(a, &t.signer).await.map_err(|e| e.to_string())?;
    let created = t.registry.put(&stored).await.map_err(|e| e.to_string())?;
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
        let moved = t
            .registry
            .move_alias(&job.tenant, CHAMPION, &a.model_id, alias_before.as_ref(), &now())
            .await
            .map_err(|e| e.to_string())?;
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

/// New job for a tenant (queued), fixed to the window ending at `to_minute`.
pub fn new_job(tenant: &str, job_id: String, kind: &str, requested_by: &str, window_hours: u32, to_minute: i64) -> Job {
    let at = now();
    Job {
        job_id,
        tenant: tenant.to_owned(),
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
    }
}

/// Create a job and put it on the stream; if the stream refuses it, the job is removed again
/// (no job that nothing will run). `Ok(false)`: the job existed already.
pub async fn submit(jobs: &Jobs, queue: &JobQueue, job: &Job) -> Result<bool, String> {
    if !jobs.create(job).await? {
        return Ok(false);
    }
    if let Err(e) = queue.enqueue(&JobMessage { tenant: job.tenant.clone(), job_id: job.job_id.clone() }).await {
        if let Err(d) = jobs.delete(&job.tenant, &job.job_id).await {
            tracing::error!(job_id = %job.job_id, error = %d, "could not remove a job that was never queued");
        }
        return Err(e);
    }
    Ok(true)
}

/// The hourly schedule: one job per tenant with series, id derived from the hour so a repeated
/// delivery of the same event creates nothing. `detail.tenants` (optional) limits the run to
/// the named tenants, for an operator re-running the schedule by hand.
pub async fn schedule(
    source: &TrainingSource,
    jobs: &Jobs,
    queue: &JobQueue,
    event: &Value,
    window_hours: u32,
) -> Result<Value, String> {
    let time = event.get("time").and_then(Value::as_str).ok_or("the scheduled event has no time")?;
    let at = chrono::DateTime::parse_from_rfc3339(time).map_err(|e| format!("event time {time:?}: {e}"))?;
    let to_minute = at.timestamp().div_euclid(60);
    let hour = at.format("%Y%m%dT%H").to_string();
    let tenants: Vec<String> = match event.pointer("/detail/tenants").and_then(Value::as_array) {
        Some(list) => list.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
        None => source.tenants().await?.into_iter().collect(),
    };
    let (mut created, mut existing) = (Vec::new(), 0usize);
    for tenant in tenants {
        if naksha_core::auth::TenantId::from_internal_record(&tenant).is_none() {
            tracing::warn!(tenant = %tenant, "not a tenant id; skipped");
            continue;
        }
        let job = new_job(&tenant, format!("sched-{hour}"), "scheduled", "schedule", window_hours, to_minute);
        if submit(jobs, queue, &job).await? {
            created.push(json!({"tenant": tenant, "job_id": job.job_id}));
        } else {
            existing += 1;
        }
    }
    Ok(json!({"created": created, "already_existed": existing}))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(name: &str) -> String {
        std::fs::read_to_string(format!("{}/../../events/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }

    #[test]
    fn the_sample_events_parse_as_the_functions_receive_them() {
        let worker: KinesisEvent = serde_json::from_str(&sample("trainer-worker.json")).unwrap();
        let msg: JobMessage = serde_json::from_slice(&worker.records[0].kinesis.data.0).unwrap();
        assert_eq!(msg, JobMessage { tenant: "acme".into(), job_id: "sched-20261125T16".into() });
        let schedule: Value = serde_json::from_str(&sample("trainer-schedule.json")).unwrap();
        assert_eq!(schedule["time"], "2026-11-25T16:00:00Z");
        let http: lambda_http::request::LambdaRequest = serde_json::from_str(&sample("models-train.json")).unwrap();
        assert!(matches!(http, lambda_http::request::LambdaRequest::ApiGatewayV2(_)));
    }

    #[test]
    fn new_jobs_are_queued_with_their_window_fixed() {
        let j = new_job("acme", "job-1".into(), "on_demand", "ada", 24, 29_000_000);
        assert_eq!((j.status.as_str(), j.progress, j.window_hours, j.window_to_minute), (QUEUED, 0.0, 24, 29_000_000));
        assert!(!j.is_final());
    }
}
