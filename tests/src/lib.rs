//! The test harness for the running local stack (`make up`): HTTP to the API on :9000, the AWS
//! SDK to the emulator on :4566, dev tokens, and snapshots of every table and the whole stream
//! so a test can assert that a rejected request wrote nothing anywhere.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_kinesis::types::{Record, ShardIteratorType};
use naksha_local::devauth::DevKey;
pub use naksha_local::stack::API_URL;
use naksha_local::stack::{self, LocalStack, Paths};
use naksha_local::template::Template;
use serde_json::Value;

pub mod edge;

pub type Item = HashMap<String, AttributeValue>;

/// An HTTP answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    /// Panics unless this is an RFC 9457 problem with the given status.
    pub fn assert_problem(&self, status: u16) -> Value {
        assert_eq!(self.status, status, "body: {}", self.text);
        assert_eq!(self.content_type, "application/problem+json", "body: {}", self.text);
        let doc = self.json();
        for member in ["type", "title", "detail"] {
            assert!(doc[member].as_str().is_some_and(|s| !s.is_empty()), "problem lacks {member}: {doc}");
        }
        assert_eq!(doc["status"], status);
        doc
    }
}

/// Everything stored: each table's items (canonical text, sorted) and the stream's records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub tables: BTreeMap<String, Vec<String>>,
    pub stream: Vec<String>,
}

impl Snapshot {
    /// What differs, for assertion messages.
    pub fn diff(&self, other: &Snapshot) -> String {
        let mut out = String::new();
        for (t, items) in &other.tables {
            let before = self.tables.get(t).cloned().unwrap_or_default();
            for i in items.iter().filter(|i| !before.contains(i)) {
                out.push_str(&format!("+ {t}: {}\n", &i[..i.len().min(300)]));
            }
            for i in before.iter().filter(|i| !items.contains(i)) {
                out.push_str(&format!("- {t}: {}\n", &i[..i.len().min(300)]));
            }
        }
        if self.stream.len() != other.stream.len() {
            out.push_str(&format!("stream: {} -> {} records\n", self.stream.len(), other.stream.len()));
        }
        out
    }
}

