//! The agent: the node implementations and the loop that runs a graph step by step,
//! checkpointing after every step.
//!
//! Safety lives here (P-3): every node that uses a WPK loads the version the run is pinned to and
//! verifies its signature first; nothing acts without an approval of exactly the current plan;
//! the gate re-describes the resource and re-plans when it changed since the dry-run; the act
//! step checks the kill switch and takes a rate-limit slot before any side effect, and carries an
//! idempotency key so a retried or resumed run never repeats one.

use std::collections::BTreeMap;
use std::time::Instant;

use naksha_contracts::TenantId;
use naksha_contracts::approvals::{RunApproval, StandingApproval, TenantSettings};
use naksha_contracts::audit::AuditEntry;
use naksha_contracts::signing::{Sealed, TrustedKeys, canonical_json, sha256_hex};
use serde_json::Value;

use crate::ports::{
    ActError, Actuator, AuditLog, Checkpoint, Control, Observer, RemediationModel, RunStore, StoreError, WpkStore,
};
use crate::spec::{Graph, NodeKind, Target};
use crate::state::{
    Approval, AuditPending, Candidate, Decision, MAX_OBSERVATION_BYTES, Observation, Plan, PlannedAction, Receipt,
    RunState, RunStatus, Verification, state_digest,
};
use crate::wpk::{Mode, SignedWpk, rank};

/// Everything the agent stores, in one bundle (DynamoDB in production, memory in tests).
pub trait AgentStore: RunStore + WpkStore + AuditLog + Control {}
impl<T: RunStore + WpkStore + AuditLog + Control> AgentStore for T {}

pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn epoch_hour() -> i64 {
    chrono::Utc::now().timestamp() / 3600
}

/// Why a node could not finish; the run fails with it as the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct StepError(String);

impl From<String> for StepError {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl From<&str> for StepError {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

impl From<StoreError> for StepError {
    fn from(e: StoreError) -> Self {
        Self(e.to_string())
    }
}

impl From<ActError> for StepError {
    fn from(e: ActError) -> Self {
        Self(e.to_string())
    }
}

/// The keys the agent trusts, one set per purpose: playbooks, and people's approvals (and the
/// tenant settings that may allow self-approval).
#[derive(Debug, Clone, Default)]
pub struct AgentKeys {
    pub wpk: TrustedKeys,
    pub approval: TrustedKeys,
}

/// An approval whose signed evidence was checked: what the audit record names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedApproval {
    pub approver: String,
    pub justification: String,
    pub standing: bool,
    pub evidence_sha256: String,
}

#[derive(Debug)]
pub struct Agent<S, A, O, M> {
    pub store: S,
    pub actuator: A,
    pub observer: O,
    pub model: M,
    pub keys: AgentKeys,
    pub graph: Graph,
    /// The adapter used to describe a resource before a WPK is chosen.
    pub default_adapter: String,
}

impl<S: AgentStore, A: Actuator, O: Observer, M: RemediationModel> Agent<S, A, O, M> {
    /// Run from the cursor (or the start) until the run pauses for approval or ends.
    pub async fn advance(&self, state: &mut RunState) -> Result<(), StoreError> {
        // P-4: the acts of this run carry its trace to the systems they call.
        let trace = state.trace.as_deref().and_then(naksha_contracts::trace::TraceContext::parse);
        naksha_act::with_trace(trace, self.advance_traced(state)).await
    }

