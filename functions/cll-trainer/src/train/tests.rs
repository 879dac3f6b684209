use super::*;

fn tenant(name: &str) -> TenantId {
    TenantId::from_record(name).unwrap()
}

/// Deterministic noise in [-1, 1].
fn noise(i: usize) -> f64 {
    let x = (i as u64).wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    ((x >> 33) as f64 / (1u64 << 31) as f64) * 2.0 - 1.0
}

fn series(id: &str, minutes: usize, f: impl Fn(usize) -> f64) -> SeriesData {
    SeriesData { series_id: id.into(), points: (0..minutes).map(|i| (1_000_000 + i as i64, f(i))).collect() }
}

fn outcome(minute: i64, wpk: &str, ok: bool) -> Outcome {
    Outcome { minute, run_id: format!("r{minute}"), signal: "anomaly.latency".into(), wpk: wpk.into(), ok }
}

const DAY: usize = 1440;

fn data() -> TrainingData {
    let mut d = TrainingData {
        tenant: tenant("acme"),
        series: vec![
            series("calm", 4 * DAY, |i| 100.0 + noise(i)),
            series("daily", 4 * DAY, |i| {
                100.0 + 40.0 * ((i % DAY) as f64 / DAY as f64 * std::f64::consts::TAU).sin() + noise(i)
            }),
            series("short", 300, |i| 5.0 + noise(i)),
        ],
        outcomes: vec![
            outcome(1_000_100, "restart", false),
            outcome(1_000_200, "shed", true),
            outcome(1_000_300, "shed", true),
            outcome(1_000_400, "restart", false),
            outcome(1_000_000 + 4 * DAY as i64 - 10, "shed", true),
            outcome(1_000_000 + 4 * DAY as i64 - 5, "restart", false),
        ],
    };
    d.normalise();
    d
}

#[test]
fn the_digest_is_canonical_and_sees_every_value() {
    let a = data();
    let mut shuffled = a.clone();
    shuffled.series.reverse();
    shuffled.series[0].points.reverse();
    shuffled.outcomes.reverse();
    shuffled.normalise();
    assert_eq!(a.digest(), shuffled.digest());
    let mut changed = a.clone();
    changed.series[1].points[17].1 += 1e-9;
    assert_ne!(a.digest(), changed.digest());
    let mut outcome_flipped = a.clone();
    outcome_flipped.outcomes[0].ok = true;
    assert_ne!(a.digest(), outcome_flipped.digest());
}

#[test]
fn normalise_drops_non_finite_and_repeated_minutes_and_empty_series() {
    let mut d = TrainingData {
        tenant: tenant("t"),
        series: vec![
            SeriesData {
                series_id: "b".into(),
                points: vec![(3, 1.0), (1, f64::NAN), (2, f64::INFINITY), (3, 2.0), (0, 4.0)],
            },
            SeriesData { series_id: "a".into(), points: vec![(1, f64::NAN)] },
        ],
        outcomes: vec![],
    };
    d.normalise();
    assert_eq!(d.series.len(), 1);
    assert_eq!(d.series[0].points, vec![(0, 4.0), (3, 1.0)]);
}

#[test]
fn no_data_is_an_error_not_a_model() {
    let d = TrainingData::new(tenant("t"));
    let r = train(&d, None, &Settings::default(), "now", &mut |_, _| {});
    assert!(matches!(r, Err(TrainError::NoData)));
}

#[test]
fn a_series_too_short_to_judge_keeps_the_defaults() {
    let d = data();
    assert_eq!(fit_series(&Params::default(), &Settings::default(), &d.series[2].points), None);
}

#[test]
fn fitting_picks_the_most_sensitive_setting_within_the_alarm_budget() {
    let d = data();
    let settings = Settings::default();
    let fit = fit_series(&Params::default(), &settings, &d.series[0].points).unwrap();
    // Replaying the chosen setting stays within budget, and every more sensitive one did not.
    let rate = |buckets: usize, tail: f64| {
        let p = Params { buckets, alarm_tail: tail, ..Params::default() };
        let pts: Vec<(i64, f64)> = d.series[0].points.iter().map(|(m, v)| (m * 60, *v)).collect();
        alarms(&score_series(&p, &pts)) as f64 / (judged_minutes(&p, &pts) / 60.0 / 1440.0)
    };
    assert!(rate(fit.buckets, fit.alarm_tail) <= settings.alarm_budget_per_day);
    for tail in settings.alarm_tails.iter().filter(|t| **t > fit.alarm_tail) {
        for buckets in [0, settings.seasonal_buckets] {
            assert!(rate(buckets, *tail) > settings.alarm_budget_per_day, "{buckets} {tail}");
        }
    }
}

#[test]
fn a_stricter_budget_never_picks_a_more_sensitive_setting() {
    let d = data();
    let loose = Settings { alarm_budget_per_day: 50.0, ..Settings::default() };
    let strict = Settings { alarm_budget_per_day: 0.0, ..Settings::default() };
    let a = fit_series(&Params::default(), &loose, &d.series[1].points).unwrap();
    let b = fit_series(&Params::default(), &strict, &d.series[1].points).unwrap();
    assert!(a.alarm_tail >= b.alarm_tail);
    assert_eq!(a.alarm_tail, loose.alarm_tails[0], "a loose budget allows the most sensitive tail");
}

