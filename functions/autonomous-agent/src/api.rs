//! The agent's HTTP routes, independent of how they are wired into Lambda. Every route verifies
//! the token and scopes every read and write to the token's tenant; another tenant's run or WPK
//! answers 404.

use lambda_http::{Body, Request, RequestExt, Response};
use naksha_contracts::TenantId;
use naksha_contracts::approvals::{RunApproval, StandingApproval, TenantSettings};
use naksha_contracts::audit::{AuditEntry, AuditRecord, verify_anchored};
use naksha_core::auth::{Principal, READERS, Role, Verifier};
use naksha_core::http::method;
use naksha_core::http::{self, json};
use naksha_core::privacy::PiiKey;
use naksha_core::problem::{FieldError, Problem};
use naksha_core::signing::{Sign, TrustedKeys, seal};
use serde_json::{Map, Value, json};

use crate::act::sim::{SimResource, SimStore};
use crate::agent::{now, self_approval_allowed};
use crate::ports::{AuditLog, Control, RunQueue, RunStore, StoreError, WpkStore};
use crate::state::{Approval, RunRequest, RunState, RunStatus};
use crate::wpk::{self, Mode, StoredWpk, latest_versions};

/// The approval key: it signs people's decisions (run approvals, standing approvals, settings),
/// and its public half reads the tenant's settings back.
#[derive(Debug)]
pub struct Approvals<K> {
    pub signer: K,
    pub keys: TrustedKeys,
}

/// The most records one `GET /agent/audit` page returns.
pub const MAX_AUDIT_PAGE: usize = 500;

/// Largest telemetry attached to a run request.
const MAX_TELEMETRY_BYTES: usize = 64 * 1024;

fn store_problem(e: StoreError, what: &str) -> Problem {
    match e {
        StoreError::NotFound => Problem::not_found(format!("no {what} with that id")),
        StoreError::Exists => Problem::conflict(format!("that {what} already exists")),
        StoreError::Conflict => Problem::conflict(format!("the {what} is not in a state that allows this")),
        StoreError::Failed(cause) => {
            Problem::unavailable(format!("the {what} store is unavailable; retry")).with_internal(cause)
        }
        StoreError::Rejected(cause) => {
            Problem::internal(format!("the {what} store refused a write that cannot succeed: {cause}"))
        }
    }
}

fn json_object(req: &Request) -> Result<Map<String, Value>, Problem> {
    match http::json_body::<Value>(req)? {
        Value::Object(m) => Ok(m),
        other => Err(Problem::bad_request(format!(
            "expected a JSON object, not {}",
            if other.is_array() { "an array" } else { "a scalar" }
        ))),
    }
}

