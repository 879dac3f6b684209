//! The hub's HTTP routes. Every route verifies the token and scopes every read and write to the
//! token's tenant; another tenant's node or trigger answers 404. Nodes (role `edge`) are their
//! token's `sub` and only ever see their own work; people (operator, approver, admin) read, and
//! only an admin sends triggers.

use std::time::Duration as StdDuration;

use chrono::Utc;
use lambda_http::{Body, Request, RequestExt, Response};
use naksha_contracts::edge::{Delivery, is_node_id};
use naksha_contracts::signing::Sealed;
use naksha_core::auth::{Principal, Role, Verifier};
use naksha_core::http::{method, reader};
use naksha_core::problem::{FieldError, Problem};
use naksha_core::signing::Sign;
use naksha_core::{StoreError, http};
use serde_json::{Value, json};

use crate::hub::{self, Reported};
use crate::nodes::Registration;
use crate::ports::{HaltSource, HubError, Nodes, Registered, Work, WpkSource};
use crate::store::keys::{Announced, KeyRing};
use crate::triggers::TriggerRequest;

/// The one mapping of the hub's errors to problem+json.
fn problem(e: HubError) -> Problem {
    match e {
        HubError::Invalid(detail) => Problem::bad_request(detail),
        HubError::Fields(errors) => Problem::invalid_fields(errors),
        HubError::NotFound(detail) => Problem::not_found(detail),
        HubError::Conflict(detail) => Problem::conflict(detail),
        HubError::Halted(reason) => {
            Problem::conflict(format!("the tenant is halted ({reason}); POST /agent/resume before sending triggers"))
        }
        HubError::Unavailable(cause) => {
            Problem::unavailable("the federation store is unavailable; retry").with_internal(cause)
        }
        HubError::Signing(cause) => Problem::unavailable("the trigger key could not sign; retry").with_internal(cause),
        HubError::Partitioned(until) => Problem::unavailable(format!(
            "the hub is not answering this node until {until} (a chaos experiment); retry"
        )),
    }
}

/// An edge node's token: role `edge`, and a `sub` that can be a node id.
async fn node(verifier: &Verifier, req: &Request) -> Result<Principal, Problem> {
    let p = verifier.authorize(req.headers(), Role::Edge).await?;
    if !is_node_id(&p.subject) {
        return Err(Problem::forbidden("the token's sub is not a node id (1 to 64 of a-z 0-9 - _ .)"));
    }
    Ok(p)
}

fn json_body(req: &Request) -> Result<Value, Problem> {
    let bytes = http::body_bytes(req)?;
    if bytes.is_empty() {
        return Err(Problem::bad_request("the request body is empty; a JSON document is expected"));
    }
    serde_json::from_slice(bytes).map_err(|e| Problem::bad_request(format!("the body is not valid JSON: {e}")))
}

fn query_u64(req: &Request, name: &str, max: u64) -> Result<u64, Problem> {
    match req.query_string_parameters_ref().and_then(|q| q.first(name)) {
        None => Ok(0),
        Some(raw) => raw.parse::<u64>().ok().filter(|n| *n <= max).ok_or_else(|| {
            Problem::invalid_fields(vec![FieldError::new(
                format!("/{name}"),
                format!("must be a whole number from 0 to {max}"),
            )])
        }),
    }
}

/// The keys a node should trust: the trigger keys, those announced since (with their
/// statements), and the WPK keys.
fn keys_view(ring: &KeyRing, announced: &[Announced]) -> Value {
    let mut keys: Vec<Value> = ring.trigger.iter().map(|k| json!({
        "kid": k.kid, "public_key_pem": k.public_key_pem, "not_before": k.not_before, "not_after": k.not_after, "announcement": null
    })).collect();
    for a in announced.iter().filter(|a| !ring.trigger.iter().any(|k| k.kid == a.key.kid)) {
        keys.push(json!({
            "kid": a.key.kid, "public_key_pem": a.key.public_key_pem, "not_before": a.key.not_before,
            "not_after": a.key.not_after, "announcement": a.announcement
        }));
    }
    json!({"keys": keys, "wpk_keys": ring.wpk})
}