#[derive(Debug)]
pub struct Stack {
    pub paths: Paths,
    pub template: Template,
    pub local: LocalStack,
    pub key: DevKey,
    pub http: reqwest::Client,
    pub db: aws_sdk_dynamodb::Client,
    pub kinesis: aws_sdk_kinesis::Client,
    pub kms: aws_sdk_kms::Client,
    pub config: aws_config::SdkConfig,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A tenant id no other test (or earlier run) uses.
pub fn unique_tenant(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!(
        "{prefix}-{:x}{:x}{:x}",
        nanos & 0xffff_ffff_ffff,
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

impl Stack {
    /// Connect to the running stack; a clear failure when it is not up.
    pub async fn connect() -> Self {
        let paths = Paths::discover().expect("run the tests from the repository");
        let local = LocalStack::load(&paths)
            .unwrap_or_else(|e| panic!("the local stack is not provisioned ({e}); run `make up` or `make test`"));
        let template = Template::load(&paths.template()).unwrap();
        let key = DevKey::load_or_create(&paths.dev_key()).unwrap();
        let http = reqwest::Client::builder().timeout(Duration::from_secs(300)).build().unwrap();
        let config = stack::emulator_config().await;
        let s = Self {
            db: aws_sdk_dynamodb::Client::new(&config),
            kinesis: aws_sdk_kinesis::Client::new(&config),
            kms: aws_sdk_kms::Client::new(&config),
            config,
            paths,
            template,
            local,
            key,
            http,
        };
        let health = s.get("/health", None).await;
        assert_eq!(health.status, 200, "the stack is not healthy; run `make up` ({})", health.text);
        s
    }

    pub fn token(&self, tenant: &str, roles: &[&str]) -> String {
        self.key.token(tenant, "alice", roles, 600).unwrap()
    }

    pub async fn send(&self, req: reqwest::RequestBuilder, token: Option<&str>) -> Reply {
        let req = match token {
            Some(t) => req.header("authorization", format!("Bearer {t}")),
            None => req,
        };
        let mut req = req.build().expect("a well-formed request");
        // Every write carries an `Idempotency-Key`, as a careful client's does: `cargo lambda
        // watch` now and then loses a function's answer and replies with its own 500
        // (`https://httpstatuses.com/500`; ours are `urn:naksha:problem:*`) after the function
        // ran. Such a reply is retried once with the same key, so the retry gets the first
        // answer back instead of acting twice (docs/api.md, "Retries"). A test that sets its own
        // key keeps it. A function that panicked is caught by `make e2e` from the functions' log.
        let write = !matches!(req.method().as_str(), "GET" | "HEAD" | "OPTIONS");
        if write && !req.headers().contains_key("idempotency-key") {
            let key = format!("e2e-{}", uuid::Uuid::now_v7());
            req.headers_mut().insert("idempotency-key", key.parse().expect("a valid header"));
        }
        let again = req.try_clone();
        let reply = self.reply(req).await;
        match again {
            Some(again) if reply.status == 500 && reply.text.contains("https://httpstatuses.com/500") => {
                eprintln!(
                    "[e2e] the emulator answered its own 500 to {} {}; retrying once",
                    again.method(),
                    again.url().path()
                );
                tokio::time::sleep(Duration::from_millis(500)).await;
                self.reply(again).await
            }
            _ => reply,
        }
    }

    async fn reply(&self, req: reqwest::Request) -> Reply {
        let resp = self.http.execute(req).await.expect("the API at :9000 did not answer");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let content_type = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or_default().trim().to_owned())
            .unwrap_or_default();
        Reply { status, content_type, headers, text: resp.text().await.unwrap_or_default() }
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        self.send(self.http.get(format!("{API_URL}{path}")), token).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: impl Into<reqwest::Body>) -> Reply {
        let req = self.http.post(format!("{API_URL}{path}")).header("content-type", "application/json").body(body);
        self.send(req, token).await
    }

    /// Any method, with an explicit content type.
    pub async fn send_raw(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        content_type: &str,
        body: String,
    ) -> Reply {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let req = self.http.request(method, format!("{API_URL}{path}")).header("content-type", content_type).body(body);
        self.send(req, token).await
    }

    pub async fn post_json(&self, path: &str, token: Option<&str>, body: &Value) -> Reply {
        self.post(path, token, body.to_string()).await
    }

    /// Invoke a function directly through the Lambda invoke API of `cargo lambda watch`.
    pub async fn invoke(&self, function: &str, payload: &Value) -> (u16, Value) {
        let url = format!("{API_URL}/2015-03-31/functions/{function}/invocations");
        let resp = self.http.post(url).json(payload).send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Counter values from `GET /metrics`.
    pub async fn metrics(&self) -> (String, BTreeMap<String, f64>) {
        let reply = self.get("/metrics", None).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let values = reply
            .text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .filter_map(|l| l.rsplit_once(' ').and_then(|(k, v)| Some((k.to_owned(), v.parse().ok()?))))
            .collect();
        (reply.text, values)
    }

    pub fn table(&self, logical_id: &str) -> String {
        self.local.name(logical_id).unwrap().to_owned()
    }

    pub fn stream_name(&self) -> String {
        self.local.name("TelemetryStream").unwrap().to_owned()
    }

    pub async fn scan(&self, table: &str) -> Vec<Item> {
        let mut items = Vec::new();
        let mut pages = self.db.scan().table_name(table).consistent_read(true).into_paginator().send();
        while let Some(page) = pages.next().await {
            items.extend(page.unwrap().items().iter().cloned());
        }
        items
    }

    /// Every table the local stack has.
    pub fn tables(&self) -> Vec<String> {
        self.template
            .of_kind("AWS::DynamoDB::Table")
            .filter_map(|t| self.local.name(&t.logical_id).ok().map(str::to_owned))
            .collect()
    }

    /// Every stream the template declares.
    pub fn streams(&self) -> Vec<String> {
        self.template.of_kind("AWS::Kinesis::Stream").map(|t| self.table(&t.logical_id)).collect()
    }

    /// Every record of the telemetry stream, with its shard, from the beginning.
    pub async fn stream_records(&self) -> Vec<(String, Record)> {
        self.records_of(&self.stream_name()).await
    }

    /// Every record of a stream, with its shard, from the beginning.
    pub async fn records_of(&self, stream: &str) -> Vec<(String, Record)> {
        let stream = stream.to_owned();
        let mut out = Vec::new();
        let shards = self.kinesis.list_shards().stream_name(&stream).send().await.unwrap();
        for shard in shards.shards() {
            let mut it = self
                .kinesis
                .get_shard_iterator()
                .stream_name(&stream)
                .shard_id(shard.shard_id())
                .shard_iterator_type(ShardIteratorType::TrimHorizon)
                .send()
                .await
                .unwrap()
                .shard_iterator()
                .map(str::to_owned);
            while let Some(current) = it {
                let page = self.kinesis.get_records().shard_iterator(current).limit(10_000).send().await.unwrap();
                if page.records().is_empty() {
                    break;
                }
                out.extend(page.records().iter().map(|r| (shard.shard_id().to_owned(), r.clone())));
                it = page.next_shard_iterator().map(str::to_owned);
            }
        }
        out
    }

    /// One tenant's stream records, with their shard and the events each carries (ingest packs
    /// a request's events of one partition key into a record, one JSON line each).
    pub async fn tenant_records(&self, tenant: &str) -> Vec<(String, Record, Vec<Value>)> {
        self.stream_records()
            .await
            .into_iter()
            .filter_map(|(shard, r)| {
                let events: Vec<Value> = r
                    .data()
                    .as_ref()
                    .split(|b| *b == b'\n')
                    .map(serde_json::from_slice)
                    .collect::<Result<_, _>>()
                    .ok()?;
                events.iter().all(|e| e["tenant"] == tenant).then_some((shard, r, events))
            })
            .collect()
    }

    /// One tenant's events on the stream, each with its shard and the record that carries it.
    pub async fn tenant_events(&self, tenant: &str) -> Vec<(String, Record, Value)> {
        self.tenant_records(tenant)
            .await
            .into_iter()
            .flat_map(|(shard, r, events)| events.into_iter().map(move |e| (shard.clone(), r.clone(), e)))
            .collect()
    }

    /// Every table's items and every stream's records. Left out, because something other than a
    /// request moves them: the limits table's requests-per-second windows (every authenticated
    /// request moves them, refused or not; its series counters are kept: a refused request must
    /// not move those), and an edge node's liveness `status`, which the every-minute sweep sets.
    pub async fn snapshot(&self) -> Snapshot {
        let mut tables = BTreeMap::new();
        let limits = self.table("LimitsTable");
        let federation = self.table("FederationTable");
        for t in self.tables() {
            let mut items: Vec<String> = self
                .scan(&t)
                .await
                .iter()
                .filter(|i| {
                    t != limits || !i.get("pk").and_then(|p| p.as_s().ok()).is_some_and(|p| p.contains("#rps#"))
                })
                .map(|i| {
                    let is_node = i.get("sk").and_then(|k| k.as_s().ok()).is_some_and(|k| k.starts_with("node#"));
                    if t == federation && is_node {
                        let mut i = i.clone();
                        i.remove("status");
                        canonical(&i)
                    } else {
                        canonical(i)
                    }
                })
                .collect();
            items.sort();
            tables.insert(t, items);
        }
        let mut stream = Vec::new();
        for name in self.streams() {
            stream.extend(
                self.records_of(&name)
                    .await
                    .into_iter()
                    .map(|(shard, r)| format!("{name}/{shard}:{}", r.sequence_number())),
            );
        }
        Snapshot { tables, stream }
    }

    /// A snapshot once the stack has stopped changing (the poller has drained the stream).
    pub async fn quiet_snapshot(&self) -> Snapshot {
        let mut last = self.snapshot().await;
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            let now = self.snapshot().await;
            if now == last || Instant::now() > deadline {
                return now;
            }
            last = now;
        }
    }

    /// The aggregate items of one tenant.
    pub async fn aggregates_of(&self, tenant: &str) -> Vec<Item> {
        let prefix = format!("{tenant}#");
        self.scan(&self.table("AggregatesTable"))
            .await
            .into_iter()
            .filter(|i| i.get("pk").and_then(|v| v.as_s().ok()).is_some_and(|pk| pk.starts_with(&prefix)))
            .collect()
    }
}

/// Poll `check` until it returns `Some`, or fail after `timeout` naming `what`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// An item as text with every map sorted, so equal items always print the same.
pub fn canonical(item: &Item) -> String {
    fn value(v: &AttributeValue) -> Value {
        match v {
            AttributeValue::S(s) => Value::String(format!("S:{s}")),
            AttributeValue::N(n) => Value::String(format!("N:{n}")),
            AttributeValue::Bool(b) => Value::Bool(*b),
            AttributeValue::Null(_) => Value::Null,
            AttributeValue::L(items) => Value::Array(items.iter().map(value).collect()),
            AttributeValue::M(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), value(v))).collect()),
            AttributeValue::Ss(set) | AttributeValue::Ns(set) => {
                let mut set = set.clone();
                set.sort();
                Value::from(set)
            }
            other => Value::String(format!("{other:?}")),
        }
    }
    // serde_json's default Map is a BTreeMap: keys come out sorted at every level.
    Value::Object(item.iter().map(|(k, v)| (k.clone(), value(v))).collect()).to_string()
}

