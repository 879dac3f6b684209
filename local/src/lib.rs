//! naksha-local: the local simulation harness.
//!
//! `cargo lambda watch` runs the functions and the HTTP routes; this crate does the rest of what
//! AWS would do, reading `template.yaml` so there is no second list of resources:
//! - [`template`]: read the template and resolve intrinsics;
//! - [`stack`]: provision tables, streams and keys in the emulator; write the functions' env;
//! - [`devauth`]: the dev signing key, its JWKS and dev tokens;
//! - [`jwks`]: serve the JWKS to the functions;
//! - [`policy_check`]: P-1…P-6 as CI enforces them on the template, the routes and the shipped WPKs;
//! - [`poller`]: Kinesis event source mappings (real `KinesisEvent` payloads, partial failures);
//! - [`schedules`]: the template's `rate(...)` schedules, fired as EventBridge would.

pub mod coldstart;
pub mod devauth;
pub mod jwks;
pub mod policy_check;
pub mod poller;
pub mod schedules;
pub mod stack;
pub mod template;
