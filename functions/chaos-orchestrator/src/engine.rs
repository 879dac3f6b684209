//! Running an experiment: start one (choose and lock a target inside the blast radius), and advance
//! it one step per worker invocation — check the steady state, inject, watch the system notice and
//! heal, roll back, check again. Nothing here tells the agent what was injected: it watches the
//! world and the agent's runs, as anyone could.

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use naksha_act::sim::{inject, revert};
use naksha_contracts::TenantId;
use serde::Serialize;
use serde_json::{Value, json};

use crate::ports::{AgentRuns, EdgeTarget, Halt, Http, Runs, StoreError, Telemetry, World};
use crate::run::{AgentRun, ChaosRun, RollbackDone, Stage, Status, Verdict, events};
use crate::specs::{Probe, Rollback, Spec};

/// How long after its deadline a run may still wait for the steady state after its rollbacks.
pub const SETTLE_AFTER_ROLLBACK: i64 = 120;

/// How long a lock on a target outlives the run's deadline (a run that never finishes frees it).
pub const LOCK_GRACE: i64 = 600;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Unavailable(#[from] StoreError),
}

/// Everything a step needs.
#[derive(Debug)]
pub struct Ports<'a, W, R, A, T, H, X> {
    pub world: &'a W,
    pub runs: &'a R,
    pub agent: &'a A,
    pub telemetry: &'a T,
    pub halt: &'a H,
    pub http: &'a X,
}

impl<W, R, A, T, H, X> Clone for Ports<'_, W, R, A, T, H, X> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<W, R, A, T, H, X> Copy for Ports<'_, W, R, A, T, H, X> {}

/// What a run is asked to do.
#[derive(Debug, Clone)]
pub struct StartRequest {
    pub spec: Spec,
    pub target: Option<String>,
    pub dry_run: bool,
    /// Who asked (the token's subject, or the game-day schedule).
    pub by: String,
}

/// Create a run of `spec`: on `target` if given (it must be a chaos target the blast radius
/// covers), else on the first free one; the target is locked for the run.
pub async fn start<W: World, R: Runs, H: Halt>(
    world: &W,
    runs: &R,
    halt: &H,
    tenant: &TenantId,
    req: StartRequest,
    now: DateTime<Utc>,
) -> Result<ChaosRun, StartError> {
    let StartRequest { spec, target, dry_run, by } = req;
    let target = target.as_deref();
    if let Some(reason) = halt.halted(tenant).await? {
        return Err(StartError::Conflict(format!(
            "the tenant is halted ({reason}); no chaos runs until POST /agent/resume"
        )));
    }
    let eligible: Vec<String> = if spec.fault.kind.on_edge() {
        world.nodes(tenant).await?.into_iter().filter(|n| n.chaos_target).map(|n| n.node_id).collect()
    } else {
        world
            .resources(tenant)
            .await?
            .into_iter()
            .filter(|(_, r)| r.condition.chaos_target && r.kind == spec.blast_radius.kind)
            .map(|(name, _)| name)
            .collect()
    };
    let what = if spec.fault.kind.on_edge() {
        "edge nodes labelled chaos-target=true".to_owned()
    } else {
        format!("chaos targets of kind {}", spec.blast_radius.kind)
    };
    let recent = runs.list(tenant, 200).await?;
    let mut candidates: Vec<String> = match target {
        Some(t) if eligible.iter().any(|e| e == t) => vec![t.to_owned()],
        Some(t) => {
            return Err(StartError::Invalid(format!(
                "{t} is outside the blast radius of {}: only {what} may be chosen",
                spec.id
            )));
        }
        None if eligible.is_empty() => {
            return Err(StartError::Conflict(format!(
                "no {what} in this tenant (POST /sim/scenarios/default seeds some)"
            )));
        }
        None => eligible.clone(),
    };
    // The target broken least recently first: a fault repeated on one target within minutes is
    // the same incident to the cluster's monitoring.
    let last_run = |name: &str| recent.iter().filter(|r| r.target == name).map(|r| r.created_at).max();
    candidates.sort_by_key(|c| last_run(c));
    let allowed = spec.blast_radius.allowed(eligible.len());
    let active = recent.iter().filter(|r| !r.is_over() && r.spec.id == spec.id).count();
    if active >= allowed {
        return Err(StartError::Conflict(format!(
            "{active} run(s) of {} are in progress; its blast radius allows {allowed} at once",
            spec.id
        )));
    }
    let run_id = uuid::Uuid::now_v7().to_string();
    let until = now + Duration::seconds(spec.recovery_deadline_s as i64 + SETTLE_AFTER_ROLLBACK + LOCK_GRACE);
    for candidate in candidates {
        if runs.lock(tenant, &candidate, &run_id, until).await? {
            let run = ChaosRun::new(run_id, tenant.clone(), spec, candidate, dry_run, &by, now);
            if !runs.create(&run).await? {
                runs.unlock(tenant, &run.target, &run.run_id).await?;
                return Err(StartError::Conflict("a run with that id exists".into()));
            }
            return Ok(run);
        }
    }
    Err(StartError::Conflict(match target {
        Some(t) => format!("another chaos run is in progress on {t} (one at a time per resource)"),
        None => "every chaos target is in another run (one at a time per resource)".into(),
    }))
}