pub fn n(item: &Item, name: &str) -> f64 {
    item.get(name).and_then(|v| v.as_n().ok()).and_then(|s| s.parse().ok()).unwrap_or(f64::NAN)
}

pub fn s<'a>(item: &'a Item, name: &str) -> &'a str {
    item.get(name).and_then(|v| v.as_s().ok()).map(String::as_str).unwrap_or_default()
}

/// Totals of a `cargo test` log, and a Markdown table row per test binary that ran tests.
pub fn test_summary(log: &str) -> (String, usize, usize) {
    test_summary_for(log, |_| true)
}

/// Like [`test_summary`], for the test binaries `keep` accepts (by "crate: target" name).
pub fn test_summary_for(log: &str, keep: impl Fn(&str) -> bool) -> (String, usize, usize) {
    let (mut rows, mut passed, mut failed) = (String::new(), 0, 0);
    let mut current = String::new();
    for line in log.lines() {
        if let Some(rest) = line.trim().strip_prefix("Running ") {
            // "unittests src/lib.rs (target/debug/deps/naksha_core-a33d…)" → "naksha_core: unittests src/lib.rs"
            let target = rest.split(" (").next().unwrap_or(rest);
            let krate = rest.rsplit("deps/").next().and_then(|d| d.rsplit_once('-')).map(|(name, _)| name);
            current = match krate {
                Some(name) => format!("{name}: {target}"),
                None => target.to_owned(),
            };
        }
        if let Some(result) = line.trim().strip_prefix("test result: ") {
            // "ok. 31 passed; 0 failed; …": the number just before the word.
            let count = |word: &str| {
                result
                    .split(';')
                    .find(|part| part.trim().ends_with(word))
                    .and_then(|part| part.split_whitespace().rev().nth(1)?.parse::<usize>().ok())
                    .unwrap_or(0)
            };
            let (p, f) = (count("passed"), count("failed"));
            if !keep(&current) {
                continue;
            }
            passed += p;
            failed += f;
            if p + f > 0 {
                rows.push_str(&format!("| `{current}` | {p} | {f} |\n"));
            }
        }
    }
    (rows, passed, failed)
}

