//! naksha-core: the platform every Naksha Lambda stands on. Domain records and signature
//! verification are in naksha-contracts; this crate adds what needs AWS, Lambda or HTTP.
//!
//! - [`boot`]: the one bootstrap (logging → config → AWS → the function's state → the loop).
//! - [`config`]: settings read from the environment once, every problem reported together.
//! - [`aws`]: the one AWS client factory (honours `AWS_ENDPOINT_URL`: AWS, LocalStack or moto).
//! - [`auth`]: JWT verification against a JWKS, producing a verified `Principal`.
//! - [`problem`] and [`http`]: RFC 9457 errors, body limits, JSON responses, one log line per request.
//! - [`ddb`]: DynamoDB helpers (attribute values, typed items, BatchGetItem, condition failures).
//! - [`signing`]: KMS signing and loading the trusted public keys (P-2).
//! - [`models`]: the read-only view of the trainer's model registry (verified champions).
//! - [`privacy`]: keyed pseudonyms for PII (P-1), keyed from KMS once per cold start.
//! - [`metrics`]: fleet-wide counters kept in DynamoDB and rendered as Prometheus text (P-4).
//! - [`logging`]: JSON logs carrying the Lambda request id.
//! - [`sim`]: the simulation mode's world (`naksha.sim`): the agent acts on it, chaos injects faults
//!   into it, the exporter reports on it.
//! - [`views`]: read-only views of tables more than one service reads (aggregates by source, the
//!   kill switch).
//! - [`wpks`]: the item format of the WPK registry (the agent writes it, the federation hub reads it).

pub mod auth;
pub mod aws;
pub mod boot;
pub mod config;
pub mod crash;
pub mod ddb;
pub mod fuzzing;
pub mod http;
pub mod idempotency;
pub mod json_text;
pub mod limits;
pub mod logging;
pub mod metrics;
pub mod models;
pub mod privacy;
pub mod problem;
pub mod signing;
pub mod sim;
pub mod views;
pub mod wpks;
pub mod xray;

pub use naksha_contracts as contracts;
pub use problem::Problem;

/// A table, stream or key could not be used (or an item did not have the shape its type needs);
/// a retry may succeed. Services whose ports need no finer distinction use it as their own.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct StoreError(pub String);

/// The allocator every Naksha Lambda (and benchmark) uses: mimalloc, which makes the many small
/// allocations of JSON handling markedly cheaper than glibc's malloc. Each binary installs it with
/// `#[global_allocator] static ALLOC: naksha_core::Allocator = naksha_core::Allocator;`.
pub use mimalloc::MiMalloc as Allocator;
