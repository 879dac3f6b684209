//! Dev tokens: a P-256 key made on first use, its JWKS, and tokens signed with it.
//!
//! Only for the local stack. The key lives in `.local/dev-jwt-key.p8` (mode 0600) so tokens
//! survive `make down`/`make up`.

use std::path::Path;

use aws_lc_rs::digest;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use jsonwebtoken::jwk::{Jwk, JwkSet, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::stack::{LOCAL_ISSUER, StackError};

/// Audience of dev tokens: the template's default `JwtAudience`.
pub const LOCAL_AUDIENCE: &str = "naksha-api";

#[derive(Clone)]
pub struct DevKey {
    key: EncodingKey,
    kid: String,
}

impl std::fmt::Debug for DevKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevKey").field("kid", &self.kid).finish_non_exhaustive()
    }
}

impl DevKey {
    /// Load the dev key, making one the first time.
    pub fn load_or_create(path: &Path) -> Result<Self, StackError> {
        let pkcs8 = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(_) => {
                let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                    .map_err(|_| StackError::Invalid("could not generate a P-256 key".into()))?;
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                std::fs::write(path, doc.as_ref())?;
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt;
                    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
                }
                doc.as_ref().to_vec()
            }
        };
        Self::from_pkcs8(&pkcs8)
    }

    /// A fresh key that is in no JWKS: for tests of "signed by another key".
    pub fn ephemeral() -> Result<Self, StackError> {
        let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
            .map_err(|_| StackError::Invalid("could not generate a P-256 key".into()))?;
        Self::from_pkcs8(doc.as_ref())
    }

    fn from_pkcs8(pkcs8: &[u8]) -> Result<Self, StackError> {
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8)
            .map_err(|_| StackError::Invalid("the dev key file is not a P-256 PKCS#8 key".into()))?;
        use aws_lc_rs::signature::KeyPair;
        let d = digest::digest(&digest::SHA256, pair.public_key().as_ref());
        let kid = format!("dev-{}", d.as_ref()[..6].iter().map(|b| format!("{b:02x}")).collect::<String>());
        Ok(Self { key: EncodingKey::from_ec_der(pkcs8), kid })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public JWKS the functions verify against.
    pub fn jwks(&self) -> Result<Value, StackError> {
        let mut jwk =
            Jwk::from_encoding_key(&self.key, Algorithm::ES256).map_err(|e| StackError::Invalid(e.to_string()))?;
        jwk.common.key_id = Some(self.kid.clone());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        jwk.common.key_algorithm = Some(KeyAlgorithm::ES256);
        Ok(serde_json::to_value(JwkSet { keys: vec![jwk] })?)
    }

    /// Sign any claims (tests use this for expired, wrong-issuer … tokens).
    pub fn sign(&self, claims: &Value) -> Result<String, StackError> {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.key).map_err(|e| StackError::Invalid(e.to_string()))
    }

    /// The standard claims of a dev token.
    pub fn claims(tenant: &str, subject: &str, roles: &[&str], ttl_secs: i64) -> Value {
        let now = chrono::Utc::now().timestamp();
        json!({
            "iss": LOCAL_ISSUER,
            "aud": LOCAL_AUDIENCE,
            "sub": subject,
            "tenant": tenant,
            "roles": roles,
            "iat": now,
            "nbf": now - 5,
            "exp": now + ttl_secs,
        })
    }

    pub fn token(&self, tenant: &str, subject: &str, roles: &[&str], ttl_secs: i64) -> Result<String, StackError> {
        self.sign(&Self::claims(tenant, subject, roles, ttl_secs))
    }
}
