//! This crate's fuzz targets' corpora and regressions, replayed on stable.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use naksha_agent::fuzzing::TARGETS;

#[test]
fn every_corpus_and_regression_file_replays_without_a_finding() {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let n = naksha_contracts::fuzzing::replay(&dir, TARGETS).unwrap_or_else(|e| panic!("{e}"));
    eprintln!("replayed {n} fuzz inputs over {} targets", TARGETS.len());
}
