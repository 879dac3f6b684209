//! In-memory implementations of the agent's ports, for unit tests and benchmarks. The
//! integration tests and the local stack use DynamoDB (`store`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use naksha_contracts::TenantId;
use naksha_contracts::audit::{Anchors, AuditEntry, AuditRecord, Checkpoint as AuditCheckpoint};
use naksha_contracts::runs::{RunMessage, RunProgress};
use naksha_contracts::signing::{LocalKey, Sealed, sealed_bytes};
use serde_json::Value;

use crate::act::Receipts;
use crate::act::sim::{SimResource, SimStore};
use crate::ports::{ActError, AuditLog, Checkpoint, Control, RunQueue, RunStore, StoreError, WpkStore};
use crate::state::{Approval, RunState, RunStatus};
use crate::wpk::StoredWpk;

impl Memory {
    /// A memory store that signs each audit append's checkpoint with `key`.
    pub fn with_audit_key(key: LocalKey) -> Self {
        Self { audit_key: Some(key), ..Default::default() }
    }
}

/// An approval of `run`'s current plan, signed with `key` as `POST /agent/runs/{id}/approve`
/// signs it (for tests that play the approver).
pub fn signed_approval(run: &RunState, approver: &str, justification: &str, key: &LocalKey) -> Approval {
    use naksha_contracts::approvals::RunApproval;
    let plan_sha256 = run.plan.as_ref().map(|p| p.sha256.clone()).unwrap_or_default();
    let signed = RunApproval {
        run_id: run.run_id.clone(),
        plan_sha256: plan_sha256.clone(),
        approver: approver.to_owned(),
        requested_by: run.requested_by.clone(),
        justification: justification.to_owned(),
        at: "now".into(),
    };
    let bytes = sealed_bytes(RunApproval::PURPOSE, &run.tenant, &signed);
    let evidence = key.sign(&bytes).ok().map(|sig| Sealed::new(&bytes, &sig));
    Approval {
        approver: approver.to_owned(),
        justification: justification.to_owned(),
        plan_sha256,
        at: "now".into(),
        standing: false,
        evidence,
    }
}

fn poisoned<T>(_: T) -> StoreError {
    StoreError::Failed("lock poisoned".into())
}

fn act_poisoned<T>(_: T) -> ActError {
    ActError::Unavailable("lock poisoned".into())
}

/// Successes and failures per WPK, by (tenant, signal).
type OutcomeCounts = HashMap<(TenantId, String), BTreeMap<String, (u32, u32)>>;

#[derive(Debug, Default)]
pub struct Memory {
    pub runs: Mutex<HashMap<(TenantId, String), RunState>>,
    pub steps: Mutex<Vec<Checkpoint>>,
    pub wpks: Mutex<BTreeMap<(TenantId, String, u32), StoredWpk>>,
    pub audit: Mutex<BTreeMap<TenantId, Vec<AuditRecord>>>,
    pub halts: Mutex<HashMap<TenantId, String>>,
    pub slots: Mutex<HashMap<(TenantId, String, i64), BTreeSet<String>>>,
    pub stats: Mutex<OutcomeCounts>,
    pub sim: Mutex<HashMap<(TenantId, String), SimResource>>,
    pub receipts: Mutex<HashMap<(TenantId, String), (bool, Value)>>,
    /// Messages put back on the runs stream, with their resource.
    pub queued: Mutex<Vec<(RunMessage, String)>>,
    /// How many side effects were applied (a repeated act must not raise it).
    pub applied: AtomicUsize,
    pub settings: Mutex<HashMap<TenantId, Sealed>>,
    /// Signed checkpoints of each tenant's audit head, one per append.
    pub checkpoints: Mutex<BTreeMap<TenantId, Vec<Sealed>>>,
    /// Signs checkpoints (KMS's audit key in production); without it appends are refused.
    pub audit_key: Option<LocalKey>,
    /// Makes every append fail, as an unreachable audit table would.
    pub audit_down: std::sync::atomic::AtomicBool,
}

impl RunStore for Memory {
    async fn create_run(&self, state: &RunState) -> Result<(), StoreError> {
        let mut runs = self.runs.lock().map_err(poisoned)?;
        let key = (state.tenant.clone(), state.run_id.clone());
        if runs.contains_key(&key) {
            return Err(StoreError::Exists);
        }
        runs.insert(key, state.clone());
        Ok(())
    }

    async fn load_run(&self, tenant: &TenantId, run_id: &str) -> Result<Option<RunState>, StoreError> {
        Ok(self.runs.lock().map_err(poisoned)?.get(&(tenant.clone(), run_id.to_owned())).cloned())
    }

