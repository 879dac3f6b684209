//! Privacy (P-1): personal data is replaced by keyed pseudonyms before anything is written.
//!
//! - The key is derived once per cold start from a KMS HMAC key that never leaves KMS:
//!   `GenerateMac(PII key, "naksha/pii-pseudonym/v1")`. One KMS call per cold start, none per event.
//! - A pseudonym is `anon_` + 24 hex digits of HMAC-SHA256(key, tenant ‖ 0x1f ‖ value): stable
//!   within a tenant (so distinct users can still be counted), unlinkable across tenants, and
//!   irreversible without the key.
//! - What is replaced: IPv4 and IPv6 addresses and e-mail addresses anywhere in any string
//!   (object keys included), and the whole value of identifier fields (`user`, `user_id`, `email`,
//!   `ip`, `client_ip`, `session`, tokens, passwords …) at any depth.

use std::borrow::Cow;
use std::fmt;
use std::net::Ipv6Addr;

use aws_lc_rs::hmac;
use serde_json::{Map, Value};

/// The label under which the pseudonym key is derived from the KMS key. Changing it rotates
/// every pseudonym.
pub const DERIVATION_MESSAGE: &[u8] = b"naksha/pii-pseudonym/v1";

/// Prefix of every pseudonym, so readers can tell a pseudonym from data.
pub const PSEUDONYM_PREFIX: &str = "anon_";

#[derive(Debug, thiserror::Error)]
pub enum PrivacyError {
    #[error("deriving the pseudonym key from KMS failed: {0}")]
    Kms(String),
}

/// The pseudonymisation key. Its bytes are never printed.
#[derive(Clone)]
pub struct PiiKey {
    key: hmac::Key,
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
        Self { key: hmac::Key::new(hmac::HMAC_SHA256, secret) }
    }

    /// Pseudonymiser for one tenant's data.
    pub fn for_tenant<'a>(&'a self, tenant: &'a str) -> Pseudonymiser<'a> {
        Pseudonymiser { key: self, tenant }
    }
}

/// Replaces personal data in one tenant's values.
#[derive(Debug, Clone, Copy)]
pub struct Pseudonymiser<'a> {
    key: &'a PiiKey,
    tenant: &'a str,
}

const HEX: &[u8; 16] = b"0123456789abcdef";

