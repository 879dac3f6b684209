//! D.1 insight-stream over HTTP against the running stack. Each test uses its own tenant, so
//! the tests run in parallel without seeing each other's data.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use naksha_e2e::{Stack, eventually, n, s, unique_tenant};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(90);

/// A minute boundary well inside the accepted time range: a few minutes ago, rounded down.
fn recent_minute_ms() -> i64 {
    let now = chrono::Utc::now().timestamp_millis();
    (now / 60_000 - 5) * 60_000
}

#[tokio::test]
async fn health_names_the_backend_and_every_dependency_to_a_caller_with_a_token() {
    let stack = Stack::connect().await;
    // Anonymous: up or down and the backend, nothing that names a resource.
    let anonymous = stack.get("/health", None).await;
    assert_eq!(anonymous.status, 200);
    let doc = anonymous.json();
    assert_eq!(doc.as_object().unwrap().keys().collect::<Vec<_>>(), ["backend", "status"], "{doc}");
    // A token that does not verify is refused, not treated as anonymous.
    assert_eq!(stack.get("/health", Some("not-a-token")).await.status, 401);
    let reply = stack.get("/health", Some(&stack.token(&unique_tenant("health"), &["operator"]))).await;
    assert_eq!(reply.status, 200);
    let doc = reply.json();
    assert_eq!(doc["status"], "ok");
    assert!(["moto", "localstack"].contains(&doc["backend"].as_str().unwrap()), "{doc}");
    let services = doc["services"].as_object().unwrap();
    for expected in [
        format!("stream:{}", stack.stream_name()),
        format!("table:{}", stack.table("AggregatesTable")),
        format!("table:{}", stack.table("CountersTable")),
        format!("table:{}", stack.table("DeadLetterTable")),
        format!("key:{}", stack.local.name("PiiKey").unwrap()),
    ] {
        assert_eq!(services.get(&expected), Some(&json!("ok")), "{expected} missing in {doc}");
    }
}

