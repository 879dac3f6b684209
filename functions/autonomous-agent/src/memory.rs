//! In-memory implementations of the agent's ports, for unit tests and benchmarks. The
//! integration tests and the local stack use DynamoDB (`store`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value;

use crate::act::Receipts;
use crate::act::sim::{SimResource, SimStore};
use crate::audit::{AuditEntry, AuditRecord};
use crate::ports::{AuditLog, Checkpoint, Control, RunQueue, RunStore, StoreError, WpkStore};
use crate::state::{Approval, RunState, RunStatus};
use crate::wpk::{StandingApproval, StoredWpk};

fn poisoned<T>(_: T) -> StoreError {
    StoreError::Failed("lock poisoned".into())
}

/// Successes and failures per WPK, by (tenant, signal).
type OutcomeCounts = HashMap<(String, String), BTreeMap<String, (u32, u32)>>;

#[derive(Debug, Default)]
pub struct Memory {
    pub runs: Mutex<HashMap<(String, String), RunState>>,
    pub steps: Mutex<Vec<Checkpoint>>,
    pub wpks: Mutex<BTreeMap<(String, String, u32), StoredWpk>>,
    pub audit: Mutex<BTreeMap<String, Vec<AuditRecord>>>,
    pub halts: Mutex<HashMap<String, String>>,
    pub slots: Mutex<HashMap<(String, String, i64), BTreeSet<String>>>,
    pub stats: Mutex<OutcomeCounts>,
    pub sim: Mutex<HashMap<(String, String), SimResource>>,
    pub receipts: Mutex<HashMap<(String, String), (bool, Value)>>,
    pub queued: Mutex<Vec<(String, String, String)>>,
    /// How many side effects were applied (a repeated act must not raise it).
    pub applied: AtomicUsize,
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

    async fn load_run(&self, tenant: &str, run_id: &str) -> Result<Option<RunState>, StoreError> {
        Ok(self.runs.lock().map_err(poisoned)?.get(&(tenant.to_owned(), run_id.to_owned())).cloned())
    }

    async fn save_step(&self, state: &RunState, checkpoint: &Checkpoint) -> Result<(), StoreError> {
        self.steps.lock().map_err(poisoned)?.push(checkpoint.clone());
        self.save_run(state).await
    }

    async fn save_run(&self, state: &RunState) -> Result<(), StoreError> {
        self.runs.lock().map_err(poisoned)?.insert((state.tenant.clone(), state.run_id.clone()), state.clone());
        Ok(())
    }

    async fn checkpoints(&self, _tenant: &str, run_id: &str) -> Result<Vec<Checkpoint>, StoreError> {
        Ok(self.steps.lock().map_err(poisoned)?.iter().filter(|c| c.run_id == run_id).cloned().collect())
    }

    async fn approve(&self, tenant: &str, run_id: &str, approval: &Approval) -> Result<RunState, StoreError> {
        let mut runs = self.runs.lock().map_err(poisoned)?;
        let run = runs.get_mut(&(tenant.to_owned(), run_id.to_owned())).ok_or(StoreError::NotFound)?;
        let plan_matches = run.plan.as_ref().is_some_and(|p| p.sha256 == approval.plan_sha256);
        if run.status != RunStatus::AwaitingApproval || !plan_matches {
            return Err(StoreError::Conflict);
        }
        run.approval = Some(approval.clone());
        run.status = RunStatus::Queued;
        Ok(run.clone())
    }

    async fn reject(&self, tenant: &str, run_id: &str, rejection: &Approval) -> Result<RunState, StoreError> {
        let mut runs = self.runs.lock().map_err(poisoned)?;
        let run = runs.get_mut(&(tenant.to_owned(), run_id.to_owned())).ok_or(StoreError::NotFound)?;
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
    async fn put_wpk(&self, tenant: &str, wpk: &StoredWpk) -> Result<(), StoreError> {
        let mut all = self.wpks.lock().map_err(poisoned)?;
        let key = (tenant.to_owned(), wpk.id.clone(), wpk.version);
        if all.contains_key(&key) {
            return Err(StoreError::Exists);
        }
        all.insert(key, wpk.clone());
        Ok(())
    }

    async fn get_wpk(&self, tenant: &str, id: &str, version: u32) -> Result<Option<StoredWpk>, StoreError> {
        Ok(self.wpks.lock().map_err(poisoned)?.get(&(tenant.to_owned(), id.to_owned(), version)).cloned())
    }

    async fn list_wpks(&self, tenant: &str) -> Result<Vec<StoredWpk>, StoreError> {
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
        tenant: &str,
        id: &str,
        version: u32,
        a: &StandingApproval,
    ) -> Result<(), StoreError> {
        let mut all = self.wpks.lock().map_err(poisoned)?;
        let w = all.get_mut(&(tenant.to_owned(), id.to_owned(), version)).ok_or(StoreError::NotFound)?;
        w.standing_approval = Some(a.clone());
        Ok(())
    }
}

impl AuditLog for Memory {
    async fn append(&self, tenant: &str, entry: AuditEntry) -> Result<AuditRecord, StoreError> {
        let mut all = self.audit.lock().map_err(poisoned)?;
        let chain = all.entry(tenant.to_owned()).or_default();
        // One record per run, as the DynamoDB store guarantees with its marker item.
        if let Some(existing) = chain.iter().find(|r| r.entry.run_id == entry.run_id) {
            return Ok(existing.clone());
        }
        let record = AuditRecord::seal(tenant, entry, chain.last());
        chain.push(record.clone());
        Ok(record)
    }

