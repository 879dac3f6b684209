//! Model versions (D.3): what the trainer registers, and how everyone who uses a model loads it.
//!
//! - A version is immutable: `model_versions` item `pk=<tenant>`, `sk=v#<model_id>`, written once
//!   with a condition. Its `doc` is the canonical JSON of [`ModelArtifact`].
//! - The signature (P-2) covers a small **manifest** (`model_id`, tenant, created_at, code
//!   version, data digest and the SHA-256 of `doc`), so KMS signs it whole (RAW) and
//!   `openssl dgst -sha256 -verify pub.pem -signature sig.der manifest.json` checks it; the
//!   manifest's `sha256` then pins the document.
//! - The `champion` alias (`sk=alias#champion`) names the version in use and keeps the earlier
//!   champions. Whoever loads a model verifies it first; a version that fails verification is
//!   refused and the previous champion is used instead.
//! - `model_id` is derived from tenant, code version and data digest: training twice on the same
//!   input gives the same id, and the conditional write registers nothing new.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use naksha_detector::detector::Params;
use serde::{Deserialize, Serialize};

use crate::aws::describe_error;
use crate::signing::{KmsSigner, Signature, SignatureError, TrustedKeys, canonical_json, sha256_hex};

pub const SCHEMA: u32 = 1;
pub const CHAMPION: &str = "champion";
/// Earlier champions kept on the alias (the fallback chain).
const HISTORY_LIMIT: usize = 20;

type Item = HashMap<String, AttributeValue>;

/// A trained model: detector parameters per series and the remediation model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelArtifact {
    pub schema: u32,
    pub model_id: String,
    pub tenant: String,
    pub created_at: String,
    pub code_version: String,
    pub data_digest: String,
    pub window: TrainingWindow,
    pub detector: DetectorModel,
    /// signal → WPK id → outcomes seen in the training part of the window.
    pub remediation: BTreeMap<String, BTreeMap<String, Arm>>,
    pub metrics: Metrics,
}

/// The data a version was trained on (minutes since the epoch).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingWindow {
    pub from_minute: i64,
    pub to_minute: i64,
    /// Data at or after this minute was held back for evaluation.
    pub holdout_from_minute: i64,
    pub series: usize,
    pub rows: u64,
    pub outcomes: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DetectorModel {
    pub base: Params,
    /// Per-series fitted settings (series id → fit); other series use `base`.
    pub series: BTreeMap<String, SeriesFit>,
}

/// What the trainer fits per series: seasonality on or off, and how rare a surprise must be.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SeriesFit {
    pub buckets: usize,
    pub alarm_tail: f64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Arm {
    pub successes: u32,
    pub failures: u32,
}

