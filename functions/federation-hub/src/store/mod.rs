//! The DynamoDB and KMS adapters of the hub's ports, one file per table; each opens with its key
//! table. Every tenant-owned key starts with the tenant (P-5).
//!
//! | file | what | written by |
//! |---|---|---|
//! | [`federation`] | `naksha.federation`: nodes, triggers, executions, deliveries, refusals, announced keys | the hub |
//! | [`wpks`] | `naksha.wpks`, read only: the signed WPK versions a trigger sends | the agent |
//! | [`halt`] | `naksha.agent-state`, read only: the tenant's kill switch | the agent |
//! | [`keys`] | the trigger key's and WPK keys' public halves (KMS), announced keys (`naksha.federation`) | the hub |

pub mod federation;
pub mod halt;
pub mod keys;
pub mod wpks;

pub use federation::DynamoFleet;
pub use halt::DynamoHalt;
pub use wpks::DynamoWpks;

use naksha_core::aws::describe_error;

use crate::ports::StoreError;

fn failed<E>(e: aws_sdk_dynamodb::error::SdkError<E>) -> StoreError
where
    E: std::error::Error + aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    StoreError(describe_error(&e))
}
