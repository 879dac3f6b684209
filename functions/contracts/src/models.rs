//! Model versions (D.3): what the trainer registers and every user of a model loads and verifies.
//!
//! | item | table `naksha.model_versions` | key |
//! |---|---|---|
//! | [`StoredModel`] (a version, immutable) | written once by the trainer, with a condition | `pk` = tenant, `sk` = [`version_sk`] = `v#<model id>` |
//! | [`Alias`] (`champion`) | moved by the trainer, conditionally on its `version` | `pk` = tenant, `sk` = [`alias_sk`] = `alias#<name>` |
//!
//! - A version's `doc` is the canonical JSON of [`ModelArtifact`]. The signature (P-2) covers a
//!   small [`Manifest`] (id, tenant, created_at, code version, data digest and the SHA-256 of
//!   `doc`), so KMS signs it whole and `openssl dgst -sha256 -verify` checks it; the manifest's
//!   `sha256` then pins the document.
//! - [`StoredModel::verify`] checks signature → digest → id and tenant, and only then parses the
//!   document: the only way to a [`Verified`] model.
//! - `model_id` is derived from tenant, code version and data digest: training twice on the same
//!   input gives the same id.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::identity::TenantId;
use crate::signing::{Purpose, Signature, SignatureError, TrustedKeys, Verified, VerifyError, canonical, sha256_hex};

pub const SCHEMA: u32 = 1;
pub const CHAMPION: &str = "champion";

/// The streaming detector's tunable parameters: the defaults, and what the trainer fits per series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DetectorParams {
    /// Trailing values for the robust median and noise (the state holds them: 4 bytes each).
    pub window: usize,
    /// Values averaged for the level-shift score.
    pub short: usize,
    /// Span (in values) of the running mean and variance of averaged surprises: what is
    /// ordinary for this series.
    pub history: usize,
    /// Span (in values) of the running average of surprises judged against that history, when
    /// `averaging_minutes` is 0.
    pub averaging: usize,
    /// Span in minutes of the running average of surprises (0: `averaging` values instead). In
    /// time, like the refractory period: 120 minutes is 120 values of a minute series, 24 of a
    /// 5-minute one and two of an hourly one. Absent from a stored model made
    /// before it existed: 0, so that model keeps the behaviour it was trained and judged with.
    #[serde(default)]
    pub averaging_minutes: f64,
    /// Tail probability at which the score reaches 0.5.
    pub alarm_tail: f64,
    /// Minutes after an alarm during which no new alarm is raised (time, not values, so the
    /// same setting means the same whatever the series' sampling interval).
    pub refractory_minutes: f64,
    /// Values seen before any alarm is possible.
    pub warmup: usize,
    /// Time-of-day buckets for the seasonal profile (0 disables it).
    pub buckets: usize,
    /// Weight of a new value in its bucket's running level and spread (at least).
    pub seasonal_rate: f64,
    /// Days a time-of-day bucket's running level and spread remember at most, whatever the
    /// sampling interval (they also remember at most `1 / seasonal_rate` values; 0: values
    /// only). Absent from a stored model made before it existed: 0, so that model keeps the
    /// behaviour it was trained and judged with.
    #[serde(default)]
    pub seasonal_memory_days: f64,
    /// Days of data before the seasonal profile may explain a value.
    pub seasonal_days: f64,
    /// Days of data before any alarm: a new series is learned before it is judged.
    pub learning_days: f64,
    /// A surprise at least this large, `extreme_run` values in a row, alarms on its own (0
    /// disables).
    pub extreme: f64,
    /// Values in a row with an `extreme` surprise before it alarms on its own. Absent from a
    /// stored model made before it existed: 1 (a single one), as that model was judged.
    #[serde(default = "one")]
    pub extreme_run: u32,
    /// Minutes over which one alarm's extra strictness (×10) wears off (0 disables).
    pub relax_minutes: f64,
    /// The noise unit never falls below this many of the series' own smallest steps.
    pub resolution: f64,
    /// A value beyond the range of every value seen so far by this fraction of the range alarms
    /// on its own, once learned (0 disables): HTM's spatial anomaly, at its published 5%.
    /// Absent from a stored model made before it existed: 0 (off), as that model was judged.
    #[serde(default)]
    pub spatial_tolerance: f64,
    /// When the time-of-day profile predicts a series this many times better than its trailing
    /// median (mean absolute error over the values both judged), the profile alone judges it: a
    /// daily peak that does not come is an anomaly. 0 disables. Absent from a stored model made
    /// before it existed: 0 (off), as that model was judged.
    #[serde(default)]
    pub season_trust: f64,
    /// A likelihood alarm also needs two of the last three values, this one among them, at least
    /// this many noise units from what the models expect (in the spirit of the Western Electric
    /// rule "two of three beyond 2σ"): a ripple of the averaged surprise on a calm series, or one
    /// lone value, is not an incident. 0 disables. Absent from a stored model made before it
    /// existed: 0 (off), as that model was judged.
    #[serde(default)]
    pub confirm_surprise: f64,
    /// The series' level is its mean over this many minutes of time (exponentially weighted);
    /// a level beyond the range of every level seen so far, by `spatial_tolerance` of that range
    /// and by 1.5 standard deviations of the level's own noise, alarms on its own, once learned:
    /// the out-of-range rule for a sustained level, which a value's range (spikes included)
    /// hides. 0 disables. Absent from a stored model made before it existed: 0 (off), as that
    /// model was judged.
    #[serde(default)]
    pub level_minutes: f64,
    /// A run of one unchanged value longer than every run seen so far, by `spatial_tolerance`
    /// of the longest and by `level_minutes`, alarms once (a metric that stopped changing),
    /// once the runs have been on record for a week. Needs the level rule and the range rule on.
    /// Absent from a stored model made before it existed: false (off), as that model was judged.
    #[serde(default)]
    pub flat_runs: bool,
}

