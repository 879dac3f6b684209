//! Fuzz entry points for what ingest and the stream consumer parse. See
//! `naksha_contracts::fuzzing` for how `fuzz/` and the replay tests use them.

// A fuzz target reports a finding by panicking: that is what libFuzzer and the replay tests catch.
#![allow(clippy::panic)]

use naksha_contracts::TenantId;
use naksha_contracts::fuzzing::Target;
use naksha_core::privacy::{PiiKey, Pseudonymiser};
use serde_json::Value;

use crate::consumer::decode;
use crate::event::StreamRecord;
use crate::ingest::prepare;

pub const TARGETS: &[Target] =
    &[("ingest_body", ingest_body), ("stream_record", stream_record), ("dedup_window", dedup_window)];

/// A shard's dedup window as read back from the aggregates table (anyone who can write the
/// table can write it). What decodes encodes to a window that decodes the same, and answers
/// for every pair it holds.
pub fn dedup_window(data: &[u8]) {
    let Some(window) = crate::dedup::Window::decode(data) else { return };
    let again =
        crate::dedup::Window::decode(&window.encode()).unwrap_or_else(|| panic!("a window it wrote did not decode"));
    assert_eq!(again, window, "a window changed through its own encoding");
    let mut grown = window.clone();
    grown.insert(u64::MAX, 511, u32::MAX);
    assert!(grown.seen(u64::MAX, 511), "a pair just counted is not seen");
}

/// 2026-12-01T00:00:00Z: a fixed "now", so the same input always takes the same path.
const NOW_MS: i64 = 1_796_083_200_000;

/// A `POST /ingest` body. What is accepted decodes as the consumer reads it, belongs to the
/// caller's tenant, and carries no address the scanner would still replace.
pub fn ingest_body(data: &[u8]) {
    let key = PiiKey::from_secret(b"the fuzzing key, thirty-two byte");
    let Ok(tenant) = TenantId::from_record("acme") else { return };
    let Ok(prepared) = prepare(&key, &tenant, data, NOW_MS) else { return };
    let p = key.for_tenant(tenant.as_str());
    let mut carried = Vec::new();
    for r in &prepared.records {
        let events = decode(&r.data).unwrap_or_else(|e| panic!("ingest wrote a record the consumer refuses: {e}"));
        let ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
        let said: Vec<String> = r.events.iter().map(|ix| prepared.event_id(*ix)).collect();
        assert_eq!(ids, said, "a record carries other events than it says");
        for event in &events {
            assert_eq!(event.tenant, tenant, "an event of another tenant");
            assert_eq!(
                crate::ingest::partition_key(&tenant, &event.source),
                r.partition_key,
                "an event under another key"
            );
            clean_record(event, &p);
        }
        carried.extend(said);
    }
    carried.sort();
    let mut accepted = prepared.event_ids.to_vec();
    accepted.sort();
    assert_eq!(carried, accepted, "every accepted event is in exactly one record");
}

fn clean(s: &str, p: &Pseudonymiser<'_>) {
    assert!(matches!(p.scrub_text(s), std::borrow::Cow::Borrowed(_)), "personal data left in {s:?}");
}

fn clean_value(v: &Value, p: &Pseudonymiser<'_>) {
    match v {
        Value::String(s) => clean(s, p),
        Value::Array(items) => items.iter().for_each(|v| clean_value(v, p)),
        Value::Object(map) => map.iter().for_each(|(k, v)| {
            clean(k, p);
            clean_value(v, p)
        }),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

fn clean_record(r: &StreamRecord, p: &Pseudonymiser<'_>) {
    clean(&r.source, p);
    r.name.iter().for_each(|n| clean(n, p));
    r.samples.iter().for_each(|(n, _)| clean(n, p));
    r.labels.iter().for_each(|(k, v)| {
        clean(k, p);
        clean(v, p)
    });
    r.attrs.iter().for_each(|(k, v)| {
        clean(k, p);
        clean_value(v, p)
    });
}

/// A Kinesis record's data as the consumer reads it: refused cleanly, or events that encode and
/// decode back to themselves, packed as ingest packs them (what a retried batch reads is what
/// the first attempt read).
pub fn stream_record(data: &[u8]) {
    let Ok(events) = decode(data) else { return };
    assert!(!events.is_empty(), "a record decoded to no event");
    let mut again = Vec::new();
    for (n, e) in events.iter().enumerate() {
        if n > 0 {
            again.push(b'\n');
        }
        serde_json::to_writer(&mut again, e).unwrap_or_else(|e| panic!("a decoded record does not encode: {e}"));
    }
    match decode(&again) {
        Ok(back) => assert_eq!(back, events, "a record changed on its way through JSON"),
        Err(e) => panic!("a re-encoded record is refused: {e}"),
    }
}
