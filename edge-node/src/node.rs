//! The node's life: register (pinning the hub's keys the first time), then heartbeat, poll,
//! verify, act, and deliver signed results — and keep going while the hub is unreachable.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::Utc;
use naksha_act::k8s::K8sAdapter;
use naksha_act::sim::SimAdapter;
use naksha_act::{Actuator, Adapters};
use naksha_contracts::TenantId;
use naksha_contracts::edge::{
    Accepted, Delivery, EdgeResult, HubKey, HubKeys, NodeView, Refusal, ResultStatus, StepOutcome, WpkRef,
    check_delivery, key_fingerprint, state_sha256,
};
use naksha_contracts::signing::{
    LocalKey, Purpose, Sealed, TrustedKeys, canonical_json, public_key_pem, sealed_bytes, sha256_hex,
};
use serde_json::Value;

use crate::hub::{Hub, HubError, Registered};
use crate::store::State;

/// How the node runs.
#[derive(Debug, Clone)]
pub struct Settings {
    pub labels: BTreeMap<String, String>,
    pub version: String,
    /// Between polls when there is nothing to do.
    pub poll_interval: Duration,
    /// How long the hub may hold a poll open waiting for work.
    pub wait: u64,
    pub heartbeat: Duration,
    /// Hub keys from configuration: pinned instead of the ones a first registration hands out.
    pub hub_keys: Option<Vec<HubKey>>,
    /// A pause before each act (simulating slow work; for demos and crash tests).
    pub act_delay: Duration,
    pub k8s: Option<K8sAdapter>,
    pub world: Option<PathBuf>,
}

/// What the node needs at hand once registered.
pub struct Node {
    pub hub: Hub,
    pub state: State,
    pub key: LocalKey,
    pub node_id: String,
    pub tenant: TenantId,
    pub settings: Settings,
    pub adapters: Adapters<State, State>,
    pub stop: Arc<AtomicBool>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node").field("node_id", &self.node_id).field("tenant", &self.tenant).finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("{0}")]
    State(#[from] crate::store::StateError),
    #[error("{0}")]
    Hub(#[from] HubError),
    #[error("{0}")]
    Config(String),
}

/// Backoff with full jitter: a random wait up to `min(cap, base * 2^attempt)`.
pub fn backoff(attempt: u32, base: Duration, cap: Duration) -> Duration {
    let ceiling = base.saturating_mul(1u32 << attempt.min(16)).min(cap);
    let ms = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX).max(1);
    Duration::from_millis(fastrand::u64(ms / 2..=ms))
}

/// The node's key: generated on first start and kept in the store (never printed).
fn node_key(state: &State) -> Result<LocalKey, NodeError> {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    if let Some(stored) = state.get("node_key")? {
        let der =
            b64.decode(stored).map_err(|e| NodeError::Config(format!("the stored node key is unreadable: {e}")))?;
        let probe = LocalKey::from_pkcs8("probe", &der).map_err(|e| NodeError::Config(e.to_string()))?;
        let kid = key_fingerprint("node", &probe.public_key_der());
        return LocalKey::from_pkcs8(&kid, &der).map_err(|e| NodeError::Config(e.to_string()));
    }
    let fresh = LocalKey::generate("pending").map_err(|e| NodeError::Config(e.to_string()))?;
    let kid = key_fingerprint("node", &fresh.public_key_der());
    state.set("node_key", &b64.encode(fresh.pkcs8_der()))?;
    LocalKey::from_pkcs8(&kid, fresh.pkcs8_der()).map_err(|e| NodeError::Config(e.to_string()))
}

async fn sleep_unless_stopped(stop: &AtomicBool, d: Duration) {
    let until = tokio::time::Instant::now() + d;
    while !stop.load(Ordering::Relaxed) && tokio::time::Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(100).min(until - tokio::time::Instant::now())).await;
    }
}