    async fn records(&self, tenant: &str) -> Result<Vec<AuditRecord>, StoreError> {
        Ok(self.audit.lock().map_err(poisoned)?.get(tenant).cloned().unwrap_or_default())
    }
}

impl Control for Memory {
    async fn halted(&self, tenant: &str) -> Result<Option<String>, StoreError> {
        Ok(self.halts.lock().map_err(poisoned)?.get(tenant).cloned())
    }

    async fn set_halted(&self, tenant: &str, reason: Option<&str>) -> Result<(), StoreError> {
        let mut h = self.halts.lock().map_err(poisoned)?;
        match reason {
            Some(r) => h.insert(tenant.to_owned(), r.to_owned()),
            None => h.remove(tenant),
        };
        Ok(())
    }

    async fn runs_in_hour(&self, tenant: &str, resource: &str, wpk: &str, hour: i64) -> Result<u32, StoreError> {
        let slots = self.slots.lock().map_err(poisoned)?;
        let set = slots.get(&(tenant.to_owned(), resource.to_owned(), hour));
        Ok(set.map_or(0, |s| s.iter().filter(|k| k.split('#').next() == Some(wpk)).count() as u32))
    }

    async fn take_slot(
        &self,
        tenant: &str,
        resource: &str,
        wpk_run: &str,
        hour: i64,
        max: u32,
    ) -> Result<bool, StoreError> {
        let mut slots = self.slots.lock().map_err(poisoned)?;
        let set = slots.entry((tenant.to_owned(), resource.to_owned(), hour)).or_default();
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

    async fn outcome_stats(&self, tenant: &str, signal: &str) -> Result<BTreeMap<String, (u32, u32)>, StoreError> {
        Ok(self
            .stats
            .lock()
            .map_err(poisoned)?
            .get(&(tenant.to_owned(), signal.to_owned()))
            .cloned()
            .unwrap_or_default())
    }

    async fn record_outcome(&self, tenant: &str, signal: &str, wpk: &str, ok: bool) -> Result<(), StoreError> {
        let mut stats = self.stats.lock().map_err(poisoned)?;
        let entry = stats.entry((tenant.to_owned(), signal.to_owned())).or_default().entry(wpk.to_owned()).or_default();
        if ok {
            entry.0 += 1;
        } else {
            entry.1 += 1;
        }
        Ok(())
    }
}

impl SimStore for Memory {
    async fn get(&self, tenant: &str, resource: &str) -> Result<Option<SimResource>, String> {
        Ok(self.sim.lock().map_err(|_| "poisoned")?.get(&(tenant.to_owned(), resource.to_owned())).cloned())
    }

    async fn put(&self, tenant: &str, resource: &str, r: &SimResource) -> Result<(), String> {
        self.sim.lock().map_err(|_| "poisoned")?.insert((tenant.to_owned(), resource.to_owned()), r.clone());
        Ok(())
    }

    async fn apply(
        &self,
        tenant: &str,
        resource: &str,
        before: &SimResource,
        after: &SimResource,
        key: &str,
        receipt: &Value,
    ) -> Result<(Value, bool), String> {
        let mut receipts = self.receipts.lock().map_err(|_| "poisoned")?;
        if let Some((_, stored)) = receipts.get(&(tenant.to_owned(), key.to_owned())) {
            return Ok((stored.clone(), true));
        }
        let mut sim = self.sim.lock().map_err(|_| "poisoned")?;
        let current = sim.get(&(tenant.to_owned(), resource.to_owned()));
        if current != Some(before) {
            return Err("the resource changed while acting".into());
        }
        sim.insert((tenant.to_owned(), resource.to_owned()), after.clone());
        receipts.insert((tenant.to_owned(), key.to_owned()), (true, receipt.clone()));
        self.applied.fetch_add(1, Ordering::Relaxed);
        Ok((receipt.clone(), false))
    }
}

impl Receipts for Memory {
    async fn get(&self, tenant: &str, key: &str) -> Result<Option<(bool, Value)>, String> {
        Ok(self.receipts.lock().map_err(|_| "poisoned")?.get(&(tenant.to_owned(), key.to_owned())).cloned())
    }

    async fn begin(&self, tenant: &str, key: &str) -> Result<bool, String> {
        let mut r = self.receipts.lock().map_err(|_| "poisoned")?;
        let k = (tenant.to_owned(), key.to_owned());
        if r.contains_key(&k) {
            return Ok(false);
        }
        r.insert(k, (false, Value::Null));
        Ok(true)
    }