/// `POST /federation/register` (edge) → 201 first time, 200 the same key again, 409 another key.
pub async fn register<N: Nodes>(
    verifier: &Verifier,
    nodes: &N,
    ring: &KeyRing,
    announced: impl std::future::Future<Output = Result<Vec<Announced>, StoreError>>,
    req: Request,
) -> Result<Response<Body>, Problem> {
    method(&req, "POST")?;
    let p = node(verifier, &req).await?;
    let reg = Registration::parse(&json_body(&req)?).map_err(Problem::invalid_fields)?;
    let (outcome, node) = hub::register(nodes, &p.tenant, &p.subject, reg, Utc::now()).await.map_err(problem)?;
    let announced = announced.await.map_err(|e| problem(e.into()))?;
    let mut body = keys_view(ring, &announced);
    body["node_id"] = json!(node.node_id);
    body["tenant"] = json!(p.tenant.as_str());
    body["registered_at"] = json!(node.registered_at.to_rfc3339());
    body["kid"] = json!(node.kid);
    body["status"] = json!(node.status.as_str());
    http::json(if outcome == Registered::New { 201 } else { 200 }, &body)
}

/// `POST /federation/heartbeat` (edge) `{"halted": bool?}` (what the node believes) → 200
/// `{"halted", ...}`.
pub async fn heartbeat<N: Nodes, H: HaltSource>(
    verifier: &Verifier,
    nodes: &N,
    halt: &H,
    req: Request,
) -> Result<Response<Body>, Problem> {
    method(&req, "POST")?;
    let p = node(verifier, &req).await?;
    let bytes = http::body_bytes(&req)?;
    let halt_seen = if bytes.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        let body: Value = serde_json::from_slice(bytes)
            .map_err(|e| Problem::bad_request(format!("the body is not valid JSON: {e}")))?;
        let obj = body
            .as_object()
            .ok_or_else(|| Problem::invalid_fields(vec![FieldError::new("", "must be a JSON object")]))?;
        let mut errors: Vec<FieldError> = obj
            .keys()
            .filter(|k| k.as_str() != "halted")
            .map(|k| {
                FieldError::new(
                    format!("/{}", k.chars().take(64).collect::<String>()),
                    "unknown field (only halted is accepted)",
                )
            })
            .collect();
        let seen = match obj.get("halted") {
            None => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => {
                errors.push(FieldError::new("/halted", "must be true or false"));
                None
            }
        };
        if !errors.is_empty() {
            return Err(Problem::invalid_fields(errors));
        }
        seen
    };
    let (node, halted) =
        hub::heartbeat(nodes, halt, &p.tenant, &p.subject, halt_seen, Utc::now()).await.map_err(problem)?;
    http::json(
        200,
        &json!({
            "node_id": node.node_id, "status": node.status.as_str(), "halted": halted.is_some(),
            "halt_reason": halted, "server_time": Utc::now().to_rfc3339()
        }),
    )
}

/// `GET /federation/nodes` (readers) → `{"nodes": [...], "halted"}`.
pub async fn list_nodes<N: Nodes, H: HaltSource>(
    verifier: &Verifier,
    nodes: &N,
    halt: &H,
    req: Request,
) -> Result<Response<Body>, Problem> {
    let p = reader(verifier, &req).await?;
    let all = nodes.nodes(&p.tenant).await.map_err(|e| problem(e.into()))?;
    let halted = halt.halted(&p.tenant).await.map_err(|e| problem(e.into()))?;
    let views: Vec<Value> = all.iter().map(|n| n.view()).collect();
    http::json(200, &json!({"nodes": views, "count": views.len(), "halted": halted.is_some()}))
}

/// `GET /federation/nodes/{node_id}` (readers) → the node and the refusals it reported lately.
pub async fn get_node<N: Nodes, W: Work>(
    verifier: &Verifier,
    nodes: &N,
    work: &W,
    req: Request,
) -> Result<Response<Body>, Problem> {
    let p = reader(verifier, &req).await?;
    let id = http::path_param(&req, "node_id")?;
    let missing = || Problem::not_found("no node with that id");
    if !is_node_id(&id) {
        return Err(missing());
    }
    let n = nodes.node(&p.tenant, &id).await.map_err(|e| problem(e.into()))?.ok_or_else(missing)?;
    let refusals = work.refusals(&p.tenant, &id, 20).await.map_err(|e| problem(e.into()))?;
    let mut body = n.view();
    body["refusals"] = json!(refusals);
    http::json(200, &body)
}

/// `POST /federation/triggers` (admin) → 202 `{"trigger_id", "nodes", ...}`.
pub async fn send<N: Nodes, W: Work, S: WpkSource, H: HaltSource>(
    verifier: &Verifier,
    ports: &hub::Sender<'_, N, W, S, H>,
    req: Request,
) -> Result<Response<Body>, Problem> {
    method(&req, "POST")?;
    let p = verifier.authorize(req.headers(), Role::Admin).await?;
    let request = TriggerRequest::parse(&json_body(&req)?).map_err(Problem::invalid_fields)?;
    let t = hub::create_trigger(ports, &p.tenant, &p.subject, request, Utc::now()).await.map_err(problem)?;
    http::json(
        202,
        &json!({
            "trigger_id": t.spec.trigger_id, "nodes": t.spec.nodes, "state": t.state.as_str(),
            "wpk": t.spec.wpk, "expires_at": t.spec.expires_at.to_rfc3339()
        }),
    )
}

