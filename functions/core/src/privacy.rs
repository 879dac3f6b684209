//! Privacy (P-1): personal data is replaced by keyed pseudonyms before anything is written.
//!
//! - The key is derived once per cold start from a KMS HMAC key that never leaves KMS:
//!   `GenerateMac(PII key, "naksha/pii-pseudonym/v1")`. One KMS call per cold start, none per event.
//! - A pseudonym is `anon_` + 24 hex digits of HMAC-SHA256(key, tenant ‖ 0x1f ‖ value): stable
//!   within a tenant (so distinct users can still be counted), unlinkable across tenants, and
//!   irreversible without the key.
//! - What is replaced: IPv4 and IPv6 addresses and e-mail addresses anywhere in any string
//!   (object keys included), and the whole value of identifier fields (`user`, `user_id`, `email`,
//!   `ip`, `client_ip`, `user_ssn`, `session`, tokens, passwords …) at any depth, whatever the
//!   value's type.
//! - Before scanning, text that is not plain ASCII, or that carries percent-escapes or `[at]`-style
//!   obfuscations, is normalised: percent-decoded (repeatedly, for double encoding), Unicode NFKC
//!   (full-width `＠` and digits become `@` and `0-9`), `[at]`/`(dot)` spelled out. When the
//!   normalised text holds personal data, the normalised text is what is kept, with it replaced.
//! - Forms found: dotted IPv4; IPv4 written with dashes or underscores (`ip-10-1-2-3.ec2.internal`);
//!   IPv6 (compressed, full, zoned, IPv4-mapped, bracketed, with or without a port); e-mail with a
//!   dotted, quoted or non-ASCII local part and an ASCII, IDN or punycode domain.

use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt;
use std::net::Ipv6Addr;

pub use bumpalo::Bump;
use hmac::{KeyInit, Mac};
use serde_json::{Map, Value};
use unicode_normalization::UnicodeNormalization;

/// The label under which the pseudonym key is derived from the KMS key. Changing it rotates
/// every pseudonym.
pub const DERIVATION_MESSAGE: &[u8] = b"naksha/pii-pseudonym/v1";

/// Prefix of every pseudonym, so readers can tell a pseudonym from data.
pub const PSEUDONYM_PREFIX: &str = "anon_";
/// Length of a pseudonym: the prefix and 24 hex digits (96 bits of the keyed hash).
const PSEUDONYM_LEN: usize = PSEUDONYM_PREFIX.len() + 24;

#[derive(Debug, thiserror::Error)]
pub enum PrivacyError {
    #[error("deriving the pseudonym key from KMS failed: {0}")]
    Kms(String),
}

/// The pseudonymisation key. Its bytes are never printed.
#[derive(Clone)]
pub struct PiiKey {
    /// HMAC-SHA256 with the key's inner and outer pads already hashed: each pseudonym clones
    /// it (a copy of two hash states) and hashes only its own input.
    mac: hmac::Hmac<sha2::Sha256>,
}

impl fmt::Debug for PiiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PiiKey(<redacted>)")
    }
}

impl PiiKey {
    /// Derive the key with one `GenerateMac` call (cold start only).
    pub async fn from_kms(kms: &aws_sdk_kms::Client, key_id: &str) -> Result<Self, PrivacyError> {
        let out = kms
            .generate_mac()
            .key_id(key_id)
            .mac_algorithm(aws_sdk_kms::types::MacAlgorithmSpec::HmacSha256)
            .message(aws_sdk_kms::primitives::Blob::new(DERIVATION_MESSAGE))
            .send()
            .await
            .map_err(|e| PrivacyError::Kms(crate::aws::describe_error(&e)))?;
        let mac = out.mac().ok_or_else(|| PrivacyError::Kms("GenerateMac returned no MAC".into()))?;
        Ok(Self::from_secret(mac.as_ref()))
    }

    /// A key from raw secret bytes (tests and benchmarks).
    pub fn from_secret(secret: &[u8]) -> Self {
        // HMAC takes a key of any length (longer ones are hashed first), so this cannot fail.
        let mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap_or_else(|_| unreachable!());
        Self { mac }
    }

    /// Pseudonymiser for one tenant's data.
    pub fn for_tenant<'a>(&'a self, tenant: &'a str) -> Pseudonymiser<'a> {
        Pseudonymiser { tenant, memo: None, mac: self.mac_for(tenant) }
    }

    /// Pseudonymiser for the tenant `memo` was made for, remembering the pseudonyms it makes
    /// there (one batch's worth of work): values repeat within a batch, and each distinct one
    /// then costs one HMAC. One memo serves one key.
    pub fn for_memo<'a>(&'a self, memo: &'a PseudonymMemo<'a>) -> Pseudonymiser<'a> {
        Pseudonymiser { tenant: &memo.tenant, memo: Some(memo), mac: self.mac_for(&memo.tenant) }
    }

    /// The MAC every pseudonym of `tenant` starts from: HMAC(key, tenant ‖ 0x1f ‖ value).
    fn mac_for(&self, tenant: &str) -> hmac::Hmac<sha2::Sha256> {
        let mut mac = self.mac.clone();
        mac.update(tenant.as_bytes());
        mac.update(&[0x1f]);
        mac
    }
}

/// Slots of a [`PseudonymMemo`]: a direct-mapped cache, so a batch of all-distinct values costs
/// no more than it would without one (slots are overwritten, their buffers reused).
pub const MEMO_SLOTS: usize = 512;
/// Longest value a memo remembers, in bytes (longer ones are rare and hashed every time).
pub const MEMO_MAX_VALUE: usize = 256;

/// Most bytes a memo's arena takes (made pseudonyms and scrubbed texts): beyond it, results are
/// still right but handed out as new strings, not lent.
pub const MEMO_ARENA_BYTES: usize = 4 << 20;

/// Pseudonyms (and scrubbed texts) already made for one tenant in one piece of work. It holds
/// raw values, so it lives only as long as the request it serves and never prints them.
///
/// What it makes goes into an arena the caller owns, and is **lent** from there: a value seen
/// again costs a lookup, not a copy. A lent text needs no escaping in a JSON string (pseudonyms
/// are hex; a scrubbed text with `"`, `\\` or a control character in it is handed out as a new
/// string instead), so a writer may copy it as it is.
///
/// It is bounded: three direct-mapped tables of [`MEMO_SLOTS`] entries, each input at most
/// [`MEMO_MAX_VALUE`] bytes, and at most [`MEMO_ARENA_BYTES`] in the arena. It is bound to one
/// tenant and one key, so it cannot answer for another. It serves one thread (a request's
/// parsing is synchronous): a plain `RefCell`, no lock to take per value.
pub struct PseudonymMemo<'m> {
    tenant: String,
    arena: &'m Bump,
    /// A value and its pseudonym (`""`: an empty slot), both in the arena: remembering a value
    /// costs a bump of the arena's pointer, not an allocation and a free.
    slots: RefCell<Vec<(&'m str, &'m str)>>,
    /// Scrubbed forms of texts that could hold an address (a direct-mapped cache like `slots`):
    /// the same message or time string on every event of a batch is scanned once.
    texts: RefCell<Vec<TextSlot<'m>>>,
    /// Which field names are identifier keys ([`is_identifier_key`]): the same few names come
    /// on every event of a batch.
    keys: RefCell<Vec<Option<(String, bool)>>>,
}

/// A text and its scrubbed form (`None`: nothing to replace).
#[derive(Default)]
struct TextSlot<'m> {
    used: bool,
    /// In the arena, like the pseudonym slots' values.
    text: &'m str,
    scrubbed: Option<Kept<'m>>,
}