/// Register (retrying while the hub is unreachable); pin the hub's keys the first time.
pub async fn start(hub: Hub, state: State, settings: Settings, stop: Arc<AtomicBool>) -> Result<Node, NodeError> {
    let key = node_key(&state)?;
    let pem = public_key_pem(&key.public_key_der());
    let mut attempt = 0;
    let registered: Registered = loop {
        match hub.register(&pem, &settings.labels, &settings.version).await {
            Ok(r) => break r,
            Err(HubError::Unreachable(why)) => {
                let wait = backoff(attempt, Duration::from_millis(500), Duration::from_secs(30));
                tracing::warn!(error = %why, retry_in_ms = wait.as_millis() as u64, "registration: hub unreachable");
                attempt += 1;
                sleep_unless_stopped(&stop, wait).await;
                if stop.load(Ordering::Relaxed) {
                    return Err(NodeError::Config("stopped before registering".into()));
                }
            }
            Err(e) => return Err(e.into()),
        }
    };
    if registered.kid != key.id() {
        return Err(NodeError::Config(format!("the hub names this node's key {}, not {}", registered.kid, key.id())));
    }
    let tenant = TenantId::from_record(&registered.tenant).map_err(|e| NodeError::Config(e.to_string()))?;
    if let Some(known) = state.get("tenant")?.filter(|t| *t != registered.tenant) {
        return Err(NodeError::Config(format!(
            "this state directory belongs to tenant {known}, not {}",
            registered.tenant
        )));
    }
    state.set("tenant", tenant.as_str())?;
    state.set("node_id", &registered.node_id)?;
    state.set("kid", key.id())?;
    if state.hub_keys()?.is_empty() {
        // Pinned once: later keys are trusted only through announcements signed by these.
        let pinned = match &settings.hub_keys {
            Some(configured) => configured.clone(),
            None => registered.keys.iter().filter(|k| k.announcement.is_none()).map(|k| k.key.clone()).collect(),
        };
        let keys = HubKeys::pin(pinned).map_err(|e| NodeError::Config(format!("the hub's keys: {e}")))?;
        state.set_hub_keys(&keys)?;
        let wpk: Vec<(String, String)> =
            registered.wpk_keys.iter().map(|k| (k.kid.clone(), k.public_key_pem.clone())).collect();
        state.set_wpk_keys(&wpk)?;
        tracing::info!(hub_keys = keys.len(), wpk_keys = wpk.len(), "pinned the hub's keys");
    }
    if let Some(path) = &settings.world {
        seed_world(&state, &tenant, path)?;
    }
    tracing::info!(node_id = %registered.node_id, tenant = %tenant, kid = %key.id(), "registered");
    let adapters =
        Adapters { sim: Some(SimAdapter { store: state.clone() }), k8s: settings.k8s.clone(), receipts: state.clone() };
    Ok(Node { hub, state, key, node_id: registered.node_id, tenant, settings, adapters, stop })
}

/// `--world FILE`: `{"deployment/payments": {"kind", "replicas", "healthy", "version"}, ...}`,
/// put into the local world where absent.
fn seed_world(state: &State, tenant: &TenantId, path: &std::path::Path) -> Result<(), NodeError> {
    let text = std::fs::read_to_string(path).map_err(|e| NodeError::Config(format!("{}: {e}", path.display())))?;
    let doc: BTreeMap<String, Value> =
        serde_json::from_str(&text).map_err(|e| NodeError::Config(format!("{}: {e}", path.display())))?;
    for (resource, r) in doc {
        let r = naksha_act::sim::SimResource::parse(&r).map_err(|e| {
            NodeError::Config(format!(
                "{resource}: {}",
                e.iter().map(|f| f.detail.clone()).collect::<Vec<_>>().join("; ")
            ))
        })?;
        state.seed(tenant, &resource, &r)?;
    }
    Ok(())
}

