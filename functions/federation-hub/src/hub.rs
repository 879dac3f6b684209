//! The hub's use cases, generic over its ports: register, heartbeat, send a trigger, hand out
//! work, take a result, and the sweep. No AWS types here; `api.rs` and the bins wire them.

use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use naksha_contracts::TenantId;
use naksha_contracts::edge::{Delivery, EdgeResult, ResultStatus, TriggerOrder, WpkForm, WpkRef, p256_spki_from_pem};
use naksha_contracts::signing::{Purpose, Sealed, TrustedKeys};
use naksha_contracts::wpk::glob_match;
use naksha_core::signing::{Sign, seal};

use crate::nodes::{Liveness, Node, NodeStatus, Registration, selects};
use crate::ports::{Ending, Finished, HaltSource, HubError, Nodes, Registered, Work, WpkSource};
use crate::triggers::{ExecState, Execution, MAX_TARGETS, Target, Trigger, TriggerRequest, TriggerSpec, TriggerState};

/// Most deliveries one poll answers with.
pub const MAX_DELIVERIES: usize = 50;

/// Longest a poll may wait for work (API Gateway answers within 30 s).
pub const MAX_POLL_WAIT: StdDuration = StdDuration::from_secs(20);

/// How often a waiting poll looks again (two queries each time).
const POLL_RECHECK: StdDuration = StdDuration::from_millis(500);

/// The hub's trigger key: what signs every order, and the id nodes know it by.
#[derive(Debug)]
pub struct TriggerKey<K> {
    pub signer: K,
    /// The key id the signatures carry (the KMS key ARN), named inside every order too.
    pub kid: String,
}

/// `POST /federation/register`: the same key again refreshes labels and version; another key for
/// a registered node is a conflict.
pub async fn register<N: Nodes>(
    nodes: &N,
    tenant: &TenantId,
    node_id: &str,
    reg: Registration,
    now: DateTime<Utc>,
) -> Result<(Registered, Node), HubError> {
    let node = Node {
        node_id: node_id.to_owned(),
        kid: reg.kid,
        public_key_pem: reg.public_key_pem,
        labels: reg.labels,
        version: reg.version,
        registered_at: now,
        last_seen: now,
        status: NodeStatus::Online,
        halt_seen: false,
        halt_seen_at: None,
        partition_run: None,
        partition_until: None,
    };
    let outcome = nodes.register(tenant, &node).await?;
    if let Registered::OtherKey { kid } = &outcome {
        return Err(HubError::Conflict(format!(
            "node {node_id} is registered with another key ({kid}); a node keeps the key it registered with"
        )));
    }
    let stored = nodes.node(tenant, node_id).await?.unwrap_or(node);
    Ok((outcome, stored))
}

/// The hub does not answer a node a chaos experiment partitioned it from (D.5 `hub-partition`).
fn refuse_if_partitioned(node: &Node, now: DateTime<Utc>) -> Result<(), HubError> {
    match node.partitioned(now) {
        Some(until) => Err(HubError::Partitioned(until.to_rfc3339())),
        None => Ok(()),
    }
}

/// `POST /federation/heartbeat`: the node is online; it learns whether the tenant is halted.
pub async fn heartbeat<N: Nodes, H: HaltSource>(
    nodes: &N,
    halt: &H,
    tenant: &TenantId,
    node_id: &str,
    halt_seen: Option<bool>,
    now: DateTime<Utc>,
) -> Result<(Node, Option<String>), HubError> {
    // A partitioned node is not heard: its heartbeat changes nothing.
    if let Some(node) = nodes.node(tenant, node_id).await? {
        refuse_if_partitioned(&node, now)?;
    }
    let node = nodes.heartbeat(tenant, node_id, now, halt_seen).await?.ok_or_else(|| {
        HubError::NotFound(format!("node {node_id} is not registered; POST /federation/register first"))
    })?;
    Ok((node, halt.halted(tenant).await?))
}

