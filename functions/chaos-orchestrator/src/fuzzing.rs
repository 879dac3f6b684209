//! Fuzz entry points for the chaos specs a tenant sends: native, Chaos Toolkit and AWS FIS. See
//! `naksha_contracts::fuzzing` for how `fuzz/` and the replay tests use them.

// A fuzz target reports a finding by panicking: that is what libFuzzer and the replay tests catch.
#![allow(clippy::panic)]

use naksha_contracts::fuzzing::Target;
use serde_json::Value;

use crate::import::{Format, chaos_toolkit, detect, fis};
use crate::specs::Spec;

pub const TARGETS: &[Target] = &[("chaos_spec", chaos_spec)];

/// A spec document as `POST /chaos/specs` (or its import) takes it. A native spec that is
/// accepted is accepted again, unchanged, from its own JSON; an import maps at least one fault.
pub fn chaos_spec(data: &[u8]) {
    let Ok(doc) = serde_json::from_slice::<Value>(data) else { return };
    let hosts = ["localhost:9090".to_owned()];
    if let Ok(spec) = Spec::parse(&doc, &hosts) {
        let again = serde_json::to_value(&spec).unwrap_or_else(|e| panic!("an accepted spec does not encode: {e}"));
        match Spec::parse(&again, &hosts) {
            Ok(back) => assert_eq!(back, spec, "an accepted spec changed on its way through JSON"),
            Err(e) => panic!("an accepted spec's own JSON is refused: {e:?}"),
        }
    }
    let imported = match detect(&doc) {
        Some(Format::ChaosToolkit) => chaos_toolkit(&doc),
        Some(Format::Fis) => fis(&doc),
        _ => return,
    };
    if let Ok(i) = imported {
        assert!(!i.mapped.is_empty(), "an import that maps nothing was accepted");
    }
}
