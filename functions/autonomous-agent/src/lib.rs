//! D.2 autonomous-agent: signed playbooks (WPKs), a graph runtime that observes, decides and
//! acts, and the safety gates around it.
//!
//! - [`wpk`]: the playbook format, validation, canonical bytes, `SignedWpk` (verified before use).
//! - [`spec`]: `agentspec.yaml` — nodes and conditional edges, checked at load.
//! - [`state`]: the typed state a run carries; [`agent`]: the nodes and the step loop.
//! - [`act`]: the `sim` and `k8s` adapters; [`observe`]: the `telemetry` and `prometheus` plugins.
//! - [`audit`]: the hash-chained audit log.
//! - [`ports`]: the traits the agent needs; [`store`]: DynamoDB/Kinesis; [`memory`]: for tests.
//! - [`api`] and [`worker`]: the HTTP routes and the run worker, wired in `src/bin/*.rs`.

pub mod act;
pub mod agent;
pub mod api;
pub mod audit;
pub mod memory;
pub mod observe;
pub mod ports;
pub mod samples;
pub mod spec;
pub mod state;
pub mod store;
pub mod wiring;
pub mod worker;
pub mod wpk;

#[cfg(test)]
mod agent_tests;
