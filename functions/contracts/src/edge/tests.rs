//! Every refusal of [`check_delivery`], key rotation, and the result's signature.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Duration, TimeZone};
use serde_json::json;

use super::*;
use crate::signing::{LocalKey, sealed_bytes};
use crate::wpk::{StoredWpk, parse};

fn t(raw: &str) -> TenantId {
    TenantId::from_record(raw).unwrap()
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 4, 12, 0, 0).unwrap()
}

struct World {
    hub: LocalKey,
    wpk_key: LocalKey,
    pinned: HubKeys,
    wpk_keys: TrustedKeys,
}

fn hub_key(key: &LocalKey, from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> HubKey {
    HubKey {
        kid: key.id().to_owned(),
        public_key_pem: public_key_pem(&key.public_key_der()),
        not_before: from,
        not_after: to,
    }
}

fn world() -> World {
    let hub = LocalKey::generate("trigger-1").unwrap();
    let wpk_key = LocalKey::generate("wpk-1").unwrap();
    let pinned = HubKeys::pin([hub_key(&hub, None, None)]).unwrap();
    let wpk_keys = wpk_key.trusted();
    World { hub, wpk_key, pinned, wpk_keys }
}

fn wpk_doc(version: u32) -> String {
    json!({
        "id": "restart-edge", "version": version, "title": "Restart a deployment at the edge",
        "match": {"signals": ["deployment_unhealthy"], "resources": ["deployment/*"]},
        "steps": [{"adapter": "sim", "action": "restart"}], "verify": {"healthy": true}
    })
    .to_string()
}

fn signed_wpk(key: &LocalKey, tenant: &TenantId, version: u32) -> WpkForm {
    let wpk = parse(&wpk_doc(version), false).unwrap();
    let bytes = StoredWpk::signing_bytes(&wpk, tenant, "alice", "2026-12-01T00:00:00Z");
    let sig = key.sign(&bytes).unwrap();
    WpkForm::of(&StoredWpk::signed(&wpk, &bytes, &sig, "alice", "2026-12-01T00:00:00Z"))
}

fn order(w: &World, wpk: &WpkForm, seq: u64) -> TriggerOrder {
    TriggerOrder {
        node_id: "node-a".into(),
        trigger_id: "trg-1".into(),
        wpk: WpkRef { id: wpk.id.clone(), version: wpk.version, sha256: wpk.sha256.clone() },
        params: json!({"resource": "deployment/payments"}).as_object().unwrap().clone(),
        kid: w.hub.id().to_owned(),
        nonce: format!("nonce-{seq}"),
        issued_at: now() - Duration::seconds(10),
        expires_at: now() + Duration::seconds(600),
        seq,
    }
}

fn seal(key: &LocalKey, tenant: &TenantId, o: &TriggerOrder) -> Sealed {
    let bytes = sealed_bytes(Purpose::EdgeTrigger, tenant, o);
    Sealed::new(&bytes, &key.sign(&bytes).unwrap())
}

fn deliver(key: &LocalKey, tenant: &TenantId, o: &TriggerOrder, wpk: &WpkForm) -> Delivery {
    Delivery { trigger_id: o.trigger_id.clone(), seq: o.seq, order: seal(key, tenant, o), wpk: wpk.clone() }
}

#[derive(Default)]
struct Memory {
    nonces: BTreeSet<String>,
    ran: BTreeMap<String, u32>,
}

impl NodeMemory for Memory {
    fn seen_nonce(&self, nonce: &str) -> bool {
        self.nonces.contains(nonce)
    }
    fn highest_version(&self, wpk_id: &str) -> Option<u32> {
        self.ran.get(wpk_id).copied()
    }
}

fn view<'a>(w: &'a World, tenant: &'a TenantId) -> NodeView<'a> {
    NodeView {
        tenant,
        node_id: "node-a",
        hub_keys: &w.pinned,
        wpk_keys: &w.wpk_keys,
        last_seq: 4,
        halted: false,
        now: now(),
    }
}

fn refusal(d: &Delivery, v: &NodeView<'_>, m: &Memory) -> Refusal {
    match check_delivery(d, v, m) {
        Ok(_) => panic!("accepted what should be refused"),
        Err(r) => r,
    }
}

#[test]
fn a_genuine_delivery_is_accepted_with_its_order_and_wpk_verified() {
    let (w, acme) = (world(), t("acme"));
    let wpk = signed_wpk(&w.wpk_key, &acme, 2);
    let d = deliver(&w.hub, &acme, &order(&w, &wpk, 5), &wpk);
    let ok = check_delivery(&d, &view(&w, &acme), &Memory::default()).unwrap();
    assert_eq!((ok.order.seq, ok.order.resource()), (5, Some("deployment/payments")));
    assert_eq!((ok.wpk.wpk().id.as_str(), ok.wpk.wpk().version), ("restart-edge", 2));
}

#[test]
fn forged_orders_are_refused_for_their_key_or_signature() {
    let (w, acme) = (world(), t("acme"));
    let wpk = signed_wpk(&w.wpk_key, &acme, 1);
    let o = order(&w, &wpk, 5);
    let m = Memory::default();
    // Signed by a key nobody pinned, even under the trusted key's name.
    let rogue = LocalKey::generate("trigger-1").unwrap();
    assert!(matches!(refusal(&deliver(&rogue, &acme, &o, &wpk), &view(&w, &acme), &m), Refusal::BadSignature(_)));
    let stranger = LocalKey::generate("trigger-9").unwrap();
    assert_eq!(
        refusal(&deliver(&stranger, &acme, &o, &wpk), &view(&w, &acme), &m),
        Refusal::UnknownKey("trigger-9".into())
    );
    // A genuine order with its bytes changed (params or node rewritten).
    let mut d = deliver(&w.hub, &acme, &o, &wpk);
    d.order.signed = d.order.signed.replace("deployment/payments", "deployment/ledger");
    assert!(matches!(refusal(&d, &view(&w, &acme), &m), Refusal::BadSignature(_)));
    // The trigger key's signature over another purpose's bytes (a WPK-shaped statement).
    let bytes = sealed_bytes(Purpose::EdgeResult, &acme, &o);
    let d = Delivery { order: Sealed::new(&bytes, &w.hub.sign(&bytes).unwrap()), ..deliver(&w.hub, &acme, &o, &wpk) };
    assert!(matches!(refusal(&d, &view(&w, &acme), &m), Refusal::BadSignature(_)));
}

#[test]
fn an_order_for_another_tenant_or_node_is_refused() {
    let (w, acme, beta) = (world(), t("acme"), t("beta"));
    let wpk = signed_wpk(&w.wpk_key, &beta, 1);
    let m = Memory::default();
    let d = deliver(&w.hub, &beta, &order(&w, &wpk, 5), &wpk);
    assert_eq!(refusal(&d, &view(&w, &acme), &m), Refusal::WrongTenant("beta".into()));
    let wpk = signed_wpk(&w.wpk_key, &acme, 1);
    let mut o = order(&w, &wpk, 5);
    o.node_id = "node-b".into();
    assert_eq!(refusal(&deliver(&w.hub, &acme, &o, &wpk), &view(&w, &acme), &m), Refusal::WrongNode("node-b".into()));
}

#[test]
fn expired_future_and_replayed_orders_are_refused() {
    let (w, acme) = (world(), t("acme"));
    let wpk = signed_wpk(&w.wpk_key, &acme, 1);
    let mut m = Memory::default();
    let mut o = order(&w, &wpk, 5);
    o.expires_at = now() - Duration::seconds(1);
    assert!(matches!(refusal(&deliver(&w.hub, &acme, &o, &wpk), &view(&w, &acme), &m), Refusal::Expired(_)));
    let mut o = order(&w, &wpk, 5);
    o.issued_at = now() + Duration::seconds(CLOCK_SKEW_SECONDS + 60);
    assert!(matches!(refusal(&deliver(&w.hub, &acme, &o, &wpk), &view(&w, &acme), &m), Refusal::Malformed(_)));
    // A seq at or below the last accepted one: an old order again, or a hub record moved back.
    let o = order(&w, &wpk, 4);
    assert!(matches!(refusal(&deliver(&w.hub, &acme, &o, &wpk), &view(&w, &acme), &m), Refusal::Replayed(_)));
    let o = order(&w, &wpk, 7);
    m.nonces.insert(o.nonce.clone());
    assert!(matches!(refusal(&deliver(&w.hub, &acme, &o, &wpk), &view(&w, &acme), &m), Refusal::Replayed(_)));
    // The hub's index moved (served under another seq or trigger than it was signed as).
    let o = order(&w, &wpk, 8);
    let mut d = deliver(&w.hub, &acme, &o, &wpk);
    d.seq = 9;
    assert!(matches!(refusal(&d, &view(&w, &acme), &Memory::default()), Refusal::Malformed(_)));
}

#[test]
fn nothing_runs_while_the_tenant_is_halted() {
    let (w, acme) = (world(), t("acme"));
    let wpk = signed_wpk(&w.wpk_key, &acme, 1);
    let d = deliver(&w.hub, &acme, &order(&w, &wpk, 5), &wpk);
    let halted = NodeView { halted: true, ..view(&w, &acme) };
    assert_eq!(refusal(&d, &halted, &Memory::default()), Refusal::Halted);
}

#[test]
fn the_wpk_must_be_the_pinned_bytes_and_carry_its_own_valid_signature() {
    let (w, acme, beta) = (world(), t("acme"), t("beta"));
    let m = Memory::default();
    let wpk = signed_wpk(&w.wpk_key, &acme, 1);
    let o = order(&w, &wpk, 5);
    // Other bytes than the order pins.
    let other = signed_wpk(&w.wpk_key, &acme, 1);
    let mut swapped = wpk.clone();
    swapped.doc = other.doc.replace("Restart a deployment", "Delete a deployment");
    swapped.sha256 = sha256_hex(swapped.doc.as_bytes());
    assert!(matches!(refusal(&deliver(&w.hub, &acme, &o, &swapped), &view(&w, &acme), &m), Refusal::WpkMismatch(_)));
    // The pinned bytes, but signed by a key that is not a WPK key (the order pins its sha256).
    let rogue = LocalKey::generate("wpk-1").unwrap();
    let forged = signed_wpk(&rogue, &acme, 1);
    let o2 = order(&w, &forged, 5);
    assert!(matches!(refusal(&deliver(&w.hub, &acme, &o2, &forged), &view(&w, &acme), &m), Refusal::WpkSignature(_)));
    // A WPK signed for another tenant, ordered for this one.
    let theirs = signed_wpk(&w.wpk_key, &beta, 1);
    let o3 = order(&w, &theirs, 5);
    assert!(matches!(refusal(&deliver(&w.hub, &acme, &o3, &theirs), &view(&w, &acme), &m), Refusal::WpkSignature(_)));
    // Another version than ordered.
    let v2 = signed_wpk(&w.wpk_key, &acme, 2);
    assert!(matches!(refusal(&deliver(&w.hub, &acme, &o, &v2), &view(&w, &acme), &m), Refusal::WpkMismatch(_)));
}

#[test]
fn an_older_version_than_one_already_run_is_a_downgrade() {
    let (w, acme) = (world(), t("acme"));
    let wpk = signed_wpk(&w.wpk_key, &acme, 1);
    let mut m = Memory::default();
    m.ran.insert("restart-edge".into(), 2);
    let d = deliver(&w.hub, &acme, &order(&w, &wpk, 5), &wpk);
    assert_eq!(refusal(&d, &view(&w, &acme), &m), Refusal::Downgrade { id: "restart-edge".into(), version: 1, ran: 2 });
    m.ran.insert("restart-edge".into(), 1);
    assert!(check_delivery(&d, &view(&w, &acme), &m).is_ok(), "the same version again is not a downgrade");
}

#[test]
fn the_resource_must_be_named_and_one_the_wpk_may_act_on() {
    let (w, acme) = (world(), t("acme"));
    let wpk = signed_wpk(&w.wpk_key, &acme, 1);
    let m = Memory::default();
    let mut o = order(&w, &wpk, 5);
    o.params = json!({"resource": "statefulset/db"}).as_object().unwrap().clone();
    assert!(matches!(refusal(&deliver(&w.hub, &acme, &o, &wpk), &view(&w, &acme), &m), Refusal::Malformed(_)));
    o.params = Map::new();
    assert!(matches!(refusal(&deliver(&w.hub, &acme, &o, &wpk), &view(&w, &acme), &m), Refusal::Malformed(_)));
}

fn announce(by: &LocalKey, new: &LocalKey, from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> Sealed {
    let ann = KeyAnnouncement {
        kid: new.id().to_owned(),
        public_key_pem: public_key_pem(&new.public_key_der()),
        not_before: from,
        not_after: to,
    };
    let bytes = ann.signing_bytes();
    Sealed::new(&bytes, &by.sign(&bytes).unwrap())
}

#[test]
fn rotation_with_overlapping_windows_hands_over_from_the_old_key_to_the_new() {
    let acme = t("acme");
    let mut w = world();
    let old = LocalKey::generate("trigger-1").unwrap();
    // The old key is valid until an hour from now; the new one from a minute ago, open-ended.
    w.pinned = HubKeys::pin([hub_key(&old, None, Some(now() + Duration::hours(1)))]).unwrap();
    w.hub = old;
    let new = LocalKey::generate("trigger-2").unwrap();
    let ann = announce(&w.hub, &new, Some(now() - Duration::minutes(1)), None);
    assert_eq!(w.pinned.accept(&ann, now()), Ok(true));
    assert_eq!(w.pinned.accept(&ann, now()), Ok(false), "announcing a pinned key again changes nothing");
    assert_eq!(w.pinned.kids().collect::<Vec<_>>(), ["trigger-1", "trigger-2"]);
    let wpk = signed_wpk(&w.wpk_key, &acme, 1);
    let m = Memory::default();
    // During the overlap both keys sign acceptable orders.
    let mut by_new = order(&w, &wpk, 5);
    by_new.kid = "trigger-2".into();
    assert!(check_delivery(&deliver(&new, &acme, &by_new, &wpk), &view(&w, &acme), &m).is_ok());
    let by_old = order(&w, &wpk, 5);
    assert!(check_delivery(&deliver(&w.hub, &acme, &by_old, &wpk), &view(&w, &acme), &m).is_ok());
    // After the old key's window only the new one does.
    let later = NodeView { now: now() + Duration::hours(2), ..view(&w, &acme) };
    let mut late_old = by_old.clone();
    late_old.expires_at = now() + Duration::hours(3);
    assert_eq!(refusal(&deliver(&w.hub, &acme, &late_old, &wpk), &later, &m), Refusal::KeyNotValid("trigger-1".into()));
    let mut late_new = by_new.clone();
    late_new.expires_at = now() + Duration::hours(3);
    assert!(check_delivery(&deliver(&new, &acme, &late_new, &wpk), &later, &m).is_ok());
}

#[test]
fn an_announcement_signed_by_an_untrusted_or_expired_key_is_refused() {
    let mut w = world();
    let stranger = LocalKey::generate("trigger-x").unwrap();
    let new = LocalKey::generate("trigger-2").unwrap();
    assert_eq!(
        w.pinned.accept(&announce(&stranger, &new, None, None), now()),
        Err(KeyError::UnknownSigner("trigger-x".into()))
    );
    // A stranger's key posing under the pinned key's name.
    let impostor = LocalKey::generate("trigger-1").unwrap();
    assert!(matches!(w.pinned.accept(&announce(&impostor, &new, None, None), now()), Err(KeyError::Invalid(_))));
    // The pinned key, but past its window.
    let expired = HubKeys::pin([hub_key(&w.hub, None, Some(now() - Duration::seconds(1)))]).unwrap();
    let mut e = expired.clone();
    assert_eq!(e.accept(&announce(&w.hub, &new, None, None), now()), Err(KeyError::SignerNotValid("trigger-1".into())));
    // A tenant-bound statement is not an announcement, even from a trusted key.
    let ann = KeyAnnouncement {
        kid: "trigger-2".into(),
        public_key_pem: public_key_pem(&new.public_key_der()),
        not_before: None,
        not_after: None,
    };
    let bytes = sealed_bytes(Purpose::EdgeKey, &t("acme"), &ann);
    let tenant_bound = Sealed::new(&bytes, &w.hub.sign(&bytes).unwrap());
    assert!(matches!(w.pinned.accept(&tenant_bound, now()), Err(KeyError::Invalid(_))));
    // Another public key under a pinned kid.
    let twin = LocalKey::generate("trigger-1").unwrap();
    assert_eq!(
        w.pinned.accept(&announce(&w.hub, &twin, None, None), now()),
        Err(KeyError::Conflicting { kid: "trigger-1".into() })
    );
    assert_eq!(w.pinned.len(), 1, "nothing was pinned");
}

#[test]
fn a_result_verifies_only_with_the_nodes_key_for_its_tenant() {
    let node = LocalKey::generate("node-a-1").unwrap();
    let acme = t("acme");
    let result = EdgeResult {
        trigger_id: "trg-1".into(),
        node_id: "node-a".into(),
        seq: 5,
        status: ResultStatus::Succeeded,
        reason: "acted and verified".into(),
        refusal: None,
        wpk: None,
        steps: vec![StepOutcome {
            step: 0,
            adapter: "sim".into(),
            action: "restart".into(),
            target: "deployment/payments".into(),
            before_sha256: state_sha256(&json!({"healthy": false})),
            after_sha256: state_sha256(&json!({"healthy": true})),
            reused: false,
            error: None,
        }],
        finished_at: now(),
    };
    let bytes = sealed_bytes(Purpose::EdgeResult, &acme, &result);
    let sealed = Sealed::new(&bytes, &node.sign(&bytes).unwrap());
    let opened: Verified<EdgeResult> = sealed.open(Purpose::EdgeResult, &acme, &node.trusted()).unwrap();
    assert_eq!(*opened, result);
    let other = LocalKey::generate("node-a-1").unwrap();
    assert!(sealed.open::<EdgeResult>(Purpose::EdgeResult, &acme, &other.trusted()).is_err());
    assert!(sealed.open::<EdgeResult>(Purpose::EdgeResult, &t("beta"), &node.trusted()).is_err());
    assert_ne!(result.steps[0].before_sha256, result.steps[0].after_sha256);
}

#[test]
fn only_uncompressed_p256_public_keys_in_pem_are_accepted() {
    let key = LocalKey::generate("k").unwrap();
    let pem = public_key_pem(&key.public_key_der());
    assert_eq!(p256_spki_from_pem(&pem).unwrap(), key.public_key_der());
    assert!(p256_spki_from_pem("not a key").is_err());
    assert!(p256_spki_from_pem(&pem.replace("PUBLIC KEY", "CERTIFICATE")).is_err());
    let mut der = key.public_key_der();
    der.truncate(60);
    assert!(p256_spki_from_pem(&public_key_pem(&der)).is_err());
    assert_eq!(key_fingerprint("node", &key.public_key_der()).len(), "node-".len() + 16);
}

#[test]
fn node_ids_fit_keys_and_paths() {
    for ok in ["node-a", "edge.store-42", "a"] {
        assert!(is_node_id(ok), "{ok}");
    }
    for bad in ["", "Node", "-a", "a#b", "a/b", &"a".repeat(65)] {
        assert!(!is_node_id(bad), "{bad}");
    }
}
