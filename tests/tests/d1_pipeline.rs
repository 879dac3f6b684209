//! D.1 stream → consumer → DynamoDB behaviour on the running stack: privacy of everything
//! written, idempotent redelivery, poison records.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_kinesis::primitives::Blob;
use naksha_e2e::{Stack, eventually, n, unique_tenant};
use naksha_local::poller::kinesis_event;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(90);

#[tokio::test]
async fn pii_never_reaches_the_stream_or_any_table() {
    let stack = Stack::connect().await;
    let tenant = unique_tenant("pii");
    // Unique values, so a match can only come from this test.
    let tag = tenant.rsplit('-').next().unwrap().to_owned();
    let email = format!("jane.{tag}@example.com");
    let octet = |i: usize| u8::from_str_radix(&tag[tag.len() - 2 * i - 2..tag.len() - 2 * i], 16).unwrap();
    let ipv4 = format!("10.{}.{}.{}", octet(0), octet(1), octet(2));
    let ipv6 = format!("2001:db8:{}::42", &tag[..4]);
    let user = format!("user-{tag}");
    let session = format!("sess-{tag}");
    let events = json!({"events": [
        {"source": ipv4, "name": "login", "value": 1, "user": user, "email": email, "session": session,
         "labels": {"client_ip": ipv6, "region": "eu-1"}},
        {"source": "web-1", "kind": "log", "message": format!("failed login for {email} from {ipv4} via [{ipv6}]:443"),
         "context": {"user_id": user, "nested": [{"ip": ipv4}, format!("mailto:{email}")]}},
        {"source": "web-1", "name": "latency_ms", "value": 12, "labels": {"peer": ipv4, format!("{email}"): "as a key"}}
    ]});
    let reply = stack.post_json("/ingest", Some(&stack.token(&tenant, &["operator"])), &events).await;
    assert_eq!(reply.status, 202, "{}", reply.text);
    eventually("the PII test's aggregates", WAIT, || async {
        (stack.aggregates_of(&tenant).await.len() >= 2).then_some(())
    })
    .await;

    let raw = [email.as_str(), ipv4.as_str(), ipv6.as_str(), user.as_str(), session.as_str()];
    let records = stack.stream_records().await;
    let ours = stack.tenant_events(&tenant).await;
    assert_eq!(ours.len(), 3, "all three events reached the stream");
    // The two `web-1` events share a record; the other source (a pseudonym) has its own.
    assert_eq!(stack.tenant_records(&tenant).await.len(), 2);
    for (_, r) in &records {
        let text = format!("{} {}", String::from_utf8_lossy(r.data().as_ref()), r.partition_key().unwrap_or_default());
        for pii in raw {
            assert!(!text.contains(pii), "{pii} found in a stream record: {text}");
        }
    }
    for table in stack.tables() {
        for item in stack.scan(&table).await {
            let text = format!("{item:?}");
            for pii in raw {
                assert!(!text.contains(pii), "{pii} found in table {table}: {text}");
            }
        }
    }
    // The non-identifying parts survive, and identifiers became pseudonyms, not blanks.
    let first: Value =
        ours.into_iter().map(|(_, _, doc)| doc).find(|doc| doc["name"] == "login").expect("the login event");
    assert_eq!(first["labels"]["region"], "eu-1");
    assert!(first["attrs"]["user"].as_str().unwrap().starts_with("anon_"));
    assert!(first["source"].as_str().unwrap().starts_with("anon_"));
}

