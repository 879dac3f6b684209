//! How many triggers one edge core verifies per second: `check_delivery` on a genuine delivery
//! (the hub's ECDSA P-256 signature over the order, the WPK's bytes against the pinned sha256
//! and its own signature, then every other check). Figures go to reports/bench_D4.md.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeSet;

use chrono::{Duration, Utc};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use naksha_contracts::TenantId;
use naksha_contracts::edge::{
    Delivery, HubKey, HubKeys, NodeMemory, NodeView, TriggerOrder, WpkForm, WpkRef, check_delivery,
};
use naksha_contracts::signing::{LocalKey, Purpose, Sealed, public_key_pem, sealed_bytes};
use naksha_contracts::wpk::{StoredWpk, parse};
use serde_json::json;

struct Fresh(BTreeSet<String>);
impl NodeMemory for Fresh {
    fn seen_nonce(&self, n: &str) -> bool {
        self.0.contains(n)
    }
    fn highest_version(&self, _: &str) -> Option<u32> {
        Some(1)
    }
}

fn bench(c: &mut Criterion) {
    let tenant = TenantId::from_record("acme").unwrap();
    let hub = LocalKey::generate("trigger-key").unwrap();
    let wpk_key = LocalKey::generate("wpk-key").unwrap();
    let doc = json!({
        "id": "restart-edge", "version": 1, "title": "Restart at the edge",
        "match": {"signals": ["deployment_unhealthy"], "resources": ["deployment/*"]},
        "steps": [{"adapter": "sim", "action": "restart"}, {"adapter": "sim", "action": "scale", "args": {"replicas": 3}}],
        "verify": {"healthy": true}
    });
    let w = parse(&doc.to_string(), false).unwrap();
    let bytes = StoredWpk::signing_bytes(&w, &tenant, "ada", "2026-12-01T00:00:00Z");
    let form =
        WpkForm::of(&StoredWpk::signed(&w, &bytes, &wpk_key.sign(&bytes).unwrap(), "ada", "2026-12-01T00:00:00Z"));
    let order = TriggerOrder {
        node_id: "store-1".into(),
        trigger_id: "trg-bench".into(),
        wpk: WpkRef { id: form.id.clone(), version: 1, sha256: form.sha256.clone() },
        params: json!({"resource": "deployment/payments"}).as_object().unwrap().clone(),
        kid: "trigger-key".into(),
        nonce: "n-1".into(),
        issued_at: Utc::now(),
        expires_at: Utc::now() + Duration::hours(1),
        seq: 9,
    };
    let sealed_order = sealed_bytes(Purpose::EdgeTrigger, &tenant, &order);
    let delivery = Delivery {
        trigger_id: "trg-bench".into(),
        seq: 9,
        order: Sealed::new(&sealed_order, &hub.sign(&sealed_order).unwrap()),
        wpk: form,
    };
    let pinned = HubKeys::pin([HubKey {
        kid: "trigger-key".into(),
        public_key_pem: public_key_pem(&hub.public_key_der()),
        not_before: None,
        not_after: None,
    }])
    .unwrap();
    let wpk_keys = wpk_key.trusted();
    let memory = Fresh(BTreeSet::new());
    let view = NodeView {
        tenant: &tenant,
        node_id: "store-1",
        hub_keys: &pinned,
        wpk_keys: &wpk_keys,
        last_seq: 8,
        halted: false,
        now: Utc::now(),
    };
    assert!(check_delivery(&delivery, &view, &memory).is_ok());
    let mut g = c.benchmark_group("edge");
    g.throughput(Throughput::Elements(1));
    g.bench_function("check_delivery (two ECDSA P-256 verifications)", |b| {
        b.iter(|| check_delivery(std::hint::black_box(&delivery), &view, &memory).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
