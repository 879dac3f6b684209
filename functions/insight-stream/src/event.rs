//! The telemetry event: what `POST /ingest` accepts, and the record it puts on the stream.
//!
//! Parsing is "parse, don't validate": [`parse_body`] turns bytes into [`Event`]s or a list of
//! every problem found (each located by a JSON pointer), and [`Event::into_record`] anonymises
//! the event for its tenant and encodes it. Nothing here does I/O.

use std::collections::BTreeMap;

use chrono::DateTime;
use naksha_contracts::TenantId;
use naksha_core::privacy::{Pseudonymiser, is_identifier_key};
use naksha_core::problem::FieldError;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::fmt;

/// Most events in one request.
pub const MAX_EVENTS: usize = 500;
/// Most samples (numeric fields) in one event.
pub const MAX_SAMPLES: usize = 100;
/// Most labels on one event.
pub const MAX_LABELS: usize = 32;
/// Longest `source`, `name`, label value or sample name, in characters.
pub const MAX_TEXT: usize = 256;
/// Longest label key.
pub const MAX_LABEL_KEY: usize = 128;
/// Deepest nesting allowed in attributes.
pub const MAX_DEPTH: usize = 10;
/// Largest magnitude of a sample; keeps sums of squares inside DynamoDB's number range.
pub const MAX_MAGNITUDE: f64 = 1e50;
/// Smallest magnitude of a non-zero sample. DynamoDB stores no number closer to zero than 1e-130,
/// so a square of 1e-70 could never be written; from 1e-50 up, squares (≥ 1e-100) and every sum
/// and difference DynamoDB's 38-digit arithmetic makes of them stay storable.
pub const MIN_MAGNITUDE: f64 = 1e-50;
/// How far in the future an event time may be (clock skew, not prophecy).
pub const MAX_FUTURE_MS: i64 = 60 * 60 * 1000;
/// Events older than 2000-01-01 are certainly a unit mistake.
pub const MIN_TS_MS: i64 = 946_684_800_000;
/// Stream record format version.
pub const RECORD_VERSION: u8 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Metric,
    Log,
    Event,
}

/// A validated event, not yet anonymised.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub source: String,
    pub name: Option<String>,
    pub kind: Kind,
    pub ts_ms: i64,
    pub samples: Vec<(String, f64)>,
    pub labels: BTreeMap<String, String>,
    pub attrs: Map<String, Value>,
}

/// What goes on the stream: one record per event, already anonymised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamRecord {
    pub v: u8,
    pub id: String,
    pub tenant: TenantId,
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub kind: Kind,
    /// Event time, milliseconds since the Unix epoch.
    pub ts: i64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub samples: Vec<(String, f64)>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub attrs: Map<String, Value>,
    /// The request that put the record (16 hex digits) and the record's place in it: the same
    /// pair twice on a shard is one event put twice, counted once ([`crate::dedup`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rq: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ix: Option<u16>,
    /// The W3C `traceparent` of the request that put it (P-4): a signal it raises carries it on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tp: Option<String>,
}

/// Why a body was refused: what is wrong, and each problem located by a JSON pointer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{detail}")]
pub struct InvalidBody {
    pub detail: String,
    pub errors: Vec<FieldError>,
}

impl InvalidBody {
    fn new(detail: impl Into<String>) -> Self {
        Self { detail: detail.into(), errors: Vec::new() }
    }

    fn fields(errors: Vec<FieldError>) -> Self {
        Self { detail: String::new(), errors }
    }
}

/// An event object's fields in key order, each key once: the order and the choice among
/// repeated keys that a [`Map`] makes (keys borrowed from the body where it has no escapes).
type Fields<'de> = Vec<(Cow<'de, str>, Value)>;

/// A batch's element: an object's fields, or what else it was (for the error).
enum Item<'de> {
    Object(Fields<'de>),
    Other(&'static str),
}

/// A key, borrowed from the body when it can be.
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Item<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ItemVisitor)
    }
}

