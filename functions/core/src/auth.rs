//! Authentication (P-5): every request's JWT is verified here, in the function itself —
//! the API Gateway authorizer is a second layer, not the only one.
//!
//! Verification pins the algorithm (ES256 or RS256, from config), checks the signature against
//! the JWKS, then issuer, audience, expiry, not-before, issued-at (not in the future) and the
//! token's lifetime (at most `JWT_MAX_LIFETIME_SECONDS`). Only then is a [`Principal`] built.
//!
//! The JWKS is cached for its `Cache-Control: max-age` (or `JWKS_CACHE_SECONDS`), so a key removed
//! from it stops being trusted once that runs out; concurrent refreshes are merged into one fetch.
//! When a refresh fails, the keys already held are used for at most one more cache period.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::time::{Duration, Instant};

use base64::Engine as _;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};
use tokio::sync::RwLock;

use crate::config::ConfigReader;
use crate::problem::Problem;

/// How long to wait before asking the JWKS endpoint again after a token named an unknown key.
const JWKS_REFRESH_COOLDOWN: Duration = Duration::from_secs(60);
/// Clock skew tolerated on `exp`, `nbf` and `iat`.
const LEEWAY_SECS: u64 = 30;
/// Default cache period of the JWKS when it names none.
pub const DEFAULT_JWKS_TTL: Duration = Duration::from_secs(300);
/// Default longest token lifetime accepted (`exp - iat`).
pub const DEFAULT_MAX_LIFETIME: Duration = Duration::from_secs(24 * 3600);

pub use naksha_contracts::identity::{MissingRole, Principal, READERS, Role, TenantId};

impl From<MissingRole> for Problem {
    fn from(e: MissingRole) -> Self {
        Problem::forbidden(e.to_string())
    }
}

/// Where the verification keys come from.
#[derive(Debug, Clone)]
pub enum JwksSource {
    /// An HTTPS (or, locally, HTTP) URL serving a JWKS document, fetched at cold start.
    Url(String),
    /// A JWKS document given inline (`JWKS_JSON`).
    Inline(String),
}

#[derive(Debug, Clone)]
pub struct AuthConfig {
    pub issuer: String,
    pub audience: String,
    pub algorithm: Algorithm,
    pub jwks: JwksSource,
    pub tenant_claim: String,
    pub roles_claim: String,
    /// How long fetched keys are trusted when the JWKS response names no `max-age`.
    pub jwks_ttl: Duration,
    /// Tokens that live longer than this (`exp - iat`, or `exp - now` without `iat`) are refused.
    pub max_lifetime: Duration,
    /// Per-tenant limits (`LIMITS_TABLE`): every authenticated request counts against its
    /// tenant's requests per second.
    pub limits: Option<crate::limits::LimitsConfig>,
}

impl AuthConfig {
    /// `JWT_ISSUER`, `JWT_AUDIENCE`, `JWT_ALGORITHM` (ES256 or RS256, default ES256), one of
    /// `JWKS_URL` / `JWKS_JSON`, and optionally `JWT_TENANT_CLAIM` (default `tenant`),
    /// `JWT_ROLES_CLAIM` (default `roles`; Cognito users set `cognito:groups`),
    /// `JWKS_CACHE_SECONDS` (default 300) and `JWT_MAX_LIFETIME_SECONDS` (default 86400).
    pub fn from_config(r: &mut ConfigReader) -> Self {
        let issuer = r.required("JWT_ISSUER");
        let audience = r.required("JWT_AUDIENCE");
        let algorithm = match r.optional("JWT_ALGORITHM").as_deref() {
            None | Some("ES256") => Algorithm::ES256,
            Some("RS256") => Algorithm::RS256,
            Some(other) => {
                r.problem(format!("JWT_ALGORITHM: {other:?} is not accepted (ES256 or RS256)"));
                Algorithm::ES256
            }
        };
        let jwks = match (r.optional("JWKS_URL"), r.optional("JWKS_JSON")) {
            (Some(url), None) => JwksSource::Url(url),
            (None, Some(json)) => JwksSource::Inline(json),
            (Some(_), Some(_)) => {
                r.problem("set only one of JWKS_URL and JWKS_JSON");
                JwksSource::Inline(String::new())
            }
            (None, None) => {
                r.problem("JWKS_URL (or JWKS_JSON) is not set");
                JwksSource::Inline(String::new())
            }
        };
        Self {
            issuer,
            audience,
            algorithm,
            jwks,
            tenant_claim: r.optional("JWT_TENANT_CLAIM").unwrap_or_else(|| "tenant".into()),
            roles_claim: r.optional("JWT_ROLES_CLAIM").unwrap_or_else(|| "roles".into()),
            jwks_ttl: Duration::from_secs(r.parsed("JWKS_CACHE_SECONDS", DEFAULT_JWKS_TTL.as_secs())),
            max_lifetime: Duration::from_secs(r.parsed("JWT_MAX_LIFETIME_SECONDS", DEFAULT_MAX_LIFETIME.as_secs())),
            limits: crate::limits::LimitsConfig::from_config(r),
        }
    }
}

