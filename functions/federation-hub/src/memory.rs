//! In-memory twins of the hub's ports, for unit tests of the use cases.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use naksha_contracts::TenantId;
use naksha_contracts::edge::{Delivery, EdgeResult};
use naksha_contracts::signing::Sealed;
use naksha_contracts::wpk::StoredWpk;

use crate::nodes::{Node, NodeStatus};
use crate::ports::{Ending, Finished, HaltSource, Nodes, Registered, StoreError, Work, WpkSource};
use crate::triggers::{Counts, ExecState, Execution, Trigger, TriggerState};

fn poisoned<T>(_: T) -> StoreError {
    StoreError("lock poisoned".into())
}

#[derive(Debug, Default)]
pub struct MemoryNodes {
    nodes: Mutex<BTreeMap<(TenantId, String), (Node, u64)>>,
}

impl MemoryNodes {
    /// What a chaos run's `hub-partition` writes on the node.
    pub fn partition(&self, tenant: &TenantId, node_id: &str, run_id: Option<&str>, until: Option<DateTime<Utc>>) {
        if let Ok(mut all) = self.nodes.lock()
            && let Some((n, _)) = all.get_mut(&(tenant.clone(), node_id.to_owned()))
        {
            n.partition_run = run_id.map(str::to_owned);
            n.partition_until = until;
        }
    }
}

impl Nodes for MemoryNodes {
    async fn register(&self, tenant: &TenantId, node: &Node) -> Result<Registered, StoreError> {
        let mut all = self.nodes.lock().map_err(poisoned)?;
        match all.get_mut(&(tenant.clone(), node.node_id.clone())) {
            None => {
                all.insert((tenant.clone(), node.node_id.clone()), (node.clone(), 0));
                Ok(Registered::New)
            }
            Some((existing, _)) if existing.kid == node.kid => {
                existing.labels = node.labels.clone();
                existing.version = node.version.clone();
                existing.last_seen = node.last_seen;
                existing.status = NodeStatus::Online;
                Ok(Registered::Again)
            }
            Some((existing, _)) => Ok(Registered::OtherKey { kid: existing.kid.clone() }),
        }
    }

    async fn node(&self, tenant: &TenantId, node_id: &str) -> Result<Option<Node>, StoreError> {
        Ok(self.nodes.lock().map_err(poisoned)?.get(&(tenant.clone(), node_id.to_owned())).map(|(n, _)| n.clone()))
    }

    async fn nodes(&self, tenant: &TenantId) -> Result<Vec<Node>, StoreError> {
        let all = self.nodes.lock().map_err(poisoned)?;
        Ok(all.iter().filter(|((t, _), _)| t == tenant).map(|(_, (n, _))| n.clone()).collect())
    }

    async fn all_nodes(&self) -> Result<Vec<(TenantId, Node)>, StoreError> {
        Ok(self.nodes.lock().map_err(poisoned)?.iter().map(|((t, _), (n, _))| (t.clone(), n.clone())).collect())
    }

    async fn heartbeat(
        &self,
        tenant: &TenantId,
        node_id: &str,
        now: DateTime<Utc>,
        halt_seen: Option<bool>,
    ) -> Result<Option<Node>, StoreError> {
        let mut all = self.nodes.lock().map_err(poisoned)?;
        Ok(all.get_mut(&(tenant.clone(), node_id.to_owned())).map(|(n, _)| {
            n.last_seen = now;
            n.status = NodeStatus::Online;
            if let Some(seen) = halt_seen {
                if seen && !n.halt_seen {
                    n.halt_seen_at = Some(now);
                }
                n.halt_seen = seen;
            }
            n.clone()
        }))
    }