impl Node {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Who is checking a delivery: this node, its pinned keys, the kill switch as last heard.
    fn view<'a>(
        &'a self,
        hub_keys: &'a HubKeys,
        wpk_keys: &'a TrustedKeys,
        last_seq: u64,
    ) -> Result<NodeView<'a>, NodeError> {
        Ok(NodeView {
            tenant: &self.tenant,
            node_id: &self.node_id,
            hub_keys,
            wpk_keys,
            last_seq,
            halted: self.state.halted()?,
            now: Utc::now(),
        })
    }

    fn sign(&self, result: &EdgeResult) -> Result<Sealed, NodeError> {
        let bytes = sealed_bytes(Purpose::EdgeResult, &self.tenant, result);
        let sig = self.key.sign(&bytes).map_err(|e| NodeError::Config(e.to_string()))?;
        Ok(Sealed::new(&bytes, &sig))
    }

    /// Run until stopped: resume unfinished work, then heartbeat, poll, act, deliver results.
    pub async fn run(&self) -> Result<(), NodeError> {
        for d in self.state.unfinished()? {
            tracing::info!(trigger_id = %d.trigger_id, seq = d.seq, "resuming a trigger accepted before a stop");
            self.resume(&d).await?;
        }
        let mut last_heartbeat: Option<tokio::time::Instant> = None;
        let mut last_keys = tokio::time::Instant::now();
        let mut failures = 0u32;
        while !self.stopped() {
            if last_heartbeat.is_none_or(|t| t.elapsed() >= self.settings.heartbeat) {
                match self.hub.heartbeat(self.state.halted()?).await {
                    Ok(halted) => {
                        self.set_halted(halted)?;
                        last_heartbeat = Some(tokio::time::Instant::now());
                    }
                    Err(e) => tracing::warn!(error = %e, "heartbeat failed"),
                }
            }
            if last_keys.elapsed() >= Duration::from_secs(300) {
                self.refresh_keys().await;
                last_keys = tokio::time::Instant::now();
            }
            let polled = self.poll_once().await;
            self.deliver_results().await;
            match polled {
                Ok(n) => {
                    failures = 0;
                    if n == 0 {
                        sleep_unless_stopped(&self.stop, jittered(self.settings.poll_interval)).await;
                    }
                }
                Err(NodeError::Hub(HubError::Unreachable(why))) => {
                    let wait = backoff(
                        failures,
                        self.settings.poll_interval.max(Duration::from_millis(200)),
                        Duration::from_secs(30),
                    );
                    tracing::warn!(error = %why, retry_in_ms = wait.as_millis() as u64, "poll: hub unreachable; holding results");
                    failures = failures.saturating_add(1);
                    sleep_unless_stopped(&self.stop, wait).await;
                }
                Err(e) => return Err(e),
            }
        }
        self.deliver_results().await;
        tracing::info!("stopped");
        Ok(())
    }

    fn set_halted(&self, halted: bool) -> Result<(), NodeError> {
        if halted != self.state.halted()? {
            self.state.set("halted", if halted { "true" } else { "false" })?;
            if halted {
                tracing::warn!("the tenant is halted: running nothing until it is resumed");
            } else {
                tracing::info!("the tenant was resumed");
            }
        }
        Ok(())
    }

    /// Poll once and handle every delivery, lowest seq first. The number handled.
    pub async fn poll_once(&self) -> Result<usize, NodeError> {
        let work = self.hub.poll(self.state.last_seq()?, self.settings.wait).await?;
        self.set_halted(work.halted)?;
        let mut deliveries: Vec<(Value, Result<Delivery, String>)> = work.deliveries();
        deliveries.sort_by_key(|(_, d)| d.as_ref().map(|d| d.seq).unwrap_or(0));
        let mut n = 0;
        for (raw, d) in deliveries {
            if self.stopped() {
                break;
            }
            // What was refused once is not judged or reported again (the hub stops serving it
            // once it has the report; until then a poll may hand it back).
            let fingerprint = sha256_hex(&canonical_json(&raw));
            if self.state.refused(&fingerprint)? {
                continue;
            }
            n += 1;
            match d {
                Ok(d) => self.handle(&d, &fingerprint).await?,
                Err(why) => {
                    let trigger_id =
                        raw["trigger_id"].as_str().unwrap_or("unknown").chars().take(128).collect::<String>();
                    let seq = raw["seq"].as_u64().unwrap_or(0);
                    let refusal = Refusal::Malformed(format!("the delivery does not parse: {why}"));
                    self.refuse(&trigger_id, seq, &refusal, &fingerprint)?;
                }
            }
        }
        Ok(n)
    }

    /// Verify a delivery; refuse it with its reason, or accept and run it.
    pub async fn handle(&self, d: &Delivery, fingerprint: &str) -> Result<(), NodeError> {
        let (hub_keys, wpk_keys) = (self.state.hub_keys()?, self.state.wpk_keys()?);
        let view = self.view(&hub_keys, &wpk_keys, self.state.last_seq()?)?;
        match check_delivery(d, &view, &self.state) {
            Err(refusal) => self.refuse(&d.trigger_id, d.seq, &refusal, fingerprint),
            Ok(accepted) => {
                let (id, version) = (accepted.wpk.wpk().id.clone(), accepted.wpk.wpk().version);
                if !self.state.accept(d, &accepted.order.nonce, &id, version)? {
                    return Ok(());
                }
                tracing::info!(trigger_id = %d.trigger_id, seq = d.seq, wpk = %id, version, "trigger accepted");
                self.execute(&accepted).await
            }
        }
    }

    fn refuse(&self, trigger_id: &str, seq: u64, refusal: &Refusal, fingerprint: &str) -> Result<(), NodeError> {
        tracing::warn!(trigger_id, seq, refusal = refusal.code(), reason = %refusal, "trigger refused");
        let result = EdgeResult {
            trigger_id: trigger_id.to_owned(),
            node_id: self.node_id.clone(),
            seq,
            status: ResultStatus::Rejected,
            reason: refusal.to_string(),
            refusal: Some(refusal.code().to_owned()),
            wpk: None,
            steps: Vec::new(),
            finished_at: Utc::now(),
        };
        let sealed = self.sign(&result)?;
        self.state.refuse(&result, &sealed, fingerprint)?;
        Ok(())
    }

    /// Re-verify a trigger accepted before a stop (keys may have rotated, nothing else) and run
    /// it to the end: steps whose receipts exist are not carried out again.
    async fn resume(&self, d: &Delivery) -> Result<(), NodeError> {
        let (hub_keys, wpk_keys) = (self.state.hub_keys()?, self.state.wpk_keys()?);
        // The replay checks passed when it was accepted (its own nonce and seq are recorded).
        let view = self.view(&hub_keys, &wpk_keys, d.seq.saturating_sub(1))?;
        struct Resuming;
        impl naksha_contracts::edge::NodeMemory for Resuming {
            fn seen_nonce(&self, _: &str) -> bool {
                false
            }
            fn highest_version(&self, _: &str) -> Option<u32> {
                None
            }
        }
        match check_delivery(d, &view, &Resuming) {
            Ok(accepted) => self.execute(&accepted).await,
            Err(refusal) => {
                // Expired while the node was down, say: it ends rejected, never half-run.
                let result = self.result(
                    &d.trigger_id,
                    d.seq,
                    ResultStatus::Rejected,
                    refusal.to_string(),
                    Some(refusal.code()),
                    None,
                    Vec::new(),
                );
                let sealed = self.sign(&result)?;
                self.state.finish(&result, &sealed)?;
                tracing::warn!(trigger_id = %d.trigger_id, refusal = refusal.code(), reason = %refusal, "an unfinished trigger was not resumed");
                Ok(())
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn result(
        &self,
        trigger_id: &str,
        seq: u64,
        status: ResultStatus,
        reason: String,
        refusal: Option<&str>,
        wpk: Option<WpkRef>,
        steps: Vec<StepOutcome>,
    ) -> EdgeResult {
        EdgeResult {
            trigger_id: trigger_id.to_owned(),
            node_id: self.node_id.clone(),
            seq,
            status,
            reason,
            refusal: refusal.map(str::to_owned),
            wpk,
            steps,
            finished_at: Utc::now(),
        }
    }

    /// Carry out the WPK's steps through the act adapters, then check its `verify` conditions.
    async fn execute(&self, accepted: &Accepted) -> Result<(), NodeError> {
        let order = &accepted.order;
        let wpk = accepted.wpk.wpk();
        let resource = order.resource().unwrap_or_default().to_owned();
        let mut steps = Vec::new();
        let mut failure: Option<String> = None;
        let mut halted = false;
        for (i, step) in wpk.steps.iter().enumerate() {
            if self.stopped() {
                tracing::info!(trigger_id = %order.trigger_id, step = i, "stopping between steps; the trigger resumes at the next start");
                return Ok(());
            }
            if self.state.halted()? {
                failure = Some(format!("the tenant was halted before step {i}; nothing more was done"));
                halted = true;
                break;
            }
            let target = step.target.clone().unwrap_or_else(|| resource.clone());
            let before = self.adapters.describe(&self.tenant, &step.adapter, &target, &step.args).await;
            let before_sha = state_sha256(&before.as_ref().ok().cloned().flatten().unwrap_or(Value::Null));
            if wpk.safety.dry_run
                && let Err(e) =
                    self.adapters.dry_run(&self.tenant, &step.adapter, &step.action, &target, &step.args).await
            {
                failure = Some(format!("step {i} ({} {} on {target}): dry-run failed: {e}", step.adapter, step.action));
                steps.push(outcome(i, step, &target, &before_sha, &before_sha, false, Some(e.to_string())));
                break;
            }
            if !self.settings.act_delay.is_zero() {
                tokio::time::sleep(self.settings.act_delay).await;
            }
            let key = format!("edge:{}:{}:{i}", order.trigger_id, order.seq);
            match self.adapters.execute(&self.tenant, &step.adapter, &step.action, &target, &step.args, &key).await {
                Ok((_, reused)) => {
                    let after = self.adapters.describe(&self.tenant, &step.adapter, &target, &step.args).await;
                    let after_sha = state_sha256(&after.ok().flatten().unwrap_or(Value::Null));
                    tracing::info!(trigger_id = %order.trigger_id, step = i, action = %step.action, target = %target, reused, "step done");
                    steps.push(outcome(i, step, &target, &before_sha, &after_sha, reused, None));
                }
                Err(e) => {
                    failure = Some(format!("step {i} ({} {} on {target}) failed: {e}", step.adapter, step.action));
                    steps.push(outcome(i, step, &target, &before_sha, &before_sha, false, Some(e.to_string())));
                    break;
                }
            }
        }
        if failure.is_none()
            && let Some(verify) = &wpk.verify
        {
            let adapter = wpk.steps.first().map_or("sim", |s| s.adapter.as_str());
            let state =
                self.adapters.describe(&self.tenant, adapter, &resource, &serde_json::Map::new()).await.ok().flatten();
            let failures = verify.failures(state.as_ref().unwrap_or(&Value::Null));
            if !failures.is_empty() {
                failure = Some(format!("verification failed: {}", failures.join("; ")));
            }
        }
        let wpk_ref = Some(order.wpk.clone());
        let (id, seq) = (order.trigger_id.as_str(), order.seq);
        let result = match failure {
            None => self.result(id, seq, ResultStatus::Succeeded, "acted and verified".into(), None, wpk_ref, steps),
            Some(why) if halted => {
                self.result(id, seq, ResultStatus::Rejected, why, Some(Refusal::Halted.code()), wpk_ref, steps)
            }
            Some(why) => self.result(id, seq, ResultStatus::Failed, why, None, wpk_ref, steps),
        };
        let sealed = self.sign(&result)?;
        self.state.finish(&result, &sealed)?;
        tracing::info!(trigger_id = %result.trigger_id, seq = result.seq, status = result.status.as_str(), reason = %result.reason, "trigger finished");
        Ok(())
    }

    /// Hand every held result to the hub; keep what it could not take (unreachable) for later.
    pub async fn deliver_results(&self) {
        let pending = match self.state.outbox() {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "the outbox cannot be read");
                return;
            }
        };
        for p in pending {
            match self.hub.result(&p.trigger_id, &p.result).await {
                Ok(outcome) => {
                    tracing::info!(trigger_id = %p.trigger_id, outcome = %outcome, "result delivered");
                    let _ = self.state.sent(p.id, &outcome);
                }
                Err(HubError::Refused { status, detail }) => {
                    // The hub heard it and said no: keep the answer, stop retrying.
                    tracing::warn!(trigger_id = %p.trigger_id, status, detail = %detail, "the hub refused a result");
                    let _ = self.state.sent(p.id, &format!("refused ({status}): {detail}"));
                }
                Err(e) => {
                    tracing::warn!(trigger_id = %p.trigger_id, attempts = p.attempts + 1, error = %e, "result held for later");
                    let _ = self.state.attempted(p.id);
                    return;
                }
            }
        }
    }

    /// Trust keys announced since registration, when a pinned key vouches for them.
    async fn refresh_keys(&self) {
        let served = match self.hub.keys().await {
            Ok(k) => k,
            Err(e) => {
                tracing::warn!(error = %e, "could not fetch the hub's keys");
                return;
            }
        };
        let Ok(mut pinned) = self.state.hub_keys() else { return };
        let mut changed = false;
        for k in served.keys {
            let Some(ann) = &k.announcement else { continue };
            match pinned.accept(ann, Utc::now()) {
                Ok(true) => {
                    tracing::info!(kid = %k.key.kid, vouched_by = %ann.key_id, "trusting an announced hub key");
                    changed = true;
                }
                Ok(false) => {}
                Err(e) => tracing::warn!(kid = %k.key.kid, error = %e, "refusing an announced hub key"),
            }
        }
        if changed && let Err(e) = self.state.set_hub_keys(&pinned) {
            tracing::error!(error = %e, "could not keep the new hub keys");
        }
    }
}

