//! Signing with KMS (P-2), and loading the trusted public keys from KMS. What a verifier needs
//! without AWS (canonical bytes, [`TrustedKeys`], [`Verified`]) is in naksha-contracts and
//! re-exported here.
//!
//! KMS signs with `ECDSA_SHA_256`: messages up to 4 KiB are sent whole (`MessageType=RAW`, KMS
//! hashes them), larger ones as their SHA-256 (`DIGEST`). Both give the same plain DER ECDSA
//! signature over SHA-256 of the bytes. (RAW is preferred because moto, the local emulator,
//! hashes `DIGEST` messages again; see docs/architecture.md.)

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{MessageType, SigningAlgorithmSpec};

pub use naksha_contracts::signing::{
    LocalKey, Purpose, SealError, Sealed, Signature, SignatureError, TrustedKeys, Verified, VerifyError, canonical,
    canonical_json, hex, public_key_pem, sealed_bytes, sha256, sha256_hex,
};

use crate::aws::describe_error;

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

/// Something that signs bytes: a KMS key in production, a [`LocalKey`] in unit tests (and on an
/// edge node, its own key).
pub trait Sign: Send + Sync {
    fn sign(&self, message: &[u8]) -> impl std::future::Future<Output = Result<Signature, SignatureError>> + Send;
}

impl Sign for KmsSigner {
    async fn sign(&self, message: &[u8]) -> Result<Signature, SignatureError> {
        KmsSigner::sign(self, message).await
    }
}

impl Sign for LocalKey {
    async fn sign(&self, message: &[u8]) -> Result<Signature, SignatureError> {
        LocalKey::sign(self, message)
    }
}

/// Seal `payload` for `tenant` and `purpose` and sign it.
pub async fn seal<S: Sign, T: serde::Serialize>(
    signer: &S,
    purpose: Purpose,
    tenant: &naksha_contracts::TenantId,
    payload: &T,
) -> Result<Sealed, SignatureError> {
    let bytes = sealed_bytes(purpose, tenant, payload);
    let signature = signer.sign(&bytes).await?;
    Ok(Sealed::new(&bytes, &signature))
}

/// Fetch each trusted key's public key from KMS (once, at cold start), under its id and its ARN.
pub async fn load_trusted_keys(kms: &aws_sdk_kms::Client, key_ids: &[String]) -> Result<TrustedKeys, SignatureError> {
    let mut keys = TrustedKeys::default();
    for id in key_ids {
        let out = kms.get_public_key().key_id(id).send().await.map_err(|e| SignatureError::Keys(describe_error(&e)))?;
        let spki = out.public_key().ok_or_else(|| SignatureError::Keys(format!("{id} has no public key")))?;
        let spki = spki.as_ref().to_vec();
        if let Some(arn) = out.key_id() {
            keys.insert(arn, spki.clone());
        }
        keys.insert(id, spki);
    }
    Ok(keys)
}

/// The trusted keys of one purpose: comma-separated key ids in `variable` (e.g. `WPK_KEY_IDS`,
/// `MODEL_KEY_IDS`); rotation lists the new key beside the old one until the old one retires.
pub fn key_ids(cfg: &mut crate::config::ConfigReader, variable: &str) -> Vec<String> {
    let list = cfg.optional(variable).unwrap_or_default();
    let ids: Vec<String> = list.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect();
    if ids.is_empty() {
        cfg.problem(format!("{variable} is not set"));
    }
    ids
}
