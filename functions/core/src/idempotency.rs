//! `Idempotency-Key`: a client that lost a response (an API Gateway 5xx or timeout, a dropped
//! connection) retries a `POST`, `PUT`, `PATCH` or `DELETE` with the same key and gets the first
//! answer back instead of a second effect: one run started, one approval recorded, one
//! suggestion step taken.
//!
//! - The key is 1–255 visible ASCII characters; anything else is 400.
//! - It is scoped to the caller's credential: the record is found by SHA-256 of the
//!   `Authorization` header and the key, so nobody without that exact token can reach another
//!   caller's answer, and no tenant claim is trusted before the function verifies the token.
//! - It is bound to the request: SHA-256 of method, path, query and body. The same key on a
//!   different request is 422 and runs nothing.
//! - While the first request runs, a retry gets 409 with `Retry-After: 1` (the claim lasts until
//!   the invocation's deadline, so a crashed instance does not hold a key for longer).
//! - Answers kept: successes (below 400). A refusal or a server error deletes the claim, so a
//!   rejected request still leaves nothing behind and its retry runs again (it wrote nothing).
//!   Bodies over 300 KiB are not kept: their retry is 409 saying so. A replay carries
//!   `Idempotent-Replayed: true`.
//! - Records live 24 hours in the limits table (`pk` = `idem#<sha256>`, TTL `expires_at`), which
//!   every API function may read, update and (for this) delete.
//!
//! Requests without the header are untouched.

use std::collections::HashMap;
use std::sync::Mutex;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use lambda_http::{Body, Request, RequestExt, Response};
use naksha_contracts::signing::sha256_hex;

use crate::aws::describe_error;
use crate::ddb::{condition_failed, get_n, get_s, n, s};
use crate::problem::Problem;

pub const HEADER: &str = "idempotency-key";
pub const REPLAYED_HEADER: &str = "idempotent-replayed";
/// How long an answer is kept.
pub const TTL_SECS: i64 = 24 * 3600;
/// Largest body kept for a replay.
pub const MAX_KEPT_BODY: usize = 300 * 1024;
/// Kept bodies from this size up are stored deflated (`enc = "deflate"`): answers that list ids
/// (500 event ids of one request share all but three hex digits) shrink about sixfold, and
/// DynamoDB bills a write unit per started KB.
const DEFLATE_FROM: usize = 1024;
/// Longest a claim lasts when the invocation has no deadline (Lambda's own maximum).
const MAX_LEASE_MS: i64 = 15 * 60 * 1000;

/// An answer kept for replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kept {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
    pub text: bool,
    /// The body was too large to keep: a retry is told so.
    pub dropped: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Pending { lease_until_ms: i64 },
    Done(Kept),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Record {
    fingerprint: String,
    expires_at: i64,
    state: State,
}

/// What to do with a keyed request, given the record found for its key.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Decision {
    Claim,
    Replay(Kept),
    InProgress,
    Mismatch,
}

fn decide(existing: Option<&Record>, fingerprint: &str, now_ms: i64) -> Decision {
    let Some(r) = existing.filter(|r| r.expires_at * 1000 > now_ms) else { return Decision::Claim };
    if r.fingerprint != fingerprint {
        return Decision::Mismatch;
    }
    match &r.state {
        State::Done(kept) => Decision::Replay(kept.clone()),
        State::Pending { lease_until_ms } if *lease_until_ms > now_ms => Decision::InProgress,
        State::Pending { .. } => Decision::Claim,
    }
}

/// A claimed key: the request runs, then [`Idempotency::finish`] keeps or releases it.
#[derive(Debug)]
pub struct Claim {
    pk: String,
    fingerprint: String,
}

/// What a keyed request does next.
#[derive(Debug)]
pub enum Begin {
    Run(Claim),
    Replay(Response<Body>),
}

#[derive(Debug)]
enum Store {
    Dynamo { db: aws_sdk_dynamodb::Client, table: String },
    Memory(Mutex<HashMap<String, Record>>),
}

