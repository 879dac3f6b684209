//! The AWS adapters of the trainer's ports, one file per table or stream; each opens with its
//! key table.
//!
//! | file | what | written by |
//! |---|---|---|
//! | [`training_source`] | `naksha.series`, `naksha.aggregates` (insight-stream) and `naksha.runs` (the agent), read only | others |
//! | [`jobs`] | `naksha.jobs` | the trainer |
//! | [`jobs_stream`] | Kinesis `naksha.jobs` | the trainer |
//! | [`model_versions`] | `naksha.model_versions` | the trainer only (others read it through naksha-core's `models`) |

pub mod jobs;
pub mod jobs_stream;
pub mod model_versions;
pub mod training_source;

pub use jobs::DynamoJobs;
pub use jobs_stream::KinesisJobQueue;
pub use model_versions::DynamoRegistry;
pub use training_source::DynamoTrainingSource;

use naksha_core::aws::describe_error;

use crate::ports::StoreError;

fn failed<E>(e: aws_sdk_dynamodb::error::SdkError<E>) -> StoreError
where
    E: std::error::Error + aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    StoreError(describe_error(&e))
}