/// One probe's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProbeResult {
    pub probe: Probe,
    pub ok: bool,
    pub detail: String,
}

/// The run's target node, if it is an edge-node run.
async fn edge_target<W: World>(world: &W, run: &ChaosRun) -> Result<Option<EdgeTarget>, StoreError> {
    Ok(world.nodes(&run.tenant).await?.into_iter().find(|n| n.node_id == run.target))
}

async fn probe<W: World, T: Telemetry, X: Http>(
    world: &W,
    telemetry: &T,
    http: &X,
    run: &ChaosRun,
    p: &Probe,
    now: DateTime<Utc>,
) -> Result<ProbeResult, StoreError> {
    let (tenant, target) = (&run.tenant, run.target.as_str());
    let (ok, detail) = match p {
        Probe::ResourceHealth if run.spec.fault.kind.on_edge() => match edge_target(world, run).await? {
            Some(n) => {
                let partitioned = n.partition_until.is_some_and(|u| u > now);
                let ok = n.status == "online" && !partitioned;
                let why = if partitioned { " (partitioned from the hub)" } else { "" };
                (ok, format!("the hub sees the node {}{why}", n.status))
            }
            None => (false, "the node is not registered".to_owned()),
        },
        Probe::EdgeResults => {
            let all = world.executions_since(tenant, target, run.created_at).await?;
            let lost: Vec<&str> = all
                .iter()
                .filter(|e| matches!(e.state.as_str(), "expired" | "cancelled"))
                .map(|e| e.trigger_id.as_str())
                .collect();
            let pending = all.iter().filter(|e| matches!(e.state.as_str(), "queued" | "delivered")).count();
            let ok = lost.is_empty() && pending == 0;
            (
                ok,
                format!(
                    "{} trigger(s) sent to the node since the run started: {} with a result, {pending} pending, {} lost{}",
                    all.len(),
                    all.len() - pending - lost.len(),
                    lost.len(),
                    if lost.is_empty() { String::new() } else { format!(" ({})", lost.join(", ")) }
                ),
            )
        }
        Probe::ResourceHealth => match world.get(tenant, target).await? {
            Some(r) => {
                (r.healthy, if r.healthy { "healthy".to_owned() } else { format!("unhealthy: {}", json!(r.condition)) })
            }
            None => (false, "the resource does not exist".to_owned()),
        },
        Probe::Telemetry { metric, min, max } => match telemetry.latest(tenant, target, metric).await? {
            // No telemetry yet says nothing against the hypothesis.
            None => (true, format!("no {metric} reported yet")),
            Some((minute, mean)) => {
                let ok = min.is_none_or(|m| mean >= m) && max.is_none_or(|m| mean <= m);
                (ok, format!("{metric} = {mean} (minute {minute})"))
            }
        },
        Probe::Http { url, status } => match http.status(url).await {
            Ok(got) => (got == *status, format!("{url} answered {got}")),
            Err(e) => (false, format!("{url}: {e}")),
        },
    };
    Ok(ProbeResult { probe: p.clone(), ok, detail })
}

async fn steady_state<W: World, R, A, T: Telemetry, H, X: Http>(
    ports: &Ports<'_, W, R, A, T, H, X>,
    run: &ChaosRun,
    now: DateTime<Utc>,
) -> Result<(bool, Vec<ProbeResult>), StoreError> {
    let mut results = Vec::new();
    for p in &run.spec.steady_state {
        results.push(probe(ports.world, ports.telemetry, ports.http, run, p, now).await?);
    }
    Ok((results.iter().all(|r| r.ok), results))
}

fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn parse(t: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(t).ok().map(|t| t.with_timezone(&Utc))
}

/// Note what the agent did on the target since the fault went in.
async fn follow_agent<A: AgentRuns>(agent: &A, run: &mut ChaosRun, since: DateTime<Utc>) -> Result<(), StoreError> {
    let mut progress = agent.on_resource(&run.tenant, &run.target, &stamp(since)).await?;
    progress.retain(|p| parse(&p.created_at).is_some_and(|c| c >= since));
    progress.sort_by(|a, b| a.created_at.cmp(&b.created_at));
    for p in &progress {
        let detail = json!({"run_id": p.run_id, "signal": p.signal});
        let raised = p.signal_raised_at.as_deref().and_then(parse).or_else(|| parse(&p.created_at));
        if let Some(at) = raised {
            run.record(events::FIRST_ANOMALY, at, json!({"signal": p.signal, "requested_by": p.requested_by}));
        }
        if let Some(at) = parse(&p.created_at) {
            run.record(events::AGENT_RUN_STARTED, at, detail.clone());
        }
        if let (Some(at), Some(wpk)) = (p.milestones.get("decide").and_then(|t| parse(t)), &p.wpk_id) {
            run.record(events::WPK_CHOSEN, at, json!({"run_id": p.run_id, "wpk": wpk, "version": p.wpk_version}));
        }
        if !p.standing_approval
            && let Some(at) = p.milestones.get("gate").and_then(|t| parse(t))
            && (p.status == "awaiting_approval" || p.approved_at.is_some())
        {
            run.record(events::AWAITING_APPROVAL, at, detail.clone());
        }
        if !p.standing_approval
            && let Some(at) = p.approved_at.as_deref().and_then(parse)
        {
            run.record(events::APPROVED, at, json!({"run_id": p.run_id, "approved_by": p.approved_by}));
        }
        if let Some(at) = p.acted_at.as_deref().and_then(parse) {
            run.record(events::ACTED, at, json!({"run_id": p.run_id, "wpk": p.wpk_id}));
        }
        let seen = AgentRun {
            run_id: p.run_id.clone(),
            signal: p.signal.clone(),
            status: p.status.clone(),
            wpk: p.wpk_id.clone(),
            approved_by: p.approved_by.clone(),
            standing_approval: p.standing_approval,
            audit_seq: p.audit_seq,
            reason: p.reason.clone(),
        };
        match run.agent_runs.iter_mut().find(|a| a.run_id == seen.run_id) {
            Some(a) => *a = seen,
            None => run.agent_runs.push(seen),
        }
    }
    Ok(())
}

/// Change the target with `change`, rereading on a lost race (the agent may act meanwhile).
async fn change_world<W: World>(
    world: &W,
    tenant: &TenantId,
    target: &str,
    change: impl Fn(&naksha_act::sim::SimResource) -> naksha_act::sim::SimResource,
) -> Result<Option<bool>, StoreError> {
    for _ in 0..5 {
        let Some(before) = world.get(tenant, target).await? else { return Ok(None) };
        let after = change(&before);
        if after == before {
            return Ok(Some(false));
        }
        if world.replace(tenant, target, &before, &after).await? {
            return Ok(Some(true));
        }
    }
    Err(StoreError(format!("{target} kept changing; the world was not changed")))
}

/// Watch a partitioned node: the hub noticing its silence (its sweep marks it stale), then the
/// node heard again once the partition is over.
async fn watch_edge<W: World>(
    world: &W,
    run: &mut ChaosRun,
    injected: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let Some(node) = edge_target(world, run).await? else {
        run.conclude(Verdict::Aborted, format!("{} is no longer registered", run.target), now);
        return Ok(());
    };
    if node.status != "online" {
        run.record(events::FIRST_ANOMALY, now, json!({"node_status": node.status, "noticed_by": "the hub's sweep"}));
    }
    let ends = injected + Duration::seconds(run.spec.partition_s().unwrap_or(0) as i64);
    if now >= ends && node.status == "online" && node.last_seen >= ends {
        run.record(events::RESOURCE_HEALTHY, now, json!({"last_seen": stamp(node.last_seen)}));
    }
    Ok(())
}

