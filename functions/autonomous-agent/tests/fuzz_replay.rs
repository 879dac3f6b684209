//! This crate's fuzz targets' corpora and regressions, replayed on stable.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use naksha_agent::fuzzing::TARGETS;

#[test]
fn every_corpus_and_regression_file_replays_without_a_finding() {
    naksha_contracts::fuzzing::assert_replays(env!("CARGO_MANIFEST_DIR"), TARGETS);
}
