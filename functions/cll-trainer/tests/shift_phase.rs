//! Whether the trainer's evaluation catches its injected level shift depends on where a
//! five-minute series falls within the detector's 15-minute time-of-day buckets. Found by a red
//! CI run of the d3_training end-to-end test, whose series starts wherever the clock says.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use naksha_contracts::TenantId;
use naksha_trainer::train::{SeriesData, Settings, TrainingData, train};

/// Three days of a daily cycle with noise, every five minutes, from `start` (minutes): the series
/// of the d3_training end-to-end test.
fn caught(start: i64) -> bool {
    let value = |m: i64| {
        let day = (m as f64 / 1440.0) * std::f64::consts::TAU;
        let x = (m as u64).wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        80.0 + 10.0 * day.sin() + 2.0 * (((x >> 33) as f64 / (1u64 << 31) as f64) * 2.0 - 1.0)
    };
    let points = (0..3 * 1440).step_by(5).map(|m| (start + m, value(m))).collect();
    let data = TrainingData {
        tenant: TenantId::from_record("phase").unwrap(),
        series: vec![SeriesData { series_id: "s".into(), points }],
        outcomes: vec![],
    };
    let t = train(&data, None, &Settings::default(), "2026-12-04T00:00:00Z", &mut |_, _| {}).unwrap();
    let d = &t.artifact.metrics.detector;
    assert_eq!((d.series_evaluated, d.injected), (1, 1));
    d.detected == 1
}

#[test]
fn a_shift_is_caught_at_every_time_of_day_on_the_quarter_hour() {
    let missed: Vec<i64> = (0..1440).step_by(15).filter(|off| !caught(29_000_000 + off)).collect();
    assert!(missed.is_empty(), "missed at {missed:?}");
}

#[test]
#[ignore = "known defect (issue 13): 37 of 111 phases missed; the history of surprise still holds the \
            local-only surprise of the days before the seasonal model starts, so a young seasonal \
            profile's shift does not stand out. Resetting it fixes this and lifts NAB, but then the \
            young profile alarms falsely on plain noise; see the issue note"]
fn a_shift_is_caught_at_every_phase() {
    let missed: Vec<i64> = (0..1440).step_by(13).filter(|off| !caught(29_000_000 + off)).collect();
    assert!(missed.is_empty(), "missed {} of 111 phases: {missed:?}", missed.len());
}