/// Why a token was refused. Everything but `KeysUnavailable` is the caller's fault (401).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("no bearer token was sent")]
    Missing,
    #[error("the token is malformed")]
    Malformed,
    #[error("the token algorithm {0:?} is not accepted")]
    AlgorithmNotAllowed(String),
    #[error("the token was signed by an unknown key")]
    UnknownKey,
    #[error("the token signature is invalid")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token was issued in the future")]
    IssuedInFuture,
    #[error("the token lives longer than this API accepts")]
    LifetimeTooLong,
    #[error("the token was issued by an untrusted issuer")]
    WrongIssuer,
    #[error("the token is not meant for this API")]
    WrongAudience,
    #[error("the token lacks the {0} claim")]
    MissingClaim(String),
    #[error("the token's {0} claim is invalid")]
    InvalidClaim(String),
    #[error("the verification keys could not be loaded")]
    KeysUnavailable(String),
}

impl From<AuthError> for Problem {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::KeysUnavailable(cause) => {
                Problem::unavailable("token verification keys are unavailable; try again").with_internal(cause)
            }
            other => Problem::unauthorized(other.to_string()),
        }
    }
}

#[derive(Default)]
struct KeySet {
    by_kid: HashMap<String, DecodingKey>,
    without_kid: Vec<DecodingKey>,
    fetched_at: Option<Instant>,
    /// Until when these keys are trusted without asking again.
    fresh_until: Option<Instant>,
    /// How many times the JWKS was fetched (merged fetches count once).
    fetches: u64,
}