/// A result the memo keeps: lent from the arena, or (not safe to copy into JSON as it is, or
/// the arena full) kept as a string of its own and copied out.
enum Kept<'m> {
    Lent(&'m str),
    Copied(String),
}

impl<'m> Kept<'m> {
    fn hand_out(&self) -> Cow<'m, str> {
        match self {
            Kept::Lent(s) => Cow::Borrowed(s),
            Kept::Copied(s) => Cow::Owned(s.clone()),
        }
    }
}

impl<'m> PseudonymMemo<'m> {
    /// A memo for `tenant` that keeps what it makes in `arena` (one request's; it limits the
    /// arena to [`MEMO_ARENA_BYTES`]).
    pub fn new(tenant: &str, arena: &'m Bump) -> Self {
        arena.set_allocation_limit(Some(MEMO_ARENA_BYTES));
        Self {
            tenant: tenant.to_owned(),
            arena,
            slots: RefCell::new(Vec::new()),
            texts: RefCell::new(Vec::new()),
            keys: RefCell::new(Vec::new()),
        }
    }

    /// `text` in the arena, if it has room.
    fn lend(&self, text: &str) -> Option<&'m str> {
        let arena: &'m Bump = self.arena;
        arena.try_alloc_str(text).ok().map(|lent| &*lent)
    }

    /// The scrubbed form of `text` (in `slot`) remembered for this batch: `Some(None)` when it
    /// was clean.
    fn scrubbed(&self, slot: usize, text: &str) -> Option<Option<Cow<'m, str>>> {
        let texts = self.texts.try_borrow().ok()?;
        let slot = texts.get(slot)?;
        (slot.used && slot.text == text).then(|| slot.scrubbed.as_ref().map(Kept::hand_out))
    }

    /// Remember `text`'s scrubbed form; what to hand out for it (`None`: it was clean).
    fn remember_scrubbed(&self, slot: usize, text: &str, scrubbed: Option<String>) -> Option<Cow<'m, str>> {
        if text.len() > MEMO_MAX_VALUE {
            return scrubbed.map(Cow::Owned);
        }
        let Some(scrubbed) = scrubbed else {
            self.keep_scrubbed(slot, text, None);
            return None;
        };
        let lent = if !crate::json_text::needs_escape(scrubbed.as_bytes()) { self.lend(&scrubbed) } else { None };
        match lent {
            Some(lent) => {
                self.keep_scrubbed(slot, text, Some(Kept::Lent(lent)));
                Some(Cow::Borrowed(lent))
            }
            None => {
                self.keep_scrubbed(slot, text, Some(Kept::Copied(scrubbed.clone())));
                Some(Cow::Owned(scrubbed))
            }
        }
    }

    fn keep_scrubbed(&self, slot: usize, text: &str, scrubbed: Option<Kept<'m>>) {
        let Ok(mut texts) = self.texts.try_borrow_mut() else { return };
        let Some(text) = self.lend(text) else { return };
        if texts.is_empty() {
            texts.resize_with(MEMO_SLOTS, TextSlot::default);
        }
        if let Some(slot) = texts.get_mut(slot) {
            *slot = TextSlot { used: true, text, scrubbed };
        }
    }

    /// How many values it remembers.
    pub fn len(&self) -> usize {
        self.slots.try_borrow().map(|s| s.iter().filter(|(_, p)| !p.is_empty()).count()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The slot of `value` in each table.
    fn slot(value: &str) -> usize {
        // foldhash (hashbrown's hash) reads eight bytes or more at a time: a few ns for a
        // short value. A fixed seed is enough: a collision only costs a recomputation.
        let h = std::hash::BuildHasher::hash_one(&foldhash::fast::FixedState::default(), value);
        (h as usize) % MEMO_SLOTS
    }

    /// [`is_identifier_key`], remembered.
    fn is_identifier(&self, key: &str) -> bool {
        let Ok(mut keys) = self.keys.try_borrow_mut() else { return is_identifier_key(key) };
        if key.len() > MEMO_MAX_VALUE {
            return is_identifier_key(key);
        }
        if keys.is_empty() {
            keys.resize(MEMO_SLOTS, None);
        }
        match &mut keys[Self::slot(key)] {
            Some((k, answer)) if k == key => *answer,
            slot => {
                let answer = is_identifier_key(key);
                *slot = Some((key.to_owned(), answer));
                answer
            }
        }
    }

    fn get(&self, slot: usize, value: &str) -> Option<&'m str> {
        let slots = self.slots.try_borrow().ok()?;
        let (k, p) = slots.get(slot)?;
        (!p.is_empty() && *k == value).then_some(*p)
    }

    /// Remember `pseudonym` for `value`; the pseudonym lent from the arena (`None`: not kept).
    fn put(&self, slot: usize, value: &str, pseudonym: &str) -> Option<&'m str> {
        if value.len() > MEMO_MAX_VALUE {
            return None;
        }
        let mut slots = self.slots.try_borrow_mut().ok()?;
        let lent = self.lend(pseudonym)?;
        let Some(value) = self.lend(value) else { return Some(lent) };
        if slots.is_empty() {
            slots.resize(MEMO_SLOTS, ("", ""));
        }
        if let Some(kept) = slots.get_mut(slot) {
            *kept = (value, lent);
        }
        Some(lent)
    }
}

impl fmt::Debug for PseudonymMemo<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PseudonymMemo({} values, <redacted>)", self.len())
    }
}

/// Replaces personal data in one tenant's values.
#[derive(Clone)]
pub struct Pseudonymiser<'a> {
    tenant: &'a str,
    memo: Option<&'a PseudonymMemo<'a>>,
    /// The key's MAC with this tenant and the separator already hashed in: each pseudonym
    /// clones it and hashes only its value.
    mac: hmac::Hmac<sha2::Sha256>,
}

impl fmt::Debug for Pseudonymiser<'_> {
    /// The tenant and whether there is a memo; never the key or a hash state made from it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pseudonymiser(tenant {:?}, memo: {}, <redacted>)", self.tenant, self.memo.is_some())
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Passes over text whose replacements made new addresses, before the value is replaced whole.
const MAX_SCRUB_PASSES: usize = 4;

impl<'a> Pseudonymiser<'a> {
    /// Whether a field named `key` holds an identifier ([`is_identifier_key`], remembered in
    /// the memo when there is one).
    pub fn is_identifier(&self, key: &str) -> bool {
        match self.memo {
            Some(memo) => memo.is_identifier(key),
            None => is_identifier_key(key),
        }
    }

    /// The pseudonym of `value` for this tenant.
    pub fn pseudonym(&self, value: &str) -> String {
        self.pseudonym_lent(value).into_owned()
    }

