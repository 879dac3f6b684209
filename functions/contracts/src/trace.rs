//! W3C trace context (P-4): one trace id follows a telemetry spike from the ingest request
//! through its stream records, the consumer's signal and the agent run to its acts.
//!
//! The id comes from the request's `traceparent` header, else from API Gateway's X-Ray header
//! (`X-Amzn-Trace-Id: Root=1-5759e988-bd862e3fe1be46a994272793`, the same 128 bits), else it is
//! new. Records and run messages carry it as a `traceparent` string; services log its trace id.

use aws_lc_rs::rand::{SecureRandom, SystemRandom};

/// A trace id (32 lowercase hex), the id of the span that carries it (16 hex), and the sampled flag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    trace_id: String,
    span_id: String,
    sampled: bool,
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    // The system RNG does not fail on the platforms we run on; a zero id is refused by readers.
    let _ = SystemRandom::new().fill(&mut buf);
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

impl TraceContext {
    /// A `traceparent` header: `00-<trace id>-<span id>-<flags>`. Ids of all zeros, upper-case
    /// hex, other lengths and version `ff` are refused (the W3C rules).
    pub fn parse(traceparent: &str) -> Option<Self> {
        let mut parts = traceparent.trim().split('-');
        let (version, trace_id, span_id, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if !is_hex(version, 2) || version == "ff" || (version == "00" && parts.next().is_some()) {
            return None;
        }
        if !is_hex(trace_id, 32) || !is_hex(span_id, 16) || !is_hex(flags, 2) {
            return None;
        }
        if trace_id.bytes().all(|b| b == b'0') || span_id.bytes().all(|b| b == b'0') {
            return None;
        }
        let sampled = u8::from_str_radix(flags, 16).is_ok_and(|f| f & 1 == 1);
        Some(Self { trace_id: trace_id.to_owned(), span_id: span_id.to_owned(), sampled })
    }

    /// An X-Ray header (`Root=1-<8 hex time>-<24 hex>;Parent=<16 hex>;Sampled=1`).
    pub fn from_xray(header: &str) -> Option<Self> {
        let mut root = None;
        let mut parent = None;
        let mut sampled = false;
        for part in header.split(';') {
            match part.trim().split_once('=') {
                Some(("Root", v)) => root = Some(v),
                Some(("Parent", v)) => parent = Some(v),
                Some(("Sampled", v)) => sampled = v == "1",
                _ => {}
            }
        }
        let mut r = root?.split('-');
        let (one, time, rest) = (r.next()?, r.next()?, r.next()?);
        if one != "1" || r.next().is_some() || !is_hex(time, 8) || !is_hex(rest, 24) {
            return None;
        }
        let trace_id = format!("{time}{rest}");
        let span_id = parent.filter(|p| is_hex(p, 16)).map_or_else(|| random_hex(8), str::to_owned);
        Self::parse(&format!("00-{trace_id}-{span_id}-{}", if sampled { "01" } else { "00" }))
    }

    /// A new trace.
    pub fn new_root() -> Self {
        Self { trace_id: random_hex(16), span_id: random_hex(8), sampled: true }
    }

    /// The same trace, one hop further: a new span id.
    pub fn child(&self) -> Self {
        Self { span_id: random_hex(8), ..self.clone() }
    }

    pub fn trace_id(&self) -> &str {
        &self.trace_id
    }

    pub fn span_id(&self) -> &str {
        &self.span_id
    }

    /// The `traceparent` form, for headers, stream records and run messages.
    pub fn traceparent(&self) -> String {
        format!("00-{}-{}-{}", self.trace_id, self.span_id, if self.sampled { "01" } else { "00" })
    }

    /// The X-Ray form of the trace id (`1-<8 hex>-<24 hex>`), to find it in the X-Ray console.
    pub fn xray_trace_id(&self) -> String {
        format!("1-{}-{}", &self.trace_id[..8], &self.trace_id[8..])
    }
}

/// The trace id of a `traceparent`, if it is one.
pub fn trace_id_of(traceparent: &str) -> Option<String> {
    TraceContext::parse(traceparent).map(|t| t.trace_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparents_round_trip_and_bad_ones_are_refused() {
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let t = TraceContext::parse(tp).unwrap();
        assert_eq!(
            (t.trace_id(), t.span_id(), t.traceparent().as_str()),
            ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", tp)
        );
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-zz",
        ] {
            assert_eq!(TraceContext::parse(bad), None, "{bad:?}");
        }
        // A later version may carry more fields.
        assert!(TraceContext::parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x").is_some());
    }

    #[test]
    fn an_xray_header_is_the_same_trace() {
        let t = TraceContext::from_xray("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1")
            .unwrap();
        assert_eq!(t.trace_id(), "5759e988bd862e3fe1be46a994272793");
        assert_eq!(t.span_id(), "53995c3f42cd8ad8");
        assert_eq!(t.xray_trace_id(), "1-5759e988-bd862e3fe1be46a994272793");
        assert!(TraceContext::from_xray("Root=1-5759e988-bd86;Sampled=1").is_none());
        assert!(TraceContext::from_xray("Self=1-5759e988-bd862e3fe1be46a994272793").is_none());
        let no_parent = TraceContext::from_xray("Root=1-5759e988-bd862e3fe1be46a994272793").unwrap();
        assert_eq!(no_parent.span_id().len(), 16);
    }

    #[test]
    fn a_child_keeps_the_trace_and_a_root_is_new() {
        let a = TraceContext::new_root();
        let b = a.child();
        assert_eq!(a.trace_id(), b.trace_id());
        assert_ne!(a.span_id(), b.span_id());
        assert_ne!(a.trace_id(), TraceContext::new_root().trace_id());
        assert_eq!(TraceContext::parse(&b.traceparent()), Some(b));
    }
}
