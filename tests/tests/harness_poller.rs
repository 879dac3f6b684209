//! The local stand-in for Lambda's Kinesis event source mapping honours what the real one does:
//! retry from the record named in `batchItemFailures`, give up after `MaximumRetryAttempts` into
//! the on-failure destination, and move on. Runs against the emulator with its own stream and a
//! scripted fake function.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::ShardIteratorType;
use naksha_e2e::{Stack, eventually, unique_tenant};
use naksha_local::poller::{self, Mapping};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

type Calls = Arc<Mutex<Vec<Vec<String>>>>;

/// A fake function: records each delivery's sequence numbers and answers with `script(call#)`
/// (status 0: no answer at all).
async fn fake_function(script: fn(usize, &[String]) -> (u16, Value)) -> (String, Calls) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/invoke", listener.local_addr().unwrap());
    let calls: Calls = Arc::default();
    let seen = Arc::clone(&calls);
    tokio::spawn(async move {
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buf = Vec::new();
            let mut chunk = [0u8; 65536];
            let body = loop {
                let n = socket.read(&mut chunk).await.unwrap();
                buf.extend_from_slice(&chunk[..n]);
                if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
                        .unwrap_or(0);
                    if buf.len() >= end + 4 + len {
                        break buf[end + 4..end + 4 + len].to_vec();
                    }
                }
                if n == 0 {
                    break Vec::new();
                }
            };
            let event: Value = serde_json::from_slice(&body).unwrap();
            let seqs: Vec<String> = event["Records"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["kinesis"]["sequenceNumber"].as_str().unwrap().to_owned())
                .collect();
            let call = {
                let mut calls = seen.lock().unwrap();
                calls.push(seqs.clone());
                calls.len() - 1
            };
            let (status, answer) = script(call, &seqs);
            if status == 0 {
                // Status 0: the function never answers (it died mid-invocation).
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    drop(socket);
                });
                continue;
            }
            let text = answer.to_string();
            let response = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
                text.len()
            );
            socket.write_all(response.as_bytes()).await.unwrap();
        }
    });
    (url, calls)
}

async fn stream_with_records(stack: &Stack, n: usize) -> (String, String, Vec<String>) {
    let name = unique_tenant("poller-test");
    stack.kinesis.create_stream().stream_name(&name).shard_count(1).send().await.unwrap();
    let arn = eventually("the test stream", Duration::from_secs(20), || async {
        let s = stack.kinesis.describe_stream_summary().stream_name(&name).send().await.ok()?;
        let d = s.stream_description_summary()?;
        (d.stream_status().as_str() == "ACTIVE").then(|| d.stream_arn().to_owned())
    })
    .await;
    let mut seqs = Vec::new();
    for i in 0..n {
        let out = stack
            .kinesis
            .put_record()
            .stream_name(&name)
            .partition_key("p")
            .data(Blob::new(format!("{{\"n\":{i}}}").into_bytes()))
            .send()
            .await
            .unwrap();
        seqs.push(out.sequence_number().to_owned());
    }
    (name, arn, seqs)
}

fn mapping(stream: String, arn: String, url: String, failures: std::path::PathBuf, retries: u32) -> Mapping {
    Mapping {
        function: "fake".into(),
        stream,
        stream_arn: arn,
        batch_size: 100,
        starting_position: ShardIteratorType::TrimHorizon,
        max_retries: retries,
        bisect_on_error: true,
        report_batch_item_failures: true,
        invoke_url: url,
        invoke_timeout: Duration::from_secs(2),
        checkpoints: failures.with_extension("checkpoints"),
        invocations_file: failures.with_extension("invocations"),
        failures_file: failures,
    }
}

#[tokio::test]
async fn a_reported_failure_is_redelivered_from_that_record() {
    let stack = Stack::connect().await;
    let (stream, arn, seqs) = stream_with_records(&stack, 4).await;
    // First delivery: "the third record failed". Later ones succeed.
    let (url, calls) = fake_function(|call, seqs| {
        if call == 0 {
            (200, json!({"batchItemFailures": [{"itemIdentifier": seqs[2]}]}))
        } else {
            (200, json!({"batchItemFailures": []}))
        }
    })
    .await;
    let failures = std::env::temp_dir().join(format!("{stream}.jsonl"));
    let task = tokio::spawn(poller::run(
        stack.kinesis.clone(),
        reqwest::Client::new(),
        mapping(stream.clone(), arn, url, failures.clone(), 3),
    ));
    let calls = eventually("a redelivery", Duration::from_secs(30), || async {
        let c = calls.lock().unwrap().clone();
        (c.len() >= 2).then_some(c)
    })
    .await;
    task.abort();
    stack.kinesis.delete_stream().stream_name(&stream).send().await.unwrap();
    assert_eq!(calls[0], seqs);
    assert_eq!(calls[1], seqs[2..].to_vec(), "redelivery starts at the reported record");
    assert!(!failures.exists(), "nothing went to the on-failure destination");
}