    /// The pseudonym of `value`, lent by the memo when there is one (see [`PseudonymMemo`]).
    pub fn pseudonym_lent(&self, value: &str) -> Cow<'a, str> {
        let Some(memo) = self.memo else {
            let mut buf = [0u8; PSEUDONYM_LEN];
            return Cow::Owned(self.keyed_hash(value, &mut buf).to_owned());
        };
        let slot = PseudonymMemo::slot(value);
        if let Some(known) = memo.get(slot, value) {
            return Cow::Borrowed(known);
        }
        let mut buf = [0u8; PSEUDONYM_LEN];
        let made = self.keyed_hash(value, &mut buf);
        match memo.put(slot, value, made) {
            Some(lent) => Cow::Borrowed(lent),
            None => Cow::Owned(made.to_owned()),
        }
    }

    /// The pseudonym of `value`, written into `buf`.
    fn keyed_hash<'b>(&self, value: &str, buf: &'b mut [u8; PSEUDONYM_LEN]) -> &'b str {
        let mut mac = self.mac.clone();
        mac.update(value.as_bytes());
        let tag = mac.finalize().into_bytes();
        let (prefix, hex) = buf.split_at_mut(PSEUDONYM_PREFIX.len());
        prefix.copy_from_slice(PSEUDONYM_PREFIX.as_bytes());
        for (pair, b) in hex.chunks_exact_mut(2).zip(&tag[..12]) {
            pair[0] = HEX[(b >> 4) as usize];
            pair[1] = HEX[(b & 0xf) as usize];
        }
        // The prefix and hex digits are ASCII.
        std::str::from_utf8(buf).unwrap_or_else(|_| unreachable!())
    }

    /// `s` with every IP and e-mail address replaced; borrowed when there was nothing to replace.
    /// Text that could hide an address behind an encoding is normalised first (see the module
    /// docs); if the normalised form holds one, that form is returned with it replaced.
    /// The result is itself clean: where a replacement makes new text that reads as an address
    /// (found by fuzzing: a pseudonym next to `@domain`), the text is scanned again, and a value
    /// that does not settle within a few passes is replaced whole.
    pub fn scrub_text<'s>(&self, s: &'s str) -> Cow<'s, str> {
        match self.scrubbed(s) {
            None => Cow::Borrowed(s),
            Some(clean) => Cow::Owned(clean.into_owned()),
        }
    }

    /// [`Self::scrub_text`], saying `None` when there is nothing to replace, and otherwise
    /// handing out the scrubbed text, lent by the memo when there is one (see
    /// [`PseudonymMemo`]).
    pub fn scrubbed(&self, s: &str) -> Option<Cow<'a, str>> {
        // Most text has none of the characters an address or an encoding needs: one pass says so.
        if !could_hold_pii(s) {
            return None;
        }
        let made = |s| match self.scrub_passes(s) {
            Cow::Borrowed(_) => None,
            Cow::Owned(text) => Some(text),
        };
        let Some(memo) = self.memo else { return made(s).map(Cow::Owned) };
        let slot = PseudonymMemo::slot(s);
        if let Some(known) = memo.scrubbed(slot, s) {
            return known;
        }
        memo.remember_scrubbed(slot, s, made(s))
    }

    fn scrub_passes<'s>(&self, s: &'s str) -> Cow<'s, str> {
        let Cow::Owned(mut text) = self.scrub_once(s) else { return Cow::Borrowed(s) };
        for _ in 0..MAX_SCRUB_PASSES {
            match self.scrub_once(&text) {
                Cow::Borrowed(_) => return Cow::Owned(text),
                Cow::Owned(next) => text = next,
            }
        }
        Cow::Owned(self.pseudonym(s))
    }

    fn scrub_once<'s>(&self, s: &'s str) -> Cow<'s, str> {
        if let Some(normal) = normalise(s) {
            let spans = find_pii(&normal);
            if !spans.is_empty() {
                return Cow::Owned(self.replace_spans(&normal, spans));
            }
        }
        let spans = find_pii(s);
        if spans.is_empty() {
            return Cow::Borrowed(s);
        }
        Cow::Owned(self.replace_spans(s, spans))
    }

    fn replace_spans(&self, s: &str, spans: Vec<(usize, usize)>) -> String {
        let mut out = String::with_capacity(s.len() + spans.len() * 16);
        let mut at = 0;
        for (start, end) in spans {
            out.push_str(&s[at..start]);
            out.push_str(&self.pseudonym_lent(&s[start..end]));
            at = end;
        }
        out.push_str(&s[at..]);
        out
    }

    /// Scrub a JSON value in place: identifier fields become pseudonyms, every other string
    /// (and every object key) is scanned for addresses.
    pub fn scrub_json(&self, value: &mut Value) {
        match value {
            Value::String(s) => {
                if let Cow::Owned(clean) = self.scrub_text(s) {
                    *s = clean;
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| self.scrub_json(v)),
            Value::Object(map) => self.scrub_object(map),
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }

    /// Scrub an object's keys and values.
    pub fn scrub_object(&self, map: &mut Map<String, Value>) {
        if map.keys().any(|k| matches!(self.scrub_text(k), Cow::Owned(_))) {
            let old = std::mem::take(map);
            for (k, v) in old {
                let k = self.scrub_text(&k).into_owned();
                map.insert(k, v);
            }
        }
        for (k, v) in map.iter_mut() {
            if self.is_identifier(k) {
                self.pseudonymise_whole(v);
            } else {
                self.scrub_json(v);
            }
        }
    }

    /// Replace an identifier field's value by its pseudonym. `null` and booleans carry no
    /// identity and stay; numbers, strings and structures are pseudonymised whole — a string
    /// shaped like a pseudonym too (it could be anything the sender chose to shape that way).
    pub fn pseudonymise_whole(&self, value: &mut Value) {
        let replacement = match &*value {
            Value::Null | Value::Bool(_) => return,
            Value::String(s) => self.pseudonym(s),
            Value::Number(n) => self.pseudonym(&n.to_string()),
            // `to_string` of the serializer, not `Display`'s (the same text, written faster).
            other => self.pseudonym(&serde_json::to_string(other).unwrap_or_default()),
        };
        *value = Value::String(replacement);
    }
}

const EXACT: &[&str] = &[
    "mail",
    "xforwardedfor",
    "forwardedfor",
    "xrealip",
    "msisdn",
    "ssn",
    "imei",
    "mac",
    "macaddress",
    "passwd",
    "password",
    "secret",
    "apikey",
    "authorization",
    "cookie",
    "setcookie",
    "useragent",
];
/// Words that mark a key as an identifier wherever they stand in it (`user_ssn`, `ip_of_client`).
const ANY_WORD: &[&str] = &[
    "ssn",
    "email",
    "ip",
    "ipv4",
    "ipv6",
    "ipaddr",
    "ipaddress",
    "phone",
    "msisdn",
    "imei",
    "imsi",
    "iban",
    "passport",
    "password",
    "passwd",
    "secret",
    "apikey",
    "cookie",
    "username",
    "userid",
    "creditcard",
];
/// Words that mark a key as an identifier when they end it (`user`, but not `user_agent_count`).
const LAST_WORD: &[&str] = &["ipaddr", "user", "session", "sessionid", "sid", "login", "token", "mail"];
/// Word pairs that mark a key as an identifier wherever they stand in it.
const PAIRS: &[(&str, &str)] = &[
    ("user", "id"),
    ("user", "name"),
    ("session", "id"),
    ("ip", "address"),
    ("ip", "addr"),
    ("email", "address"),
    ("phone", "number"),
    ("customer", "id"),
    ("device", "id"),
    ("account", "id"),
    ("mac", "address"),
    ("api", "key"),
    ("remote", "addr"),
    ("remote", "address"),
    ("client", "addr"),
    ("account", "email"),
    ("user", "agent"),
    ("social", "security"),
    ("credit", "card"),
    ("e", "mail"),
];

/// Whether a field name marks its value as an identifier (compared on words, so `client_ip`,
/// `clientIp`, `Client-IP` and `user_ssn` match and `zip` does not).
pub fn is_identifier_key(key: &str) -> bool {
    // Hot path (every key of every event): short ASCII keys are matched without allocating.
    const CAP: usize = 64;
    const MAX_WORDS: usize = 16;
    if !key.is_ascii() || key.len() > CAP {
        let normal: String = key.nfkc().collect();
        let words = split_words(&normal);
        let refs: Vec<&[u8]> = words.iter().map(|w| w.as_bytes()).collect();
        return matches_words(&words.concat().into_bytes(), &refs);
    }
    let mut buf = [0u8; CAP];
    let mut starts = [0usize; MAX_WORDS + 1];
    let (mut len, mut words) = (0usize, 0usize);
    let (mut in_word, mut prev_lower) = (false, false);
    for &b in key.as_bytes() {
        if !b.is_ascii_alphanumeric() {
            in_word = false;
            prev_lower = false;
            continue;
        }
        let boundary = !in_word || (b.is_ascii_uppercase() && prev_lower);
        if boundary {
            if words == MAX_WORDS {
                // Many words: no shortcut, the allocating path sees them all.
                let words = split_words(key);
                let refs: Vec<&[u8]> = words.iter().map(|w| w.as_bytes()).collect();
                return matches_words(&words.concat().into_bytes(), &refs);
            }
            starts[words] = len;
            words += 1;
        }
        in_word = true;
        prev_lower = b.is_ascii_lowercase() || b.is_ascii_digit();
        buf[len] = b.to_ascii_lowercase();
        len += 1;
    }
    starts[words] = len;
    let mut slices: [&[u8]; MAX_WORDS] = [&[]; MAX_WORDS];
    for i in 0..words {
        slices[i] = &buf[starts[i]..starts[i + 1]];
    }
    matches_words(&buf[..len], &slices[..words])
}

fn matches_words(joined: &[u8], words: &[&[u8]]) -> bool {
    let Some(last) = words.last() else { return false };
    let eq = |list: &[&str], w: &[u8]| list.iter().any(|c| c.as_bytes() == w);
    if eq(EXACT, joined) || eq(ANY_WORD, joined) || eq(LAST_WORD, joined) || eq(LAST_WORD, last) {
        return true;
    }
    if words.iter().any(|w| eq(ANY_WORD, w)) {
        return true;
    }
    words.windows(2).any(|pair| PAIRS.iter().any(|(a, b)| a.as_bytes() == pair[0] && b.as_bytes() == pair[1]))
}

/// Lower-cased words of a key, split at non-alphanumerics and lower→upper case changes.
fn split_words(key: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut prev_lower = false;
    for c in key.chars() {
        if !c.is_alphanumeric() {
            if !current.is_empty() {
                words.push(std::mem::take(&mut current));
            }
            prev_lower = false;
            continue;
        }
        if c.is_uppercase() && prev_lower && !current.is_empty() {
            words.push(std::mem::take(&mut current));
        }
        prev_lower = c.is_lowercase() || c.is_ascii_digit();
        current.extend(c.to_lowercase());
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

/// Whether `s` has any character that an address [`find_pii`] finds, or an encoding
/// [`normalise`] undoes, needs: non-ASCII, `%`, a bracket, `@`, `:`, or a digit followed by `.`,
/// `-` or `_`. When it has none, scrubbing leaves it as it is (checked by a property test).
pub fn could_hold_pii(s: &str) -> bool {
    const ANY: u8 = ENCODED | AT | COLON | DIGIT_DOT | DIGIT_SEP;
    clues_until(s.as_bytes(), ANY) & ANY != 0
}

// What one pass over a text can tell the scanners: which of these it holds (see [`clues_until`]).
/// A byte an encoding or an obfuscation needs: non-ASCII, `%`, `[`, `(`, `{`.
const ENCODED: u8 = 0x01;
const AT: u8 = 0x02;
const COLON: u8 = 0x04;
const DOT: u8 = 0x08;
/// `-` or `_`.
const SEP: u8 = 0x10;
const DIGIT: u8 = 0x20;
/// A `.` right after a digit (`DOT << 3`).
const DIGIT_DOT: u8 = 0x40;
/// A `-` or `_` right after a digit (`SEP << 3`).
const DIGIT_SEP: u8 = 0x80;

/// Each byte's class, for [`clues`].
const CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0x80;
    while i < 256 {
        t[i] = ENCODED;
        i += 1;
    }
    t[b'%' as usize] = ENCODED;
    t[b'[' as usize] = ENCODED;
    t[b'(' as usize] = ENCODED;
    t[b'{' as usize] = ENCODED;
    t[b'@' as usize] = AT;
    t[b':' as usize] = COLON;
    t[b'.' as usize] = DOT;
    t[b'-' as usize] = SEP;
    t[b'_' as usize] = SEP;
    let mut d = b'0';
    while d <= b'9' {
        t[d as usize] = DIGIT;
        d += 1;
    }
    t
};

/// The classes of `b`'s bytes, and whether a `.`, `-` or `_` follows a digit: one pass without
/// branches (every string of every event is checked, and most hold nothing), in blocks of 16
/// bytes, stopping after the first block where any class in `enough` has been seen.
fn clues_until(b: &[u8], enough: u8) -> u8 {
    let (mut acc, mut prev) = (0u8, 0u8);
    for block in b.chunks(16) {
        for &x in block {
            let c = CLASS[x as usize];
            // All ones when the previous byte was a digit, else zero.
            let after_digit = 0u8.wrapping_sub((prev & DIGIT) >> 5);
            acc |= c | (((c & (DOT | SEP)) << 3) & after_digit);
            prev = c;
        }
        if acc & enough != 0 {
            break;
        }
    }
    acc
}

/// Every class in `b` (see [`clues_until`]).
fn clues(b: &[u8]) -> u8 {
    clues_until(b, 0)
}

/// Spelled-out separators people use to hide addresses from scanners.
const OBFUSCATIONS: &[(&str, &str)] =
    &[("[at]", "@"), ("(at)", "@"), ("{at}", "@"), ("[dot]", "."), ("(dot)", "."), ("{dot}", ".")];

/// The form of `s` to scan when it could hide an address behind an encoding: percent-decoded
/// (up to three times, for double encoding), NFKC-normalised, obfuscations spelled out.
/// `None` when `s` is plain ASCII with nothing to decode (the hot path: most strings).
pub fn normalise(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    // Most text has no byte an encoding or an obfuscation needs: one pass says so.
    if clues_until(bytes, ENCODED) & ENCODED == 0 {
        return None;
    }
    let has_escape = bytes.contains(&b'%');
    let lower_has = |needle: &str| bytes.windows(needle.len()).any(|w| w.eq_ignore_ascii_case(needle.as_bytes()));
    let obfuscated = (bytes.contains(&b'[') || bytes.contains(&b'(') || bytes.contains(&b'{'))
        && OBFUSCATIONS.iter().any(|(from, _)| lower_has(from));
    if s.is_ascii() && !has_escape && !obfuscated {
        return None;
    }
    let mut text = s.to_owned();
    for _ in 0..3 {
        if !text.contains('%') {
            break;
        }
        let decoded = percent_encoding::percent_decode_str(&text).decode_utf8_lossy().into_owned();
        if decoded == text {
            break;
        }
        text = decoded;
    }
    let mut text: String = text.nfkc().collect();
    if obfuscated || !text.is_ascii() {
        for (from, to) in OBFUSCATIONS {
            text = replace_ignore_ascii_case(&text, from, to);
        }
    }
    (text != s).then_some(text)
}

fn replace_ignore_ascii_case(text: &str, from: &str, to: &str) -> String {
    let lower = text.to_ascii_lowercase();
    if !lower.contains(from) {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (i, _) in lower.match_indices(from) {
        if i < at {
            continue;
        }
        out.push_str(&text[at..i]);
        out.push_str(to);
        at = i + from.len();
    }
    out.push_str(&text[at..]);
    out
}

/// Byte spans of IPv4, IPv6 and e-mail addresses in `s`, sorted and non-overlapping.
pub fn find_pii(s: &str) -> Vec<(usize, usize)> {
    let b = s.as_bytes();
    let found = clues(b);
    let (has_at, has_colon) = (found & AT != 0, found & COLON != 0);
    let (has_dot_digit, has_sep_digit) = (found & DIGIT_DOT != 0, found & DIGIT_SEP != 0);
    if !(has_at || has_colon || has_dot_digit || has_sep_digit) {
        return Vec::new();
    }
    let mut spans = Vec::new();
    if has_at {
        find_emails(b, &mut spans);
    }
    if has_colon {
        find_ipv6(s, &mut spans);
    }
    if has_dot_digit {
        find_ipv4(b, &mut spans);
    }
    if has_sep_digit {
        find_separated_ipv4(b, &mut spans);
    }
    if spans.len() > 1 {
        spans.sort_unstable();
        let mut merged: Vec<(usize, usize)> = Vec::with_capacity(spans.len());
        for (start, end) in spans {
            match merged.last_mut() {
                Some(last) if start < last.1 => last.1 = last.1.max(end),
                _ => merged.push((start, end)),
            }
        }
        spans = merged;
    }
    spans
}

/// Bytes of an address's local part; non-ASCII bytes are UTF-8 (internationalised addresses).
fn is_local_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c >= 0x80 || matches!(c, b'.' | b'_' | b'%' | b'+' | b'-' | b'\'')
}

/// Bytes of a domain; non-ASCII bytes are UTF-8 (IDN domains).
fn is_domain_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c >= 0x80 || c == b'.' || c == b'-'
}

fn find_emails(b: &[u8], spans: &mut Vec<(usize, usize)>) {
    for (at, _) in b.iter().enumerate().filter(|(_, c)| **c == b'@') {
        let mut start = at;
        if at > 0 && b[at - 1] == b'"' {
            // A quoted local part (`"john doe"@example.com`) runs back to its opening quote.
            match b[at.saturating_sub(66)..at - 1].iter().rposition(|c| *c == b'"') {
                Some(open) => start = at.saturating_sub(66) + open,
                None => continue,
            }
        } else {
            while start > 0 && is_local_char(b[start - 1]) {
                start -= 1;
            }
            while start < at && b[start] == b'.' {
                start += 1;
            }
        }
        let mut end = at + 1;
        while end < b.len() && is_domain_char(b[end]) {
            end += 1;
        }
        while end > at + 1 && matches!(b[end - 1], b'.' | b'-') {
            end -= 1;
        }
        if start == at || end <= at + 1 {
            continue;
        }
        let domain = &b[at + 1..end];
        let mut labels = domain.split(|c| *c == b'.');
        let Some(tld) = domain.rsplit(|c| *c == b'.').next() else { continue };
        let labels_ok = labels.all(|l| !l.is_empty());
        let has_dot = domain.contains(&b'.');
        // An ASCII TLD, an IDN one (`.рф`), or its punycode (`.xn--p1ai`).
        let tld_ok = tld.len() >= 2
            && (tld.iter().all(u8::is_ascii_alphabetic) || tld.iter().any(|c| *c >= 0x80) || tld.starts_with(b"xn--"));
        if labels_ok && has_dot && tld_ok {
            spans.push((start, end));
        }
    }
}

fn find_ipv6(s: &str, spans: &mut Vec<(usize, usize)>) {
    let b = s.as_bytes();
    let is_run = |c: u8| c.is_ascii_hexdigit() || c == b':' || c == b'.';
    let mut i = 0;
    while i < b.len() {
        if !is_run(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && is_run(b[i]) {
            i += 1;
        }
        let mut end = i;
        // The run must stand alone: `std::fmt` and `x1::2y` are not addresses.
        let before_ok = start == 0 || !(b[start - 1].is_ascii_alphanumeric() || b[start - 1] == b'_');
        let after_ok = end == b.len() || !(b[end].is_ascii_alphanumeric() || b[end] == b'_' || b[end] == b'%');
        let after_zone_ok = end < b.len() && b[end] == b'%';
        if !before_ok || !(after_ok || after_zone_ok) {
            continue;
        }
        if b[start..end].iter().filter(|c| **c == b':').count() < 2 {
            continue;
        }
        // Trailing punctuation (end of a sentence) is not part of the address.
        while end > start && matches!(b[end - 1], b'.') {
            end -= 1;
        }
        let candidate = &s[start..end];
        if candidate.parse::<Ipv6Addr>().is_ok() {
            let mut stop = end;
            if after_zone_ok {
                // An interface zone (`fe80::1%eth0`) goes with the address.
                stop += 1;
                while stop < b.len() && (b[stop].is_ascii_alphanumeric() || matches!(b[stop], b'_' | b'-' | b'.')) {
                    stop += 1;
                }
            }
            spans.push((start, stop));
        } else if let Some(last) = candidate.rfind(':') {
            // An address followed by `:port` (`2001:db8:0:0:0:0:0:1:8080`): the address without it.
            let head = &s[start..start + last];
            if head.parse::<Ipv6Addr>().is_ok() {
                spans.push((start, start + last));
            }
        }
    }
}

fn find_ipv4(b: &[u8], spans: &mut Vec<(usize, usize)>) {
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
            i += 1;
        }
        let mut end = i;
        while end > start && b[end - 1] == b'.' {
            end -= 1;
        }
        let before_ok = start == 0 || !(b[start - 1].is_ascii_alphanumeric() || b[start - 1] == b'.');
        // A letter right after the last digit joins a word (`1.2.3.4x`); after a dot it starts a
        // domain (`10.1.2.3.nip.io`).
        let after_ok = i == b.len() || !b[i].is_ascii_alphanumeric() || end < i;
        if !before_ok || !after_ok {
            continue;
        }
        if is_ipv4(&b[start..end]) {
            spans.push((start, end));
        }
    }
}