/// A run id from the path; anything that cannot be one of ours is simply not found.
fn run_id_param(req: &Request) -> Result<String, Problem> {
    let id = http::path_param(req, "run_id")?;
    let ok = (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
    if ok { Ok(id) } else { Err(Problem::not_found("no run with that id")) }
}

fn is_signal(s: &str) -> bool {
    (1..=128).contains(&s.len())
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

fn is_resource(s: &str) -> bool {
    (1..=256).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_graphic() && b != b'*' && b != b'#')
}

/// `POST /agent/run` (role `operator`) → 202 `{"run_id", "status": "queued"}`.
pub async fn start_run<S: RunStore, Q: RunQueue>(
    verifier: &Verifier,
    store: &S,
    queue: &Q,
    pii: &PiiKey,
    req: Request,
) -> Result<Response<Body>, Problem> {
    method(&req, "POST")?;
    let p = verifier.authorize(req.headers(), Role::Operator).await?;
    let trace = http::trace_of(&req).traceparent();
    let mut body = json_object(&req)?;
    let mut errors = Vec::new();
    for k in body.keys().filter(|k| !["signal", "resource", "telemetry", "dry_run"].contains(&k.as_str())) {
        errors.push(FieldError::new(format!("/{k}"), "unknown field (expected signal, resource, telemetry, dry_run)"));
    }
    let signal = body.get("signal").and_then(Value::as_str).unwrap_or_default().to_owned();
    if !is_signal(&signal) {
        errors.push(FieldError::new("/signal", "required: 1 to 128 of a-z 0-9 - _ . :"));
    }
    let resource = body.get("resource").and_then(Value::as_str).unwrap_or_default().to_owned();
    if !is_resource(&resource) {
        errors.push(FieldError::new(
            "/resource",
            "required: e.g. deployment/payments (1 to 256 visible characters, no * or #)",
        ));
    }
    if body.get("dry_run").is_some_and(|d| !d.is_boolean()) {
        errors.push(FieldError::new("/dry_run", "must be true or false"));
    }
    let mut telemetry = body.remove("telemetry");
    if let Some(t) = &telemetry {
        if !t.is_object() {
            errors.push(FieldError::new("/telemetry", "must be an object"));
        } else if t.to_string().len() > MAX_TELEMETRY_BYTES {
            errors.push(FieldError::new("/telemetry", format!("at most {MAX_TELEMETRY_BYTES} bytes")));
        }
    }
    if !errors.is_empty() {
        return Err(Problem::invalid_fields(errors));
    }
    // P-1: telemetry attached to a run is pseudonymised like ingested telemetry.
    if let Some(t) = telemetry.as_mut() {
        pii.for_tenant(p.tenant.as_str()).scrub_json(t);
    }
    let request = RunRequest {
        signal,
        resource: resource.clone(),
        telemetry,
        dry_run: body.get("dry_run").and_then(Value::as_bool).unwrap_or(false),
    };
    let run_id = uuid::Uuid::now_v7().to_string();
    let mut state = RunState::new(run_id.clone(), p.tenant.clone(), p.subject.clone(), request, now());
    state.trace = Some(trace);
    store.create_run(&state).await.map_err(|e| store_problem(e, "run"))?;
    if let Err(e) = queue.enqueue(&p.tenant, &resource, &run_id).await {
        state.conclude(RunStatus::Failed, "the run could not be queued");
        state.status = RunStatus::Failed;
        let _ = store.save_run(&state).await;
        return Err(Problem::unavailable("the run queue is unavailable; nothing will act, retry").with_internal(e));
    }
    json(202, &json!({"run_id": run_id, "status": "queued"}))
}

/// The API view of a run.
pub fn run_view(state: &RunState, steps: &[crate::ports::Checkpoint], audit: &[AuditRecord]) -> Value {
    json!({
        "run_id": state.run_id,
        "status": state.status,
        "signal": state.request.signal,
        "resource": state.request.resource,
        "dry_run": state.request.dry_run,
        "requested_by": state.requested_by,
        "telemetry": state.request.telemetry,
        "wpk": state.decision.as_ref().map(|d| json!({"id": d.wpk_id, "version": d.version, "sha256": d.sha256, "score": d.score, "candidates": d.candidates})),
        "plan": state.plan,
        "approval": state.approval,
        "rejection": state.rejection,
        "outcome": state.outcome,
        "observation": state.observation,
        "receipts": state.receipts,
        "verification": state.verification,
        "approval_refused": state.approval_refused,
        "audit_pending": state.audit_pending,
        "steps": steps.iter().map(|c| json!({
            "step": c.step, "node": c.node, "status": c.status, "started_at": c.started_at, "ended_at": c.ended_at,
            "latency_ms": c.latency_ms, "graph_version": c.graph_version, "state_digest": c.state_digest, "error": c.error,
        })).collect::<Vec<_>>(),
        "audit": audit,
        "trace": state.trace.as_deref().and_then(naksha_contracts::trace::TraceContext::parse).map(|t| json!({
            "trace_id": t.trace_id(), "traceparent": t.traceparent(), "xray_trace_id": t.xray_trace_id(),
        })),
        "created_at": state.created_at,
        "updated_at": state.updated_at,
    })
}

/// `GET /agent/status/{run_id}` (any reading role).
pub async fn run_status<S: RunStore + AuditLog>(
    verifier: &Verifier,
    store: &S,
    req: Request,
) -> Result<Response<Body>, Problem> {
    method(&req, "GET")?;
    let p = verifier.authenticate(req.headers()).await?;
    p.require_any(READERS)?;
    let id = run_id_param(&req)?;
    let state = store
        .load_run(&p.tenant, &id)
        .await
        .map_err(|e| store_problem(e, "run"))?
        .ok_or_else(|| Problem::not_found("no run with that id"))?;
    let steps = store.checkpoints(&p.tenant, &id).await.map_err(|e| store_problem(e, "run"))?;
    // Only this run's record (through its marker), never the tenant's whole log.
    let audit: Vec<AuditRecord> = match state.audit_seq {
        Some(_) => {
            store.record_of_run(&p.tenant, &id).await.map_err(|e| store_problem(e, "audit"))?.into_iter().collect()
        }
        None => Vec::new(),
    };
    json(200, &run_view(&state, &steps, &audit))
}

/// Most runs `GET /agent/runs` returns at once.
pub const MAX_RUNS_PAGE: usize = 100;

const STATUSES: [RunStatus; 7] = [
    RunStatus::Queued,
    RunStatus::Running,
    RunStatus::AwaitingApproval,
    RunStatus::Succeeded,
    RunStatus::Failed,
    RunStatus::Rejected,
    RunStatus::Aborted,
];

/// `GET /agent/runs[?status=S&limit=N]` (any reading role): the tenant's most recently changed
/// runs, newest first (default 20, at most 100), each as its progress: status, signal, resource,
/// requester, WPK, milestones and times.
pub async fn list_runs<S: RunStore>(verifier: &Verifier, store: &S, req: Request) -> Result<Response<Body>, Problem> {
    method(&req, "GET")?;
    let p = verifier.authenticate(req.headers()).await?;
    p.require_any(READERS)?;
    let limit = query_number(&req, "limit", 1..=MAX_RUNS_PAGE as u64)?.unwrap_or(20) as usize;
    let status = match req.query_string_parameters_ref().and_then(|q| q.first("status")) {
        None => None,
        Some(s) => match STATUSES.iter().find(|k| k.as_str() == s) {
            Some(k) => Some(k.as_str()),
            None => {
                let known: Vec<&str> = STATUSES.iter().map(|k| k.as_str()).collect();
                return Err(Problem::invalid_fields(vec![FieldError::new(
                    "/status",
                    format!("must be one of {}", known.join(", ")),
                )]));
            }
        },
    };
    let runs = store.recent_runs(&p.tenant, status, limit).await.map_err(|e| store_problem(e, "run"))?;
    json(200, &json!({"runs": runs, "count": runs.len()}))
}

fn justification(body: &Map<String, Value>, errors: &mut Vec<FieldError>) -> String {
    match body.get("justification").and_then(Value::as_str) {
        Some(j) if !j.trim().is_empty() && j.len() <= 1000 => j.to_owned(),
        _ => {
            errors.push(FieldError::new("/justification", "required: 1 to 1000 characters"));
            String::new()
        }
    }
}

/// `POST /agent/runs/{run_id}/approve` (role `approver`) `{"justification", "plan_sha256"}` → 202.
/// The approval is signed (the approval key) over tenant, run, plan digest, approver, requester,
/// justification and time: the evidence the worker checks before it acts. The person who
/// requested the run cannot approve it unless the tenant's settings allow it (403).
pub async fn approve<S: RunStore + Control, Q: RunQueue, K: Sign>(
    verifier: &Verifier,
    store: &S,
    queue: &Q,
    approvals: &Approvals<K>,
    req: Request,
) -> Result<Response<Body>, Problem> {
    method(&req, "POST")?;
    let p = verifier.authorize(req.headers(), Role::Approver).await?;
    let id = run_id_param(&req)?;
    let body = json_object(&req)?;
    let mut errors = Vec::new();
    let justification = justification(&body, &mut errors);
    let sha = body.get("plan_sha256").and_then(Value::as_str).unwrap_or_default().to_owned();
    if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        errors.push(FieldError::new("/plan_sha256", "required: the 64-hex-digit sha256 of the plan being approved"));
    }
    for k in body.keys().filter(|k| !["justification", "plan_sha256"].contains(&k.as_str())) {
        errors.push(FieldError::new(format!("/{k}"), "unknown field"));
    }
    if !errors.is_empty() {
        return Err(Problem::invalid_fields(errors));
    }
    let run = store
        .load_run(&p.tenant, &id)
        .await
        .map_err(|e| store_problem(e, "run"))?
        .ok_or_else(|| Problem::not_found("no run with that id"))?;
    if run.status != RunStatus::AwaitingApproval || run.plan.as_ref().is_none_or(|plan| plan.sha256 != sha) {
        return Err(conflict(store, &p, &id).await);
    }
    if run.requested_by == p.subject && !self_approval_allowed(store, &p.tenant, &approvals.keys).await {
        return Err(Problem::forbidden(
            "the person who requested a run cannot approve it; an admin can allow self-approval (POST /agent/settings)",
        ));
    }
    let at = now();
    let signed = RunApproval {
        run_id: id.clone(),
        plan_sha256: sha.clone(),
        approver: p.subject.clone(),
        requested_by: run.requested_by.clone(),
        justification: justification.clone(),
        at: at.clone(),
    };
    let evidence = seal(&approvals.signer, RunApproval::PURPOSE, &p.tenant, &signed)
        .await
        .map_err(|e| Problem::unavailable("the approval could not be signed; nothing was recorded").with_internal(e))?;
    let approval = Approval {
        approver: p.subject.clone(),
        justification,
        plan_sha256: sha,
        at,
        standing: false,
        evidence: Some(evidence),
    };
    let state = match store.approve(&p.tenant, &id, &approval).await {
        Ok(s) => s,
        Err(StoreError::Conflict) => return Err(conflict(store, &p, &id).await),
        Err(e) => return Err(store_problem(e, "run")),
    };
    queue.enqueue(&p.tenant, &state.request.resource, &id).await.map_err(|e| {
        Problem::unavailable("approved, but the run could not be queued to resume; approve again to retry")
            .with_internal(e)
    })?;
    json(202, &json!({"run_id": id, "status": "queued", "approval": approval}))
}

