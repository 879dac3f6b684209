//! The telemetry event: what `POST /ingest` accepts, and the record it puts on the stream.
//!
//! Parsing is "parse, don't validate": [`parse_body`] turns bytes into [`Event`]s or a list of
//! every problem found (each located by a JSON pointer), [`Event::scrub`] anonymises it for its
//! tenant and [`Event::write_line`] writes its stream record. An event borrows its text from the
//! body wherever it can ([`crate::val`]): most strings are never copied between the request and
//! the record. Nothing here does I/O.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use chrono::DateTime;
use naksha_contracts::TenantId;
use naksha_core::privacy::{Pseudonymiser, could_hold_pii, is_identifier_key};
use naksha_core::problem::FieldError;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::val::{
    Fields, Val, into_map_order, read_fields_as_sent, write_cow, write_f64, write_fields, write_i64, write_str,
};

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

/// A validated event, its text borrowed from the body where it can be; anonymised in place by
/// [`Event::scrub`].
#[derive(Debug, Clone, PartialEq)]
pub struct Event<'a> {
    pub source: Cow<'a, str>,
    pub name: Option<Cow<'a, str>>,
    pub kind: Kind,
    pub ts_ms: i64,
    pub samples: Vec<(Cow<'a, str>, f64)>,
    /// Sorted by key, each key once (a map's order).
    pub labels: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    /// Sorted by key, each key once (a map's order).
    pub attrs: Fields<'a>,
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

/// A batch's element when it is an object: its fields as sent. Anything else fails the fast
/// path, and the general path names what it was.
struct Item<'de>(Fields<'de>);

impl<'de: 'a, 'a> Deserialize<'de> for Item<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(ItemVisitor)
    }
}

struct ItemVisitor;

impl<'de> Visitor<'de> for ItemVisitor {
    type Value = Item<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an event object")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        read_fields_as_sent(map).map(Item)
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
    // Checked as UTF-8 once, the body is read as text: strings are then not checked one by one.
    let text = std::str::from_utf8(body).ok()?;
    let batch: Batch<'_> = serde_json::from_str(text).ok()?;
    (1..=MAX_EVENTS).contains(&batch.events.len()).then_some(batch.events)
}

