//! Fuzz entry points for what the agent parses: agentspecs and Prometheus answers. See
//! `naksha_contracts::fuzzing` for how `fuzz/` and the replay tests use them.

// A fuzz target reports a finding by panicking: that is what libFuzzer and the replay tests catch.
#![allow(clippy::panic)]

use naksha_contracts::fuzzing::Target;
use serde_json::Value;

use crate::observe::prometheus::decode_answer;
use crate::spec::Graph;

pub const TARGETS: &[Target] = &[("agentspec", agentspec), ("prometheus_answer", prometheus_answer)];

/// An agentspec (YAML): refused with reasons, or a graph whose start node exists.
pub fn agentspec(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Err(e) = Graph::load(text) {
        assert!(!e.0.is_empty(), "refused without a reason");
    }
}

/// A Prometheus `/api/v1/query` answer: every value it yields (a vector sample's, each of a
/// matrix series', a scalar) is a finite number or null.
pub fn prometheus_answer(data: &[u8]) {
    let finite = |v: &Value| v.is_null() || v.as_f64().is_some_and(f64::is_finite);
    match decode_answer(data) {
        Ok(Value::Array(samples)) => {
            for s in samples {
                let v = &s["value"];
                assert!(finite(v), "a sample value {v}");
                for v in s["values"].as_array().into_iter().flatten() {
                    assert!(finite(v), "a series value {v}");
                }
            }
        }
        Ok(v @ (Value::Number(_) | Value::Null)) => assert!(finite(&v), "a scalar {v}"),
        _ => {}
    }
}
