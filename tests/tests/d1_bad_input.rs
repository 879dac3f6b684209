//! The bad-input matrix of POST /ingest: each bad request gets a clear problem+json answer and
//! writes nothing anywhere — every table and the whole stream are compared before and after.
//! One test function, so nothing else in this binary writes while it compares snapshots.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::Engine as _;
use naksha_e2e::{Stack, unique_tenant};
use naksha_local::devauth::DevKey;
use naksha_local::stack::LOCAL_ISSUER;
use serde_json::{Value, json};

fn b64(v: &Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

#[tokio::test]
async fn every_bad_request_is_refused_clearly_and_writes_nothing() {
    let stack = Stack::connect().await;
    let tenant = unique_tenant("bad");
    let good = stack.token(&tenant, &["operator"]);
    let claims = DevKey::claims(&tenant, "mallory", &["operator"], 600);

    let expired = {
        let mut c = claims.clone();
        c["exp"] = json!(chrono::Utc::now().timestamp() - 3600);
        c["iat"] = json!(chrono::Utc::now().timestamp() - 7200);
        c["nbf"] = json!(chrono::Utc::now().timestamp() - 7200);
        stack.key.sign(&c).unwrap()
    };
    let wrong_issuer = {
        let mut c = claims.clone();
        c["iss"] = json!("https://evil.example/");
        stack.key.sign(&c).unwrap()
    };
    let wrong_audience = {
        let mut c = claims.clone();
        c["aud"] = json!("another-api");
        stack.key.sign(&c).unwrap()
    };
    let no_tenant = {
        let mut c = claims.clone();
        c.as_object_mut().unwrap().remove("tenant");
        stack.key.sign(&c).unwrap()
    };
    let other_key = DevKey::ephemeral().unwrap().sign(&claims).unwrap();
    let alg_none = format!("{}.{}.", b64(&json!({"alg": "none", "typ": "JWT"})), b64(&claims));
    let forged_kid = {
        // A token naming the trusted key id but signed by a different key.
        let forged: Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(other_key.split('.').next().unwrap()).unwrap(),
        )
        .unwrap();
        let mut header = forged;
        header["kid"] = json!(stack.key.kid());
        let parts: Vec<&str> = other_key.split('.').collect();
        format!("{}.{}.{}", b64(&header), parts[1], parts[2])
    };
    assert_eq!(claims["iss"], LOCAL_ISSUER);

    let many: Vec<Value> = (0..501).map(|i| json!({"m": i})).collect();
    let huge = {
        let filler = "x".repeat(200);
        let events: Vec<Value> =
            (0..500).map(|_| json!({"m": 1, "note": filler, "more": filler, "again": filler})).collect();
        let body = json!({ "events": events }).to_string();
        let body = format!("{body}{}", " ".repeat((1 << 20) + 10 - body.len().min(1 << 20)));
        assert!(body.len() > 1 << 20);
        body
    };

    let operator_token = Some(good.as_str());
    let cases: Vec<(&str, Option<&str>, String, u16)> = vec![
        ("malformed JSON", operator_token, r#"{"m": "#.into(), 400),
        ("a JSON array", operator_token, r#"[{"m": 1}]"#.into(), 400),
        ("a JSON string", operator_token, r#""m""#.into(), 400),
        ("an empty body", operator_token, String::new(), 400),
        ("no events", operator_token, r#"{"events": []}"#.into(), 400),
        ("501 events", operator_token, json!({ "events": many }).to_string(), 400),
        ("wrong-typed fields", operator_token, r#"{"name": 5, "value": "high"}"#.into(), 400),
        (
            "one bad event among good ones",
            operator_token,
            r#"{"events": [{"m": 1}, {"m": 2}, {"ts": "tomorrow"}]}"#.into(),
            400,
        ),
        ("a tenant in the body", operator_token, r#"{"tenant": "globex", "m": 1}"#.into(), 400),
        ("a body over 1 MiB", operator_token, huge, 413),
        (
            "pseudonyms that outgrow a stream record",
            operator_token,
            json!({"events": [{"m": 1, "msg": "a@b.io ".repeat(600 * 1024 / 7)}]}).to_string(),
            413,
        ),
        ("a sample too close to zero for DynamoDB", operator_token, r#"{"name": "x", "value": 1e-70}"#.into(), 400),
        ("a sample too large", operator_token, r#"{"name": "x", "value": 1e60}"#.into(), 400),
        ("no token", None, r#"{"m": 1}"#.into(), 401),
        ("a garbage token", Some("not.a.token"), r#"{"m": 1}"#.into(), 401),
        ("alg none", Some(&alg_none), r#"{"m": 1}"#.into(), 401),
        ("a token signed by another key", Some(&other_key), r#"{"m": 1}"#.into(), 401),
        ("a trusted kid on a forged signature", Some(&forged_kid), r#"{"m": 1}"#.into(), 401),
        ("an expired token", Some(&expired), r#"{"m": 1}"#.into(), 401),
        ("a token from another issuer", Some(&wrong_issuer), r#"{"m": 1}"#.into(), 401),
        ("a token for another audience", Some(&wrong_audience), r#"{"m": 1}"#.into(), 401),
        ("a token without a tenant", Some(&no_tenant), r#"{"m": 1}"#.into(), 401),
    ];

    let baseline = stack.quiet_snapshot().await;
    for (what, token, body, status) in cases {
        let reply = stack.post("/ingest", token, body).await;
        let doc = reply.assert_problem(status);
        if status == 400 && what.contains("fields") {
            let pointers: Vec<_> = doc["errors"].as_array().unwrap().iter().map(|e| e["pointer"].clone()).collect();
            assert!(pointers.contains(&json!("/name")) && pointers.contains(&json!("/value")), "{what}: {doc}");
        }
        if status == 401 {
            assert!(reply.headers.contains_key("www-authenticate"), "{what}: 401 without a challenge");
        }
        let now = stack.snapshot().await;
        assert!(now == baseline, "{what} changed stored state:\n{}", baseline.diff(&now));
    }
    // A body that is not UTF-8 is a 400, not a 500. (Sent as octet-stream: API Gateway hands such
    // a body over base64-encoded; the local emulator cannot forward one under a text type at all.)
    let req = stack
        .http
        .post("http://127.0.0.1:9000/ingest")
        .header("content-type", "application/octet-stream")
        .body(b"{\"m\": 1, \"msg\": \"\xff\xfe\"}".to_vec());
    stack.send(req, Some(&good)).await.assert_problem(400);
    let now = stack.snapshot().await;
    assert!(now == baseline, "a non-UTF-8 body changed stored state:\n{}", baseline.diff(&now));
    // The same request with a good token is accepted: the matrix failed for its reasons only.
    assert_eq!(stack.post("/ingest", Some(&good), r#"{"m": 1}"#).await.status, 202);
}
