//! Edge federation (D.4): what the federation hub and an edge node say to each other, and every
//! check a node makes before it acts on a trigger.
//!
//! | record | signed by | purpose | travels |
//! |---|---|---|---|
//! | [`TriggerOrder`] | the hub's trigger key (KMS) | `naksha/edge-trigger/v1`, the tenant's | inside a [`Delivery`], `GET /federation/triggers` |
//! | [`EdgeResult`] | the node's own P-256 key | `naksha/edge-result/v1`, the tenant's | `POST /federation/triggers/{id}/result` |
//! | [`KeyAnnouncement`] | a trigger key the nodes already trust | `naksha/edge-key/v1`, the fleet's | `GET /federation/keys` |
//!
//! A node pins the hub's trigger keys it was given when it first registered (or the ones in its
//! configuration) in [`HubKeys`], and trusts a new one only through an announcement signed by a key
//! it already trusts: rotation needs no trust in the network. [`check_delivery`] is the whole list
//! of refusals; the node records the nonce and sequence number of what it accepts.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::identity::TenantId;
use crate::signing::{
    Purpose, SealError, Sealed, SignatureError, TrustedKeys, Verified, fleet_sealed_bytes, public_key_pem, sha256_hex,
};
use crate::wpk::{SignedWpk, StoredWpk, WpkIntegrityError, glob_match};

/// Largest `params` of a trigger, as canonical JSON.
pub const MAX_PARAMS_BYTES: usize = 4096;

/// How far a hub's clock may run ahead of a node's before an order counts as issued in the future.
pub const CLOCK_SKEW_SECONDS: i64 = 300;

/// A node id: the `sub` of the node's token. 1 to 64 of `a-z 0-9 - _ .`, starting with a letter or
/// digit, so it can sit inside keys and paths as it is.
pub fn is_node_id(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.'))
        && s.as_bytes()[0].is_ascii_alphanumeric()
}

/// The WPK version a trigger runs, pinned by the sha256 of its signed bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WpkRef {
    pub id: String,
    pub version: u32,
    pub sha256: String,
}

/// What the hub signs for one node: this trigger, for this node, once, until `expires_at`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerOrder {
    pub node_id: String,
    pub trigger_id: String,
    pub wpk: WpkRef,
    /// `resource` (the resource the WPK's steps act on by default), and anything else the operator
    /// attached (recorded, never an argument of a step: the WPK's signed steps are what runs).
    pub params: Map<String, Value>,
    /// The key that signs it (the hub's trigger key).
    pub kid: String,
    /// Unique per order: a node refuses a nonce it has seen.
    pub nonce: String,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// Per node, only grows: a node refuses one not above the last it accepted.
    pub seq: u64,
}

impl TriggerOrder {
    /// The resource the steps act on by default.
    pub fn resource(&self) -> Option<&str> {
        self.params.get("resource").and_then(Value::as_str)
    }
}

/// A WPK version as the registry stores it: its signed bytes and signature (the standing
/// approval, if any, is the agent's business and never travels to an edge node).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WpkForm {
    pub id: String,
    pub version: u32,
    pub doc: String,
    pub sha256: String,
    pub signature: String,
    pub key_id: String,
}

impl WpkForm {
    pub fn of(w: &StoredWpk) -> Self {
        Self {
            id: w.id.clone(),
            version: w.version,
            doc: w.doc.clone(),
            sha256: w.sha256.clone(),
            signature: w.signature.clone(),
            key_id: w.key_id.clone(),
        }
    }

    /// Check bytes and signature for `tenant` (as the agent does before it acts).
    pub fn verify(&self, keys: &TrustedKeys, tenant: &TenantId) -> Result<SignedWpk, WpkIntegrityError> {
        StoredWpk {
            id: self.id.clone(),
            version: self.version,
            doc: self.doc.clone(),
            sha256: self.sha256.clone(),
            signature: self.signature.clone(),
            key_id: self.key_id.clone(),
            created_at: String::new(),
            created_by: String::new(),
            standing_approval: None,
            signals: Vec::new(),
            resources: Vec::new(),
        }
        .verify(keys, tenant)
    }
}

/// One piece of work as a node receives it. `trigger_id` and `seq` outside the order are the
/// hub's index and are checked against the signed ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Delivery {
    pub trigger_id: String,
    pub seq: u64,
    pub order: Sealed,
    pub wpk: WpkForm,
}