/// Whether `name` is the target of another chaos run in progress.
async fn in_another_run<R: Runs>(runs: &R, run: &ChaosRun, name: &str) -> Result<bool, StoreError> {
    Ok(runs.list(&run.tenant, 200).await?.iter().any(|r| r.run_id != run.run_id && !r.is_over() && r.target == name))
}

/// Whether a resource outside the blast radius is still healthy.
async fn bystander_healthy<W: World>(world: &W, run: &ChaosRun, name: &str) -> Result<bool, StoreError> {
    if run.spec.fault.kind.on_edge() {
        Ok(world.nodes(&run.tenant).await?.iter().find(|n| n.node_id == name).is_none_or(|n| n.status == "online"))
    } else {
        Ok(world.get(&run.tenant, name).await?.is_none_or(|r| r.healthy))
    }
}

/// Advance a run by one step. `Ok(true)` when there is more to do.
pub async fn step<W: World, R: Runs, A: AgentRuns, T: Telemetry, H: Halt, X: Http>(
    ports: &Ports<'_, W, R, A, T, H, X>,
    run: &mut ChaosRun,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    if run.is_over() {
        return Ok(false);
    }
    if run.status == Status::Queued {
        run.status = Status::Running;
    }
    if run.stage.stoppable() {
        if let Some(reason) = run.abort_requested.clone() {
            run.conclude(Verdict::Aborted, format!("aborted: {reason}"), now);
        } else if let Some(reason) = ports.halt.halted(&run.tenant).await? {
            run.conclude(Verdict::Aborted, format!("the kill switch is on ({reason})"), now);
        }
    }
    let world = ports.world;
    match run.stage {
        Stage::SteadyBefore => {
            let (ok, results) = steady_state(ports, run, now).await?;
            if run.dry_run {
                let detail = json!({
                    "would_inject": run.spec.fault, "into": run.target, "steady_state_now": results,
                    "rollbacks": run.spec.rollbacks, "recovery_deadline_s": run.spec.recovery_deadline_s,
                });
                run.record(events::DRY_RUN, now, detail);
                run.reason = Some("dry run: nothing was injected".into());
                run.stage = Stage::Done;
                run.status = Status::Completed;
                ports.runs.unlock(&run.tenant, &run.target, &run.run_id).await?;
            } else if ok {
                run.record(events::STEADY_BEFORE, now, json!(results));
                run.stage = Stage::Inject;
            } else {
                run.record(events::STEADY_BEFORE, now, json!({"ok": false, "probes": results}));
                run.conclude(
                    Verdict::Aborted,
                    "the steady state did not hold before injection; nothing was injected",
                    now,
                );
            }
        }
        Stage::Inject if run.spec.fault.kind.on_edge() => {
            run.bystanders = world
                .nodes(&run.tenant)
                .await?
                .into_iter()
                .filter(|n| n.chaos_target && n.status == "online" && n.node_id != run.target)
                .map(|n| n.node_id)
                .collect();
            let until = now + Duration::seconds(run.spec.partition_s().unwrap_or(0) as i64);
            if world.partition(&run.tenant, &run.target, &run.run_id, until).await? {
                run.record(
                    events::INJECTED,
                    now,
                    json!({"fault": run.spec.fault, "target": run.target, "partitioned_until": stamp(until)}),
                );
                run.deadline_at = Some(now + Duration::seconds(run.spec.recovery_deadline_s as i64));
                run.stage = Stage::Watch;
            } else {
                run.conclude(
                    Verdict::Aborted,
                    format!("{} is not registered, or another run partitioned it", run.target),
                    now,
                );
            }
        }
        Stage::Inject => {
            // Who else is healthy now: they must stay so.
            run.bystanders = world
                .resources(&run.tenant)
                .await?
                .into_iter()
                .filter(|(name, r)| r.condition.chaos_target && r.healthy && *name != run.target)
                .map(|(name, _)| name)
                .collect();
            let (Some(kind), params, id) =
                (run.spec.fault.kind.world(), run.spec.fault.params.clone(), run.run_id.clone())
            else {
                run.conclude(Verdict::Aborted, "the fault does not go into the simulated world", now);
                run.updated_at = now;
                return Ok(true);
            };
            let at = stamp(now);
            match change_world(world, &run.tenant, &run.target, |r| inject(r, &id, kind, &params, &at)).await? {
                None => run.conclude(Verdict::Aborted, format!("{} no longer exists", run.target), now),
                Some(_) => {
                    run.record(events::INJECTED, now, json!({"fault": run.spec.fault, "target": run.target}));
                    run.deadline_at = Some(now + Duration::seconds(run.spec.recovery_deadline_s as i64));
                    run.stage = Stage::Watch;
                }
            }
        }
        Stage::Watch => {
            let injected = run.at(events::INJECTED).unwrap_or(now);
            if run.spec.fault.kind.on_edge() {
                watch_edge(world, run, injected, now).await?;
            } else {
                follow_agent(ports.agent, run, injected).await?;
                let target = world.get(&run.tenant, &run.target).await?;
                if target.as_ref().is_some_and(|r| r.healthy) {
                    run.record(events::RESOURCE_HEALTHY, now, Value::Null);
                }
            }
            if run.at(events::RESOURCE_HEALTHY).is_some() {
                let (ok, results) = steady_state(ports, run, now).await?;
                if ok {
                    run.record(events::STEADY_AFTER, now, json!(results));
                    let how = if run.spec.fault.kind.on_edge() {
                        "the node is heard again and no result sent to it was lost"
                    } else {
                        "the system noticed, acted and the steady state holds again"
                    };
                    // Recovered once every stage is on record. The agent's change heals the world
                    // a moment before its run says it acted, so a step can find the target
                    // healthy before the act can be read: the next step reads it (and a target
                    // healed by something else never recovers, it runs out of time).
                    if run.missing_stage().is_none() {
                        run.conclude(Verdict::Recovered, how, now);
                    }
                }
            }
            if run.stage == Stage::Watch {
                for name in run.bystanders.clone() {
                    // Another experiment's target is that experiment's business, not a deviation.
                    if !bystander_healthy(world, run, &name).await? && !in_another_run(ports.runs, run, &name).await? {
                        run.conclude(
                            Verdict::Aborted,
                            format!("{name}, outside the blast radius, became unhealthy"),
                            now,
                        );
                        break;
                    }
                }
            }
            if run.stage == Stage::Watch && run.deadline_at.is_some_and(|d| now >= d) {
                let missing = run.missing_stage().unwrap_or(events::STEADY_AFTER);
                let why = run
                    .agent_runs
                    .last()
                    .and_then(|a| a.reason.clone())
                    .map(|r| format!(" (the agent: {r})"))
                    .unwrap_or_default();
                run.conclude(
                    Verdict::NotRecovered,
                    format!(
                        "{missing} never happened within the {} s recovery deadline{why}",
                        run.spec.recovery_deadline_s
                    ),
                    now,
                );
            }
        }
        Stage::Rollback => {
            for rb in run.spec.rollbacks.clone() {
                let result = match rb {
                    Rollback::RevertFault if run.spec.fault.kind.on_edge() => {
                        if world.lift_partition(&run.tenant, &run.target, &run.run_id).await? {
                            "lifted the partition"
                        } else {
                            "no partition of this run left"
                        }
                    }
                    Rollback::RevertFault => {
                        let id = run.run_id.clone();
                        match change_world(world, &run.tenant, &run.target, |r| revert(r, &id)).await? {
                            Some(true) => "reverted what was left of the fault",
                            Some(false) => "nothing left to revert",
                            None => "the resource no longer exists",
                        }
                    }
                };
                if !run.rollbacks.iter().any(|d| d.action == "revert-fault") {
                    run.rollbacks.push(RollbackDone { action: "revert-fault".into(), at: now, result: result.into() });
                }
            }
            ports.runs.unlock(&run.tenant, &run.target, &run.run_id).await?;
            run.record(events::ROLLBACKS_DONE, now, Value::Null);
            run.stage = Stage::SteadyAfterRollback;
        }
        Stage::SteadyAfterRollback => {
            let (ok, results) = steady_state(ports, run, now).await?;
            let rolled = run.at(events::ROLLBACKS_DONE).unwrap_or(now);
            if ok || now - rolled >= Duration::seconds(SETTLE_AFTER_ROLLBACK) {
                run.record(events::STEADY_AFTER_ROLLBACK, now, json!({"ok": ok, "probes": results}));
                run.stage = Stage::Done;
                run.status = if run.verdict == Some(Verdict::Aborted) { Status::Aborted } else { Status::Completed };
            }
        }
        Stage::Done => {}
    }
    run.updated_at = now;
    Ok(!run.is_over())
}

#[cfg(test)]
mod tests;