    async fn finish(&self, tenant: &str, key: &str, result: &Value) -> Result<(), String> {
        self.receipts
            .lock()
            .map_err(|_| "poisoned")?
            .insert((tenant.to_owned(), key.to_owned()), (true, result.clone()));
        self.applied.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

impl RunQueue for Memory {
    async fn enqueue(&self, tenant: &str, resource: &str, run_id: &str) -> Result<(), StoreError> {
        self.queued.lock().map_err(poisoned)?.push((tenant.to_owned(), resource.to_owned(), run_id.to_owned()));
        Ok(())
    }
}

/// Sharing one memory between the agent's roles (store, sim, receipts).
impl<T: RunStore> RunStore for std::sync::Arc<T> {
    async fn create_run(&self, s: &RunState) -> Result<(), StoreError> {
        (**self).create_run(s).await
    }
    async fn load_run(&self, t: &str, r: &str) -> Result<Option<RunState>, StoreError> {
        (**self).load_run(t, r).await
    }
    async fn save_step(&self, s: &RunState, c: &Checkpoint) -> Result<(), StoreError> {
        (**self).save_step(s, c).await
    }
    async fn save_run(&self, s: &RunState) -> Result<(), StoreError> {
        (**self).save_run(s).await
    }
    async fn checkpoints(&self, t: &str, r: &str) -> Result<Vec<Checkpoint>, StoreError> {
        (**self).checkpoints(t, r).await
    }
    async fn approve(&self, t: &str, r: &str, a: &Approval) -> Result<RunState, StoreError> {
        (**self).approve(t, r, a).await
    }
    async fn reject(&self, t: &str, r: &str, a: &Approval) -> Result<RunState, StoreError> {
        (**self).reject(t, r, a).await
    }
}

impl<T: WpkStore> WpkStore for std::sync::Arc<T> {
    async fn put_wpk(&self, t: &str, w: &StoredWpk) -> Result<(), StoreError> {
        (**self).put_wpk(t, w).await
    }
    async fn get_wpk(&self, t: &str, id: &str, v: u32) -> Result<Option<StoredWpk>, StoreError> {
        (**self).get_wpk(t, id, v).await
    }
    async fn list_wpks(&self, t: &str) -> Result<Vec<StoredWpk>, StoreError> {
        (**self).list_wpks(t).await
    }
    async fn set_standing_approval(&self, t: &str, id: &str, v: u32, a: &StandingApproval) -> Result<(), StoreError> {
        (**self).set_standing_approval(t, id, v, a).await
    }
}

impl<T: AuditLog> AuditLog for std::sync::Arc<T> {
    async fn append(&self, t: &str, e: AuditEntry) -> Result<AuditRecord, StoreError> {
        (**self).append(t, e).await
    }
    async fn records(&self, t: &str) -> Result<Vec<AuditRecord>, StoreError> {
        (**self).records(t).await
    }
}

impl<T: Control> Control for std::sync::Arc<T> {
    async fn halted(&self, t: &str) -> Result<Option<String>, StoreError> {
        (**self).halted(t).await
    }
    async fn set_halted(&self, t: &str, r: Option<&str>) -> Result<(), StoreError> {
        (**self).set_halted(t, r).await
    }
    async fn runs_in_hour(&self, t: &str, r: &str, w: &str, h: i64) -> Result<u32, StoreError> {
        (**self).runs_in_hour(t, r, w, h).await
    }
    async fn take_slot(&self, t: &str, r: &str, w: &str, h: i64, m: u32) -> Result<bool, StoreError> {
        (**self).take_slot(t, r, w, h, m).await
    }
    async fn outcome_stats(&self, t: &str, s: &str) -> Result<BTreeMap<String, (u32, u32)>, StoreError> {
        (**self).outcome_stats(t, s).await
    }
    async fn record_outcome(&self, t: &str, s: &str, w: &str, ok: bool) -> Result<(), StoreError> {
        (**self).record_outcome(t, s, w, ok).await
    }
}

impl<T: SimStore> SimStore for std::sync::Arc<T> {
    async fn get(&self, t: &str, r: &str) -> Result<Option<SimResource>, String> {
        (**self).get(t, r).await
    }
    async fn put(&self, t: &str, r: &str, s: &SimResource) -> Result<(), String> {
        (**self).put(t, r, s).await
    }
    async fn apply(
        &self,
        t: &str,
        r: &str,
        b: &SimResource,
        a: &SimResource,
        k: &str,
        rc: &Value,
    ) -> Result<(Value, bool), String> {
        (**self).apply(t, r, b, a, k, rc).await
    }
}

impl<T: Receipts> Receipts for std::sync::Arc<T> {
    async fn get(&self, t: &str, k: &str) -> Result<Option<(bool, Value)>, String> {
        (**self).get(t, k).await
    }
    async fn begin(&self, t: &str, k: &str) -> Result<bool, String> {
        (**self).begin(t, k).await
    }
    async fn finish(&self, t: &str, k: &str, r: &Value) -> Result<(), String> {
        (**self).finish(t, k, r).await
    }
}