/// A trigger key as a node pins it: its public key and when it may sign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HubKey {
    pub kid: String,
    pub public_key_pem: String,
    #[serde(default)]
    pub not_before: Option<DateTime<Utc>>,
    #[serde(default)]
    pub not_after: Option<DateTime<Utc>>,
}

impl HubKey {
    fn window(&self, now: DateTime<Utc>) -> KeyWindow {
        if self.not_before.is_some_and(|t| now < t) {
            KeyWindow::NotYet
        } else if self.not_after.is_some_and(|t| now > t) {
            KeyWindow::Expired
        } else {
            KeyWindow::Valid
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyWindow {
    NotYet,
    Valid,
    Expired,
}

/// A new trigger key, as the key that vouches for it signs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyAnnouncement {
    pub kid: String,
    pub public_key_pem: String,
    #[serde(default)]
    pub not_before: Option<DateTime<Utc>>,
    #[serde(default)]
    pub not_after: Option<DateTime<Utc>>,
}

impl KeyAnnouncement {
    /// The bytes the vouching key signs.
    pub fn signing_bytes(&self) -> Vec<u8> {
        fleet_sealed_bytes(Purpose::EdgeKey, self)
    }
}

/// The subject public key info (DER) of a PEM public key, accepted only when it is an
/// uncompressed P-256 key.
pub fn p256_spki_from_pem(pem: &str) -> Result<Vec<u8>, SignatureError> {
    use base64::Engine as _;
    const PREFIX: [u8; 27] = [
        0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48,
        0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00, 0x04,
    ];
    let body: String = pem.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with("-----")).collect();
    let framed = pem.contains("-----BEGIN PUBLIC KEY-----") && pem.contains("-----END PUBLIC KEY-----");
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .ok()
        .filter(|d| framed && d.len() == 91 && d.starts_with(&PREFIX))
        .ok_or_else(|| SignatureError::Keys("not a PEM P-256 public key (SubjectPublicKeyInfo)".into()))?;
    Ok(der)
}

/// A short, stable key id for a public key: `<prefix>-<first 16 hex of its sha256>`.
pub fn key_fingerprint(prefix: &str, spki_der: &[u8]) -> String {
    format!("{prefix}-{}", &sha256_hex(spki_der)[..16])
}

/// Why a node would not trust an announced key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("announced by {0}, a key this node does not trust")]
    UnknownSigner(String),
    #[error("announced by {0}, outside that key's validity window")]
    SignerNotValid(String),
    #[error("the announcement does not verify: {0}")]
    Invalid(String),
    #[error("{kid} is pinned with another public key")]
    Conflicting { kid: String },
}

/// The trigger keys a node trusts, pinned in its own store.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HubKeys {
    keys: BTreeMap<String, HubKey>,
}

impl HubKeys {
    /// Pin keys as given (at first registration, or from the node's configuration); each must be
    /// a P-256 public key.
    pub fn pin(keys: impl IntoIterator<Item = HubKey>) -> Result<Self, SignatureError> {
        let mut out = BTreeMap::new();
        for k in keys {
            p256_spki_from_pem(&k.public_key_pem)?;
            out.insert(k.kid.clone(), k);
        }
        Ok(Self { keys: out })
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }

    /// The keys valid at `now`, for verifying.
    fn valid_at(&self, now: DateTime<Utc>) -> TrustedKeys {
        TrustedKeys::from_public_keys(
            self.keys
                .values()
                .filter(|k| k.window(now) == KeyWindow::Valid)
                .filter_map(|k| p256_spki_from_pem(&k.public_key_pem).ok().map(|der| (k.kid.clone(), der))),
        )
    }