async fn conflict<S: RunStore>(store: &S, p: &Principal, id: &str) -> Problem {
    match store.load_run(&p.tenant, id).await {
        Ok(Some(s)) if s.status == RunStatus::AwaitingApproval => Problem::conflict(
            "plan_sha256 is not the plan awaiting approval; read the run again and approve its current plan",
        )
        .with_extension("plan_sha256", json!(s.plan.map(|p| p.sha256))),
        Ok(Some(s)) => Problem::conflict(format!("the run is {}, not awaiting approval", s.status.as_str()))
            .with_extension("run_status", json!(s.status)),
        Ok(None) => Problem::not_found("no run with that id"),
        Err(e) => store_problem(e, "run"),
    }
}

/// `POST /agent/runs/{run_id}/reject` (role `approver`) `{"justification"}` → 202.
pub async fn reject<S: RunStore + AuditLog>(
    verifier: &Verifier,
    store: &S,
    req: Request,
) -> Result<Response<Body>, Problem> {
    method(&req, "POST")?;
    let p = verifier.authorize(req.headers(), Role::Approver).await?;
    let id = run_id_param(&req)?;
    let body = json_object(&req)?;
    let mut errors = Vec::new();
    let justification = justification(&body, &mut errors);
    if !errors.is_empty() {
        return Err(Problem::invalid_fields(errors));
    }
    let rejection = Approval {
        approver: p.subject.clone(),
        justification,
        plan_sha256: String::new(),
        at: now(),
        standing: false,
        evidence: None,
    };
    match store.reject(&p.tenant, &id, &rejection).await {
        Ok(s) => {
            // The decision is evidence too (the policy learner counts rejections before it
            // suggests `auto`): one record in the chain, as the run's own.
            let audited = match store.append(&p.tenant, rejection_entry(&s, &rejection)).await {
                Ok(r) => Some(r.seq),
                Err(e) => {
                    tracing::error!(run_id = %id, error = %e, "the rejection could not be appended to the audit chain");
                    None
                }
            };
            json(202, &json!({"run_id": id, "status": s.status, "rejection": rejection, "audit_seq": audited}))
        }
        Err(StoreError::Conflict) => Err(conflict(store, &p, &id).await),
        Err(e) => Err(store_problem(e, "run")),
    }
}