#[cfg(test)]
mod tests {
    use super::test_summary;

    #[test]
    fn sums_passed_and_failed_per_binary() {
        let log = "     Running unittests src/lib.rs (target/debug/deps/a-1)\n\
                   test result: ok. 31 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.15s\n\
                   \x20    Running tests/x.rs (target/debug/deps/x-2)\n\
                   test result: FAILED. 2 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 1s\n\
                   test result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s\n";
        let (rows, passed, failed) = test_summary(log);
        assert_eq!((passed, failed), (33, 1));
        assert_eq!(rows, "| `a: unittests src/lib.rs` | 31 | 0 |\n| `x: tests/x.rs` | 2 | 1 |\n");
    }
}

/// A tenant's actors for the agent tests: an operator, an approver and an admin.
#[derive(Debug, Clone)]
pub struct Team {
    pub tenant: String,
    pub operator: String,
    pub approver: String,
    pub admin: String,
}

impl Stack {
    pub fn team(&self, prefix: &str) -> Team {
        let tenant = unique_tenant(prefix);
        Team {
            operator: self.key.token(&tenant, "olivia", &["operator"], 600).unwrap(),
            approver: self.key.token(&tenant, "bob", &["approver"], 600).unwrap(),
            admin: self.key.token(&tenant, "ada", &["admin"], 600).unwrap(),
            tenant,
        }
    }

