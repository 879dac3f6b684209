//! HTTP handlers: `POST /models/train`, `GET /jobs/{job_id}`, `GET /models`, `GET /models/{model_id}`.
//! Every handler verifies the caller's token and only ever sees the caller's tenant.

use lambda_http::{Body, Request, Response};
use naksha_contracts::TenantId;
use naksha_contracts::models::{CHAMPION, StoredModel, is_model_id};
use naksha_contracts::signing::TrustedKeys;
use naksha_core::auth::{Role, Verifier};
use naksha_core::http::{method, reader};
use naksha_core::problem::FieldError;
use naksha_core::{Problem, http};
use serde_json::{Value, json};

use crate::jobs::{DEFAULT_WINDOW_HOURS, Job, MAX_WINDOW_HOURS, is_job_id};
use crate::ports::{Created, JobQueue, JobStore, Registry, StoreError};
use crate::worker::submit;

fn registry_unavailable(e: StoreError) -> Problem {
    Problem::unavailable("the model registry could not be read").with_internal(e)
}

/// The champion and the earlier champions of a tenant.
async fn champions<R: Registry>(registry: &R, tenant: &TenantId) -> Result<(Option<String>, Vec<String>), Problem> {
    let alias = registry.alias(tenant, CHAMPION).await.map_err(registry_unavailable)?;
    Ok(alias.map(|a| (Some(a.model_id), a.history)).unwrap_or_default())
}

/// The optional body of `POST /models/train`: `{}` or `{"window_hours": 1..=720}`.
fn window_hours(req: &Request) -> Result<u32, Problem> {
    let bytes = http::body_bytes(req)?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(DEFAULT_WINDOW_HOURS);
    }
    let body: Value =
        serde_json::from_slice(bytes).map_err(|e| Problem::bad_request(format!("the body is not valid JSON: {e}")))?;
    let Some(obj) = body.as_object() else {
        return Err(Problem::invalid_fields(vec![FieldError::new("", "must be a JSON object")]));
    };
    let mut errors: Vec<FieldError> = obj
        .keys()
        .filter(|k| k.as_str() != "window_hours")
        .map(|k| FieldError::new(format!("/{k}"), "unknown field (only window_hours is accepted)"))
        .collect();
    let hours = match obj.get("window_hours") {
        None => DEFAULT_WINDOW_HOURS,
        Some(v) => match v.as_u64().and_then(|h| u32::try_from(h).ok()) {
            Some(h) if (1..=MAX_WINDOW_HOURS).contains(&h) => h,
            _ => {
                errors.push(FieldError::new(
                    "/window_hours",
                    format!("must be a whole number of hours from 1 to {MAX_WINDOW_HOURS}"),
                ));
                0
            }
        },
    };
    if errors.is_empty() { Ok(hours) } else { Err(Problem::invalid_fields(errors)) }
}

/// `POST /models/train` (role admin) → 202 `{job_id, status, ...}`; the worker picks it up from
/// the jobs stream.
pub async fn train<J: JobStore, Q: JobQueue>(
    verifier: &Verifier,
    jobs: &J,
    queue: &Q,
    req: Request,
) -> Result<Response<Body>, Problem> {
    method(&req, "POST")?;
    let principal = verifier.authorize(req.headers(), Role::Admin).await?;
    let hours = window_hours(&req)?;
    let to_minute = chrono::Utc::now().timestamp().div_euclid(60);
    let job_id = format!("job-{}", uuid::Uuid::now_v7().simple());
    let job = Job::new(&principal.tenant, job_id, "on_demand", &principal.subject, hours, to_minute);
    let created = submit(jobs, queue, &job).await.map_err(|e| {
        Problem::unavailable("the training job could not be queued; nothing was started").with_internal(e)
    })?;
    if let Created::Busy { job_id } = created {
        return Err(Problem::conflict(format!(
            "a training job of this tenant is already queued or running ({job_id}); one runs at a time: follow it at /jobs/{job_id}"
        ))
        .with_extension("job_id", serde_json::json!(job_id)));
    }
    let mut resp = http::json(202, &job)?;
    if let Ok(v) = format!("/jobs/{}", job.job_id).parse() {
        resp.headers_mut().insert("location", v);
    }
    Ok(resp)
}

