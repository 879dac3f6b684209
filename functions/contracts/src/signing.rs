//! Canonical bytes and signature verification (P-2), without any AWS: what every verifier needs,
//! the edge node included. Signing itself happens in KMS (naksha-core's `KmsSigner`).
//!
//! - The signed bytes are a canonical JSON form: object keys sorted at every level, no whitespace
//!   (the RFC 8785 rules that matter for documents without exotic floats).
//! - Signatures are plain DER ECDSA P-256 over SHA-256 of the bytes, so `openssl dgst -sha256
//!   -verify pub.pem -signature sig.der doc.json` and `cosign verify-blob --key` accept them.
//! - Verifiers hold a *set* of trusted public keys (rotation adds a key before retiring the old
//!   one) and verify locally.
//! - What was read from a table is *stored* (not trusted); [`Verified`] is the only way to hold
//!   its value as trusted, and it can only be made by checking the signature first.
//! - Signed bytes name their tenant and their [`Purpose`] (a [`sealed_bytes`] envelope), and each
//!   purpose has its own key: no signature moves between tenants or kinds of object.

use std::collections::HashMap;
use std::fmt;
use std::ops::Deref;

use crate::identity::TenantId;
use aws_lc_rs::digest;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair, UnparsedPublicKey,
};
use base64::Engine as _;
use serde_json::Value;

/// Canonical bytes of a JSON value: keys sorted at every level, compact.
pub fn canonical_json(value: &Value) -> Vec<u8> {
    // serde_json's Map is a BTreeMap (the `preserve_order` feature is off), so keys serialise
    // sorted; `to_vec` writes no whitespace.
    serde_json::to_vec(value).unwrap_or_default()
}

/// Canonical bytes of anything serialisable.
pub fn canonical<T: serde::Serialize>(value: &T) -> Vec<u8> {
    canonical_json(&serde_json::to_value(value).unwrap_or(Value::Null))
}

pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    let d = digest::digest(&digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&sha256(bytes))
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    out
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("signing failed: {0}")]
    Sign(String),
    #[error("the signing key {0} is not trusted")]
    UntrustedKey(String),
    #[error("the signature does not match the signed bytes")]
    Mismatch,
    #[error("the signature is not valid base64")]
    Encoding,
    #[error("loading the trusted public keys failed: {0}")]
    Keys(String),
}

/// A detached signature: DER ECDSA bytes and the key (a KMS key ARN or id) that made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub der: Vec<u8>,
    pub key_id: String,
}

impl Signature {
    pub fn to_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(&self.der)
    }

    pub fn from_base64(b64: &str, key_id: &str) -> Result<Self, SignatureError> {
        let der = base64::engine::general_purpose::STANDARD.decode(b64).map_err(|_| SignatureError::Encoding)?;
        Ok(Self { der, key_id: key_id.to_owned() })
    }
}

/// Public keys of the trusted signing keys (SubjectPublicKeyInfo DER), by key id and ARN.
#[derive(Clone, Default)]
pub struct TrustedKeys {
    keys: HashMap<String, Vec<u8>>,
}

impl fmt::Debug for TrustedKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrustedKeys").field("keys", &self.keys.keys().collect::<Vec<_>>()).finish()
    }
}

impl TrustedKeys {
    /// Trust explicit public keys (SubjectPublicKeyInfo DER or an uncompressed point).
    pub fn from_public_keys(keys: impl IntoIterator<Item = (String, Vec<u8>)>) -> Self {
        Self { keys: keys.into_iter().collect() }
    }

    /// Trust one more key under `id` (and, for a KMS ARN, its short key id).
    pub fn insert(&mut self, id: &str, spki_der: Vec<u8>) {
        if let Some(short) = id.rsplit('/').next().filter(|s| *s != id) {
            self.keys.insert(short.to_owned(), spki_der.clone());
        }
        self.keys.insert(id.to_owned(), spki_der);
    }

    /// The public key of `key_id` as SubjectPublicKeyInfo DER.
    pub fn public_key(&self, key_id: &str) -> Option<&[u8]> {
        self.keys.get(key_id).map(Vec::as_slice)
    }

