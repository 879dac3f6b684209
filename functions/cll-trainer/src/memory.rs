//! In-memory twins of the trainer's ports, for unit tests of the worker and the API.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;

use naksha_contracts::TenantId;
use naksha_contracts::models::{Alias, CHAMPION, StoredModel};
use naksha_contracts::signing::TrustedKeys;
use naksha_core::models::{Loaded, first_verified};

use crate::jobs::{Job, JobMessage};
use crate::ports::{Created, JobQueue, JobStore, Registry, StoreError, TrainingSource};
use crate::store::model_versions::moved;
use crate::train::TrainingData;

fn poisoned<T>(_: T) -> StoreError {
    StoreError("lock poisoned".into())
}

/// Training data per tenant.
#[derive(Debug, Default)]
pub struct MemorySource {
    pub data: Mutex<BTreeMap<TenantId, TrainingData>>,
}

impl TrainingSource for MemorySource {
    async fn tenants(&self) -> Result<BTreeSet<TenantId>, StoreError> {
        Ok(self.data.lock().map_err(poisoned)?.keys().cloned().collect())
    }

    async fn load(&self, tenant: &TenantId, from: i64, to: i64) -> Result<TrainingData, StoreError> {
        let all = self.data.lock().map_err(poisoned)?;
        let mut data = all.get(tenant).cloned().unwrap_or_else(|| TrainingData::new(tenant.clone()));
        for s in &mut data.series {
            s.points.retain(|(m, _)| (from..=to).contains(m));
        }
        data.outcomes.retain(|o| (from..=to).contains(&o.minute));
        data.normalise();
        Ok(data)
    }
}

#[derive(Debug, Default)]
pub struct MemoryJobs {
    pub jobs: Mutex<HashMap<(TenantId, String), Job>>,
    /// Each tenant's training slot: the job holding it.
    pub slots: Mutex<HashMap<TenantId, String>>,
    /// Fail every read, as an unreachable table does.
    pub down: std::sync::atomic::AtomicBool,
    /// Every saved state of every job, in order (progress as a poller would see it).
    pub history: Mutex<Vec<Job>>,
}

impl JobStore for MemoryJobs {
    async fn create(&self, job: &Job) -> Result<Created, StoreError> {
        let mut jobs = self.jobs.lock().map_err(poisoned)?;
        let mut slots = self.slots.lock().map_err(poisoned)?;
        let key = (job.tenant.clone(), job.job_id.clone());
        if jobs.contains_key(&key) {
            return Ok(Created::Exists);
        }
        if let Some(holder) = slots.get(&job.tenant) {
            return Ok(Created::Busy { job_id: holder.clone() });
        }
        slots.insert(job.tenant.clone(), job.job_id.clone());
        jobs.insert(key, job.clone());
        Ok(Created::New)
    }

    async fn release(&self, tenant: &TenantId, job_id: &str) -> Result<(), StoreError> {
        let mut slots = self.slots.lock().map_err(poisoned)?;
        if slots.get(tenant).is_some_and(|holder| holder == job_id) {
            slots.remove(tenant);
        }
        Ok(())
    }

    async fn save(&self, job: &Job) -> Result<(), StoreError> {
        self.history.lock().map_err(poisoned)?.push(job.clone());
        self.jobs.lock().map_err(poisoned)?.insert((job.tenant.clone(), job.job_id.clone()), job.clone());
        Ok(())
    }

    async fn get(&self, tenant: &TenantId, job_id: &str) -> Result<Option<Job>, StoreError> {
        if self.down.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(StoreError("the jobs table is unreachable".into()));
        }
        Ok(self.jobs.lock().map_err(poisoned)?.get(&(tenant.clone(), job_id.to_owned())).cloned())
    }

    async fn delete(&self, tenant: &TenantId, job_id: &str) -> Result<(), StoreError> {
        self.jobs.lock().map_err(poisoned)?.remove(&(tenant.clone(), job_id.to_owned()));
        Ok(())
    }
}

#[derive(Debug, Default)]
pub struct MemoryQueue {
    pub sent: Mutex<Vec<JobMessage>>,
}

impl JobQueue for MemoryQueue {
    async fn enqueue(&self, msg: &JobMessage) -> Result<(), StoreError> {
        self.sent.lock().map_err(poisoned)?.push(msg.clone());
        Ok(())
    }
}

#[derive(Debug, Default)]
pub struct MemoryRegistry {
    pub versions: Mutex<BTreeMap<(TenantId, String), StoredModel>>,
    pub aliases: Mutex<BTreeMap<(TenantId, String), Alias>>,
}

impl Registry for MemoryRegistry {
    async fn get(&self, tenant: &TenantId, model_id: &str) -> Result<Option<StoredModel>, StoreError> {
        Ok(self.versions.lock().map_err(poisoned)?.get(&(tenant.clone(), model_id.to_owned())).cloned())
    }

    async fn list(&self, tenant: &TenantId) -> Result<Vec<StoredModel>, StoreError> {
        let mut out: Vec<StoredModel> = self
            .versions
            .lock()
            .map_err(poisoned)?
            .iter()
            .filter(|((t, _), _)| t == tenant)
            .map(|(_, m)| m.clone())
            .collect();
        out.sort_by(|a, b| b.created_at.cmp(&a.created_at).then_with(|| b.model_id.cmp(&a.model_id)));
        Ok(out)
    }

    async fn alias(&self, tenant: &TenantId, alias: &str) -> Result<Option<Alias>, StoreError> {
        Ok(self.aliases.lock().map_err(poisoned)?.get(&(tenant.clone(), alias.to_owned())).cloned())
    }

    async fn load_champion(&self, tenant: &TenantId, keys: &TrustedKeys) -> Result<Loaded, StoreError> {
        let alias = self.alias(tenant, CHAMPION).await?;
        first_verified(tenant, alias.as_ref(), keys, |id| async move { self.get(tenant, &id).await }).await
    }

    async fn put(&self, model: &StoredModel) -> Result<bool, StoreError> {
        let mut versions = self.versions.lock().map_err(poisoned)?;
        let key = (model.tenant.clone(), model.model_id.clone());
        if versions.contains_key(&key) {
            return Ok(false);
        }
        versions.insert(key, model.clone());
        Ok(true)
    }

    async fn move_alias(
        &self,
        tenant: &TenantId,
        alias: &str,
        model_id: &str,
        seen: Option<&Alias>,
        now: &str,
    ) -> Result<bool, StoreError> {
        let mut aliases = self.aliases.lock().map_err(poisoned)?;
        let key = (tenant.clone(), alias.to_owned());
        if aliases.get(&key).map(|a| a.version) != seen.map(|a| a.version) {
            return Ok(false);
        }
        aliases.insert(key, moved(seen, model_id, now));
        Ok(true)
    }
}
