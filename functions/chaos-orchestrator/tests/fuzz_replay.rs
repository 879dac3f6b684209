//! This crate's fuzz targets' corpora and regressions, replayed on stable.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use naksha_chaos::fuzzing::TARGETS;

#[test]
fn every_corpus_and_regression_file_replays_without_a_finding() {
    naksha_contracts::fuzzing::assert_replays(env!("CARGO_MANIFEST_DIR"), TARGETS);
}

#[test]
fn the_seeds_reach_the_checked_paths() {
    let dir = naksha_contracts::fuzzing::fuzz_dir(env!("CARGO_MANIFEST_DIR")).join("corpus/chaos_spec");
    let (mut native, mut imported) = (0, 0);
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(e.path()).unwrap()).unwrap();
        native += usize::from(naksha_chaos::specs::Spec::parse(&doc, &["localhost:9090".to_owned()]).is_ok());
        imported += usize::from(match naksha_chaos::import::detect(&doc) {
            Some(naksha_chaos::import::Format::ChaosToolkit) => naksha_chaos::import::chaos_toolkit(&doc).is_ok(),
            Some(naksha_chaos::import::Format::Fis) => naksha_chaos::import::fis(&doc).is_ok(),
            _ => false,
        });
    }
    assert!(native >= 3 && imported >= 2, "native {native}, imported {imported}");
}