/// `GET /federation/triggers?after=<seq>&wait=<seconds>` (the node itself) → its deliveries
/// after `after` and whether its tenant is halted.
pub async fn poll<N: Nodes, W: Work, H: HaltSource, K: Sign>(
    verifier: &Verifier,
    ports: &hub::Handout<'_, N, W, H, K>,
    req: Request,
) -> Result<Response<Body>, Problem> {
    method(&req, "GET")?;
    let p = node(verifier, &req).await?;
    let after = query_u64(&req, "after", i64::MAX as u64)?;
    let wait = query_u64(&req, "wait", hub::MAX_POLL_WAIT.as_secs())?;
    let poll = hub::poll(ports, &p.tenant, &p.subject, after, StdDuration::from_secs(wait)).await.map_err(problem)?;
    let triggers: &[Delivery] = &poll.deliveries;
    http::json(
        200,
        &json!({
            "node_id": p.subject, "halted": poll.halted.is_some(), "halt_reason": poll.halted,
            "triggers": triggers, "server_time": Utc::now().to_rfc3339()
        }),
    )
}

/// `GET /federation/triggers/{trigger_id}` (readers) → the rollout's state and every execution.
pub async fn get_trigger<W: Work>(verifier: &Verifier, work: &W, req: Request) -> Result<Response<Body>, Problem> {
    let p = reader(verifier, &req).await?;
    let id = http::path_param(&req, "trigger_id")?;
    let missing = || Problem::not_found("no trigger with that id");
    if !is_trigger_id(&id) {
        return Err(missing());
    }
    let t = work.trigger(&p.tenant, &id).await.map_err(|e| problem(e.into()))?.ok_or_else(missing)?;
    let mut executions = work.executions(&p.tenant, &id).await.map_err(|e| problem(e.into()))?;
    executions.sort_by(|a, b| a.node_id.cmp(&b.node_id));
    http::json(200, &t.view(&executions, Utc::now()))
}

/// A trigger id as the hub makes them (`trg-` and 32 hex digits).
pub fn is_trigger_id(s: &str) -> bool {
    s.strip_prefix("trg-").is_some_and(|h| h.len() == 32 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// `POST /federation/triggers/{trigger_id}/result` (the node itself) with its signed result
/// (`{"signed", "signature", "key_id"}`) → 202; the same result again → 202, changing nothing.
pub async fn result<N: Nodes, W: Work>(
    verifier: &Verifier,
    nodes: &N,
    work: &W,
    req: Request,
) -> Result<Response<Body>, Problem> {
    method(&req, "POST")?;
    let p = node(verifier, &req).await?;
    let id = http::path_param(&req, "trigger_id")?;
    let body = json_body(&req)?;
    let sealed: Sealed = serde_json::from_value(body).map_err(|e| {
        Problem::bad_request(format!("expected the signed result {{\"signed\", \"signature\", \"key_id\"}}: {e}"))
    })?;
    // A node may report refusing a forged trigger id, so any short visible id is heard out.
    if id.len() > 128 || !id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Problem::not_found("no trigger with that id"));
    }
    let outcome = hub::report(nodes, work, &p.tenant, &p.subject, &id, &sealed, Utc::now()).await.map_err(problem)?;
    let recorded = match outcome {
        Reported::Recorded => "recorded",
        Reported::Repeated => "repeated",
        Reported::RefusalKept => "refusal_kept",
    };
    http::json(202, &json!({"trigger_id": id, "node_id": p.subject, "outcome": recorded}))
}

/// `GET /federation/keys` (any role) → the trigger keys nodes trust (with announcements) and the
/// WPK keys.
pub async fn keys(
    verifier: &Verifier,
    ring: &KeyRing,
    announced: impl std::future::Future<Output = Result<Vec<Announced>, StoreError>>,
    req: Request,
) -> Result<Response<Body>, Problem> {
    method(&req, "GET")?;
    let p = verifier.authenticate(req.headers()).await?;
    p.require_any(&[Role::Operator, Role::Approver, Role::Admin, Role::Edge])?;
    let announced = announced.await.map_err(|e| problem(e.into()))?;
    http::json(200, &keys_view(ring, &announced))
}
