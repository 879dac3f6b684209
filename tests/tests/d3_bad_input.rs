//! The trainer's and the registry's routes refuse bad input clearly and write nothing:
//! malformed, oversized, unauthenticated, wrong-role and cross-tenant requests, each compared
//! against a snapshot of every table and every stream. One test function, so nothing else here
//! writes meanwhile.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use naksha_e2e::{Stack, eventually};
use serde_json::{Value, json};

/// what, method, path, token, body, expected status.
type Case<'a> = (&'a str, &'a str, String, Option<&'a str>, &'a str, u16);

#[tokio::test]
async fn every_bad_trainer_request_is_refused_clearly_and_writes_nothing() {
    let stack = Stack::connect().await;
    let team = stack.team("bad3");
    let other = stack.team("bad3-other");
    // A finished job and a registered model in `team`, to aim cross-tenant reads at.
    let events: Vec<Value> = (0..30)
        .map(|i| json!({"source": "deployment/api", "name": "rps", "value": 10 + i % 3, "ts": (chrono::Utc::now().timestamp() / 60 - 40 + i) * 60_000}))
        .collect();
    assert_eq!(stack.post_json("/ingest", Some(&team.operator), &json!({ "events": events })).await.status, 202);
    eventually("aggregates", Duration::from_secs(120), || async {
        (stack.aggregates_of(&team.tenant).await.len() == 30).then_some(())
    })
    .await;
    let job = stack.post_json("/models/train", Some(&team.admin), &json!({})).await.json();
    let job_id = job["job_id"].as_str().unwrap().to_owned();
    let done = eventually("the job", Duration::from_secs(120), || async {
        let j = stack.get(&format!("/jobs/{job_id}"), Some(&team.admin)).await.json();
        (j["status"] == "succeeded").then_some(j)
    })
    .await;
    let model = done["result"]["model_id"].as_str().unwrap().to_owned();
    let huge = format!("{{\"window_hours\":1,\"x\":\"{}\"}}", "y".repeat(1 << 20));

    let ad = Some(team.admin.as_str());
    let op = Some(team.operator.as_str());
    let other_admin = Some(other.admin.as_str());
    let cases: Vec<Case<'_>> = vec![
        ("train: malformed JSON", "POST", "/models/train".into(), ad, "{\"window_hours\":", 400),
        ("train: a JSON array", "POST", "/models/train".into(), ad, "[]", 400),
        ("train: unknown field", "POST", "/models/train".into(), ad, r#"{"window_hours": 5, "tenant": "x"}"#, 400),
        ("train: window zero", "POST", "/models/train".into(), ad, r#"{"window_hours": 0}"#, 400),
        ("train: window too long", "POST", "/models/train".into(), ad, r#"{"window_hours": 721}"#, 400),
        ("train: window not a number", "POST", "/models/train".into(), ad, r#"{"window_hours": "24"}"#, 400),
        ("train: over 1 MiB", "POST", "/models/train".into(), ad, &huge, 413),
        ("train: no token", "POST", "/models/train".into(), None, "{}", 401),
        ("train: garbage token", "POST", "/models/train".into(), Some("x.y.z"), "{}", 401),
        ("train: operator lacks admin", "POST", "/models/train".into(), op, "{}", 403),
        ("job: another tenant", "GET", format!("/jobs/{job_id}"), other_admin, "", 404),
        ("job: malformed id", "GET", "/jobs/a%20b".into(), ad, "", 404),
        ("job: unknown id", "GET", "/jobs/job-nope".into(), ad, "", 404),
        ("job: no token", "GET", format!("/jobs/{job_id}"), None, "", 401),
        ("models: no token", "GET", "/models".into(), None, "", 401),
        ("model: another tenant", "GET", format!("/models/{model}"), other_admin, "", 404),
        ("model: malformed id", "GET", "/models/m-xyz".into(), ad, "", 404),
        ("model: no token", "GET", format!("/models/{model}"), None, "", 401),
    ];

    let baseline = stack.quiet_snapshot().await;
    for (what, method, path, token, body, status) in cases {
        let url = format!("http://127.0.0.1:9000{path}");
        let mut req = match method {
            "GET" => stack.http.get(url),
            _ => stack.http.post(url).header("content-type", "application/json").body(body.to_owned()),
        };
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let resp = req.send().await.unwrap();
        let got = resp.status().as_u16();
        let content_type =
            resp.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
        let doc: Value = resp.json().await.unwrap_or_default();
        assert_eq!(got, status, "{what}: {doc}");
        assert_eq!(content_type, "application/problem+json", "{what}");
        assert!(doc["title"].is_string() && doc["detail"].is_string(), "{what}: {doc}");
        if what == "train: unknown field" {
            assert_eq!(doc["errors"][0]["pointer"], "/tenant", "{doc}");
        }
        if what == "train: window too long" {
            assert_eq!(doc["errors"][0]["pointer"], "/window_hours", "{doc}");
        }
        let now = stack.snapshot().await;
        assert!(now == baseline, "{what} changed stored state:\n{}", baseline.diff(&now));
    }
    // A body that is not UTF-8 is a 400 like any other body that is not JSON.
    let resp = stack
        .http
        .post("http://127.0.0.1:9000/models/train")
        // As octet-stream: API Gateway hands such a body over base64-encoded (the local emulator
        // cannot forward one under a text content type).
        .header("content-type", "application/octet-stream")
        .header("authorization", format!("Bearer {}", team.admin))
        .body(b"{\"window_hours\": \"\xff\xfe\"}".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let now = stack.snapshot().await;
    assert!(now == baseline, "a non-UTF-8 body changed stored state:\n{}", baseline.diff(&now));
    // The other tenant's listing is empty: nothing of `team` leaks.
    let theirs = stack.get("/models", Some(&other.operator)).await.json();
    assert_eq!(theirs["count"], 0, "{theirs}");
}
