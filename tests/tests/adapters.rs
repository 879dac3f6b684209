//! The AWS adapters against the emulator: conditional writes, idempotent dead letters,
//! counters, PutRecords, the KMS-derived pseudonym key and the health checks.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use naksha_contracts::TenantId;
use naksha_contracts::telemetry::SeriesMeta;
use naksha_core::aws::Aws;
use naksha_core::config::Backend;
use naksha_core::metrics::{CounterStore, DynamoCounters};
use naksha_core::privacy::PiiKey;
use naksha_e2e::{Stack, unique_tenant};
use naksha_insight_stream::aggregate::{AggKey, AggWrite, Stats};
use naksha_insight_stream::health::{self, Dependency};
use naksha_insight_stream::ingest::OutRecord;
use naksha_insight_stream::ports::{AggregateStore, CommitError, DeadLetterStore, PoisonRecord, RecordSink};
use naksha_insight_stream::series::SeqNo;
use naksha_insight_stream::store::{DynamoAggregates, DynamoDeadLetters, KinesisSink};

fn key(tenant: &str) -> (AggKey, SeriesMeta) {
    let meta = SeriesMeta { source: "s".into(), name: "n".into(), labels: BTreeMap::from([("a".into(), "b".into())]) };
    (AggKey { tenant: TenantId::from_record(tenant).unwrap(), series_id: meta.id(), minute: 1_764_072_000 }, meta)
}

#[tokio::test]
async fn aggregate_writes_are_conditional_on_the_version_read() {
    let stack = Stack::connect().await;
    let store = DynamoAggregates::new(stack.db.clone(), stack.table("AggregatesTable"));
    let tenant = unique_tenant("adapt");
    let (k, meta) = key(&tenant);
    let write = |stats: Stats, expected: u64, seq: &str| AggWrite {
        key: k.clone(),
        meta: meta.clone(),
        stats,
        expected_version: expected,
        shard: "shardId-000000000007".into(),
        watermark: SeqNo::parse(seq).unwrap(),
    };
    assert!(store.load("shardId-000000000007", std::slice::from_ref(&k)).await.unwrap().is_empty());
    let first =
        Stats { count: 2, sum: 0.30000000000000004, min: -1e-30, max: 1e30, sumsq: 5.0, first_ts: 1, last_ts: 2 };
    store.commit(&write(first, 0, "49590338271490256608559692538361571095921575989136588898")).await.unwrap();
    // A second writer that also read "absent" loses.
    assert!(matches!(store.commit(&write(first, 0, "5")).await, Err(CommitError::Conflict)));
    let loaded = store.load("shardId-000000000007", std::slice::from_ref(&k)).await.unwrap();
    let stored = &loaded[&k];
    assert_eq!(stored.version, 1);
    assert_eq!(stored.stats, first, "floats survive DynamoDB's number format exactly");
    assert_eq!(stored.watermark, SeqNo::parse("49590338271490256608559692538361571095921575989136588898"));
    // Another shard has its own watermark.
    let other = store.load("shardId-000000000008", std::slice::from_ref(&k)).await.unwrap();
    assert_eq!(other[&k].watermark, None);
    // A stale version loses; the current one wins.
    assert!(matches!(store.commit(&write(first, 7, "6")).await, Err(CommitError::Conflict)));
    store
        .commit(&write(Stats { count: 3, ..first }, 1, "49590338271490256608559692538361571095921575989136588899"))
        .await
        .unwrap();
    let loaded = store.load("shardId-000000000007", std::slice::from_ref(&k)).await.unwrap();
    assert_eq!((loaded[&k].version, loaded[&k].stats.count), (2, 3));
}