impl Pseudonymiser<'_> {
    /// The pseudonym of `value` for this tenant.
    pub fn pseudonym(&self, value: &str) -> String {
        let mut ctx = hmac::Context::with_key(&self.key.key);
        ctx.update(self.tenant.as_bytes());
        ctx.update(&[0x1f]);
        ctx.update(value.as_bytes());
        let tag = ctx.sign();
        let mut out = String::with_capacity(PSEUDONYM_PREFIX.len() + 24);
        out.push_str(PSEUDONYM_PREFIX);
        for b in &tag.as_ref()[..12] {
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 0xf) as usize] as char);
        }
        out
    }

    /// `s` with every IP and e-mail address replaced; borrowed when there was nothing to replace.
    pub fn scrub_text<'s>(&self, s: &'s str) -> Cow<'s, str> {
        let spans = find_pii(s);
        if spans.is_empty() {
            return Cow::Borrowed(s);
        }
        let mut out = String::with_capacity(s.len() + spans.len() * 16);
        let mut at = 0;
        for (start, end) in spans {
            out.push_str(&s[at..start]);
            out.push_str(&self.pseudonym(&s[start..end]));
            at = end;
        }
        out.push_str(&s[at..]);
        Cow::Owned(out)
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
            if is_identifier_key(k) {
                self.pseudonymise_whole(v);
            } else {
                self.scrub_json(v);
            }
        }
    }

    /// Replace an identifier field's value by its pseudonym. `null` and booleans carry no
    /// identity and stay; numbers, strings and structures are pseudonymised whole.
    pub fn pseudonymise_whole(&self, value: &mut Value) {
        let replacement = match &*value {
            Value::Null | Value::Bool(_) => return,
            Value::String(s) if s.starts_with(PSEUDONYM_PREFIX) && s.len() == PSEUDONYM_PREFIX.len() + 24 => return,
            Value::String(s) => self.pseudonym(s),
            Value::Number(n) => self.pseudonym(&n.to_string()),
            other => self.pseudonym(&other.to_string()),
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
const LAST_WORD: &[&str] = &[
    "ip",
    "ipv4",
    "ipv6",
    "ipaddr",
    "ipaddress",
    "email",
    "user",
    "username",
    "userid",
    "session",
    "sessionid",
    "sid",
    "phone",
    "login",
    "token",
    "password",
    "secret",
    "cookie",
];
const LAST_TWO: &[(&str, &str)] = &[
    ("user", "id"),
    ("user", "name"),
    ("session", "id"),
    ("ip", "address"),
    ("ip", "addr"),
    ("email", "address"),
    ("phone", "number"),
    ("customer", "id"),
    ("device", "id"),
    ("mac", "address"),
    ("api", "key"),
    ("remote", "addr"),
    ("remote", "address"),
    ("account", "email"),
    ("user", "agent"),
];

/// Whether a field name marks its value as an identifier (compared on words, so `client_ip`,
/// `clientIp` and `Client-IP` match and `zip` does not).
pub fn is_identifier_key(key: &str) -> bool {
    // Hot path (every key of every event): ASCII keys are matched without allocating.
    const CAP: usize = 64;
    const MAX_WORDS: usize = 16;
    if !key.is_ascii() || key.len() > CAP {
        let words = split_words(key);
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
                return false;
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
    if eq(EXACT, joined) || eq(LAST_WORD, joined) || eq(LAST_WORD, last) {
        return true;
    }
    words.len() >= 2 && LAST_TWO.iter().any(|(a, b)| a.as_bytes() == words[words.len() - 2] && b.as_bytes() == *last)
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

/// Byte spans of IPv4, IPv6 and e-mail addresses in `s`, sorted and non-overlapping.
pub fn find_pii(s: &str) -> Vec<(usize, usize)> {
    let b = s.as_bytes();
    let (mut has_at, mut has_colon, mut has_dot_digit) = (false, false, false);
    for (i, &c) in b.iter().enumerate() {
        match c {
            b'@' => has_at = true,
            b':' => has_colon = true,
            b'.' if i > 0 && b[i - 1].is_ascii_digit() => has_dot_digit = true,
            _ => {}
        }
    }
    if !(has_at || has_colon || has_dot_digit) {
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

fn is_local_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'%' | b'+' | b'-' | b'\'')
}

fn is_domain_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'.' || c == b'-'
}

fn find_emails(b: &[u8], spans: &mut Vec<(usize, usize)>) {
    for (at, _) in b.iter().enumerate().filter(|(_, c)| **c == b'@') {
        let mut start = at;
        while start > 0 && is_local_char(b[start - 1]) {
            start -= 1;
        }
        while start < at && b[start] == b'.' {
            start += 1;
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
        if labels_ok && has_dot && tld.len() >= 2 && tld.iter().all(u8::is_ascii_alphabetic) {
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
            // `2001:db8::1:8080`-style host:port is ambiguous; try the address without the port.
            let head = &s[start..start + last];
            if head.contains("::") && head.parse::<Ipv6Addr>().is_ok() {
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
        // The run stops at a byte that is neither digit nor dot; a letter there joins a word.
        let after_ok = i == b.len() || !b[i].is_ascii_alphanumeric();
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
    fn scrubbing_twice_changes_nothing_more() {
        let k = key();
        let p = k.for_tenant("acme");
        let mut doc = json!({"user": "bob", "msg": "from 10.0.0.1"});
        p.scrub_json(&mut doc);
        let once = doc.clone();
        p.scrub_json(&mut doc);
        assert_eq!(doc, once);
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
}
