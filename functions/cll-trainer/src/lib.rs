//! D.3 cll-trainer: learns detector parameters per series and a remediation model from the D.1
//! aggregates and the agent's run outcomes, judges each version against the champion on
//! held-back recent data, and registers it signed (see docs/training.md).
//!
//! - [`train`]: fitting, evaluation and the promotion gate — plain functions, no AWS.
//! - [`jobs`]: training jobs and their progress.
//! - [`worker`]: running a job (read → train → judge → sign → register → promote) and the schedule.
//! - [`ports`]: the traits the trainer needs; [`store`]: DynamoDB/Kinesis; [`memory`]: for tests.
//! - [`api`]: the HTTP routes; [`wiring`]: each Lambda's state, built once per cold start.

pub mod api;
pub mod jobs;
pub mod memory;
pub mod ports;
pub mod store;
pub mod train;
pub mod wiring;
pub mod worker;
