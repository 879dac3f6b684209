//! The token fuzz targets' corpora and regressions, replayed on stable.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use naksha_core::fuzzing::TARGETS;

#[test]
fn every_corpus_and_regression_file_replays_without_a_finding() {
    naksha_contracts::fuzzing::assert_replays(env!("CARGO_MANIFEST_DIR"), TARGETS);
}

#[test]
fn the_claims_target_reaches_a_verified_principal() {
    // Otherwise its property would never be checked.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let claims = serde_json::json!({"iss": "https://issuer.fuzz", "aud": "naksha", "sub": "alice",
        "tenant": "acme", "roles": ["operator"], "iat": now, "exp": now + 600});
    let p = naksha_core::fuzzing::sign_and_verify(claims.to_string().as_bytes()).expect("verifies");
    assert_eq!((p.tenant.as_str(), p.subject.as_str()), ("acme", "alice"));
    let mut other = claims.clone();
    other["iss"] = "https://elsewhere".into();
    assert!(naksha_core::fuzzing::sign_and_verify(other.to_string().as_bytes()).is_none());
}