    /// Create a simulated deployment.
    pub async fn sim_deployment(&self, team: &Team, resource: &str, healthy: bool) {
        let body = serde_json::json!({"kind": "deployment", "replicas": 3, "healthy": healthy, "version": "v2"});
        let r = self
            .send(self.http.put(format!("{API_URL}/sim/resources/{resource}")).json(&body), Some(&team.admin))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
    }

    pub async fn sim_state(&self, team: &Team, resource: &str) -> Value {
        let r = self.get(&format!("/sim/resources/{resource}"), Some(&team.admin)).await;
        assert_eq!(r.status, 200, "{}", r.text);
        r.json()["state"].clone()
    }

    /// Register a WPK; returns the answer.
    pub async fn register(&self, team: &Team, doc: &Value) -> Reply {
        self.post_json("/wpk", Some(&team.admin), doc).await
    }

    pub async fn start_run(&self, team: &Team, signal: &str, resource: &str) -> String {
        let r = self
            .post_json("/agent/run", Some(&team.operator), &serde_json::json!({"signal": signal, "resource": resource}))
            .await;
        assert_eq!(r.status, 202, "{}", r.text);
        r.json()["run_id"].as_str().unwrap().to_owned()
    }

    /// Poll the run until its status is one of `statuses`.
    pub async fn run_until(&self, team: &Team, run_id: &str, statuses: &[&str]) -> Value {
        eventually(&format!("run {run_id} to reach {statuses:?}"), Duration::from_secs(90), || async {
            let r = self.get(&format!("/agent/status/{run_id}"), Some(&team.operator)).await;
            let doc = r.json();
            statuses.contains(&doc["status"].as_str().unwrap_or_default()).then_some(doc)
        })
        .await
    }

    pub async fn approve(&self, team: &Team, run_id: &str, plan_sha256: &str) -> Reply {
        let body = serde_json::json!({"justification": "INC-4711: restart per runbook", "plan_sha256": plan_sha256});
        self.post_json(&format!("/agent/runs/{run_id}/approve"), Some(&team.approver), &body).await
    }
}

/// A local HTTP server that records each request and answers from a script: a stand-in for
/// APIs that cannot run here (the Kubernetes API server).
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: BTreeMap<String, String>,
    pub body: String,
}

pub type Script = fn(&Recorded) -> (u16, Value);

