//! X-Ray subsegments (P-4). With `Tracing: Active` Lambda records a segment for every invocation;
//! the work done inside it (a request, a signal raised, a run advanced) is added under it as a
//! subsegment annotated with the W3C trace id, so X-Ray's console finds every invocation one
//! telemetry spike went through with `annotation.naksha_trace_id = "<trace id>"`.
//!
//! Sent as the X-Ray SDKs send them: one UDP datagram per subsegment to the daemon Lambda runs
//! (`AWS_XRAY_DAEMON_ADDRESS`). Nothing is sent where that is unset (tests, the local stack), when
//! the invocation is not sampled, or outside an invocation ([`in_invocation`]). Sending never
//! fails the work: a datagram that cannot be sent is dropped.

use std::future::Future;
use std::net::{SocketAddr, UdpSocket};
use std::time::{SystemTime, UNIX_EPOCH};

use naksha_contracts::trace::TraceContext;
use serde_json::{Map, Value, json};

/// The invocation's place in X-Ray: its trace (`Root`) and the segment to hang work under (`Parent`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parent {
    pub root: String,
    pub parent: String,
}

impl Parent {
    /// From Lambda's trace header (`Root=1-…;Parent=…;Sampled=1`); `None` unless sampled and complete.
    pub fn from_header(header: &str) -> Option<Self> {
        let (mut root, mut parent, mut sampled) = (None, None, false);
        for part in header.split(';') {
            match part.trim().split_once('=') {
                Some(("Root", v)) if valid_root(v) => root = Some(v.to_owned()),
                Some(("Parent", v)) if is_hex(v, 16) => parent = Some(v.to_owned()),
                Some(("Sampled", v)) => sampled = v == "1",
                _ => {}
            }
        }
        match (root, parent, sampled) {
            (Some(root), Some(parent), true) => Some(Self { root, parent }),
            _ => None,
        }
    }
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn valid_root(v: &str) -> bool {
    let mut it = v.split('-');
    matches!((it.next(), it.next(), it.next(), it.next()), (Some("1"), Some(t), Some(id), None) if is_hex(t, 8) && is_hex(id, 24))
}

#[derive(Debug, Clone)]
struct Invocation {
    parent: Parent,
    daemon: SocketAddr,
}

tokio::task_local! {
    static INVOCATION: Invocation;
}

/// The daemon's UDP address from `AWS_XRAY_DAEMON_ADDRESS` (`host:port`, or
/// `tcp:host:port udp:host:port`).
fn daemon_from_env() -> Option<SocketAddr> {
    let v = std::env::var("AWS_XRAY_DAEMON_ADDRESS").ok()?;
    let udp = v.split_whitespace().find_map(|p| p.strip_prefix("udp:")).unwrap_or(v.trim());
    udp.parse().ok()
}

/// Run an invocation's work with its X-Ray header (the Runtime API's `Lambda-Runtime-Trace-Id`).
pub async fn in_invocation<F: Future>(header: Option<&str>, fut: F) -> F::Output {
    in_invocation_to(daemon_from_env(), header, fut).await
}

/// [`in_invocation`] with the daemon's address given (tests).
pub async fn in_invocation_to<F: Future>(daemon: Option<SocketAddr>, header: Option<&str>, fut: F) -> F::Output {
    match (daemon, header.and_then(Parent::from_header)) {
        (Some(daemon), Some(parent)) => INVOCATION.scope(Invocation { parent, daemon }, fut).await,
        _ => fut.await,
    }
}

fn seconds(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// The daemon's datagram for one subsegment: a header line, then the document.
fn document(parent: &Parent, name: &str, started: SystemTime, annotations: &[(&str, &str)], fault: bool) -> String {
    let ann: Map<String, Value> = annotations
        .iter()
        .filter(|(k, _)| !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
        .map(|(k, v)| ((*k).to_owned(), Value::from(v.chars().take(256).collect::<String>())))
        .collect();
    let doc = json!({
        "type": "subsegment",
        "name": name,
        "id": TraceContext::new_root().span_id(),
        "trace_id": parent.root,
        "parent_id": parent.parent,
        "start_time": seconds(started),
        "end_time": seconds(SystemTime::now()),
        "fault": fault,
        "annotations": ann,
    });
    format!("{{\"format\":\"json\",\"version\":1}}\n{doc}")
}

/// Record `name` (begun at `started`, ending now) under the current invocation's segment.
pub fn subsegment(name: &str, started: SystemTime, annotations: &[(&str, &str)], fault: bool) {
    // One socket for the process, as the X-Ray SDKs keep one: bound on first use.
    static SOCKET: std::sync::OnceLock<Option<UdpSocket>> = std::sync::OnceLock::new();
    let _ = INVOCATION.try_with(|inv| {
        let datagram = document(&inv.parent, name, started, annotations, fault);
        if let Some(sock) = SOCKET.get_or_init(|| UdpSocket::bind(("0.0.0.0", 0)).ok()) {
            let _ = sock.send_to(datagram.as_bytes(), inv.daemon);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";

    #[test]
    fn the_header_is_read_only_when_sampled_and_whole() {
        let p = Parent::from_header(HEADER).unwrap();
        assert_eq!((p.root.as_str(), p.parent.as_str()), ("1-5759e988-bd862e3fe1be46a994272793", "53995c3f42cd8ad8"));
        assert_eq!(Parent::from_header(&HEADER.replace("Sampled=1", "Sampled=0")), None);
        assert_eq!(Parent::from_header("Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1"), None);
        assert_eq!(Parent::from_header("Root=1-zz;Parent=53995c3f42cd8ad8;Sampled=1"), None);
        assert_eq!(Parent::from_header(""), None);
    }

    fn receive(sock: &UdpSocket) -> (Value, Value) {
        let mut buf = [0u8; 65_536];
        let n = sock.recv(&mut buf).unwrap();
        let text = std::str::from_utf8(&buf[..n]).unwrap();
        let (head, doc) = text.split_once('\n').unwrap();
        (serde_json::from_str(head).unwrap(), serde_json::from_str(doc).unwrap())
    }

    #[tokio::test]
    async fn work_in_an_invocation_reaches_the_daemon_as_an_annotated_subsegment() {
        let daemon = UdpSocket::bind("127.0.0.1:0").unwrap();
        daemon.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
        let addr = daemon.local_addr().unwrap();
        let started = SystemTime::now();
        in_invocation_to(Some(addr), Some(HEADER), async {
            subsegment(
                "run",
                started,
                &[("naksha_trace_id", "4bf92f3577b34da6a3ce929d0e0e4736"), ("bad key!", "dropped")],
                false,
            );
        })
        .await;
        let (head, doc) = receive(&daemon);
        assert_eq!(head, json!({"format": "json", "version": 1}));
        assert_eq!(doc["type"], "subsegment");
        assert_eq!(doc["trace_id"], "1-5759e988-bd862e3fe1be46a994272793");
        assert_eq!(doc["parent_id"], "53995c3f42cd8ad8");
        assert!(doc["id"].as_str().is_some_and(|id| is_hex(id, 16)));
        assert!(doc["start_time"].as_f64().unwrap() <= doc["end_time"].as_f64().unwrap());
        assert_eq!(doc["annotations"], json!({"naksha_trace_id": "4bf92f3577b34da6a3ce929d0e0e4736"}));

        // Not sampled, or outside an invocation: nothing is sent.
        daemon.set_nonblocking(true).unwrap();
        let unsampled = HEADER.replace("Sampled=1", "Sampled=0");
        in_invocation_to(Some(addr), Some(&unsampled), async { subsegment("run", started, &[], false) }).await;
        subsegment("run", started, &[], false);
        std::thread::sleep(std::time::Duration::from_millis(200));
        let mut buf = [0u8; 1024];
        assert!(daemon.recv(&mut buf).is_err(), "no datagram");
    }
}
