//! D.4 federation-hub: edge nodes register with a token and their own P-256 key, heartbeat, and
//! poll for work; an operator sends a signed WPK trigger to one node or rolls it out to every
//! node with a label at a controlled rate; nodes report results signed with their key.
//!
//! - [`nodes`]: registration, labels, liveness (`online`, `stale`, `offline`).
//! - [`triggers`]: trigger requests, rollouts and their abort rule, executions.
//! - [`hub`]: the use cases (register, heartbeat, send, hand out, report, sweep), over [`ports`].
//! - [`ports`]: the traits the hub needs; [`store`]: DynamoDB and KMS; [`memory`]: for tests.
//! - [`api`]: the HTTP routes; [`wiring`]: each Lambda's state, built once per cold start.
//!
//! The signed records (orders, results, key announcements) and the edge node's checks are
//! naksha-contracts' `edge`.

pub mod api;
pub mod hub;
pub mod memory;
pub mod nodes;
pub mod ports;
pub mod store;
pub mod triggers;
pub mod wiring;
