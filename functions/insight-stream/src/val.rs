//! A JSON value that borrows its text from the body it was read from, and writes itself back
//! as JSON without a serializer.
//!
//! Ingest reads every event of a request, scrubs it and writes it to the stream again. Read
//! into [`serde_json::Value`], every string and key of every event is copied into an allocation
//! of its own and most are thrown away a few microseconds later. A [`Val`] keeps the strings it
//! can (those without escapes) as slices of the body, and an object keeps its fields as
//! [`serde_json::Map`] does: sorted by key, each key once, the last of a repeated key winning.
//! It serializes exactly as the `Value` it stands for (the property tests of
//! [`crate::event`] compare the two byte for byte).

use std::borrow::Cow;
use std::fmt;

use naksha_core::json_text::needs_escape;
use serde::de::{self, Deserialize, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::Number;

/// A JSON value, its strings borrowed from the text it was read from where they had no escapes.
#[derive(Debug, Clone, PartialEq)]
pub enum Val<'a> {
    Null,
    Bool(bool),
    Num(Number),
    Str(Cow<'a, str>),
    Arr(Vec<Val<'a>>),
    Obj(Fields<'a>),
}

/// An object's fields as a [`serde_json::Map`] holds them: sorted by key, each key once.
pub type Fields<'a> = Vec<(Cow<'a, str>, Val<'a>)>;

/// Put fields in a map's order and keep the last of each repeated key (what inserting them into
/// a [`serde_json::Map`] one after another does).
pub fn into_map_order<V>(fields: &mut Vec<(Cow<'_, str>, V)>) {
    if fields.windows(2).all(|w| w[0].0 < w[1].0) {
        return;
    }
    fields.sort_by(|a, b| a.0.cmp(&b.0));
    // `dedup_by` keeps the first of a run: move each later value into the kept slot first.
    fields.dedup_by(|later, kept| {
        if later.0 == kept.0 {
            std::mem::swap(later, kept);
            true
        } else {
            false
        }
    });
}

impl<'a> Val<'a> {
    /// How deeply arrays and objects nest in it (a scalar is 0).
    pub fn depth(&self) -> usize {
        match self {
            Val::Arr(items) => 1 + items.iter().map(Val::depth).max().unwrap_or(0),
            Val::Obj(fields) => 1 + fields.iter().map(|(_, v)| v.depth()).max().unwrap_or(0),
            _ => 0,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Val::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The number as `f64`, as [`serde_json::Value::as_f64`] gives it.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Val::Num(n) => n.as_f64(),
            _ => None,
        }
    }

    /// What kind of value it is, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Val::Null => "null",
            Val::Bool(_) => "a boolean",
            Val::Num(_) => "a number",
            Val::Str(_) => "a string",
            Val::Arr(_) => "an array",
            Val::Obj(_) => "an object",
        }
    }

    /// The same value, owning its text.
    #[cfg(test)]
    pub fn into_owned(self) -> Val<'static> {
        match self {
            Val::Null => Val::Null,
            Val::Bool(b) => Val::Bool(b),
            Val::Num(n) => Val::Num(n),
            Val::Str(s) => Val::Str(Cow::Owned(s.into_owned())),
            Val::Arr(items) => Val::Arr(items.into_iter().map(Val::into_owned).collect()),
            Val::Obj(fields) => {
                Val::Obj(fields.into_iter().map(|(k, v)| (Cow::Owned(k.into_owned()), v.into_owned())).collect())
            }
        }
    }

    /// Append the value as compact JSON, exactly as `serde_json::to_writer` writes the `Value`
    /// it stands for.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        match self {
            Val::Null => out.extend_from_slice(b"null"),
            Val::Bool(true) => out.extend_from_slice(b"true"),
            Val::Bool(false) => out.extend_from_slice(b"false"),
            Val::Num(n) => write_number(out, n),
            Val::Str(s) => write_cow(out, s),
            Val::Arr(items) => {
                out.push(b'[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    item.write_json(out);
                }
                out.push(b']');
            }
            Val::Obj(fields) => write_fields(out, fields),
        }
    }
}

