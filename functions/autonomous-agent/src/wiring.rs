//! What every agent Lambda reads and builds at cold start, in one place.

use std::future::Future;
use std::sync::Arc;

use lambda_http::{Body, Request, Response};
use naksha_core::auth::{AuthConfig, Verifier};
use naksha_core::aws::Aws;
use naksha_core::config::ConfigReader;
use naksha_core::{Problem, http, logging};

use crate::store::{DynamoAgentStore, KinesisRunQueue, Tables};

/// Configuration shared by the agent's HTTP functions: auth and table names.
#[derive(Debug)]
pub struct Boot {
    auth: AuthConfig,
    tables: Tables,
}

/// Clients built once per cold start.
#[derive(Debug)]
pub struct Ctx {
    pub aws: Aws,
    pub verifier: Verifier,
    pub store: DynamoAgentStore,
}

impl Boot {
    pub fn read(cfg: &mut ConfigReader) -> Self {
        Self { auth: AuthConfig::from_config(cfg), tables: Tables::from_config(cfg) }
    }

    pub async fn start(self) -> Ctx {
        let aws = Aws::load().await;
        let verifier = Verifier::new(self.auth);
        verifier.warm().await;
        let store = DynamoAgentStore::new(aws.dynamodb(), self.tables);
        Ctx { aws, verifier, store }
    }
}

impl Ctx {
    pub fn queue(&self, stream: &str) -> KinesisRunQueue {
        KinesisRunQueue::new(self.aws.kinesis(), stream)
    }
}

pub use naksha_core::signing::trusted_key_ids;

/// The whole `main` of an agent route that needs only the verifier and the store.
pub async fn serve_route<H, Fut>(handler: H) -> Result<(), lambda_http::Error>
where
    H: Fn(Arc<Ctx>, Request) -> Fut,
    Fut: Future<Output = Result<Response<Body>, Problem>> + Send,
{
    logging::init();
    let mut cfg = ConfigReader::from_env();
    let boot = Boot::read(&mut cfg);
    cfg.finish()?;
    http::serve_with(boot.start().await, handler).await
}
