//! Every federation route refuses bad input clearly and writes nothing: malformed, oversized,
//! unauthenticated, wrong-role (an operator cannot register as a node, a node cannot send
//! triggers or read other nodes' work) and cross-tenant requests, each compared against a
//! snapshot of every table and stream. One test function, so nothing else here writes meanwhile.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use naksha_contracts::TenantId;
use naksha_contracts::edge::{EdgeResult, ResultStatus};
use naksha_contracts::signing::{LocalKey, Purpose, Sealed, public_key_pem, sealed_bytes};
use naksha_e2e::Stack;
use serde_json::{Value, json};

/// what, method, path, token, body, expected status.
type Case<'a> = (&'a str, &'a str, String, Option<&'a str>, String, u16);

fn wpk() -> Value {
    json!({
        "id": "restart-edge", "version": 1, "title": "Restart at the edge",
        "match": {"signals": ["deployment_unhealthy"], "resources": ["deployment/*"]},
        "steps": [{"adapter": "sim", "action": "restart"}]
    })
}

#[tokio::test]
async fn every_bad_federation_request_is_refused_clearly_and_writes_nothing() {
    let stack = Stack::connect().await;
    let team = stack.team("bad4");
    let other = stack.team("bad4-other");
    assert_eq!(stack.register(&team, &wpk()).await.status, 201);
    assert_eq!(stack.register(&other, &wpk()).await.status, 201);
    // A registered node and a trigger queued for it in `team`, to aim at.
    let node_key = LocalKey::generate("n").unwrap();
    let pem = public_key_pem(&node_key.public_key_der());
    let edge = stack.key.token(&team.tenant, "gate-1", &["edge"], 600).unwrap();
    let reg = stack
        .post_json(
            "/federation/register",
            Some(&edge),
            &json!({"public_key": pem, "labels": {"site": "g"}, "version": "1"}),
        )
        .await;
    assert_eq!(reg.status, 201, "{}", reg.text);
    let kid = reg.json()["kid"].as_str().unwrap().to_owned();
    let sent = stack.post_json("/federation/triggers", Some(&team.admin), &json!({"wpk": {"id": "restart-edge"}, "target": {"node_id": "gate-1"}, "params": {"resource": "deployment/a"}})).await;
    assert_eq!(sent.status, 202, "{}", sent.text);
    let trigger = sent.json()["trigger_id"].as_str().unwrap().to_owned();
    let stranger = stack.key.token(&team.tenant, "gate-2", &["edge"], 600).unwrap();
    let other_edge = stack.key.token(&other.tenant, "gate-1", &["edge"], 600).unwrap();
    let bad_sub = stack.key.token(&team.tenant, "Gate One", &["edge"], 600).unwrap();

    // A result for the trigger signed by a key that is not gate-1's.
    let tenant = TenantId::from_record(&team.tenant).unwrap();
    let result = |status: ResultStatus| EdgeResult {
        trigger_id: trigger.clone(),
        node_id: "gate-1".into(),
        seq: 1,
        status,
        reason: "done".into(),
        refusal: None,
        wpk: None,
        steps: Vec::new(),
        finished_at: chrono::Utc::now(),
    };
    let seal = |key: &LocalKey, r: &EdgeResult| {
        let bytes = sealed_bytes(Purpose::EdgeResult, &tenant, r);
        serde_json::to_string(&Sealed::new(&bytes, &key.sign(&bytes).unwrap())).unwrap()
    };
    let impostor = LocalKey::generate(&kid).unwrap();
    let forged_result = seal(&impostor, &result(ResultStatus::Succeeded));
    let genuine_success =
        seal(&LocalKey::from_pkcs8(&kid, node_key.pkcs8_der()).unwrap(), &result(ResultStatus::Succeeded));
    let other_pem = public_key_pem(&LocalKey::generate("o").unwrap().public_key_der());
    let huge = format!("{{\"x\":\"{}\"}}", "y".repeat(1 << 20));

    let ad = Some(team.admin.as_str());
    let op = Some(team.operator.as_str());
    let ed = Some(edge.as_str());
    let trig = format!("/federation/triggers/{trigger}");
    let result_path = format!("{trig}/result");
    let send = |body: Value| body.to_string();
    let reg_body = |key: &str| json!({"public_key": key, "labels": {"site": "g"}, "version": "1"}).to_string();
    let cases: Vec<Case<'_>> = vec![
        ("register: malformed JSON", "POST", "/federation/register".into(), ed, "{\"public_key\":".into(), 400),
        ("register: an array", "POST", "/federation/register".into(), ed, "[]".into(), 400),
        (
            "register: not a P-256 key",
            "POST",
            "/federation/register".into(),
            ed,
            reg_body("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"),
            400,
        ),
        (
            "register: unknown field",
            "POST",
            "/federation/register".into(),
            ed,
            send(json!({"public_key": pem, "version": "1", "tenant": "x"})),
            400,
        ),
        (
            "register: bad labels",
            "POST",
            "/federation/register".into(),
            ed,
            send(json!({"public_key": pem, "version": "1", "labels": {"Bad Key": "v"}})),
            400,
        ),
        ("register: over 1 MiB", "POST", "/federation/register".into(), ed, huge.clone(), 413),
        ("register: no token", "POST", "/federation/register".into(), None, reg_body(&pem), 401),
        ("register: garbage token", "POST", "/federation/register".into(), Some("x.y.z"), reg_body(&pem), 401),
        ("register: an operator is not a node", "POST", "/federation/register".into(), op, reg_body(&pem), 403),
        (
            "register: a sub that is no node id",
            "POST",
            "/federation/register".into(),
            Some(bad_sub.as_str()),
            reg_body(&pem),
            403,
        ),
        ("register: another key for gate-1", "POST", "/federation/register".into(), ed, reg_body(&other_pem), 409),
        ("heartbeat: no token", "POST", "/federation/heartbeat".into(), None, "{}".into(), 401),
        ("heartbeat: an operator", "POST", "/federation/heartbeat".into(), op, "{}".into(), 403),
        ("heartbeat: unknown field", "POST", "/federation/heartbeat".into(), ed, send(json!({"status": "ok"})), 400),
        (
            "heartbeat: halted not a bool",
            "POST",
            "/federation/heartbeat".into(),
            ed,
            send(json!({"halted": "no"})),
            400,
        ),
        ("heartbeat: over 1 MiB", "POST", "/federation/heartbeat".into(), ed, huge.clone(), 413),
        (
            "heartbeat: not registered",
            "POST",
            "/federation/heartbeat".into(),
            Some(stranger.as_str()),
            "{}".into(),
            404,
        ),
        (
            "heartbeat: registered in another tenant only",
            "POST",
            "/federation/heartbeat".into(),
            Some(other_edge.as_str()),
            "{}".into(),
            404,
        ),
        ("nodes: no token", "GET", "/federation/nodes".into(), None, String::new(), 401),
        ("nodes: a node cannot list nodes", "GET", "/federation/nodes".into(), ed, String::new(), 403),
        (
            "node: another tenant",
            "GET",
            "/federation/nodes/gate-1".into(),
            Some(other.operator.as_str()),
            String::new(),
            404,
        ),
        ("node: unknown", "GET", "/federation/nodes/gate-9".into(), op, String::new(), 404),
        ("node: malformed id", "GET", "/federation/nodes/Gate%20One".into(), op, String::new(), 404),
        ("node: a node cannot read nodes", "GET", "/federation/nodes/gate-1".into(), ed, String::new(), 403),
        ("send: malformed JSON", "POST", "/federation/triggers".into(), ad, "{".into(), 400),
        (
            "send: no params",
            "POST",
            "/federation/triggers".into(),
            ad,
            send(json!({"wpk": {"id": "restart-edge"}, "target": {"node_id": "gate-1"}})),
            400,
        ),
        (
            "send: ttl zero",
            "POST",
            "/federation/triggers".into(),
            ad,
            send(
                json!({"wpk": {"id": "restart-edge"}, "target": {"node_id": "gate-1"}, "params": {"resource": "deployment/a"}, "ttl_seconds": 0}),
            ),
            400,
        ),
        (
            "send: a resource the WPK does not cover",
            "POST",
            "/federation/triggers".into(),
            ad,
            send(
                json!({"wpk": {"id": "restart-edge"}, "target": {"node_id": "gate-1"}, "params": {"resource": "statefulset/db"}}),
            ),
            400,
        ),
        (
            "send: unknown WPK",
            "POST",
            "/federation/triggers".into(),
            ad,
            send(
                json!({"wpk": {"id": "nope"}, "target": {"node_id": "gate-1"}, "params": {"resource": "deployment/a"}}),
            ),
            404,
        ),
        (
            "send: another tenant's node",
            "POST",
            "/federation/triggers".into(),
            Some(other.admin.as_str()),
            send(
                json!({"wpk": {"id": "restart-edge"}, "target": {"node_id": "gate-1"}, "params": {"resource": "deployment/a"}}),
            ),
            404,
        ),
        (
            "send: no node has the labels",
            "POST",
            "/federation/triggers".into(),
            ad,
            send(
                json!({"wpk": {"id": "restart-edge"}, "target": {"labels": {"site": "nowhere"}}, "params": {"resource": "deployment/a"}}),
            ),
            409,
        ),
        ("send: over 1 MiB", "POST", "/federation/triggers".into(), ad, huge.clone(), 413),
        ("send: no token", "POST", "/federation/triggers".into(), None, "{}".into(), 401),
        ("send: an operator", "POST", "/federation/triggers".into(), op, "{}".into(), 403),
        ("send: a node cannot send triggers", "POST", "/federation/triggers".into(), ed, "{}".into(), 403),
        ("poll: an operator is not a node", "GET", "/federation/triggers".into(), op, String::new(), 403),
        ("poll: after not a number", "GET", "/federation/triggers?after=-1".into(), ed, String::new(), 400),
        ("poll: wait too long", "GET", "/federation/triggers?wait=99".into(), ed, String::new(), 400),
        ("poll: no token", "GET", "/federation/triggers".into(), None, String::new(), 401),
        ("poll: not registered", "GET", "/federation/triggers".into(), Some(stranger.as_str()), String::new(), 404),
        ("trigger: another tenant", "GET", trig.clone(), Some(other.operator.as_str()), String::new(), 404),
        ("trigger: a node cannot read triggers", "GET", trig.clone(), ed, String::new(), 403),
        ("trigger: malformed id", "GET", "/federation/triggers/trg-xyz".into(), op, String::new(), 404),
        ("trigger: no token", "GET", trig.clone(), None, String::new(), 401),
        ("result: no token", "POST", result_path.clone(), None, genuine_success.clone(), 401),
        ("result: an operator", "POST", result_path.clone(), op, genuine_success.clone(), 403),
        ("result: malformed JSON", "POST", result_path.clone(), ed, "{".into(), 400),
        ("result: not a signed result", "POST", result_path.clone(), ed, send(json!({"status": "succeeded"})), 400),
        ("result: signed by another key", "POST", result_path.clone(), ed, forged_result.clone(), 400),
        (
            "result: from another node",
            "POST",
            result_path.clone(),
            Some(stranger.as_str()),
            genuine_success.clone(),
            404,
        ),
        (
            "result: from another tenant",
            "POST",
            result_path.clone(),
            Some(other_edge.as_str()),
            genuine_success.clone(),
            404,
        ),
        ("result: a delivery never handed out", "POST", result_path.clone(), ed, genuine_success.clone(), 409),
        ("result: over 1 MiB", "POST", result_path.clone(), ed, huge.clone(), 413),
        ("keys: no token", "GET", "/federation/keys".into(), None, String::new(), 401),
        ("keys: garbage token", "GET", "/federation/keys".into(), Some("x.y.z"), String::new(), 401),
    ];

    let baseline = stack.quiet_snapshot().await;
    for (what, method, path, token, body, status) in cases {
        let url = format!("http://127.0.0.1:9000{path}");
        let mut req = match method {
            "GET" => stack.http.get(url),
            _ => stack.http.post(url).header("content-type", "application/json").body(body),
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
        let now = stack.snapshot().await;
        assert!(now == baseline, "{what} changed stored state:\n{}", baseline.diff(&now));
    }
    // A body that is not UTF-8 is a 400 like any other body that is not JSON.
    let resp = stack
        .http
        .post("http://127.0.0.1:9000/federation/register")
        .header("content-type", "application/octet-stream")
        .header("authorization", format!("Bearer {edge}"))
        .body(b"{\"public_key\": \"\xff\xfe\"}".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let now = stack.snapshot().await;
    assert!(now == baseline, "a non-UTF-8 body changed stored state:\n{}", baseline.diff(&now));
    // The other tenant sees none of `team`'s nodes.
    let theirs = stack.get("/federation/nodes", Some(&other.operator)).await.json();
    assert_eq!(theirs["count"], 0, "{theirs}");
}