    async fn advance_traced(&self, state: &mut RunState) -> Result<(), StoreError> {
        let mut node = state.cursor.clone().unwrap_or_else(|| self.graph.start.clone());
        state.status = RunStatus::Running;
        loop {
            let over_limit = state.steps_taken >= self.graph.max_steps;
            if over_limit && state.outcome.is_none() {
                state.conclude(RunStatus::Failed, format!("step limit of {} reached", self.graph.max_steps));
                node = self.graph.on_error.clone();
            }
            let Some(spec) = self.graph.nodes.get(&node) else {
                state.conclude(RunStatus::Failed, format!("graph has no node {node}"));
                state.status = RunStatus::Failed;
                self.store.save_run(state).await?;
                return Ok(());
            };
            let started_at = now();
            let t0 = Instant::now();
            let result = self.run_node(spec.kind, &spec.config, state).await;
            let latency_ms = t0.elapsed().as_secs_f64() * 1e3;
            state.steps_taken += 1;
            let error = result.err();
            if let Some(e) = &error {
                state.conclude(RunStatus::Failed, e.to_string());
            }
            // An act whose audit record could not be written yet: the run stays at this node,
            // running, until the append lands (the worker retries it).
            let waiting_for_audit = error.is_none() && state.audit_pending.is_some();
            let next = if waiting_for_audit {
                Target::Node(node.clone())
            } else if error.is_some() && node != self.graph.on_error {
                Target::Node(self.graph.on_error.clone())
            } else if over_limit && node == self.graph.on_error {
                Target::End
            } else {
                self.graph.next(&node, state)
            };
            match &next {
                Target::Pause => {
                    state.status = RunStatus::AwaitingApproval;
                    state.cursor = Some(node.clone());
                }
                Target::End => {
                    state.status = state.outcome.as_ref().map_or(RunStatus::Succeeded, |o| o.status);
                    state.cursor = None;
                }
                Target::Node(n) => state.cursor = Some(n.clone()),
            }
            state.updated_at = now();
            if error.is_none() {
                state.milestones.entry(node.clone()).or_insert_with(|| state.updated_at.clone());
            }
            let checkpoint = Checkpoint {
                run_id: state.run_id.clone(),
                step: state.steps_taken,
                node: node.clone(),
                graph_version: self.graph.version.clone(),
                state_digest: state.digest(),
                started_at,
                ended_at: state.updated_at.clone(),
                latency_ms,
                status: if error.is_some() { "error".into() } else { "ok".into() },
                error: error.map(|e| e.to_string()),
            };
            self.store.save_step(state, &checkpoint).await?;
            if waiting_for_audit {
                return Ok(());
            }
            match next {
                Target::Node(n) => node = n,
                Target::Pause | Target::End => return Ok(()),
            }
        }
    }

    async fn run_node(&self, kind: NodeKind, config: &Value, s: &mut RunState) -> Result<(), StepError> {
        match kind {
            NodeKind::Observe => self.observe(config, s).await,
            NodeKind::Decide => self.decide(s).await,
            NodeKind::Plan => self.plan(s).await,
            NodeKind::Gate => self.gate(s).await,
            NodeKind::Act => self.act(s).await,
            NodeKind::Verify => self.verify(s).await,
            NodeKind::Record => self.record(s).await,
        }
    }

    /// Describe each (adapter, target, step arguments): the arguments say where the target is
    /// (a Kubernetes namespace), so describing looks where acting will.
    async fn describe_all(
        &self,
        tenant: &TenantId,
        targets: &[Described],
    ) -> Result<BTreeMap<String, Value>, StepError> {
        let mut out = BTreeMap::new();
        for (adapter, target, args) in targets {
            let state = self.actuator.describe(tenant, adapter, target, args).await?;
            out.insert(target.clone(), state.unwrap_or(Value::Null));
        }
        Ok(out)
    }

    async fn observe(&self, config: &Value, s: &mut RunState) -> Result<(), StepError> {
        let resource = s.request.resource.clone();
        let described =
            self.actuator.describe(&s.tenant, &self.default_adapter, &resource, &serde_json::Map::new()).await?;
        let mut plugins = self.observer.observe(&s.tenant, &resource, config).await;
        if let Some(t) = &s.request.telemetry {
            plugins.insert("request".into(), t.clone());
        }
        let observation =
            Observation { resources: BTreeMap::from([(resource, described.unwrap_or(Value::Null))]), plugins };
        s.observation = Some(observation.bounded(MAX_OBSERVATION_BYTES));
        Ok(())
    }