/// The audit record of a rejected run: who rejected which WPK version's plan, and why.
fn rejection_entry(s: &crate::state::RunState, rejection: &Approval) -> AuditEntry {
    let (wpk_id, wpk_version, wpk_sha256) =
        s.decision.as_ref().map(|d| (d.wpk_id.clone(), d.version, d.sha256.clone())).unwrap_or_default();
    AuditEntry {
        kind: "rejection".into(),
        run_id: s.run_id.clone(),
        wpk_id,
        wpk_version,
        wpk_sha256,
        approver: rejection.approver.clone(),
        justification: rejection.justification.clone(),
        standing_approval: false,
        plan_sha256: s.plan.as_ref().map(|p| p.sha256.clone()).unwrap_or_default(),
        before_sha256: s.plan.as_ref().map(|p| p.before_digest.clone()).unwrap_or_default(),
        after_sha256: String::new(),
        actions: Vec::new(),
        outcome: "rejected".into(),
        at: rejection.at.clone(),
        approval_sha256: String::new(),
        dry_run_passed: s.plan.as_ref().is_some_and(|p| p.dry_run_performed),
    }
}

/// `POST /agent/halt` and `POST /agent/resume` (role `admin`): the tenant's kill switch.
pub async fn set_halt<S: Control>(
    verifier: &Verifier,
    store: &S,
    req: Request,
    halt: bool,
) -> Result<Response<Body>, Problem> {
    method(&req, "POST")?;
    let p = verifier.authorize(req.headers(), Role::Admin).await?;
    let body: Map<String, Value> =
        if http::body_bytes(&req)?.iter().all(u8::is_ascii_whitespace) { Map::new() } else { json_object(&req)? };
    let reason = body.get("reason").and_then(Value::as_str).map(str::to_owned);
    if reason.as_ref().is_some_and(|r| r.len() > 500) {
        return Err(Problem::invalid_fields(vec![FieldError::new("/reason", "at most 500 characters")]));
    }
    let stored = halt.then(|| format!("{} by {}", reason.unwrap_or_else(|| "halted".into()), p.subject));
    store.set_halted(&p.tenant, stored.as_deref()).await.map_err(|e| store_problem(e, "control"))?;
    json(200, &json!({"halted": halt, "reason": stored}))
}

