//! WPKs as the agent uses them: the format, validation and verification are naksha-contracts'
//! (the federation hub and the edge node verify the same bytes); choosing among them is here.

use std::collections::BTreeMap;

pub use naksha_contracts::wpk::*;

/// The decide step's choice, without I/O: the latest version of each WPK whose `match` fits,
/// best score first (ties: newer version, then id, so the choice is stable).
pub fn rank<'a>(
    all: &'a [StoredWpk],
    signal: &str,
    resource: &str,
    score: impl Fn(&str) -> f64,
) -> Vec<(f64, &'a StoredWpk)> {
    let mut latest: BTreeMap<&str, &StoredWpk> = BTreeMap::new();
    for w in all {
        match latest.get(w.id.as_str()) {
            Some(existing) if existing.version >= w.version => {}
            _ => {
                latest.insert(&w.id, w);
            }
        }
    }
    let mut out: Vec<(f64, &StoredWpk)> =
        latest.into_values().filter(|w| w.matches(signal, resource)).map(|w| (score(&w.id), w)).collect();
    out.sort_by(|a, b| b.0.total_cmp(&a.0).then(b.1.version.cmp(&a.1.version)).then(a.1.id.cmp(&b.1.id)));
    out
}