impl Arm {
    /// Posterior mean with a uniform prior: (s + 1) / (n + 2).
    pub fn p(&self) -> f64 {
        (f64::from(self.successes) + 1.0) / (f64::from(self.successes) + f64::from(self.failures) + 2.0)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub detector: DetectorMetrics,
    pub remediation: RemediationMetrics,
    /// The champion evaluated on the same held-back data, when there was one.
    #[serde(default)]
    pub champion: Option<ChampionMetrics>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DetectorMetrics {
    /// Series with enough held-back data to judge.
    pub series_evaluated: usize,
    pub holdout_days: f64,
    /// Alarms per series-day on the held-back data as it was (false-alarm pressure).
    pub alarms_per_day: f64,
    /// Level shifts injected into the held-back data, and how many were caught in time.
    pub injected: usize,
    pub detected: usize,
    /// detected / injected − excess alarms over the budget; higher is better.
    pub score: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RemediationMetrics {
    pub holdout_outcomes: usize,
    /// Mean squared error of the predicted success probability on held-back outcomes.
    pub brier: Option<f64>,
    /// The same for the uninformed 0.5 guess.
    pub baseline_brier: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChampionMetrics {
    pub model_id: String,
    pub detector: DetectorMetrics,
    pub remediation: RemediationMetrics,
}

impl ModelArtifact {
    /// Detector parameters for one series.
    pub fn params_for(&self, series_id: &str) -> Params {
        let mut p = self.detector.base.clone();
        if let Some(fit) = self.detector.series.get(series_id) {
            p.buckets = fit.buckets;
            p.alarm_tail = fit.alarm_tail;
        }
        p
    }

    /// Probability that `wpk` fixes `signal`, when the model has seen that pair.
    pub fn success_probability(&self, signal: &str, wpk: &str) -> Option<f64> {
        self.remediation.get(signal)?.get(wpk).map(Arm::p)
    }
}

/// The signed statement about one version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub model_id: String,
    pub tenant: String,
    pub created_at: String,
    pub code_version: String,
    pub data_digest: String,
    pub sha256: String,
}

/// Deterministic version id: same tenant, code and data → same id.
pub fn model_id(tenant: &str, code_version: &str, data_digest: &str) -> String {
    let h = sha256_hex(format!("{tenant}\n{code_version}\n{data_digest}").as_bytes());
    format!("m-{}", &h[..20])
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModelError {
    #[error("model signature: {0}")]
    Signature(#[from] SignatureError),
    #[error("model {0}: the document does not match the signed sha256")]
    Digest(String),
    #[error("model {0}: {1}")]
    Malformed(String, String),
    #[error("model registry: {0}")]
    Store(String),
}

/// One registered version as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredModel {
    pub model_id: String,
    pub tenant: String,
    pub created_at: String,
    pub doc: String,
    pub manifest: String,
    pub sha256: String,
    pub signature: String,
    pub key_id: String,
}

impl StoredModel {
    /// Sign an artifact: canonical document, manifest, KMS signature over the manifest.
    pub async fn sign(artifact: &ModelArtifact, signer: &KmsSigner) -> Result<Self, ModelError> {
        let (doc, manifest, manifest_bytes) = Self::prepare(artifact)?;
        let signature = signer.sign(&manifest_bytes).await?;
        Ok(Self::assemble(doc, manifest, &manifest_bytes, signature))
    }

    /// The document, its manifest, and the manifest's canonical bytes (what is signed).
    pub fn prepare(artifact: &ModelArtifact) -> Result<(String, Manifest, Vec<u8>), ModelError> {
        let malformed = |e: String| ModelError::Malformed(artifact.model_id.clone(), e);
        let value = serde_json::to_value(artifact).map_err(|e| malformed(e.to_string()))?;
        let doc = String::from_utf8(canonical_json(&value)).map_err(|e| malformed(e.to_string()))?;
        let manifest = Manifest {
            model_id: artifact.model_id.clone(),
            tenant: artifact.tenant.clone(),
            created_at: artifact.created_at.clone(),
            code_version: artifact.code_version.clone(),
            data_digest: artifact.data_digest.clone(),
            sha256: sha256_hex(doc.as_bytes()),
        };
        let manifest_value = serde_json::to_value(&manifest).map_err(|e| malformed(e.to_string()))?;
        let manifest_bytes = canonical_json(&manifest_value);
        Ok((doc, manifest, manifest_bytes))
    }

    pub fn assemble(doc: String, manifest: Manifest, manifest_bytes: &[u8], signature: Signature) -> Self {
        Self {
            model_id: manifest.model_id,
            tenant: manifest.tenant,
            created_at: manifest.created_at,
            sha256: manifest.sha256,
            doc,
            manifest: String::from_utf8_lossy(manifest_bytes).into_owned(),
            signature: signature.to_base64(),
            key_id: signature.key_id,
        }
    }

    /// Check the signature, then the document against the signed digest, then that the
    /// document is the version it claims to be. Only then is it parsed for use.
    pub fn verify(&self, keys: &TrustedKeys) -> Result<ModelArtifact, ModelError> {
        let signature = Signature::from_base64(&self.signature, &self.key_id)?;
        keys.verify(self.manifest.as_bytes(), &signature)?;
        let manifest: Manifest = serde_json::from_str(&self.manifest)
            .map_err(|e| ModelError::Malformed(self.model_id.clone(), format!("manifest: {e}")))?;
        if sha256_hex(self.doc.as_bytes()) != manifest.sha256 {
            return Err(ModelError::Digest(self.model_id.clone()));
        }
        let artifact: ModelArtifact = serde_json::from_str(&self.doc)
            .map_err(|e| ModelError::Malformed(self.model_id.clone(), format!("document: {e}")))?;
        if artifact.model_id != manifest.model_id
            || artifact.tenant != manifest.tenant
            || manifest.model_id != self.model_id
            || manifest.tenant != self.tenant
        {
            return Err(ModelError::Malformed(
                self.model_id.clone(),
                "id or tenant differs from the signed one".into(),
            ));
        }
        if artifact.schema != SCHEMA {
            return Err(ModelError::Malformed(
                self.model_id.clone(),
                format!("schema {} unsupported", artifact.schema),
            ));
        }
        Ok(artifact)
    }
}

/// The `champion` alias: the version in use and the champions before it (oldest first).
#[derive(Debug, Clone, PartialEq)]
pub struct Alias {
    pub model_id: String,
    pub history: Vec<String>,
    pub version: u64,
    pub updated_at: String,
}

/// The newest champion that verified (if any), and the newer ones refused on the way.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    pub artifact: Option<Arc<ModelArtifact>>,
    pub refused: Vec<(String, String)>,
}

/// `model_versions` in DynamoDB.
#[derive(Debug, Clone)]
pub struct ModelRegistry {
    db: aws_sdk_dynamodb::Client,
    table: String,
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn get_s(item: &Item, name: &str) -> Option<String> {
    item.get(name)?.as_s().ok().cloned()
}

fn version_key(model_id: &str) -> String {
    format!("v#{model_id}")
}

fn alias_key(alias: &str) -> String {
    format!("alias#{alias}")
}

impl ModelRegistry {
    pub fn new(db: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self { db, table: table.into() }
    }

    fn decode(item: &Item) -> Option<StoredModel> {
        Some(StoredModel {
            model_id: get_s(item, "model_id")?,
            tenant: get_s(item, "pk")?,
            created_at: get_s(item, "created_at")?,
            doc: get_s(item, "doc")?,
            manifest: get_s(item, "manifest")?,
            sha256: get_s(item, "sha256")?,
            signature: get_s(item, "signature")?,
            key_id: get_s(item, "key_id")?,
        })
    }

    /// Register a version. `Ok(false)`: that id already exists (nothing was written).
    pub async fn put(&self, m: &StoredModel) -> Result<bool, ModelError> {
        let result = self
            .db
            .put_item()
            .table_name(&self.table)
            .item("pk", s(&m.tenant))
            .item("sk", s(version_key(&m.model_id)))
            .item("model_id", s(&m.model_id))
            .item("created_at", s(&m.created_at))
            .item("doc", s(&m.doc))
            .item("manifest", s(&m.manifest))
            .item("sha256", s(&m.sha256))
            .item("signature", s(&m.signature))
            .item("key_id", s(&m.key_id))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|x| x.is_conditional_check_failed_exception()) => Ok(false),
            Err(e) => Err(ModelError::Store(describe_error(&e))),
        }
    }

    pub async fn get(&self, tenant: &str, model_id: &str) -> Result<Option<StoredModel>, ModelError> {
        let out = self
            .db
            .get_item()
            .table_name(&self.table)
            .key("pk", s(tenant))
            .key("sk", s(version_key(model_id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| ModelError::Store(describe_error(&e)))?;
        Ok(out.item().and_then(Self::decode))
    }

    /// Every version of a tenant, newest first.
    pub async fn list(&self, tenant: &str) -> Result<Vec<StoredModel>, ModelError> {
        let items = self
            .db
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :v)")
            .expression_attribute_values(":pk", s(tenant))
            .expression_attribute_values(":v", s("v#"))
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| ModelError::Store(describe_error(&e)))?;
        let mut out: Vec<StoredModel> = items.iter().filter_map(Self::decode).collect();
        out.sort_by(|a, b| b.created_at.cmp(&a.created_at).then_with(|| b.model_id.cmp(&a.model_id)));
        Ok(out)
    }

    pub async fn alias(&self, tenant: &str, alias: &str) -> Result<Option<Alias>, ModelError> {
        let out = self
            .db
            .get_item()
            .table_name(&self.table)
            .key("pk", s(tenant))
            .key("sk", s(alias_key(alias)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| ModelError::Store(describe_error(&e)))?;
        Ok(out.item().and_then(|item| {
            Some(Alias {
                model_id: get_s(item, "model_id")?,
                history: item
                    .get("history")
                    .and_then(|h| h.as_l().ok())
                    .map(|l| l.iter().filter_map(|v| v.as_s().ok().cloned()).collect())
                    .unwrap_or_default(),
                version: item.get("version")?.as_n().ok()?.parse().ok()?,
                updated_at: get_s(item, "updated_at").unwrap_or_default(),
            })
        }))
    }

    /// Point `alias` at `model_id`, if nobody moved it since `seen` was read. `Ok(false)`: it moved.
    pub async fn move_alias(
        &self,
        tenant: &str,
        alias: &str,
        model_id: &str,
        seen: Option<&Alias>,
        now: &str,
    ) -> Result<bool, ModelError> {
        let mut history: Vec<String> = seen.map(|a| a.history.clone()).unwrap_or_default();
        if let Some(a) = seen {
            history.retain(|h| h != &a.model_id);
            history.push(a.model_id.clone());
        }
        history.retain(|h| h != model_id);
        if history.len() > HISTORY_LIMIT {
            history.drain(..history.len() - HISTORY_LIMIT);
        }
        let version = seen.map_or(0, |a| a.version);
        let mut put = self
            .db
            .put_item()
            .table_name(&self.table)
            .item("pk", s(tenant))
            .item("sk", s(alias_key(alias)))
            .item("model_id", s(model_id))
            .item("history", AttributeValue::L(history.into_iter().map(AttributeValue::S).collect()))
            .item("version", AttributeValue::N((version + 1).to_string()))
            .item("updated_at", s(now));
        put = if seen.is_some() {
            put.condition_expression("version = :v")
                .expression_attribute_values(":v", AttributeValue::N(version.to_string()))
        } else {
            put.condition_expression("attribute_not_exists(pk)")
        };
        match put.send().await {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|x| x.is_conditional_check_failed_exception()) => Ok(false),
            Err(e) => Err(ModelError::Store(describe_error(&e))),
        }
    }

    /// The newest champion that verifies. A refused version is logged and skipped: the one
    /// before it stays in use. No artifact: no champion (or none verifies) — use the defaults.
    pub async fn load_champion(&self, tenant: &str, keys: &TrustedKeys) -> Result<Loaded, ModelError> {
        let Some(alias) = self.alias(tenant, CHAMPION).await? else { return Ok(Loaded::default()) };
        let mut refused = Vec::new();
        let chain = std::iter::once(alias.model_id.clone()).chain(alias.history.iter().rev().cloned());
        for id in chain {
            let verdict = match self.get(tenant, &id).await? {
                Some(stored) => stored.verify(keys),
                None => Err(ModelError::Malformed(id.clone(), "version missing from the registry".into())),
            };
            match verdict {
                Ok(artifact) => return Ok(Loaded { artifact: Some(Arc::new(artifact)), refused }),
                Err(e) => {
                    tracing::error!(tenant, model_id = %id, error = %e, "model refused; falling back to the previous champion");
                    refused.push((id, e.to_string()));
                }
            }
        }
        Ok(Loaded { artifact: None, refused })
    }
}

type Cached = (Instant, Option<Arc<ModelArtifact>>);

/// Verified champions per tenant, reloaded after `ttl` (warm Lambdas pick up a promotion
/// within a minute; a tenant without a model is asked again after `ttl / 4`, so its first model
/// is used soon). A failed reload keeps the model already in use.
#[derive(Debug)]
pub struct ChampionCache {
    registry: ModelRegistry,
    keys: TrustedKeys,
    ttl: Duration,
    cache: Mutex<HashMap<String, Cached>>,
}

pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(60);

impl ChampionCache {
    pub fn new(registry: ModelRegistry, keys: TrustedKeys, ttl: Duration) -> Self {
        Self { registry, keys, ttl, cache: Mutex::new(HashMap::new()) }
    }

    pub async fn get(&self, tenant: &str) -> Option<Arc<ModelArtifact>> {
        let cached = self.cache.lock().ok().and_then(|c| c.get(tenant).cloned());
        if let Some((at, model)) = &cached {
            let ttl = if model.is_some() { self.ttl } else { self.ttl / 4 };
            if at.elapsed() < ttl {
                return model.clone();
            }
        }
        let model = match self.registry.load_champion(tenant, &self.keys).await {
            Ok(loaded) => loaded.artifact,
            Err(e) => {
                tracing::warn!(tenant, error = %e, "loading the champion failed; keeping the model in use");
                cached.and_then(|(_, m)| m)
            }
        };
        if let Ok(mut c) = self.cache.lock() {
            c.insert(tenant.to_owned(), (Instant::now(), model.clone()));
        }
        model
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_deterministic_and_separate_inputs() {
        let a = model_id("acme", "cll-1", "d1");
        assert_eq!(a, model_id("acme", "cll-1", "d1"));
        assert_ne!(a, model_id("acme", "cll-1", "d2"));
        assert_ne!(a, model_id("beta", "cll-1", "d1"));
        assert_ne!(a, model_id("acme", "cll-2", "d1"));
        assert!(a.starts_with("m-") && a.len() == 22);
    }

    pub(crate) fn artifact(tenant: &str) -> ModelArtifact {
        ModelArtifact {
            schema: SCHEMA,
            model_id: model_id(tenant, "test", "digest"),
            tenant: tenant.into(),
            created_at: "2026-11-25T00:00:00Z".into(),
            code_version: "test".into(),
            data_digest: "digest".into(),
            window: TrainingWindow {
                from_minute: 0,
                to_minute: 100,
                holdout_from_minute: 80,
                series: 1,
                rows: 100,
                outcomes: 2,
            },
            detector: DetectorModel {
                base: Params::default(),
                series: BTreeMap::from([("s1".to_owned(), SeriesFit { buckets: 0, alarm_tail: 1e-4 })]),
            },
            remediation: BTreeMap::from([(
                "latency".to_owned(),
                BTreeMap::from([("shed".to_owned(), Arm { successes: 2, failures: 0 })]),
            )]),
            metrics: Metrics::default(),
        }
    }

    fn signed(a: &ModelArtifact) -> (StoredModel, TrustedKeys) {
        use aws_lc_rs::encoding::AsDer;
        use aws_lc_rs::rand::SystemRandom;
        use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref()).unwrap();
        let (doc, manifest, bytes) = StoredModel::prepare(a).unwrap();
        let der = key.sign(&rng, &bytes).unwrap().as_ref().to_vec();
        let stored = StoredModel::assemble(doc, manifest, &bytes, Signature { der, key_id: "k1".into() });
        let spki = key.public_key().as_der().unwrap().as_ref().to_vec();
        let keys = TrustedKeys::from_public_keys([("k1".to_owned(), spki)]);
        (stored, keys)
    }

    #[test]
    fn a_signed_model_verifies_and_any_change_is_refused() {
        let a = artifact("acme");
        let (stored, keys) = signed(&a);
        assert_eq!(stored.verify(&keys).unwrap(), a);
        assert_eq!(a.params_for("s1").buckets, 0);
        assert_eq!(a.params_for("other"), Params::default());
        assert_eq!(a.success_probability("latency", "shed"), Some(0.75));

        let mut doc = stored.clone();
        doc.doc = doc.doc.replace("\"successes\":2", "\"successes\":9");
        assert_ne!(doc.doc, stored.doc);
        assert_eq!(doc.verify(&keys), Err(ModelError::Digest(a.model_id.clone())));

        let mut manifest = stored.clone();
        manifest.manifest = manifest.manifest.replace("acme", "beta");
        assert!(matches!(manifest.verify(&keys), Err(ModelError::Signature(SignatureError::Mismatch))));

        let mut other_key = stored.clone();
        other_key.key_id = "k2".into();
        assert!(matches!(other_key.verify(&keys), Err(ModelError::Signature(SignatureError::UntrustedKey(_)))));

        // A correctly signed version filed under another id or tenant is not that version.
        let mut moved = stored.clone();
        moved.tenant = "beta".into();
        assert!(matches!(moved.verify(&keys), Err(ModelError::Malformed(..))));
    }

    #[test]
    fn arms_use_a_uniform_prior() {
        assert!((Arm::default().p() - 0.5).abs() < 1e-12);
        assert!((Arm { successes: 3, failures: 1 }.p() - 4.0 / 6.0).abs() < 1e-12);
    }
}