/// Append an object of `fields` as compact JSON.
pub fn write_fields(out: &mut Vec<u8>, fields: &[(Cow<'_, str>, Val<'_>)]) {
    out.push(b'{');
    for (i, (k, v)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_cow(out, k);
        out.push(b':');
        v.write_json(out);
    }
    out.push(b'}');
}

/// Append a number as serde_json writes it.
pub fn write_number(out: &mut Vec<u8>, n: &Number) {
    // Writing into a Vec cannot fail, and a Number always serializes.
    let _ = n.serialize(&mut serde_json::Serializer::new(&mut *out));
}

/// Append an `f64` as serde_json writes it (`null` when not finite).
pub fn write_f64(out: &mut Vec<u8>, x: f64) {
    let _ = serde_json::to_writer(&mut *out, &x);
}

/// Append an `i64`.
pub fn write_i64(out: &mut Vec<u8>, x: i64) {
    let _ = serde_json::to_writer(&mut *out, &x);
}

/// Append a string of a [`Val`] or an event as a JSON string. A borrowed one is a slice of a
/// body that serde_json read without escapes (it refuses raw control characters, and a string
/// with `"` or `\\` in it has escapes, so is decoded into an owned one), a literal of ours, or
/// a pseudonym or scrubbed text lent by the batch's `PseudonymMemo` (which lends only text that
/// needs no escaping): it is written as it is, without looking for what to escape. An owned one
/// (decoded from escapes, or made by scrubbing) is escaped.
#[inline]
#[allow(clippy::ptr_arg, reason = "whether the text is borrowed is what decides")]
pub fn write_cow(out: &mut Vec<u8>, s: &Cow<'_, str>) {
    match s {
        Cow::Borrowed(text) => {
            debug_assert!(!needs_escape(text.as_bytes()), "a borrowed string needs escaping: {text:?}");
            out.reserve(text.len() + 2);
            out.push(b'"');
            out.extend_from_slice(text.as_bytes());
            out.push(b'"');
        }
        Cow::Owned(text) => write_str(out, text),
    }
}

/// Append `s` as a JSON string, escaped as serde_json escapes it: `"` and `\`, the control
/// characters `\b \f \n \r \t` by name and the others as `\u00xx`; everything else as it is.
/// Most strings need no escape at all, which eight bytes at a time finds out.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    let b = s.as_bytes();
    out.reserve(b.len() + 2);
    out.push(b'"');
    if needs_escape(b) {
        write_escaped(out, b);
    } else {
        out.extend_from_slice(b);
    }
    out.push(b'"');
}

#[cold]
fn write_escaped(out: &mut Vec<u8>, b: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut start = 0;
    for (i, &c) in b.iter().enumerate() {
        let named = match c {
            b'"' => b'"',
            b'\\' => b'\\',
            0x08 => b'b',
            0x0c => b'f',
            b'\n' => b'n',
            b'\r' => b'r',
            b'\t' => b't',
            0x00..=0x1f => 0,
            _ => continue,
        };
        out.extend_from_slice(&b[start..i]);
        if named == 0 {
            out.extend_from_slice(&[b'\\', b'u', b'0', b'0', HEX[(c >> 4) as usize], HEX[(c & 0xf) as usize]]);
        } else {
            out.extend_from_slice(&[b'\\', named]);
        }
        start = i + 1;
    }
    out.extend_from_slice(&b[start..]);
}

impl Serialize for Val<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Val::Null => s.serialize_unit(),
            Val::Bool(b) => s.serialize_bool(*b),
            Val::Num(n) => n.serialize(s),
            Val::Str(text) => s.serialize_str(text),
            Val::Arr(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Val::Obj(fields) => {
                let mut map = s.serialize_map(Some(fields.len()))?;
                for (k, v) in fields {
                    map.serialize_entry(k.as_ref(), v)?;
                }
                map.end()
            }
        }
    }
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

/// An object's fields read from `map`, in a map's order.
pub fn read_fields<'de, A: MapAccess<'de>>(map: A) -> Result<Fields<'de>, A::Error> {
    let mut fields = read_fields_as_sent(map)?;
    into_map_order(&mut fields);
    Ok(fields)
}

