//! Configuration from the environment (all missing variables reported at once) and clients.

use naksha_core::aws::Aws;
use naksha_core::config::ConfigReader;
use naksha_core::model::ModelRegistry;
use naksha_core::signing::{TrustedKeys, trusted_key_ids};

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