/// What sending a trigger reads and writes.
#[derive(Debug)]
pub struct Sender<'a, N, W, S, H> {
    pub nodes: &'a N,
    pub work: &'a W,
    pub wpks: &'a S,
    pub halt: &'a H,
    /// The keys WPK versions verify with: nothing is sent that does not verify.
    pub wpk_keys: &'a TrustedKeys,
}

impl<N, W, S, H> Clone for Sender<'_, N, W, S, H> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<N, W, S, H> Copy for Sender<'_, N, W, S, H> {}

/// `POST /federation/triggers`: check the WPK (it must verify before anything is sent), resolve
/// the target nodes and queue one execution per node.
pub async fn create_trigger<N: Nodes, W: Work, S: WpkSource, H: HaltSource>(
    ports: &Sender<'_, N, W, S, H>,
    tenant: &TenantId,
    by: &str,
    req: TriggerRequest,
    now: DateTime<Utc>,
) -> Result<Trigger, HubError> {
    let Sender { nodes, work, wpks, halt, wpk_keys } = *ports;
    if let Some(reason) = halt.halted(tenant).await? {
        return Err(HubError::Halted(reason));
    }
    let stored = wpks.wpk(tenant, &req.wpk_id, req.wpk_version).await?.ok_or_else(|| {
        HubError::NotFound(match req.wpk_version {
            Some(v) => format!("no WPK {} v{v}", req.wpk_id),
            None => format!("no WPK {}", req.wpk_id),
        })
    })?;
    let signed = stored.verify(wpk_keys, tenant).map_err(|e| {
        tracing::warn!(wpk = %req.wpk_id, error = %e, "refusing to send a WPK that does not verify");
        HubError::Conflict(format!("WPK {} v{} does not verify; nothing was sent", stored.id, stored.version))
    })?;
    let resource = req.params.get("resource").and_then(|r| r.as_str()).unwrap_or_default();
    let globs = &signed.wpk().matcher.resources;
    if !globs.is_empty() && !globs.iter().any(|g| glob_match(g, resource)) {
        return Err(HubError::Invalid(format!("WPK {} may act on {}, not on {resource}", stored.id, globs.join(", "))));
    }
    let targets: Vec<String> = match &req.target {
        Target::Node(id) => match nodes.node(tenant, id).await? {
            Some(n) => vec![n.node_id],
            None => return Err(HubError::NotFound(format!("no node {id}"))),
        },
        Target::Labels(selector) => {
            nodes.nodes(tenant).await?.into_iter().filter(|n| selects(selector, &n.labels)).map(|n| n.node_id).collect()
        }
    };
    if targets.is_empty() {
        return Err(HubError::Conflict("no registered node carries those labels; nothing was sent".into()));
    }
    if targets.len() > MAX_TARGETS {
        return Err(HubError::Invalid(format!(
            "{} nodes match; one trigger addresses at most {MAX_TARGETS} (narrow the labels)",
            targets.len()
        )));
    }
    let trigger_id = format!("trg-{}", uuid::Uuid::now_v7().simple());
    let spec = TriggerSpec {
        trigger_id: trigger_id.clone(),
        wpk: WpkRef { id: stored.id.clone(), version: stored.version, sha256: signed.sha256().to_owned() },
        wpk_form: WpkForm::of(&stored),
        target: req.target,
        params: req.params,
        ttl_seconds: req.ttl_seconds,
        rollout: req.rollout,
        created_at: now,
        created_by: by.to_owned(),
        expires_at: now + Duration::seconds(i64::from(req.ttl_seconds)),
        nodes: targets.len() as u32,
    };
    let trigger =
        Trigger { spec, state: TriggerState::Running, counts: Default::default(), ended_at: None, abort_reason: None };
    let executions: Vec<Execution> = targets.iter().map(|n| Execution::queued(&trigger_id, n, now)).collect();
    work.create(tenant, &trigger, &executions).await?;
    tracing::info!(trigger_id = %trigger_id, nodes = executions.len(), wpk = %trigger.spec.wpk.id, "trigger queued");
    Ok(trigger)
}

