//! Every fuzz corpus and regression file, through its target's function, on stable: a crash the
//! fuzzer once found stays fixed, and the seeds keep parsing as they should.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use naksha_contracts::fuzzing::TARGETS;

fn fuzz_dir() -> std::path::PathBuf {
    naksha_contracts::fuzzing::fuzz_dir(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn every_corpus_and_regression_file_replays_without_a_finding() {
    naksha_contracts::fuzzing::assert_replays(env!("CARGO_MANIFEST_DIR"), TARGETS);
}

#[test]
fn the_seeds_reach_past_parsing() {
    // A seed that does not even parse teaches the fuzzer nothing about what lies behind it.
    for name in ["edge_delivery", "edge_result", "stored_model", "edge_announcement"] {
        let dir = fuzz_dir().join("corpus").join(name);
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let data = std::fs::read(e.path()).unwrap();
            let ok = match name {
                "edge_delivery" => serde_json::from_slice::<naksha_contracts::edge::Delivery>(&data).is_ok(),
                "edge_result" => serde_json::from_slice::<naksha_contracts::edge::EdgeResult>(&data).is_ok(),
                "stored_model" => serde_json::from_slice::<naksha_contracts::models::StoredModel>(&data).is_ok(),
                _ => serde_json::from_slice::<naksha_contracts::signing::Sealed>(&data).is_ok(),
            };
            assert!(ok, "{} does not parse", e.path().display());
        }
    }
    for e in std::fs::read_dir(fuzz_dir().join("corpus/wpk")).unwrap().flatten() {
        let data = std::fs::read(e.path()).unwrap();
        let text = std::str::from_utf8(&data[1..]).unwrap();
        assert!(naksha_contracts::wpk::parse(text, data[0] & 1 == 1).is_ok(), "{} is refused", e.path().display());
    }
}
