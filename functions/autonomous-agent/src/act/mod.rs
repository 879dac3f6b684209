//! Act adapters, addressed by the name a WPK step gives (`sim`, `k8s`).

pub mod k8s;
pub mod sim;

use std::future::Future;

use naksha_contracts::TenantId;
use serde_json::{Map, Value};

use crate::ports::{ActError, Actuator};
use k8s::K8sAdapter;
use sim::{SimAdapter, SimStore};

/// Receipts of side effects that cannot share a transaction with their target (k8s): written
/// `pending` before the call and `done` after, so a retry never repeats a call whose outcome is
/// known, and refuses one whose outcome is not.
pub trait Receipts: Send + Sync {
    /// `Some((done, result))` when a receipt exists.
    fn get(&self, tenant: &TenantId, key: &str)
    -> impl Future<Output = Result<Option<(bool, Value)>, ActError>> + Send;
    /// Create a pending receipt; `false` if one already exists.
    fn begin(&self, tenant: &TenantId, key: &str) -> impl Future<Output = Result<bool, ActError>> + Send;
    fn finish(&self, tenant: &TenantId, key: &str, result: &Value)
    -> impl Future<Output = Result<(), ActError>> + Send;
}

#[derive(Debug, Clone)]
pub struct Adapters<S, R> {
    pub sim: Option<SimAdapter<S>>,
    pub k8s: Option<K8sAdapter>,
    pub receipts: R,
}

fn missing(adapter: &str) -> ActError {
    ActError::NotConfigured(adapter.to_owned())
}

impl<S: SimStore, R: Receipts> Actuator for Adapters<S, R> {
    async fn describe(
        &self,
        tenant: &TenantId,
        adapter: &str,
        target: &str,
        args: &Map<String, Value>,
    ) -> Result<Option<Value>, ActError> {
        match adapter {
            "sim" => self.sim.as_ref().ok_or_else(|| missing(adapter))?.describe(tenant, target).await,
            "k8s" => self.k8s.as_ref().ok_or_else(|| missing(adapter))?.describe(target, args).await,
            other => Err(ActError::UnknownAdapter(other.to_owned())),
        }
    }

    async fn dry_run(
        &self,
        tenant: &TenantId,
        adapter: &str,
        action: &str,
        target: &str,
        args: &Map<String, Value>,
    ) -> Result<Value, ActError> {
        match adapter {
            "sim" => self.sim.as_ref().ok_or_else(|| missing(adapter))?.dry_run(tenant, action, target, args).await,
            "k8s" => self.k8s.as_ref().ok_or_else(|| missing(adapter))?.dry_run(action, target, args).await,
            other => Err(ActError::UnknownAdapter(other.to_owned())),
        }
    }

    async fn execute(
        &self,
        tenant: &TenantId,
        adapter: &str,
        action: &str,
        target: &str,
        args: &Map<String, Value>,
        key: &str,
    ) -> Result<(Value, bool), ActError> {
        match adapter {
            "sim" => {
                self.sim.as_ref().ok_or_else(|| missing(adapter))?.execute(tenant, action, target, args, key).await
            }
            "k8s" => {
                let k8s = self.k8s.as_ref().ok_or_else(|| missing(adapter))?;
                match self.receipts.get(tenant, key).await? {
                    Some((true, result)) => return Ok((result, true)),
                    Some((false, _)) => {
                        return Err(ActError::Refused(
                            "an earlier attempt of this step did not report back; check the cluster before retrying"
                                .into(),
                        ));
                    }
                    None => {}
                }
                if !self.receipts.begin(tenant, key).await? {
                    return Err(ActError::Refused("another attempt of this step is in progress".into()));
                }
                let result = k8s.execute(action, target, args).await?;
                self.receipts.finish(tenant, key, &result).await?;
                Ok((result, false))
            }
            other => Err(ActError::UnknownAdapter(other.to_owned())),
        }
    }
}
