//! The agent's routes refuse bad input clearly and write nothing: malformed, oversized,
//! unauthenticated, wrong-role and cross-tenant requests, each compared against a snapshot of
//! every table and every stream. One test function, so nothing else here writes meanwhile.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use naksha_e2e::Stack;
use serde_json::json;

#[tokio::test]
async fn every_bad_agent_request_is_refused_clearly_and_writes_nothing() {
    let stack = Stack::connect().await;
    let team = stack.team("bad2");
    let other = stack.team("bad2-other");
    // A run awaiting approval in `team`, to aim approvals at.
    stack.sim_deployment(&team, "deployment/api", false).await;
    let wpk = json!({
        "id": "restart", "version": 1, "title": "Restart",
        "match": {"signals": ["down"]}, "steps": [{"adapter": "sim", "action": "restart"}]
    });
    assert_eq!(stack.register(&team, &wpk).await.status, 201);
    let run = stack.start_run(&team, "down", "deployment/api").await;
    let waiting = stack.run_until(&team, &run, &["awaiting_approval"]).await;
    let sha = waiting["plan"]["sha256"].as_str().unwrap().to_owned();
    let huge = format!(
        "{{\"signal\":\"down\",\"resource\":\"deployment/api\",\"telemetry\":{{\"x\":\"{}\"}}}}",
        "y".repeat(1 << 20)
    );
    let approve = format!("/agent/runs/{run}/approve");
    let edge = stack.key.token(&team.tenant, "store-1", &["edge"], 600).unwrap();

    // Listing runs shows the tenant's own, never another's.
    let listed = stack.get("/agent/runs?status=awaiting_approval", Some(&team.operator)).await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    let listed = listed.json();
    let ids: Vec<&str> = listed["runs"].as_array().unwrap().iter().map(|r| r["run_id"].as_str().unwrap()).collect();
    assert_eq!(ids, [run.as_str()]);
    assert_eq!(listed["runs"][0]["status"], "awaiting_approval");
    let none = stack.get("/agent/runs?status=succeeded", Some(&team.operator)).await.json();
    assert_eq!(none["count"], 0, "{none}");
    let theirs = stack.get("/agent/runs", Some(&other.operator)).await.json();
    assert_eq!(theirs["count"], 0, "another tenant sees none of these runs: {theirs}");

    struct Case<'a> {
        what: &'a str,
        method: &'a str,
        path: String,
        token: Option<&'a str>,
        body: Vec<u8>,
        status: u16,
    }
    let c = |what, method, path: &str, token, body: &str, status| Case {
        what,
        method,
        path: path.to_owned(),
        token,
        body: body.as_bytes().to_vec(),
        status,
    };
    let op = Some(team.operator.as_str());
    let ad = Some(team.admin.as_str());
    let ap = Some(team.approver.as_str());
    // Bodies that are not UTF-8 (a stray Latin-1 byte, a UTF-16 byte order mark) are a 400, never a
    // 500. They go as octet-stream: API Gateway hands such a body over base64-encoded, and the local
    // emulator cannot forward one under a text content type at all.
    let not_utf8 = |what, path: &str, token, prefix: &str| Case {
        what,
        method: "POST",
        path: format!("{path}#octet"),
        token,
        body: [prefix.as_bytes(), b"\xff\xfe\xe9\"}"].concat(),
        status: 400,
    };
    let mut cases = vec![
        not_utf8("run: not UTF-8", "/agent/run", op, r#"{"signal":"down","resource":""#),
        not_utf8("approve: not UTF-8", &approve, ap, r#"{"justification":""#),
        not_utf8("reject: not UTF-8", &format!("/agent/runs/{run}/reject"), ap, r#"{"justification":""#),
        not_utf8("promote: not UTF-8", "/wpk/restart/promote", ap, r#"{"version":1,"justification":""#),
        not_utf8("wpk: not UTF-8", "/wpk", ad, r#"{"id":""#),
        not_utf8("settings: not UTF-8", "/agent/settings", ad, r#"{"allow_self_approval":true,"justification":""#),
        not_utf8("halt: not UTF-8", "/agent/halt", ad, r#"{"reason":""#),
        c(
            "settings: operator lacks admin",
            "POST",
            "/agent/settings",
            op,
            r#"{"allow_self_approval":true,"justification":"x"}"#,
            403,
        ),
        c("settings: malformed JSON", "POST", "/agent/settings", ad, r#"{"allow_self_approval":"#, 400),
        c(
            "settings: unknown field",
            "POST",
            "/agent/settings",
            ad,
            r#"{"allow_self_approval":true,"justification":"x","admin":"me"}"#,
            400,
        ),
        c("settings: no justification", "POST", "/agent/settings", ad, r#"{"allow_self_approval":true}"#, 400),
        c("settings: over 1 MiB", "POST", "/agent/settings", ad, &huge, 413),
        c("settings: no token", "POST", "/agent/settings", None, "{}", 401),
        c("settings get: no token", "GET", "/agent/settings", None, "", 401),
        c("audit: bad limit", "GET", "/agent/audit?limit=0", op, "", 400),
        c("audit: bad cursor", "GET", "/agent/audit?cursor=x", op, "", 400),
    ];
    cases.extend(vec![
        c("run: malformed JSON", "POST", "/agent/run", op, "{\"signal\":", 400),
        c("run: a JSON array", "POST", "/agent/run", op, "[]", 400),
        c("run: missing fields", "POST", "/agent/run", op, "{}", 400),
        c(
            "run: wrong types and unknown field",
            "POST",
            "/agent/run",
            op,
            r#"{"signal": 7, "resource": "a*", "dry_run": "yes", "force": true}"#,
            400,
        ),
        c(
            "run: telemetry not an object",
            "POST",
            "/agent/run",
            op,
            r#"{"signal":"down","resource":"deployment/api","telemetry":[1]}"#,
            400,
        ),
        c("run: over 1 MiB", "POST", "/agent/run", op, &huge, 413),
        c("wpk: over 1 MiB", "POST", "/wpk", ad, &huge, 413),
        c("approve: over 1 MiB", "POST", &approve, ap, &huge, 413),
        c("sim put: over 1 MiB", "PUT", "/sim/resources/deployment/x", ad, &huge, 413),
        c("run: no token", "POST", "/agent/run", None, r#"{"signal":"down","resource":"deployment/api"}"#, 401),
        c(
            "run: garbage token",
            "POST",
            "/agent/run",
            Some("x.y.z"),
            r#"{"signal":"down","resource":"deployment/api"}"#,
            401,
        ),
        c(
            "run: approver lacks operator",
            "POST",
            "/agent/run",
            ap,
            r#"{"signal":"down","resource":"deployment/api"}"#,
            403,
        ),
        c("approve: bad digest format", "POST", &approve, ap, r#"{"justification":"ok","plan_sha256":"abc"}"#, 400),
        c("approve: no justification", "POST", &approve, ap, &format!(r#"{{"plan_sha256":"{sha}"}}"#), 400),
        c(
            "approve: wrong digest",
            "POST",
            &approve,
            ap,
            &format!(r#"{{"justification":"ok","plan_sha256":"{}"}}"#, "f".repeat(64)),
            409,
        ),
        c(
            "approve: operator lacks approver",
            "POST",
            &approve,
            op,
            &format!(r#"{{"justification":"ok","plan_sha256":"{sha}"}}"#),
            403,
        ),
        c(
            "approve: another tenant",
            "POST",
            &approve,
            Some(other.approver.as_str()),
            &format!(r#"{{"justification":"ok","plan_sha256":"{sha}"}}"#),
            404,
        ),
        c(
            "approve: unknown run",
            "POST",
            "/agent/runs/0000-no-such-run/approve",
            ap,
            &format!(r#"{{"justification":"ok","plan_sha256":"{sha}"}}"#),
            404,
        ),
        c("approve: no token", "POST", &approve, None, "{}", 401),
        c(
            "reject: another tenant",
            "POST",
            &format!("/agent/runs/{run}/reject"),
            Some(other.approver.as_str()),
            r#"{"justification":"no"}"#,
            404,
        ),
        c("status: another tenant", "GET", &format!("/agent/status/{run}"), Some(other.operator.as_str()), "", 404),
        c("wpk: not a mapping", "POST", "/wpk", ad, "[1, 2]", 400),
        c("wpk: invalid document", "POST", "/wpk", ad, r#"{"id": "X!", "version": 0, "steps": []}"#, 400),
        c("wpk: broken YAML", "POST", "/wpk", ad, "id: [unclosed", 400),
        c("wpk: existing version", "POST", "/wpk", ad, &wpk.to_string(), 409),
        c("wpk: operator lacks admin", "POST", "/wpk", op, &wpk.to_string(), 403),
        c("wpk: no token", "POST", "/wpk", None, &wpk.to_string(), 401),
        c("wpk get: another tenant", "GET", "/wpk/restart", Some(other.operator.as_str()), "", 404),
        c("promote: manual WPK", "POST", "/wpk/restart/promote", ap, r#"{"version":1,"justification":"x"}"#, 409),
        c("sim put: bad body", "PUT", "/sim/resources/deployment/x", ad, r#"{"kind":"","replicas":-1}"#, 400),
        c(
            "sim put: a name with *",
            "PUT",
            "/sim/resources/deployment/a*b",
            ad,
            r#"{"kind":"deployment","replicas":1,"healthy":true,"version":"v1"}"#,
            400,
        ),
        c(
            "sim put: operator lacks admin",
            "PUT",
            "/sim/resources/deployment/x",
            op,
            r#"{"kind":"deployment","replicas":1,"healthy":true,"version":"v1"}"#,
            403,
        ),
        c("sim get: another tenant", "GET", "/sim/resources/deployment/api", Some(other.admin.as_str()), "", 404),
        c("halt: operator lacks admin", "POST", "/agent/halt", op, "{}", 403),
        c("audit: no token", "GET", "/agent/audit", None, "", 401),
        c("runs: no token", "GET", "/agent/runs", None, "", 401),
        c("runs: unknown status", "GET", "/agent/runs?status=done", op, "", 400),
        c("runs: limit over 100", "GET", "/agent/runs?limit=101", op, "", 400),
        c("runs: limit not a number", "GET", "/agent/runs?limit=ten", op, "", 400),
        c("runs: an edge node is no reader", "GET", "/agent/runs", Some(edge.as_str()), "", 403),
    ]);

    let baseline = stack.quiet_snapshot().await;
    for case in cases {
        let (path, content_type) = match case.path.strip_suffix("#octet") {
            Some(p) => (p, "application/octet-stream"),
            None => (case.path.as_str(), "application/json"),
        };
        let url = format!("http://127.0.0.1:9000{path}");
        let mut req = match case.method {
            "GET" => stack.http.get(url),
            "PUT" => stack.http.put(url).header("content-type", content_type).body(case.body.clone()),
            _ => stack.http.post(url).header("content-type", content_type).body(case.body.clone()),
        };
        if let Some(t) = case.token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let content_type =
            resp.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
        let body: serde_json::Value = resp.json().await.unwrap_or_default();
        assert_eq!(status, case.status, "{}: {body}", case.what);
        assert_eq!(content_type, "application/problem+json", "{}", case.what);
        assert!(body["title"].is_string() && body["detail"].is_string(), "{}: {body}", case.what);
        if case.what == "wpk: invalid document" {
            let pointers: Vec<&str> =
                body["errors"].as_array().unwrap().iter().map(|e| e["pointer"].as_str().unwrap()).collect();
            for p in ["/id", "/version", "/title", "/match", "/steps"] {
                assert!(pointers.contains(&p), "{p} not named: {pointers:?}");
            }
        }
        let now = stack.snapshot().await;
        assert!(now == baseline, "{} changed stored state:\n{}", case.what, baseline.diff(&now));
    }
}