/// Verifies bearer tokens. Build once per cold start and share.
pub struct Verifier {
    config: AuthConfig,
    validation: Validation,
    http: reqwest::Client,
    keys: RwLock<KeySet>,
    /// Held while fetching, so concurrent refreshes become one fetch.
    fetching: tokio::sync::Mutex<()>,
    limits: Option<std::sync::Arc<crate::limits::Limits>>,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("issuer", &self.config.issuer)
            .field("audience", &self.config.audience)
            .field("algorithm", &self.config.algorithm)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    pub fn new(config: AuthConfig) -> Self {
        let mut validation = Validation::new(config.algorithm);
        validation.set_issuer(&[&config.issuer]);
        validation.set_audience(&[&config.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Self {
            config,
            validation,
            http,
            keys: RwLock::new(KeySet::default()),
            fetching: tokio::sync::Mutex::new(()),
            limits: None,
        }
    }

    /// Count every authenticated request against its tenant's limits.
    pub fn with_limits(mut self, limits: crate::limits::Limits) -> Self {
        self.limits = Some(std::sync::Arc::new(limits));
        self
    }

    /// The per-tenant limits this verifier enforces, for routes that count more than requests.
    pub fn limits(&self) -> Option<&std::sync::Arc<crate::limits::Limits>> {
        self.limits.as_ref()
    }

    /// Fetch the keys now (at cold start) so the first request does not pay for it.
    /// A failure is logged and retried on the next request.
    pub async fn warm(&self) {
        if let Err(e) = self.refresh(None).await {
            tracing::warn!(error = %e, "could not load the JWKS at start; will retry on first request");
        }
    }

    /// Verify the `Authorization` header and require `role`.
    pub async fn authorize(&self, headers: &http::HeaderMap, role: Role) -> Result<Principal, Problem> {
        let principal = self.authenticate(headers).await?;
        principal.require(role)?;
        Ok(principal)
    }

    /// Verify the `Authorization` header, and count the request against its tenant's requests
    /// per second (429 when the second is full).
    pub async fn authenticate(&self, headers: &http::HeaderMap) -> Result<Principal, Problem> {
        let token = bearer_token(headers).ok_or(AuthError::Missing)?;
        let principal = self.verify(token).await?;
        if let Some(limits) = &self.limits {
            limits.admit_request(&principal.tenant).await?;
        }
        Ok(principal)
    }

    pub async fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let header = peek_header(token)?;
        let expected = algorithm_name(self.config.algorithm);
        if header.alg != expected {
            return Err(AuthError::AlgorithmNotAllowed(header.alg));
        }
        let claims = {
            self.ensure_fresh().await?;
            let key_missing = !self.has_key(header.kid.as_deref()).await;
            if key_missing {
                self.refresh_for_unknown_key().await?;
            }
            let keys = self.keys.read().await;
            let candidates: Vec<&DecodingKey> = match header.kid.as_deref() {
                Some(kid) => keys.by_kid.get(kid).into_iter().collect(),
                None => keys.by_kid.values().chain(keys.without_kid.iter()).collect(),
            };
            if candidates.is_empty() {
                return Err(AuthError::UnknownKey);
            }
            let mut last = AuthError::BadSignature;
            let mut verified = None;
            for key in candidates {
                match jsonwebtoken::decode::<Map<String, Value>>(token, key, &self.validation) {
                    Ok(data) => {
                        verified = Some(data.claims);
                        break;
                    }
                    Err(e) => {
                        last = map_jwt_error(e.kind());
                        if last != AuthError::BadSignature {
                            break;
                        }
                    }
                }
            }
            verified.ok_or(last)?
        };
        self.check_lifetime(&claims)?;
        self.principal_from(&claims)
    }

    /// `iat` not in the future, and a lifetime no longer than configured.
    fn check_lifetime(&self, claims: &Map<String, Value>) -> Result<(), AuthError> {
        let now = jsonwebtoken::get_current_timestamp();
        let number = |name: &str| match claims.get(name) {
            None => Ok(None),
            Some(v) => v.as_u64().map(Some).ok_or_else(|| AuthError::InvalidClaim(name.into())),
        };
        let (iat, exp) = (number("iat")?, number("exp")?.unwrap_or(0));
        if iat.is_some_and(|iat| iat > now + LEEWAY_SECS) {
            return Err(AuthError::IssuedInFuture);
        }
        let lifetime = exp.saturating_sub(iat.unwrap_or(now));
        if lifetime > self.config.max_lifetime.as_secs() + LEEWAY_SECS {
            return Err(AuthError::LifetimeTooLong);
        }
        Ok(())
    }

    /// Refresh keys whose cache period ran out. If that fails, keys already held stay usable
    /// for one more period; after that, no key is trusted until the JWKS answers again.
    async fn ensure_fresh(&self) -> Result<(), AuthError> {
        let (seen, fresh_until) = {
            let keys = self.keys.read().await;
            (keys.fetched_at, keys.fresh_until)
        };
        if fresh_until.is_some_and(|t| Instant::now() < t) {
            return Ok(());
        }
        match self.refresh(seen).await {
            Ok(()) => Ok(()),
            Err(e) => {
                let grace = fresh_until.is_some_and(|t| Instant::now() < t + self.config.jwks_ttl);
                if grace {
                    tracing::warn!(error = %e, "JWKS refresh failed; using the keys already held for one more period");
                    Ok(())
                } else {
                    *self.keys.write().await = KeySet { fetches: self.fetch_count().await, ..KeySet::default() };
                    Err(e)
                }
            }
        }
    }

    /// How many times the JWKS has been fetched (merged refreshes count once).
    pub async fn fetch_count(&self) -> u64 {
        self.keys.read().await.fetches
    }

    fn principal_from(&self, claims: &Map<String, Value>) -> Result<Principal, AuthError> {
        let subject = match claims.get("sub") {
            Some(Value::String(s)) if !s.is_empty() && s.len() <= 256 => s.clone(),
            Some(_) => return Err(AuthError::InvalidClaim("sub".into())),
            None => return Err(AuthError::MissingClaim("sub".into())),
        };
        let tenant_claim = &self.config.tenant_claim;
        let tenant = match claims.get(tenant_claim) {
            Some(Value::String(s)) => {
                TenantId::from_verified_claim(s).map_err(|_| AuthError::InvalidClaim(tenant_claim.clone()))?
            }
            Some(_) => return Err(AuthError::InvalidClaim(tenant_claim.clone())),
            None => return Err(AuthError::MissingClaim(tenant_claim.clone())),
        };
        let roles = match claims.get(&self.config.roles_claim) {
            None => BTreeSet::new(),
            Some(Value::String(s)) => s.split([' ', ',']).filter_map(Role::parse).collect(),
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).filter_map(Role::parse).collect(),
            Some(_) => return Err(AuthError::InvalidClaim(self.config.roles_claim.clone())),
        };
        Ok(Principal { tenant, subject, roles })
    }