    /// Check `signature` over `message` before the message is used.
    pub fn verify(&self, message: &[u8], signature: &Signature) -> Result<(), SignatureError> {
        let key =
            self.keys.get(&signature.key_id).ok_or_else(|| SignatureError::UntrustedKey(signature.key_id.clone()))?;
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, key)
            .verify(message, &signature.der)
            .map_err(|_| SignatureError::Mismatch)
    }
}

/// PEM of a SubjectPublicKeyInfo, for `openssl` and `cosign`.
pub fn public_key_pem(spki_der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(spki_der);
    let mut pem = String::from("-----BEGIN PUBLIC KEY-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(chunk));
        pem.push('\n');
    }
    pem.push_str("-----END PUBLIC KEY-----\n");
    pem
}

/// A P-256 key held in memory: an edge node's own key (it signs its results with it), and the
/// stand-in for KMS in unit tests. Its private half is never printed.
pub struct LocalKey {
    pair: EcdsaKeyPair,
    pkcs8: Vec<u8>,
    id: String,
}

impl fmt::Debug for LocalKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalKey").field("id", &self.id).finish_non_exhaustive()
    }
}

impl LocalKey {
    /// A fresh key named `id`.
    pub fn generate(id: &str) -> Result<Self, SignatureError> {
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &SystemRandom::new())
            .map_err(|_| SignatureError::Keys("could not generate a P-256 key".into()))?;
        Self::from_pkcs8(id, pkcs8.as_ref())
    }

    /// A key from its PKCS#8 DER (as [`LocalKey::pkcs8_der`] gives it).
    pub fn from_pkcs8(id: &str, der: &[u8]) -> Result<Self, SignatureError> {
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, der)
            .map_err(|_| SignatureError::Keys("not a PKCS#8 P-256 private key".into()))?;
        Ok(Self { pair, pkcs8: der.to_vec(), id: id.to_owned() })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// The private key as PKCS#8 DER, for storing it (never for logging it).
    pub fn pkcs8_der(&self) -> &[u8] {
        &self.pkcs8
    }

    /// The public half as SubjectPublicKeyInfo DER.
    pub fn public_key_der(&self) -> Vec<u8> {
        self.pair.public_key().as_der().map(|d| d.as_ref().to_vec()).unwrap_or_default()
    }

    /// A DER ECDSA signature over SHA-256 of `message`.
    pub fn sign(&self, message: &[u8]) -> Result<Signature, SignatureError> {
        let sig = self
            .pair
            .sign(&SystemRandom::new(), message)
            .map_err(|_| SignatureError::Sign("local signing failed".into()))?;
        Ok(Signature { der: sig.as_ref().to_vec(), key_id: self.id.clone() })
    }

    /// A key set that trusts only this key.
    pub fn trusted(&self) -> TrustedKeys {
        TrustedKeys::from_public_keys([(self.id.clone(), self.public_key_der())])
    }
}

/// What a signature is for. It is part of the signed bytes; each purpose has its own KMS key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Purpose {
    /// A WPK version (the WPK key).
    Wpk,
    /// A model version's manifest (the model key).
    Model,
    /// A person's approval of one run's plan (the approval key).
    RunApproval,
    /// A person's standing approval of one `auto` WPK version (the approval key).
    StandingApproval,
    /// A tenant's safety settings, changed by an admin (the approval key).
    Settings,
    /// A checkpoint of a tenant's audit chain head (the audit key).
    AuditCheckpoint,
    /// Work sent to an edge node (the trigger key).
    EdgeTrigger,
    /// An edge node's report of what it did (the node's own key).
    EdgeResult,
    /// A new trigger key, announced by a trigger key the edge nodes already trust (fleet-wide,
    /// not a tenant's: see [`fleet_sealed_bytes`]).
    EdgeKey,
}