#[tokio::test]
async fn seed_verification_ingest_m1_raises_the_fleet_wide_counter() {
    let stack = Stack::connect().await;
    let tenant = unique_tenant("seed");
    let (_, before) = stack.metrics().await;
    let reply = stack.post("/ingest", Some(&stack.token(&tenant, &["operator"])), r#"{"m":1}"#).await;
    assert_eq!(reply.status, 202, "{}", reply.text);
    let doc = reply.json();
    assert_eq!(doc["accepted"], 1);
    assert_eq!(doc["event_ids"].as_array().unwrap().len(), 1);
    let (text, after) = stack.metrics().await;
    assert!(
        after["insight_ingested_total"] >= before["insight_ingested_total"] + 1.0,
        "before {before:?} after {after:?}"
    );
    // promtool from Debian's prometheus package must accept the exposition.
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is installed by `make tools`");
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn ingested_samples_become_per_minute_aggregates() {
    let stack = Stack::connect().await;
    let tenant = unique_tenant("agg");
    let t0 = recent_minute_ms();
    let values = [3.0, 1.0, 4.0, 1.0, 5.0];
    let mut events: Vec<Value> = values
        .iter()
        .enumerate()
        .map(|(i, v)| json!({"source": "api-1", "name": "latency_ms", "value": v, "ts": t0 + i as i64 * 1000, "labels": {"route": "/pay"}}))
        .collect();
    // The next minute holds one more sample of the same series.
    events.push(
        json!({"source": "api-1", "name": "latency_ms", "value": 9.0, "ts": t0 + 61_000, "labels": {"route": "/pay"}}),
    );
    let reply =
        stack.post_json("/ingest", Some(&stack.token(&tenant, &["operator"])), &json!({ "events": events })).await;
    assert_eq!(reply.status, 202, "{}", reply.text);
    let items = eventually("two minute aggregates", WAIT, || async {
        let items = stack.aggregates_of(&tenant).await;
        let total: f64 = items.iter().map(|i| n(i, "count")).sum();
        (items.len() == 2 && total == 6.0).then_some(items)
    })
    .await;
    let mut by_minute: BTreeMap<i64, _> = items.iter().map(|i| (n(i, "minute") as i64, i)).collect();
    let (minute, first) = by_minute.pop_first().unwrap();
    assert_eq!(minute, t0 / 1000);
    assert_eq!((n(first, "count"), n(first, "sum"), n(first, "min"), n(first, "max")), (5.0, 14.0, 1.0, 5.0));
    assert_eq!(n(first, "sumsq"), values.iter().map(|v| v * v).sum::<f64>());
    assert_eq!((s(first, "source"), s(first, "name"), s(first, "tenant")), ("api-1", "latency_ms", tenant.as_str()));
    let (_, second) = by_minute.pop_first().unwrap();
    assert_eq!((n(second, "count"), n(second, "sum")), (1.0, 9.0));
}

#[tokio::test]
async fn a_batch_of_500_is_accepted_whole_and_sources_spread_over_shards() {
    let stack = Stack::connect().await;
    let tenant = unique_tenant("bulk");
    let events: Vec<Value> =
        (0..500).map(|i| json!({"source": format!("host-{}", i % 16), "cpu": i as f64 / 10.0})).collect();
    let reply =
        stack.post_json("/ingest", Some(&stack.token(&tenant, &["operator"])), &json!({ "events": events })).await;
    assert_eq!(reply.status, 202, "{}", reply.text);
    let ids: BTreeSet<_> =
        reply.json()["event_ids"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect();
    assert_eq!(ids.len(), 500);
    let events = stack.tenant_events(&tenant).await;
    assert_eq!(events.len(), 500);
    // Each source's 31 or 32 small events are packed into one record (one PUT payload unit).
    assert_eq!(stack.tenant_records(&tenant).await.len(), 16);
    let mut shards_of_source: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (shard, record, doc) in &events {
        assert!(ids.contains(doc["id"].as_str().unwrap()));
        assert_eq!(record.partition_key().unwrap(), format!("{tenant}/{}", doc["source"].as_str().unwrap()));
        shards_of_source.entry(doc["source"].as_str().unwrap().to_owned()).or_default().insert(shard.clone());
    }
    assert!(shards_of_source.values().all(|s| s.len() == 1), "a source must stay on one shard: {shards_of_source:?}");
    let shards: BTreeSet<_> = shards_of_source.values().flatten().collect();
    assert!(shards.len() >= 2, "16 sources of one tenant should use more than one shard: {shards:?}");
}

/// A client that lost the answer to a 500-event request resends it with its `Idempotency-Key`:
/// the same 202 (the same event ids) comes back, nothing reaches the stream twice, and the kept
/// answer is stored deflated (500 ids of one request share all but three hex digits).
#[tokio::test]
async fn a_keyed_batch_sent_again_gets_its_first_answer_and_is_kept_small() {
    let stack = Stack::connect().await;
    let tenant = unique_tenant("keyed-bulk");
    let token = stack.token(&tenant, &["operator"]);
    let events: Vec<Value> = (0..500)
        .map(|i| json!({"source": format!("host-{}", i % 4), "cpu": i as f64, "client_ip": "10.9.8.7"}))
        .collect();
    let body = json!({ "events": events }).to_string();
    let send = || {
        let req = stack
            .http
            .post(format!("{}/ingest", naksha_e2e::API_URL))
            .header("content-type", "application/json")
            .header("idempotency-key", "bulk-1")
            .body(body.clone());
        stack.send(req, Some(&token))
    };
    let first = send().await;
    assert_eq!(first.status, 202, "{}", first.text);
    let again = send().await;
    assert_eq!((again.status, again.json()), (202, first.json()), "the retry is the first answer");
    assert_eq!(again.headers["idempotent-replayed"], "true");
    assert_eq!(stack.tenant_events(&tenant).await.len(), 500, "put once");
    // The kept answer in the table: deflated, and it inflates to exactly what was answered.
    let kept: Vec<_> = stack
        .scan(&stack.table("LimitsTable"))
        .await
        .into_iter()
        .filter(|i| s(i, "pk").starts_with("idem#") && i.get("enc").is_some())
        .filter_map(|i| {
            let stored = i.get("body")?.as_b().ok()?.as_ref().to_vec();
            let raw = miniz_oxide::inflate::decompress_to_vec(&stored).ok()?;
            (raw == first.text.as_bytes()).then(|| (s(&i, "enc").to_owned(), stored.len()))
        })
        .collect();
    assert_eq!(kept.len(), 1, "one kept answer for the key");
    assert_eq!(kept[0].0, "deflate");
    assert!(kept[0].1 * 4 < first.text.len(), "kept in {} bytes for a {}-byte answer", kept[0].1, first.text.len());
}

#[tokio::test]
async fn one_tenant_never_reads_or_writes_anothers_aggregates() {
    let stack = Stack::connect().await;
    let (a, b) = (unique_tenant("ta"), unique_tenant("tb"));
    let same_series = |v: f64| json!({"source": "shared-host", "name": "load", "value": v});
    for v in [1.0, 2.0, 3.0] {
        assert_eq!(
            stack.post_json("/ingest", Some(&stack.token(&a, &["operator"])), &same_series(v)).await.status,
            202
        );
    }
    assert_eq!(
        stack.post_json("/ingest", Some(&stack.token(&b, &["operator"])), &same_series(100.0)).await.status,
        202
    );
    // A body that names another tenant is refused: the tenant comes from the token only.
    let reply = stack
        .post_json("/ingest", Some(&stack.token(&a, &["operator"])), &json!({"tenant": b, "name": "load", "value": 7}))
        .await;
    let doc = reply.assert_problem(400);
    assert_eq!(doc["errors"][0]["pointer"], "/tenant");
    let (count_a, count_b) = eventually("both tenants' aggregates", WAIT, || async {
        let count = |items: Vec<naksha_e2e::Item>| items.iter().map(|i| n(i, "count")).sum::<f64>();
        let (ca, cb) = (count(stack.aggregates_of(&a).await), count(stack.aggregates_of(&b).await));
        (ca == 3.0 && cb == 1.0).then_some((ca, cb))
    })
    .await;
    assert_eq!((count_a, count_b), (3.0, 1.0));
    for item in stack.aggregates_of(&b).await {
        assert_eq!(n(&item, "sum"), 100.0, "tenant b's series must hold only its own sample");
    }
}

#[tokio::test]
async fn a_token_without_the_operator_role_is_refused_with_403() {
    let stack = Stack::connect().await;
    let tenant = unique_tenant("role");
    let reply = stack.post("/ingest", Some(&stack.token(&tenant, &["approver"])), r#"{"m":1}"#).await;
    reply.assert_problem(403);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(stack.tenant_records(&tenant).await.is_empty());
    assert!(stack.aggregates_of(&tenant).await.is_empty());
}

#[tokio::test]
async fn every_request_logs_one_json_line_with_its_request_id() {
    let stack = Stack::connect().await;
    let tenant = unique_tenant("log");
    // With a W3C traceparent: the answer and the log line name its trace (P-4).
    let trace_id = format!("{:032x}", u128::from(std::process::id()) << 64 | 0x1d1);
    let req = stack
        .http
        .post(format!("{}/ingest", naksha_e2e::API_URL))
        .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
        .body(r#"{"m":1}"#);
    let reply = stack.send(req, Some(&stack.token(&tenant, &["operator"]))).await;
    assert_eq!(reply.status, 202);
    let answered = reply.headers.get("traceparent").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    assert!(
        answered.starts_with(&format!("00-{trace_id}-")) && !answered.contains("00f067aa0ba902b7"),
        "a child span of the same trace: {answered}"
    );
    let log = stack.paths.local().join("logs/watch.log");
    let line = eventually("the request log line", Duration::from_secs(10), || async {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        text.lines()
            .rev()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|v| v["fields"]["message"] == "request" && v["span"]["trace_id"] == trace_id.as_str())
    })
    .await;
    let request_id = line["spans"].as_array().and_then(|s| s.iter().find_map(|sp| sp["requestId"].as_str()));
    assert!(request_id.is_some_and(|id| id.len() >= 32), "{line}");
    assert_eq!(line["fields"]["route"], "/ingest");
    assert_eq!(line["fields"]["status"], 202);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains(&stack.token(&tenant, &["operator"])[..40]), "tokens must never be logged");
}

/// An operator's override for one tenant, as docs/runbooks/limits.md does it.
async fn limit_tenant(stack: &Stack, tenant: &str, limits: &[(&str, u64)]) {
    use aws_sdk_dynamodb::types::AttributeValue;
    let mut put = stack
        .db
        .put_item()
        .table_name(stack.table("LimitsTable"))
        .item("pk", AttributeValue::S(format!("{tenant}#limits")));
    for (name, value) in limits {
        put = put.item(*name, AttributeValue::N(value.to_string()));
    }
    put.send().await.unwrap();
}

#[tokio::test]
async fn a_tenant_over_its_series_limits_gets_429_and_nothing_is_written() {
    let stack = Stack::connect().await;
    let tenant = unique_tenant("series-limit");
    limit_tenant(&stack, &tenant, &[("new_series_per_minute", 5), ("max_series", 5)]).await;
    let token = stack.token(&tenant, &["operator"]);
    let event = |names: std::ops::Range<usize>| {
        let mut e = serde_json::Map::new();
        e.insert("source".into(), json!("web"));
        for i in names {
            e.insert(format!("m{i}"), json!(1));
        }
        json!({ "events": [Value::Object(e)] })
    };
    // Six new series at once: over both limits, refused whole.
    let refused = stack.post_json("/ingest", Some(&token), &event(0..6)).await;
    let doc = refused.assert_problem(429);
    assert!(refused.headers.contains_key("retry-after"), "{doc}");
    assert!(stack.tenant_records(&tenant).await.is_empty(), "nothing of a refused request reaches the stream");
    // Five fit; the same five again are not new; a sixth is over the total.
    assert_eq!(stack.post_json("/ingest", Some(&token), &event(0..5)).await.status, 202);
    assert_eq!(stack.post_json("/ingest", Some(&token), &event(0..5)).await.status, 202);
    let over = stack.post_json("/ingest", Some(&token), &event(5..6)).await.assert_problem(429);
    assert!(over["detail"].as_str().unwrap().contains("5 series"), "{over}");
    assert_eq!(stack.tenant_records(&tenant).await.len(), 2);
    // Another tenant is not affected.
    let other = stack.token(&unique_tenant("series-free"), &["operator"]);
    assert_eq!(stack.post_json("/ingest", Some(&other), &event(0..6)).await.status, 202);
}

#[tokio::test]
async fn a_tenant_over_its_requests_per_second_gets_429_with_retry_after() {
    let stack = Stack::connect().await;
    let tenant = unique_tenant("rps-limit");
    limit_tenant(&stack, &tenant, &[("requests_per_second", 2)]).await;
    let token = stack.token(&tenant, &["operator"]);
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..12 {
        let r = stack.get("/signals", Some(&token)).await;
        if r.status == 429 {
            retry_after = r.headers.get("retry-after").map(|v| v.to_str().unwrap().to_owned());
            assert_eq!(r.headers["content-type"], "application/problem+json");
        }
        statuses.push(r.status);
    }
    assert!(statuses.contains(&429), "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == 200 || *s == 429), "{statuses:?}");
    assert_eq!(retry_after.as_deref(), Some("1"));
    // Other tenants keep their own budget.
    let other = stack.token(&unique_tenant("rps-free"), &["operator"]);
    assert_eq!(stack.get("/signals", Some(&other)).await.status, 200);
}
