//! naksha-contracts: what crosses a service boundary, and nothing that needs AWS, Lambda or HTTP,
//! so every service and the edge node can use it.
//!
//! - [`identity`]: [`identity::TenantId`] (tenant-first keys), [`identity::Role`], [`identity::Principal`].
//! - [`signing`]: canonical JSON, signature verification against trusted keys, and
//!   [`signing::Verified`], the only way to hold a signed object as trusted.
//! - [`input`]: [`input::FieldError`], every problem with a document named at once.
//! - [`wpk`]: the playbook format, its validation and the signed form every service and the edge
//!   node verify before acting ([`wpk::SignedWpk`]).
//! - The records services read from each other, each with its key functions and the table that
//!   holds it: [`runs`] (run messages, run outcomes), [`telemetry`] (series and per-minute
//!   aggregates), [`models`] (model versions, manifests, the champion alias), [`audit`] (the
//!   hash-chained audit log and its signed checkpoints), [`approvals`] (signed decisions),
//!   [`control`] (the tenant's kill switch), [`edge`] (signed triggers, results and key
//!   announcements between the federation hub and edge nodes, and the node's checks).
//!
//! One service writes each table; a service that reads another's records decodes these types.

pub mod approvals;
pub mod audit;
pub mod control;
pub mod edge;
pub mod fuzzing;
pub mod identity;
pub mod input;
pub mod models;
pub mod runs;
pub mod signing;
pub mod telemetry;
pub mod trace;
pub mod wpk;

pub use identity::{Principal, Role, TenantId};