impl Purpose {
    pub const ALL: [Purpose; 9] = [
        Purpose::Wpk,
        Purpose::Model,
        Purpose::RunApproval,
        Purpose::StandingApproval,
        Purpose::Settings,
        Purpose::AuditCheckpoint,
        Purpose::EdgeTrigger,
        Purpose::EdgeResult,
        Purpose::EdgeKey,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Wpk => "naksha/wpk/v1",
            Purpose::Model => "naksha/model/v1",
            Purpose::RunApproval => "naksha/run-approval/v1",
            Purpose::StandingApproval => "naksha/standing-approval/v1",
            Purpose::Settings => "naksha/settings/v1",
            Purpose::AuditCheckpoint => "naksha/audit-checkpoint/v1",
            Purpose::EdgeTrigger => "naksha/edge-trigger/v1",
            Purpose::EdgeResult => "naksha/edge-result/v1",
            Purpose::EdgeKey => "naksha/edge-key/v1",
        }
    }
}

/// The bytes that are signed: the canonical JSON `{"payload": …, "purpose": "…", "tenant": "…"}`.
pub fn sealed_bytes<T: serde::Serialize>(purpose: Purpose, tenant: &TenantId, payload: &T) -> Vec<u8> {
    canonical(&serde_json::json!({
        "payload": serde_json::to_value(payload).unwrap_or(Value::Null),
        "purpose": purpose.as_str(),
        "tenant": tenant.as_str(),
    }))
}

/// The bytes of a statement about the whole fleet rather than one tenant (a trigger key's
/// announcement): `{"payload": …, "purpose": "…"}`, with no `tenant` member, so it can never be
/// read as a tenant's statement nor a tenant's as it.
pub fn fleet_sealed_bytes<T: serde::Serialize>(purpose: Purpose, payload: &T) -> Vec<u8> {
    canonical(&serde_json::json!({
        "payload": serde_json::to_value(payload).unwrap_or(Value::Null),
        "purpose": purpose.as_str(),
    }))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FleetEnvelope {
    payload: Value,
    purpose: String,
}

#[derive(serde::Deserialize)]
struct Envelope {
    payload: Value,
    purpose: String,
    tenant: String,
}

/// Why a sealed statement was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("{0}")]
    Signature(#[from] SignatureError),
    #[error("the signed bytes are not a sealed statement")]
    NotSealed,
    #[error("signed for {found:?}, not for {expected:?}")]
    WrongPurpose { expected: &'static str, found: String },
    #[error("signed for another tenant ({found:?})")]
    WrongTenant { found: String },
    #[error("the signed statement does not say what it should: {0}")]
    Payload(String),
}

/// A signed statement as stored: its signed bytes (text), the signature (base64 DER) and the key
/// that made it. Not trusted until [`Sealed::open`] has checked all three and the envelope.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Sealed {
    pub signed: String,
    pub signature: String,
    pub key_id: String,
}

impl Sealed {
    pub fn new(signed_bytes: &[u8], signature: &Signature) -> Self {
        Self {
            signed: String::from_utf8_lossy(signed_bytes).into_owned(),
            signature: signature.to_base64(),
            key_id: signature.key_id.clone(),
        }
    }

    /// sha256 of the signed bytes: what an audit record names as evidence.
    pub fn sha256(&self) -> String {
        sha256_hex(self.signed.as_bytes())
    }

    /// Check the signature, then that the bytes were sealed for `purpose` and `tenant`, then
    /// parse the payload.
    pub fn open<T: serde::de::DeserializeOwned>(
        &self,
        purpose: Purpose,
        tenant: &TenantId,
        keys: &TrustedKeys,
    ) -> Result<Verified<T>, SealError> {
        let signature = Signature::from_base64(&self.signature, &self.key_id)?;
        let verified = Verified::verify(self.signed.as_bytes(), &signature, keys, |bytes| {
            let envelope: Envelope = serde_json::from_slice(bytes).map_err(|_| SealError::NotSealed)?;
            if envelope.purpose != purpose.as_str() {
                return Err(SealError::WrongPurpose { expected: purpose.as_str(), found: envelope.purpose });
            }
            if envelope.tenant != tenant.as_str() {
                return Err(SealError::WrongTenant { found: envelope.tenant });
            }
            serde_json::from_value::<T>(envelope.payload).map_err(|e| SealError::Payload(e.to_string()))
        });
        verified.map_err(|e| match e {
            VerifyError::Signature(s) => SealError::Signature(s),
            VerifyError::Content(c) => c,
        })
    }
}

impl Sealed {
    /// [`Sealed::open`] for a fleet statement ([`fleet_sealed_bytes`]): signature, purpose, payload.
    pub fn open_fleet<T: serde::de::DeserializeOwned>(
        &self,
        purpose: Purpose,
        keys: &TrustedKeys,
    ) -> Result<Verified<T>, SealError> {
        let signature = Signature::from_base64(&self.signature, &self.key_id)?;
        let verified = Verified::verify(self.signed.as_bytes(), &signature, keys, |bytes| {
            let envelope: FleetEnvelope = serde_json::from_slice(bytes).map_err(|_| SealError::NotSealed)?;
            if envelope.purpose != purpose.as_str() {
                return Err(SealError::WrongPurpose { expected: purpose.as_str(), found: envelope.purpose });
            }
            serde_json::from_value::<T>(envelope.payload).map_err(|e| SealError::Payload(e.to_string()))
        });
        verified.map_err(|e| match e {
            VerifyError::Signature(s) => SealError::Signature(s),
            VerifyError::Content(c) => c,
        })
    }
}

/// Why stored, signed bytes were not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError<E> {
    #[error("signature verification failed: {0}")]
    Signature(#[from] SignatureError),
    /// The bytes verified but do not say what the record claims (wrong id, tenant, digest…).
    #[error("{0}")]
    Content(E),
}

/// A value whose signed bytes were checked against a trusted key before it was parsed. The
/// fields are private: the only way to make one is [`Verified::verify`].
#[derive(Debug, Clone, PartialEq)]
pub struct Verified<T> {
    value: T,
    sha256: String,
    key_id: String,
}

impl<T> Verified<T> {
    /// Check `signature` over `bytes`, then let `parse` turn the (now trusted) bytes into the value
    /// and check that they are what the stored record claims to be.
    pub fn verify<E>(
        bytes: &[u8],
        signature: &Signature,
        keys: &TrustedKeys,
        parse: impl FnOnce(&[u8]) -> Result<T, E>,
    ) -> Result<Self, VerifyError<E>> {
        keys.verify(bytes, signature)?;
        let value = parse(bytes).map_err(VerifyError::Content)?;
        Ok(Self { value, sha256: sha256_hex(bytes), key_id: signature.key_id.clone() })
    }

    /// sha256 of the signed bytes.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// The key that signed them.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    pub fn into_inner(self) -> T {
        self.value
    }
}