/// The idempotency records of one function instance.
#[derive(Debug)]
pub struct Idempotency {
    store: Store,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

fn key_of(req: &Request) -> Result<Option<&str>, Problem> {
    let Some(value) = req.headers().get(HEADER) else { return Ok(None) };
    let key = value
        .to_str()
        .ok()
        .filter(|k| (1..=255).contains(&k.len()) && k.bytes().all(|b| (0x21..=0x7e).contains(&b)))
        .ok_or_else(|| Problem::bad_request("Idempotency-Key must be 1 to 255 visible ASCII characters"))?;
    Ok(Some(key))
}

/// SHA-256 over method, path, query and body, each length-prefixed.
fn fingerprint(req: &Request) -> String {
    let mut buf = Vec::with_capacity(req.body().len() + 256);
    for part in [
        req.method().as_str().as_bytes(),
        req.uri().path().as_bytes(),
        req.uri().query().unwrap_or("").as_bytes(),
        req.body().as_ref(),
    ] {
        buf.extend_from_slice(&(part.len() as u64).to_be_bytes());
        buf.extend_from_slice(part);
    }
    sha256_hex(&buf)
}

fn keeps(status: u16) -> bool {
    status < 400
}

fn kept_of(response: &Response<Body>) -> Kept {
    let (body, text) = match response.body() {
        Body::Empty => (Vec::new(), true),
        Body::Text(t) => (t.as_bytes().to_vec(), true),
        Body::Binary(b) => (b.clone(), false),
        _ => (Vec::new(), false),
    };
    let content_type =
        response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("application/json").to_owned();
    let dropped = body.len() > MAX_KEPT_BODY;
    Kept {
        status: response.status().as_u16(),
        content_type,
        body: if dropped { Vec::new() } else { body },
        text,
        dropped,
    }
}

/// A kept body as stored: deflated when that pays, with the encoding to name. (Public so that
/// `make cost` counts what is really stored.)
pub fn stored_body(body: &[u8]) -> (Vec<u8>, Option<&'static str>) {
    if body.len() < DEFLATE_FROM {
        return (body.to_vec(), None);
    }
    let packed = miniz_oxide::deflate::compress_to_vec(body, 6);
    if packed.len() < body.len() { (packed, Some("deflate")) } else { (body.to_vec(), None) }
}

/// A stored body back as kept; `None` when it does not inflate within [`MAX_KEPT_BODY`] (the
/// item was not written by this code: anyone who can write the table can write anything).
fn kept_body(stored: &[u8], encoding: Option<&str>) -> Option<Vec<u8>> {
    match encoding {
        None => Some(stored.to_vec()),
        Some("deflate") => miniz_oxide::inflate::decompress_to_vec_with_limit(stored, MAX_KEPT_BODY).ok(),
        Some(_) => None,
    }
}

fn replay(kept: Kept) -> Response<Body> {
    if kept.dropped {
        return Problem::conflict(
            "a request with this Idempotency-Key already completed; its answer was too large to keep, so read the result instead",
        )
        .into_response();
    }
    let body = match (kept.text, String::from_utf8(kept.body)) {
        (_, Ok(t)) if t.is_empty() => Body::Empty,
        (true, Ok(t)) => Body::Text(t),
        (_, Ok(t)) => Body::Binary(t.into_bytes()),
        (_, Err(e)) => Body::Binary(e.into_bytes()),
    };
    Response::builder()
        .status(kept.status)
        .header("content-type", kept.content_type)
        .header("cache-control", "no-store")
        .header(REPLAYED_HEADER, "true")
        .body(body)
        .unwrap_or_else(|_| Problem::internal("a kept answer could not be rebuilt").into_response())
}

fn in_progress() -> Problem {
    let mut p = Problem::conflict("a request with this Idempotency-Key is still running; retry shortly")
        .with_extension("retry_after", serde_json::json!(1));
    p.headers.push(("retry-after", "1".to_owned()));
    p
}

fn mismatch() -> Problem {
    Problem::new(
        422,
        "idempotency-key-reused",
        "Idempotency-Key reused",
        "this Idempotency-Key was used for a different request (method, path, query or body); use a new key",
    )
}

impl Idempotency {
    pub fn dynamo(db: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self { store: Store::Dynamo { db, table: table.into() } }
    }

    pub fn memory() -> Self {
        Self { store: Store::Memory(Mutex::default()) }
    }