/// What handing out work reads and writes, and the key that signs it.
#[derive(Debug)]
pub struct Handout<'a, N, W, H, K> {
    pub nodes: &'a N,
    pub work: &'a W,
    pub halt: &'a H,
    pub key: &'a TriggerKey<K>,
}

impl<N, W, H, K> Clone for Handout<'_, N, W, H, K> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<N, W, H, K> Copy for Handout<'_, N, W, H, K> {}

/// What a poll answers.
#[derive(Debug, Clone)]
pub struct Poll {
    pub deliveries: Vec<Delivery>,
    pub halted: Option<String>,
}

/// Hand out what is queued for the node (unless the tenant is halted): each execution becomes a
/// delivery signed for this node with the next seq, within its rollout's rate.
pub async fn release<N: Nodes, W: Work, H: HaltSource, K: Sign>(
    ports: &Handout<'_, N, W, H, K>,
    tenant: &TenantId,
    node_id: &str,
    now: DateTime<Utc>,
) -> Result<Option<String>, HubError> {
    let Handout { nodes, work, halt, key } = *ports;
    if let Some(reason) = halt.halted(tenant).await? {
        return Ok(Some(reason));
    }
    for trigger_id in work.pending(tenant, node_id).await? {
        let Some(trigger) = work.trigger(tenant, &trigger_id).await? else { continue };
        if trigger.state != TriggerState::Running {
            // An aborted rollout's queued executions are cancelled (normally already, by the abort).
            work.finish(
                tenant,
                &trigger_id,
                node_id,
                Ending::new(ExecState::Cancelled, "the rollout was aborted", now),
            )
            .await?;
            continue;
        }
        if now >= trigger.spec.expires_at {
            expire(work, tenant, &trigger, node_id, None, now).await?;
            continue;
        }
        if let Some(max) = trigger.spec.rollout.and_then(|r| r.max_per_minute)
            && !work.take_slot(tenant, &trigger_id, now.timestamp().div_euclid(60), max).await?
        {
            continue;
        }
        let seq = nodes.next_seq(tenant, node_id).await?;
        let order = TriggerOrder {
            node_id: node_id.to_owned(),
            trigger_id: trigger_id.clone(),
            wpk: trigger.spec.wpk.clone(),
            params: trigger.spec.params.clone(),
            kid: key.kid.clone(),
            nonce: uuid::Uuid::now_v7().simple().to_string(),
            issued_at: now,
            expires_at: trigger.spec.expires_at,
            seq,
        };
        let sealed = seal(&key.signer, Purpose::EdgeTrigger, tenant, &order)
            .await
            .map_err(|e| HubError::Signing(e.to_string()))?;
        if sealed.key_id != key.kid {
            return Err(HubError::Signing(format!("the trigger key signed as {}, not as {}", sealed.key_id, key.kid)));
        }
        let delivery =
            Delivery { trigger_id: trigger_id.clone(), seq, order: sealed, wpk: trigger.spec.wpk_form.clone() };
        if work.deliver(tenant, node_id, &delivery, now, trigger.spec.expires_at).await? {
            tracing::info!(trigger_id = %trigger_id, node_id, seq, "trigger delivered");
        }
    }
    Ok(None)
}

/// `GET /federation/triggers?after=<seq>&wait=<s>` (the node itself): release what is due, then
/// answer the node's deliveries after `after`; with `wait`, keep looking until there is one.
pub async fn poll<N: Nodes, W: Work, H: HaltSource, K: Sign>(
    ports: &Handout<'_, N, W, H, K>,
    tenant: &TenantId,
    node_id: &str,
    after: u64,
    wait: StdDuration,
) -> Result<Poll, HubError> {
    let Handout { nodes, work, .. } = *ports;
    match nodes.node(tenant, node_id).await? {
        None => {
            return Err(HubError::NotFound(format!(
                "node {node_id} is not registered; POST /federation/register first"
            )));
        }
        Some(node) => refuse_if_partitioned(&node, Utc::now())?,
    }
    let started = std::time::Instant::now();
    loop {
        let now = Utc::now();
        let halted = release(ports, tenant, node_id, now).await?;
        let deliveries = if halted.is_some() {
            Vec::new()
        } else {
            work.deliveries(tenant, node_id, after, now, MAX_DELIVERIES).await?
        };
        if !deliveries.is_empty() || halted.is_some() || started.elapsed() >= wait.min(MAX_POLL_WAIT) {
            return Ok(Poll { deliveries, halted });
        }
        tokio::time::sleep(POLL_RECHECK).await;
    }
}