impl<T> Deref for Verified<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    /// A local key standing in for KMS.
    pub(crate) fn test_key(id: &str) -> LocalKey {
        LocalKey::generate(id).unwrap()
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_level_and_drops_whitespace() {
        let a = json!({"b": 1, "a": {"d": [1, 2], "c": "x"}});
        let b: Value = serde_json::from_str(r#"{ "a" : { "c":"x", "d":[1,2] }, "b":1 }"#).unwrap();
        assert_eq!(canonical_json(&a), canonical_json(&b));
        assert_eq!(String::from_utf8(canonical_json(&a)).unwrap(), r#"{"a":{"c":"x","d":[1,2]},"b":1}"#);
        assert_eq!(hex(&[0, 15, 255]), "000fff");
    }

    #[test]
    fn verifies_only_untampered_bytes_from_trusted_keys() {
        let key = test_key("k1");
        let message = canonical_json(&json!({"id": "restart", "version": 1}));
        let sig = key.sign(&message).unwrap();
        let trusted = key.trusted();
        assert_eq!(trusted.verify(&message, &sig), Ok(()));
        let mut tampered = message.clone();
        tampered[5] ^= 1;
        assert_eq!(trusted.verify(&tampered, &sig), Err(SignatureError::Mismatch));
        let mut bad_sig = sig.clone();
        let last = bad_sig.der.len() - 1;
        bad_sig.der[last] ^= 1;
        assert_eq!(trusted.verify(&message, &bad_sig), Err(SignatureError::Mismatch));
        let other = Signature { key_id: "k2".into(), ..sig };
        assert_eq!(trusted.verify(&message, &other), Err(SignatureError::UntrustedKey("k2".into())));
    }

    #[test]
    fn a_verified_value_exists_only_after_its_signature_and_content_checks() {
        let key = test_key("k1");
        let bytes = br#"{"id":"a"}"#;
        let sig = key.sign(bytes).unwrap();
        let parse = |b: &[u8]| serde_json::from_slice::<Value>(b).map_err(|e| e.to_string());
        let v = Verified::verify(bytes, &sig, &key.trusted(), parse).unwrap();
        assert_eq!(v["id"], "a");
        assert_eq!((v.sha256(), v.key_id()), (sha256_hex(bytes).as_str(), "k1"));
        let refused = Verified::verify(br#"{"id":"b"}"#, &sig, &key.trusted(), parse);
        assert_eq!(refused, Err(VerifyError::Signature(SignatureError::Mismatch)));
        let wrong = Verified::verify(bytes, &sig, &key.trusted(), |_| Err::<Value, _>("names another object"));
        assert_eq!(wrong, Err(VerifyError::Content("names another object")));
    }

    #[test]
    fn a_local_key_survives_its_pkcs8_form() {
        let key = test_key("node-1");
        let again = LocalKey::from_pkcs8("node-1", key.pkcs8_der()).unwrap();
        let sig = again.sign(b"result").unwrap();
        assert_eq!(key.trusted().verify(b"result", &sig), Ok(()));
        assert!(!format!("{key:?}").contains("pkcs8"));
        assert!(LocalKey::from_pkcs8("x", b"not a key").is_err());
    }

    #[test]
    fn a_sealed_statement_opens_only_for_its_purpose_and_tenant() {
        let key = test_key("approval-key");
        let (acme, beta) = (TenantId::from_record("acme").unwrap(), TenantId::from_record("beta").unwrap());
        let payload = json!({"run_id": "r1", "approver": "bob"});
        let bytes = sealed_bytes(Purpose::RunApproval, &acme, &payload);
        let sealed = Sealed::new(&bytes, &key.sign(&bytes).unwrap());
        let opened: Verified<Value> = sealed.open(Purpose::RunApproval, &acme, &key.trusted()).unwrap();
        assert_eq!(*opened, payload);
        assert!(matches!(
            sealed.open::<Value>(Purpose::RunApproval, &beta, &key.trusted()),
            Err(SealError::WrongTenant { .. })
        ));
        assert!(matches!(
            sealed.open::<Value>(Purpose::StandingApproval, &acme, &key.trusted()),
            Err(SealError::WrongPurpose { .. })
        ));
        // Rewriting the bytes to name another tenant breaks the signature.
        let moved = Sealed { signed: sealed.signed.replace("acme", "beta"), ..sealed.clone() };
        assert!(matches!(
            moved.open::<Value>(Purpose::RunApproval, &beta, &key.trusted()),
            Err(SealError::Signature(SignatureError::Mismatch))
        ));
        // Another key (another purpose's) is not trusted here.
        let other = test_key("wpk-key");
        let forged = Sealed::new(&bytes, &other.sign(&bytes).unwrap());
        assert!(matches!(
            forged.open::<Value>(Purpose::RunApproval, &acme, &key.trusted()),
            Err(SealError::Signature(SignatureError::UntrustedKey(_)))
        ));
        let names: std::collections::BTreeSet<&str> = Purpose::ALL.iter().map(|p| p.as_str()).collect();
        assert_eq!(names.len(), Purpose::ALL.len(), "every purpose is distinct in the signed bytes");
    }

    #[test]
    fn pem_wraps_at_64_columns() {
        let key = test_key("k1");
        let pem = public_key_pem(key.trusted().public_key("k1").unwrap());
        assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n") && pem.ends_with("-----END PUBLIC KEY-----\n"));
        assert!(pem.lines().all(|l| l.len() <= 64));
    }
}