#[tokio::test]
async fn loading_more_than_a_hundred_keys_pages_through_batch_get() {
    let stack = Stack::connect().await;
    let store = DynamoAggregates::new(stack.db.clone(), stack.table("AggregatesTable"));
    let tenant = unique_tenant("many");
    let (base, meta) = key(&tenant);
    let keys: Vec<AggKey> = (0..150).map(|i| AggKey { minute: base.minute + i * 60, ..base.clone() }).collect();
    for k in &keys {
        let w = AggWrite {
            key: k.clone(),
            meta: meta.clone(),
            stats: Stats::of(1.0, 0),
            expected_version: 0,
            shard: "s".into(),
            watermark: SeqNo::parse("1").unwrap(),
        };
        store.commit(&w).await.unwrap();
    }
    assert_eq!(store.load("s", &keys).await.unwrap().len(), 150);
}

#[tokio::test]
async fn dead_letters_are_recorded_once() {
    let stack = Stack::connect().await;
    let dead = DynamoDeadLetters::new(stack.db.clone(), stack.table("DeadLetterTable"));
    let letter = PoisonRecord {
        shard: unique_tenant("shard"),
        seq: "42".into(),
        reason: "not a telemetry record".into(),
        size: 3,
        sha256: "0".repeat(64),
    };
    assert_eq!(dead.record(std::slice::from_ref(&letter)).await.unwrap(), 1);
    assert_eq!(dead.record(std::slice::from_ref(&letter)).await.unwrap(), 0);
}

#[tokio::test]
async fn counters_add_atomically_and_read_back_fleet_wide() {
    let stack = Stack::connect().await;
    let counters = DynamoCounters::new(stack.db.clone(), stack.table("CountersTable"));
    let series = format!("adapter_test_total{{run=\"{}\"}}", unique_tenant("c"));
    let group = unique_tenant("group");
    // Ten concurrent writers: ADD is atomic, so none of the increments is lost.
    let mut writers = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let (counters, group, series) = (counters.clone(), group.clone(), series.clone());
        writers.spawn(async move { counters.add(&group, &[(series.as_str(), 3), ("zero_total", 0)]).await });
    }
    while let Some(r) = writers.join_next().await {
        r.unwrap().unwrap();
    }
    assert_eq!(counters.read_all().await.unwrap()[&series], 30);
}