/// Parse a request body: one event object, or `{"events": [...]}` with 1 to 500 events.
/// All or nothing: any problem in any event fails the whole body.
pub fn parse_body(body: &[u8], now_ms: i64) -> Result<Vec<Event<'_>>, InvalidBody> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(InvalidBody::new("the body is empty; send one event object or {\"events\": [...]}"));
    }
    if let Some(items) = fast_batch(body) {
        let mut cx = Context::new(now_ms);
        let mut errors = Vec::new();
        let mut events = Vec::with_capacity(items.len());
        for (i, Item(mut fields)) in items.into_iter().enumerate() {
            // An event's fields as sent; put in a map's order only when a key repeats.
            if !unique_keys(&fields) {
                into_map_order(&mut fields);
            }
            if let Some(e) = parse_fields(fields, At::Event(i), &mut cx, &mut errors) {
                events.push(e);
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
fn parse_general(body: &[u8], now_ms: i64) -> Result<Vec<Event<'_>>, InvalidBody> {
    let doc: Val<'_> =
        serde_json::from_slice(body).map_err(|e| InvalidBody::new(format!("the body is not valid JSON: {e}")))?;
    let mut cx = Context::new(now_ms);
    let mut errors = Vec::new();
    let is_batch = |fields: &Fields<'_>| fields.iter().any(|(k, v)| k == "events" && matches!(v, Val::Arr(_)));
    let events = match doc {
        Val::Obj(mut obj) if is_batch(&obj) => {
            if obj.len() > 1 {
                let extra: Vec<&str> = obj.iter().map(|(k, _)| k.as_ref()).filter(|k| *k != "events").collect();
                errors.push(FieldError::new(
                    "",
                    format!("a batch carries only \"events\"; unexpected field(s): {}", extra.join(", ")),
                ));
            }
            let at = obj.iter().position(|(k, _)| k == "events").unwrap_or_default();
            let Val::Arr(items) = obj.swap_remove(at).1 else {
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
                    Val::Obj(fields) => {
                        if let Some(e) = parse_fields(fields, At::Event(i), &mut cx, &mut errors) {
                            events.push(e);
                        }
                    }
                    other => errors.push(FieldError::new(
                        At::Event(i).base(),
                        format!("must be an object, not {}", other.type_name()),
                    )),
                }
            }
            events
        }
        Val::Obj(fields) => parse_fields(fields, At::Root, &mut cx, &mut errors).into_iter().collect(),
        other => {
            return Err(InvalidBody::new(format!(
                "expected one event object or {{\"events\": [...]}}, not {}",
                other.type_name()
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

fn text_field(v: Val<'_>) -> Result<Cow<'_, str>, String> {
    match v {
        Val::Str(s) if !s.trim().is_empty() && fits(&s, MAX_TEXT) => Ok(s),
        Val::Str(_) => Err(format!("must be 1 to {MAX_TEXT} characters")),
        other => Err(format!("must be a string, not {}", other.type_name())),
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

fn number(v: &Val<'_>) -> Option<f64> {
    v.as_f64().filter(|f| f.is_finite())
}

fn parse_ts(v: &Val<'_>, now_ms: i64) -> Result<i64, String> {
    let ms = match v {
        Val::Str(s) => DateTime::parse_from_rfc3339(s)
            .map(|t| t.timestamp_millis())
            .map_err(|_| "must be an RFC 3339 time such as 2026-11-25T13:00:00Z, or epoch seconds".to_owned())?,
        Val::Num(_) => {
            let n = number(v).ok_or("must be a finite number")?;
            // Epoch milliseconds are 13 digits in this century; seconds are 10.
            if n.abs() >= 1e11 { n as i64 } else { (n * 1000.0) as i64 }
        }
        other => return Err(format!("must be an RFC 3339 string or epoch seconds, not {}", other.type_name())),
    };
    if ms < MIN_TS_MS {
        return Err("is before 2000-01-01".into());
    }
    if ms > now_ms + MAX_FUTURE_MS {
        return Err("is more than an hour in the future".into());
    }
    Ok(ms)
}

/// Whether no key of `fields` repeats (a few fields: compared pairwise, no sorting).
fn unique_keys(fields: &Fields<'_>) -> bool {
    fields.len() <= 16 && fields.iter().enumerate().all(|(i, (k, _))| fields[..i].iter().all(|(other, _)| other != k))
}

/// What the events of one body share: the time they are judged against, and answers that repeat
/// from event to event (the same time string, the same numeric field names).
struct Context<'a> {
    now_ms: i64,
    /// The last time string read (lent by the body) and its milliseconds.
    last_ts: Option<(&'a str, i64)>,
    /// Names of numeric fields seen, and whether each is an identifier key (a few per batch;
    /// at most [`Context::KEYS`] remembered).
    keys: Vec<(&'a str, bool)>,
}

impl<'a> Context<'a> {
    const KEYS: usize = 16;

    fn new(now_ms: i64) -> Self {
        Self { now_ms, last_ts: None, keys: Vec::new() }
    }

    /// [`parse_ts`], remembering the last time string.
    fn ts(&mut self, v: &Val<'a>) -> Result<i64, String> {
        if let Val::Str(Cow::Borrowed(text)) = v {
            if let Some((last, ms)) = self.last_ts
                && last == *text
            {
                return Ok(ms);
            }
            let ms = parse_ts(v, self.now_ms)?;
            self.last_ts = Some((text, ms));
            return Ok(ms);
        }
        parse_ts(v, self.now_ms)
    }

    /// [`is_identifier_key`], remembered for names lent by the body.
    #[allow(clippy::ptr_arg, reason = "whether the name is borrowed is what decides")]
    fn is_identifier(&mut self, key: &Cow<'a, str>) -> bool {
        let Cow::Borrowed(key) = key else { return is_identifier_key(key) };
        if let Some((_, answer)) = self.keys.iter().find(|(k, _)| k == key) {
            return *answer;
        }
        let answer = is_identifier_key(key);
        if self.keys.len() < Self::KEYS {
            self.keys.push((key, answer));
        }
        answer
    }
}

/// What a field becomes when it is not one of the event's own.
enum Keep<'a> {
    Nothing,
    Sample(f64),
    Attr(Val<'a>),
}

/// An event from its fields, each key once, in any order: the event, samples, attributes and
/// errors are what the fields in key order (as a [`Map`] iterates them) make.
fn parse_fields<'a>(
    mut fields: Fields<'a>,
    at: At,
    cx: &mut Context<'a>,
    errors: &mut Vec<FieldError>,
) -> Option<Event<'a>> {
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
    let mut labels = Vec::new();
    let mut samples = Vec::new();
    // Attributes stay in `fields`, moved down over the fields taken out (no second vector).
    let mut attrs = 0;
    // Each failing field's key and where its errors start, to give them in key order.
    let mut failed: Vec<(Cow<'a, str>, usize)> = Vec::new();
    for i in 0..fields.len() {
        let (key, v) = std::mem::replace(&mut fields[i], (Cow::Borrowed(""), Val::Null));
        let start = errors.len();
        let mut fail = |detail: String| errors.push(FieldError::new(at.to(&[&key]), detail));
        let keep = match &*key {
            "source" => {
                source = text_field(v).map_err(&mut fail).ok();
                Keep::Nothing
            }
            "name" => {
                name = text_field(v).map_err(&mut fail).ok();
                Keep::Nothing
            }
            "value" => {
                match number(&v) {
                    Some(n) => match sample(n) {
                        Ok(n) => value = Some(n),
                        Err(e) => fail(e),
                    },
                    None => fail(format!("must be a number, not {}", v.type_name())),
                }
                Keep::Nothing
            }
            "ts" => {
                match cx.ts(&v) {
                    Ok(ms) => ts = Some(ms),
                    Err(e) => fail(e),
                }
                Keep::Nothing
            }
            "kind" => {
                match v.as_str() {
                    Some("metric") => kind = Some(Kind::Metric),
                    Some("log") => kind = Some(Kind::Log),
                    Some("event") => kind = Some(Kind::Event),
                    _ => fail("must be one of metric, log, event".into()),
                }
                Keep::Nothing
            }
            "labels" => {
                match v {
                    Val::Obj(l) => parse_labels(l, at, &mut labels, errors),
                    other => fail(format!("must be an object of strings, not {}", other.type_name())),
                }
                Keep::Nothing
            }
            "tenant" => {
                fail("the tenant comes from the token and cannot be set in an event".into());
                Keep::Nothing
            }
            _ if key.is_empty() || !fits(&key, MAX_TEXT) => {
                fail(format!("field names must be 1 to {MAX_TEXT} characters"));
                Keep::Nothing
            }
            // Identifier fields are attributes (to be pseudonymised), never samples.
            _ if matches!(v, Val::Num(_)) && !cx.is_identifier(&key) => match number(&v).map(sample) {
                Some(Ok(n)) => Keep::Sample(n),
                Some(Err(e)) => {
                    fail(e);
                    Keep::Nothing
                }
                None => {
                    fail(sample_range());
                    Keep::Nothing
                }
            },
            _ if v.depth() > MAX_DEPTH => {
                fail(format!("nests deeper than {MAX_DEPTH} levels"));
                Keep::Nothing
            }
            _ => Keep::Attr(v),
        };
        if errors.len() > start {
            failed.push((key.clone(), start));
        }
        match keep {
            Keep::Sample(n) => samples.push((key, n)),
            Keep::Attr(v) => {
                fields[attrs] = (key, v);
                attrs += 1;
            }
            Keep::Nothing => {}
        }
    }
    fields.truncate(attrs);
    let mut attrs = fields;
    in_key_order(errors, &mut failed);
    samples.sort_by(|a, b| a.0.cmp(&b.0));
    attrs.sort_by(|a, b| a.0.cmp(&b.0));
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
        source: source.unwrap_or(Cow::Borrowed("unknown")),
        name,
        kind,
        ts_ms: ts.unwrap_or(cx.now_ms),
        samples,
        labels,
        attrs,
    })
}

/// Reorder the errors of the fields that `failed` lists (each field's errors start where it
/// says, in the order the fields came) into the fields' key order, each field's own in order.
fn in_key_order(errors: &mut Vec<FieldError>, failed: &mut [(Cow<'_, str>, usize)]) {
    if failed.windows(2).all(|w| w[0].0 <= w[1].0) {
        return;
    }
    let Some(&(_, first)) = failed.first() else { return };
    let all: Vec<FieldError> = errors.drain(first..).collect();
    let mut chunks: Vec<(&str, &[FieldError])> = failed
        .iter()
        .enumerate()
        .map(|(i, (key, start))| {
            let end = failed.get(i + 1).map_or(first + all.len(), |next| next.1);
            (key.as_ref(), &all[start - first..end - first])
        })
        .collect();
    chunks.sort_by(|a, b| a.0.cmp(b.0));
    errors.extend(chunks.into_iter().flat_map(|(_, e)| e.iter().cloned()));
}

/// `l` is an object's fields (a map's order), so the labels come out sorted, each key once.
fn parse_labels<'a>(l: Fields<'a>, at: At, out: &mut Vec<(Cow<'a, str>, Cow<'a, str>)>, errors: &mut Vec<FieldError>) {
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
            Val::Str(s) if fits(&s, MAX_TEXT) => out.push((k, s)),
            Val::Str(_) => fail(format!("label values must be at most {MAX_TEXT} characters")),
            other => fail(format!("label values must be strings, not {}", other.type_name())),
        }
    }
}

/// Replace `s` by its scrubbed form, if scrubbing changed it.
fn scrub_cow<'a>(p: &Pseudonymiser<'a>, s: &mut Cow<'a, str>) {
    if let Some(clean) = p.scrubbed(s) {
        *s = clean;
    }
}

/// [`Pseudonymiser::scrub_object`] for borrowed fields: keys scanned (the fields put in a map's
/// order again if that changed one), identifier fields pseudonymised whole, other text scanned.
fn scrub_fields<'a>(p: &Pseudonymiser<'a>, fields: &mut Fields<'a>) {
    if fields.iter().any(|(k, _)| p.scrubbed(k).is_some()) {
        for (k, _) in fields.iter_mut() {
            scrub_cow(p, k);
        }
        into_map_order(fields);
    }
    for (k, v) in fields.iter_mut() {
        if p.is_identifier(k) {
            pseudonymise_whole(p, v);
        } else {
            scrub_val(p, v);
        }
    }
}

/// [`Pseudonymiser::scrub_json`] for a borrowed value.
fn scrub_val<'a>(p: &Pseudonymiser<'a>, v: &mut Val<'a>) {
    match v {
        Val::Str(s) => scrub_cow(p, s),
        Val::Arr(items) => items.iter_mut().for_each(|v| scrub_val(p, v)),
        Val::Obj(fields) => scrub_fields(p, fields),
        Val::Null | Val::Bool(_) | Val::Num(_) => {}
    }
}

/// [`Pseudonymiser::pseudonymise_whole`] for a borrowed value: the same pseudonym of the same
/// text (a structure's compact JSON in a map's order).
fn pseudonymise_whole<'a>(p: &Pseudonymiser<'a>, v: &mut Val<'a>) {
    let replacement = match &*v {
        Val::Null | Val::Bool(_) => return,
        Val::Str(s) => p.pseudonym_lent(s),
        Val::Num(n) => p.pseudonym_lent(&n.to_string()),
        other => {
            let mut text = Vec::new();
            other.write_json(&mut text);
            // What a Val writes is UTF-8: it writes only `str`s and ASCII.
            p.pseudonym_lent(std::str::from_utf8(&text).unwrap_or_default())
        }
    };
    *v = Val::Str(replacement);
}

impl<'a> Event<'a> {
    /// Anonymise for the pseudonymiser's tenant (what [`Pseudonymiser::scrub_object`] does to a
    /// document, field by field: keys scanned, identifier labels replaced whole, other text
    /// scanned). Text with nothing to replace stays borrowed.
    pub fn scrub(&mut self, p: &Pseudonymiser<'a>) {
        // Most labels hold nothing to replace: then they are kept as they are.
        let untouched =
            self.labels.iter().all(|(k, v)| !could_hold_pii(k) && !p.is_identifier(k) && !could_hold_pii(v));
        if !untouched {
            for (k, v) in &mut self.labels {
                scrub_cow(p, k);
                if p.is_identifier(k) {
                    *v = p.pseudonym_lent(v);
                } else {
                    scrub_cow(p, v);
                }
            }
            into_map_order(&mut self.labels);
        }
        scrub_fields(p, &mut self.attrs);
        scrub_cow(p, &mut self.source);
        if let Some(name) = &mut self.name {
            scrub_cow(p, name);
        }
        for (name, _) in &mut self.samples {
            scrub_cow(p, name);
        }
    }

    /// Append the event's stream record (a [`StreamRecord`] as JSON, field for field) to `out`:
    /// event `ix` of request `rq`, with the request's trace.
    pub fn write_line(
        &self,
        out: &mut Vec<u8>,
        id: &str,
        tenant: &TenantId,
        rq: Option<&str>,
        ix: Option<u16>,
        tp: Option<&str>,
    ) {
        out.extend_from_slice(b"{\"v\":");
        write_i64(out, i64::from(RECORD_VERSION));
        out.extend_from_slice(b",\"id\":");
        write_str(out, id);
        out.extend_from_slice(b",\"tenant\":");
        write_str(out, tenant.as_str());
        out.extend_from_slice(b",\"source\":");
        write_cow(out, &self.source);
        if let Some(name) = &self.name {
            out.extend_from_slice(b",\"name\":");
            write_cow(out, name);
        }
        out.extend_from_slice(match self.kind {
            Kind::Metric => b",\"kind\":\"metric\",\"ts\":",
            Kind::Log => b",\"kind\":\"log\",\"ts\":",
            Kind::Event => b",\"kind\":\"event\",\"ts\":",
        });
        write_i64(out, self.ts_ms);
        if !self.samples.is_empty() {
            out.extend_from_slice(b",\"samples\":[");
            for (i, (name, x)) in self.samples.iter().enumerate() {
                out.extend_from_slice(if i == 0 { b"[" } else { b",[" });
                write_cow(out, name);
                out.push(b',');
                write_f64(out, *x);
                out.push(b']');
            }
            out.push(b']');
        }
        if !self.labels.is_empty() {
            out.extend_from_slice(b",\"labels\":{");
            for (i, (k, v)) in self.labels.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_cow(out, k);
                out.push(b':');
                write_cow(out, v);
            }
            out.push(b'}');
        }
        if !self.attrs.is_empty() {
            out.extend_from_slice(b",\"attrs\":");
            write_fields(out, &self.attrs);
        }
        if let Some(rq) = rq {
            out.extend_from_slice(b",\"rq\":");
            write_str(out, rq);
        }
        if let Some(ix) = ix {
            out.extend_from_slice(b",\"ix\":");
            write_i64(out, i64::from(ix));
        }
        if let Some(tp) = tp {
            out.extend_from_slice(b",\"tp\":");
            write_str(out, tp);
        }
        out.push(b'}');
    }

    /// The same event, owning its text (for tests that outlive their body).
    #[cfg(test)]
    pub fn into_owned(self) -> Event<'static> {
        let own = |s: Cow<'_, str>| Cow::Owned(s.into_owned());
        Event {
            source: own(self.source),
            name: self.name.map(own),
            kind: self.kind,
            ts_ms: self.ts_ms,
            samples: self.samples.into_iter().map(|(n, x)| (own(n), x)).collect(),
            labels: self.labels.into_iter().map(|(k, v)| (own(k), own(v))).collect(),
            attrs: self.attrs.into_iter().map(|(k, v)| (own(k), v.into_owned())).collect(),
        }
    }

    /// The stream record [`Event::write_line`] writes, built field by field, for the tests to
    /// hold the line to what serde writes of it.
    #[cfg(test)]
    pub fn to_record(
        &self,
        id: &str,
        tenant: &TenantId,
        rq: Option<&str>,
        ix: Option<u16>,
        tp: Option<&str>,
    ) -> StreamRecord {
        let attrs: Map<String, Value> =
            self.attrs.iter().map(|(k, v)| (k.to_string(), serde_json::to_value(v).unwrap_or(Value::Null))).collect();
        StreamRecord {
            v: RECORD_VERSION,
            id: id.to_owned(),
            tenant: tenant.clone(),
            source: self.source.to_string(),
            name: self.name.as_ref().map(|n| n.to_string()),
            kind: self.kind,
            ts: self.ts_ms,
            samples: self.samples.iter().map(|(n, x)| (n.to_string(), *x)).collect(),
            labels: self.labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            attrs,
            rq: rq.map(str::to_owned),
            ix,
            tp: tp.map(str::to_owned),
        }
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use naksha_core::privacy::PiiKey;
    use serde_json::json;

    const NOW: i64 = 1_764_072_000_000; // 2025-11-25T12:00:00Z

    fn parse(v: Value) -> Result<Vec<Event<'static>>, InvalidBody> {
        parse_body(v.to_string().as_bytes(), NOW).map(|events| events.into_iter().map(Event::into_owned).collect())
    }

    fn pointers(p: &InvalidBody) -> Vec<&str> {
        p.errors.iter().map(|e| e.pointer.as_str()).collect()
    }

    fn attr(e: &Event<'_>, key: &str) -> Value {
        let v = e.attrs.iter().find(|(k, _)| k == key).map(|(_, v)| v);
        serde_json::to_value(v.expect("the attribute")).unwrap()
    }

    /// Each event of `body` scrubbed and written as a line, beside the same record built as a
    /// [`StreamRecord`] and serialized by serde, and beside the document path: `Value` fields
    /// scrubbed by [`Pseudonymiser::scrub_object`].
    fn lines_three_ways(body: &str) -> Vec<(Vec<u8>, Vec<u8>, Value, Value)> {
        let key = PiiKey::from_secret(b"k");
        let arena = naksha_core::privacy::Bump::new();
        let memo = naksha_core::privacy::PseudonymMemo::new("acme", &arena);
        let p = key.for_memo(&memo);
        let acme = TenantId::from_record("acme").unwrap();
        let Ok(events) = parse_body(body.as_bytes(), NOW) else { return Vec::new() };
        let mut out = Vec::new();
        for (ix, mut event) in events.into_iter().enumerate() {
            // The attributes as a document, scrubbed the document way.
            // (Labels are an object of strings: the document way gives what ingest must.)
            let mut doc: Map<String, Value> =
                event.attrs.iter().map(|(k, v)| (k.to_string(), serde_json::to_value(v).unwrap())).collect();
            let mut labels: Map<String, Value> =
                event.labels.iter().map(|(k, v)| (k.to_string(), Value::String(v.to_string()))).collect();
            key.for_tenant("acme").scrub_object(&mut doc);
            key.for_tenant("acme").scrub_object(&mut labels);
            doc.insert("(labels)".into(), Value::Object(labels));
            event.scrub(&p);
            let id = format!("id-{ix}");
            let tp = (ix % 2 == 0).then_some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
            let mut line = Vec::new();
            event.write_line(&mut line, &id, &acme, Some("00000000000000aa"), Some(ix as u16), tp);
            let record = event.to_record(&id, &acme, Some("00000000000000aa"), Some(ix as u16), tp);
            let mut attrs = serde_json::to_value(&record.attrs).unwrap();
            attrs["(labels)"] = serde_json::to_value(&record.labels).unwrap();
            out.push((line, serde_json::to_vec(&record).unwrap(), attrs, Value::Object(doc)));
        }
        out
    }

    #[test]
    fn a_record_line_is_the_stream_record_byte_for_byte() {
        let body = json!({"events": [
            {"m": 1},
            {"source": "web", "name": "lat", "value": 2.5, "labels": {"client_ip": "10.0.0.1", "r": "eu"},
             "msg": "from 10.1.2.3", "user": {"id": 7}, "kind": "metric", "ts": "2025-11-25T11:59:00Z"},
            {"source": "log\n\"q\"", "kind": "log", "text": "x\u{1}y", "a@b.io": {"10.0.0.1": [1, null, true]}},
        ]})
        .to_string();
        let lines = lines_three_ways(&body);
        assert_eq!(lines.len(), 3);
        for (line, record, attrs, doc) in lines {
            assert_eq!(String::from_utf8(line).unwrap(), String::from_utf8(record).unwrap());
            assert_eq!(attrs, doc);
        }
    }

    #[test]
    fn keys_that_scrub_into_one_keep_the_last_as_a_map_does() {
        // A key that is already the pseudonym of an address, beside that address: after
        // scrubbing both are the same key, and the later one in key order wins.
        let pseudonym = PiiKey::from_secret(b"k").for_tenant("acme").pseudonym("10.0.0.1");
        let body = json!({"events": [{
            "m": 1,
            "labels": {"10.0.0.1": "first", pseudonym.clone(): "second", "z": "a@b.io"},
            "10.0.0.1": "first", pseudonym.clone(): "second",
        }]})
        .to_string();
        let lines = lines_three_ways(&body);
        assert_eq!(lines.len(), 1);
        let (line, record, attrs, doc) = &lines[0];
        assert_eq!(line, record);
        assert_eq!(attrs, doc);
        assert_eq!(attrs["(labels)"].as_object().unwrap().len(), 2, "{attrs}");
        assert_eq!(attrs.as_object().unwrap().len(), 2, "one attribute and the labels: {attrs}");
    }

    #[test]
    fn a_flat_object_is_one_event_with_a_sample_per_numeric_field() {
        let events = parse(json!({"m": 1})).unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].samples, vec![("m".into(), 1.0)]);
        assert_eq!(events[0].kind, Kind::Metric);
        assert_eq!(events[0].source, "unknown");
        assert_eq!(events[0].ts_ms, NOW);
    }

    #[test]
    fn name_and_value_make_the_first_sample_and_other_numbers_follow() {
        let e = &parse(json!({"source": "web-1", "name": "latency", "value": 12.5, "bytes": 300, "path": "/x"}))
            .unwrap()[0];
        assert_eq!(e.samples, vec![("latency".into(), 12.5), ("bytes".into(), 300.0)]);
        assert_eq!(attr(e, "path"), "/x");
    }

    #[test]
    fn batch_of_events_is_parsed_in_order() {
        let events = parse(json!({"events": [{"a": 1}, {"b": 2}, {"c": 3}]})).unwrap();
        let names: Vec<_> = events.iter().map(|e| e.samples[0].0.as_ref()).collect();
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
    fn what_a_batch_remembers_from_event_to_event_gives_each_event_its_own_answer() {
        // The same time string on several events, another in between, one that fails after a
        // remembered one; numeric field names repeated, more of them than are remembered.
        let mut events = vec![
            json!({"m": 1, "user_id": 7, "ts": "2025-11-25T11:59:00Z"}),
            json!({"m": 2, "user_id": 8, "ts": "2025-11-25T11:59:00Z"}),
            json!({"m": 3, "ts": "2025-11-25T11:58:00Z"}),
            json!({"m": 4, "user_id": 9, "ts": "2025-11-25T11:59:00Z"}),
        ];
        events.extend((0..20).map(|i| json!({format!("k{i}"): i, "client_ip": i, "ts": "2025-11-25T11:58:00Z"})));
        events.push(json!({"m": 5, "user_id": 10, "ts": "2025-11-25T11:57:00Z"}));
        let parsed = parse(json!({ "events": events })).unwrap();
        let ts: Vec<i64> = parsed.iter().map(|e| (NOW - e.ts_ms) / 60_000).collect();
        assert_eq!(ts[..4], [1, 1, 2, 1]);
        assert!(ts[4..24].iter().all(|m| *m == 2));
        assert_eq!(ts[24], 3);
        for e in &parsed {
            assert_eq!(e.samples.len(), 1, "{:?}", e.samples);
            assert!(e.attrs.iter().all(|(k, _)| k == "user_id" || k == "client_ip"), "{:?}", e.attrs);
        }
        assert_eq!(attr(&parsed[24], "user_id"), 10);
        assert_eq!(attr(&parsed[23], "client_ip"), 19);
        let p = parse(json!({"events": [
            {"m": 1, "ts": "2025-11-25T11:59:00Z"},
            {"m": 1, "ts": "2025-11-25T11:59:00Z"},
            {"m": 1, "ts": "1999-12-31T23:59:59Z"},
            {"m": 1, "ts": "2025-11-25T11:59:00Z"}
        ]}))
        .unwrap_err();
        assert_eq!(pointers(&p), ["/events/2/ts"]);
    }

    #[test]
    fn identifier_numbers_are_attributes_not_samples() {
        let e = &parse(json!({"user_id": 42, "latency": 3})).unwrap()[0];
        assert_eq!(e.samples, vec![("latency".into(), 3.0)]);
        assert_eq!(attr(e, "user_id"), 42);
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

        /// Whatever the fields, escapes, addresses and identifier keys, the line ingest writes is
        /// the stream record serde writes, and the attributes are scrubbed exactly as the
        /// document path scrubs them (keys that scrub into each other included).
        #[test]
        fn lines_are_records_and_attributes_are_scrubbed_as_documents_are(
            events in proptest::collection::vec(
                (
                    // Attributes (and samples, for numbers): keys that are identifiers, addresses,
                    // escaped, or plain.
                    proptest::collection::vec(
                        (
                            proptest::sample::select(vec![
                                r#""m""#, r#""user""#, r#""msg""#, r#""client_ip""#, r#""10.0.0.1""#, r#""10.0.0.2""#,
                                r#""a@b.io""#, r#""q\"k""#, r#""session""#, r#""caf\u00e9""#,
                            ]),
                            proptest::sample::select(vec![
                                r#""web-1""#, "3", "-2.5", "1e-3", "null", "true", r#"[1,"10.1.2.3"]"#, r#"{"r":"eu"}"#,
                                r#"{"client_ip":"10.0.0.9","10.0.0.9":{"id":7}}"#, r#""x\u0001\"y\n""#,
                                r#""mail me at a@b.io""#, r#""2001:db8::1""#, r#"{"user":[1,{"b":null}]}"#,
                                r#"{"10.0.0.1":"a","10.0.0.2":"b","anon":"c"}"#, r#""caf\u00e9 %40 x""#,
                                r#"{"client_ip":"10.0.0.1","r":"a@b.io"}"#,
                            ]),
                        ),
                        1..6,
                    ),
                    // The event's own fields, each valid when present.
                    proptest::option::of(proptest::sample::select(vec![
                        r#""web-1""#, r#""10.0.0.5""#, r#""db\t\"x\"""#, r#""ip-10-1-2-3.internal""#,
                    ])),
                    proptest::option::of(proptest::sample::select(vec![
                        r#""lat""#, r#""from 10.1.1.1""#, r#""n\u00e9""#,
                    ])),
                    proptest::option::of(proptest::sample::select(vec![
                        r#"{"r":"eu","z":"1"}"#, r#"{"client_ip":"10.0.0.1","r":"a@b.io"}"#,
                        r#"{"10.0.0.1":"a","10.0.0.2":"b","q\"":"x\ny"}"#, r#"{}"#,
                    ])),
                )
                    .prop_map(|(fields, source, name, labels)| {
                        let mut inner: Vec<String> = fields.iter().map(|(k, v)| format!("{k}:{v}")).collect();
                        inner.extend(source.map(|s| format!(r#""source":{s}"#)));
                        inner.extend(name.map(|n| format!(r#""name":{n},"value":1.5"#)));
                        inner.extend(labels.map(|l| format!(r#""labels":{l}"#)));
                        format!("{{{}}}", inner.join(","))
                    }),
                1..5,
            ),
        ) {
            let body = format!("{{\"events\":[{}]}}", events.join(","));
            let lines = lines_three_ways(&body);
            // A body ingest refuses has no lines to compare: it does not count as a case.
            proptest::prop_assume!(!lines.is_empty());
            for (line, record, attrs, doc) in lines {
                proptest::prop_assert_eq!(String::from_utf8(line).unwrap(), String::from_utf8(record).unwrap(), "{}", body);
                proptest::prop_assert_eq!(&attrs, &doc, "{}", body);
            }
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
        let mut e = e;
        e.scrub(&p);
        let r = e.to_record("id-1", &TenantId::from_record("acme").unwrap(), None, None, None);
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
