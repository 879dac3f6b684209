//! The chaos routes. Every route verifies the token and scopes every read and write to the
//! token's tenant; another tenant's run answers 404. Starting, aborting and adding specs need
//! `admin`; reading needs any reading role.

use chrono::Utc;
use lambda_http::{Body, Request, Response};
use naksha_contracts::TenantId;
use naksha_core::auth::{Role, Verifier};
use naksha_core::http;
use naksha_core::http::{method, reader};
use naksha_core::problem::{FieldError, Problem};
use serde_json::{Map, Value, json};

use crate::engine::{StartError, StartRequest, start};
use crate::import::{Format, chaos_toolkit, detect, fis};
use crate::ports::{ChaosMessage, Halt, Queue, Runs, StoreError, World};
use crate::specs::{Spec, builtin, is_spec_id};

fn unavailable(e: StoreError) -> Problem {
    Problem::unavailable("the chaos store is unavailable; retry").with_internal(e)
}

fn json_object(req: &Request) -> Result<Map<String, Value>, Problem> {
    let bytes = http::body_bytes(req)?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(o)) => Ok(o),
        Ok(_) => Err(Problem::invalid_fields(vec![FieldError::new("", "must be a JSON object")])),
        Err(e) => Err(Problem::bad_request(format!("the body is not valid JSON: {e}"))),
    }
}

/// A spec by id: the built-in ones, then the tenant's own.
pub async fn find_spec<R: Runs>(runs: &R, tenant: &TenantId, id: &str) -> Result<Option<Spec>, StoreError> {
    if let Some(s) = builtin().unwrap_or_default().into_iter().find(|s| s.id == id) {
        return Ok(Some(s));
    }
    Ok(runs.specs(tenant).await?.into_iter().find(|s| s.id == id))
}

/// The routes' shared parts.
#[derive(Debug)]
pub struct ChaosApi<'a, W, R, H, Q> {
    pub world: &'a W,
    pub runs: &'a R,
    pub halt: &'a H,
    pub queue: &'a Q,
    /// Hosts HTTP probes may call.
    pub http_hosts: &'a [String],
}

/// `POST /chaos/run` (admin) `{"spec" | "spec_id", "target"?, "dry_run"?}` → 202.
pub async fn run<W: World, R: Runs, H: Halt, Q: Queue>(
    verifier: &Verifier,
    api: &ChaosApi<'_, W, R, H, Q>,
    req: Request,
) -> Result<Response<Body>, Problem> {
    method(&req, "POST")?;
    let p = verifier.authorize(req.headers(), Role::Admin).await?;
    let body = json_object(&req)?;
    let mut errors: Vec<FieldError> = body
        .keys()
        .filter(|k| !["spec", "spec_id", "target", "dry_run"].contains(&k.as_str()))
        .map(|k| {
            FieldError::new(
                format!("/{}", k.chars().take(64).collect::<String>()),
                "unknown field (expected spec, target, dry_run)",
            )
        })
        .collect();
    let spec_id = match (body.get("spec"), body.get("spec_id")) {
        (Some(Value::String(s)), None) | (None, Some(Value::String(s))) if is_spec_id(s) => Some(s.clone()),
        (Some(_), Some(_)) => {
            errors.push(FieldError::new("/spec", "give spec or spec_id, not both"));
            None
        }
        _ => {
            errors.push(FieldError::new("/spec", "required: a spec id, e.g. kill-pod (GET /chaos/specs lists them)"));
            None
        }
    };
    let target = match body.get("target") {
        None => None,
        Some(Value::String(t)) if (1..=256).contains(&t.len()) && !t.contains('#') => Some(t.clone()),
        Some(_) => {
            errors.push(FieldError::new("/target", "must be a resource, e.g. deployment/payments"));
            None
        }
    };
    let dry_run = match body.get("dry_run") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            errors.push(FieldError::new("/dry_run", "must be true or false"));
            false
        }
    };
    if !errors.is_empty() {
        return Err(Problem::invalid_fields(errors));
    }
    let spec_id = spec_id.unwrap_or_default();
    let spec = find_spec(api.runs, &p.tenant, &spec_id)
        .await
        .map_err(unavailable)?
        .ok_or_else(|| Problem::not_found(format!("no chaos spec {spec_id} (GET /chaos/specs lists them)")))?;
    let request = StartRequest { spec, target, dry_run, by: p.subject.clone() };
    let run = start(api.world, api.runs, api.halt, &p.tenant, request, Utc::now()).await.map_err(|e| match e {
        StartError::Invalid(d) => Problem::bad_request(d),
        StartError::Conflict(d) => Problem::conflict(d),
        StartError::Unavailable(e) => unavailable(e),
    })?;
    let msg = ChaosMessage { tenant: p.tenant.clone(), run_id: run.run_id.clone() };
    if let Err(e) = api.queue.send(&msg).await {
        // Nothing may be left half-made: the run and its lock go again.
        let _ = api.runs.delete(&p.tenant, &run.run_id).await;
        let _ = api.runs.unlock(&p.tenant, &run.target, &run.run_id).await;
        return Err(unavailable(e));
    }
    tracing::info!(run_id = %run.run_id, spec = %run.spec.id, target = %run.target, dry_run, "chaos run queued");
    http::json(
        202,
        &json!({
            "run_id": run.run_id, "status": run.status.as_str(), "spec": run.spec.id, "target": run.target, "dry_run": run.dry_run,
        }),
    )
}