/// An object's fields read from `map` as they came: in the sender's order, keys as repeated.
pub fn read_fields_as_sent<'de, A: MapAccess<'de>>(mut map: A) -> Result<Fields<'de>, A::Error> {
    let mut fields: Fields<'de> = Vec::with_capacity(map.size_hint().unwrap_or(8));
    while let Some(key) = map.next_key_seed(Key)? {
        fields.push((key, map.next_value::<Val<'de>>()?));
    }
    Ok(fields)
}

impl<'de: 'a, 'a> Deserialize<'de> for Val<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValVisitor)
    }
}

struct ValVisitor;

impl<'de> Visitor<'de> for ValVisitor {
    type Value = Val<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any valid JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Val::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Val::Num(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Val::Num(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Number::from_f64(v).map_or(Val::Null, Val::Num))
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Val::Str(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Val::Str(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Val::Str(Cow::Owned(v)))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Val::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Val::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        Val::deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(item) = seq.next_element::<Val<'de>>()? {
            items.push(item);
        }
        Ok(Val::Arr(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        read_fields(map).map(Val::Obj)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::Value;

    #[test]
    fn objects_take_a_maps_order_and_its_last_value_of_a_repeated_key() {
        let text = r#"{"b":1,"a":{"z":1,"y":2,"z":3},"b":2,"c\u0041":"x\ny"}"#;
        let val: Val<'_> = serde_json::from_str(text).unwrap();
        let value: Value = serde_json::from_str(text).unwrap();
        assert_eq!(serde_json::to_string(&val).unwrap(), serde_json::to_string(&value).unwrap());
        let mut out = Vec::new();
        val.write_json(&mut out);
        assert_eq!(String::from_utf8(out).unwrap(), serde_json::to_string(&value).unwrap());
        let Val::Obj(fields) = &val else { panic!() };
        assert!(matches!(fields[0].0, Cow::Borrowed("a")), "unescaped keys are borrowed");
        assert!(matches!(fields[2].0, Cow::Owned(_)), "escaped ones are decoded");
    }

    fn json_text() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            Just("null".to_owned()),
            Just("true".to_owned()),
            any::<i64>().prop_map(|n| n.to_string()),
            any::<u64>().prop_map(|n| n.to_string()),
            any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| format!("{f:e}")),
            any::<String>().prop_map(|s| serde_json::to_string(&s).unwrap()),
            "[a-c\"\\\\\u{1}\u{1f}\u{7f}é\n\t ]{0,20}".prop_map(|s| serde_json::to_string(&s).unwrap()),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..5).prop_map(|v| format!("[{}]", v.join(","))),
                proptest::collection::vec(("[a-d]{0,2}", inner), 0..6).prop_map(|fields| {
                    let f: Vec<String> = fields.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
                    format!("{{{}}}", f.join(","))
                }),
            ]
        })
    }

    proptest! {
        /// A `Val` is the `Value` it was read as: it serializes, and writes itself, to the same
        /// bytes, whatever the nesting, escapes, numbers and repeated keys.
        #[test]
        fn a_val_writes_what_the_value_serializes(text in json_text()) {
            let value: Value = serde_json::from_str(&text).unwrap();
            let val: Val<'_> = serde_json::from_str(&text).unwrap();
            let expected = serde_json::to_vec(&value).unwrap();
            prop_assert_eq!(&serde_json::to_vec(&val).unwrap(), &expected);
            let mut out = Vec::new();
            val.write_json(&mut out);
            prop_assert_eq!(&out, &expected);
            prop_assert_eq!(val.clone().into_owned(), val);
        }

        /// The eight-at-a-time escaper writes what serde_json's does, for any text.
        #[test]
        fn strings_are_escaped_as_serde_json_escapes_them(s in any::<String>(), t in "[\u{0}-\u{7f}]{0,40}") {
            for text in [&s, &t] {
                let mut out = Vec::new();
                write_str(&mut out, text);
                prop_assert_eq!(out, serde_json::to_vec(text).unwrap());
            }
        }
    }
}