    /// `None` when the request carries no key, is not a write, or has no credential (it then
    /// runs as usual and the function answers 401 itself). Otherwise: run it under a claim,
    /// replay the kept answer, or a problem (400, 409, 422, 503).
    pub async fn begin(&self, req: &Request) -> Result<Option<Begin>, Problem> {
        if !matches!(req.method().as_str(), "POST" | "PUT" | "PATCH" | "DELETE") {
            return Ok(None);
        }
        let Some(key) = key_of(req)? else { return Ok(None) };
        let Some(auth) = req.headers().get("authorization") else { return Ok(None) };
        let mut scope = auth.as_bytes().to_vec();
        scope.push(0);
        scope.extend_from_slice(key.as_bytes());
        let pk = format!("idem#{}", sha256_hex(&scope));
        let fp = fingerprint(req);
        let now = now_ms();
        let deadline = req.lambda_context_ref().map_or(0, |c| c.deadline as i64);
        let lease_until_ms = if deadline > now { deadline.min(now + MAX_LEASE_MS) } else { now + MAX_LEASE_MS };
        let claim = Record {
            fingerprint: fp.clone(),
            expires_at: now / 1000 + TTL_SECS,
            state: State::Pending { lease_until_ms },
        };
        let decision = match &self.store {
            Store::Memory(records) => {
                let mut records = records.lock().map_err(|_| Problem::internal("idempotency records poisoned"))?;
                let d = decide(records.get(&pk), &fp, now);
                if d == Decision::Claim {
                    records.insert(pk.clone(), claim);
                }
                d
            }
            Store::Dynamo { db, table } => dynamo_claim(db, table, &pk, &claim, lease_until_ms, now).await?,
        };
        match decision {
            Decision::Claim => Ok(Some(Begin::Run(Claim { pk, fingerprint: fp }))),
            Decision::Replay(kept) => Ok(Some(Begin::Replay(replay(kept)))),
            Decision::InProgress => Err(in_progress()),
            Decision::Mismatch => Err(mismatch()),
        }
    }

