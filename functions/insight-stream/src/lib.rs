//! D.1 insight-stream: telemetry in over HTTP, anonymised, streamed, aggregated, watched by the
//! streaming detector (D.3).
//!
//! - [`event`]: the ingest contract (parse and validate bodies; the telemetry stream record);
//!   [`val`]: the JSON value it reads them into, borrowing the body's text.
//! - [`ingest`]: `POST /ingest` — anonymise and put one batch on Kinesis.
//! - [`series`]: a batch as the consumer sees it (sequence numbers, each series' samples).
//! - [`aggregate`]: fold a batch into per-minute aggregates, idempotently.
//! - [`detection`]: the streaming detector in the consumer path; signals start agent runs.
//! - [`warnings`]: Kubernetes Warning events and firing alerts raise signals without the detector.
//! - [`sim_exporter`]: in simulation mode, the world's metrics and warnings through ingest.
//! - [`consumer`]: one shard's batch through both, poison set aside; [`kinesis`]: the event adapter.
//! - [`health`]: `GET /health` — checks the streams, tables and keys of the deployment.
//! - [`ports`]: the traits the domain needs; [`store`]: DynamoDB/Kinesis; [`memory`]: for tests.
//! - [`api`]: the HTTP routes; [`wiring`]: each Lambda's state, built once per cold start.
//!
//! Each Lambda is a thin `src/bin/*.rs`.

pub mod aggregate;
pub mod api;
pub mod consumer;
pub mod dedup;
pub mod detection;
pub mod event;
pub mod fuzzing;
pub mod health;
pub mod ingest;
pub mod kinesis;
pub mod memory;
pub mod ports;
pub mod series;
pub mod sim_exporter;
pub mod store;
pub mod val;
pub mod warnings;
pub mod wiring;