fn query_number(req: &Request, name: &str, range: std::ops::RangeInclusive<u64>) -> Result<Option<u64>, Problem> {
    match req.query_string_parameters_ref().and_then(|q| q.first(name)) {
        None => Ok(None),
        Some(raw) => raw.parse::<u64>().ok().filter(|n| range.contains(n)).map(Some).ok_or_else(|| {
            Problem::invalid_fields(vec![FieldError::new(
                format!("/{name}"),
                format!("must be a whole number from {} to {}", range.start(), range.end()),
            )])
        }),
    }
}

/// `GET /agent/audit[?limit=N&cursor=C&verify=true]` (any reading role): a page of the tenant's
/// chain (`next_cursor` continues it). With `verify`, the whole chain is checked against its head,
/// its signed checkpoints and the runs that acted, and the first broken link is named.
pub async fn audit<S: AuditLog + RunStore>(
    verifier: &Verifier,
    store: &S,
    audit_keys: &TrustedKeys,
    req: Request,
) -> Result<Response<Body>, Problem> {
    method(&req, "GET")?;
    let p = verifier.authenticate(req.headers()).await?;
    p.require_any(READERS)?;
    let limit = query_number(&req, "limit", 1..=MAX_AUDIT_PAGE as u64)?.unwrap_or(100) as usize;
    let after = query_number(&req, "cursor", 0..=u64::MAX)?.unwrap_or(0);
    let (records, next) = store.page(&p.tenant, after, limit).await.map_err(|e| store_problem(e, "audit"))?;
    let verify =
        req.query_string_parameters_ref().and_then(|q| q.first("verify")).is_some_and(|v| v == "true" || v == "1");
    let mut doc = json!({"records": records, "count": records.len(), "next_cursor": next.map(|n| n.to_string())});
    if verify {
        let all = store.records(&p.tenant).await.map_err(|e| store_problem(e, "audit"))?;
        let mut anchors = store.anchors(&p.tenant).await.map_err(|e| store_problem(e, "audit"))?;
        anchors.acted = store.acted_runs(&p.tenant).await.map_err(|e| store_problem(e, "run"))?;
        doc["total"] = json!(all.len());
        match verify_anchored(&p.tenant, &all, &anchors, audit_keys) {
            Ok(()) => doc["verified"] = json!(true),
            Err(broken) => {
                doc["verified"] = json!(false);
                doc["first_broken"] = json!(broken);
            }
        }
    }
    json(200, &doc)
}

/// `GET /agent/settings` (any reading role): the tenant's safety settings, and whether their
/// signature verifies (settings that do not verify count as the defaults).
pub async fn get_settings<S: Control>(
    verifier: &Verifier,
    store: &S,
    approval_keys: &TrustedKeys,
    req: Request,
) -> Result<Response<Body>, Problem> {
    method(&req, "GET")?;
    let p = verifier.authenticate(req.headers()).await?;
    p.require_any(READERS)?;
    let stored = store.settings(&p.tenant).await.map_err(|e| store_problem(e, "settings"))?;
    let doc = match stored {
        None => json!({"allow_self_approval": false, "set": false}),
        Some(sealed) => match sealed.open::<TenantSettings>(TenantSettings::PURPOSE, &p.tenant, approval_keys) {
            Ok(s) => json!({"allow_self_approval": s.allow_self_approval, "set_by": s.set_by,
                            "justification": s.justification, "at": s.at, "set": true, "verified": true}),
            Err(e) => json!({"allow_self_approval": false, "set": true, "verified": false, "error": e.to_string()}),
        },
    };
    json(200, &doc)
}