    async fn save_step(&self, state: &RunState, checkpoint: &Checkpoint) -> Result<(), StoreError> {
        self.steps.lock().map_err(poisoned)?.push(checkpoint.clone());
        self.save_run(state).await
    }

    async fn save_run(&self, state: &RunState) -> Result<(), StoreError> {
        self.runs.lock().map_err(poisoned)?.insert((state.tenant.clone(), state.run_id.clone()), state.clone());
        Ok(())
    }

    async fn checkpoints(&self, _tenant: &TenantId, run_id: &str) -> Result<Vec<Checkpoint>, StoreError> {
        Ok(self.steps.lock().map_err(poisoned)?.iter().filter(|c| c.run_id == run_id).cloned().collect())
    }

    async fn approve(&self, tenant: &TenantId, run_id: &str, approval: &Approval) -> Result<RunState, StoreError> {
        let mut runs = self.runs.lock().map_err(poisoned)?;
        let run = runs.get_mut(&(tenant.clone(), run_id.to_owned())).ok_or(StoreError::NotFound)?;
        let plan_matches = run.plan.as_ref().is_some_and(|p| p.sha256 == approval.plan_sha256);
        if run.status != RunStatus::AwaitingApproval || !plan_matches {
            return Err(StoreError::Conflict);
        }
        run.approval = Some(approval.clone());
        run.status = RunStatus::Queued;
        Ok(run.clone())
    }

    async fn acted_runs(&self, tenant: &TenantId) -> Result<Vec<(String, u64)>, StoreError> {
        let runs = self.runs.lock().map_err(poisoned)?;
        Ok(runs
            .values()
            .filter(|r| r.tenant == *tenant)
            .filter_map(|r| r.training_outcome().map(|o| (o.run_id, o.audit_seq)))
            .collect())
    }

    async fn recent_runs(
        &self,
        tenant: &TenantId,
        status: Option<&str>,
        limit: usize,
    ) -> Result<Vec<RunProgress>, StoreError> {
        let runs = self.runs.lock().map_err(poisoned)?;
        let mut out: Vec<RunProgress> = runs
            .values()
            .filter(|r| r.tenant == *tenant && status.is_none_or(|s| r.status.as_str() == s))
            .map(RunState::progress)
            .collect();
        out.sort_by(|a, b| b.updated_at.cmp(&a.updated_at).then_with(|| b.run_id.cmp(&a.run_id)));
        out.truncate(limit);
        Ok(out)
    }

    async fn reject(&self, tenant: &TenantId, run_id: &str, rejection: &Approval) -> Result<RunState, StoreError> {
        let mut runs = self.runs.lock().map_err(poisoned)?;
        let run = runs.get_mut(&(tenant.clone(), run_id.to_owned())).ok_or(StoreError::NotFound)?;
        if run.status != RunStatus::AwaitingApproval {
            return Err(StoreError::Conflict);
        }
        run.rejection = Some(rejection.clone());
        run.conclude(RunStatus::Rejected, format!("rejected by {}: {}", rejection.approver, rejection.justification));
        run.status = RunStatus::Rejected;
        run.cursor = None;
        Ok(run.clone())
    }
}

impl WpkStore for Memory {
    async fn put_wpk(&self, tenant: &TenantId, wpk: &StoredWpk) -> Result<(), StoreError> {
        let mut all = self.wpks.lock().map_err(poisoned)?;
        let key = (tenant.clone(), wpk.id.clone(), wpk.version);
        if all.contains_key(&key) {
            return Err(StoreError::Exists);
        }
        all.insert(key, wpk.clone());
        Ok(())
    }

    async fn get_wpk(&self, tenant: &TenantId, id: &str, version: u32) -> Result<Option<StoredWpk>, StoreError> {
        Ok(self.wpks.lock().map_err(poisoned)?.get(&(tenant.clone(), id.to_owned(), version)).cloned())
    }

    async fn list_wpks(&self, tenant: &TenantId) -> Result<Vec<StoredWpk>, StoreError> {
        Ok(self
            .wpks
            .lock()
            .map_err(poisoned)?
            .iter()
            .filter(|((t, _, _), _)| t == tenant)
            .map(|(_, w)| w.clone())
            .collect())
    }

    async fn set_standing_approval(
        &self,
        tenant: &TenantId,
        id: &str,
        version: u32,
        a: &Sealed,
    ) -> Result<(), StoreError> {
        let mut all = self.wpks.lock().map_err(poisoned)?;
        let w = all.get_mut(&(tenant.clone(), id.to_owned(), version)).ok_or(StoreError::NotFound)?;
        w.standing_approval = Some(a.clone());
        Ok(())
    }