pub async fn recording_server(script: Script) -> (String, std::sync::Arc<std::sync::Mutex<Vec<Recorded>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen: std::sync::Arc<std::sync::Mutex<Vec<Recorded>>> = std::sync::Arc::default();
    let log = std::sync::Arc::clone(&seen);
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else { return };
            let log = std::sync::Arc::clone(&log);
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 65536];
                let (head, body) = loop {
                    let n = socket.read(&mut chunk).await.unwrap_or(0);
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                        let len: usize = head
                            .lines()
                            .find_map(|l| {
                                l.to_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        if buf.len() >= end + 4 + len || n == 0 {
                            let body =
                                String::from_utf8_lossy(&buf[end + 4..(end + 4 + len).min(buf.len())]).into_owned();
                            break (head, body);
                        }
                    }
                    if n == 0 {
                        return;
                    }
                };
                let mut lines = head.lines();
                let request_line = lines.next().unwrap_or_default();
                let mut parts = request_line.split_whitespace();
                let method = parts.next().unwrap_or_default().to_owned();
                let target = parts.next().unwrap_or_default();
                let (path, query) = target.split_once('?').unwrap_or((target, ""));
                let headers = lines
                    .filter_map(|l| l.split_once(':').map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_owned())))
                    .collect();
                let rec = Recorded { method, path: path.to_owned(), query: query.to_owned(), headers, body };
                let (status, answer) = script(&rec);
                log.lock().unwrap().push(rec);
                let text = answer.to_string();
                let resp = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
                    text.len()
                );
                let _ = socket.write_all(resp.as_bytes()).await;
            });
        }
    });
    (url, seen)
}

/// A daily cycle around `level` with deterministic noise in ±`noise`, as real latency has
/// (`minute` since any origin).
pub fn daily(minute: i64, level: f64, amplitude: f64, noise: f64) -> f64 {
    let day = (minute as f64 / 1440.0) * std::f64::consts::TAU;
    let x = (minute as u64).wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let unit = ((x >> 33) as f64 / (1u64 << 31) as f64) * 2.0 - 1.0;
    level + amplitude * day.sin() + noise * unit
}

impl Stack {
    /// Ingest one series: `value(m)` at `start_ms + m minutes` for each `m`, 500 events per request.
    pub async fn ingest_series(
        &self,
        token: &str,
        (source, name): (&str, &str),
        start_ms: i64,
        minutes: impl IntoIterator<Item = i64>,
        value: impl Fn(i64) -> f64,
    ) {
        let all: Vec<i64> = minutes.into_iter().collect();
        for chunk in all.chunks(500) {
            let events: Vec<Value> = chunk
                .iter()
                .map(|m| serde_json::json!({"source": source, "name": name, "value": value(*m), "ts": start_ms + m * 60_000}))
                .collect();
            let r = self.post_json("/ingest", Some(token), &serde_json::json!({ "events": events })).await;
            assert_eq!(r.status, 202, "{}", r.text);
        }
    }

    /// `openssl dgst -sha256 -verify` of a DER `signature` over `message`, with the public key
    /// of the KMS key `key_id` as a PEM file: openssl's own verdict and output.
    pub async fn openssl_verify(&self, key_id: &str, signature: &[u8], message: &[u8]) -> (bool, String) {
        let key = self.kms.get_public_key().key_id(key_id).send().await.unwrap();
        let dir = std::env::temp_dir().join(format!("naksha-openssl-{}", unique_tenant("v")));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("pub.pem"), naksha_core::signing::public_key_pem(key.public_key().unwrap().as_ref()))
            .unwrap();
        std::fs::write(dir.join("sig.der"), signature).unwrap();
        std::fs::write(dir.join("message"), message).unwrap();
        let out = std::process::Command::new("openssl")
            .args(["dgst", "-sha256", "-verify", "pub.pem", "-signature", "sig.der", "message"])
            .current_dir(&dir)
            .output()
            .unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        (out.status.success(), text.trim().to_owned())
    }
}
