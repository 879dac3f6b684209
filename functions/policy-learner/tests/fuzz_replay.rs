//! This crate's fuzz targets' corpora and regressions, replayed on stable.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use naksha_policy::fuzzing::TARGETS;

#[test]
fn every_corpus_and_regression_file_replays_without_a_finding() {
    naksha_contracts::fuzzing::assert_replays(env!("CARGO_MANIFEST_DIR"), TARGETS);
}

#[test]
fn every_format_has_a_seed_that_parses() {
    let dir = naksha_contracts::fuzzing::fuzz_dir(env!("CARGO_MANIFEST_DIR")).join("corpus/audit_lines");
    let tenant = naksha_contracts::TenantId::from_record("demo").unwrap();
    let key = naksha_core::privacy::PiiKey::from_secret(b"k");
    for seed in ["seed-naksha", "seed-cloudtrail", "seed-k8s"] {
        let text = std::fs::read_to_string(dir.join(seed)).unwrap();
        let p = naksha_policy::records::parse_lines(&text, &tenant, &key.for_tenant("demo"));
        assert!(
            !p.records.is_empty() && p.bad.is_empty(),
            "{seed}: {} records, bad {:?}",
            p.records.len(),
            p.bad.first().map(|b| &b.reason)
        );
    }
}