struct ItemVisitor;

impl<'de> Visitor<'de> for ItemVisitor {
    type Value = Item<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an event object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut fields: Fields<'de> = Vec::with_capacity(map.size_hint().unwrap_or(8));
        while let Some(key) = map.next_key_seed(Key)? {
            fields.push((key, map.next_value::<Value>()?));
        }
        // A map's order, and its last value of a repeated key: sort stably, keep each run's last.
        fields.sort_by(|a, b| a.0.cmp(&b.0));
        let mut kept: Fields<'de> = Vec::with_capacity(fields.len());
        for field in fields {
            match kept.last_mut() {
                Some(last) if last.0 == field.0 => *last = field,
                _ => kept.push(field),
            }
        }
        Ok(Item::Object(kept))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<de::IgnoredAny>()?.is_some() {}
        Ok(Item::Other("an array"))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Item::Other("a boolean"))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Item::Other("a number"))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Item::Other("a number"))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Item::Other("a number"))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Item::Other("a string"))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Item::Other("null"))
    }
}

/// The common body, `{"events": [...]}` and nothing else, read straight into fields: no
/// document tree, no map per event. `None` for any other shape, which [`parse_body`] reads the
/// general way (and which gives every error its message): this path only ever agrees with it.
fn fast_batch(body: &[u8]) -> Option<Vec<Item<'_>>> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Batch<'a> {
        #[serde(borrow)]
        events: Vec<Item<'a>>,
    }
    let batch: Batch<'_> = serde_json::from_slice(body).ok()?;
    (1..=MAX_EVENTS).contains(&batch.events.len()).then_some(batch.events)
}

/// Parse a request body: one event object, or `{"events": [...]}` with 1 to 500 events.
/// All or nothing: any problem in any event fails the whole body.
pub fn parse_body(body: &[u8], now_ms: i64) -> Result<Vec<Event>, InvalidBody> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(InvalidBody::new("the body is empty; send one event object or {\"events\": [...]}"));
    }
    if let Some(items) = fast_batch(body) {
        let mut errors = Vec::new();
        let mut events = Vec::with_capacity(items.len());
        for (i, item) in items.into_iter().enumerate() {
            match item {
                Item::Object(fields) => {
                    if let Some(e) = parse_fields(fields, At::Event(i), now_ms, &mut errors) {
                        events.push(e);
                    }
                }
                Item::Other(what) => {
                    errors.push(FieldError::new(At::Event(i).base(), format!("must be an object, not {what}")))
                }
            }
        }
        return if errors.is_empty() {
            Ok(events)
        } else {
            errors.truncate(100);
            Err(InvalidBody::fields(errors))
        };
    }
    parse_general(body, now_ms)
}