    async fn withdraw_standing_approval(&self, tenant: &TenantId, id: &str, version: u32) -> Result<(), StoreError> {
        let mut all = self.wpks.lock().map_err(poisoned)?;
        let w = all.get_mut(&(tenant.clone(), id.to_owned(), version)).ok_or(StoreError::NotFound)?;
        w.standing_approval = None;
        Ok(())
    }
}

impl AuditLog for Memory {
    async fn append(&self, tenant: &TenantId, entry: AuditEntry) -> Result<AuditRecord, StoreError> {
        if self.audit_down.load(Ordering::Relaxed) {
            return Err(StoreError::Failed("the audit table is unreachable".into()));
        }
        let key = self.audit_key.as_ref().ok_or_else(|| StoreError::Failed("no audit signing key".into()))?;
        let mut all = self.audit.lock().map_err(poisoned)?;
        let chain = all.entry(tenant.clone()).or_default();
        // One record per run, as the DynamoDB store guarantees with its marker item.
        if let Some(existing) = chain.iter().find(|r| r.entry.run_id == entry.run_id) {
            return Ok(existing.clone());
        }
        let record = AuditRecord::seal(tenant, entry, chain.last());
        let checkpoint = AuditCheckpoint { seq: record.seq, hash: record.hash.clone(), at: record.entry.at.clone() };
        let bytes = sealed_bytes(AuditCheckpoint::PURPOSE, tenant, &checkpoint);
        let signature = key.sign(&bytes).map_err(|e| StoreError::Failed(e.to_string()))?;
        self.checkpoints
            .lock()
            .map_err(poisoned)?
            .entry(tenant.clone())
            .or_default()
            .push(Sealed::new(&bytes, &signature));
        chain.push(record.clone());
        Ok(record)
    }

    async fn records(&self, tenant: &TenantId) -> Result<Vec<AuditRecord>, StoreError> {
        Ok(self.audit.lock().map_err(poisoned)?.get(tenant).cloned().unwrap_or_default())
    }

    async fn page(
        &self,
        tenant: &TenantId,
        after: u64,
        limit: usize,
    ) -> Result<(Vec<AuditRecord>, Option<u64>), StoreError> {
        let all = self.records(tenant).await?;
        let page: Vec<AuditRecord> = all.into_iter().filter(|r| r.seq > after).take(limit + 1).collect();
        let next = (page.len() > limit).then(|| page[limit - 1].seq);
        Ok((page.into_iter().take(limit).collect(), next))
    }

    async fn record_of_run(&self, tenant: &TenantId, run_id: &str) -> Result<Option<AuditRecord>, StoreError> {
        Ok(self.records(tenant).await?.into_iter().find(|r| r.entry.run_id == run_id))
    }

    async fn anchors(&self, tenant: &TenantId) -> Result<Anchors, StoreError> {
        let head = self.records(tenant).await?.last().map(|r| (r.seq, r.hash.clone()));
        let checkpoints = self.checkpoints.lock().map_err(poisoned)?.get(tenant).cloned().unwrap_or_default();
        Ok(Anchors { head, checkpoints, acted: Vec::new() })
    }
}

impl Control for Memory {
    async fn settings(&self, tenant: &TenantId) -> Result<Option<Sealed>, StoreError> {
        Ok(self.settings.lock().map_err(poisoned)?.get(tenant).cloned())
    }

    async fn set_settings(&self, tenant: &TenantId, settings: &Sealed) -> Result<(), StoreError> {
        self.settings.lock().map_err(poisoned)?.insert(tenant.clone(), settings.clone());
        Ok(())
    }

    async fn halted(&self, tenant: &TenantId) -> Result<Option<String>, StoreError> {
        Ok(self.halts.lock().map_err(poisoned)?.get(tenant).cloned())
    }

    async fn set_halted(&self, tenant: &TenantId, reason: Option<&str>) -> Result<(), StoreError> {
        let mut h = self.halts.lock().map_err(poisoned)?;
        match reason {
            Some(r) => h.insert(tenant.clone(), r.to_owned()),
            None => h.remove(tenant),
        };
        Ok(())
    }

    async fn runs_in_hour(&self, tenant: &TenantId, resource: &str, wpk: &str, hour: i64) -> Result<u32, StoreError> {
        let slots = self.slots.lock().map_err(poisoned)?;
        let set = slots.get(&(tenant.clone(), resource.to_owned(), hour));
        Ok(set.map_or(0, |s| s.iter().filter(|k| k.split('#').next() == Some(wpk)).count() as u32))
    }

