//! D.3 cll-trainer: learns detector parameters per series and a remediation model from the D.1
//! aggregates and the agent's run outcomes, judges each version against the champion on
//! held-back recent data, and registers it signed (see docs/training.md).

pub mod api;
pub mod store;
pub mod train;
pub mod wiring;
pub mod worker;
