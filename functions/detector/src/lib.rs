//! naksha-detector: the streaming anomaly detector (D.3).
//!
//! - [`detector`]: an online, deterministic detector for one series; small serialisable state.
//!
//! No AWS, no I/O: the consumer (D.1), the trainer and `make nab` (tools/nab) all run this same code.

pub mod detector;