    async fn take_slot(
        &self,
        tenant: &TenantId,
        resource: &str,
        wpk_run: &str,
        hour: i64,
        max: u32,
    ) -> Result<bool, StoreError> {
        let mut slots = self.slots.lock().map_err(poisoned)?;
        let set = slots.entry((tenant.clone(), resource.to_owned(), hour)).or_default();
        let wpk = wpk_run.split('#').next().unwrap_or_default();
        let used = set.iter().filter(|k| k.split('#').next() == Some(wpk)).count() as u32;
        if set.contains(wpk_run) {
            return Ok(true);
        }
        if used >= max {
            return Ok(false);
        }
        set.insert(wpk_run.to_owned());
        Ok(true)
    }

    async fn outcome_stats(&self, tenant: &TenantId, signal: &str) -> Result<BTreeMap<String, (u32, u32)>, StoreError> {
        Ok(self.stats.lock().map_err(poisoned)?.get(&(tenant.clone(), signal.to_owned())).cloned().unwrap_or_default())
    }

    async fn record_outcome(&self, tenant: &TenantId, signal: &str, wpk: &str, ok: bool) -> Result<(), StoreError> {
        let mut stats = self.stats.lock().map_err(poisoned)?;
        let entry = stats.entry((tenant.clone(), signal.to_owned())).or_default().entry(wpk.to_owned()).or_default();
        if ok {
            entry.0 += 1;
        } else {
            entry.1 += 1;
        }
        Ok(())
    }
}

impl SimStore for Memory {
    async fn get(&self, tenant: &TenantId, resource: &str) -> Result<Option<SimResource>, ActError> {
        Ok(self.sim.lock().map_err(act_poisoned)?.get(&(tenant.clone(), resource.to_owned())).cloned())
    }

    async fn put(&self, tenant: &TenantId, resource: &str, r: &SimResource) -> Result<(), ActError> {
        self.sim.lock().map_err(act_poisoned)?.insert((tenant.clone(), resource.to_owned()), r.clone());
        Ok(())
    }

    async fn apply(
        &self,
        tenant: &TenantId,
        resource: &str,
        before: &SimResource,
        after: &SimResource,
        key: &str,
        receipt: &Value,
    ) -> Result<(Value, bool), ActError> {
        let mut receipts = self.receipts.lock().map_err(act_poisoned)?;
        if let Some((_, stored)) = receipts.get(&(tenant.clone(), key.to_owned())) {
            return Ok((stored.clone(), true));
        }
        let mut sim = self.sim.lock().map_err(act_poisoned)?;
        let current = sim.get(&(tenant.clone(), resource.to_owned()));
        if current != Some(before) {
            return Err(ActError::Refused("the resource changed while acting".into()));
        }
        sim.insert((tenant.clone(), resource.to_owned()), after.clone());
        receipts.insert((tenant.clone(), key.to_owned()), (true, receipt.clone()));
        self.applied.fetch_add(1, Ordering::Relaxed);
        Ok((receipt.clone(), false))
    }
}

impl Receipts for Memory {
    async fn get(&self, tenant: &TenantId, key: &str) -> Result<Option<(bool, Value)>, ActError> {
        Ok(self.receipts.lock().map_err(act_poisoned)?.get(&(tenant.clone(), key.to_owned())).cloned())
    }

    async fn begin(&self, tenant: &TenantId, key: &str) -> Result<bool, ActError> {
        let mut r = self.receipts.lock().map_err(act_poisoned)?;
        let k = (tenant.clone(), key.to_owned());
        if r.contains_key(&k) {
            return Ok(false);
        }
        r.insert(k, (false, Value::Null));
        Ok(true)
    }

