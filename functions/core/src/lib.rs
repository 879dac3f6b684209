//! naksha-core: what every Naksha Lambda shares.
//!
//! - [`config`]: settings read from the environment once, at cold start, with every
//!   missing or invalid variable reported together.
//! - [`aws`]: the one AWS client factory (honours `AWS_ENDPOINT_URL`, so the same binary talks
//!   to AWS, LocalStack or moto).
//! - [`auth`]: JWT verification against a JWKS, producing a verified [`auth::Principal`];
//!   [`auth::TenantId`] can only be built from verified claims.
//! - [`problem`] and [`http`]: RFC 9457 errors, body limits, JSON responses, one log line per request.
//! - [`privacy`]: keyed pseudonyms for PII (P-1), keyed from KMS once per cold start.
//! - [`metrics`]: fleet-wide counters kept in DynamoDB and rendered as Prometheus text (P-4).
//! - [`signing`]: canonical JSON, KMS ECDSA P-256 signatures, verification against trusted keys (P-2).
//! - [`logging`]: JSON logs carrying the Lambda request id.

pub mod auth;
pub mod aws;
pub mod config;
pub mod http;
pub mod logging;
pub mod metrics;
pub mod model;
pub mod privacy;
pub mod problem;
pub mod runs;
pub mod signing;

pub use problem::Problem;

/// The allocator every Naksha Lambda (and benchmark) uses: mimalloc, which makes the many small
/// allocations of JSON handling markedly cheaper than glibc's malloc. Each binary installs it with
/// `#[global_allocator] static ALLOC: naksha_core::Allocator = naksha_core::Allocator;`.
pub use mimalloc::MiMalloc as Allocator;
