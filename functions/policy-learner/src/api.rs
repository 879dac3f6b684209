//! The policy routes. Every route verifies the token and reads and writes only the token's
//! tenant; another tenant's suggestion answers 404. Learning and moving suggestions need
//! `admin`; enforcing a promotion also needs `approver` (it records a standing approval).

use chrono::Utc;
use lambda_http::{Body, Request, RequestExt, Response};
use naksha_agent::api::Approvals;
use naksha_agent::ports::{AuditLog, Control, WpkStore};
use naksha_contracts::TenantId;
use naksha_core::auth::{Role, Verifier};
use naksha_core::http;
use naksha_core::http::{method, reader};
use naksha_core::privacy::PiiKey;
use naksha_core::problem::{FieldError, Problem};
use naksha_core::signing::{Sign, TrustedKeys};
use serde_json::{Map, Value, json};

use crate::compliance::{evaluate, markdown};
use crate::learn::{Autonomy, ChangeError, Decision, LearnError, change, learn_lines};
use crate::live::Live;
use crate::ports::Policies;
use crate::suggest::{State, Suggestion, would_block};

fn unavailable(e: impl std::fmt::Display) -> Problem {
    Problem::unavailable("the policy store is unavailable; retry").with_internal(e)
}

fn query<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.query_string_parameters_ref().and_then(|q| q.first(name))
}

fn flag(req: &Request, name: &str) -> Result<bool, Problem> {
    match query(req, name) {
        None | Some("false") | Some("0") => Ok(false),
        Some("true") | Some("1") => Ok(true),
        Some(_) => Err(Problem::invalid_fields(vec![FieldError::new(format!("/{name}"), "true or false")])),
    }
}

/// The most bad lines a 400 lists (the count is always given).
const MAX_LISTED_LINES: usize = 100;

/// `POST /learn` (admin): JSON lines → 200 with what was ingested and the suggestions.
pub async fn learn<P: Policies, A: AuditLog>(
    verifier: &Verifier,
    store: &P,
    chain: &A,
    pii: &PiiKey,
    req: Request,
) -> Result<Response<Body>, Problem> {
    method(&req, "POST")?;
    let p = verifier.authorize(req.headers(), Role::Admin).await?;
    let skip_invalid = flag(&req, "skip_invalid")?;
    let bytes = http::body_bytes(&req)?;
    let text = std::str::from_utf8(bytes).map_err(|_| Problem::bad_request("the body is not UTF-8 text"))?;
    let learned = learn_lines(store, chain, pii, &p.tenant, text, skip_invalid, Utc::now()).await.map_err(|e| match e {
        LearnError::Invalid(bad) => {
            let count = bad.len();
            let errors = bad
                .into_iter()
                .take(MAX_LISTED_LINES)
                .map(|b| FieldError::new(format!("/line/{}", b.line), b.reason))
                .collect();
            Problem::invalid_fields(errors)
                .with_extension("bad_lines", json!(count))
                .with_extension("hint", json!("fix the lines named, or post with ?skip_invalid=true to learn from the rest"))
        }
        LearnError::Empty => Problem::bad_request(
            "the body holds no records: send JSON lines of Naksha audit records, CloudTrail records or Kubernetes audit events",
        ),
        LearnError::Unavailable(e) => unavailable(e),
    })?;
    tracing::info!(
        ingested = learned.ingested,
        duplicates = learned.duplicates,
        skipped = learned.skipped.len(),
        changed = learned.changed,
        "learned"
    );
    let views: Vec<Value> = learned.suggestions.iter().map(|s| view(s, None)).collect();
    http::json(
        200,
        &json!({
            "ingested": learned.ingested, "duplicates": learned.duplicates, "by_format": learned.by_format,
            "skipped": learned.skipped, "changed": learned.changed, "suggestions": views,
        }),
    )
}

