//! The ingest and stream-record fuzz targets' corpora and regressions, replayed on stable.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use naksha_insight_stream::fuzzing::TARGETS;

#[test]
fn every_corpus_and_regression_file_replays_without_a_finding() {
    naksha_contracts::fuzzing::assert_replays(env!("CARGO_MANIFEST_DIR"), TARGETS);
}

#[test]
fn the_ingest_seeds_are_accepted_so_the_privacy_property_is_checked() {
    let dir = naksha_contracts::fuzzing::fuzz_dir(env!("CARGO_MANIFEST_DIR")).join("corpus/ingest_body");
    let key = naksha_core::privacy::PiiKey::from_secret(b"k");
    let tenant = naksha_contracts::TenantId::from_record("acme").unwrap();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let body = std::fs::read(e.path()).unwrap();
        let out = naksha_insight_stream::ingest::prepare(&key, &tenant, &body, 1_796_083_200_000);
        assert!(out.is_ok(), "{}: {:?}", e.path().display(), out.err());
    }
}