/// [`parse_body`] for any shape: through a document tree.
fn parse_general(body: &[u8], now_ms: i64) -> Result<Vec<Event>, InvalidBody> {
    let doc: Value =
        serde_json::from_slice(body).map_err(|e| InvalidBody::new(format!("the body is not valid JSON: {e}")))?;
    let mut errors = Vec::new();
    let events = match doc {
        Value::Object(mut obj) if matches!(obj.get("events"), Some(Value::Array(_))) => {
            if obj.len() > 1 {
                let extra: Vec<_> = obj.keys().filter(|k| *k != "events").cloned().collect();
                errors.push(FieldError::new(
                    "",
                    format!("a batch carries only \"events\"; unexpected field(s): {}", extra.join(", ")),
                ));
            }
            let Some(Value::Array(items)) = obj.remove("events") else {
                return Err(InvalidBody::new("events must be an array"));
            };
            if items.is_empty() || items.len() > MAX_EVENTS {
                return Err(InvalidBody::fields(vec![FieldError::new(
                    "/events",
                    format!("must hold 1 to {MAX_EVENTS} events; got {}", items.len()),
                )]));
            }
            let mut events = Vec::with_capacity(items.len());
            for (i, item) in items.into_iter().enumerate() {
                match item {
                    Value::Object(map) => {
                        if let Some(e) = parse_event(map, At::Event(i), now_ms, &mut errors) {
                            events.push(e);
                        }
                    }
                    other => errors.push(FieldError::new(
                        At::Event(i).base(),
                        format!("must be an object, not {}", type_name(&other)),
                    )),
                }
            }
            events
        }
        Value::Object(map) => parse_event(map, At::Root, now_ms, &mut errors).into_iter().collect(),
        other => {
            return Err(InvalidBody::new(format!(
                "expected one event object or {{\"events\": [...]}}, not {}",
                type_name(&other)
            )));
        }
    };
    if errors.is_empty() {
        Ok(events)
    } else {
        errors.truncate(100);
        Err(InvalidBody::fields(errors))
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Where an event sits in the body; JSON pointers are only built when there is an error.
#[derive(Debug, Clone, Copy)]
enum At {
    Root,
    Event(usize),
}

impl At {
    fn base(self) -> String {
        match self {
            At::Root => String::new(),
            At::Event(i) => format!("/events/{i}"),
        }
    }

    /// JSON pointer (RFC 6901) to `path` inside this event.
    fn to(self, path: &[&str]) -> String {
        let mut out = self.base();
        for key in path {
            out.push('/');
            out.push_str(&key.replace('~', "~0").replace('/', "~1"));
        }
        out
    }
}

/// At most `max` characters (bytes are checked first: most strings are short ASCII).
fn fits(s: &str, max: usize) -> bool {
    s.len() <= max || s.chars().count() <= max
}

fn text_field(v: Value) -> Result<String, String> {
    match v {
        Value::String(s) if !s.trim().is_empty() && fits(&s, MAX_TEXT) => Ok(s),
        Value::String(_) => Err(format!("must be 1 to {MAX_TEXT} characters")),
        other => Err(format!("must be a string, not {}", type_name(&other))),
    }
}

fn sample_range() -> String {
    format!("must be 0 or have a magnitude from {MIN_MAGNITUDE:e} to {MAX_MAGNITUDE:e}")
}

/// A sample every downstream store can hold (its square and sums included), or why not.
fn sample(n: f64) -> Result<f64, String> {
    let a = n.abs();
    if n == 0.0 || (MIN_MAGNITUDE..=MAX_MAGNITUDE).contains(&a) { Ok(n) } else { Err(sample_range()) }
}

fn number(v: &Value) -> Option<f64> {
    v.as_f64().filter(|f| f.is_finite())
}

fn parse_ts(v: &Value, now_ms: i64) -> Result<i64, String> {
    let ms = match v {
        Value::String(s) => DateTime::parse_from_rfc3339(s)
            .map(|t| t.timestamp_millis())
            .map_err(|_| "must be an RFC 3339 time such as 2026-11-25T13:00:00Z, or epoch seconds".to_owned())?,
        Value::Number(_) => {
            let n = number(v).ok_or("must be a finite number")?;
            // Epoch milliseconds are 13 digits in this century; seconds are 10.
            if n.abs() >= 1e11 { n as i64 } else { (n * 1000.0) as i64 }
        }
        other => return Err(format!("must be an RFC 3339 string or epoch seconds, not {}", type_name(other))),
    };
    if ms < MIN_TS_MS {
        return Err("is before 2000-01-01".into());
    }
    if ms > now_ms + MAX_FUTURE_MS {
        return Err("is more than an hour in the future".into());
    }
    Ok(ms)
}

fn depth(v: &Value) -> usize {
    match v {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

fn parse_event(map: Map<String, Value>, at: At, now_ms: i64, errors: &mut Vec<FieldError>) -> Option<Event> {
    parse_fields(map.into_iter().map(|(k, v)| (Cow::Owned(k), v)).collect(), at, now_ms, errors)
}

/// An event from its fields in key order, each key once (as a [`Map`] iterates them).
fn parse_fields(fields: Fields<'_>, at: At, now_ms: i64, errors: &mut Vec<FieldError>) -> Option<Event> {
    let before = errors.len();
    if fields.is_empty() {
        errors.push(FieldError::new(at.base(), "an event needs at least one field"));
        return None;
    }
    let mut source = None;
    let mut name = None;
    let mut value = None;
    let mut ts = None;
    let mut kind = None;
    let mut labels = BTreeMap::new();
    let mut samples = Vec::new();
    let mut attrs = Map::new();
    for (key, v) in fields {
        let mut fail = |detail: String| errors.push(FieldError::new(at.to(&[&key]), detail));
        match &*key {
            "source" => source = text_field(v).map_err(&mut fail).ok(),
            "name" => name = text_field(v).map_err(&mut fail).ok(),
            "value" => match number(&v) {
                Some(n) => match sample(n) {
                    Ok(n) => value = Some(n),
                    Err(e) => fail(e),
                },
                None => fail(format!("must be a number, not {}", type_name(&v))),
            },
            "ts" => match parse_ts(&v, now_ms) {
                Ok(ms) => ts = Some(ms),
                Err(e) => fail(e),
            },
            "kind" => match v.as_str() {
                Some("metric") => kind = Some(Kind::Metric),
                Some("log") => kind = Some(Kind::Log),
                Some("event") => kind = Some(Kind::Event),
                _ => fail("must be one of metric, log, event".into()),
            },
            "labels" => match v {
                Value::Object(l) => parse_labels(l, at, &mut labels, errors),
                other => fail(format!("must be an object of strings, not {}", type_name(&other))),
            },
            "tenant" => fail("the tenant comes from the token and cannot be set in an event".into()),
            _ if key.is_empty() || !fits(&key, MAX_TEXT) => {
                fail(format!("field names must be 1 to {MAX_TEXT} characters"))
            }
            // Identifier fields are attributes (to be pseudonymised), never samples.
            _ if v.is_number() && !is_identifier_key(&key) => match number(&v).map(sample) {
                Some(Ok(n)) => samples.push((key.into_owned(), n)),
                Some(Err(e)) => fail(e),
                None => fail(sample_range()),
            },
            _ => {
                if depth(&v) > MAX_DEPTH {
                    fail(format!("nests deeper than {MAX_DEPTH} levels"));
                } else {
                    attrs.insert(key.into_owned(), v);
                }
            }
        }
    }
    if let Some(v) = value {
        match &name {
            Some(n) => samples.insert(0, (n.clone(), v)),
            None => errors.push(FieldError::new(at.to(&["name"]), "is required when value is given")),
        }
    }
    if samples.len() > MAX_SAMPLES {
        errors.push(FieldError::new(at.base(), format!("has {} numeric fields; at most {MAX_SAMPLES}", samples.len())));
    }
    if errors.len() > before {
        return None;
    }
    let kind = kind.unwrap_or(if samples.is_empty() { Kind::Event } else { Kind::Metric });
    Some(Event {
        source: source.unwrap_or_else(|| "unknown".to_owned()),
        name,
        kind,
        ts_ms: ts.unwrap_or(now_ms),
        samples,
        labels,
        attrs,
    })
}

fn parse_labels(l: Map<String, Value>, at: At, out: &mut BTreeMap<String, String>, errors: &mut Vec<FieldError>) {
    if l.len() > MAX_LABELS {
        errors.push(FieldError::new(at.to(&["labels"]), format!("at most {MAX_LABELS} labels; got {}", l.len())));
        return;
    }
    for (k, v) in l {
        let mut fail = |detail: String| errors.push(FieldError::new(at.to(&["labels", &k]), detail));
        if k.is_empty() || !fits(&k, MAX_LABEL_KEY) {
            fail(format!("label names must be 1 to {MAX_LABEL_KEY} characters"));
            continue;
        }
        match v {
            Value::String(s) if fits(&s, MAX_TEXT) => {
                out.insert(k, s);
            }
            Value::String(_) => fail(format!("label values must be at most {MAX_TEXT} characters")),
            other => fail(format!("label values must be strings, not {}", type_name(&other))),
        }
    }
}

/// An event pseudonymised for its tenant: the parts of its stream record.
#[derive(Debug, Clone, PartialEq)]
pub struct Scrubbed {
    pub source: String,
    pub name: Option<String>,
    pub kind: Kind,
    pub ts: i64,
    pub samples: Vec<(String, f64)>,
    pub labels: BTreeMap<String, String>,
    pub attrs: Map<String, Value>,
}

/// `s` scrubbed, reusing `s` when there was nothing to replace.
fn scrub_owned(p: &Pseudonymiser<'_>, s: String) -> String {
    let replaced = match p.scrub_text(&s) {
        std::borrow::Cow::Borrowed(_) => None,
        std::borrow::Cow::Owned(o) => Some(o),
    };
    replaced.unwrap_or(s)
}

impl Event {
    /// Anonymise for `tenant` (what [`Pseudonymiser::scrub_object`] does to a document, field by
    /// field: keys scanned, identifier labels replaced whole, other text scanned).
    pub fn scrub(self, p: &Pseudonymiser<'_>) -> Scrubbed {
        // Most labels hold nothing to replace: then the map is kept as it is.
        let untouched = self.labels.iter().all(|(k, v)| {
            !naksha_core::privacy::could_hold_pii(k)
                && !is_identifier_key(k)
                && !naksha_core::privacy::could_hold_pii(v)
        });
        let labels = if untouched {
            self.labels
        } else {
            let mut labels = BTreeMap::new();
            for (k, v) in self.labels {
                let k = scrub_owned(p, k);
                let v = if is_identifier_key(&k) { p.pseudonym(&v) } else { scrub_owned(p, v) };
                labels.insert(k, v);
            }
            labels
        };
        let mut attrs = self.attrs;
        p.scrub_object(&mut attrs);
        Scrubbed {
            source: scrub_owned(p, self.source),
            name: self.name.map(|n| scrub_owned(p, n)),
            kind: self.kind,
            ts: self.ts_ms,
            samples: self.samples.into_iter().map(|(n, v)| (scrub_owned(p, n), v)).collect(),
            labels,
            attrs,
        }
    }

    /// Anonymise for `tenant` and turn into the stream record.
    pub fn into_record(self, id: String, tenant: &TenantId, p: &Pseudonymiser<'_>) -> StreamRecord {
        let s = self.scrub(p);
        StreamRecord {
            v: RECORD_VERSION,
            id,
            tenant: tenant.clone(),
            source: s.source,
            name: s.name,
            kind: s.kind,
            ts: s.ts,
            samples: s.samples,
            labels: s.labels,
            attrs: s.attrs,
            rq: None,
            ix: None,
            tp: None,
        }
    }
}

/// A [`StreamRecord`] as ingest writes it, borrowing every part: the same JSON, field for field,
/// without copying the request's id, tenant and trace into each event.
#[derive(Debug, Serialize)]
pub struct RecordLine<'a> {
    pub v: u8,
    pub id: &'a str,
    pub tenant: &'a TenantId,
    pub source: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<&'a str>,
    pub kind: Kind,
    pub ts: i64,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub samples: &'a [(String, f64)],
    #[serde(skip_serializing_if = "no_labels")]
    pub labels: &'a BTreeMap<String, String>,
    #[serde(skip_serializing_if = "no_attrs")]
    pub attrs: &'a Map<String, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rq: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ix: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tp: Option<&'a str>,
}

fn no_labels(l: &&BTreeMap<String, String>) -> bool {
    l.is_empty()
}

fn no_attrs(a: &&Map<String, Value>) -> bool {
    a.is_empty()
}

impl<'a> RecordLine<'a> {
    /// The line of `event` (scrubbed), number `ix` of request `rq`.
    pub fn new(
        event: &'a Scrubbed,
        id: &'a str,
        tenant: &'a TenantId,
        rq: Option<&'a str>,
        ix: Option<u16>,
        tp: Option<&'a str>,
    ) -> Self {
        Self {
            v: RECORD_VERSION,
            id,
            tenant,
            source: &event.source,
            name: event.name.as_deref(),
            kind: event.kind,
            ts: event.ts,
            samples: &event.samples,
            labels: &event.labels,
            attrs: &event.attrs,
            rq,
            ix,
            tp,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use naksha_core::privacy::PiiKey;
    use serde_json::json;

    const NOW: i64 = 1_764_072_000_000; // 2025-11-25T12:00:00Z

    fn parse(v: Value) -> Result<Vec<Event>, InvalidBody> {
        parse_body(v.to_string().as_bytes(), NOW)
    }

    fn pointers(p: &InvalidBody) -> Vec<&str> {
        p.errors.iter().map(|e| e.pointer.as_str()).collect()
    }

    #[test]
    fn a_record_line_is_the_stream_record_byte_for_byte() {
        let key = PiiKey::from_secret(b"k");
        let p = key.for_tenant("acme");
        let acme = TenantId::from_record("acme").unwrap();
        let events = parse(json!({"events": [
            {"m": 1},
            {"source": "web", "name": "lat", "value": 2.5, "labels": {"client_ip": "10.0.0.1", "r": "eu"},
             "msg": "from 10.1.2.3", "user": {"id": 7}, "kind": "metric", "ts": "2025-11-25T11:59:00Z"},
            {"source": "log", "kind": "log", "text": "x"},
        ]}))
        .unwrap();
        for (ix, event) in events.into_iter().enumerate() {
            let mut record = event.clone().into_record(format!("id-{ix}"), &acme, &p);
            let scrubbed = event.scrub(&p);
            let line = RecordLine::new(&scrubbed, &record.id, &acme, Some("00000000000000aa"), Some(ix as u16), None);
            record.rq = Some("00000000000000aa".into());
            record.ix = Some(ix as u16);
            assert_eq!(serde_json::to_vec(&line).unwrap(), serde_json::to_vec(&record).unwrap());
        }
    }

    #[test]
    fn a_flat_object_is_one_event_with_a_sample_per_numeric_field() {
        let events = parse(json!({"m": 1})).unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].samples, vec![("m".to_owned(), 1.0)]);
        assert_eq!(events[0].kind, Kind::Metric);
        assert_eq!(events[0].source, "unknown");
        assert_eq!(events[0].ts_ms, NOW);
    }

    #[test]
    fn name_and_value_make_the_first_sample_and_other_numbers_follow() {
        let e = &parse(json!({"source": "web-1", "name": "latency", "value": 12.5, "bytes": 300, "path": "/x"}))
            .unwrap()[0];
        assert_eq!(e.samples, vec![("latency".into(), 12.5), ("bytes".into(), 300.0)]);
        assert_eq!(e.attrs["path"], "/x");
    }

    #[test]
    fn batch_of_events_is_parsed_in_order() {
        let events = parse(json!({"events": [{"a": 1}, {"b": 2}, {"c": 3}]})).unwrap();
        let names: Vec<_> = events.iter().map(|e| e.samples[0].0.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
    }

    #[test]
    fn rejects_arrays_scalars_and_empty_batches() {
        assert!(parse(json!([{"m": 1}])).is_err());
        assert!(parse(json!(5)).is_err());
        let p = parse(json!({"events": []})).unwrap_err();
        assert_eq!(pointers(&p), ["/events"]);
        assert!(parse_body(b"{not json", NOW).is_err());
        assert!(parse_body(b"   ", NOW).is_err());
    }

    #[test]
    fn rejects_more_than_500_events() {
        let events: Vec<Value> = (0..501).map(|i| json!({"m": i})).collect();
        let p = parse(json!({"events": events})).unwrap_err();
        assert!(p.errors[0].detail.contains("501"));
        let events: Vec<Value> = (0..500).map(|i| json!({"m": i})).collect();
        assert_eq!(parse(json!({"events": events})).unwrap().len(), 500);
    }

    #[test]
    fn lists_every_problem_with_its_pointer() {
        let p = parse(json!({"events": [
            {"name": 5, "value": "x"},
            {"m": 1},
            {"ts": "yesterday", "kind": "trace", "labels": {"env": 3}},
            "not an object",
            {"value": 1},
            {"tenant": "globex", "m": 1}
        ]}))
        .unwrap_err();
        let mut ptrs = pointers(&p);
        ptrs.sort();
        assert_eq!(
            ptrs,
            [
                "/events/0/name",
                "/events/0/value",
                "/events/2/kind",
                "/events/2/labels/env",
                "/events/2/ts",
                "/events/3",
                "/events/4/name",
                "/events/5/tenant"
            ]
        );
    }

    #[test]
    fn time_accepts_rfc3339_seconds_and_millis_within_range() {
        let e = &parse(json!({"m": 1, "ts": "2025-11-25T11:59:00Z"})).unwrap()[0];
        assert_eq!(e.ts_ms, NOW - 60_000);
        let e = &parse(json!({"m": 1, "ts": 1_764_071_940})).unwrap()[0];
        assert_eq!(e.ts_ms, NOW - 60_000);
        let e = &parse(json!({"m": 1, "ts": 1_764_071_940_000_i64})).unwrap()[0];
        assert_eq!(e.ts_ms, NOW - 60_000);
        assert!(parse(json!({"m": 1, "ts": "1999-12-31T23:59:59Z"})).is_err());
        assert!(parse(json!({"m": 1, "ts": NOW + 2 * MAX_FUTURE_MS})).is_err());
    }

    #[test]
    fn identifier_numbers_are_attributes_not_samples() {
        let e = &parse(json!({"user_id": 42, "latency": 3})).unwrap()[0];
        assert_eq!(e.samples, vec![("latency".into(), 3.0)]);
        assert_eq!(e.attrs["user_id"], 42);
    }

    #[test]
    fn limits_on_labels_magnitude_and_depth() {
        let labels: Map<String, Value> = (0..33).map(|i| (format!("k{i}"), json!("v"))).collect();
        assert!(parse(json!({"m": 1, "labels": labels})).is_err());
        assert!(parse(json!({"name": "x", "value": 1e60})).is_err());
        let mut deep = json!(1);
        for _ in 0..12 {
            deep = json!({ "d": deep });
        }
        assert!(parse(json!({"m": 1, "nested": deep})).is_err());
    }

    #[test]
    fn samples_too_close_to_zero_for_dynamodb_are_refused_and_zero_is_not() {
        for tiny in [1e-70, -1e-51, 5e-324] {
            let err = parse(json!({"name": "x", "value": tiny})).unwrap_err();
            assert_eq!(err.errors[0].pointer, "/value", "{tiny}");
            let err = parse(json!({"latency": tiny})).unwrap_err();
            assert_eq!(err.errors[0].pointer, "/latency", "{tiny}");
        }
        for fine in [0.0, 1e-50, -1e-50, 1e50, 3.5] {
            assert_eq!(parse(json!({"name": "x", "value": fine})).unwrap()[0].samples[0].1, fine);
        }
    }

    use proptest::strategy::Strategy as _;

    proptest::proptest! {
        /// Whatever ingest accepts, the consumer can store: the value, its square and the sums of
        /// up to a whole request of them are 0 or inside DynamoDB's range (1e-130 to 1e126).
        #[test]
        fn every_accepted_sample_and_its_aggregates_fit_dynamodb(
            values in proptest::collection::vec(proptest::num::f64::ANY, 1..50),
        ) {
            let storable = |x: f64| x == 0.0 || (1e-130..1e126).contains(&x.abs());
            let (mut sum, mut sumsq) = (0.0f64, 0.0f64);
            for v in values {
                let Ok(events) = parse(json!({"name": "x", "value": v})) else { continue };
                let v = events[0].samples[0].1;
                sum += v * MAX_EVENTS as f64;
                sumsq += v * v * MAX_EVENTS as f64;
                proptest::prop_assert!(storable(v) && storable(v * v), "{v}");
                proptest::prop_assert!(storable(sumsq) && sum.is_finite(), "{sum} {sumsq}");
            }
        }

        /// The fast path for `{"events": [...]}` reads every body exactly as the general path
        /// does: the same events, or the same errors in the same order. Bodies are written as
        /// text, so keys repeat, come escaped, and come in any order.
        #[test]
        fn the_fast_path_reads_every_body_as_the_general_path_does(
            items in proptest::collection::vec(
                proptest::prop_oneof![
                    8 => proptest::collection::vec(
                        (
                            proptest::sample::select(vec![
                                "\"source\"", "\"name\"", "\"value\"", "\"ts\"", "\"kind\"", "\"labels\"",
                                "\"tenant\"", "\"m\"", "\"user\"", "\"a~b/c\"", "\"\"", "\"zz\"",
                                "\"so\\u0075rce\"", "\"events\"",
                            ]),
                            proptest::sample::select(vec![
                                "\"web-1\"", "\"\"", "3", "-2.5", "1e60", "1e-60", "0", "null", "true", "[1,2]",
                                "{\"r\":\"eu\"}", "{\"r\":1}", "\"2026-11-25T12:00:00Z\"", "\"log\"",
                                "\"metric\"", "\"10.1.2.3\"", "{\"a\":{\"b\":[{\"c\":1}]}}", "1795600000",
                            ]),
                        ),
                        0..7,
                    )
                    .prop_map(|fields| {
                        let inner: Vec<String> = fields.iter().map(|(k, v)| format!("{k}:{v}")).collect();
                        format!("{{{}}}", inner.join(","))
                    }),
                    1 => proptest::sample::select(vec!["5".to_owned(), "\"s\"".to_owned(), "null".to_owned(), "[1]".to_owned(), "true".to_owned()]),
                ],
                0..6,
            ),
            extra in proptest::sample::select(vec!["", ",\"x\":1", ",\"events\":[]"]),
        ) {
            let body = format!("{{\"events\":[{}]{extra}}}", items.join(","));
            let now = 1_796_083_200_000;
            proptest::prop_assert_eq!(parse_body(body.as_bytes(), now), parse_general(body.as_bytes(), now), "{}", body);
        }
    }

    #[test]
    fn record_carries_no_pii() {
        let key = PiiKey::from_secret(b"k");
        let p = key.for_tenant("acme");
        let e = parse(json!({
            "source": "10.0.0.9", "name": "login", "value": 1,
            "user": "alice", "email": "alice@example.com", "msg": "from 192.168.1.20",
            "labels": {"client_ip": "2001:db8::1", "region": "eu"}
        }))
        .unwrap()
        .remove(0);
        let r = e.into_record("id-1".into(), &TenantId::from_record("acme").unwrap(), &p);
        let text = serde_json::to_string(&r).unwrap();
        for raw in ["10.0.0.9", "alice", "192.168.1.20", "2001:db8::1"] {
            assert!(!text.contains(raw), "{raw} in {text}");
        }
        assert_eq!(r.labels["region"], "eu");
        assert_eq!(r.tenant.as_str(), "acme");
        let back: StreamRecord = serde_json::from_str(&text).unwrap();
        assert_eq!(back, r);
    }
}
