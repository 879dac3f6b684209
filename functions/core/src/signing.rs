//! Signing (P-2): canonical JSON, KMS ECDSA P-256 signatures, and verification before use.
//!
//! - The signed bytes are a canonical JSON form: object keys sorted, no whitespace (the RFC 8785
//!   rules that matter for documents without exotic floats).
//! - KMS signs with `ECDSA_SHA_256`: messages up to 4 KiB are sent whole (`MessageType=RAW`, KMS
//!   hashes them), larger ones as their SHA-256 (`DIGEST`). Both give the same plain DER ECDSA
//!   signature over SHA-256 of the bytes, so `openssl dgst -sha256 -verify pub.pem -signature
//!   sig.der doc.json` and `cosign verify-blob --key pub.pem` accept it. (RAW is preferred because
//!   moto, the local emulator, hashes `DIGEST` messages again; see docs/architecture.md.)
//! - Verifiers fetch the public keys of a *set* of trusted key ids once per cold start (key
//!   rotation adds a key before retiring the old one) and verify locally; no KMS call per check.

use std::collections::HashMap;
use std::fmt;

use aws_lc_rs::digest;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1, UnparsedPublicKey};
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{MessageType, SigningAlgorithmSpec};
use base64::Engine as _;
use serde_json::Value;

use crate::aws::describe_error;

/// Canonical bytes of a JSON value: keys sorted at every level, compact.
pub fn canonical_json(value: &Value) -> Vec<u8> {
    // serde_json's Map is a BTreeMap (the `preserve_order` feature is off), so keys serialise
    // sorted; `to_vec` writes no whitespace.
    serde_json::to_vec(value).unwrap_or_default()
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
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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

/// A detached signature: DER ECDSA bytes and the KMS key (ARN) that made it.
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

/// Largest message KMS `Sign` takes as `RAW`.
pub const KMS_RAW_LIMIT: usize = 4096;

/// Signs with a KMS asymmetric key.
#[derive(Debug, Clone)]
pub struct KmsSigner {
    kms: aws_sdk_kms::Client,
    key_id: String,
}

impl KmsSigner {
    pub fn new(kms: aws_sdk_kms::Client, key_id: impl Into<String>) -> Self {
        Self { kms, key_id: key_id.into() }
    }

    pub async fn sign(&self, message: &[u8]) -> Result<Signature, SignatureError> {
        let (body, kind) = if message.len() <= KMS_RAW_LIMIT {
            (message.to_vec(), MessageType::Raw)
        } else {
            (sha256(message).to_vec(), MessageType::Digest)
        };
        let out = self
            .kms
            .sign()
            .key_id(&self.key_id)
            .message(Blob::new(body))
            .message_type(kind)
            .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
            .send()
            .await
            .map_err(|e| SignatureError::Sign(describe_error(&e)))?;
        let der = out.signature().ok_or_else(|| SignatureError::Sign("KMS returned no signature".into()))?;
        let key_id = out.key_id().unwrap_or(&self.key_id).to_owned();
        Ok(Signature { der: der.as_ref().to_vec(), key_id })
    }
}

/// Public keys of the trusted signing keys, by key id and ARN.
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
    /// Fetch each key's public key from KMS (once, at cold start).
    pub async fn load(kms: &aws_sdk_kms::Client, key_ids: &[String]) -> Result<Self, SignatureError> {
        let mut keys = HashMap::new();
        for id in key_ids {
            let out =
                kms.get_public_key().key_id(id).send().await.map_err(|e| SignatureError::Keys(describe_error(&e)))?;
            let spki = out.public_key().ok_or_else(|| SignatureError::Keys(format!("{id} has no public key")))?;
            let spki = spki.as_ref().to_vec();
            if let Some(arn) = out.key_id() {
                keys.insert(arn.to_owned(), spki.clone());
                if let Some(short) = arn.rsplit('/').next() {
                    keys.insert(short.to_owned(), spki.clone());
                }
            }
            keys.insert(id.clone(), spki);
        }
        Ok(Self { keys })
    }

    /// Trust explicit public keys (SubjectPublicKeyInfo DER or an uncompressed point).
    pub fn from_public_keys(keys: impl IntoIterator<Item = (String, Vec<u8>)>) -> Self {
        Self { keys: keys.into_iter().collect() }
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

/// Comma-separated key ids (`TRUSTED_KEY_IDS`), falling back to the signing key.
pub fn trusted_key_ids(cfg: &mut crate::config::ConfigReader) -> Vec<String> {
    let list = cfg.optional("TRUSTED_KEY_IDS").or_else(|| cfg.optional("SIGNING_KEY_ID")).unwrap_or_default();
    let ids: Vec<String> = list.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect();
    if ids.is_empty() {
        cfg.problem("TRUSTED_KEY_IDS (or SIGNING_KEY_ID) is not set");
    }
    ids
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

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
    use serde_json::json;

    fn keypair() -> (EcdsaKeyPair, Vec<u8>) {
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &SystemRandom::new()).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref()).unwrap();
        let spki = pair.public_key().as_der().unwrap().as_ref().to_vec();
        (pair, spki)
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_level_and_drops_whitespace() {
        let a = json!({"b": 1, "a": {"d": [1, 2], "c": "x"}});
        let b: Value = serde_json::from_str(r#"{ "a" : { "c":"x", "d":[1,2] }, "b":1 }"#).unwrap();
        assert_eq!(canonical_json(&a), canonical_json(&b));
        assert_eq!(String::from_utf8(canonical_json(&a)).unwrap(), r#"{"a":{"c":"x","d":[1,2]},"b":1}"#);
    }

    #[test]
    fn verifies_only_untampered_bytes_from_trusted_keys() {
        let (pair, spki) = keypair();
        let message = canonical_json(&json!({"id": "restart", "version": 1}));
        let der = pair.sign(&SystemRandom::new(), &message).unwrap().as_ref().to_vec();
        let trusted = TrustedKeys::from_public_keys([("k1".to_owned(), spki)]);
        let sig = Signature { der: der.clone(), key_id: "k1".into() };
        assert_eq!(trusted.verify(&message, &sig), Ok(()));
        let mut tampered = message.clone();
        tampered[5] ^= 1;
        assert_eq!(trusted.verify(&tampered, &sig), Err(SignatureError::Mismatch));
        let mut bad_sig = sig.clone();
        let last = bad_sig.der.len() - 1;
        bad_sig.der[last] ^= 1;
        assert_eq!(trusted.verify(&message, &bad_sig), Err(SignatureError::Mismatch));
        let other = Signature { der, key_id: "k2".into() };
        assert_eq!(trusted.verify(&message, &other), Err(SignatureError::UntrustedKey("k2".into())));
    }

    #[test]
    fn pem_wraps_at_64_columns() {
        let (_, spki) = keypair();
        let pem = public_key_pem(&spki);
        assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n") && pem.ends_with("-----END PUBLIC KEY-----\n"));
        assert!(pem.lines().all(|l| l.len() <= 64));
    }
}