    async fn has_key(&self, kid: Option<&str>) -> bool {
        let keys = self.keys.read().await;
        match kid {
            Some(kid) => keys.by_kid.contains_key(kid),
            None => !keys.by_kid.is_empty() || !keys.without_kid.is_empty(),
        }
    }

    async fn refresh_for_unknown_key(&self) -> Result<(), AuthError> {
        let (seen, never_fetched, recent) = {
            let keys = self.keys.read().await;
            (
                keys.fetched_at,
                keys.fetched_at.is_none(),
                keys.fetched_at.is_some_and(|t| t.elapsed() < JWKS_REFRESH_COOLDOWN),
            )
        };
        if recent {
            return Ok(());
        }
        match self.refresh(seen).await {
            Ok(()) => Ok(()),
            // With no keys at all we cannot judge the token: that is our outage, not their fault.
            Err(e) if never_fetched => Err(e),
            Err(e) => {
                tracing::warn!(error = %e, "JWKS refresh failed; keeping the keys already loaded");
                Ok(())
            }
        }
    }

    /// Fetch the JWKS, unless someone else did since `seen` (the fetch time the caller saw):
    /// concurrent callers wait for one fetch instead of each making their own.
    async fn refresh(&self, seen: Option<Instant>) -> Result<(), AuthError> {
        let _one_at_a_time = self.fetching.lock().await;
        if self.keys.read().await.fetched_at != seen {
            return Ok(());
        }
        let (document, max_age) = match &self.config.jwks {
            JwksSource::Inline(json) => (json.clone(), None),
            JwksSource::Url(url) => {
                let resp = self
                    .http
                    .get(url)
                    .send()
                    .await
                    .map_err(|e| AuthError::KeysUnavailable(format!("fetching JWKS: {e}")))?;
                if !resp.status().is_success() {
                    return Err(AuthError::KeysUnavailable(format!("JWKS endpoint answered {}", resp.status())));
                }
                let max_age =
                    resp.headers().get(http::header::CACHE_CONTROL).and_then(|v| v.to_str().ok()).and_then(max_age);
                let text = resp.text().await.map_err(|e| AuthError::KeysUnavailable(format!("reading JWKS: {e}")))?;
                (text, max_age)
            }
        };
        let set = parse_key_set(&document, self.config.algorithm)?;
        let ttl = max_age.map_or(self.config.jwks_ttl, |s| Duration::from_secs(s.clamp(1, 86_400)));
        let mut keys = self.keys.write().await;
        let now = Instant::now();
        *keys = KeySet { fetched_at: Some(now), fresh_until: Some(now + ttl), fetches: keys.fetches + 1, ..set };
        Ok(())
    }
}

/// `max-age` of a `Cache-Control` header, in seconds.
fn max_age(header: &str) -> Option<u64> {
    header.split(',').find_map(|d| d.trim().strip_prefix("max-age=")?.trim_matches('"').parse().ok())
}

fn parse_key_set(document: &str, algorithm: Algorithm) -> Result<KeySet, AuthError> {
    let set: JwkSet = serde_json::from_str(document)
        .map_err(|e| AuthError::KeysUnavailable(format!("JWKS is not valid JSON: {e}")))?;
    let mut out = KeySet::default();
    for jwk in set.keys.iter().filter(|k| usable(k, algorithm)) {
        let Ok(key) = DecodingKey::from_jwk(jwk) else { continue };
        match &jwk.common.key_id {
            Some(kid) => {
                out.by_kid.insert(kid.clone(), key);
            }
            None => out.without_kid.push(key),
        }
    }
    if out.by_kid.is_empty() && out.without_kid.is_empty() {
        return Err(AuthError::KeysUnavailable(format!("the JWKS holds no {} signing key", algorithm_name(algorithm))));
    }
    Ok(out)
}

