//! The DynamoDB, Kinesis and HTTP adapters of the orchestrator's ports, one file per table or
//! stream; each opens with its key table. Every tenant-owned key starts with the tenant (P-5).
//!
//! | file | what | written by |
//! |---|---|---|
//! | [`chaos`] | `naksha.chaos`: runs, target locks, a tenant's specs | the orchestrator |
//! | [`views`] | `naksha.sim` (the world: faults in, rollbacks out — shared, conditional writes), `naksha.runs` (the agent's progress, read), `naksha.aggregates` (read), the kill switch (read) | the agent, insight-stream |
//! | [`queue`] | Kinesis `naksha.chaos-runs`, and the HTTP probe | the orchestrator |

pub mod chaos;
pub mod queue;
pub mod views;

pub use chaos::DynamoChaos;
pub use queue::{KinesisChaosQueue, ReqwestHttp};
pub use views::{DynamoAgentRuns, DynamoTelemetry, DynamoWorld, Views};