    /// Keep a success for replays; a refusal or an error deletes the claim.
    /// A failure here is logged: the answer still goes out.
    pub async fn finish(&self, claim: Claim, response: &Response<Body>) {
        let status = response.status().as_u16();
        let kept = keeps(status).then(|| kept_of(response));
        match &self.store {
            Store::Memory(records) => {
                if let Ok(mut records) = records.lock()
                    && let Some(r) = records.get_mut(&claim.pk)
                    && r.fingerprint == claim.fingerprint
                {
                    match kept {
                        Some(k) => r.state = State::Done(k),
                        None => {
                            records.remove(&claim.pk);
                        }
                    }
                }
            }
            Store::Dynamo { db, table } => {
                let outcome = match kept {
                    Some(k) => {
                        let (body, encoding) = stored_body(&k.body);
                        let (set_enc, enc) = match encoding {
                            Some(e) => (", enc = :enc", Some(s(e))),
                            None => (" REMOVE enc", None),
                        };
                        db.update_item()
                            .table_name(table)
                            .key("pk", s(&claim.pk))
                            .condition_expression("fp = :fp")
                            .update_expression(format!(
                                "SET st = :done, code = :code, ctype = :ctype, body = :body, txt = :txt, dropped = :dropped{set_enc}"
                            ))
                            .set_expression_attribute_values(Some(
                                [
                                    (":fp".to_owned(), s(&claim.fingerprint)),
                                    (":done".to_owned(), s("done")),
                                    (":code".to_owned(), n(k.status)),
                                    (":ctype".to_owned(), s(&k.content_type)),
                                    (":body".to_owned(), AttributeValue::B(Blob::new(body))),
                                    (":txt".to_owned(), AttributeValue::Bool(k.text)),
                                    (":dropped".to_owned(), AttributeValue::Bool(k.dropped)),
                                ]
                                .into_iter()
                                .chain(enc.map(|e| (":enc".to_owned(), e)))
                                .collect(),
                            ))
                            .send()
                            .await
                            .map(|_| ())
                            .map_err(|e| describe_error(&e))
                    }
                    None => db
                        .delete_item()
                        .table_name(table)
                        .key("pk", s(&claim.pk))
                        .condition_expression("fp = :fp AND st = :pending")
                        .expression_attribute_values(":fp", s(&claim.fingerprint))
                        .expression_attribute_values(":pending", s("pending"))
                        .send()
                        .await
                        .map(|_| ())
                        .map_err(|e| describe_error(&e)),
                };
                if let Err(cause) = outcome {
                    tracing::warn!(cause = %cause, status, "idempotency record not updated");
                }
            }
        }
    }
}

/// A token naming one claim attempt: 16 random bytes, hex.
fn claim_token() -> String {
    let mut bytes = [0u8; 16];
    if aws_lc_rs::rand::fill(&mut bytes).is_err() {
        // Without randomness the token is the time: still unique to this attempt in practice.
        bytes[..8].copy_from_slice(&now_ms().to_be_bytes());
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One conditional write takes the key when it is free (absent, expired, or a pending claim
/// whose lease ran out); otherwise one consistent read says why not. The claim carries a token
/// of its own: when the write landed but its answer was lost (a reset connection) and the SDK
/// sent it again, the retry fails its condition on our own claim, and the token says so (`make
/// load` found a request answered 409 "still running" by itself, for the whole lease).
async fn dynamo_claim(
    db: &aws_sdk_dynamodb::Client,
    table: &str,
    pk: &str,
    claim: &Record,
    lease_until_ms: i64,
    now: i64,
) -> Result<Decision, Problem> {
    dynamo_claim_as(db, table, pk, &claim.fingerprint, lease_until_ms, now, &claim_token()).await
}

/// Whether a claim attempt named `token` holds the key: `Ok(true)` when it took it (or already
/// had it), `Ok(false)` when another holds it or it is done. Public for the end-to-end test that
/// sends one attempt twice, as the SDK does after a lost answer.
pub async fn dynamo_claim_token(
    db: &aws_sdk_dynamodb::Client,
    table: &str,
    pk: &str,
    fingerprint: &str,
    token: &str,
) -> Result<bool, Problem> {
    let now = now_ms();
    Ok(dynamo_claim_as(db, table, pk, fingerprint, now + 60_000, now, token).await? == Decision::Claim)
}

async fn dynamo_claim_as(
    db: &aws_sdk_dynamodb::Client,
    table: &str,
    pk: &str,
    fingerprint: &str,
    lease_until_ms: i64,
    now: i64,
    token: &str,
) -> Result<Decision, Problem> {
    let claim = Record {
        fingerprint: fingerprint.to_owned(),
        expires_at: now / 1000 + TTL_SECS,
        state: State::Pending { lease_until_ms },
    };
    let taken = db
        .update_item()
        .table_name(table)
        .key("pk", s(pk))
        .update_expression(
            "SET fp = :fp, st = :pending, lease = :lease, expires_at = :exp, claim = :claim REMOVE code, ctype, body, txt, dropped",
        )
        .expression_attribute_values(":claim", s(token))
        .condition_expression(
            "attribute_not_exists(pk) OR expires_at < :now_s OR (st = :pending AND fp = :fp AND lease < :now_ms)",
        )
        .expression_attribute_values(":fp", s(&claim.fingerprint))
        .expression_attribute_values(":pending", s("pending"))
        .expression_attribute_values(":lease", n(lease_until_ms))
        .expression_attribute_values(":exp", n(claim.expires_at))
        .expression_attribute_values(":now_s", n(now / 1000))
        .expression_attribute_values(":now_ms", n(now))
        .send()
        .await;
    match taken {
        Ok(_) => return Ok(Decision::Claim),
        Err(e) if condition_failed(&e) => {}
        Err(e) => {
            // The write may have landed with its answer lost: release our claim if it did, so the
            // client's retry is not told "still running" for the whole lease (best effort).
            let _ = db
                .delete_item()
                .table_name(table)
                .key("pk", s(pk))
                .condition_expression("claim = :claim AND st = :pending")
                .expression_attribute_values(":claim", s(token))
                .expression_attribute_values(":pending", s("pending"))
                .send()
                .await;
            return Err(Problem::unavailable("the idempotency store cannot be reached; retry with the same key")
                .with_internal(describe_error(&e)));
        }
    }
    let item = db.get_item().table_name(table).key("pk", s(pk)).consistent_read(true).send().await.map_err(|e| {
        Problem::unavailable("the idempotency store cannot be reached; retry with the same key")
            .with_internal(describe_error(&e))
    })?;
    if let Some(i) = item.item()
        && get_s(i, "st") == Some("pending")
        && get_s(i, "claim") == Some(token)
        && get_s(i, "fp") == Some(claim.fingerprint.as_str())
    {
        return Ok(Decision::Claim);
    }
    let record = item.item().map(|i| {
        let state = if get_s(i, "st") == Some("done") {
            let stored = i.get("body").and_then(|b| b.as_b().ok()).map(|b| b.as_ref()).unwrap_or_default();
            // A body that cannot be read back is answered as one too large to keep (409).
            let body = kept_body(stored, get_s(i, "enc"));
            State::Done(Kept {
                status: get_n(i, "code").unwrap_or(500),
                content_type: get_s(i, "ctype").unwrap_or("application/json").to_owned(),
                dropped: body.is_none() || i.get("dropped").and_then(|b| b.as_bool().ok()).copied().unwrap_or(false),
                body: body.unwrap_or_default(),
                text: i.get("txt").and_then(|b| b.as_bool().ok()).copied().unwrap_or(true),
            })
        } else {
            State::Pending { lease_until_ms: get_n(i, "lease").unwrap_or(0) }
        };
        Record {
            fingerprint: get_s(i, "fp").unwrap_or_default().to_owned(),
            expires_at: get_n(i, "expires_at").unwrap_or(0),
            state,
        }
    });
    // The condition failed, so the key was not free a moment ago: a record that now looks free
    // changed under us; the client is told to retry rather than the request run twice.
    Ok(match decide(record.as_ref(), &claim.fingerprint, now) {
        Decision::Claim => Decision::InProgress,
        d => d,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    fn req(method: &str, key: Option<&str>, auth: Option<&str>, body: &str) -> Request {
        let mut b =
            http::Request::builder().method(method).uri("https://api.example/policies/suggestions/s1/advance?x=1");
        if let Some(k) = key {
            b = b.header(HEADER, k);
        }
        if let Some(a) = auth {
            b = b.header("authorization", a);
        }
        b.body(Body::Text(body.to_owned())).unwrap()
    }

    fn answer(status: u16, body: &str) -> Response<Body> {
        Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(Body::Text(body.to_owned()))
            .unwrap()
    }

    #[test]
    fn long_answers_are_kept_deflated_and_read_back_whole_and_a_bomb_is_not_inflated() {
        let ids: Vec<String> = (0..500).map(|i| format!("0193a4f0-1c2d-7{i:03x}-8a9b-0c1d2e3f4a5b")).collect();
        let body = serde_json::json!({"accepted": 500, "event_ids": ids}).to_string().into_bytes();
        let (stored, enc) = stored_body(&body);
        assert_eq!(enc, Some("deflate"));
        assert!(stored.len() * 4 < body.len(), "{} of {} bytes", stored.len(), body.len());
        assert_eq!(kept_body(&stored, enc).unwrap(), body);
        // Short answers are kept as they are.
        assert_eq!(stored_body(b"{\"state\":\"dryrun\"}"), (b"{\"state\":\"dryrun\"}".to_vec(), None));
        // Someone with write access to the table: more than a kept answer may be, an unknown
        // encoding, or bytes that are not deflate. None is read back as an answer.
        let bomb = miniz_oxide::deflate::compress_to_vec(&vec![b'x'; MAX_KEPT_BODY + 1], 6);
        assert!(bomb.len() < 4096);
        assert_eq!(kept_body(&bomb, Some("deflate")), None);
        assert_eq!(kept_body(&stored, Some("zstd")), None);
        assert_eq!(kept_body(b"not deflate at all", Some("deflate")), None);
    }

    #[tokio::test]
    async fn a_retry_gets_the_first_answer_and_runs_nothing() {
        let idem = Idempotency::memory();
        let r = req("POST", Some("k-1"), Some("Bearer t1"), "{\"justification\":\"x\"}");
        let Some(Begin::Run(claim)) = idem.begin(&r).await.unwrap() else { panic!("the first request runs") };
        // A retry while the first still runs: 409, retry shortly.
        let p = idem.begin(&r).await.unwrap_err();
        assert_eq!((p.status, p.headers.clone()), (409, vec![("retry-after", "1".to_owned())]));
        idem.finish(claim, &answer(200, "{\"state\":\"dryrun\"}")).await;
        let Some(Begin::Replay(again)) = idem.begin(&r).await.unwrap() else { panic!("a replay") };
        assert_eq!(again.status(), 200);
        assert_eq!(again.headers()[REPLAYED_HEADER], "true");
        assert_eq!(again.body(), &Body::Text("{\"state\":\"dryrun\"}".into()));
    }

    #[tokio::test]
    async fn the_key_is_bound_to_the_request_and_to_the_credential() {
        let idem = Idempotency::memory();
        let first = req("POST", Some("k-1"), Some("Bearer t1"), "{\"a\":1}");
        let Some(Begin::Run(claim)) = idem.begin(&first).await.unwrap() else { panic!() };
        idem.finish(claim, &answer(201, "{}")).await;
        // Same key, other body: 422, and nothing runs.
        let other = req("POST", Some("k-1"), Some("Bearer t1"), "{\"a\":2}");
        assert_eq!(idem.begin(&other).await.unwrap_err().status, 422);
        // Same key and body under another credential: a request of its own.
        let stranger = req("POST", Some("k-1"), Some("Bearer t2"), "{\"a\":1}");
        assert!(matches!(idem.begin(&stranger).await.unwrap(), Some(Begin::Run(_))));
    }

    #[tokio::test]
    async fn server_errors_and_refusals_release_the_key_and_leave_nothing() {
        let idem = Idempotency::memory();
        let r = req("POST", Some("k-2"), Some("Bearer t1"), "{}");
        for status in [500, 503, 400, 401, 403, 404, 409, 413, 429] {
            let Some(Begin::Run(claim)) = idem.begin(&r).await.unwrap() else { panic!("{status}: runs again") };
            idem.finish(claim, &answer(status, "{}")).await;
            let Store::Memory(records) = &idem.store else { panic!() };
            assert!(records.lock().unwrap().is_empty(), "{status}: a refused request left a record");
        }
        let Some(Begin::Run(claim)) = idem.begin(&r).await.unwrap() else { panic!() };
        idem.finish(claim, &answer(201, "{\"id\":\"w1\"}")).await;
        let Some(Begin::Replay(again)) = idem.begin(&r).await.unwrap() else { panic!("a success is kept") };
        assert_eq!(again.status(), 201);
    }

    #[tokio::test]
    async fn only_keyed_writes_with_a_credential_are_tracked_and_bad_keys_are_400() {
        let idem = Idempotency::memory();
        assert!(idem.begin(&req("GET", Some("k"), Some("Bearer t"), "")).await.unwrap().is_none());
        assert!(idem.begin(&req("POST", None, Some("Bearer t"), "")).await.unwrap().is_none());
        assert!(idem.begin(&req("POST", Some("k"), None, "")).await.unwrap().is_none());
        for bad in ["has space", "", &"x".repeat(256)] {
            let p = idem.begin(&req("POST", Some(bad), Some("Bearer t"), "")).await.unwrap_err();
            assert_eq!(p.status, 400, "{bad:?}");
        }
    }

    #[tokio::test]
    async fn an_answer_too_large_to_keep_is_not_replayed_as_something_else() {
        let idem = Idempotency::memory();
        let r = req("POST", Some("k-3"), Some("Bearer t1"), "{}");
        let Some(Begin::Run(claim)) = idem.begin(&r).await.unwrap() else { panic!() };
        idem.finish(claim, &answer(200, &"x".repeat(MAX_KEPT_BODY + 1))).await;
        let Some(Begin::Replay(again)) = idem.begin(&r).await.unwrap() else { panic!() };
        assert_eq!(again.status(), 409);
        assert!(again.headers().get(REPLAYED_HEADER).is_none());
    }

    #[test]
    fn an_expired_record_or_lease_frees_the_key() {
        let kept = Kept { status: 200, content_type: "a".into(), body: vec![], text: true, dropped: false };
        let done = Record { fingerprint: "f".into(), expires_at: 100, state: State::Done(kept.clone()) };
        assert_eq!(decide(Some(&done), "f", 99_000), Decision::Replay(kept));
        assert_eq!(decide(Some(&done), "f", 100_000), Decision::Claim);
        let pending =
            Record { fingerprint: "f".into(), expires_at: 100, state: State::Pending { lease_until_ms: 50_000 } };
        assert_eq!(decide(Some(&pending), "f", 49_999), Decision::InProgress);
        assert_eq!(decide(Some(&pending), "f", 50_000), Decision::Claim);
        assert_eq!(decide(Some(&pending), "g", 10), Decision::Mismatch);
    }
}
