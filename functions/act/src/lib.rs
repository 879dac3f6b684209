//! naksha-act: the act adapters a WPK step names (`sim`, `k8s`), shared by the agent (in Lambda)
//! and the edge node (a plain binary), so both carry out a step the same way. No AWS, no Lambda:
//! where the simulated world and the receipts live is a trait ([`sim::SimStore`], [`Receipts`]).

pub mod faults;
pub mod k8s;
pub mod sim;

use naksha_contracts::trace::TraceContext;

tokio::task_local! {
    /// The trace of the run whose steps are being carried out (P-4). The agent sets it around a
    /// run's advance ([`with_trace`]); adapters that call out (the Kubernetes API) send it on as a
    /// `traceparent` of a child span, so the system acted on can join its logs to the run's.
    static RUN_TRACE: TraceContext;
}

/// Run `fut` with `trace` as the trace of the acts it carries out (`None`: no trace to pass on).
pub async fn with_trace<F: Future>(trace: Option<TraceContext>, fut: F) -> F::Output {
    match trace {
        Some(t) => RUN_TRACE.scope(t, fut).await,
        None => fut.await,
    }
}

/// A `traceparent` for an outgoing call made on behalf of the current run: its trace, a new span.
pub fn outgoing_traceparent() -> Option<String> {
    RUN_TRACE.try_with(|t| t.child().traceparent()).ok()
}

use std::future::Future;

use naksha_contracts::TenantId;
use serde_json::{Map, Value};

use k8s::K8sAdapter;
use sim::{SimAdapter, SimStore};

/// Why an act adapter could not describe, dry-run or carry out an action.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActError {
    /// A WPK step names an adapter this deployment does not have.
    #[error("the {0} adapter is not configured in this deployment")]
    NotConfigured(String),
    #[error("unknown adapter {0}")]
    UnknownAdapter(String),
    /// The action cannot be carried out on the resource as it is.
    #[error("{0}")]
    Refused(String),
    /// The system acted on, or the receipts of its acts, could not be reached.
    #[error("{0}")]
    Unavailable(String),
}

/// Carrying out WPK steps: by adapter name, for a tenant.
pub trait Actuator: Send + Sync {
    /// The resource as the adapter sees it (`None`: it does not exist).
    fn describe(
        &self,
        tenant: &TenantId,
        adapter: &str,
        target: &str,
        args: &Map<String, Value>,
    ) -> impl Future<Output = Result<Option<Value>, ActError>> + Send;
    /// What the action would change, without changing anything.
    fn dry_run(
        &self,
        tenant: &TenantId,
        adapter: &str,
        action: &str,
        target: &str,
        args: &Map<String, Value>,
    ) -> impl Future<Output = Result<Value, ActError>> + Send;
    /// Carry out the action at most once per idempotency key; a repeat returns the stored
    /// receipt with `reused = true`.
    fn execute(
        &self,
        tenant: &TenantId,
        adapter: &str,
        action: &str,
        target: &str,
        args: &Map<String, Value>,
        idempotency_key: &str,
    ) -> impl Future<Output = Result<(Value, bool), ActError>> + Send;
}

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

/// Shared receipts are receipts.
impl<T: Receipts> Receipts for std::sync::Arc<T> {
    async fn get(&self, t: &TenantId, k: &str) -> Result<Option<(bool, Value)>, ActError> {
        (**self).get(t, k).await
    }
    async fn begin(&self, t: &TenantId, k: &str) -> Result<bool, ActError> {
        (**self).begin(t, k).await
    }
    async fn finish(&self, t: &TenantId, k: &str, r: &Value) -> Result<(), ActError> {
        (**self).finish(t, k, r).await
    }
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