async fn expire<W: Work>(
    work: &W,
    tenant: &TenantId,
    trigger: &Trigger,
    node_id: &str,
    delivery: Option<u64>,
    now: DateTime<Utc>,
) -> Result<(), HubError> {
    let reason = format!("not finished before the trigger expired at {}", trigger.spec.expires_at.to_rfc3339());
    let ending = Ending { delivery, ..Ending::new(ExecState::Expired, &reason, now) };
    work.finish(tenant, &trigger.spec.trigger_id, node_id, ending).await?;
    Ok(())
}

/// What taking a result did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reported {
    /// The execution ended with this result.
    Recorded,
    /// The same result again: nothing changed.
    Repeated,
    /// A refusal of a delivery that is no execution of this node (forged or redirected): kept
    /// as evidence on the node.
    RefusalKept,
}

/// `POST /federation/triggers/{id}/result` (the node itself): accept a result only when it is
/// signed by the node's registered key, names this node and trigger, and ends its execution;
/// then stop the rollout if failures reached their limit, or complete the trigger.
pub async fn report<N: Nodes, W: Work>(
    nodes: &N,
    work: &W,
    tenant: &TenantId,
    node_id: &str,
    trigger_id: &str,
    sealed: &Sealed,
    now: DateTime<Utc>,
) -> Result<Reported, HubError> {
    let node = nodes
        .node(tenant, node_id)
        .await?
        .ok_or_else(|| HubError::NotFound(format!("node {node_id} is not registered")))?;
    refuse_if_partitioned(&node, now)?;
    let spki = p256_spki_from_pem(&node.public_key_pem)
        .map_err(|e| HubError::Unavailable(naksha_core::StoreError(e.to_string())))?;
    let keys = TrustedKeys::from_public_keys([(node.kid.clone(), spki)]);
    let result: EdgeResult = sealed
        .open::<EdgeResult>(Purpose::EdgeResult, tenant, &keys)
        .map_err(|e| {
            HubError::Invalid(format!("the result is not signed by this node's registered key ({}): {e}", node.kid))
        })?
        .into_inner();
    if result.node_id != node_id || result.trigger_id != trigger_id {
        return Err(HubError::Invalid(format!(
            "the signed result is for node {} and trigger {}, not {node_id} and {trigger_id}",
            result.node_id, result.trigger_id
        )));
    }
    let execution = work.execution(tenant, trigger_id, node_id).await?;
    let same_delivery = execution.as_ref().is_some_and(|e| e.seq == Some(result.seq));
    if same_delivery && execution.as_ref().is_some_and(|e| e.result.as_ref() == Some(sealed)) {
        return Ok(Reported::Repeated);
    }
    let open = same_delivery && execution.as_ref().is_some_and(|e| !e.state.is_final());
    if !open {
        // A refusal of anything that is not this node's open execution (a forged, redirected or
        // replayed delivery) is evidence to keep, never a change of state.
        if result.status == ResultStatus::Rejected {
            tracing::warn!(node_id, trigger_id, seq = result.seq, refusal = result.refusal.as_deref().unwrap_or(""),
                reason = %result.reason, "a node refused a delivery that is not its open execution");
            work.record_refusal(tenant, node_id, &result, sealed).await?;
            return Ok(Reported::RefusalKept);
        }
        return Err(match execution {
            None => HubError::NotFound(format!("no execution of trigger {trigger_id} on node {node_id}")),
            Some(e) if e.state.is_final() => {
                HubError::Conflict(format!("the execution already ended as {}", e.state.as_str()))
            }
            Some(_) => HubError::Conflict(format!("seq {} is not the delivery this execution holds", result.seq)),
        });
    }
    let state = ExecState::of(result.status);
    let ending = Ending { result: Some(sealed), delivery: Some(result.seq), ..Ending::new(state, &result.reason, now) };
    match work.finish(tenant, trigger_id, node_id, ending).await? {
        Finished::Same => return Ok(Reported::Repeated),
        Finished::Already(prior) => {
            return Err(HubError::Conflict(format!("the execution already ended as {}", prior.as_str())));
        }
        Finished::Now => {}
    }
    tracing::info!(trigger_id, node_id, status = result.status.as_str(), "result recorded");
    conclude(work, tenant, trigger_id, now).await?;
    Ok(Reported::Recorded)
}