fn outcome(
    i: usize,
    step: &naksha_contracts::wpk::Step,
    target: &str,
    before: &str,
    after: &str,
    reused: bool,
    error: Option<String>,
) -> StepOutcome {
    StepOutcome {
        step: i as u32,
        adapter: step.adapter.clone(),
        action: step.action.clone(),
        target: target.to_owned(),
        before_sha256: before.to_owned(),
        after_sha256: after.to_owned(),
        reused,
        error,
    }
}

fn jittered(d: Duration) -> Duration {
    let ms = u64::try_from(d.as_millis()).unwrap_or(1000).max(1);
    Duration::from_millis(ms + fastrand::u64(0..=ms / 4))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_world_seeds_a_node() {
        let dir = std::env::temp_dir().join(format!("edge-world-{}-{}", std::process::id(), fastrand::u64(..)));
        let state = State::open(&dir).unwrap();
        let tenant = TenantId::from_record("acme").unwrap();
        let sample = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../events/edge-world.json");
        seed_world(&state, &tenant, &sample).unwrap();
        let status = state.status().unwrap();
        assert_eq!(status["world"].as_array().unwrap().len(), 2);
        assert_eq!(status["world"][1]["doc"]["healthy"], false, "{status}");
        let bad = dir.join("bad.json");
        std::fs::write(&bad, r#"{"deployment/x": {"kind": "deployment"}}"#).unwrap();
        assert!(seed_world(&state, &tenant, &bad).is_err(), "an incomplete resource is refused");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn backoff_grows_to_its_cap_with_jitter() {
        let base = Duration::from_millis(100);
        let cap = Duration::from_secs(5);
        for attempt in 0..20 {
            let d = backoff(attempt, base, cap);
            let ceiling = base.saturating_mul(1 << attempt.min(16)).min(cap);
            assert!(d <= ceiling && d >= ceiling / 2, "attempt {attempt}: {d:?} vs {ceiling:?}");
        }
    }
}
