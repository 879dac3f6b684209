//! D.5 chaos-orchestrator: inject a fault into the (simulated) world, let the system notice and
//! heal it by itself, check the steady state, always roll back, and measure how long each part
//! took (docs/chaos.md).
//!
//! - [`specs`]: experiments (fault, steady state, deadline, blast radius, rollbacks); [`import`]:
//!   Chaos Toolkit experiments and AWS FIS templates.
//! - [`run`]: a run's stages, timeline, verdict and figures; [`engine`]: starting a run and
//!   advancing it one step per invocation.
//! - [`api`]: the HTTP routes; [`worker`]: the run worker; [`wiring`]: each Lambda's state.
//! - [`ports`]: the traits it needs; [`store`]: DynamoDB, Kinesis, HTTP; [`memory`]: for tests.

pub mod api;
pub mod engine;
pub mod gameday;
pub mod import;
pub mod memory;
pub mod ports;
pub mod run;
pub mod scenario;
pub mod specs;
pub mod store;
pub mod wiring;
pub mod worker;