/// `POST /agent/settings` (role `admin`) `{"allow_self_approval": bool, "justification"}`: the
/// explicit, audited switch that lets the requester of a run (or the author of a WPK) approve it.
/// The change is signed and recorded in the audit chain before it takes effect.
pub async fn put_settings<S: Control + AuditLog, K: Sign>(
    verifier: &Verifier,
    store: &S,
    approvals: &Approvals<K>,
    req: Request,
) -> Result<Response<Body>, Problem> {
    method(&req, "POST")?;
    let p = verifier.authorize(req.headers(), Role::Admin).await?;
    let body = json_object(&req)?;
    let mut errors = Vec::new();
    let justification = justification(&body, &mut errors);
    let allow = body.get("allow_self_approval").and_then(Value::as_bool);
    if allow.is_none() {
        errors.push(FieldError::new("/allow_self_approval", "required: true or false"));
    }
    for k in body.keys().filter(|k| !["allow_self_approval", "justification"].contains(&k.as_str())) {
        errors.push(FieldError::new(format!("/{k}"), "unknown field"));
    }
    if !errors.is_empty() {
        return Err(Problem::invalid_fields(errors));
    }
    let settings = TenantSettings {
        allow_self_approval: allow.unwrap_or(false),
        set_by: p.subject.clone(),
        justification: justification.clone(),
        at: now(),
    };
    let sealed = seal(&approvals.signer, TenantSettings::PURPOSE, &p.tenant, &settings)
        .await
        .map_err(|e| Problem::unavailable("the settings could not be signed; nothing changed").with_internal(e))?;
    let before = store.settings(&p.tenant).await.map_err(|e| store_problem(e, "settings"))?;
    let record = store
        .append(&p.tenant, settings_entry(&p.tenant, &settings, before.as_ref().map(|b| b.sha256()), &sealed.sha256()))
        .await
        .map_err(|e| store_problem(e, "audit"))?;
    store.set_settings(&p.tenant, &sealed).await.map_err(|e| store_problem(e, "settings"))?;
    json(
        200,
        &json!({"allow_self_approval": settings.allow_self_approval, "set_by": settings.set_by,
                      "justification": settings.justification, "at": settings.at, "audit_seq": record.seq}),
    )
}

/// The audit record of a settings change: who, why, and the digests of the signed settings before
/// and after.
fn settings_entry(tenant: &TenantId, s: &TenantSettings, before: Option<String>, after: &str) -> AuditEntry {
    AuditEntry {
        kind: "setting".into(),
        run_id: format!("setting-{}", uuid::Uuid::now_v7()),
        wpk_id: String::new(),
        wpk_version: 0,
        wpk_sha256: String::new(),
        approver: s.set_by.clone(),
        justification: s.justification.clone(),
        standing_approval: false,
        plan_sha256: String::new(),
        before_sha256: before.unwrap_or_default(),
        after_sha256: after.to_owned(),
        actions: vec![json!({"setting": "allow_self_approval", "value": s.allow_self_approval, "tenant": tenant})],
        outcome: "set".into(),
        at: s.at.clone(),
        approval_sha256: after.to_owned(),
        dry_run_passed: false,
    }
}

/// `POST /wpk` (role `admin`): validate, sign the canonical bytes with KMS, store → 201.
pub async fn register_wpk<S: WpkStore, K: Sign>(
    verifier: &Verifier,
    store: &S,
    signer: &K,
    keys: &TrustedKeys,
    req: Request,
) -> Result<Response<Body>, Problem> {
    method(&req, "POST")?;
    let p = verifier.authorize(req.headers(), Role::Admin).await?;
    let bytes = http::body_bytes(&req)?;
    let text = std::str::from_utf8(bytes).map_err(|_| Problem::bad_request("the body is not UTF-8 text"))?;
    if text.trim().is_empty() {
        return Err(Problem::bad_request("the body is empty; send a WPK document (JSON or YAML)"));
    }
    let content_type = req.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let yaml = content_type.contains("yaml") || (!content_type.contains("json") && !text.trim_start().starts_with('{'));
    let doc = wpk::parse(text, yaml).map_err(Problem::invalid_fields)?;
    let tenant = &p.tenant;
    let at = now();
    // Signed for this tenant, as a WPK, naming who registered it.
    let canonical = StoredWpk::signing_bytes(&doc, tenant, &p.subject, &at);
    if store.get_wpk(tenant, &doc.id, doc.version).await.map_err(|e| store_problem(e, "WPK"))?.is_some() {
        return Err(Problem::conflict(format!(
            "WPK {} v{} already exists; versions are immutable, register v{}",
            doc.id,
            doc.version,
            doc.version + 1
        )));
    }
    let signature = signer
        .sign(&canonical)
        .await
        .map_err(|e| Problem::unavailable("signing failed; nothing was stored").with_internal(e))?;
    // A signature that does not verify now would fail every run later: refuse it here.
    keys.verify(&canonical, &signature).map_err(|e| {
        Problem::unavailable("the signing key produced a signature that does not verify; nothing was stored")
            .with_internal(e)
    })?;
    let stored = StoredWpk::signed(&doc, &canonical, &signature, &p.subject, &at);
    store.put_wpk(tenant, &stored).await.map_err(|e| match e {
        StoreError::Exists => {
            Problem::conflict(format!("WPK {} v{} already exists; versions are immutable", doc.id, doc.version))
        }
        other => store_problem(other, "WPK"),
    })?;
    json(
        201,
        &json!({"id": stored.id, "version": stored.version, "sha256": stored.sha256, "signature": stored.signature, "key_id": stored.key_id}),
    )
}

