//! The one bootstrap every Lambda uses, so a `bin/` is wiring only.
//!
//! A function's state is a named struct implementing [`Function`]: `config` reads every setting
//! it needs (all problems are reported together, before anything is built), `build` makes the
//! clients once per cold start. [`http`] and [`events`] then run the Lambda loop:
//!
//! ```text
//! #[tokio::main]
//! async fn main() -> Result<(), BootError> {
//!     boot::http(|app: Arc<IngestApp>, req| async move { api::ingest(&app.verifier, &app.ingest, req).await }).await
//! }
//! ```
//!
//! Cold start, in order: JSON logging → configuration (from the environment) → AWS clients
//! (honouring `AWS_ENDPOINT_URL`) → the function's own clients, keys and JWKS.

use std::future::Future;
use std::sync::Arc;

use lambda_http::{Body, Request, Response};
use lambda_runtime::{LambdaEvent, service_fn};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::auth::{AuthConfig, Verifier};
use crate::aws::Aws;
use crate::config::{ConfigReader, Platform};
use crate::idempotency::Idempotency;
use crate::models::{ChampionCache, DEFAULT_CACHE_TTL, ModelReader};
use crate::privacy::PiiKey;
use crate::problem::Problem;
use crate::signing::{KmsSigner, TrustedKeys, load_trusted_keys};
use crate::{http, logging};

/// Why a function could not start (or its loop stopped).
pub type BootError = lambda_runtime::Error;

/// What every function has once its configuration has been read.
#[derive(Debug)]
pub struct Cold {
    pub aws: Aws,
    pub platform: Platform,
}

impl Cold {
    /// The JWT verifier, with the JWKS already fetched (a failure is retried on first use).
    pub async fn verifier(&self, auth: AuthConfig) -> Verifier {
        let limits = auth.limits.clone();
        let mut verifier = Verifier::new(auth);
        if let Some(config) = limits {
            verifier = verifier.with_limits(crate::limits::Limits::dynamo(self.aws.dynamodb(), config));
        }
        verifier.warm().await;
        verifier
    }

    /// The public keys of the trusted signing keys (one KMS call per key).
    pub async fn trusted_keys(&self, ids: &[String]) -> Result<TrustedKeys, BootError> {
        Ok(load_trusted_keys(&self.aws.kms(), ids).await?)
    }

    /// The pseudonymisation key (one KMS call).
    pub async fn pii_key(&self, key_id: &str) -> Result<PiiKey, BootError> {
        Ok(PiiKey::from_kms(&self.aws.kms(), key_id).await?)
    }

    pub fn signer(&self, key_id: &str) -> KmsSigner {
        KmsSigner::new(self.aws.kms(), key_id)
    }

    /// Each tenant's champion model, verified with `keys` before use.
    pub fn champions(&self, models_table: &str, keys: TrustedKeys) -> ChampionCache {
        ChampionCache::new(ModelReader::new(self.aws.dynamodb(), models_table), keys, DEFAULT_CACHE_TTL)
    }
}

/// A function's state, built once per cold start.
pub trait Function: Sized + Send + Sync + 'static {
    /// The settings `config` reads.
    type Config: Send;

    /// Read every setting; missing or invalid ones are recorded on `r` and reported together.
    fn config(r: &mut ConfigReader) -> Self::Config;

    /// Build clients, load keys.
    fn build(config: Self::Config, cold: &Cold) -> impl Future<Output = Result<Self, BootError>> + Send;
}

/// Cold start: logging, configuration (every problem at once), AWS, the function's state.
pub async fn start<F: Function>() -> Result<F, BootError> {
    logging::init();
    let mut r = ConfigReader::from_env();
    let platform = Platform::from_config(&mut r);
    let config = F::config(&mut r);
    r.finish()?;
    let cold = Cold { aws: Aws::load().await, platform };
    F::build(config, &cold).await
}

/// Run an HTTP function (API Gateway HTTP API events): `handler` answers each request with a
/// response or a [`Problem`]. Writes carrying `Idempotency-Key` are answered once (see
/// [`crate::idempotency`]) when the function has a limits table.
pub async fn http<F, H, Fut>(handler: H) -> Result<(), BootError>
where
    F: Function,
    H: Fn(Arc<F>, Request) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Response<Body>, Problem>> + Send,
{
    logging::init();
    let mut r = ConfigReader::from_env();
    let platform = Platform::from_config(&mut r);
    let config = F::config(&mut r);
    // Idempotency records share the limits table, which every API function may update.
    let keyed = r.optional("LIMITS_TABLE");
    r.finish()?;
    let cold = Cold { aws: Aws::load().await, platform };
    let idempotency = keyed.map(|table| Arc::new(Idempotency::dynamo(cold.aws.dynamodb(), table)));
    let app = F::build(config, &cold).await?;
    http::serve_keyed_with(app, idempotency, handler).await
}

/// Run an event function (a stream consumer, a schedule): `handler` gets each event's payload.
pub async fn events<F, E, R, H, Fut>(handler: H) -> Result<(), BootError>
where
    F: Function,
    E: DeserializeOwned + Send + 'static,
    R: Serialize + Send,
    H: Fn(Arc<F>, E) -> Fut,
    Fut: Future<Output = Result<R, BootError>> + Send,
{
    let app = Arc::new(start::<F>().await?);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<E>| {
        // P-4: work inside the invocation is recorded under its X-Ray segment (crate::xray).
        let xray = event.context.xray_trace_id.clone();
        // Boxed: the scope around it would otherwise nest the handlers' deep future types further.
        let work = Box::pin(handler(Arc::clone(&app), event.payload));
        async move { crate::xray::in_invocation(xray.as_deref(), work).await }
    }))
    .await
}
