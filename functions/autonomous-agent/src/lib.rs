//! D.2 autonomous-agent: signed playbooks (WPKs), a graph runtime that observes, decides and
//! acts, and the safety gates around it.
//!
//! - [`wpk`]: the playbook format (naksha-contracts' `wpk`, shared with the hub and the edge
//!   node) and the decide step's ranking.
//! - [`spec`]: `agentspec.yaml` — nodes and conditional edges, checked at load.
//! - [`state`]: the typed state a run carries; [`agent`]: the nodes and the step loop.
//! - [`act`]: the `sim` and `k8s` adapters (naksha-act); [`observe`]: the `telemetry` and `prometheus` plugins.
//! - [`ports`]: the traits the agent needs; [`store`]: DynamoDB/Kinesis; [`memory`]: for tests.
//! - [`api`] and [`worker`]: the HTTP routes and the run worker; [`wiring`]: each Lambda's
//!   state, built once per cold start; `src/bin/*.rs` runs them.
//!
//! The audit chain's records are naksha-contracts' `audit` (the policy learner reads them too).

pub mod agent;
pub mod api;
pub mod fuzzing;
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

/// The act adapters (naksha-act, shared with the edge node).
pub use naksha_act as act;

#[cfg(test)]
mod agent_tests;