fn wpk_view(w: &StoredWpk) -> Value {
    let doc = w.peek();
    json!({
        "id": w.id, "version": w.version, "sha256": w.sha256, "signature": w.signature, "key_id": w.key_id,
        "title": doc.as_ref().map(|d| d.title.clone()),
        "mode": doc.as_ref().map(|d| d.safety.mode),
        "signals": doc.as_ref().map(|d| d.matcher.signals.clone()),
        "created_at": w.created_at, "created_by": w.created_by,
        // For reading only: whoever acts opens and checks the signed approval first.
        "standing_approval": w.standing_approval.as_ref().and_then(|s| {
            let payload = serde_json::from_str::<Value>(&s.signed).ok()?.get("payload")?.clone();
            Some(json!({"approver": payload["approver"], "justification": payload["justification"], "at": payload["at"], "sha256": s.sha256()}))
        }),
    })
}

/// `GET /wpk` (any reading role): the latest version of each WPK.
pub async fn list_wpks<S: WpkStore>(verifier: &Verifier, store: &S, req: Request) -> Result<Response<Body>, Problem> {
    method(&req, "GET")?;
    let p = verifier.authenticate(req.headers()).await?;
    p.require_any(READERS)?;
    let all = store.list_wpks(&p.tenant).await.map_err(|e| store_problem(e, "WPK"))?;
    let latest: Vec<Value> = latest_versions(all).iter().map(wpk_view).collect();
    json(200, &json!({"wpks": latest}))
}

/// `GET /wpk/{id}`: every version, with the signed document (so anyone can check it with openssl).
pub async fn get_wpk<S: WpkStore>(verifier: &Verifier, store: &S, req: Request) -> Result<Response<Body>, Problem> {
    method(&req, "GET")?;
    let p = verifier.authenticate(req.headers()).await?;
    p.require_any(READERS)?;
    let id = http::path_param(&req, "id")?;
    let mut versions: Vec<StoredWpk> = store
        .list_wpks(&p.tenant)
        .await
        .map_err(|e| store_problem(e, "WPK"))?
        .into_iter()
        .filter(|w| w.id == id)
        .collect();
    if versions.is_empty() {
        return Err(Problem::not_found("no WPK with that id"));
    }
    versions.sort_by_key(|w| w.version);
    let docs: Vec<Value> = versions
        .iter()
        .map(|w| {
            let mut v = wpk_view(w);
            v["document"] = w.peek().map_or(Value::Null, |d| serde_json::to_value(d).unwrap_or(Value::Null));
            v["signed_bytes"] = json!(w.doc);
            v
        })
        .collect();
    json(200, &json!({"id": id, "versions": docs}))
}

/// `POST /wpk/{id}/promote` (role `approver`) `{"version", "justification"}`: a signed standing
/// approval of one `auto` WPK version, so its runs may act without waiting (after their dry-run
/// passes). The WPK must verify; its author cannot approve it unless the tenant allows it (403).
pub async fn promote_wpk<S: WpkStore + Control, K: Sign>(
    verifier: &Verifier,
    store: &S,
    wpk_keys: &TrustedKeys,
    approvals: &Approvals<K>,
    req: Request,
) -> Result<Response<Body>, Problem> {
    method(&req, "POST")?;
    let p = verifier.authorize(req.headers(), Role::Approver).await?;
    let id = http::path_param(&req, "id")?;
    let body = json_object(&req)?;
    let mut errors = Vec::new();
    let justification = justification(&body, &mut errors);
    let version = body.get("version").and_then(Value::as_u64).and_then(|v| u32::try_from(v).ok());
    if version.is_none() {
        errors.push(FieldError::new("/version", "required: the version to approve"));
    }
    if !errors.is_empty() {
        return Err(Problem::invalid_fields(errors));
    }
    let version = version.unwrap_or_default();
    let (standing, sha256) =
        standing_approve(store, wpk_keys, approvals, &p.tenant, &p.subject, &id, version, justification).await?;
    json(200, &json!({"id": id, "version": version, "standing_approval": standing, "sha256": sha256}))
}