#[tokio::test]
async fn a_function_that_never_answers_times_out_and_its_batch_is_delivered_again() {
    let stack = Stack::connect().await;
    let (stream, arn, seqs) = stream_with_records(&stack, 3).await;
    // The first invocation hangs (an instance killed mid-batch); the second answers.
    let (url, calls) =
        fake_function(|call, _| if call == 0 { (0, Value::Null) } else { (200, json!({"batchItemFailures": []})) })
            .await;
    let failures = std::env::temp_dir().join(format!("{stream}.jsonl"));
    let task = tokio::spawn(poller::run(
        stack.kinesis.clone(),
        reqwest::Client::new(),
        mapping(stream.clone(), arn, url, failures.clone(), 3),
    ));
    let calls = eventually("every record delivered after the timeout", Duration::from_secs(30), || async {
        let c = calls.lock().unwrap().clone();
        let later: Vec<&String> = c.iter().skip(1).flatten().collect();
        seqs.iter().all(|s| later.contains(&s)).then_some(c)
    })
    .await;
    task.abort();
    stack.kinesis.delete_stream().stream_name(&stream).send().await.unwrap();
    assert_eq!(calls[0], seqs);
    assert_eq!(calls[1][0], seqs[0], "redelivered from the start: none of the batch counted as done (bisected)");
    assert!(!failures.exists(), "one timeout is a retry, not a failure");
}

#[tokio::test]
async fn exhausted_retries_go_to_the_on_failure_destination_and_polling_moves_on() {
    let stack = Stack::connect().await;
    let (stream, arn, seqs) = stream_with_records(&stack, 2).await;
    let (url, calls) = fake_function(|_, _| (500, json!({"errorType": "Boom", "errorMessage": "always fails"}))).await;
    let failures = std::env::temp_dir().join(format!("{stream}.jsonl"));
    let task = tokio::spawn(poller::run(
        stack.kinesis.clone(),
        reqwest::Client::new(),
        mapping(stream.clone(), arn, url, failures.clone(), 2),
    ));
    let line = eventually("an on-failure record", Duration::from_secs(60), || async {
        std::fs::read_to_string(&failures).ok().and_then(|t| t.lines().next().map(str::to_owned))
    })
    .await;
    // The shard is not stuck: a record put after the failed batch is still delivered.
    let later = stack
        .kinesis
        .put_record()
        .stream_name(&stream)
        .partition_key("p")
        .data(Blob::new(b"{}".to_vec()))
        .send()
        .await
        .unwrap();
    eventually("a delivery of the later record", Duration::from_secs(30), || async {
        calls.lock().unwrap().iter().any(|c| c.iter().any(|s| s == later.sequence_number())).then_some(())
    })
    .await;
    task.abort();
    stack.kinesis.delete_stream().stream_name(&stream).send().await.unwrap();
    let record: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(record["requestContext"]["condition"], "RetryAttemptsExhausted");
    assert_eq!(record["KinesisBatchInfo"]["startSequenceNumber"], seqs[0].as_str());
    let calls = calls.lock().unwrap().clone();
    // Bisect on error: after the first failure the batch is halved.
    assert_eq!(calls[0].len(), 2);
    assert_eq!(calls[1].len(), 1);
    let _ = std::fs::remove_file(failures);
}

#[tokio::test]
async fn a_poller_started_again_carries_on_after_its_checkpoint() {
    let stack = Stack::connect().await;
    let (stream, arn, seqs) = stream_with_records(&stack, 3).await;
    let (url, calls) = fake_function(|_, _| (200, json!({"batchItemFailures": []}))).await;
    let failures = std::env::temp_dir().join(format!("{stream}.jsonl"));
    let m = mapping(stream.clone(), arn, url, failures.clone(), 3);
    let first = tokio::spawn(poller::run(stack.kinesis.clone(), reqwest::Client::new(), m.clone()));
    eventually("the first three delivered", Duration::from_secs(30), || async {
        (calls.lock().unwrap().iter().flatten().count() >= 3).then_some(())
    })
    .await;
    eventually("the checkpoint after the third", Duration::from_secs(10), || async {
        (m.checkpoint("shardId-000000000000").as_deref() == Some(seqs[2].as_str())).then_some(())
    })
    .await;
    // The poller dies; a record arrives while it is down; a new poller starts.
    first.abort();
    let later = stack
        .kinesis
        .put_record()
        .stream_name(&stream)
        .partition_key("p")
        .data(Blob::new(b"{}".to_vec()))
        .send()
        .await
        .unwrap();
    let second = tokio::spawn(poller::run(stack.kinesis.clone(), reqwest::Client::new(), m.clone()));
    eventually("the record put while it was down", Duration::from_secs(30), || async {
        calls.lock().unwrap().iter().any(|c| c.iter().any(|s| s == later.sequence_number())).then_some(())
    })
    .await;
    second.abort();
    stack.kinesis.delete_stream().stream_name(&stream).send().await.unwrap();
    let delivered: Vec<String> = calls.lock().unwrap().iter().flatten().cloned().collect();
    let mut expected = seqs.clone();
    expected.push(later.sequence_number().to_owned());
    assert_eq!(delivered, expected, "nothing skipped, and nothing before the checkpoint delivered again");
    let _ = std::fs::remove_dir_all(&m.checkpoints);
}
