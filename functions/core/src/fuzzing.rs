//! Fuzz entry points for what every function parses first: the bearer token. See
//! `naksha_contracts::fuzzing` for how `fuzz/` and the replay tests use them.

// A fuzz target reports a finding by panicking: that is what libFuzzer and the replay tests catch.
#![allow(clippy::panic)]

use naksha_contracts::fuzzing::Target;
use std::sync::OnceLock;
use std::time::Duration;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use base64::Engine as _;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Value, json};

use crate::auth::{AuthConfig, JwksSource, Verifier};

pub const TARGETS: &[Target] = &[("jwt_token", jwt_token), ("jwt_claims", jwt_claims)];

const ISSUER: &str = "https://issuer.fuzz";
const AUDIENCE: &str = "naksha";
const KID: &str = "fuzz";

/// A verifier trusting one key made at start and known to nobody else, and the key.
struct Fixture {
    runtime: tokio::runtime::Runtime,
    verifier: Verifier,
    key: EncodingKey,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
            .unwrap_or_else(|e| panic!("no P-256 key: {e}"));
        let key = EncodingKey::from_ec_der(pkcs8.as_ref());
        let mut jwk = Jwk::from_encoding_key(&key, Algorithm::ES256).unwrap_or_else(|e| panic!("no JWK: {e}"));
        jwk.common.key_id = Some(KID.into());
        let verifier = Verifier::new(AuthConfig {
            issuer: ISSUER.into(),
            audience: AUDIENCE.into(),
            algorithm: Algorithm::ES256,
            jwks: JwksSource::Inline(json!({"keys": [jwk]}).to_string()),
            tenant_claim: "tenant".into(),
            roles_claim: "roles".into(),
            jwks_ttl: Duration::from_secs(3600),
            max_lifetime: Duration::from_secs(86_400),
            limits: None,
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("no runtime: {e}"));
        Fixture { runtime, verifier, key }
    })
}

/// A token off the wire: nobody holds the trusted key, so nothing verifies.
pub fn jwt_token(data: &[u8]) {
    let Ok(token) = std::str::from_utf8(data) else { return };
    let f = fixture();
    let out = f.runtime.block_on(f.verifier.verify(token));
    assert!(out.is_err(), "a token verified without the trusted key: {token:?}");
}

/// Claims signed by the trusted key, as an honest issuer would sign whatever it was given: what
/// verifies is exactly what the claims say (tenant, subject), within the issuer and audience.
pub fn jwt_claims(data: &[u8]) {
    let Some(principal) = sign_and_verify(data) else { return };
    let claims: Value = serde_json::from_slice(data).unwrap_or_else(|e| panic!("verified claims are not JSON: {e}"));
    assert_eq!(claims["iss"], ISSUER, "verified with another issuer");
    assert!(
        claims["aud"] == AUDIENCE || claims["aud"].as_array().is_some_and(|a| a.iter().any(|v| v == AUDIENCE)),
        "verified for another audience"
    );
    assert_eq!(claims["sub"].as_str(), Some(principal.subject.as_str()));
    assert_eq!(claims["tenant"].as_str(), Some(principal.tenant.as_str()), "the tenant is not the claim's");
}

/// `claims` (bytes) signed by the trusted key and verified: who they make, if anyone.
pub fn sign_and_verify(claims: &[u8]) -> Option<crate::auth::Principal> {
    let f = fixture();
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = json!({"alg": "ES256", "typ": "JWT", "kid": KID}).to_string();
    let message = format!("{}.{}", b64.encode(header), b64.encode(claims));
    let signature = jsonwebtoken::crypto::sign(message.as_bytes(), &f.key, Algorithm::ES256).ok()?;
    let token = format!("{message}.{signature}");
    f.runtime.block_on(f.verifier.verify(&token)).ok()
}
