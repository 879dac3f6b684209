//! Fuzz entry points. `fuzz/` drives each with libFuzzer (`make fuzz`, nightly), and the
//! `fuzz_replay` test runs every file of `fuzz/corpus/<target>` and `fuzz/regressions/<target>`
//! through the same function on stable (`make test`). Each takes any bytes and must not panic;
//! where the input parses, a property is checked as well, and a failed check is a finding too.

// A fuzz target reports a finding by panicking: that is what libFuzzer and the replay tests catch.
#![allow(clippy::panic)]

use chrono::{TimeZone, Utc};

use crate::edge::{Delivery, EdgeResult, HubKeys, NodeMemory, NodeView, check_delivery};
use crate::identity::TenantId;
use crate::models::StoredModel;
use crate::signing::{Sealed, TrustedKeys};
use crate::wpk;

/// A fuzz target: its name (a directory under `fuzz/corpus` and `fuzz/regressions`, a binary of
/// `fuzz/`) and the function it runs.
pub type Target = (&'static str, fn(&[u8]));

/// The targets, by the names `fuzz/` and the replay test use.
pub const TARGETS: &[Target] = &[
    ("wpk", wpk_document),
    ("edge_delivery", edge_delivery),
    ("edge_announcement", edge_announcement),
    ("edge_result", edge_result),
    ("stored_model", stored_model),
];

/// A WPK as `POST /wpk` takes it: the first byte picks YAML (odd) or JSON (even). An accepted
/// WPK's canonical form is accepted again and means the same WPK.
pub fn wpk_document(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else { return };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    let Ok(w) = wpk::parse(text, mode & 1 == 1) else { return };
    let canonical = w.canonical_bytes();
    let text = String::from_utf8(canonical).unwrap_or_else(|e| panic!("canonical WPK bytes are not UTF-8: {e}"));
    match wpk::parse(&text, false) {
        Ok(again) => assert_eq!(again, w, "the canonical form of an accepted WPK means another WPK"),
        Err(e) => panic!("the canonical form of an accepted WPK is refused: {e:?}"),
    }
}

struct Fresh;

impl NodeMemory for Fresh {
    fn seen_nonce(&self, _: &str) -> bool {
        false
    }

    fn highest_version(&self, _: &str) -> Option<u32> {
        None
    }
}

/// A delivery as a node reads it off the wire: with no trusted keys, nothing is ever accepted.
pub fn edge_delivery(data: &[u8]) {
    let Ok(d) = serde_json::from_slice::<Delivery>(data) else { return };
    let Ok(tenant) = TenantId::from_record("fuzz") else { return };
    let hub_keys = HubKeys::default();
    let wpk_keys = TrustedKeys::from_public_keys([]);
    let now = Utc.timestamp_opt(1_796_000_000, 0).single().unwrap_or_else(Utc::now);
    let view = NodeView {
        tenant: &tenant,
        node_id: "edge-fuzz",
        hub_keys: &hub_keys,
        wpk_keys: &wpk_keys,
        last_seq: 0,
        halted: false,
        now,
    };
    assert!(check_delivery(&d, &view, &Fresh).is_err(), "a delivery was accepted with no key trusted");
}

/// A key announcement: a node with no pinned key trusts none it announces.
pub fn edge_announcement(data: &[u8]) {
    let Ok(sealed) = serde_json::from_slice::<Sealed>(data) else { return };
    let mut keys = HubKeys::default();
    assert!(keys.accept(&sealed, Utc::now()).is_err(), "an announcement was trusted with no key pinned");
    assert!(keys.is_empty());
}

/// A node's signed result as the hub parses it: what parses, re-encodes to the same result.
pub fn edge_result(data: &[u8]) {
    let Ok(r) = serde_json::from_slice::<EdgeResult>(data) else { return };
    let text = serde_json::to_string(&r).unwrap_or_else(|e| panic!("a parsed result does not encode: {e}"));
    match serde_json::from_str::<EdgeResult>(&text) {
        Ok(again) => assert_eq!(again, r, "a result changed on its way through JSON"),
        Err(e) => panic!("a re-encoded result is refused: {e}"),
    }
}

/// A model version as read from the models table: with no trusted key, it never verifies.
pub fn stored_model(data: &[u8]) {
    let Ok(m) = serde_json::from_slice::<StoredModel>(data) else { return };
    assert!(m.verify(&TrustedKeys::from_public_keys([])).is_err(), "a model verified with no key trusted");
}

/// Run every file of `fuzz_dir/corpus/<target>` and `fuzz_dir/regressions/<target>` through its
/// target: the number of inputs replayed, or the first that is a finding (or a target without a
/// seed). The stable replay tests of each crate call this with their own targets.
pub fn replay(fuzz_dir: &std::path::Path, targets: &[Target]) -> Result<usize, String> {
    let mut replayed = 0;
    for (name, run) in targets {
        let mut files = 0;
        for kind in ["corpus", "regressions"] {
            let Ok(entries) = std::fs::read_dir(fuzz_dir.join(kind).join(name)) else { continue };
            let mut paths: Vec<_> = entries.flatten().map(|e| e.path()).collect();
            paths.sort();
            for path in paths {
                if !path.is_file() || path.file_name().is_some_and(|n| n == ".gitkeep") {
                    continue;
                }
                let data = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
                if std::panic::catch_unwind(|| run(&data)).is_err() {
                    return Err(format!("{name}: {} is a finding", path.display()));
                }
                files += 1;
            }
        }
        if files == 0 {
            return Err(format!("{name} has no seed in {}", fuzz_dir.join("corpus").join(name).display()));
        }
        replayed += files;
    }
    Ok(replayed)
}

/// `fuzz/` of this repository, from a crate's `CARGO_MANIFEST_DIR` (`functions/<crate>`).
pub fn fuzz_dir(crate_dir: &str) -> std::path::PathBuf {
    std::path::Path::new(crate_dir).join("../../fuzz")
}

/// The body of each crate's `fuzz_replay` test: [`replay`] its targets, panicking on a finding.
pub fn assert_replays(crate_dir: &str, targets: &[Target]) {
    let n = replay(&fuzz_dir(crate_dir), targets).unwrap_or_else(|e| panic!("{e}"));
    eprintln!("replayed {n} fuzz inputs over {} targets", targets.len());
}