    async fn set_status(
        &self,
        tenant: &TenantId,
        node_id: &str,
        status: NodeStatus,
        last_seen: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut all = self.nodes.lock().map_err(poisoned)?;
        match all.get_mut(&(tenant.clone(), node_id.to_owned())) {
            Some((n, _)) if n.last_seen == last_seen => {
                n.status = status;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn next_seq(&self, tenant: &TenantId, node_id: &str) -> Result<u64, StoreError> {
        let mut all = self.nodes.lock().map_err(poisoned)?;
        let (_, seq) =
            all.get_mut(&(tenant.clone(), node_id.to_owned())).ok_or_else(|| StoreError("no such node".into()))?;
        *seq += 1;
        Ok(*seq)
    }
}

/// A node's kept deliveries by seq, with when each expires.
type Inbox = BTreeMap<u64, (Delivery, DateTime<Utc>)>;

#[derive(Debug, Default)]
struct WorkState {
    triggers: BTreeMap<(TenantId, String), Trigger>,
    executions: BTreeMap<(TenantId, String, String), Execution>,
    /// (tenant, node) → trigger ids queued for it, oldest first.
    pending: BTreeMap<(TenantId, String), Vec<String>>,
    slots: HashMap<(TenantId, String), (i64, u32)>,
    deliveries: BTreeMap<(TenantId, String), Inbox>,
    refusals: BTreeMap<(TenantId, String), Vec<EdgeResult>>,
}

#[derive(Debug, Default)]
pub struct MemoryWork {
    state: Mutex<WorkState>,
}

impl MemoryWork {
    /// Rewrite a kept delivery (a test acting as someone with write access to the table).
    pub fn tamper(&self, tenant: &TenantId, node_id: &str, seq: u64, edit: impl FnOnce(&mut Delivery)) {
        if let Ok(mut s) = self.state.lock()
            && let Some((d, _)) =
                s.deliveries.get_mut(&(tenant.clone(), node_id.to_owned())).and_then(|m| m.get_mut(&seq))
        {
            edit(d);
        }
    }
}

fn count(counts: &mut Counts, state: ExecState) {
    match state {
        ExecState::Succeeded => counts.succeeded += 1,
        ExecState::Failed => counts.failed += 1,
        ExecState::Rejected => counts.rejected += 1,
        ExecState::Expired => counts.expired += 1,
        ExecState::Cancelled => counts.cancelled += 1,
        ExecState::Queued | ExecState::Delivered => {}
    }
}

impl Work for MemoryWork {
    async fn create(&self, tenant: &TenantId, trigger: &Trigger, executions: &[Execution]) -> Result<(), StoreError> {
        let mut s = self.state.lock().map_err(poisoned)?;
        let id = trigger.spec.trigger_id.clone();
        s.triggers.insert((tenant.clone(), id.clone()), trigger.clone());
        for e in executions {
            s.executions.insert((tenant.clone(), id.clone(), e.node_id.clone()), e.clone());
            s.pending.entry((tenant.clone(), e.node_id.clone())).or_default().push(id.clone());
        }
        Ok(())
    }

    async fn trigger(&self, tenant: &TenantId, id: &str) -> Result<Option<Trigger>, StoreError> {
        Ok(self.state.lock().map_err(poisoned)?.triggers.get(&(tenant.clone(), id.to_owned())).cloned())
    }

    async fn running(&self, tenant: &TenantId) -> Result<Vec<Trigger>, StoreError> {
        let s = self.state.lock().map_err(poisoned)?;
        Ok(s.triggers
            .iter()
            .filter(|((t, _), tr)| t == tenant && tr.state == TriggerState::Running)
            .map(|(_, tr)| tr.clone())
            .collect())
    }

    async fn executions(&self, tenant: &TenantId, trigger_id: &str) -> Result<Vec<Execution>, StoreError> {
        let s = self.state.lock().map_err(poisoned)?;
        Ok(s.executions
            .iter()
            .filter(|((t, id, _), _)| t == tenant && id == trigger_id)
            .map(|(_, e)| e.clone())
            .collect())
    }

    async fn execution(
        &self,
        tenant: &TenantId,
        trigger_id: &str,
        node_id: &str,
    ) -> Result<Option<Execution>, StoreError> {
        let s = self.state.lock().map_err(poisoned)?;
        Ok(s.executions.get(&(tenant.clone(), trigger_id.to_owned(), node_id.to_owned())).cloned())
    }

    async fn pending(&self, tenant: &TenantId, node_id: &str) -> Result<Vec<String>, StoreError> {
        let s = self.state.lock().map_err(poisoned)?;
        Ok(s.pending.get(&(tenant.clone(), node_id.to_owned())).cloned().unwrap_or_default())
    }

    async fn take_slot(&self, tenant: &TenantId, trigger_id: &str, minute: i64, max: u32) -> Result<bool, StoreError> {
        let mut s = self.state.lock().map_err(poisoned)?;
        let running =
            s.triggers.get(&(tenant.clone(), trigger_id.to_owned())).is_some_and(|t| t.state == TriggerState::Running);
        if !running {
            return Ok(false);
        }
        let slot = s.slots.entry((tenant.clone(), trigger_id.to_owned())).or_insert((minute, 0));
        if slot.0 != minute {
            *slot = (minute, 0);
        }
        if slot.1 >= max {
            return Ok(false);
        }
        slot.1 += 1;
        Ok(true)
    }

    async fn deliver(
        &self,
        tenant: &TenantId,
        node_id: &str,
        delivery: &Delivery,
        at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut s = self.state.lock().map_err(poisoned)?;
        let key = (tenant.clone(), delivery.trigger_id.clone(), node_id.to_owned());
        match s.executions.get_mut(&key) {
            Some(e) if e.state == ExecState::Queued => {
                e.state = ExecState::Delivered;
                e.seq = Some(delivery.seq);
                e.delivered_at = Some(at);
            }
            _ => return Ok(false),
        }
        if let Some(p) = s.pending.get_mut(&(tenant.clone(), node_id.to_owned())) {
            p.retain(|t| *t != delivery.trigger_id);
        }
        s.deliveries
            .entry((tenant.clone(), node_id.to_owned()))
            .or_default()
            .insert(delivery.seq, (delivery.clone(), expires_at));
        Ok(true)
    }

    async fn deliveries(
        &self,
        tenant: &TenantId,
        node_id: &str,
        after: u64,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        let s = self.state.lock().map_err(poisoned)?;
        Ok(s.deliveries
            .get(&(tenant.clone(), node_id.to_owned()))
            .map(|m| {
                m.range(after + 1..)
                    .filter(|(_, (_, exp))| *exp > now)
                    .take(limit)
                    .map(|(_, (d, _))| d.clone())
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn finish(
        &self,
        tenant: &TenantId,
        trigger_id: &str,
        node_id: &str,
        ending: Ending<'_>,
    ) -> Result<Finished, StoreError> {
        let Ending { state, reason, result, delivery, at } = ending;
        let mut s = self.state.lock().map_err(poisoned)?;
        let key = (tenant.clone(), trigger_id.to_owned(), node_id.to_owned());
        let Some(e) = s.executions.get_mut(&key) else { return Err(StoreError("no such execution".into())) };
        if e.state.is_final() {
            return Ok(if e.state == state && e.result.as_ref() == result {
                Finished::Same
            } else {
                Finished::Already(e.state)
            });
        }
        e.state = state;
        e.finished_at = Some(at);
        e.reason = Some(reason.to_owned());
        e.result = result.cloned();
        if let Some(p) = s.pending.get_mut(&(tenant.clone(), node_id.to_owned())) {
            p.retain(|t| t != trigger_id);
        }
        if let Some(t) = s.triggers.get_mut(&(tenant.clone(), trigger_id.to_owned())) {
            count(&mut t.counts, state);
        }
        if let (Some(seq), Some(inbox)) = (delivery, s.deliveries.get_mut(&(tenant.clone(), node_id.to_owned()))) {
            inbox.remove(&seq);
        }
        Ok(Finished::Now)
    }

    async fn end(
        &self,
        tenant: &TenantId,
        trigger_id: &str,
        aborted: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut s = self.state.lock().map_err(poisoned)?;
        match s.triggers.get_mut(&(tenant.clone(), trigger_id.to_owned())) {
            Some(t) if t.state == TriggerState::Running => {
                t.state = if aborted.is_some() { TriggerState::Aborted } else { TriggerState::Completed };
                t.abort_reason = aborted.map(str::to_owned);
                t.ended_at = Some(at);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn record_refusal(
        &self,
        tenant: &TenantId,
        node_id: &str,
        result: &EdgeResult,
        _: &Sealed,
    ) -> Result<(), StoreError> {
        let mut s = self.state.lock().map_err(poisoned)?;
        s.refusals.entry((tenant.clone(), node_id.to_owned())).or_default().insert(0, result.clone());
        Ok(())
    }

    async fn refusals(&self, tenant: &TenantId, node_id: &str, limit: usize) -> Result<Vec<EdgeResult>, StoreError> {
        let s = self.state.lock().map_err(poisoned)?;
        Ok(s.refusals
            .get(&(tenant.clone(), node_id.to_owned()))
            .map(|r| r.iter().take(limit).cloned().collect())
            .unwrap_or_default())
    }
}

/// WPK versions per tenant.
#[derive(Debug, Default)]
pub struct MemoryWpks {
    pub wpks: Mutex<Vec<(TenantId, StoredWpk)>>,
}

impl WpkSource for MemoryWpks {
    async fn wpk(&self, tenant: &TenantId, id: &str, version: Option<u32>) -> Result<Option<StoredWpk>, StoreError> {
        let all = self.wpks.lock().map_err(poisoned)?;
        Ok(all
            .iter()
            .filter(|(t, w)| t == tenant && w.id == id && version.is_none_or(|v| w.version == v))
            .max_by_key(|(_, w)| w.version)
            .map(|(_, w)| w.clone()))
    }
}

/// Halted tenants and why.
#[derive(Debug, Default)]
pub struct MemoryHalt {
    pub halted: Mutex<HashMap<TenantId, String>>,
}

impl HaltSource for MemoryHalt {
    async fn halted(&self, tenant: &TenantId) -> Result<Option<String>, StoreError> {
        Ok(self.halted.lock().map_err(poisoned)?.get(tenant).cloned())
    }
}