#[test]
fn an_injected_shift_is_caught_and_a_blind_detector_scores_lower() {
    let d = data();
    let holdout = 1_000_000 + (4 * DAY as i64 * 4) / 5;
    let settings = Settings::default();
    let good = evaluate_detector(&|_| Params::default(), &d, holdout, &settings);
    assert_eq!(good.series_evaluated, 2, "the short series is not judged");
    assert_eq!(good.injected, 2);
    assert_eq!(good.detected, 2);
    // A detector that needs absurd evidence (and no extreme or out-of-range path) misses the shifts.
    let blind = Params { alarm_tail: 1e-300, extreme: 0.0, spatial_tolerance: 0.0, ..Params::default() };
    let bad = evaluate_detector(&|_| blind.clone(), &d, holdout, &settings);
    assert_eq!(bad.detected, 0);
    assert!(bad.score < good.score);
}

#[test]
fn remediation_learns_only_from_the_training_part_and_is_judged_on_the_rest() {
    let d = data();
    let holdout = 1_000_000 + 4 * DAY as i64 - 20;
    let m = fit_remediation(&d.outcomes, holdout);
    assert_eq!(m["anomaly.latency"]["shed"], Arm { successes: 2, failures: 0 });
    assert_eq!(m["anomaly.latency"]["restart"], Arm { successes: 0, failures: 2 });
    let r = evaluate_remediation(&m, &d.outcomes, holdout);
    assert_eq!(r.holdout_outcomes, 2);
    // shed: p = 3/4, y = 1 → 1/16; restart: p = 1/4, y = 0 → 1/16.
    assert!((r.brier.unwrap() - 0.0625).abs() < 1e-9);
    assert_eq!(r.baseline_brier, Some(0.25));
    assert_eq!(evaluate_remediation(&m, &d.outcomes, i64::MAX), RemediationMetrics::default());
}

fn metrics(score: f64, brier: Option<f64>) -> Metrics {
    Metrics {
        detector: DetectorMetrics { series_evaluated: 1, score, ..Default::default() },
        remediation: RemediationMetrics { holdout_outcomes: 1, brier, baseline_brier: Some(0.25) },
        champion: None,
    }
}

fn champ(m: &Metrics) -> ChampionMetrics {
    ChampionMetrics { model_id: "m-old".into(), detector: m.detector.clone(), remediation: m.remediation.clone() }
}

#[test]
fn the_gate_promotes_only_a_strictly_better_version() {
    assert!(gate(&metrics(0.5, Some(0.2)), None).0);
    let old = champ(&metrics(0.5, Some(0.2)));
    assert!(gate(&metrics(0.6, Some(0.2)), Some(&old)).0, "better detector, same remediation");
    assert!(gate(&metrics(0.5, Some(0.1)), Some(&old)).0, "same detector, better remediation");
    let (promote, reason) = gate(&metrics(0.5, Some(0.2)), Some(&old));
    assert!(!promote && reason.contains("equal"), "{reason}");
    let (promote, reason) = gate(&metrics(0.9, Some(0.3)), Some(&old));
    assert!(!promote && reason.contains("remediation"), "better on one, worse on another: {reason}");
    assert!(!gate(&metrics(0.4, None), Some(&old)).0);
}

#[test]
fn training_is_deterministic_and_judges_the_champion_on_the_same_data() {
    let d = data();
    let mut stages = Vec::new();
    let a = train(&d, None, &Settings::default(), "t1", &mut |s, f| stages.push((s.to_owned(), f))).unwrap();
    assert!(a.promote);
    assert!(stages.windows(2).all(|w| w[0].1 < w[1].1), "progress only moves forward");
    let b = train(&d, None, &Settings::default(), "t2", &mut |_, _| {}).unwrap();
    assert_eq!(a.artifact.model_id, b.artifact.model_id);
    assert_eq!(a.artifact.detector, b.artifact.detector);
    assert_eq!(a.artifact.window.rows, (8 * DAY + 300) as u64);
    assert_eq!(a.artifact.window.outcomes, 6);
    assert!(!a.artifact.detector.series.contains_key("short"));

    // Against itself as champion: equal on every measure, so it is not promoted.
    let again = train(&d, Some(&a.artifact), &Settings::default(), "t3", &mut |_, _| {}).unwrap();
    let c = again.artifact.metrics.champion.as_ref().unwrap();
    assert_eq!(c.detector, again.artifact.metrics.detector);
    assert!(!again.promote, "{}", again.reason);

    // Against a champion that knows nothing of remediation, the learned arms win.
    let mut naive = a.artifact.clone();
    naive.model_id = "m-naive".into();
    naive.remediation.clear();
    let vs_naive = train(&d, Some(&naive), &Settings::default(), "t4", &mut |_, _| {}).unwrap();
    assert!(vs_naive.promote, "{}", vs_naive.reason);
}

#[test]
fn held_back_time_is_measured_in_time_not_points() {
    // Five-minute samples over four days: the held-back fifth is 0.8 days, not 0.16.
    let mut d = TrainingData {
        tenant: tenant("acme"),
        series: vec![SeriesData {
            series_id: "five-minutely".into(),
            points: (0..(4 * DAY / 5)).map(|i| (1_000_000 + 5 * i as i64, 100.0 + noise(i))).collect(),
        }],
        outcomes: vec![],
    };
    d.normalise();
    let trained = train(&d, None, &Settings::default(), "t", &mut |_, _| {}).unwrap();
    let m = &trained.artifact.metrics.detector;
    assert_eq!(m.series_evaluated, 1);
    assert!((m.holdout_days - 0.8).abs() < 0.01, "{m:?}");
    // One alarm in 0.8 days is within a budget of one a day: no excess, so the score is the recall.
    assert!(m.score <= 1.0 && m.score >= m.detected as f64 / m.injected as f64 - 1e-9, "{m:?}");
}