    async fn finish(&self, tenant: &TenantId, key: &str, result: &Value) -> Result<(), ActError> {
        self.receipts.lock().map_err(act_poisoned)?.insert((tenant.clone(), key.to_owned()), (true, result.clone()));
        self.applied.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

impl RunQueue for Memory {
    async fn send(&self, message: &RunMessage, resource: &str) -> Result<(), StoreError> {
        self.queued.lock().map_err(poisoned)?.push((message.clone(), resource.to_owned()));
        Ok(())
    }
}

/// Sharing one memory between the agent's roles (store, sim, receipts).
impl<T: RunStore> RunStore for std::sync::Arc<T> {
    async fn create_run(&self, s: &RunState) -> Result<(), StoreError> {
        (**self).create_run(s).await
    }
    async fn load_run(&self, t: &TenantId, r: &str) -> Result<Option<RunState>, StoreError> {
        (**self).load_run(t, r).await
    }
    async fn save_step(&self, s: &RunState, c: &Checkpoint) -> Result<(), StoreError> {
        (**self).save_step(s, c).await
    }
    async fn save_run(&self, s: &RunState) -> Result<(), StoreError> {
        (**self).save_run(s).await
    }
    async fn checkpoints(&self, t: &TenantId, r: &str) -> Result<Vec<Checkpoint>, StoreError> {
        (**self).checkpoints(t, r).await
    }
    async fn approve(&self, t: &TenantId, r: &str, a: &Approval) -> Result<RunState, StoreError> {
        (**self).approve(t, r, a).await
    }
    async fn reject(&self, t: &TenantId, r: &str, a: &Approval) -> Result<RunState, StoreError> {
        (**self).reject(t, r, a).await
    }
    async fn acted_runs(&self, t: &TenantId) -> Result<Vec<(String, u64)>, StoreError> {
        (**self).acted_runs(t).await
    }
    async fn recent_runs(&self, t: &TenantId, s: Option<&str>, n: usize) -> Result<Vec<RunProgress>, StoreError> {
        (**self).recent_runs(t, s, n).await
    }
}

impl<T: WpkStore> WpkStore for std::sync::Arc<T> {
    async fn put_wpk(&self, t: &TenantId, w: &StoredWpk) -> Result<(), StoreError> {
        (**self).put_wpk(t, w).await
    }
    async fn get_wpk(&self, t: &TenantId, id: &str, v: u32) -> Result<Option<StoredWpk>, StoreError> {
        (**self).get_wpk(t, id, v).await
    }
    async fn list_wpks(&self, t: &TenantId) -> Result<Vec<StoredWpk>, StoreError> {
        (**self).list_wpks(t).await
    }
    async fn set_standing_approval(&self, t: &TenantId, id: &str, v: u32, a: &Sealed) -> Result<(), StoreError> {
        (**self).set_standing_approval(t, id, v, a).await
    }
    async fn withdraw_standing_approval(&self, t: &TenantId, id: &str, v: u32) -> Result<(), StoreError> {
        (**self).withdraw_standing_approval(t, id, v).await
    }
}

impl<T: AuditLog> AuditLog for std::sync::Arc<T> {
    async fn append(&self, t: &TenantId, e: AuditEntry) -> Result<AuditRecord, StoreError> {
        (**self).append(t, e).await
    }
    async fn records(&self, t: &TenantId) -> Result<Vec<AuditRecord>, StoreError> {
        (**self).records(t).await
    }
    async fn page(
        &self,
        t: &TenantId,
        after: u64,
        limit: usize,
    ) -> Result<(Vec<AuditRecord>, Option<u64>), StoreError> {
        (**self).page(t, after, limit).await
    }
    async fn record_of_run(&self, t: &TenantId, r: &str) -> Result<Option<AuditRecord>, StoreError> {
        (**self).record_of_run(t, r).await
    }
    async fn anchors(&self, t: &TenantId) -> Result<Anchors, StoreError> {
        (**self).anchors(t).await
    }
}

impl<T: Control> Control for std::sync::Arc<T> {
    async fn settings(&self, t: &TenantId) -> Result<Option<Sealed>, StoreError> {
        (**self).settings(t).await
    }
    async fn set_settings(&self, t: &TenantId, s: &Sealed) -> Result<(), StoreError> {
        (**self).set_settings(t, s).await
    }
    async fn halted(&self, t: &TenantId) -> Result<Option<String>, StoreError> {
        (**self).halted(t).await
    }
    async fn set_halted(&self, t: &TenantId, r: Option<&str>) -> Result<(), StoreError> {
        (**self).set_halted(t, r).await
    }
    async fn runs_in_hour(&self, t: &TenantId, r: &str, w: &str, h: i64) -> Result<u32, StoreError> {
        (**self).runs_in_hour(t, r, w, h).await
    }
    async fn take_slot(&self, t: &TenantId, r: &str, w: &str, h: i64, m: u32) -> Result<bool, StoreError> {
        (**self).take_slot(t, r, w, h, m).await
    }
    async fn outcome_stats(&self, t: &TenantId, s: &str) -> Result<BTreeMap<String, (u32, u32)>, StoreError> {
        (**self).outcome_stats(t, s).await
    }
    async fn record_outcome(&self, t: &TenantId, s: &str, w: &str, ok: bool) -> Result<(), StoreError> {
        (**self).record_outcome(t, s, w, ok).await
    }
}
