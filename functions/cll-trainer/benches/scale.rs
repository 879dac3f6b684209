//! D.3 scale: one training job over 1,000,000 aggregate rows, as the worker runs it in one
//! Lambda invocation (15 minutes, 1,769 MB = one vCPU). The rows arrive as DynamoDB items in
//! query-sized pages and are decoded by the worker's own decoder; then the job trains, judges
//! the new version and a champion on the held-back part, and applies the gate. Prints wall
//! time per stage and the process's peak resident memory (VmHWM). Single-threaded, like the
//! Lambda. `ROWS=<n>` changes the size.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use aws_sdk_dynamodb::types::AttributeValue;
use naksha_contracts::TenantId;
use naksha_contracts::models::{DetectorModel, Metrics, ModelArtifact, TrainingWindow};
use naksha_contracts::runs::{OUTCOME_ATTRIBUTE, RunOutcome};
use naksha_detector::detector::Params;
use naksha_trainer::store::training_source::{decode_aggregate, decode_outcome};
use naksha_trainer::train::{SeriesData, Settings, TrainingData, train};

#[global_allocator]
static ALLOC: naksha_core::Allocator = naksha_core::Allocator;

fn noise(i: u64) -> f64 {
    let x = i.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    ((x >> 33) as f64 / (1u64 << 31) as f64) * 2.0 - 1.0
}

/// Minute value of series `s`: calm, daily-seasonal, drifting, shifting or spiky, by series.
fn value(s: u64, m: i64) -> f64 {
    let base = 50.0 + (s % 17) as f64 * 10.0;
    let n = noise(s * 1_000_003 + m as u64);
    let day = (m as f64 / 1440.0) * std::f64::consts::TAU;
    match s % 5 {
        0 => base + n,
        1 => base + 0.3 * base * day.sin() + n,
        2 => base + m as f64 * 0.001 + n,
        3 => base + if m % 4000 > 3800 { 20.0 } else { 0.0 } + n,
        _ => base + if m % 997 == 0 { 40.0 } else { 0.0 } + 2.0 * n,
    }
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(str::to_owned))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<f64>().ok()))
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn main() {
    let rows: usize = std::env::var("ROWS").ok().and_then(|r| r.parse().ok()).unwrap_or(1_000_000);
    let per_series = 10_000usize; // ~6.9 days of minutes: inside the default 168-hour window
    let series = rows.div_ceil(per_series);
    let to = 29_927_000i64;
    let from = to - per_series as i64 + 1;
    let n = |v: String| AttributeValue::N(v);

    // 1. Read: pages of 1,000 items (a DynamoDB query page of these items is ~1 MB), decoded
    //    and dropped page by page, as the worker does.
    let t0 = Instant::now();
    let acme = TenantId::from_record("acme").unwrap();
    let mut data = TrainingData::new(acme.clone());
    let mut left = rows;
    for s in 0..series as u64 {
        let take = left.min(per_series);
        left -= take;
        let mut points = Vec::with_capacity(take);
        for page_start in (0..take).step_by(1000) {
            let page: Vec<HashMap<String, AttributeValue>> = (page_start..(page_start + 1000).min(take))
                .map(|i| {
                    let m = from + i as i64;
                    let v = value(s, m);
                    HashMap::from([
                        ("minute".to_owned(), n((m * 60).to_string())),
                        ("count".to_owned(), n("4".into())),
                        ("sum".to_owned(), n((v * 4.0).to_string())),
                    ])
                })
                .collect();
            points.extend(page.into_iter().filter_map(decode_aggregate));
        }
        data.series.push(SeriesData { series_id: format!("{s:032x}"), points });
    }
    for r in 0..5_000u64 {
        let minute = from + (r as i64 * per_series as i64) / 5_000;
        let finished_at = chrono::DateTime::from_timestamp(minute * 60, 0)
            .unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let outcome = RunOutcome {
            run_id: format!("run-{r}"),
            signal: format!("anomaly.metric_{}", r % 10),
            wpk_id: format!("wpk-{}", r % 3),
            wpk_version: 1,
            succeeded: noise(r) < 0.2 * (r % 3) as f64 - 0.1,
            audit_seq: r,
            finished_at: finished_at.clone(),
        };
        let item = HashMap::from([
            ("run_id".to_owned(), AttributeValue::S(format!("run-{r}"))),
            ("updated_at".to_owned(), AttributeValue::S(finished_at)),
            (OUTCOME_ATTRIBUTE.to_owned(), AttributeValue::S(serde_json::to_string(&outcome).unwrap())),
        ]);
        data.outcomes.extend(decode_outcome(&item));
    }
    data.normalise();
    let read = t0.elapsed();
    assert_eq!(data.rows(), rows as u64);

    // 2. The champion: the defaults (every hourly job after the first has one to beat).
    let champion = ModelArtifact {
        schema: 1,
        model_id: "m-00000000000000000000".into(),
        tenant: acme.clone(),
        created_at: "then".into(),
        code_version: "bench".into(),
        data_digest: "none".into(),
        window: TrainingWindow {
            from_minute: from,
            to_minute: to,
            holdout_from_minute: to,
            series,
            rows: 0,
            outcomes: 0,
        },
        detector: DetectorModel { base: Params::default(), series: BTreeMap::new() },
        remediation: BTreeMap::new(),
        metrics: Metrics::default(),
    };

    // 3. Train, judge both, gate.
    let t1 = Instant::now();
    // Each progress call marks the start of a stage: (stage, seconds since the job started).
    let mut marks: Vec<(String, f64)> = Vec::new();
    let trained = train(&data, Some(&champion), &Settings::default(), "bench", &mut |stage, _| {
        marks.push((stage.to_owned(), t1.elapsed().as_secs_f64()));
    })
    .unwrap();
    let training = t1.elapsed();
    let ends: Vec<f64> = marks.iter().skip(1).map(|m| m.1).chain([training.as_secs_f64()]).collect();
    let stages: Vec<(String, f64)> = marks.iter().zip(ends).map(|((s, start), end)| (s.clone(), end - start)).collect();
    let doc = serde_json::to_vec(&trained.artifact).unwrap();

    println!("trainer scale: rows {rows}, series {series}, outcomes {}", data.outcomes.len());
    println!("trainer scale: read+decode {:.2} s", read.as_secs_f64());
    for (stage, secs) in &stages {
        println!("trainer scale: stage '{stage}' {secs:.2} s");
    }
    println!("trainer scale: train+evaluate+gate {:.2} s", training.as_secs_f64());
    println!("trainer scale: total {:.2} s (Lambda limit 900 s)", (read + training).as_secs_f64());
    println!("trainer scale: peak RSS {:.1} MiB (Lambda memory 1769 MB)", peak_rss_mib());
    println!(
        "trainer scale: fitted series {}, model document {} bytes, promote {} ({})",
        trained.artifact.detector.series.len(),
        doc.len(),
        trained.promote,
        trained.reason
    );
    println!("trainer scale: metrics {}", serde_json::to_string(&trained.artifact.metrics).unwrap());
}
