//! D.1 insight-stream: telemetry in over HTTP, anonymised, streamed, aggregated.
//!
//! - [`event`]: the ingest contract (parse and validate bodies; the stream record format).
//! - [`ingest`]: `POST /ingest` — anonymise and put one batch on Kinesis.
//! - [`aggregate`]: the consumer — fold stream batches into per-minute aggregates, idempotently.
//! - [`store`]: the DynamoDB and Kinesis adapters.
//! - [`api`]: the HTTP routes (`POST /ingest`, `GET /metrics`).
//! - [`kinesis`]: the consumer Lambda's event adapter.
//! - [`health`]: `GET /health` — checks the stream, tables and key this service needs.
//!
//! Each Lambda is a thin `src/bin/*.rs` that wires these together.

pub mod aggregate;
pub mod api;
pub mod detection;
pub mod event;
pub mod health;
pub mod ingest;
pub mod kinesis;
pub mod store;