/// After an execution ended: abort the rollout if its failures reached the limit (cancelling
/// what was not handed out yet), or complete the trigger once every execution has ended.
pub async fn conclude<W: Work>(
    work: &W,
    tenant: &TenantId,
    trigger_id: &str,
    now: DateTime<Utc>,
) -> Result<(), HubError> {
    let Some(trigger) = work.trigger(tenant, trigger_id).await? else { return Ok(()) };
    if trigger.state != TriggerState::Running {
        return Ok(());
    }
    if let Some(reason) = trigger.abort_reason() {
        // Cancel what was not handed out first, so a trigger reads `aborted` only once nothing
        // of it can still start (handing out needs a queued execution).
        for e in work.executions(tenant, trigger_id).await? {
            if e.state == ExecState::Queued {
                let ending = Ending::new(ExecState::Cancelled, "the rollout was aborted", now);
                work.finish(tenant, trigger_id, &e.node_id, ending).await?;
            }
        }
        if work.end(tenant, trigger_id, Some(&reason), now).await? {
            tracing::warn!(trigger_id, reason = %reason, "rollout aborted");
        }
    } else if trigger.all_ended() && work.end(tenant, trigger_id, None, now).await? {
        tracing::info!(trigger_id, "trigger completed");
    }
    Ok(())
}

/// What one sweep did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Swept {
    pub nodes: usize,
    pub stale: usize,
    pub offline: usize,
    pub expired: usize,
    pub completed: usize,
}

/// The scheduled sweep: mark silent nodes `stale`, then `offline`; expire executions of triggers
/// past their time; complete triggers whose executions all ended.
pub async fn sweep<N: Nodes, W: Work>(
    nodes: &N,
    work: &W,
    liveness: &Liveness,
    now: DateTime<Utc>,
) -> Result<Swept, HubError> {
    let mut out = Swept::default();
    let all = nodes.all_nodes().await?;
    out.nodes = all.len();
    let mut tenants = std::collections::BTreeSet::new();
    for (tenant, node) in all {
        let status = liveness.status(node.last_seen, now);
        if status != node.status && nodes.set_status(&tenant, &node.node_id, status, node.last_seen).await? {
            match status {
                NodeStatus::Stale => out.stale += 1,
                NodeStatus::Offline => out.offline += 1,
                NodeStatus::Online => {}
            }
        }
        tenants.insert(tenant);
    }
    for tenant in tenants {
        for trigger in work.running(&tenant).await? {
            if now >= trigger.spec.expires_at {
                for e in work.executions(&tenant, &trigger.spec.trigger_id).await? {
                    if !e.state.is_final() {
                        expire(work, &tenant, &trigger, &e.node_id, e.seq, now).await?;
                        out.expired += 1;
                    }
                }
            }
            let before = work.trigger(&tenant, &trigger.spec.trigger_id).await?.map(|t| t.state);
            conclude(work, &tenant, &trigger.spec.trigger_id, now).await?;
            let after = work.trigger(&tenant, &trigger.spec.trigger_id).await?.map(|t| t.state);
            if before == Some(TriggerState::Running) && after == Some(TriggerState::Completed) {
                out.completed += 1;
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