fn is_ipv4(b: &[u8]) -> bool {
    let mut parts = 0;
    for part in b.split(|c| *c == b'.') {
        parts += 1;
        if parts > 4 || part.is_empty() || part.len() > 3 {
            return false;
        }
        let n = part.iter().fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0'));
        if n > 255 {
            return false;
        }
    }
    parts == 4
}

/// IPv4 written with dashes or underscores, as in host names (`ip-10-1-2-3.ec2.internal`,
/// `10_1_2_3`): exactly four octets, one separator throughout.
fn find_separated_ipv4(b: &[u8], spans: &mut Vec<(usize, usize)>) {
    let mut i = 0;
    while i < b.len() {
        let starts_run = b[i].is_ascii_digit() && (i == 0 || !b[i - 1].is_ascii_alphanumeric());
        if !starts_run {
            i += 1;
            continue;
        }
        let start = i;
        let mut j = i;
        let mut parts = 0;
        let mut sep = None;
        loop {
            let part_start = j;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            let part = &b[part_start..j];
            if part.is_empty() || part.len() > 3 || part.iter().fold(0u32, |a, d| a * 10 + u32::from(d - b'0')) > 255 {
                parts = 0;
                break;
            }
            parts += 1;
            let next_is_sep = j < b.len() && matches!(b[j], b'-' | b'_') && sep.is_none_or(|s| s == b[j]);
            if parts == 4 || !next_is_sep || !b.get(j + 1).is_some_and(u8::is_ascii_digit) {
                break;
            }
            sep = Some(b[j]);
            j += 1;
        }
        // Exactly four octets: not followed by another separated number, nor glued to a word.
        let more = j < b.len() && matches!(b[j], b'-' | b'_') && b.get(j + 1).is_some_and(u8::is_ascii_digit);
        let glued = j < b.len() && b[j].is_ascii_alphanumeric();
        if parts == 4 && sep.is_some() && !more && !glued {
            spans.push((start, j));
        }
        i = j.max(i + 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key() -> PiiKey {
        PiiKey::from_secret(b"test-secret-of-32-bytes-or-more!")
    }

    fn texts(s: &str) -> Vec<&str> {
        find_pii(s).into_iter().map(|(a, b)| &s[a..b]).collect()
    }

    #[test]
    fn finds_ipv4_ipv6_and_email_in_free_text() {
        assert_eq!(texts("login from 10.1.2.3 by bob@example.com."), ["10.1.2.3", "bob@example.com"]);
        assert_eq!(texts("peer [2001:db8::7]:443 closed"), ["2001:db8::7"]);
        assert_eq!(texts("fe80::1%eth0 up"), ["fe80::1%eth0"]);
        assert_eq!(texts("mapped ::ffff:192.168.0.1 seen"), ["::ffff:192.168.0.1"]);
        assert_eq!(texts("host=192.168.10.254:8080"), ["192.168.10.254"]);
        assert_eq!(texts("first.last+tag@sub.example.co.uk"), ["first.last+tag@sub.example.co.uk"]);
        assert_eq!(texts("ips 1.1.1.1,8.8.8.8"), ["1.1.1.1", "8.8.8.8"]);
        assert_eq!(texts("full 2001:0db8:85a3:0000:0000:8a2e:0370:7334"), ["2001:0db8:85a3:0000:0000:8a2e:0370:7334"]);
        assert_eq!(texts("full 2001:db8:0:0:0:0:0:1:8080 x"), ["2001:db8:0:0:0:0:0:1"]);
        assert_eq!(texts("ip-10-1-2-3.ec2.internal"), ["10-1-2-3"]);
        assert_eq!(texts("http://10.1.2.3.nip.io/"), ["10.1.2.3"]);
        assert_eq!(texts(r#""john doe"@example.com"#), [r#""john doe"@example.com"#]);
        assert_eq!(texts("bob@bücher.example"), ["bob@bücher.example"]);
    }

    #[test]
    fn leaves_lookalikes_alone() {
        for s in [
            "cpu.usage",
            "v1.2.3",
            "1.2.3.4.5",
            "999.1.1.1",
            "12:30:45",
            "std::fmt::Display",
            "a@b",
            "@here",
            "ratio 0.5",
            "2026-11-25T13:01:43Z",
            "user@localhost",
            "00:1a:2b:3c:4d:5e",
            "x10.0.0.1",
            "2026-11-25",
            "build-1-2-3",
            "10-1-2-3-4",
            "v1-2-3-4",
            "1_000_000",
        ] {
            assert!(find_pii(s).is_empty(), "{s} -> {:?}", texts(s));
        }
    }

    #[test]
    fn pseudonyms_are_stable_per_tenant_and_differ_across_tenants() {
        let k = key();
        let a = k.for_tenant("acme").pseudonym("bob@example.com");
        assert_eq!(a, k.for_tenant("acme").pseudonym("bob@example.com"));
        assert_ne!(a, k.for_tenant("globex").pseudonym("bob@example.com"));
        assert_ne!(a, PiiKey::from_secret(b"another key").for_tenant("acme").pseudonym("bob@example.com"));
        assert!(a.starts_with(PSEUDONYM_PREFIX) && a.len() == 29);
        assert!(find_pii(&a).is_empty(), "a pseudonym must not look like PII itself");
    }

    /// A pseudonym is `anon_` and the first 12 bytes of HMAC-SHA256(key, tenant ‖ 0x1f ‖ value),
    /// computed independently here with aws-lc: changing how it is computed must never change
    /// a pseudonym (that would split every user's history in two).
    fn reference_pseudonym(secret: &[u8], tenant: &str, value: &str) -> String {
        use aws_lc_rs::hmac;
        let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
        let tag = hmac::sign(&key, &[tenant.as_bytes(), &[0x1f], value.as_bytes()].concat());
        let hex: String = tag.as_ref()[..12].iter().map(|b| format!("{b:02x}")).collect();
        format!("{PSEUDONYM_PREFIX}{hex}")
    }

    #[test]
    fn pseudonyms_are_the_published_hmac() {
        // A fixed answer (Python's hmac module gives the same), so the reference cannot drift either.
        assert_eq!(PiiKey::from_secret(b"k").for_tenant("acme").pseudonym("10.0.0.1"), "anon_be8e2a52ce1fb149c96c15f0");
        assert_eq!(reference_pseudonym(b"k", "acme", "10.0.0.1"), "anon_be8e2a52ce1fb149c96c15f0");
        let long_key = [7u8; 100];
        assert_eq!(
            PiiKey::from_secret(&long_key).for_tenant("t").pseudonym(""),
            reference_pseudonym(&long_key, "t", "")
        );
    }

    #[test]
    fn a_memo_lends_only_text_that_needs_no_escaping_and_stays_right_when_its_arena_is_full() {
        let k = key();
        let arena = Bump::new();
        let memo = PseudonymMemo::new("acme", &arena);
        let p = k.for_memo(&memo);
        let plain = k.for_tenant("acme");
        let quoted = "said \"hi\" from 10.0.0.1";
        for _ in 0..2 {
            let s = p.scrubbed(quoted).expect("an address to replace");
            assert!(matches!(s, Cow::Owned(_)), "a text with a quote in it is not lent: {s}");
            assert_eq!(s, plain.scrub_text(quoted));
            let s = p.scrubbed("from 10.0.0.1").expect("an address to replace");
            assert!(matches!(s, Cow::Borrowed(_)), "a plain text is lent");
            assert_eq!(s, plain.scrub_text("from 10.0.0.1"));
            let s = p.pseudonym_lent("bob");
            assert!(matches!(s, Cow::Borrowed(_)), "a pseudonym is lent");
            assert_eq!(s, plain.pseudonym("bob"));
        }
        assert_eq!(p.scrubbed("nothing to see"), None);
        assert_eq!(p.scrubbed("mail bob@example.com"), Some(plain.scrub_text("mail bob@example.com")));
        // Fill the arena: values are still right, made anew and handed out as strings.
        let mut i = 0;
        while !matches!(p.pseudonym_lent(&format!("v{i}")), Cow::Owned(_)) {
            i += 1;
        }
        assert!(i > 10_000, "the arena holds many pseudonyms before it is full ({i})");
        assert!(arena.allocated_bytes() <= MEMO_ARENA_BYTES, "{}", arena.allocated_bytes());
        for v in ["carol", "10.0.0.9", "bob"] {
            assert_eq!(p.pseudonym_lent(v), plain.pseudonym(v));
        }
        assert_eq!(p.scrubbed("by carol@example.com"), Some(plain.scrub_text("by carol@example.com")));
    }

    #[test]
    fn a_memo_gives_the_same_pseudonyms_once_each_is_bounded_and_never_prints_values() {
        let k = key();
        let arena = Bump::new();
        let memo = PseudonymMemo::new("acme", &arena);
        let p = k.for_memo(&memo);
        let plain = k.for_tenant("acme");
        for v in ["bob@example.com", "10.0.0.1", "bob@example.com", "10.0.0.1"] {
            assert_eq!(p.pseudonym(v), plain.pseudonym(v));
        }
        assert_eq!(memo.len(), 2, "each distinct value remembered once");
        let mut doc = serde_json::json!({"user": "bob", "msg": "from 10.0.0.1 by bob@example.com"});
        let mut plain_doc = doc.clone();
        p.scrub_json(&mut doc);
        plain.scrub_json(&mut plain_doc);
        assert_eq!(doc, plain_doc);
        assert!(!format!("{memo:?} {p:?}").contains("bob"), "{memo:?}");
        // A memo is its tenant's: another tenant's pseudonyms come from another memo.
        let other = PseudonymMemo::new("globex", &arena);
        assert_ne!(k.for_memo(&other).pseudonym("bob@example.com"), plain.pseudonym("bob@example.com"));
        for i in 0..MEMO_SLOTS * 4 {
            assert_eq!(p.pseudonym(&format!("user-{i}")), plain.pseudonym(&format!("user-{i}")));
        }
        assert!(memo.len() <= MEMO_SLOTS);
        let long = "x".repeat(MEMO_MAX_VALUE + 1);
        assert_eq!(p.pseudonym(&long), plain.pseudonym(&long));
    }

    #[test]
    fn a_replacement_that_makes_a_new_address_is_scrubbed_again() {
        // Found by fuzzing ingest: the IPv6 address became a pseudonym, and the pseudonym with the
        // `[at]` spelled out read as an e-mail address.
        let k = key();
        let p = k.for_tenant("acme");
        let dirty = "so, fe81::[at]h\u{40c}a.smessage";
        let once = p.scrub_text(dirty).into_owned();
        assert!(matches!(p.scrub_text(&once), Cow::Borrowed(_)), "{once:?} is not clean");
        assert!(!once.contains("fe81") && !once.contains('@'), "{once:?}");
    }

    #[test]
    fn identifier_keys_match_on_words() {
        for k in [
            "user",
            "user_id",
            "userId",
            "UserName",
            "email",
            "e-mail",
            "ip",
            "client_ip",
            "clientIp",
            "Client-IP",
            "session",
            "session_id",
            "sessionId",
            "x-forwarded-for",
            "remote_addr",
            "access_token",
            "password",
            "api_key",
            "phone_number",
            "device.id",
        ] {
            assert!(is_identifier_key(k), "{k}");
        }
        for k in [
            "user_ssn",
            "ssn_of_user",
            "customerPhoneNumber",
            "ip_of_client",
            "a_b_c_d_e_f_g_h_i_j_k_l_m_n_o_p_q_user_id",
        ] {
            assert!(is_identifier_key(k), "{k}");
        }
        for k in ["zip", "ship", "description", "name", "value", "token_count", "ips_total", "tokens", "source", "kind"]
        {
            assert!(!is_identifier_key(k), "{k}");
        }
    }

    #[test]
    fn scrubs_a_nested_document_completely() {
        let k = key();
        let p = k.for_tenant("acme");
        let mut doc = json!({
            "msg": "login from 10.0.0.7 by carol@corp.example",
            "user_id": 4242,
            "session": {"id": "s-1", "ip": "10.0.0.8"},
            "labels": {"clientIp": "2001:db8::99", "region": "eu-1"},
            "list": ["dave@x.example", {"email": "erin@y.example"}],
            "10.9.9.9": "a key that is an address",
            "flag": true,
            "nothing": null
        });
        p.scrub_json(&mut doc);
        let text = doc.to_string();
        for raw in [
            "10.0.0.7",
            "carol@corp.example",
            "4242",
            "10.0.0.8",
            "2001:db8::99",
            "dave@x.example",
            "erin@y.example",
            "10.9.9.9",
            "s-1",
        ] {
            assert!(!text.contains(raw), "{raw} survived in {text}");
        }
        assert_eq!(doc["labels"]["region"], "eu-1");
        assert_eq!(doc["flag"], true);
        assert!(doc["nothing"].is_null());
        assert_eq!(doc["user_id"], json!(p.pseudonym("4242")));
    }

    #[test]
    fn scrubbed_text_stays_clean_and_identifier_values_are_always_replaced() {
        let k = key();
        let p = k.for_tenant("acme");
        let mut doc = json!({"user": "bob", "msg": "from 10.0.0.1"});
        p.scrub_json(&mut doc);
        let once = doc.clone();
        p.scrub_json(&mut doc);
        assert_eq!(doc["msg"], once["msg"], "a pseudonym in text is not itself an address");
        // A value shaped like a pseudonym is replaced too: the sender chose its shape.
        assert_ne!(doc["user"], once["user"]);
    }

    /// Real evasions, one per line (`tests/data/pii_evasions.jsonl`): none may survive.
    #[test]
    fn the_corpus_of_known_evasions_never_survives() {
        let k = key();
        let p = k.for_tenant("acme");
        for line in include_str!("../tests/data/pii_evasions.jsonl").lines().filter(|l| !l.trim().is_empty()) {
            let case: Value = serde_json::from_str(line).unwrap();
            let mut doc = case["doc"].clone();
            p.scrub_json(&mut doc);
            let out = doc.to_string();
            for secret in case["secrets"].as_array().unwrap() {
                let secret = secret.as_str().unwrap();
                assert!(!out.contains(secret), "{}: {secret:?} survived in {out}", case["why"]);
            }
        }
    }

    #[test]
    fn normalising_leaves_plain_text_alone_and_decodes_what_hides_an_address() {
        assert_eq!(normalise("cpu.usage 0.5"), None);
        assert_eq!(normalise("a%40b.example").as_deref(), Some("a@b.example"));
        assert_eq!(normalise("x%2540y.example").as_deref(), Some("x@y.example"));
        assert_eq!(normalise("ｃ＠ｄ．ｅｘ").as_deref(), Some("c@d.ex"));
        assert_eq!(normalise("f[AT]g[dot]com").as_deref(), Some("f@g.com"));
        assert_eq!(normalise("café"), None, "already normal: nothing to change");
    }

    #[test]
    fn random_addresses_embedded_in_noise_never_survive() {
        // A deterministic xorshift so failures reproduce.
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let k = key();
        let p = k.for_tenant("t");
        let fillers = ["", " ", "ip=", "(", "[", "from ", "<", "\"", "x ", ",", "/"];
        let closers = ["", " ", ")", "]", ".", ",", ">", "\"", ";", " end"];
        for _ in 0..2000 {
            let r = next();
            let addr = match r % 3 {
                0 => format!("{}.{}.{}.{}", next() % 256, next() % 256, next() % 256, next() % 256),
                1 => {
                    let groups: Vec<String> = (0..8).map(|_| format!("{:x}", next() % 65536)).collect();
                    groups.join(":")
                }
                _ => format!("u{}.n{}@mail{}.example.org", next() % 1000, next() % 1000, next() % 10),
            };
            let text = format!(
                "{}{}{}",
                fillers[(next() % fillers.len() as u64) as usize],
                addr,
                closers[(next() % closers.len() as u64) as usize]
            );
            let out = p.scrub_text(&text);
            assert!(!out.contains(&addr), "{addr} survived in {text:?} -> {out:?}");
        }
    }

    mod hidden {
        use super::*;
        use proptest::prelude::*;

        /// A secret and the forms it may be written in; none of them may reach the output.
        #[derive(Debug, Clone)]
        struct Secret {
            canonical: String,
            written: String,
        }

        fn full_width(s: &str) -> String {
            s.chars()
                .map(
                    |c| {
                        if ('!'..='~').contains(&c) { char::from_u32(c as u32 - 0x21 + 0xFF01).unwrap_or(c) } else { c }
                    },
                )
                .collect()
        }

        fn ipv4() -> impl Strategy<Value = Secret> {
            (any::<[u8; 4]>(), 0..5u8).prop_map(|(o, enc)| {
                let dotted = format!("{}.{}.{}.{}", o[0], o[1], o[2], o[3]);
                let written = match enc {
                    0 => dotted.clone(),
                    1 => format!("ip-{}-{}-{}-{}.ec2.internal", o[0], o[1], o[2], o[3]),
                    2 => full_width(&dotted),
                    3 => format!("{dotted}:8443"),
                    _ => format!("{dotted}.nip.io"),
                };
                let canonical = if enc == 1 { format!("{}-{}-{}-{}", o[0], o[1], o[2], o[3]) } else { dotted };
                Secret { canonical, written }
            })
        }

        fn ipv6() -> impl Strategy<Value = Secret> {
            (any::<[u16; 8]>(), 0..3u8).prop_map(|(g, enc)| {
                let full = g.iter().map(|x| format!("{x:04x}")).collect::<Vec<_>>().join(":");
                let written = match enc {
                    0 => full.clone(),
                    1 => format!("{full}:8080"),
                    _ => format!("[{full}]:443"),
                };
                Secret { canonical: full, written }
            })
        }

        fn email() -> impl Strategy<Value = Secret> {
            ("[a-z][a-z0-9._]{0,8}[a-z0-9]", "[a-z]{2,8}", "[a-z]{2,4}", 0..6u8).prop_map(|(local, host, tld, enc)| {
                let plain = format!("{local}@{host}.{tld}");
                let written = match enc {
                    0 => plain.clone(),
                    1 => plain.replace('@', "%40"),
                    2 => plain.replace('@', "%2540"),
                    3 => plain.replace('@', "＠"),
                    4 => full_width(&plain),
                    _ => format!("{local}[at]{host}[dot]{tld}"),
                };
                Secret { canonical: plain, written }
            })
        }

        fn secret() -> impl Strategy<Value = Secret> {
            prop_oneof![ipv4(), ipv6(), email()]
        }

        /// Text before a secret: words and punctuation that do not glue onto it.
        fn before() -> impl Strategy<Value = String> {
            prop::collection::vec(
                prop_oneof![Just(" "), Just("from "), Just("="), Just("("), Just("/"), Just(", "), Just("\"")],
                0..3,
            )
            .prop_map(|parts| parts.concat())
        }

        /// Text after a secret (a letter right after an address makes it a word, `1.2.3.4x`).
        fn after() -> impl Strategy<Value = String> {
            prop::collection::vec(
                prop_oneof![Just(" "), Just(" end"), Just(")"), Just("/"), Just(", "), Just("\""), Just("; ok")],
                0..3,
            )
            .prop_map(|parts| parts.concat())
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]

            /// An address or e-mail hidden in text, in a key, in a label or deep in a document, in
            /// any of the encodings above, never reaches the output — raw or decoded.
            #[test]
            fn no_hidden_address_survives(secret in secret(), before in before(), after in after(), place in 0..4u8) {
                let k = key();
                let p = k.for_tenant("t");
                let text = format!("{before}{}{after}", secret.written);
                let mut doc = match place {
                    0 => json!({"msg": text}),
                    1 => json!({ text.clone(): 1 }),
                    2 => json!({"labels": {"route": text}}),
                    _ => json!({"a": [{"b": {"c": text}}]}),
                };
                p.scrub_json(&mut doc);
                let out = doc.to_string();
                prop_assert!(!out.contains(&secret.written), "{:?} survived in {}", secret.written, out);
                prop_assert!(!out.contains(&secret.canonical), "{:?} survived in {}", secret.canonical, out);
            }

            /// An identifier's value is replaced whole, whatever its type and however many words
            /// the key has, when any of its words names an identifier.
            #[test]
            fn identifier_values_never_survive(
                prefix in prop::collection::vec("[a-z]{1,6}", 0..20),
                word in prop::sample::select(vec!["ssn", "email", "ip", "phone", "password", "secret", "imei", "iban", "user_id", "session_id"]),
                value in prop_oneof![any::<u32>().prop_map(|n| json!(n + 100_000)), "[A-Za-z0-9]{6,12}".prop_map(|s| json!(s))],
            ) {
                let k = key();
                let p = k.for_tenant("t");
                let name = prefix.iter().map(String::as_str).chain([word]).collect::<Vec<_>>().join("_");
                let raw = match &value { Value::String(s) => s.clone(), other => other.to_string() };
                let mut doc = json!({ name.clone(): value });
                p.scrub_json(&mut doc);
                prop_assert!(!doc.to_string().contains(&raw), "{} = {} survived: {}", name, raw, doc);
            }

            /// The one-pass clues answer as the plain byte loops they replaced.
            #[test]
            fn the_quick_checks_answer_as_byte_loops(text in prop_oneof!["[ -~]{0,80}", "[0-9.:@_%(\\[{a-]{0,40}", ".{0,30}"]) {
                let b = text.as_bytes();
                let after_digit = |set: &[u8]| (1..b.len()).any(|i| set.contains(&b[i]) && b[i - 1].is_ascii_digit());
                let encoded = b.iter().any(|&c| c >= 0x80 || b"%[({".contains(&c));
                let could = encoded || b.contains(&b'@') || b.contains(&b':') || after_digit(b".-_");
                prop_assert_eq!(could_hold_pii(&text), could);
                let found = clues(b);
                prop_assert_eq!(found & ENCODED != 0, encoded);
                prop_assert_eq!(found & AT != 0, b.contains(&b'@'));
                prop_assert_eq!(found & COLON != 0, b.contains(&b':'));
                prop_assert_eq!(found & DIGIT_DOT != 0, after_digit(b"."));
                prop_assert_eq!(found & DIGIT_SEP != 0, after_digit(b"-_"));
                if !encoded {
                    prop_assert_eq!(normalise(&text), None);
                }
            }

            /// Pseudonyms are HMAC-SHA256 as aws-lc computes it, for any key, tenant and value.
            #[test]
            fn pseudonyms_match_the_reference_hmac(secret in proptest::collection::vec(any::<u8>(), 0..130), tenant in "[a-z0-9-]{1,40}", value in any::<String>()) {
                let made = PiiKey::from_secret(&secret).for_tenant(&tenant).pseudonym(&value);
                prop_assert_eq!(made, reference_pseudonym(&secret, &tenant, &value));
            }

            /// Text the one-pass check calls clean is text the full scan leaves alone; and a batch's
            /// memo (texts seen again, in any order) scrubs exactly as no memo does.
            #[test]
            fn the_quick_check_and_the_memo_change_nothing(
                texts in prop::collection::vec(
                    prop_oneof![
                        "[ -~]{0,40}",
                        ".{0,20}",
                        (secret(), before(), after()).prop_map(|(s, b, a)| format!("{b}{}{a}", s.written)),
                    ],
                    1..12,
                ),
                order in prop::collection::vec(0..12usize, 1..30),
            ) {
                let k = key();
                let plain = k.for_tenant("t");
                let arena = Bump::new();
                let memo = PseudonymMemo::new("t", &arena);
                let memoised = k.for_memo(&memo);
                for text in &texts {
                    if !could_hold_pii(text) {
                        prop_assert!(matches!(plain.scrub_passes(text), Cow::Borrowed(_)), "{:?} needed scrubbing", text);
                    }
                }
                for i in order {
                    let text = &texts[i % texts.len()];
                    prop_assert_eq!(memoised.scrub_text(text), plain.scrub_passes(text));
                }
            }
        }
    }
}