    /// Load the WPK version the run is pinned to, and verify it before use.
    async fn pinned(&self, s: &RunState) -> Result<SignedWpk, StepError> {
        let d = s.decision.as_ref().ok_or("no WPK was chosen")?;
        let stored = self
            .store
            .get_wpk(&s.tenant, &d.wpk_id, d.version)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("WPK {} v{} no longer exists", d.wpk_id, d.version))?;
        let signed = stored.verify(&self.keys.wpk, &s.tenant).map_err(|e| e.to_string())?;
        if signed.sha256() != d.sha256 {
            return Err(format!("WPK {} v{} changed since the run chose it", d.wpk_id, d.version).into());
        }
        Ok(signed)
    }

    async fn decide(&self, s: &mut RunState) -> Result<(), StepError> {
        let (signal, resource) = (s.request.signal.clone(), s.request.resource.clone());
        let all = self.store.list_wpks(&s.tenant).await.map_err(|e| e.to_string())?;
        let history = self.store.outcome_stats(&s.tenant, &signal).await.map_err(|e| e.to_string())?;
        let learned = self.model.champion(&s.tenant).await;
        let candidates = rank(&all, &signal, &resource, |id| {
            learned
                .as_ref()
                .and_then(|m| m.success_probability(&signal, id))
                .unwrap_or_else(|| self.model.score(&signal, id, &history))
        });
        let Some(&(score, chosen)) = candidates.first() else {
            s.conclude(RunStatus::Rejected, format!("no WPK handles signal {signal:?} on {resource:?}"));
            return Ok(());
        };
        s.decision = Some(Decision {
            wpk_id: chosen.id.clone(),
            version: chosen.version,
            sha256: chosen.sha256.clone(),
            score,
            candidates: candidates
                .iter()
                .map(|(sc, w)| Candidate { id: w.id.clone(), version: w.version, score: *sc })
                .collect(),
            model_id: learned.as_ref().map(|m| m.model_id.clone()),
        });
        // Verify before use: a tampered WPK fails the run with the reason, and nothing acts.
        let signed = match chosen.verify(&self.keys.wpk, &s.tenant) {
            Ok(signed) => signed,
            Err(e) => {
                s.conclude(RunStatus::Failed, e.to_string());
                return Ok(());
            }
        };
        if !signed.wpk().matches(&signal, &resource) {
            s.conclude(
                RunStatus::Failed,
                format!("WPK {} v{}: its registry entry does not match its signed document", chosen.id, chosen.version),
            );
            return Ok(());
        }
        let targets = signed.wpk().targets(&resource);
        if let Some(max) = signed.wpk().limits.blast_radius
            && targets.len() > max as usize
        {
            s.conclude(
                RunStatus::Rejected,
                format!("limit: blast_radius {max} but the WPK would touch {} resources", targets.len()),
            );
            return Ok(());
        }
        if let Some(max) = signed.wpk().limits.max_runs_per_hour {
            for t in &targets {
                let n = self
                    .store
                    .runs_in_hour(&s.tenant, t, &signed.wpk().id, epoch_hour())
                    .await
                    .map_err(|e| e.to_string())?;
                if n >= max {
                    s.conclude(
                        RunStatus::Rejected,
                        format!(
                            "limit: {} already acted {n} times on {t} this hour (max_runs_per_hour {max})",
                            signed.wpk().id
                        ),
                    );
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    async fn plan(&self, s: &mut RunState) -> Result<(), StepError> {
        let signed = self.pinned(s).await?;
        let wpk = signed.wpk();
        let resource = s.request.resource.clone();
        let steps: Vec<Described> = wpk
            .steps
            .iter()
            .map(|st| (st.adapter.clone(), st.target.clone().unwrap_or_else(|| resource.clone()), st.args.clone()))
            .collect();
        let before = self.describe_all(&s.tenant, &steps).await?;
        if let Some((target, _)) = before.iter().find(|(_, v)| v.is_null()) {
            s.conclude(RunStatus::Failed, format!("resource {target} does not exist"));
            return Ok(());
        }
        let mut actions = Vec::with_capacity(wpk.steps.len());
        for (i, step) in wpk.steps.iter().enumerate() {
            let target = step.target.clone().unwrap_or_else(|| resource.clone());
            let change = if wpk.safety.dry_run {
                match self.actuator.dry_run(&s.tenant, &step.adapter, &step.action, &target, &step.args).await {
                    Ok(c) => c,
                    Err(e) => {
                        s.conclude(
                            RunStatus::Failed,
                            format!("dry-run of step {i} ({} {}) failed: {e}", step.adapter, step.action),
                        );
                        return Ok(());
                    }
                }
            } else {
                Value::Null
            };
            actions.push(PlannedAction {
                step: i,
                adapter: step.adapter.clone(),
                action: step.action.clone(),
                target,
                args: step.args.clone(),
                change,
            });
        }
        let before_digest = state_digest(&before);
        let sha256 = Plan::digest((&wpk.id, wpk.version, signed.sha256()), &actions, &before_digest);
        // An approval of an earlier plan does not carry over.
        if s.approval.as_ref().is_some_and(|a| a.plan_sha256 != sha256) {
            s.approval = None;
        }
        s.plan = Some(Plan { actions, before_digest, sha256, dry_run_performed: wpk.safety.dry_run });
        s.replan = false;
        Ok(())
    }

    async fn gate(&self, s: &mut RunState) -> Result<(), StepError> {
        let signed = self.pinned(s).await?;
        let plan = s.plan.clone().ok_or("no plan to gate")?;
        if let Some(approval) = s.approval.clone().filter(|a| a.plan_sha256 == plan.sha256) {
            // The approver saw the plan as it was; if the resource changed since, plan again.
            let now_state = self.describe_all(&s.tenant, &targets_of(&plan)).await?;
            if state_digest(&now_state) != plan.before_digest {
                s.replan = true;
                s.approval = None;
            } else {
                s.approval = Some(approval);
            }
            return Ok(());
        }
        // An auto WPK acts unattended only after its dry-run and with a standing approval that is
        // genuine signed evidence; anything else waits for a person.
        if signed.wpk().safety.mode == Mode::Auto
            && plan.dry_run_performed
            && let Some(sealed) = signed.standing_approval()
        {
            match self.standing(&s.tenant, &signed, sealed).await {
                Ok(standing) => {
                    s.approval = Some(Approval {
                        approver: standing.approver.clone(),
                        justification: standing.justification.clone(),
                        plan_sha256: plan.sha256.clone(),
                        at: now(),
                        standing: true,
                        evidence: Some(sealed.clone()),
                    });
                }
                Err(why) => {
                    tracing::warn!(run_id = %s.run_id, reason = %why, "standing approval refused; waiting for a person");
                    s.approval_refused = Some(format!("standing approval refused: {why}"));
                }
            }
        }
        Ok(())
    }

    async fn self_approval_allowed(&self, tenant: &TenantId) -> bool {
        self_approval_allowed(&self.store, tenant, &self.keys.approval).await
    }

    /// A standing approval, opened and checked against the WPK version it must name.
    async fn standing(
        &self,
        tenant: &TenantId,
        signed: &SignedWpk,
        sealed: &Sealed,
    ) -> Result<StandingApproval, String> {
        let approval = sealed
            .open::<StandingApproval>(StandingApproval::PURPOSE, tenant, &self.keys.approval)
            .map_err(|e| e.to_string())?
            .into_inner();
        let wpk = signed.wpk();
        if approval.wpk_id != wpk.id || approval.wpk_version != wpk.version || approval.wpk_sha256 != signed.sha256() {
            return Err(format!("it approves {} v{}, not this version", approval.wpk_id, approval.wpk_version));
        }
        if approval.wpk_author != signed.registered_by() {
            return Err("it names another author than the signed WPK".into());
        }
        if approval.is_self_approval() && !self.self_approval_allowed(tenant).await {
            return Err(format!("{} registered this WPK and cannot approve it", approval.approver));
        }
        Ok(approval)
    }

    /// The run's approval of exactly `plan`, from its signed evidence; an approval written by
    /// hand, for another run or plan, or by the requester (unless allowed) is refused.
    pub async fn checked_approval(
        &self,
        s: &RunState,
        signed: &SignedWpk,
        plan: &Plan,
    ) -> Result<CheckedApproval, String> {
        let approval =
            s.approval.as_ref().filter(|a| a.plan_sha256 == plan.sha256).ok_or("no approval of this plan")?;
        let sealed = approval.evidence.as_ref().ok_or("the approval carries no signed evidence")?;
        if approval.standing {
            let standing = self.standing(&s.tenant, signed, sealed).await?;
            return Ok(CheckedApproval {
                approver: standing.approver,
                justification: standing.justification,
                standing: true,
                evidence_sha256: sealed.sha256(),
            });
        }
        let run_approval = sealed
            .open::<RunApproval>(RunApproval::PURPOSE, &s.tenant, &self.keys.approval)
            .map_err(|e| format!("the approval is not genuine: {e}"))?
            .into_inner();
        if run_approval.run_id != s.run_id || run_approval.plan_sha256 != plan.sha256 {
            return Err("the signed approval is for another run or plan".into());
        }
        if run_approval.is_self_approval() && !self.self_approval_allowed(&s.tenant).await {
            return Err(format!("{} requested this run and cannot approve it", run_approval.approver));
        }
        Ok(CheckedApproval {
            approver: run_approval.approver,
            justification: run_approval.justification,
            standing: false,
            evidence_sha256: sealed.sha256(),
        })
    }

    async fn act(&self, s: &mut RunState) -> Result<(), StepError> {
        if let Some(reason) = self.store.halted(&s.tenant).await.map_err(|e| e.to_string())? {
            s.conclude(RunStatus::Aborted, format!("kill switch engaged: {reason}"));
            return Ok(());
        }
        let signed = self.pinned(s).await?;
        let plan = s.plan.clone().ok_or("no plan to act on")?;
        if s.approval.as_ref().is_none_or(|a| a.plan_sha256 != plan.sha256) {
            return Err("refusing to act without an approval of this plan".into());
        }
        if let Err(why) = self.checked_approval(s, &signed, &plan).await {
            s.conclude(RunStatus::Failed, format!("refusing to act: {why}"));
            return Ok(());
        }
        if let Some(max) = signed.wpk().limits.max_runs_per_hour {
            let mut targets: Vec<&str> = plan.actions.iter().map(|a| a.target.as_str()).collect();
            targets.dedup();
            for t in targets {
                let took = self
                    .store
                    .take_slot(&s.tenant, t, &format!("{}#{}", signed.wpk().id, s.run_id), epoch_hour(), max)
                    .await
                    .map_err(|e| e.to_string())?;
                if !took {
                    s.conclude(RunStatus::Rejected, format!("limit: max_runs_per_hour {max} reached for {t}"));
                    return Ok(());
                }
            }
        }
        for a in &plan.actions {
            let key = sha256_hex(format!("{}\u{1f}{}\u{1f}{}", s.run_id, plan.sha256, a.step).as_bytes());
            if s.receipts.iter().any(|r| r.idempotency_key == key) {
                continue;
            }
            match self.actuator.execute(&s.tenant, &a.adapter, &a.action, &a.target, &a.args, &key).await {
                Ok((result, reused)) => s.receipts.push(Receipt {
                    idempotency_key: key,
                    step: a.step,
                    adapter: a.adapter.clone(),
                    action: a.action.clone(),
                    target: a.target.clone(),
                    result,
                    at: now(),
                    reused,
                }),
                Err(e) => {
                    s.conclude(
                        RunStatus::Failed,
                        format!("step {} ({} {} on {}) failed: {e}", a.step, a.adapter, a.action, a.target),
                    );
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    async fn verify(&self, s: &mut RunState) -> Result<(), StepError> {
        let signed = self.pinned(s).await?;
        let plan = s.plan.clone().ok_or("no plan to verify")?;
        let after = self.describe_all(&s.tenant, &targets_of(&plan)).await?;
        let failures = match &signed.wpk().verify {
            Some(v) => v.failures(after.get(&s.request.resource).unwrap_or(&Value::Null)),
            None => Vec::new(),
        };
        let ok = failures.is_empty();
        let detail = if ok { "all verify conditions hold".to_owned() } else { failures.join("; ") };
        s.verification = Some(Verification { ok, detail: detail.clone(), after_digest: state_digest(&after) });
        if !ok {
            s.conclude(RunStatus::Failed, format!("verification failed: {detail}"));
        }
        Ok(())
    }

    async fn record(&self, s: &mut RunState) -> Result<(), StepError> {
        let acted = !s.receipts.is_empty();
        if s.outcome.is_none() {
            let reason = if s.request.dry_run {
                "dry run: planned, nothing acted".to_owned()
            } else if acted {
                "acted and verified".to_owned()
            } else {
                "nothing to do".to_owned()
            };
            s.conclude(RunStatus::Succeeded, reason);
        }
        let outcome = s.outcome.clone().ok_or("no outcome")?;
        if acted {
            let d = s.decision.clone().ok_or("acted without a decision")?;
            let plan = s.plan.clone().ok_or("acted without a plan")?;
            let signed = self.pinned(s).await?;
            // The record names what the signed evidence says, not the run item's copy of it.
            let approval = self.checked_approval(s, &signed, &plan).await.map_err(|e| format!("acted, but {e}"))?;
            let after = match &s.verification {
                Some(v) => v.after_digest.clone(),
                None => state_digest(&self.describe_all(&s.tenant, &targets_of(&plan)).await?),
            };
            let entry = AuditEntry {
                kind: String::new(),
                approval_sha256: approval.evidence_sha256.clone(),
                run_id: s.run_id.clone(),
                wpk_id: d.wpk_id.clone(),
                wpk_version: d.version,
                wpk_sha256: d.sha256.clone(),
                approver: approval.approver.clone(),
                justification: approval.justification.clone(),
                standing_approval: approval.standing,
                plan_sha256: plan.sha256.clone(),
                before_sha256: plan.before_digest.clone(),
                after_sha256: after,
                actions: s.receipts.iter().map(|r| serde_json::to_value(r).unwrap_or(Value::Null)).collect(),
                outcome: outcome.status.as_str().to_owned(),
                at: now(),
                dry_run_passed: plan.dry_run_performed,
            };
            let record = match self.store.append(&s.tenant, entry).await {
                Ok(record) => record,
                Err(e) => {
                    // The act happened; until its record is written the run is not done.
                    let attempts = s.audit_pending.as_ref().map_or(0, |p| p.attempts) + 1;
                    let since = s.audit_pending.as_ref().map_or_else(now, |p| p.since.clone());
                    tracing::error!(run_id = %s.run_id, attempts, error = %e, "audit append failed; the run waits for it");
                    s.audit_pending = Some(AuditPending {
                        receipts: s.receipts.iter().map(|r| r.idempotency_key.clone()).collect(),
                        attempts,
                        last_error: e.to_string(),
                        since,
                    });
                    return Ok(());
                }
            };
            s.audit_pending = None;
            s.audit_seq = Some(record.seq);
            self.store
                .record_outcome(&s.tenant, &s.request.signal, &d.wpk_id, outcome.status == RunStatus::Succeeded)
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

/// Whether the tenant's signed settings allow self-approval (off when absent or not genuine: a
/// settings item written by hand counts for nothing).
pub async fn self_approval_allowed<S: Control>(store: &S, tenant: &TenantId, approval_keys: &TrustedKeys) -> bool {
    let Ok(Some(sealed)) = store.settings(tenant).await else { return false };
    match sealed.open::<TenantSettings>(TenantSettings::PURPOSE, tenant, approval_keys) {
        Ok(settings) => settings.allow_self_approval,
        Err(e) => {
            tracing::error!(tenant = %tenant, error = %e, "the tenant's settings are not genuine; ignored");
            false
        }
    }
}

/// What is described: (adapter, target, the step's arguments).
type Described = (String, String, serde_json::Map<String, Value>);

fn targets_of(plan: &Plan) -> Vec<Described> {
    plan.actions.iter().map(|a| (a.adapter.clone(), a.target.clone(), a.args.clone())).collect()
}

/// The canonical digest of a described state, exposed for tests and the API.
pub fn describe_digest(v: &Value) -> String {
    sha256_hex(&canonical_json(v))
}