/// A key may verify tokens of the pinned algorithm: right family, `use` not `enc`, and an
/// `alg` member (when present) equal to the pinned one.
fn usable(jwk: &Jwk, algorithm: Algorithm) -> bool {
    use jsonwebtoken::jwk::AlgorithmParameters as P;
    let family_ok =
        matches!((&jwk.algorithm, algorithm), (P::EllipticCurve(_), Algorithm::ES256) | (P::RSA(_), Algorithm::RS256));
    let use_ok = !matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption));
    let alg_ok = jwk.common.key_algorithm.is_none_or(|a| a.to_string() == algorithm_name(algorithm));
    family_ok && use_ok && alg_ok
}

fn algorithm_name(a: Algorithm) -> &'static str {
    match a {
        Algorithm::ES256 => "ES256",
        Algorithm::RS256 => "RS256",
        _ => "unsupported",
    }
}

#[derive(serde::Deserialize)]
struct PeekedHeader {
    alg: String,
    kid: Option<String>,
}

/// Read the header before any crypto, so `alg: none` and other algorithms are refused by name.
fn peek_header(token: &str) -> Result<PeekedHeader, AuthError> {
    let mut parts = token.split('.');
    let (Some(head), Some(_), Some(_), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(AuthError::Malformed);
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(head.trim_end_matches('='))
        .map_err(|_| AuthError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| AuthError::Malformed)
}

fn map_jwt_error(kind: &ErrorKind) -> AuthError {
    match kind {
        ErrorKind::InvalidSignature => AuthError::BadSignature,
        ErrorKind::ExpiredSignature => AuthError::Expired,
        ErrorKind::ImmatureSignature => AuthError::NotYetValid,
        ErrorKind::InvalidIssuer => AuthError::WrongIssuer,
        ErrorKind::InvalidAudience => AuthError::WrongAudience,
        ErrorKind::MissingRequiredClaim(c) => AuthError::MissingClaim(c.clone()),
        ErrorKind::InvalidAlgorithm => AuthError::AlgorithmNotAllowed("mismatch".into()),
        ErrorKind::InvalidEcdsaKey | ErrorKind::InvalidRsaKey(_) | ErrorKind::InvalidKeyFormat => AuthError::UnknownKey,
        _ => AuthError::Malformed,
    }
}

/// The token from `Authorization: Bearer <token>` (scheme matched case-insensitively).
pub fn bearer_token(headers: &http::HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;

    const ISS: &str = "https://auth.test/";
    const AUD: &str = "naksha-api";

    struct Signer {
        key: EncodingKey,
        kid: String,
    }

    impl Signer {
        fn generate(kid: &str) -> Self {
            let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new()).unwrap();
            Self { key: EncodingKey::from_ec_der(pkcs8.as_ref()), kid: kid.into() }
        }

        fn jwk(&self) -> Value {
            let mut jwk = Jwk::from_encoding_key(&self.key, Algorithm::ES256).unwrap();
            jwk.common.key_id = Some(self.kid.clone());
            serde_json::to_value(jwk).unwrap()
        }

        fn sign(&self, claims: &Value) -> String {
            let mut header = Header::new(Algorithm::ES256);
            header.kid = Some(self.kid.clone());
            jsonwebtoken::encode(&header, claims, &self.key).unwrap()
        }
    }

    fn now() -> i64 {
        jsonwebtoken::get_current_timestamp() as i64
    }

    fn claims(tenant: &str, roles: &[&str]) -> Value {
        json!({"iss": ISS, "aud": AUD, "sub": "alice", "tenant": tenant, "roles": roles, "exp": now() + 600, "iat": now()})
    }

    fn verifier_trusting(signers: &[&Signer]) -> Verifier {
        let jwks = json!({"keys": signers.iter().map(|s| s.jwk()).collect::<Vec<_>>()});
        Verifier::new(AuthConfig {
            issuer: ISS.into(),
            audience: AUD.into(),
            algorithm: Algorithm::ES256,
            jwks: JwksSource::Inline(jwks.to_string()),
            tenant_claim: "tenant".into(),
            roles_claim: "roles".into(),
            jwks_ttl: DEFAULT_JWKS_TTL,
            max_lifetime: DEFAULT_MAX_LIFETIME,
            limits: None,
        })
    }

    fn b64(v: &Value) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    }

    #[tokio::test]
    async fn accepts_a_valid_token_and_builds_the_principal() {
        let s = Signer::generate("k1");
        let v = verifier_trusting(&[&s]);
        let p = v.verify(&s.sign(&claims("acme", &["operator", "approver", "unknown-role"]))).await.unwrap();
        assert_eq!(p.tenant.as_str(), "acme");
        assert_eq!(p.subject, "alice");
        assert!(p.has(Role::Operator) && p.has(Role::Approver) && !p.has(Role::Admin));
    }

    #[tokio::test]
    async fn rejects_token_signed_by_another_key_even_with_a_trusted_kid() {
        let trusted = Signer::generate("k1");
        let attacker = Signer { kid: "k1".into(), ..Signer::generate("k1") };
        let v = verifier_trusting(&[&trusted]);
        assert_eq!(v.verify(&attacker.sign(&claims("acme", &["admin"]))).await, Err(AuthError::BadSignature));
    }

    #[tokio::test]
    async fn every_authenticated_request_counts_against_its_tenants_requests_per_second() {
        let s = Signer::generate("k1");
        let limits =
            crate::limits::Limits::memory(crate::limits::TenantLimits { requests_per_second: 2, ..Default::default() });
        let v = verifier_trusting(&[&s]).with_limits(limits);
        let headers = |tenant: &str| {
            let mut h = http::HeaderMap::new();
            h.insert("authorization", format!("Bearer {}", s.sign(&claims(tenant, &["operator"]))).parse().unwrap());
            h
        };
        let mut statuses = Vec::new();
        for _ in 0..6 {
            statuses.push(v.authenticate(&headers("acme")).await.map(|_| 200).unwrap_or_else(|p| p.status));
        }
        assert!(statuses.contains(&429), "{statuses:?}");
        assert!(statuses.iter().filter(|s| **s == 200).count() <= 4, "at most 2 per second: {statuses:?}");
        assert!(v.authenticate(&headers("other")).await.is_ok(), "another tenant has its own budget");
        // A token that does not verify is refused before it can spend anyone's budget.
        let mut bad = http::HeaderMap::new();
        bad.insert("authorization", "Bearer nope".parse().unwrap());
        assert_eq!(v.authenticate(&bad).await.unwrap_err().status, 401);
    }

    #[tokio::test]
    async fn rejects_unknown_kid() {
        let trusted = Signer::generate("k1");
        let other = Signer::generate("k2");
        let v = verifier_trusting(&[&trusted]);
        assert_eq!(v.verify(&other.sign(&claims("acme", &[]))).await, Err(AuthError::UnknownKey));
    }

    #[tokio::test]
    async fn rejects_alg_none_and_hs256_by_name() {
        let s = Signer::generate("k1");
        let v = verifier_trusting(&[&s]);
        let body = b64(&claims("acme", &["admin"]));
        let none = format!("{}.{}.", b64(&json!({"alg": "none", "typ": "JWT"})), body);
        assert_eq!(v.verify(&none).await, Err(AuthError::AlgorithmNotAllowed("none".into())));
        let hs = format!("{}.{}.c2ln", b64(&json!({"alg": "HS256", "kid": "k1"})), body);
        assert_eq!(v.verify(&hs).await, Err(AuthError::AlgorithmNotAllowed("HS256".into())));
    }

    #[tokio::test]
    async fn rejects_expired_wrong_issuer_wrong_audience() {
        let s = Signer::generate("k1");
        let v = verifier_trusting(&[&s]);
        let mut c = claims("acme", &[]);
        c["exp"] = json!(now() - 3600);
        assert_eq!(v.verify(&s.sign(&c)).await, Err(AuthError::Expired));
        let mut c = claims("acme", &[]);
        c["iss"] = json!("https://evil.test/");
        assert_eq!(v.verify(&s.sign(&c)).await, Err(AuthError::WrongIssuer));
        let mut c = claims("acme", &[]);
        c["aud"] = json!("someone-else");
        assert_eq!(v.verify(&s.sign(&c)).await, Err(AuthError::WrongAudience));
    }

    #[tokio::test]
    async fn rejects_a_token_issued_in_the_future_or_living_too_long() {
        let s = Signer::generate("k1");
        let v = verifier_trusting(&[&s]);
        let mut c = claims("acme", &[]);
        c["iat"] = json!(now() + 3600);
        c["exp"] = json!(now() + 7200);
        assert_eq!(v.verify(&s.sign(&c)).await, Err(AuthError::IssuedInFuture));
        let mut c = claims("acme", &[]);
        c["exp"] = json!(now() + 2 * DEFAULT_MAX_LIFETIME.as_secs() as i64);
        assert_eq!(v.verify(&s.sign(&c)).await, Err(AuthError::LifetimeTooLong));
        let mut c = claims("acme", &[]);
        c.as_object_mut().unwrap().remove("iat");
        c["exp"] = json!(now() + 2 * DEFAULT_MAX_LIFETIME.as_secs() as i64);
        assert_eq!(v.verify(&s.sign(&c)).await, Err(AuthError::LifetimeTooLong), "without iat, from now");
        let mut c = claims("acme", &[]);
        c["iat"] = json!("yesterday");
        assert_eq!(v.verify(&s.sign(&c)).await, Err(AuthError::InvalidClaim("iat".into())));
        assert!(v.verify(&s.sign(&claims("acme", &[]))).await.is_ok());
    }

    /// A JWKS endpoint whose document can be changed, serving `Cache-Control: max-age=1`.
    async fn jwks_server(document: std::sync::Arc<std::sync::Mutex<String>>) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
        tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else { return };
                let document = std::sync::Arc::clone(&document);
                tokio::spawn(async move {
                    let mut buf = [0u8; 2048];
                    let _ = socket.read(&mut buf).await;
                    // Slow enough that concurrent refreshes overlap.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    let body = document.lock().unwrap().clone();
                    let reply = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncache-control: public, max-age=1\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = socket.write_all(reply.as_bytes()).await;
                });
            }
        });
        url
    }

    #[tokio::test]
    async fn a_key_removed_from_the_jwks_stops_being_trusted_and_refreshes_are_merged() {
        let (k1, k2) = (Signer::generate("k1"), Signer::generate("k2"));
        let document = std::sync::Arc::new(std::sync::Mutex::new(json!({"keys": [k1.jwk(), k2.jwk()]}).to_string()));
        let url = jwks_server(std::sync::Arc::clone(&document)).await;
        let v = std::sync::Arc::new(Verifier::new(AuthConfig {
            issuer: ISS.into(),
            audience: AUD.into(),
            algorithm: Algorithm::ES256,
            jwks: JwksSource::Url(url),
            tenant_claim: "tenant".into(),
            roles_claim: "roles".into(),
            jwks_ttl: Duration::from_secs(3600),
            max_lifetime: DEFAULT_MAX_LIFETIME,
            limits: None,
        }));
        let t1 = k1.sign(&claims("acme", &[]));
        assert!(v.verify(&t1).await.is_ok());
        assert_eq!(v.fetch_count().await, 1);
        // k1 is withdrawn; once the JWKS's max-age (1 s) has passed, k1 is no longer trusted.
        *document.lock().unwrap() = json!({"keys": [k2.jwk()]}).to_string();
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let all = futures::future::join_all((0..20).map(|_| {
            let (v, t1) = (std::sync::Arc::clone(&v), t1.clone());
            async move { v.verify(&t1).await }
        }))
        .await;
        assert!(all.iter().all(|r| r.is_err()), "{all:?}");
        assert_eq!(v.fetch_count().await, 2, "twenty concurrent verifications, one fetch");
        assert!(v.verify(&k2.sign(&claims("acme", &[]))).await.is_ok());
    }

    #[test]
    fn max_age_is_read_from_cache_control() {
        assert_eq!(max_age("public, max-age=300"), Some(300));
        assert_eq!(max_age("max-age=\"60\", must-revalidate"), Some(60));
        assert_eq!(max_age("no-cache"), None);
    }

    #[tokio::test]
    async fn rejects_missing_or_unsafe_tenant() {
        let s = Signer::generate("k1");
        let v = verifier_trusting(&[&s]);
        let mut c = claims("acme", &[]);
        c.as_object_mut().unwrap().remove("tenant");
        assert_eq!(v.verify(&s.sign(&c)).await, Err(AuthError::MissingClaim("tenant".into())));
        for bad in ["acme#other", "ACME", "", "a/b", "-x"] {
            let c = claims(bad, &[]);
            assert_eq!(v.verify(&s.sign(&c)).await, Err(AuthError::InvalidClaim("tenant".into())), "{bad}");
        }
    }

    #[tokio::test]
    async fn rejects_garbage() {
        let s = Signer::generate("k1");
        let v = verifier_trusting(&[&s]);
        for junk in ["", "abc", "a.b.c", "a.b.c.d", "🙂.🙂.🙂"] {
            assert_eq!(v.verify(junk).await, Err(AuthError::Malformed), "{junk:?}");
        }
    }

    #[tokio::test]
    async fn missing_jwks_is_an_outage_not_a_client_error() {
        let s = Signer::generate("k1");
        let v = Verifier::new(AuthConfig {
            issuer: ISS.into(),
            audience: AUD.into(),
            algorithm: Algorithm::ES256,
            jwks: JwksSource::Url("http://127.0.0.1:9/jwks.json".into()),
            tenant_claim: "tenant".into(),
            roles_claim: "roles".into(),
            jwks_ttl: DEFAULT_JWKS_TTL,
            max_lifetime: DEFAULT_MAX_LIFETIME,
            limits: None,
        });
        let err = v.verify(&s.sign(&claims("acme", &[]))).await.unwrap_err();
        assert!(matches!(err, AuthError::KeysUnavailable(_)));
        assert_eq!(Problem::from(err).status, 503);
    }

    /// The RSAPrivateKey inside a PKCS#8 PrivateKeyInfo (what jsonwebtoken's aws-lc backend reads).
    fn pkcs1_from_pkcs8(der: &[u8]) -> Vec<u8> {
        fn tlv(b: &[u8]) -> (&[u8], &[u8]) {
            let (len, head) = if b[1] < 0x80 {
                (b[1] as usize, 2)
            } else {
                let n = (b[1] & 0x7f) as usize;
                (b[2..2 + n].iter().fold(0usize, |acc, x| acc << 8 | *x as usize), 2 + n)
            };
            (&b[head..head + len], &b[head + len..])
        }
        let (info, _) = tlv(der);
        let (_version, rest) = tlv(info);
        let rest = &info[info.len() - rest.len()..];
        let (_, rest) = tlv(rest); // algorithm identifier
        let (key, _) = tlv(rest);
        key.to_vec()
    }

    #[tokio::test]
    async fn rs256_works_when_pinned_and_es256_is_then_refused() {
        use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
        let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let pkcs8 = AsDer::<Pkcs8V1Der>::as_der(&pair).unwrap();
        let key = EncodingKey::from_rsa_der(&pkcs1_from_pkcs8(pkcs8.as_ref()));
        let mut jwk = Jwk::from_encoding_key(&key, Algorithm::RS256).unwrap();
        jwk.common.key_id = Some("rsa-1".into());
        let v = Verifier::new(AuthConfig {
            issuer: ISS.into(),
            audience: AUD.into(),
            algorithm: Algorithm::RS256,
            jwks: JwksSource::Inline(json!({"keys": [jwk]}).to_string()),
            tenant_claim: "custom:tenant".into(),
            roles_claim: "cognito:groups".into(),
            jwks_ttl: DEFAULT_JWKS_TTL,
            max_lifetime: DEFAULT_MAX_LIFETIME,
            limits: None,
        });
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some("rsa-1".into());
        let claims = json!({"iss": ISS, "aud": AUD, "sub": "u1", "custom:tenant": "acme", "cognito:groups": ["admin"], "exp": now() + 60});
        let p = v.verify(&jsonwebtoken::encode(&header, &claims, &key).unwrap()).await.unwrap();
        assert_eq!((p.tenant.as_str(), p.has(Role::Admin)), ("acme", true));
        let es = Signer::generate("rsa-1");
        assert_eq!(v.verify(&es.sign(&claims)).await, Err(AuthError::AlgorithmNotAllowed("ES256".into())));
    }

    #[test]
    fn bearer_scheme_is_case_insensitive_and_required() {
        let mut h = http::HeaderMap::new();
        h.insert("authorization", "bearer abc".parse().unwrap());
        assert_eq!(bearer_token(&h), Some("abc"));
        h.insert("authorization", "Basic abc".parse().unwrap());
        assert_eq!(bearer_token(&h), None);
        h.insert("authorization", "Bearer ".parse().unwrap());
        assert_eq!(bearer_token(&h), None);
    }

    #[test]
    fn role_checks_answer_403() {
        let p = Principal {
            tenant: TenantId::from_record("acme").unwrap(),
            subject: "bob".into(),
            roles: [Role::Operator].into(),
        };
        assert!(p.require(Role::Operator).is_ok());
        assert_eq!(Problem::from(p.require(Role::Approver).unwrap_err()).status, 403);
        assert!(p.require_any(&[Role::Admin, Role::Operator]).is_ok());
    }
}