/// `GET /chaos/runs` → the tenant's runs, newest first.
pub async fn list<R: Runs>(verifier: &Verifier, runs: &R, req: Request) -> Result<Response<Body>, Problem> {
    let p = reader(verifier, &req).await?;
    let all = runs.list(&p.tenant, 50).await.map_err(unavailable)?;
    let views: Vec<Value> = all.iter().map(|r| r.summary()).collect();
    http::json(200, &json!({"runs": views, "count": views.len()}))
}

fn run_id_param(req: &Request) -> Result<String, Problem> {
    let id = http::path_param(req, "run_id")?;
    let ok = (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
    if ok { Ok(id) } else { Err(Problem::not_found("no chaos run with that id")) }
}

/// `GET /chaos/runs/{run_id}` → the run: timeline, verdict, figures, agent runs, rollbacks.
pub async fn get<R: Runs>(verifier: &Verifier, runs: &R, req: Request) -> Result<Response<Body>, Problem> {
    let p = reader(verifier, &req).await?;
    let id = run_id_param(&req)?;
    let run = runs
        .load(&p.tenant, &id)
        .await
        .map_err(unavailable)?
        .ok_or_else(|| Problem::not_found("no chaos run with that id"))?;
    http::json(200, &run.view())
}

/// `POST /chaos/runs/{run_id}/abort` (admin) `{"reason"?}` → 202; 409 once the run is over.
pub async fn abort<R: Runs>(verifier: &Verifier, runs: &R, req: Request) -> Result<Response<Body>, Problem> {
    method(&req, "POST")?;
    let p = verifier.authorize(req.headers(), Role::Admin).await?;
    let id = run_id_param(&req)?;
    let body = json_object(&req)?;
    let mut errors: Vec<FieldError> = body
        .keys()
        .filter(|k| k.as_str() != "reason")
        .map(|k| {
            FieldError::new(
                format!("/{}", k.chars().take(64).collect::<String>()),
                "unknown field (only reason is accepted)",
            )
        })
        .collect();
    let reason = match body.get("reason") {
        None => format!("aborted by {}", p.subject),
        Some(Value::String(r)) if (1..=500).contains(&r.len()) => format!("{} (by {})", r, p.subject),
        Some(_) => {
            errors.push(FieldError::new("/reason", "1 to 500 characters"));
            String::new()
        }
    };
    if !errors.is_empty() {
        return Err(Problem::invalid_fields(errors));
    }
    if runs.load(&p.tenant, &id).await.map_err(unavailable)?.is_none() {
        return Err(Problem::not_found("no chaos run with that id"));
    }
    if !runs.request_abort(&p.tenant, &id, &reason).await.map_err(unavailable)? {
        return Err(Problem::conflict("the run is over; there is nothing to abort"));
    }
    http::json(202, &json!({"run_id": id, "abort_requested": reason}))
}

/// `GET /chaos/specs` → the built-in specs and the tenant's own.
pub async fn specs<R: Runs>(verifier: &Verifier, runs: &R, req: Request) -> Result<Response<Body>, Problem> {
    let p = reader(verifier, &req).await?;
    let mut out: Vec<Value> =
        builtin().unwrap_or_default().into_iter().map(|s| json!({"source": "builtin", "spec": s})).collect();
    out.extend(
        runs.specs(&p.tenant).await.map_err(unavailable)?.into_iter().map(|s| json!({"source": "tenant", "spec": s})),
    );
    http::json(200, &json!({"specs": out, "count": out.len()}))
}

/// `POST /chaos/specs` (admin): a native spec, a Chaos Toolkit experiment or an AWS FIS template
/// → 201 with what was mapped and what was not; 400 when nothing maps.
pub async fn add_spec<R: Runs>(
    verifier: &Verifier,
    runs: &R,
    http_hosts: &[String],
    req: Request,
) -> Result<Response<Body>, Problem> {
    method(&req, "POST")?;
    let p = verifier.authorize(req.headers(), Role::Admin).await?;
    let doc = Value::Object(json_object(&req)?);
    let imported = match detect(&doc) {
        None => {
            return Err(Problem::bad_request(
                "not a spec, a Chaos Toolkit experiment or an AWS FIS experiment template",
            ));
        }
        Some(Format::Native) => {
            let spec = Spec::parse(&doc, http_hosts).map_err(Problem::invalid_fields)?;
            crate::import::Imported {
                format: Format::Native,
                spec,
                mapped: vec!["the whole spec".into()],
                unmapped: Vec::new(),
            }
        }
        Some(Format::ChaosToolkit) => chaos_toolkit(&doc).map_err(|n| nothing_maps(&n))?,
        Some(Format::Fis) => fis(&doc).map_err(|n| nothing_maps(&n))?,
    };
    let problems = imported.spec.problems(http_hosts);
    if !problems.is_empty() {
        return Err(Problem::invalid_fields(problems).with_extension("unmapped", json!(imported.unmapped)));
    }
    if builtin().unwrap_or_default().iter().any(|s| s.id == imported.spec.id) {
        return Err(Problem::conflict(format!("{} is a built-in spec; give yours another id", imported.spec.id)));
    }
    if !runs.put_spec(&p.tenant, &imported.spec).await.map_err(unavailable)? {
        return Err(Problem::conflict(format!("a spec {} exists already", imported.spec.id)));
    }
    http::json(
        201,
        &json!({
            "spec": imported.spec, "format": imported.format, "mapped": imported.mapped, "unmapped": imported.unmapped,
        }),
    )
}

fn nothing_maps(n: &crate::import::NothingMaps) -> Problem {
    Problem::bad_request("nothing in the experiment maps onto a fault Naksha can inject; nothing was stored")
        .with_extension("format", json!(n.format))
        .with_extension("unmapped", json!(n.unmapped))
}

/// `POST /sim/scenarios/{name}` (admin, simulation mode): seed the caller's tenant → 201 with what
/// was created, reset or kept.
pub async fn seed_scenario<W, S, K, A, R2, C, I>(
    verifier: &Verifier,
    seeder: &crate::scenario::Seeder<'_, W, S, K, A, R2, C, I>,
    req: Request,
) -> Result<Response<Body>, Problem>
where
    W: naksha_act::sim::SimStore,
    S: naksha_agent::ports::WpkStore,
    K: naksha_core::signing::Sign,
    A: naksha_core::signing::Sign,
    R2: naksha_insight_stream::ports::RecordSink,
    C: naksha_core::metrics::CounterStore,
    I: naksha_insight_stream::ports::SeriesIndex,
{
    use crate::scenario::{SeedError, scenarios, seed};
    method(&req, "POST")?;
    let p = verifier.authorize(req.headers(), Role::Admin).await?;
    let name = http::path_param(&req, "name")?;
    let body = json_object(&req)?;
    if let Some(k) = body.keys().next() {
        return Err(Problem::invalid_fields(vec![FieldError::new(
            format!("/{}", k.chars().take(64).collect::<String>()),
            "unknown field (the scenario takes no parameters)",
        )]));
    }
    let all = scenarios().map_err(|e| Problem::internal("the scenarios shipped are broken").with_internal(e))?;
    let Some(scenario) = all.get(&name) else {
        let names: Vec<&str> = all.keys().map(String::as_str).collect();
        return Err(Problem::not_found(format!("no scenario with that name (there are: {})", names.join(", "))));
    };
    let seeded = seed(seeder, &p.tenant, &p.subject, &name, scenario, Utc::now()).await.map_err(|e| match e {
        SeedError::Unavailable(e) => {
            Problem::unavailable("the scenario could not be seeded completely; seeding again finishes it")
                .with_internal(e)
        }
        SeedError::Broken(e) => Problem::internal("the scenarios shipped are broken").with_internal(e),
    })?;
    tracing::info!(scenario = %name, resources = seeded.resources.len(), wpks = seeded.wpks.len(), history = seeded.history_events, "scenario seeded");
    http::json(201, &json!({"seeded": seeded, "description": scenario.description}))
}