/// A suggestion as the API shows it; `blocked` for one in `dryrun` or `warn`.
pub fn view(s: &Suggestion, blocked: Option<Vec<String>>) -> Value {
    let mut v = json!({
        "id": s.draft.id, "kind": s.draft.kind, "rule": s.draft.rule, "subject": s.draft.subject, "title": s.draft.title,
        "policy": s.draft.policy, "evidence": s.draft.evidence, "complete": s.draft.complete, "confidence": s.draft.confidence,
        "state": s.state, "state_since": s.state_since, "history": s.history,
    });
    if let Some(ids) = blocked {
        v["would_block"] = json!({"since": s.state_since, "count": ids.len(), "record_ids": ids.into_iter().take(100).collect::<Vec<_>>()});
    }
    v
}

async fn views<P: Policies>(store: &P, tenant: &TenantId, all: &[Suggestion]) -> Result<Vec<Value>, Problem> {
    let watching = all.iter().any(|s| matches!(s.state, State::Dryrun | State::Warn));
    let records = if watching { store.records(tenant).await.map_err(unavailable)? } else { Vec::new() };
    Ok(all
        .iter()
        .map(|s| {
            let blocked = matches!(s.state, State::Dryrun | State::Warn).then(|| would_block(s, &records));
            view(s, blocked)
        })
        .collect())
}

/// `GET /policies/suggestions[?kind=&state=]`.
pub async fn list<P: Policies>(verifier: &Verifier, store: &P, req: Request) -> Result<Response<Body>, Problem> {
    let p = reader(verifier, &req).await?;
    let kind = query(&req, "kind").map(str::to_owned);
    let state = query(&req, "state").map(str::to_owned);
    let mut errors = Vec::new();
    if kind.as_deref().is_some_and(|k| !["autonomy", "least_privilege", "risk"].contains(&k)) {
        errors.push(FieldError::new("/kind", "autonomy, least_privilege or risk"));
    }
    if state.as_deref().is_some_and(|k| !["suggested", "dryrun", "warn", "enforced", "rejected"].contains(&k)) {
        errors.push(FieldError::new("/state", "suggested, dryrun, warn, enforced or rejected"));
    }
    if !errors.is_empty() {
        return Err(Problem::invalid_fields(errors));
    }
    let mut all: Vec<Suggestion> = store
        .suggestions(&p.tenant)
        .await
        .map_err(unavailable)?
        .into_iter()
        .filter(|s| kind.as_deref().is_none_or(|k| json!(s.draft.kind) == k))
        .filter(|s| state.as_deref().is_none_or(|k| s.state.as_str() == k))
        .collect();
    all.sort_by(|a, b| {
        (a.draft.kind, &a.draft.subject, &a.draft.rule).cmp(&(b.draft.kind, &b.draft.subject, &b.draft.rule))
    });
    let out = views(store, &p.tenant, &all).await?;
    http::json(200, &json!({"suggestions": out, "count": out.len()}))
}

fn id_param(req: &Request) -> Result<String, Problem> {
    let id = http::path_param(req, "id")?;
    let ok = id.len() == 23 && id.starts_with("sg-") && id[3..].bytes().all(|b| b.is_ascii_hexdigit());
    if ok { Ok(id) } else { Err(Problem::not_found("no suggestion with that id")) }
}

/// `GET /policies/suggestions/{id}`.
pub async fn get<P: Policies>(verifier: &Verifier, store: &P, req: Request) -> Result<Response<Body>, Problem> {
    let p = reader(verifier, &req).await?;
    let id = id_param(&req)?;
    let s = store
        .suggestion(&p.tenant, &id)
        .await
        .map_err(unavailable)?
        .ok_or_else(|| Problem::not_found("no suggestion with that id"))?;
    let out = views(store, &p.tenant, std::slice::from_ref(&s)).await?;
    http::json(200, &out[0])
}

