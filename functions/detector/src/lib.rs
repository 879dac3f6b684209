//! naksha-detector: the streaming anomaly detector (D.3) and the NAB scoring harness.
//!
//! - [`detector`]: an online, deterministic detector for one series; small serialisable state.
//! - [`nab`]: NAB's scoring rules, reimplemented and unit-tested.
//!
//! No AWS, no I/O: the consumer (D.1), the trainer and `make nab` all run this same code.

pub mod detector;
pub mod nab;