    /// Trust the key an announcement names, if a pinned key valid at `now` signed it. Pinning the
    /// same key again changes nothing; another public key under a pinned kid is refused.
    pub fn accept(&mut self, announcement: &Sealed, now: DateTime<Utc>) -> Result<bool, KeyError> {
        match self.keys.get(&announcement.key_id) {
            None => return Err(KeyError::UnknownSigner(announcement.key_id.clone())),
            Some(k) if k.window(now) != KeyWindow::Valid => {
                return Err(KeyError::SignerNotValid(announcement.key_id.clone()));
            }
            Some(_) => {}
        }
        let ann: Verified<KeyAnnouncement> = announcement
            .open_fleet(Purpose::EdgeKey, &self.valid_at(now))
            .map_err(|e| KeyError::Invalid(e.to_string()))?;
        let spki = p256_spki_from_pem(&ann.public_key_pem).map_err(|e| KeyError::Invalid(e.to_string()))?;
        if let Some(existing) = self.keys.get(&ann.kid) {
            let same = p256_spki_from_pem(&existing.public_key_pem).is_ok_and(|d| d == spki);
            return if same { Ok(false) } else { Err(KeyError::Conflicting { kid: ann.kid.clone() }) };
        }
        let ann = ann.into_inner();
        self.keys.insert(
            ann.kid.clone(),
            HubKey {
                kid: ann.kid,
                public_key_pem: public_key_pem(&spki),
                not_before: ann.not_before,
                not_after: ann.not_after,
            },
        );
        Ok(true)
    }
}

/// Why a node refused a delivery. Each is reported to the hub as a `rejected` result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("signed by {0}, a key this node does not trust")]
    UnknownKey(String),
    #[error("signed by {0}, outside that key's validity window")]
    KeyNotValid(String),
    #[error("the hub's signature does not verify: {0}")]
    BadSignature(String),
    #[error("signed for another tenant ({0})")]
    WrongTenant(String),
    #[error("addressed to node {0}, not this one")]
    WrongNode(String),
    #[error("expired at {0}")]
    Expired(String),
    #[error("replayed: {0}")]
    Replayed(String),
    #[error("the tenant is halted (kill switch)")]
    Halted,
    #[error("the WPK does not match the order: {0}")]
    WpkMismatch(String),
    #[error("the WPK's own signature fails: {0}")]
    WpkSignature(String),
    #[error("downgrade: WPK {id} v{version} is older than v{ran}, which this node already ran")]
    Downgrade { id: String, version: u32, ran: u32 },
    #[error("malformed: {0}")]
    Malformed(String),
}

impl Refusal {
    /// A stable name for logs and the hub's records.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::UnknownKey(_) => "unknown_key",
            Refusal::KeyNotValid(_) => "key_not_valid",
            Refusal::BadSignature(_) => "bad_signature",
            Refusal::WrongTenant(_) => "wrong_tenant",
            Refusal::WrongNode(_) => "wrong_node",
            Refusal::Expired(_) => "expired",
            Refusal::Replayed(_) => "replayed",
            Refusal::Halted => "halted",
            Refusal::WpkMismatch(_) => "wpk_mismatch",
            Refusal::WpkSignature(_) => "wpk_signature",
            Refusal::Downgrade { .. } => "downgrade",
            Refusal::Malformed(_) => "malformed",
        }
    }
}

/// What a node remembers, as far as checking a delivery goes.
pub trait NodeMemory {
    fn seen_nonce(&self, nonce: &str) -> bool;
    /// The highest version of `wpk_id` this node ran.
    fn highest_version(&self, wpk_id: &str) -> Option<u32>;
}

/// Who is checking, and what it trusts.
#[derive(Debug)]
pub struct NodeView<'a> {
    pub tenant: &'a TenantId,
    pub node_id: &'a str,
    pub hub_keys: &'a HubKeys,
    pub wpk_keys: &'a TrustedKeys,
    /// The highest `seq` accepted so far (0: none).
    pub last_seq: u64,
    pub halted: bool,
    pub now: DateTime<Utc>,
}

/// A delivery that passed every check: the order and the WPK, both verified.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub order: Verified<TriggerOrder>,
    pub wpk: SignedWpk,
}