fn justification(req: &Request) -> Result<String, Problem> {
    let bytes = http::body_bytes(req)?;
    let body: Map<String, Value> = match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(o)) => o,
        Ok(_) => return Err(Problem::invalid_fields(vec![FieldError::new("", "must be a JSON object")])),
        Err(e) => return Err(Problem::bad_request(format!("the body is not valid JSON: {e}"))),
    };
    let mut errors: Vec<FieldError> = body
        .keys()
        .filter(|k| k.as_str() != "justification")
        .map(|k| {
            FieldError::new(
                format!("/{}", k.chars().take(64).collect::<String>()),
                "unknown field (only justification)",
            )
        })
        .collect();
    let j = match body.get("justification") {
        Some(Value::String(j)) if !j.trim().is_empty() && j.len() <= 1000 => j.clone(),
        _ => {
            errors.push(FieldError::new("/justification", "required: 1 to 1000 characters"));
            String::new()
        }
    };
    if errors.is_empty() { Ok(j) } else { Err(Problem::invalid_fields(errors)) }
}

/// `POST /policies/suggestions/{id}/advance` and `/reject` (admin) `{"justification"}`.
pub async fn move_suggestion<P: Policies, A: AuditLog, U: Autonomy>(
    verifier: &Verifier,
    store: &P,
    chain: &A,
    autonomy: &U,
    req: Request,
    reject: bool,
) -> Result<Response<Body>, Problem> {
    method(&req, "POST")?;
    let p = verifier.authorize(req.headers(), Role::Admin).await?;
    let id = id_param(&req)?;
    let justification = justification(&req)?;
    let d = Decision { by: p.subject.clone(), justification, approver: p.has(Role::Approver) };
    let s = change(store, chain, autonomy, &p.tenant, &id, reject, &d, Utc::now()).await.map_err(|e| match e {
        ChangeError::NotFound => Problem::not_found("no suggestion with that id"),
        ChangeError::Conflict(m) => Problem::conflict(m),
        ChangeError::Forbidden(m) => Problem::forbidden(m),
        ChangeError::Unavailable(m) => unavailable(m),
        ChangeError::Agent(problem) => problem,
    })?;
    tracing::info!(suggestion = %s.draft.id, state = s.state.as_str(), "suggestion moved");
    http::json(200, &view(&s, None))
}

/// `GET /compliance[?format=markdown]`.
pub async fn compliance(verifier: &Verifier, live: &Live, req: Request) -> Result<Response<Body>, Problem> {
    let p = reader(verifier, &req).await?;
    let md = match query(&req, "format") {
        None | Some("json") => false,
        Some("markdown") => true,
        Some(_) => return Err(Problem::invalid_fields(vec![FieldError::new("/format", "json or markdown")])),
    };
    let observed = live.observe(&p.tenant).await;
    let m = evaluate(&p.tenant, &observed, Utc::now());
    if md { http::text(200, "text/markdown; charset=utf-8", markdown(&m)) } else { http::json(200, &m) }
}

/// Enforcing autonomy suggestions through the agent's own standing-approval path.
#[derive(Debug)]
pub struct AgentAutonomy<S, K> {
    pub store: S,
    pub wpk_keys: TrustedKeys,
    pub approvals: Approvals<K>,
}

impl<S: WpkStore + Control, K: Sign> Autonomy for AgentAutonomy<S, K> {
    async fn promote(
        &self,
        tenant: &TenantId,
        approver: &str,
        wpk_id: &str,
        version: u32,
        justification: &str,
    ) -> Result<String, ChangeError> {
        naksha_agent::api::standing_approve(
            &self.store,
            &self.wpk_keys,
            &self.approvals,
            tenant,
            approver,
            wpk_id,
            version,
            format!("policy learner: {justification}"),
        )
        .await
        .map(|(_, sha)| sha)
        .map_err(ChangeError::Agent)
    }

    async fn demote(&self, tenant: &TenantId, wpk_id: &str, version: u32) -> Result<(), ChangeError> {
        naksha_agent::api::withdraw_standing_approval(&self.store, tenant, wpk_id, version)
            .await
            .map_err(ChangeError::Agent)
    }
}
