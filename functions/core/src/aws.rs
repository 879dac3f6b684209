//! The one AWS client factory.
//!
//! Loads the SDK configuration once per cold start. The SDK honours `AWS_ENDPOINT_URL`
//! (and the per-service `AWS_ENDPOINT_URL_<SERVICE>`), which is how the same binary talks to
//! AWS, LocalStack or moto; nothing else in the product knows where it runs.

use std::time::Duration;

use aws_config::{BehaviorVersion, SdkConfig, retry::RetryConfig, timeout::TimeoutConfig};

/// Clients built from one shared configuration.
#[derive(Debug, Clone)]
pub struct Aws {
    config: SdkConfig,
}

impl Aws {
    /// Standard retries (3 attempts) and bounded timeouts, so a stuck dependency fails the
    /// request well inside the Lambda timeout instead of hanging it.
    pub async fn load() -> Self {
        let config = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(RetryConfig::standard().with_max_attempts(3))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(3))
                    .operation_attempt_timeout(Duration::from_secs(5))
                    .operation_timeout(Duration::from_secs(12))
                    .build(),
            )
            .load()
            .await;
        Self { config }
    }

    /// Clients from an existing configuration (tests and tools that point at the emulator).
    pub fn from_config(config: SdkConfig) -> Self {
        Self { config }
    }

    pub fn sdk_config(&self) -> &SdkConfig {
        &self.config
    }

    pub fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::new(&self.config)
    }

    pub fn kinesis(&self) -> aws_sdk_kinesis::Client {
        aws_sdk_kinesis::Client::new(&self.config)
    }

    pub fn kms(&self) -> aws_sdk_kms::Client {
        aws_sdk_kms::Client::new(&self.config)
    }
}

/// Render an SDK error with its service message, without the request details.
pub fn describe_error<E>(err: &aws_sdk_dynamodb::error::SdkError<E>) -> String
where
    E: std::error::Error + aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    use aws_sdk_dynamodb::error::SdkError;
    match err {
        SdkError::ServiceError(e) => {
            let inner = e.err();
            match (inner.code(), inner.message()) {
                (Some(code), Some(msg)) => format!("{code}: {msg}"),
                (Some(code), None) => code.to_owned(),
                // An answer the SDK could not parse: the status code at least says who failed.
                _ => format!("{} (HTTP {})", inner, e.raw().status().as_u16()),
            }
        }
        SdkError::TimeoutError(_) => "timed out".to_owned(),
        SdkError::DispatchFailure(e) => {
            if e.is_io() {
                "unreachable (connection failed)".to_owned()
            } else if e.is_timeout() {
                "timed out connecting".to_owned()
            } else {
                "dispatch failure".to_owned()
            }
        }
        other => other.to_string(),
    }
}