/// Every check, in order, before anything acts: the hub's key and signature, tenant and node,
/// time, replay, the kill switch, the WPK's bytes and signature, downgrade, and the resource.
pub fn check_delivery(d: &Delivery, view: &NodeView<'_>, memory: &impl NodeMemory) -> Result<Accepted, Refusal> {
    let kid = &d.order.key_id;
    match view.hub_keys.keys.get(kid) {
        None => return Err(Refusal::UnknownKey(kid.clone())),
        Some(k) if k.window(view.now) != KeyWindow::Valid => return Err(Refusal::KeyNotValid(kid.clone())),
        Some(_) => {}
    }
    let order: Verified<TriggerOrder> =
        d.order.open(Purpose::EdgeTrigger, view.tenant, &view.hub_keys.valid_at(view.now)).map_err(|e| match e {
            SealError::WrongTenant { found } => Refusal::WrongTenant(found),
            SealError::Payload(p) => Refusal::Malformed(format!("the signed order does not parse: {p}")),
            other => Refusal::BadSignature(other.to_string()),
        })?;
    if order.kid != *kid {
        return Err(Refusal::Malformed(format!("the order names key {} but {kid} signed it", order.kid)));
    }
    if order.node_id != view.node_id {
        return Err(Refusal::WrongNode(order.node_id.clone()));
    }
    if order.expires_at <= view.now {
        return Err(Refusal::Expired(order.expires_at.to_rfc3339()));
    }
    if order.issued_at > view.now + chrono::Duration::seconds(CLOCK_SKEW_SECONDS) {
        return Err(Refusal::Malformed(format!("issued in the future ({})", order.issued_at.to_rfc3339())));
    }
    if memory.seen_nonce(&order.nonce) {
        return Err(Refusal::Replayed(format!("nonce {} was seen before", order.nonce)));
    }
    if order.seq <= view.last_seq {
        return Err(Refusal::Replayed(format!("seq {} is not above the last accepted ({})", order.seq, view.last_seq)));
    }
    if order.trigger_id != d.trigger_id || order.seq != d.seq {
        return Err(Refusal::Malformed(format!(
            "delivered as {} #{}, signed as {} #{}",
            d.trigger_id, d.seq, order.trigger_id, order.seq
        )));
    }
    if view.halted {
        return Err(Refusal::Halted);
    }
    let want = &order.wpk;
    if d.wpk.id != want.id || d.wpk.version != want.version {
        return Err(Refusal::WpkMismatch(format!(
            "delivered {} v{}, ordered {} v{}",
            d.wpk.id, d.wpk.version, want.id, want.version
        )));
    }
    if sha256_hex(d.wpk.doc.as_bytes()) != want.sha256 {
        return Err(Refusal::WpkMismatch("its bytes are not the ones the order pins (sha256)".into()));
    }
    let wpk = d.wpk.verify(view.wpk_keys, view.tenant).map_err(|e| Refusal::WpkSignature(e.to_string()))?;
    if let Some(ran) = memory.highest_version(&want.id).filter(|ran| *ran > want.version) {
        return Err(Refusal::Downgrade { id: want.id.clone(), version: want.version, ran });
    }
    let resource = order.resource().ok_or_else(|| Refusal::Malformed("params.resource is missing".into()))?;
    let globs = &wpk.wpk().matcher.resources;
    if !globs.is_empty() && !globs.iter().any(|g| glob_match(g, resource)) {
        return Err(Refusal::Malformed(format!("{resource} is not a resource this WPK may act on")));
    }
    Ok(Accepted { order, wpk })
}

/// How a trigger ended on a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResultStatus {
    Succeeded,
    Failed,
    Rejected,
}

impl ResultStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ResultStatus::Succeeded => "succeeded",
            ResultStatus::Failed => "failed",
            ResultStatus::Rejected => "rejected",
        }
    }
}

/// One step as a node carried it out, with digests of the resource before and after.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepOutcome {
    pub step: u32,
    pub adapter: String,
    pub action: String,
    pub target: String,
    /// sha256 of the canonical JSON of the resource before and after (`null`: it did not exist).
    pub before_sha256: String,
    pub after_sha256: String,
    /// Whether the act's receipt already existed (a restarted node finishing its work).
    pub reused: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What a node reports, signed with its own key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EdgeResult {
    pub trigger_id: String,
    pub node_id: String,
    pub seq: u64,
    pub status: ResultStatus,
    pub reason: String,
    /// For a rejection: [`Refusal::code`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wpk: Option<WpkRef>,
    #[serde(default)]
    pub steps: Vec<StepOutcome>,
    pub finished_at: DateTime<Utc>,
}

/// Digest of a resource's state as an adapter describes it.
pub fn state_sha256(state: &Value) -> String {
    sha256_hex(&crate::signing::canonical_json(state))
}

#[cfg(test)]
mod tests;