fn id_param(req: &Request, name: &str, valid: fn(&str) -> bool, what: &str) -> Result<String, Problem> {
    let id = http::path_param(req, name)?;
    if valid(&id) { Ok(id) } else { Err(Problem::not_found(format!("no {what} with that id"))) }
}

/// `GET /jobs/{job_id}` (a reading role) → the job, its stage, progress and result.
pub async fn job<J: JobStore>(verifier: &Verifier, jobs: &J, req: Request) -> Result<Response<Body>, Problem> {
    let principal = reader(verifier, &req).await?;
    let id = id_param(&req, "job_id", is_job_id, "job")?;
    let job = jobs
        .get(&principal.tenant, &id)
        .await
        .map_err(|e| Problem::unavailable("the jobs table could not be read").with_internal(e))?
        .ok_or_else(|| Problem::not_found("no job with that id"))?;
    http::json(200, &job)
}

fn summary(m: &StoredModel, keys: &TrustedKeys, champion: Option<&str>, history: &[String]) -> Value {
    let verified = m.verify(keys);
    let doc: Value = serde_json::from_str(&m.doc).unwrap_or(Value::Null);
    let status = if Some(m.model_id.as_str()) == champion {
        CHAMPION
    } else if history.contains(&m.model_id) {
        "retired"
    } else {
        "challenger"
    };
    // The contract's alias: champion, challenger, or none for a former champion.
    let alias = (status != "retired").then_some(status);
    json!({
        "model_id": m.model_id,
        "alias": alias,
        "status": status,
        "created_at": m.created_at,
        "code_version": doc.get("code_version"),
        "data_digest": doc.get("data_digest"),
        "window": doc.get("window"),
        "metrics": doc.get("metrics"),
        "sha256": m.sha256,
        "signature": m.signature,
        "key_id": m.key_id,
        "verified": verified.is_ok(),
        "verification_error": verified.err().map(|e| e.to_string()),
    })
}

/// `GET /models` (a reading role) → every version of the caller's tenant, newest first, with
/// its status (champion, challenger, retired) and whether its signature verifies.
pub async fn models<R: Registry>(
    verifier: &Verifier,
    registry: &R,
    keys: &TrustedKeys,
    req: Request,
) -> Result<Response<Body>, Problem> {
    let principal = reader(verifier, &req).await?;
    let tenant = &principal.tenant;
    let (champion, history) = champions(registry, tenant).await?;
    let versions = registry.list(tenant).await.map_err(registry_unavailable)?;
    let list: Vec<Value> = versions.iter().map(|m| summary(m, keys, champion.as_deref(), &history)).collect();
    http::json(200, &json!({"champion": champion, "count": list.len(), "models": list}))
}

/// `GET /models/{model_id}` (a reading role) → one version: summary, the signed manifest (the
/// exact bytes that were signed), the signature (base64 DER), and the document (parsed, and as
/// the exact canonical text the manifest's sha256 covers).
pub async fn model<R: Registry>(
    verifier: &Verifier,
    registry: &R,
    keys: &TrustedKeys,
    req: Request,
) -> Result<Response<Body>, Problem> {
    let principal = reader(verifier, &req).await?;
    let tenant = &principal.tenant;
    let id = id_param(&req, "model_id", is_model_id, "model")?;
    let m = registry
        .get(tenant, &id)
        .await
        .map_err(registry_unavailable)?
        .ok_or_else(|| Problem::not_found("no model with that id"))?;
    let (champion, history) = champions(registry, tenant).await?;
    let mut out = summary(&m, keys, champion.as_deref(), &history);
    out["manifest"] = m.manifest.clone().into();
    out["document"] = serde_json::from_str(&m.doc).unwrap_or(Value::Null);
    // The exact canonical bytes the manifest's sha256 covers, for checking without re-encoding.
    out["document_json"] = m.doc.clone().into();
    http::json(200, &out)
}
