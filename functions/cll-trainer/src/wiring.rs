//! Configuration from the environment (all missing variables reported at once) and clients.

use std::future::Future;
use std::sync::Arc;

use lambda_http::{Body, Request, Response};
use naksha_core::auth::{AuthConfig, Verifier};
use naksha_core::aws::Aws;
use naksha_core::config::ConfigReader;
use naksha_core::model::ModelRegistry;
use naksha_core::signing::{TrustedKeys, trusted_key_ids};
use naksha_core::{Problem, http, logging};

use crate::store::{JobQueue, Jobs};

/// `JOBS_TABLE`.
pub fn jobs(cfg: &mut ConfigReader) -> impl FnOnce(&Aws) -> Jobs + use<> {
    let table = cfg.required("JOBS_TABLE");
    move |aws| Jobs::new(aws.dynamodb(), table)
}

/// `JOBS_STREAM`.
pub fn queue(cfg: &mut ConfigReader) -> impl FnOnce(&Aws) -> JobQueue + use<> {
    let stream = cfg.required("JOBS_STREAM");
    move |aws| JobQueue::new(aws.kinesis(), stream)
}

/// `MODELS_TABLE`.
pub fn registry(cfg: &mut ConfigReader) -> impl FnOnce(&Aws) -> ModelRegistry + use<> {
    let table = cfg.required("MODELS_TABLE");
    move |aws| ModelRegistry::new(aws.dynamodb(), table)
}

/// The public keys models are verified with (`TRUSTED_KEY_IDS`, else `SIGNING_KEY_ID`).
pub fn keys(cfg: &mut ConfigReader) -> Vec<String> {
    trusted_key_ids(cfg)
}

pub async fn load_keys(aws: &Aws, ids: &[String]) -> Result<TrustedKeys, lambda_runtime::Error> {
    Ok(TrustedKeys::load(&aws.kms(), ids).await?)
}

/// What the registry routes read: the caller's token, the registry, the keys models verify with.
#[derive(Debug)]
pub struct RegistryApp {
    pub verifier: Verifier,
    pub registry: ModelRegistry,
    pub keys: TrustedKeys,
}

/// The whole `main` of a registry route (`GET /models`, `GET /models/{id}`).
pub async fn serve_registry_route<H, Fut>(handler: H) -> Result<(), lambda_runtime::Error>
where
    H: Fn(Arc<RegistryApp>, Request) -> Fut,
    Fut: Future<Output = Result<Response<Body>, Problem>> + Send,
{
    logging::init();
    let mut cfg = ConfigReader::from_env();
    let auth = AuthConfig::from_config(&mut cfg);
    let registry = registry(&mut cfg);
    let key_ids = keys(&mut cfg);
    cfg.finish()?;
    let aws = Aws::load().await;
    let keys = load_keys(&aws, &key_ids).await?;
    let verifier = Verifier::new(auth);
    verifier.warm().await;
    http::serve_with(RegistryApp { verifier, registry: registry(&aws), keys }, handler).await
}