/// Record a signed standing approval of one `auto` WPK version by `approver`: the WPK must
/// verify, and its author cannot approve it unless the tenant allows self-approval. The one way
/// a standing approval is made (`POST /wpk/{id}/promote`, and the policy learner enforcing a
/// promotion). Returns the approval and the sha256 of its signed form.
#[allow(clippy::too_many_arguments)]
pub async fn standing_approve<S: WpkStore + Control, K: Sign>(
    store: &S,
    wpk_keys: &TrustedKeys,
    approvals: &Approvals<K>,
    tenant: &TenantId,
    approver: &str,
    id: &str,
    version: u32,
    justification: String,
) -> Result<(StandingApproval, String), Problem> {
    let w = store
        .get_wpk(tenant, id, version)
        .await
        .map_err(|e| store_problem(e, "WPK"))?
        .ok_or_else(|| Problem::not_found("no WPK with that id and version"))?;
    let signed = w
        .verify(wpk_keys, tenant)
        .map_err(|e| Problem::conflict(format!("this WPK version does not verify, so it cannot be approved: {e}")))?;
    if signed.wpk().safety.mode != Mode::Auto {
        return Err(Problem::conflict(
            "only an auto WPK takes a standing approval; a manual one is approved run by run",
        ));
    }
    if signed.registered_by() == approver && !self_approval_allowed(store, tenant, &approvals.keys).await {
        return Err(Problem::forbidden(
            "the author of a WPK cannot record its standing approval; an admin can allow self-approval (POST /agent/settings)",
        ));
    }
    let standing = StandingApproval {
        wpk_id: id.to_owned(),
        wpk_version: version,
        wpk_sha256: signed.sha256().to_owned(),
        approver: approver.to_owned(),
        wpk_author: signed.registered_by().to_owned(),
        justification,
        at: now(),
    };
    let sealed = seal(&approvals.signer, StandingApproval::PURPOSE, tenant, &standing).await.map_err(|e| {
        Problem::unavailable("the standing approval could not be signed; nothing was recorded").with_internal(e)
    })?;
    store.set_standing_approval(tenant, id, version, &sealed).await.map_err(|e| store_problem(e, "WPK"))?;
    Ok((standing, sealed.sha256()))
}

/// Withdraw the standing approval of a WPK version: its runs wait for a person again.
pub async fn withdraw_standing_approval<S: WpkStore>(
    store: &S,
    tenant: &TenantId,
    id: &str,
    version: u32,
) -> Result<(), Problem> {
    store.withdraw_standing_approval(tenant, id, version).await.map_err(|e| store_problem(e, "WPK"))
}

fn sim_resource_param(req: &Request) -> Result<String, Problem> {
    let r = http::path_param(req, "resource")?;
    if is_resource(&r) { Ok(r) } else { Err(Problem::not_found("no such resource")) }
}

/// `PUT /sim/resources/{resource}` (role `admin`, simulation mode only).
pub async fn put_sim<S: SimStore>(verifier: &Verifier, sim: &S, req: Request) -> Result<Response<Body>, Problem> {
    method(&req, "PUT")?;
    let p = verifier.authorize(req.headers(), Role::Admin).await?;
    // Creating a resource under a name no resource can have is bad input (400), not a miss (404).
    let resource = sim_resource_param(&req).map_err(|e| {
        if e.status == 404 {
            Problem::bad_request(
                "a resource name is 1-256 visible ASCII characters without * or # (e.g. deployment/payments)",
            )
        } else {
            e
        }
    })?;
    let body: Value = http::json_body(&req)?;
    let r = SimResource::parse(&body).map_err(Problem::invalid_fields)?;
    sim.put(&p.tenant, &resource, &r)
        .await
        .map_err(|e| Problem::unavailable("the simulated cluster is unavailable").with_internal(e))?;
    json(200, &json!({"resource": resource, "state": r}))
}

/// `GET /sim/resources/{resource}` (role `admin`, simulation mode only).
pub async fn get_sim<S: SimStore>(verifier: &Verifier, sim: &S, req: Request) -> Result<Response<Body>, Problem> {
    method(&req, "GET")?;
    let p = verifier.authorize(req.headers(), Role::Admin).await?;
    let resource = sim_resource_param(&req)?;
    let r = sim
        .get(&p.tenant, &resource)
        .await
        .map_err(|e| Problem::unavailable("the simulated cluster is unavailable").with_internal(e))?
        .ok_or_else(|| Problem::not_found("no such resource"))?;
    json(200, &json!({"resource": resource, "state": r}))
}