#[tokio::test]
async fn a_redelivered_batch_changes_nothing() {
    let stack = Stack::connect().await;
    let tenant = unique_tenant("redo");
    let events: Vec<Value> =
        (0..40).map(|i| json!({"source": format!("node-{}", i % 4), "name": "rps", "value": i})).collect();
    let reply =
        stack.post_json("/ingest", Some(&stack.token(&tenant, &["operator"])), &json!({ "events": events })).await;
    assert_eq!(reply.status, 202);
    let settled = |items: &Vec<naksha_e2e::Item>| items.iter().map(|i| n(i, "count")).sum::<f64>() == 40.0;
    let before = eventually("40 samples aggregated", WAIT, || async {
        let items = stack.aggregates_of(&tenant).await;
        settled(&items).then_some(items)
    })
    .await;
    let canonical = |items: Vec<naksha_e2e::Item>| {
        let mut v: Vec<String> = items
            .into_iter()
            .map(|i| format!("{:?}", i.into_iter().filter(|(k, _)| k != "updated_at").collect::<BTreeMap<_, _>>()))
            .collect();
        v.sort();
        v
    };
    let before = canonical(before);
    // Deliver the tenant's records again, shard by shard, exactly as Lambda would redeliver.
    let mut by_shard: BTreeMap<String, Vec<_>> = BTreeMap::new();
    for (shard, record, _) in stack.tenant_records(&tenant).await {
        by_shard.entry(shard).or_default().push(record);
    }
    for (shard, records) in &by_shard {
        let event =
            serde_json::to_value(kinesis_event(records, shard, stack.local.arn("TelemetryStream").unwrap())).unwrap();
        for _ in 0..2 {
            let (status, response) = stack.invoke("telemetry-consumer", &event).await;
            assert_eq!(status, 200, "{response}");
            assert_eq!(response["batchItemFailures"], json!([]), "{response}");
        }
    }
    let after = canonical(stack.aggregates_of(&tenant).await);
    assert_eq!(before, after, "a redelivered batch must not change any aggregate");
}

#[tokio::test]
async fn a_poison_record_is_set_aside_and_does_not_block_the_records_after_it() {
    let stack = Stack::connect().await;
    let tenant = unique_tenant("poison");
    let source = "victim-host";
    // Same partition key as the valid event that follows, so both are on one shard, in order.
    let put = stack
        .kinesis
        .put_record()
        .stream_name(stack.stream_name())
        .partition_key(format!("{tenant}/{source}"))
        // JSON that serde would quote in its error: the reason must not (P-1).
        .data(Blob::new(
            format!(r#"{{"v":1,"id":"x","tenant":"{tenant}","source":"s","kind":"alice@example.com","ts":1}}"#)
                .into_bytes(),
        ))
        .send()
        .await
        .unwrap();
    let poison_seq = put.sequence_number().to_owned();
    let shard = put.shard_id().to_owned();
    let reply = stack
        .post_json(
            "/ingest",
            Some(&stack.token(&tenant, &["operator"])),
            &json!({"source": source, "name": "after_poison", "value": 1}),
        )
        .await;
    assert_eq!(reply.status, 202);
    eventually("the record after the poison to be aggregated", WAIT, || async {
        (stack.aggregates_of(&tenant).await.len() == 1).then_some(())
    })
    .await;
    let dead = stack.scan(&stack.table("DeadLetterTable")).await;
    let letter = dead
        .iter()
        .find(|i| naksha_e2e::s(i, "seq") == poison_seq)
        .unwrap_or_else(|| panic!("no dead letter for {poison_seq}"));
    assert_eq!(naksha_e2e::s(letter, "pk"), format!("shard#{shard}"));
    assert!(naksha_e2e::s(letter, "reason").contains("not a telemetry record"));
    assert_eq!(naksha_e2e::s(letter, "sha256").len(), 64);
    assert!(!format!("{letter:?}").contains("alice"), "neither the payload nor a quote of it is kept: {letter:?}");
    // It was handled by the consumer, not retried into the on-failure destination.
    // (Compared as numbers on the same stream and shard: moto's sequence numbers are short, so a
    // substring test would match unrelated batches.)
    let failures = std::fs::read_to_string(stack.paths.failures()).unwrap_or_default();
    let poison: u128 = poison_seq.parse().unwrap();
    let stream = stack.stream_name();
    for line in failures.lines().filter(|l| !l.trim().is_empty()) {
        let f: serde_json::Value = serde_json::from_str(line).unwrap();
        let batch = &f["KinesisBatchInfo"];
        let num = |k: &str| batch[k].as_str().and_then(|s| s.parse::<u128>().ok()).unwrap_or(0);
        let same_shard = batch["shardId"] == shard.as_str()
            && batch["streamArn"].as_str().is_some_and(|a| a.ends_with(&format!("/{stream}")));
        assert!(
            !(same_shard && (num("startSequenceNumber")..=num("endSequenceNumber")).contains(&poison)),
            "the poison record must not exhaust retries: {line}"
        );
    }
}