fn one() -> u32 {
    1
}

impl DetectorParams {
    /// Minutes of evidence behind a score: the averaging span, in minutes.
    pub fn averaging_span_minutes(&self) -> i64 {
        if self.averaging_minutes > 0.0 { self.averaging_minutes.round() as i64 } else { self.averaging as i64 }
    }
}

impl Default for DetectorParams {
    /// `window` for the cost budget (≤ 4 KB of state), the rest by design; `alarm_tail`,
    /// `averaging_minutes`, `relax_minutes`, `resolution`, `season_trust`,
    /// `seasonal_memory_days` and `level_minutes` chosen on the NAB development split
    /// by `make nab-loco` (tools/nab/loco-grid.json), each fold of which is in docs/detection.md.
    fn default() -> Self {
        Self {
            window: 128,
            short: 2,
            history: 600,
            averaging: 6,
            averaging_minutes: 120.0,
            alarm_tail: 3e-2,
            refractory_minutes: 750.0,
            warmup: 100,
            buckets: 96,
            seasonal_rate: 0.05,
            seasonal_memory_days: 7.0,
            seasonal_days: 2.0,
            learning_days: 2.0,
            extreme: 0.98,
            extreme_run: 2,
            relax_minutes: 30_000.0,
            resolution: 0.5,
            spatial_tolerance: 0.05,
            season_trust: 2.0,
            confirm_surprise: 1.75,
            level_minutes: 60.0,
            flat_runs: true,
        }
    }
}

/// A trained model: detector parameters per series and the remediation model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelArtifact {
    pub schema: u32,
    pub model_id: String,
    pub tenant: TenantId,
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
    pub base: DetectorParams,
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
    pub fn params_for(&self, series_id: &str) -> DetectorParams {
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

/// The signed statement about one version. It names its tenant and its purpose
/// ([`Purpose::Model`]), so the signature moves neither to another tenant nor to another kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`Purpose::Model`]'s name; checked before the manifest is believed.
    #[serde(default)]
    pub purpose: String,
    pub model_id: String,
    pub tenant: TenantId,
    pub created_at: String,
    pub code_version: String,
    pub data_digest: String,
    pub sha256: String,
}

/// Deterministic version id: same tenant, code and data → same id.
pub fn model_id(tenant: &TenantId, code_version: &str, data_digest: &str) -> String {
    let h = sha256_hex(format!("{tenant}\n{code_version}\n{data_digest}").as_bytes());
    format!("m-{}", &h[..20])
}

