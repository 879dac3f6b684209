//! Kinesis `naksha.chaos-runs` (partition key `<tenant>/<run id>`: one run's steps in order), and
//! the HTTP client of the steady-state HTTP probes.

use aws_sdk_kinesis::primitives::Blob;
use naksha_core::aws::describe_error;

use crate::ports::{ChaosMessage, Http, Queue, StoreError};

#[derive(Debug, Clone)]
pub struct KinesisChaosQueue {
    kinesis: aws_sdk_kinesis::Client,
    stream: String,
}

impl KinesisChaosQueue {
    pub fn new(kinesis: aws_sdk_kinesis::Client, stream: impl Into<String>) -> Self {
        Self { kinesis, stream: stream.into() }
    }
}

impl Queue for KinesisChaosQueue {
    async fn send(&self, msg: &ChaosMessage) -> Result<(), StoreError> {
        let data = serde_json::to_vec(msg).map_err(|e| StoreError(e.to_string()))?;
        self.kinesis
            .put_record()
            .stream_name(&self.stream)
            .partition_key(format!("{}/{}", msg.tenant, msg.run_id).chars().take(256).collect::<String>())
            .data(Blob::new(data))
            .send()
            .await
            .map_err(|e| StoreError(describe_error(&e)))?;
        Ok(())
    }
}

/// HTTP GETs with a short timeout and no redirects (a probe checks one URL, not where it leads).
#[derive(Debug, Clone)]
pub struct ReqwestHttp {
    http: reqwest::Client,
}

impl ReqwestHttp {
    pub fn new() -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(3))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self { http })
    }
}

impl Http for ReqwestHttp {
    async fn status(&self, url: &str) -> Result<u16, String> {
        self.http.get(url).send().await.map(|r| r.status().as_u16()).map_err(|e| e.to_string())
    }
}
