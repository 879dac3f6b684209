//! In-memory twins of the orchestrator's ports, for unit tests of the engine and the API.

use std::collections::BTreeMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use naksha_act::sim::SimResource;
use naksha_contracts::TenantId;
use naksha_contracts::runs::RunProgress;

use crate::ports::{
    AgentRuns, ChaosMessage, EdgeExecution, EdgeTarget, Halt, Http, Queue, Runs, StoreError, Telemetry, World,
};
use crate::run::ChaosRun;
use crate::specs::Spec;

fn poisoned<T>(_: T) -> StoreError {
    StoreError("lock poisoned".into())
}

/// A tenant's node, the time the trigger was created, and its execution there.
pub type NodeExecution = (TenantId, String, DateTime<Utc>, EdgeExecution);

#[derive(Debug, Default)]
pub struct MemoryWorld {
    pub resources: Mutex<BTreeMap<(TenantId, String), SimResource>>,
    pub nodes: Mutex<BTreeMap<(TenantId, String), EdgeTarget>>,
    /// Executions of nodes, with the time their trigger was created.
    pub executions: Mutex<Vec<NodeExecution>>,
}

impl World for MemoryWorld {
    async fn get(&self, t: &TenantId, r: &str) -> Result<Option<SimResource>, StoreError> {
        Ok(self.resources.lock().map_err(poisoned)?.get(&(t.clone(), r.to_owned())).cloned())
    }
    async fn replace(
        &self,
        t: &TenantId,
        r: &str,
        before: &SimResource,
        after: &SimResource,
    ) -> Result<bool, StoreError> {
        let mut all = self.resources.lock().map_err(poisoned)?;
        match all.get_mut(&(t.clone(), r.to_owned())) {
            Some(cur) if cur == before => {
                *cur = after.clone();
                Ok(true)
            }
            _ => Ok(false),
        }
    }
    async fn resources(&self, t: &TenantId) -> Result<Vec<(String, SimResource)>, StoreError> {
        let all = self.resources.lock().map_err(poisoned)?;
        Ok(all.iter().filter(|((tt, _), _)| tt == t).map(|((_, n), r)| (n.clone(), r.clone())).collect())
    }
    async fn nodes(&self, t: &TenantId) -> Result<Vec<EdgeTarget>, StoreError> {
        let all = self.nodes.lock().map_err(poisoned)?;
        Ok(all.iter().filter(|((tt, _), _)| tt == t).map(|(_, n)| n.clone()).collect())
    }
    async fn partition(&self, t: &TenantId, node: &str, run: &str, until: DateTime<Utc>) -> Result<bool, StoreError> {
        let mut all = self.nodes.lock().map_err(poisoned)?;
        match all.get_mut(&(t.clone(), node.to_owned())) {
            Some(n) if n.partition_run.as_deref().is_none_or(|r| r == run) => {
                n.partition_run = Some(run.to_owned());
                n.partition_until = Some(until);
                Ok(true)
            }
            _ => Ok(false),
        }
    }
    async fn lift_partition(&self, t: &TenantId, node: &str, run: &str) -> Result<bool, StoreError> {
        let mut all = self.nodes.lock().map_err(poisoned)?;
        match all.get_mut(&(t.clone(), node.to_owned())) {
            Some(n) if n.partition_run.as_deref() == Some(run) => {
                n.partition_run = None;
                n.partition_until = None;
                Ok(true)
            }
            _ => Ok(false),
        }
    }
    async fn executions_since(
        &self,
        t: &TenantId,
        node: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<EdgeExecution>, StoreError> {
        let all = self.executions.lock().map_err(poisoned)?;
        Ok(all.iter().filter(|(tt, n, at, _)| tt == t && n == node && *at >= since).map(|(.., e)| e.clone()).collect())
    }
}

/// A resource of a tenant.
type Key = (TenantId, String);

#[derive(Debug, Default)]
pub struct MemoryRuns {
    pub runs: Mutex<BTreeMap<(TenantId, String), ChaosRun>>,
    /// Held by run id, until.
    pub locks: Mutex<BTreeMap<Key, (String, DateTime<Utc>)>>,
    pub specs: Mutex<BTreeMap<(TenantId, String), Spec>>,
}

impl Runs for MemoryRuns {
    async fn create(&self, run: &ChaosRun) -> Result<bool, StoreError> {
        let mut all = self.runs.lock().map_err(poisoned)?;
        let key = (run.tenant.clone(), run.run_id.clone());
        if all.contains_key(&key) {
            return Ok(false);
        }
        all.insert(key, run.clone());
        Ok(true)
    }
    async fn load(&self, t: &TenantId, id: &str) -> Result<Option<ChaosRun>, StoreError> {
        Ok(self.runs.lock().map_err(poisoned)?.get(&(t.clone(), id.to_owned())).cloned())
    }
    async fn save(&self, run: &ChaosRun) -> Result<(), StoreError> {
        let mut all = self.runs.lock().map_err(poisoned)?;
        // An abort asked for meanwhile is kept.
        let key = (run.tenant.clone(), run.run_id.clone());
        let abort = all.get(&key).and_then(|r| r.abort_requested.clone());
        let mut run = run.clone();
        if run.abort_requested.is_none() {
            run.abort_requested = abort;
        }
        all.insert(key, run);
        Ok(())
    }
    async fn delete(&self, t: &TenantId, id: &str) -> Result<(), StoreError> {
        self.runs.lock().map_err(poisoned)?.remove(&(t.clone(), id.to_owned()));
        Ok(())
    }
    async fn list(&self, t: &TenantId, limit: usize) -> Result<Vec<ChaosRun>, StoreError> {
        let all = self.runs.lock().map_err(poisoned)?;
        let mut runs: Vec<ChaosRun> = all.iter().filter(|((tt, _), _)| tt == t).map(|(_, r)| r.clone()).collect();
        runs.sort_by(|a, b| b.run_id.cmp(&a.run_id));
        runs.truncate(limit);
        Ok(runs)
    }
    async fn request_abort(&self, t: &TenantId, id: &str, reason: &str) -> Result<bool, StoreError> {
        let mut all = self.runs.lock().map_err(poisoned)?;
        match all.get_mut(&(t.clone(), id.to_owned())) {
            Some(r) if !r.is_over() => {
                r.abort_requested = Some(reason.to_owned());
                Ok(true)
            }
            _ => Ok(false),
        }
    }
    async fn lock(&self, t: &TenantId, resource: &str, run_id: &str, until: DateTime<Utc>) -> Result<bool, StoreError> {
        let mut locks = self.locks.lock().map_err(poisoned)?;
        let key = (t.clone(), resource.to_owned());
        match locks.get(&key) {
            Some((holder, expires)) if holder != run_id && *expires > Utc::now() => Ok(false),
            _ => {
                locks.insert(key, (run_id.to_owned(), until));
                Ok(true)
            }
        }
    }
    async fn unlock(&self, t: &TenantId, resource: &str, run_id: &str) -> Result<(), StoreError> {
        let mut locks = self.locks.lock().map_err(poisoned)?;
        let key = (t.clone(), resource.to_owned());
        if locks.get(&key).is_some_and(|(holder, _)| holder == run_id) {
            locks.remove(&key);
        }
        Ok(())
    }
    async fn put_spec(&self, t: &TenantId, spec: &Spec) -> Result<bool, StoreError> {
        let mut specs = self.specs.lock().map_err(poisoned)?;
        let key = (t.clone(), spec.id.clone());
        if specs.contains_key(&key) {
            return Ok(false);
        }
        specs.insert(key, spec.clone());
        Ok(true)
    }
    async fn specs(&self, t: &TenantId) -> Result<Vec<Spec>, StoreError> {
        let specs = self.specs.lock().map_err(poisoned)?;
        Ok(specs.iter().filter(|((tt, _), _)| tt == t).map(|(_, s)| s.clone()).collect())
    }
}

#[derive(Debug, Default)]
pub struct MemoryAgentRuns {
    pub runs: Mutex<Vec<(TenantId, RunProgress)>>,
}

impl AgentRuns for MemoryAgentRuns {
    async fn on_resource(&self, t: &TenantId, resource: &str, since: &str) -> Result<Vec<RunProgress>, StoreError> {
        let runs = self.runs.lock().map_err(poisoned)?;
        Ok(runs
            .iter()
            .filter(|(tt, p)| tt == t && p.resource == resource && p.updated_at.as_str() >= since)
            .map(|(_, p)| p.clone())
            .collect())
    }
}

/// A tenant's source and metric.
type Metric = (TenantId, String, String);

#[derive(Debug, Default)]
pub struct MemoryTelemetry {
    /// (minute, mean) of each metric's latest minute.
    pub latest: Mutex<BTreeMap<Metric, (i64, f64)>>,
}

impl Telemetry for MemoryTelemetry {
    async fn latest(&self, t: &TenantId, source: &str, metric: &str) -> Result<Option<(i64, f64)>, StoreError> {
        Ok(self.latest.lock().map_err(poisoned)?.get(&(t.clone(), source.to_owned(), metric.to_owned())).copied())
    }
}

#[derive(Debug, Default)]
pub struct MemoryHalt {
    pub halted: Mutex<BTreeMap<TenantId, String>>,
}

impl Halt for MemoryHalt {
    async fn halted(&self, t: &TenantId) -> Result<Option<String>, StoreError> {
        Ok(self.halted.lock().map_err(poisoned)?.get(t).cloned())
    }
}

/// HTTP probes answer what the test set, per URL (unknown: an error).
#[derive(Debug, Default)]
pub struct StaticHttp {
    pub answers: Mutex<BTreeMap<String, u16>>,
}

impl Http for StaticHttp {
    async fn status(&self, url: &str) -> Result<u16, String> {
        self.answers
            .lock()
            .map_err(|_| "poisoned".to_owned())?
            .get(url)
            .copied()
            .ok_or_else(|| "unreachable".to_owned())
    }
}

#[derive(Debug, Default)]
pub struct MemoryQueue {
    pub sent: Mutex<Vec<ChaosMessage>>,
}

impl Queue for MemoryQueue {
    async fn send(&self, msg: &ChaosMessage) -> Result<(), StoreError> {
        self.sent.lock().map_err(poisoned)?.push(msg.clone());
        Ok(())
    }
}
