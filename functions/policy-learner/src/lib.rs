//! D.6 policy-learner: learn policy from audit logs and approvals (docs/policies/policy_learning.md).
//!
//! - [`records`]: the three input formats, read into one normalised [`records::Record`].
//! - [`risk`]: rules for risky behaviour; [`suggest`]: autonomy, least-privilege and risk
//!   suggestions with their evidence, and the lifecycle states.

pub mod api;
pub mod compliance;
pub mod learn;
pub mod live;
pub mod memory;
pub mod nightly;
pub mod ports;
pub mod records;
pub mod risk;
pub mod store;
pub mod suggest;
pub mod wiring;
