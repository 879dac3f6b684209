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

/// Midnight, in minutes since the epoch.
const MIDNIGHT: i64 = 29_000_160;

/// The start phases (minutes past the quarter hour) at which the shift is missed, of 0..15, each
/// tried at every quarter hour of the day.
fn missed_phases(phases: std::ops::Range<i64>) -> Vec<i64> {
    assert_eq!(MIDNIGHT % 1440, 0);
    phases.filter(|r| (0..96).any(|q| !caught(MIDNIGHT + q * 15 + r))).collect()
}

#[test]
fn a_shift_is_caught_at_every_time_of_day_when_the_series_starts_5_to_14_minutes_past_the_quarter() {
    // What the d3_training end-to-end test relies on.
    assert_eq!(missed_phases(5..15), Vec::<i64>::new());
}

/// Missed for starts 0-4 minutes past the quarter hour until the detector judged values against
/// the range seen so far (issue 13): the likelihood alone still does not see this shift on a young
/// seasonal profile (docs/detection.md, known defect), but the shifted values are beyond the three
/// days' range, which alarms whatever the phase.
#[test]
fn a_shift_is_caught_whatever_minute_the_series_starts() {
    assert_eq!(missed_phases(0..15), Vec::<i64>::new());
}