#[tokio::test]
async fn the_kinesis_sink_writes_every_record() {
    let stack = Stack::connect().await;
    let sink = KinesisSink::new(stack.kinesis.clone(), stack.stream_name());
    let tenant = unique_tenant("sink");
    let records: Vec<OutRecord> = (0..3)
        .map(|i| {
            // Record i packs i + 1 events of its source, one JSON line each.
            let line = |n: usize| {
                format!(r#"{{"v":1,"id":"{tenant}-{i}-{n}","tenant":"{tenant}","source":"src-{i}","kind":"event","ts":1764072000000}}"#)
            };
            OutRecord {
                events: (0..=i as u32).collect(),
                partition_key: format!("{tenant}/src-{i}"),
                data: (0..=i).map(line).collect::<Vec<_>>().join("\n").into_bytes(),
            }
        })
        .collect();
    sink.put(&records).await.unwrap();
    assert_eq!(stack.tenant_records(&tenant).await.len(), 3);
    assert_eq!(stack.tenant_events(&tenant).await.len(), 6);
}

#[tokio::test]
async fn the_pseudonym_key_comes_from_kms_and_is_stable() {
    let stack = Stack::connect().await;
    let key_id = stack.local.name("PiiKey").unwrap();
    let a = PiiKey::from_kms(&stack.kms, key_id).await.unwrap();
    let b = PiiKey::from_kms(&stack.kms, key_id).await.unwrap();
    assert_eq!(a.for_tenant("acme").pseudonym("bob"), b.for_tenant("acme").pseudonym("bob"));
    assert_ne!(
        a.for_tenant("acme").pseudonym("bob"),
        PiiKey::from_secret(b"guess").for_tenant("acme").pseudonym("bob")
    );
    assert!(!format!("{a:?}").contains(&a.for_tenant("acme").pseudonym("bob")[5..]), "the key is never printed");
    // The signing key cannot make MACs: a clear error, not a silent fallback.
    let err = PiiKey::from_kms(&stack.kms, stack.local.name("WpkSigningKey").unwrap()).await.unwrap_err();
    assert!(err.to_string().contains("KMS"), "{err}");
}

#[tokio::test]
async fn health_names_each_missing_dependency() {
    let stack = Stack::connect().await;
    let aws = Aws::from_config(stack.config.clone());
    let ok = vec![
        Dependency::Stream(stack.stream_name()),
        Dependency::Table(stack.table("CountersTable")),
        Dependency::Key(stack.local.name("PiiKey").unwrap().to_owned()),
    ];
    let report = health::check(&aws, Backend::Moto, &ok).await;
    assert!(report.up(), "{report:?}");
    assert_eq!(report.view(true).1["status"], "ok");
    let mut broken = ok.clone();
    broken.push(Dependency::Table("naksha.no-such-table".into()));
    broken.push(Dependency::Stream("naksha.no-such-stream".into()));
    let (status, doc) = health::check(&aws, Backend::Moto, &broken).await.view(true);
    assert_eq!((status, doc["status"].as_str()), (503, Some("down")));
    let detail = doc["detail"].as_str().unwrap();
    assert!(detail.contains("table:naksha.no-such-table"), "{detail}");
    assert!(detail.contains("stream:naksha.no-such-stream"), "{detail}");
    assert_eq!(doc["services"][format!("table:{}", stack.table("CountersTable"))], "ok");
    // No AWS error text, even for a caller with a token.
    assert!(!doc.to_string().contains("ResourceNotFound"), "{doc}");
    // Anonymous: down, and nothing else.
    let (_, anonymous) = health::check(&aws, Backend::Moto, &broken).await.view(false);
    assert_eq!(anonymous, serde_json::json!({"status": "down", "backend": "moto"}));
}

#[tokio::test]
async fn a_node_that_only_registered_is_marked_by_the_sweep_and_a_heartbeat_wins_the_race() {
    use naksha_federation::nodes::{Node, NodeStatus};
    use naksha_federation::ports::Nodes;
    use naksha_federation::store::DynamoFleet;
    let stack = Stack::connect().await;
    let fleet = DynamoFleet::new(stack.db.clone(), stack.table("FederationTable"));
    let tenant = TenantId::from_record(&unique_tenant("fleet")).unwrap();
    let two_minutes_ago = chrono::Utc::now() - chrono::Duration::seconds(120);
    let node = Node {
        node_id: "quiet-1".into(),
        kid: "node-0000000000000000".into(),
        public_key_pem: String::new(),
        labels: BTreeMap::new(),
        version: "1".into(),
        registered_at: two_minutes_ago,
        last_seen: two_minutes_ago,
        status: NodeStatus::Online,
        halt_seen: false,
        halt_seen_at: None,
        partition_run: None,
        partition_until: None,
    };
    fleet.register(&tenant, &node).await.unwrap();
    // The sweep read the node as registered (never heard from since): its status moves.
    let read = fleet.node(&tenant, "quiet-1").await.unwrap().unwrap();
    assert!(fleet.set_status(&tenant, "quiet-1", NodeStatus::Stale, read.last_seen).await.unwrap());
    assert_eq!(fleet.node(&tenant, "quiet-1").await.unwrap().unwrap().status, NodeStatus::Stale);
    // A heartbeat after the sweep read it: the sweep's write loses and the node stays online.
    let stale_read = fleet.node(&tenant, "quiet-1").await.unwrap().unwrap();
    fleet.heartbeat(&tenant, "quiet-1", chrono::Utc::now(), None).await.unwrap();
    assert!(!fleet.set_status(&tenant, "quiet-1", NodeStatus::Offline, stale_read.last_seen).await.unwrap());
    assert_eq!(fleet.node(&tenant, "quiet-1").await.unwrap().unwrap().status, NodeStatus::Online);
}