/// Whether `id` has the shape [`model_id`] gives.
pub fn is_model_id(id: &str) -> bool {
    id.len() == 22 && id.starts_with("m-") && id[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// The sort key of a version.
pub fn version_sk(model_id: &str) -> String {
    format!("v#{model_id}")
}

/// Sort-key prefix shared by every version.
pub const VERSION_PREFIX: &str = "v#";

/// The sort key of an alias.
pub fn alias_sk(alias: &str) -> String {
    format!("alias#{alias}")
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModelError {
    #[error("model signature: {0}")]
    Signature(#[from] SignatureError),
    #[error("model {0}: the document does not match the signed sha256")]
    Digest(String),
    #[error("model {0}: {1}")]
    Malformed(String, String),
}

/// One registered version as stored; the field names are the item's attribute names (plus `sk`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredModel {
    pub model_id: String,
    #[serde(rename = "pk")]
    pub tenant: TenantId,
    pub created_at: String,
    pub doc: String,
    pub manifest: String,
    pub sha256: String,
    pub signature: String,
    pub key_id: String,
}

impl StoredModel {
    /// The canonical document, its manifest, and the manifest's canonical bytes (what is signed).
    pub fn prepare(artifact: &ModelArtifact) -> Result<(String, Manifest, Vec<u8>), ModelError> {
        let doc = String::from_utf8(canonical(artifact))
            .map_err(|e| ModelError::Malformed(artifact.model_id.clone(), e.to_string()))?;
        let manifest = Manifest {
            purpose: Purpose::Model.as_str().to_owned(),
            model_id: artifact.model_id.clone(),
            tenant: artifact.tenant.clone(),
            created_at: artifact.created_at.clone(),
            code_version: artifact.code_version.clone(),
            data_digest: artifact.data_digest.clone(),
            sha256: sha256_hex(doc.as_bytes()),
        };
        let manifest_bytes = canonical(&manifest);
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

    /// Check the signature, then the document against the signed digest, then that the document
    /// is the version it claims to be. Only then is it parsed for use.
    pub fn verify(&self, keys: &TrustedKeys) -> Result<Verified<ModelArtifact>, ModelError> {
        let signature = Signature::from_base64(&self.signature, &self.key_id)?;
        let malformed = |why: String| ModelError::Malformed(self.model_id.clone(), why);
        Verified::verify(self.manifest.as_bytes(), &signature, keys, |bytes| {
            let manifest: Manifest = serde_json::from_slice(bytes).map_err(|e| malformed(format!("manifest: {e}")))?;
            if manifest.purpose != Purpose::Model.as_str() {
                return Err(malformed(format!("the signature is for {:?}, not a model", manifest.purpose)));
            }
            if sha256_hex(self.doc.as_bytes()) != manifest.sha256 {
                return Err(ModelError::Digest(self.model_id.clone()));
            }
            let artifact: ModelArtifact =
                serde_json::from_str(&self.doc).map_err(|e| malformed(format!("document: {e}")))?;
            if artifact.model_id != manifest.model_id
                || artifact.tenant != manifest.tenant
                || manifest.model_id != self.model_id
                || manifest.tenant != self.tenant
            {
                return Err(malformed("id or tenant differs from the signed one".into()));
            }
            if artifact.schema != SCHEMA {
                return Err(malformed(format!("schema {} unsupported", artifact.schema)));
            }
            Ok(artifact)
        })
        .map_err(|e| match e {
            VerifyError::Signature(s) => ModelError::Signature(s),
            VerifyError::Content(c) => c,
        })
    }
}

/// An alias (`champion`): the version in use and the ones before it (oldest first), and a
/// version number that every move is conditional on. Field names are attribute names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alias {
    pub model_id: String,
    #[serde(default)]
    pub history: Vec<String>,
    pub version: u64,
    #[serde(default)]
    pub updated_at: String,
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::signing::tests::test_key;

    #[test]
    fn detector_settings_stored_before_a_setting_existed_keep_the_behaviour_they_were_made_with() {
        let mut stored = serde_json::to_value(DetectorParams::default()).unwrap();
        let fields = stored.as_object_mut().unwrap();
        fields.remove("averaging_minutes");
        fields.remove("spatial_tolerance");
        fields.remove("extreme_run");
        fields.remove("confirm_surprise");
        fields.remove("level_minutes");
        fields.remove("flat_runs");
        let old: DetectorParams = serde_json::from_value(stored).unwrap();
        assert_eq!((old.averaging_minutes, old.spatial_tolerance), (0.0, 0.0), "averaged in values, no range rule");
        assert_eq!(old.extreme_run, 1, "one extreme surprise alarms");
        assert_eq!(old.confirm_surprise, 0.0, "the likelihood alone");
        assert_eq!(old.level_minutes, 0.0, "no level rule");
        assert!(!old.flat_runs, "no flat-run rule");
        assert_eq!(old.averaging_span_minutes(), old.averaging as i64);
        // What is stored now reads back as it was.
        let now = DetectorParams::default();
        let back: DetectorParams = serde_json::from_value(serde_json::to_value(&now).unwrap()).unwrap();
        assert_eq!(back, now);
        assert_eq!((now.averaging_minutes, now.spatial_tolerance, now.averaging_span_minutes()), (120.0, 0.05, 120));
        assert_eq!(now.extreme_run, 2);
        assert_eq!(now.confirm_surprise, 1.75);
        assert_eq!(now.level_minutes, 60.0);
        assert!(now.flat_runs);
    }

    #[test]
    fn ids_are_deterministic_and_separate_inputs() {
        let (acme, beta) = (TenantId::from_record("acme").unwrap(), TenantId::from_record("beta").unwrap());
        let a = model_id(&acme, "cll-1", "d1");
        assert_eq!(a, model_id(&acme, "cll-1", "d1"));
        assert_ne!(a, model_id(&acme, "cll-1", "d2"));
        assert_ne!(a, model_id(&beta, "cll-1", "d1"));
        assert_ne!(a, model_id(&acme, "cll-2", "d1"));
        assert!(is_model_id(&a));
        assert!(!is_model_id("m-0123456789abcdef012") && !is_model_id("x-0123456789abcdef0123"));
        assert_eq!((version_sk(&a).starts_with(VERSION_PREFIX), alias_sk(CHAMPION)), (true, "alias#champion".into()));
    }

    pub(crate) fn artifact(tenant: &str) -> ModelArtifact {
        let tenant = TenantId::from_record(tenant).unwrap();
        ModelArtifact {
            schema: SCHEMA,
            model_id: model_id(&tenant, "test", "digest"),
            tenant,
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
                base: DetectorParams::default(),
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
        let key = test_key("k1");
        let (doc, manifest, bytes) = StoredModel::prepare(a).unwrap();
        (StoredModel::assemble(doc, manifest, &bytes, key.sign(&bytes).unwrap()), key.trusted())
    }

    #[test]
    fn a_signed_model_verifies_and_any_change_is_refused() {
        let a = artifact("acme");
        let (stored, keys) = signed(&a);
        assert_eq!(*stored.verify(&keys).unwrap(), a);
        assert_eq!(a.params_for("s1").buckets, 0);
        assert_eq!(a.params_for("other"), DetectorParams::default());
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

        // A manifest signed by the right key for another purpose is not a model's.
        let key = test_key("k1");
        let (doc_text, mut m, _) = StoredModel::prepare(&a).unwrap();
        m.purpose = Purpose::Wpk.as_str().into();
        let bytes = canonical(&m);
        let wrong_purpose = StoredModel::assemble(doc_text, m, &bytes, key.sign(&bytes).unwrap());
        let refused = wrong_purpose.verify(&key.trusted());
        assert!(
            matches!(refused, Err(ModelError::Malformed(ref _id, ref why)) if why.contains("not a model")),
            "{refused:?}"
        );

        // A correctly signed version filed under another id or tenant is not that version.
        let mut moved = stored.clone();
        moved.tenant = TenantId::from_record("beta").unwrap();
        assert!(matches!(moved.verify(&keys), Err(ModelError::Malformed(..))));
    }

    #[test]
    fn stored_models_and_aliases_round_trip_with_their_attribute_names() {
        let (stored, _) = signed(&artifact("acme"));
        let json = serde_json::to_value(&stored).unwrap();
        assert_eq!(json["pk"], "acme");
        assert_eq!(serde_json::from_value::<StoredModel>(json).unwrap(), stored);
        let alias = Alias {
            model_id: stored.model_id.clone(),
            history: vec!["m-old".into()],
            version: 3,
            updated_at: "t".into(),
        };
        assert_eq!(serde_json::from_str::<Alias>(&serde_json::to_string(&alias).unwrap()).unwrap(), alias);
    }

    #[test]
    fn arms_use_a_uniform_prior() {
        assert!((Arm::default().p() - 0.5).abs() < 1e-12);
        assert!((Arm { successes: 3, failures: 1 }.p() - 4.0 / 6.0).abs() < 1e-12);
    }
}
