//! D.3's closed loop over HTTP against the running stack: telemetry alone starts remediation.
//! A series reported every five minutes is ingested for three days (the detector learns for
//! two), then it jumps; the
//! consumer's detector raises one signal, `GET /signals` shows it, and the agent run it started
//! reaches the approval gate with the WPK that handles `anomaly.<name>`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use naksha_e2e::{Stack, eventually};
use serde_json::json;

const RES: &str = "deployment/checkout";

/// Minutes between two reports of the series.
const STEP: i64 = 5;

fn latency(minute: i64) -> f64 {
    naksha_e2e::daily(minute, 120.0, 20.0, 3.0)
}

/// Ingest `value(m)` every `STEP` minutes in `minutes`.
async fn ingest(stack: &Stack, token: &str, start_ms: i64, minutes: std::ops::Range<i64>, value: impl Fn(i64) -> f64) {
    stack.ingest_series(token, (RES, "latency_ms"), start_ms, minutes.step_by(STEP as usize), value).await;
}

#[tokio::test]
async fn an_anomalous_series_raises_one_signal_that_starts_an_agent_run() {
    let stack = Stack::connect().await;
    let team = stack.team("loop");
    stack.sim_deployment(&team, RES, true).await;
    let wpk = json!({
        "id": "shed-latency", "version": 1, "title": "Restart a deployment whose latency jumped",
        "match": {"signals": ["anomaly.latency_ms"], "resources": ["deployment/*"]},
        "safety": {"mode": "manual", "dry_run": true},
        "steps": [{"adapter": "sim", "action": "restart"}],
        "verify": {"healthy": true},
        "limits": {"blast_radius": 1, "max_runs_per_hour": 10}
    });
    let r = stack.register(&team, &wpk).await;
    assert_eq!(r.status, 201, "{}", r.text);

    // Three calm days ending an hour ago, then half an hour at three times the usual level.
    let now_min = chrono::Utc::now().timestamp() / 60;
    let calm = 3 * 1440;
    let start_ms = (now_min - calm - 60) * 60_000;
    ingest(&stack, &team.operator, start_ms, 0..calm, latency).await;
    let aggregates = eventually("three days of aggregates", Duration::from_secs(240), || async {
        let n = stack.aggregates_of(&team.tenant).await.len();
        (n as i64 >= calm / STEP).then_some(n)
    })
    .await;
    assert_eq!(aggregates as i64, calm / STEP);
    let quiet = stack.get("/signals", Some(&team.operator)).await;
    assert_eq!(quiet.status, 200, "{}", quiet.text);
    assert_eq!(quiet.json()["count"], 0, "calm days raise nothing: {}", quiet.text);

    // The spike comes in one request with a W3C trace context (P-4): the run must carry it.
    let trace_id = format!("{:032x}", u128::from(uuid::Uuid::now_v7().as_u64_pair().1) << 16 | 0xbeef);
    let events: Vec<serde_json::Value> = (calm..calm + 30)
        .step_by(STEP as usize)
        .map(|m| json!({"source": RES, "name": "latency_ms", "value": 3.0 * latency(m), "ts": start_ms + m * 60_000}))
        .collect();
    let spike = stack
        .send(
            stack
                .http
                .post(format!("{}/ingest", naksha_e2e::API_URL))
                .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
                .json(&json!({"events": events})),
            Some(&team.operator),
        )
        .await;
    assert_eq!(spike.status, 202, "{}", spike.text);
    let answered = spike.headers.get("traceparent").and_then(|v| v.to_str().ok()).unwrap_or_default();
    assert!(answered.starts_with(&format!("00-{trace_id}-")), "the answer names the same trace: {answered:?}");
    let signals = eventually("a signal", Duration::from_secs(120), || async {
        let doc = stack.get("/signals", Some(&team.operator)).await.json();
        (doc["count"].as_u64() > Some(0)).then_some(doc)
    })
    .await;
    assert_eq!(signals["count"], 1, "one incident, one signal: {signals}");
    let signal = &signals["signals"][0];
    assert_eq!(signal["signal"], "anomaly.latency_ms");
    assert_eq!(signal["series"]["source"], RES);
    assert_eq!(signal["series"]["name"], "latency_ms");
    assert!(signal["score"].as_f64().unwrap() >= 0.5, "{signal}");
    let opened = chrono::DateTime::parse_from_rfc3339(signal["opened_at"].as_str().unwrap()).unwrap();
    let jump = chrono::DateTime::from_timestamp_millis(start_ms + calm * 60_000).unwrap();
    assert!(
        opened >= jump && opened <= jump + chrono::Duration::minutes(2 * STEP),
        "raised at the jump: {opened} vs {jump}"
    );

    // The run the signal started went through observe and decide to the approval gate.
    let run_id = signal["run_id"].as_str().unwrap();
    let run = stack.run_until(&team, run_id, &["awaiting_approval", "failed", "rejected"]).await;
    assert_eq!(run["status"], "awaiting_approval", "{run}");
    assert_eq!(run["signal"], "anomaly.latency_ms");
    assert_eq!(run["resource"], RES);
    assert_eq!(run["requested_by"], "detector");
    assert_eq!(run["wpk"]["id"], "shed-latency");
    let evidence = &run["telemetry"]["signal"];
    assert_eq!(evidence["series"]["id"], signal["series"]["id"]);
    assert_eq!(evidence["score"], signal["score"]);
    assert!(evidence["window"]["from"].as_i64() < evidence["window"]["to"].as_i64(), "{evidence}");
    assert_eq!(evidence["model_id"], signal["model_id"]);
    assert_eq!(
        run["trace"]["trace_id"],
        trace_id.as_str(),
        "one trace id from the ingest request to the run: {}",
        run["trace"]
    );
    let listed = stack.get("/agent/runs", Some(&team.operator)).await.json();
    assert_eq!(listed["runs"][0]["trace_id"], trace_id.as_str(), "{listed}");

    // Another tenant sees none of it.
    let other = stack.team("loop-other");
    let theirs = stack.get("/signals", Some(&other.operator)).await;
    assert_eq!((theirs.status, theirs.json()["count"].clone()), (200, json!(0)));
    let r = stack.get(&format!("/agent/status/{run_id}"), Some(&other.operator)).await;
    assert_eq!(r.status, 404);

    // More anomalous minutes keep the same signal open: no second run.
    ingest(&stack, &team.operator, start_ms, calm + 30..calm + 50, |m| 3.0 * latency(m)).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let again = stack.get("/signals", Some(&team.operator)).await.json();
    assert_eq!((again["count"].clone(), again["signals"][0]["run_id"].clone()), (json!(1), json!(run_id)));
}

#[tokio::test]
async fn signals_needs_a_token_and_a_sane_limit() {
    let stack = Stack::connect().await;
    let team = stack.team("signals-bad");
    let r = stack.get("/signals", None).await;
    r.assert_problem(401);
    let r = stack.get("/signals", Some(&stack.token(&team.tenant, &["edge"]))).await;
    r.assert_problem(403);
    let r = stack.get("/signals", Some(&team.approver)).await;
    assert_eq!(r.status, 200, "approvers read signals too: {}", r.text);
    for bad in ["0", "501", "ten", "-1"] {
        let r = stack.get(&format!("/signals?limit={bad}"), Some(&team.operator)).await;
        let doc = r.assert_problem(400);
        assert_eq!(doc["errors"][0]["pointer"], "/limit", "{doc}");
    }
    let r = stack.get("/signals?limit=5", Some(&team.operator)).await;
    assert_eq!(r.status, 200, "{}", r.text);
}
