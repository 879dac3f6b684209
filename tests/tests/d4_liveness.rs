//! D.4 liveness: a node that stops heartbeating is marked stale, then offline, by the scheduled
//! sweep, and online again on its next heartbeat. Its own binary: the sweep covers every tenant,
//! so it must not run beside the other federation tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use naksha_e2e::edge::EdgeNode;
use naksha_e2e::{Stack, Team, eventually};
use naksha_local::stack::API_URL;
use serde_json::{Value, json};

fn world(healthy: bool) -> Value {
    json!({"deployment/payments": {"kind": "deployment", "replicas": 2, "healthy": healthy, "version": "v1"}})
}

async fn node_view(stack: &Stack, team: &Team, node: &str) -> Value {
    let r = stack.get(&format!("/federation/nodes/{node}"), Some(&team.operator)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.json()
}

#[tokio::test]
async fn silent_nodes_are_marked_stale_then_offline_and_online_again_on_their_next_heartbeat() {
    let stack = Stack::connect().await;
    let root = stack.paths.root.clone();
    let team = stack.team("d4live");
    let mut n = EdgeNode::new(&stack, &team.tenant, "depot-1", API_URL, "site=d1", &world(true));
    n.start(&root, &[]);
    n.registered(&root).await;
    n.terminate();
    let table = stack.table("FederationTable");
    // The node's last heartbeat, moved back (as time passing would, or someone with table access).
    let age = |secs: i64| {
        let at = chrono::Utc::now() - chrono::Duration::seconds(secs);
        stack
            .db
            .update_item()
            .table_name(&table)
            .key("pk", AttributeValue::S(team.tenant.clone()))
            .key("sk", AttributeValue::S("node#depot-1".into()))
            .update_expression("SET last_seen = :at, last_seen_ms = :ms")
            .expression_attribute_values(":at", AttributeValue::S(at.to_rfc3339()))
            .expression_attribute_values(":ms", AttributeValue::N(at.timestamp_millis().to_string()))
            .send()
    };
    let sweep = json!({"id": "evt", "source": "aws.events", "detail-type": "Scheduled Event", "time": chrono::Utc::now().to_rfc3339(), "detail": {}});
    age(120).await.unwrap();
    let (status, out) = stack.invoke("federation-sweep", &sweep).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(node_view(&stack, &team, "depot-1").await["status"], "stale");
    age(3600).await.unwrap();
    stack.invoke("federation-sweep", &sweep).await;
    assert_eq!(node_view(&stack, &team, "depot-1").await["status"], "offline");
    n.start(&root, &[]);
    eventually("online again", Duration::from_secs(30), || async {
        (node_view(&stack, &team, "depot-1").await["status"] == "online").then_some(())
    })
    .await;
}
