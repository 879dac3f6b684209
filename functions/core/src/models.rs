//! The trainer's model registry as the services that *use* models read it (the telemetry
//! consumer, the agent worker, the trainer itself): read-only, every version verified before use.
//! Only the trainer writes `naksha.model_versions` (its `store::model_versions`); the item layout
//! and the key functions are naksha-contracts' [`naksha_contracts::models`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use naksha_contracts::TenantId;
use naksha_contracts::models::{Alias, CHAMPION, ModelArtifact, ModelError, StoredModel, alias_sk, version_sk};
use naksha_contracts::signing::{TrustedKeys, Verified};

use crate::aws::describe_error;
use crate::ddb::{from_item, s};

/// A verified model in use.
pub type Model = Arc<Verified<ModelArtifact>>;

/// The registry could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("model registry: {0}")]
pub struct RegistryError(pub String);

/// The newest champion that verified (if any), and the newer ones refused on the way.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    pub model: Option<Model>,
    pub refused: Vec<(String, ModelError)>,
}

/// Read access to `naksha.model_versions`.
#[derive(Debug, Clone)]
pub struct ModelReader {
    db: aws_sdk_dynamodb::Client,
    table: String,
}

impl ModelReader {
    pub fn new(db: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self { db, table: table.into() }
    }

    async fn item(&self, tenant: &TenantId, sk: String) -> Result<Option<crate::ddb::Item>, RegistryError> {
        let out = self
            .db
            .get_item()
            .table_name(&self.table)
            .key("pk", s(tenant.as_str()))
            .key("sk", s(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| RegistryError(describe_error(&e)))?;
        Ok(out.item().cloned())
    }

    /// One version as stored (not yet verified). An item that does not decode reads as absent.
    pub async fn get(&self, tenant: &TenantId, model_id: &str) -> Result<Option<StoredModel>, RegistryError> {
        Ok(self.item(tenant, version_sk(model_id)).await?.and_then(|i| from_item(i).ok()))
    }

    pub async fn alias(&self, tenant: &TenantId, alias: &str) -> Result<Option<Alias>, RegistryError> {
        Ok(self.item(tenant, alias_sk(alias)).await?.and_then(|i| from_item(i).ok()))
    }

    /// The newest champion that verifies (see [`first_verified`]).
    pub async fn load_champion(&self, tenant: &TenantId, keys: &TrustedKeys) -> Result<Loaded, RegistryError> {
        let alias = self.alias(tenant, CHAMPION).await?;
        first_verified(tenant, alias.as_ref(), keys, |id| async move { self.get(tenant, &id).await }).await
    }
}

/// Walk an alias from its model back through the champions before it, and return the first that
/// verifies. A refused version is logged and skipped: the one before it stays in use. No model:
/// no champion (or none verifies) — use the defaults.
pub async fn first_verified<E, F, Fut>(
    tenant: &TenantId,
    alias: Option<&Alias>,
    keys: &TrustedKeys,
    get: F,
) -> Result<Loaded, E>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<Option<StoredModel>, E>>,
{
    let Some(alias) = alias else { return Ok(Loaded::default()) };
    let mut refused = Vec::new();
    let chain = std::iter::once(alias.model_id.clone()).chain(alias.history.iter().rev().cloned());
    for id in chain {
        let verdict = match get(id.clone()).await? {
            Some(stored) => stored.verify(keys),
            None => Err(ModelError::Malformed(id.clone(), "version missing from the registry".into())),
        };
        match verdict {
            Ok(model) => return Ok(Loaded { model: Some(Arc::new(model)), refused }),
            Err(e) => {
                tracing::error!(tenant = %tenant, model_id = %id, error = %e, "model refused; falling back to the previous champion");
                refused.push((id, e));
            }
        }
    }
    Ok(Loaded { model: None, refused })
}

type Cached = (Instant, Option<Model>);

/// Verified champions per tenant, reloaded after `ttl` (warm Lambdas pick up a promotion
/// within a minute; a tenant without a model is asked again after `ttl / 4`, so its first model
/// is used soon). A failed reload keeps the model already in use.
#[derive(Debug)]
pub struct ChampionCache {
    reader: ModelReader,
    keys: TrustedKeys,
    ttl: Duration,
    cache: Mutex<HashMap<TenantId, Cached>>,
}

pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(60);

impl ChampionCache {
    pub fn new(reader: ModelReader, keys: TrustedKeys, ttl: Duration) -> Self {
        Self { reader, keys, ttl, cache: Mutex::new(HashMap::new()) }
    }

    pub async fn get(&self, tenant: &TenantId) -> Option<Model> {
        let cached = self.cache.lock().ok().and_then(|c| c.get(tenant).cloned());
        if let Some((at, model)) = &cached {
            let ttl = if model.is_some() { self.ttl } else { self.ttl / 4 };
            if at.elapsed() < ttl {
                return model.clone();
            }
        }
        let model = match self.reader.load_champion(tenant, &self.keys).await {
            Ok(loaded) => loaded.model,
            Err(e) => {
                tracing::warn!(tenant = %tenant, error = %e, "loading the champion failed; keeping the model in use");
                cached.and_then(|(_, m)| m)
            }
        };
        if let Ok(mut c) = self.cache.lock() {
            c.insert(tenant.clone(), (Instant::now(), model.clone()));
        }
        model
    }
}
