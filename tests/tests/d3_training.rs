//! D.3 training end to end on the running stack: a job over real aggregates registers a signed
//! version (checked with `openssl`), the schedule repeated on the same input registers nothing
//! new, the gate keeps a version that is not better as challenger, and a tampered champion is
//! refused — the one before it is used instead, by the trainer and by the consumer's detector.
//!
//! One test function: the steps share three days of ingested data (moto writes are slow).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine as _;
use naksha_e2e::{Stack, Team, eventually};
use serde_json::{Value, json};

const STEP: i64 = 5;

fn value(minute: i64) -> f64 {
    naksha_e2e::daily(minute, 80.0, 10.0, 2.0)
}

/// Submit a training job and wait for it to finish; returns the job and every progress value seen.
async fn train(stack: &Stack, team: &Team, body: Value) -> (Value, Vec<f64>) {
    let r = stack.post_json("/models/train", Some(&team.admin), &body).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let job = r.json();
    assert_eq!(job["status"], "queued");
    let id = job["job_id"].as_str().unwrap().to_owned();
    wait_job(stack, team, &id).await
}

async fn wait_job(stack: &Stack, team: &Team, id: &str) -> (Value, Vec<f64>) {
    let seen = std::sync::Mutex::new(Vec::new());
    let job = eventually("the training job to finish", Duration::from_secs(300), || async {
        let r = stack.get(&format!("/jobs/{id}"), Some(&team.operator)).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let j = r.json();
        seen.lock().unwrap().push(j["progress"].as_f64().unwrap());
        matches!(j["status"].as_str(), Some("succeeded" | "failed")).then_some(j)
    })
    .await;
    (job, seen.into_inner().unwrap())
}

async fn schedule(stack: &Stack, team: &Team, time: &str) -> Value {
    let event = json!({
        "id": format!("evt-{time}"), "source": "aws.events", "detail-type": "Scheduled Event",
        "time": time, "detail": {"tenants": [team.tenant]}
    });
    let (status, out) = stack.invoke("trainer-schedule", &event).await;
    assert_eq!(status, 200, "{out}");
    out
}

async fn tamper(stack: &Stack, team: &Team, model_id: &str, doc: Option<&str>) -> String {
    let table = stack.table("ModelVersionsTable");
    let key = |k: &str| AttributeValue::S(k.to_owned());
    let item = stack
        .db
        .get_item()
        .table_name(&table)
        .key("pk", key(&team.tenant))
        .key("sk", key(&format!("v#{model_id}")))
        .send()
        .await
        .unwrap();
    let original = item.item().unwrap()["doc"].as_s().unwrap().clone();
    let new_doc = doc.map(str::to_owned).unwrap_or_else(|| {
        // Loosen the detector's bar: what someone with write access to the table would do.
        let mut v: serde_json::Value = serde_json::from_str(&original).unwrap();
        v["detector"]["base"]["alarm_tail"] = serde_json::json!(0.5);
        serde_json::to_string(&v).unwrap()
    });
    assert_ne!(new_doc, original, "the tampering must change the document");
    stack
        .db
        .update_item()
        .table_name(&table)
        .key("pk", key(&team.tenant))
        .key("sk", key(&format!("v#{model_id}")))
        .update_expression("SET doc = :d")
        .expression_attribute_values(":d", key(&new_doc))
        .send()
        .await
        .unwrap();
    original
}

#[tokio::test]
async fn training_registers_signed_versions_and_only_a_better_one_becomes_champion() {
    let stack = Stack::connect().await;
    let team = stack.team("train");
    let other = stack.team("train-other");

    // Three days of one series, every five minutes, ending 23 to 38 minutes ago, starting
    // seven minutes past a quarter hour: where the series falls within the detector's 15-minute
    // buckets decides today whether the injected shift is caught (a series starting 0-4 minutes
    // past is missed: a known defect, `cll-trainer/tests/shift_phase.rs`), and a test must not
    // pass or fail by the time of day it runs.
    let now_min = chrono::Utc::now().timestamp() / 60;
    let span = 3 * 1440;
    let start = (now_min - span - 25).div_euclid(15) * 15 + 7;
    let minutes: Vec<i64> = (0..span).step_by(STEP as usize).collect();
    stack.ingest_series(&team.operator, ("deployment/cart", "p99_ms"), start * 60_000, minutes.clone(), value).await;
    eventually("three days of aggregates", Duration::from_secs(300), || async {
        (stack.aggregates_of(&team.tenant).await.len() == minutes.len()).then_some(())
    })
    .await;

    let (_, counters_before) = stack.metrics().await;

    // 1. On demand: the first version becomes champion (there was none). While it is queued or
    //    running, a second job of the tenant is refused with 409 naming it (one per tenant).
    let r = stack.post_json("/models/train", Some(&team.admin), &json!({})).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let first_id = r.json()["job_id"].as_str().unwrap().to_owned();
    let busy = stack.post_json("/models/train", Some(&team.admin), &json!({"window_hours": 2})).await;
    let doc = busy.assert_problem(409);
    assert_eq!(doc["job_id"], first_id.as_str(), "{doc}");
    let (job, progress) = wait_job(&stack, &team, &first_id).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["progress"], 1.0);
    assert!(progress.windows(2).all(|w| w[0] <= w[1]), "progress only moves forward: {progress:?}");
    let result = &job["result"];
    assert_eq!(result["registered"], true, "{job}");
    assert_eq!(result["alias"], "champion", "{job}");
    assert_eq!(result["rows"], minutes.len() as u64, "{job}");
    assert_eq!(result["series"], 1);
    let v1 = result["model_id"].as_str().unwrap().to_owned();
    // The detector was judged on the held-back day: an injected shift was caught.
    assert_eq!(result["metrics"]["detector"]["series_evaluated"], 1, "{job}");
    assert_eq!(result["metrics"]["detector"]["detected"], 1, "{job}");

    let list = stack.get("/models", Some(&team.operator)).await.json();
    assert_eq!(list["champion"], v1.as_str());
    assert_eq!(list["count"], 1);
    assert_eq!(list["models"][0]["verified"], true, "{list}");
    assert_eq!(list["models"][0]["status"], "champion");
    assert_eq!(list["models"][0]["alias"], "champion");
    assert!(list["models"][0]["signature"].as_str().is_some_and(|s| !s.is_empty()), "{list}");

    // 2. The signature verifies with openssl; the manifest pins the document.
    let m = stack.get(&format!("/models/{v1}"), Some(&team.operator)).await.json();
    let manifest: Value = serde_json::from_str(m["manifest"].as_str().unwrap()).unwrap();
    let doc_text = m["document_json"].as_str().unwrap();
    assert_eq!(manifest["sha256"].as_str().unwrap(), naksha_core::signing::sha256_hex(doc_text.as_bytes()));
    assert_eq!(serde_json::from_str::<Value>(doc_text).unwrap(), m["document"]);
    assert_eq!(m["document"]["data_digest"], manifest["data_digest"]);
    assert_eq!(m["document"]["window"]["rows"], minutes.len() as u64);
    let der = base64::engine::general_purpose::STANDARD.decode(m["signature"].as_str().unwrap()).unwrap();
    let key_id = m["key_id"].as_str().unwrap();
    let manifest_text = m["manifest"].as_str().unwrap();
    let (ok, said) = stack.openssl_verify(key_id, &der, manifest_text.as_bytes()).await;
    assert!(ok && said == "Verified OK", "{said}");
    let forged = manifest_text.replace(&v1, "m-00000000000000000000");
    let (ok, said) = stack.openssl_verify(key_id, &der, forged.as_bytes()).await;
    assert!(!ok, "openssl must refuse an altered manifest: {said}");

    // Other tenants see none of it.
    assert_eq!(stack.get(&format!("/models/{v1}"), Some(&other.operator)).await.status, 404);
    assert_eq!(stack.get("/models", Some(&other.operator)).await.json()["count"], 0);
    let job_id = job["job_id"].as_str().unwrap();
    assert_eq!(stack.get(&format!("/jobs/{job_id}"), Some(&other.admin)).await.status, 404);

    // 3. The hourly schedule on the same input registers nothing new; the same event twice
    //    creates one job.
    //    (The next hours' events: their windows hold all of the data, as the on-demand one did.)
    let next = chrono::Utc::now() + chrono::Duration::hours(1);
    let hour = next.format("%Y-%m-%dT%H:00:00Z").to_string();
    let later = (next + chrono::Duration::hours(1)).format("%Y-%m-%dT%H:00:00Z").to_string();
    let first = schedule(&stack, &team, &hour).await;
    assert_eq!(first["created"].as_array().unwrap().len(), 1, "{first}");
    let again = schedule(&stack, &team, &hour).await;
    assert_eq!(again["created"].as_array().unwrap().len(), 0, "{again}");
    assert_eq!(again["already_existed"], 1);
    let sched_id = first["created"][0]["job_id"].as_str().unwrap();
    let (sched, _) = wait_job(&stack, &team, sched_id).await;
    assert_eq!(sched["status"], "succeeded", "{sched}");
    assert_eq!(sched["kind"], "scheduled");
    assert_eq!(sched["result"]["model_id"], v1.as_str(), "same data and code: same id");
    assert_eq!(sched["result"]["registered"], false, "{sched}");
    let hour_later = schedule(&stack, &team, &later).await;
    let (sched2, _) = wait_job(&stack, &team, hour_later["created"][0]["job_id"].as_str().unwrap()).await;
    assert_ne!(sched2["job_id"], sched["job_id"]);
    assert_eq!(sched2["result"]["model_id"], v1.as_str(), "{sched2}");
    assert_eq!(sched2["result"]["registered"], false, "{sched2}");
    assert_eq!(stack.get("/models", Some(&team.operator)).await.json()["count"], 1);

    // 4. The gate: a version trained on the last hour only is new, but not better on the
    //    held-back data than the champion, so it stays challenger.
    let (job2, _) = train(&stack, &team, json!({"window_hours": 1})).await;
    let r2 = &job2["result"];
    assert_eq!(r2["registered"], true, "{job2}");
    assert_eq!(r2["alias"], "challenger", "{job2}");
    assert!(r2["reason"].as_str().unwrap().contains(&v1), "{job2}");
    assert_eq!(r2["metrics"]["champion"]["model_id"], v1.as_str(), "the champion was judged on the same data");
    let v2 = r2["model_id"].as_str().unwrap().to_owned();
    let list = stack.get("/models", Some(&team.operator)).await.json();
    assert_eq!(list["champion"], v1.as_str());
    assert_eq!(list["count"], 2);
    let challenger = list["models"].as_array().unwrap().iter().find(|m| m["model_id"] == v2.as_str()).unwrap();
    assert_eq!(challenger["alias"], "challenger", "{list}");

    // 5. A tampered champion is refused: GET /models flags it, the next job reports it and
    //    judges against no champion, and becomes champion itself.
    let v1_doc = tamper(&stack, &team, &v1, None).await;
    let list = stack.get("/models", Some(&team.operator)).await.json();
    let flagged = list["models"].as_array().unwrap().iter().find(|m| m["model_id"] == v1.as_str()).unwrap();
    assert_eq!(flagged["verified"], false, "{list}");
    let (job3, _) = train(&stack, &team, json!({"window_hours": 2})).await;
    let r3 = &job3["result"];
    assert_eq!(r3["refused"][0]["model_id"], v1.as_str(), "{job3}");
    assert!(r3["metrics"]["champion"].is_null(), "a refused champion is not used: {job3}");
    assert_eq!(r3["alias"], "champion", "{job3}");
    let v3 = r3["model_id"].as_str().unwrap().to_owned();
    let list = stack.get("/models", Some(&team.operator)).await.json();
    let former = list["models"].as_array().unwrap().iter().find(|m| m["model_id"] == v1.as_str()).unwrap();
    assert!(former["alias"].is_null() && former["status"] == "retired", "{list}");
    assert_ne!(v3, v2);

    // 6. Now v3 is tampered and v1 restored: the loader refuses v3 and falls back to v1, the
    //    champion before it.
    tamper(&stack, &team, &v1, Some(&v1_doc)).await;
    tamper(&stack, &team, &v3, None).await;
    let (job4, _) = train(&stack, &team, json!({"window_hours": 3})).await;
    let r4 = &job4["result"];
    assert_eq!(r4["refused"][0]["model_id"], v3.as_str(), "{job4}");
    assert_eq!(r4["metrics"]["champion"]["model_id"], v1.as_str(), "the previous champion is used: {job4}");

    // 7. The consumer's detector loads the champion the same way: v3 is refused, v1 sets the
    //    series' parameters and is named in its state.
    let series_table = stack.table("SeriesTable");
    let prefix = format!("{}#", team.tenant);
    eventually("the consumer to score with the previous champion", Duration::from_secs(120), || async {
        let ts = chrono::Utc::now().timestamp_millis();
        let event = json!({"events": [{"source": "deployment/cart", "name": "p99_ms", "value": 80.0, "ts": ts}]});
        assert_eq!(stack.post_json("/ingest", Some(&team.operator), &event).await.status, 202);
        tokio::time::sleep(Duration::from_secs(2)).await;
        let items = stack.scan(&series_table).await;
        let item = items.iter().find(|i| i["pk"].as_s().unwrap().starts_with(&prefix))?;
        let state: Value = serde_json::from_str(item["state"].as_s().unwrap()).unwrap();
        (state["model_id"] == v1.as_str()).then_some(())
    })
    .await;

    // Fleet-wide counters (other tests may train meanwhile: at least ours were counted).
    let (text, after) = stack.metrics().await;
    let grew = |k: &str| after.get(k).copied().unwrap_or(0.0) - counters_before.get(k).copied().unwrap_or(0.0);
    assert!(grew("trainer_jobs_total{status=\"succeeded\"}") >= 6.0, "{text}");
    assert!(grew("trainer_models_registered_total") >= 4.0, "{text}");
    assert!(grew("trainer_models_promoted_total") >= 2.0, "{text}");
    assert!(grew("trainer_models_refused_total") >= 2.0, "{text}");
}
