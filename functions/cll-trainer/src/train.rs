//! Training, evaluation and the promotion gate: plain functions over data already read (no AWS).
//!
//! - **Split**: the most recent `holdout_fraction` of the window is held back; everything is fitted
//!   on the part before it and both the new version and the champion are judged on it.
//! - **Detector**: per series, seasonality on/off × three alarm tails are replayed over the
//!   training part with the production detector; the most sensitive setting whose alarm rate
//!   stays within the budget (alarms per series-day) wins. Series too short to judge keep the
//!   defaults.
//! - **Detector metric** (no labels at hand): on the held-back part, the alarms as the data was,
//!   and recall on a level shift injected a third of the way in (caught within `detect_within`
//!   points). `score = recall − mean excess`, where a series' excess is its alarms beyond the
//!   budget for the held-back time, divided by that allowance (at least one alarm).
//! - **Remediation**: per (signal, WPK) a Beta(1, 1) posterior from the outcomes of finished runs;
//!   judged by the Brier score on held-back outcomes.
//! - **Gate**: promote when there is no champion, or when the new version is strictly better on
//!   one measure and worse on none.

use std::collections::BTreeMap;

use aws_lc_rs::digest;
use naksha_contracts::TenantId;
use naksha_contracts::models::{
    Arm, ChampionMetrics, DetectorMetrics, DetectorModel, Metrics, ModelArtifact, RemediationMetrics, SCHEMA,
    SeriesFit, TrainingWindow, model_id,
};
use naksha_detector::detector::{Params, score_series};

/// Bumped whenever fitting or evaluation changes meaning (part of every model id).
pub const ALGORITHM: &str = "cll-1";

pub fn code_version() -> String {
    format!("naksha-trainer/{} {ALGORITHM}", env!("CARGO_PKG_VERSION"))
}

/// One series' per-minute values (mean of the minute's aggregate), oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesData {
    pub series_id: String,
    pub points: Vec<(i64, f64)>,
}

/// How a finished run ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub minute: i64,
    pub run_id: String,
    pub signal: String,
    pub wpk: String,
    pub ok: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TrainingData {
    pub tenant: TenantId,
    pub series: Vec<SeriesData>,
    pub outcomes: Vec<Outcome>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub holdout_fraction: f64,
    /// Alarms per series-day considered acceptable on ordinary data.
    pub alarm_budget_per_day: f64,
    pub alarm_tails: Vec<f64>,
    pub seasonal_buckets: usize,
    /// Size of the injected level shift in robust standard deviations.
    pub injected_shift: f64,
    /// Minutes after the shift within which an alarm counts as caught.
    pub detect_within: usize,
    /// Held-back minutes a series needs to be judged.
    pub min_holdout_points: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            holdout_fraction: 0.2,
            alarm_budget_per_day: 1.0,
            // The detector's default first, then stricter ones.
            alarm_tails: vec![Params::default().alarm_tail, 1e-2, 1e-3, 1e-4],
            seasonal_buckets: Params::default().buckets,
            injected_shift: 8.0,
            detect_within: 30,
            min_holdout_points: 60,
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TrainError {
    #[error("no aggregates in the training window: nothing to learn from")]
    NoData,
}

/// A trained version and what the gate made of it.
#[derive(Debug, Clone)]
pub struct Trained {
    pub artifact: ModelArtifact,
    pub promote: bool,
    pub reason: String,
}

impl TrainingData {
    /// No data yet, for `tenant`.
    pub fn new(tenant: TenantId) -> Self {
        Self { tenant, series: Vec::new(), outcomes: Vec::new() }
    }

    /// Put the data in canonical order (series by id, points by minute, outcomes by time and id)
    /// and drop what cannot be used (non-finite values, repeated minutes).
    pub fn normalise(&mut self) {
        self.series.sort_by(|a, b| a.series_id.cmp(&b.series_id));
        for s in &mut self.series {
            s.points.retain(|(_, v)| v.is_finite());
            s.points.sort_by_key(|(m, _)| *m);
            s.points.dedup_by_key(|(m, _)| *m);
        }
        self.series.retain(|s| !s.points.is_empty());
        self.outcomes.sort_by(|a, b| a.minute.cmp(&b.minute).then_with(|| a.run_id.cmp(&b.run_id)));
    }

    pub fn rows(&self) -> u64 {
        self.series.iter().map(|s| s.points.len() as u64).sum()
    }

    /// SHA-256 over the canonical form of everything training reads.
    pub fn digest(&self) -> String {
        let mut ctx = digest::Context::new(&digest::SHA256);
        ctx.update(self.tenant.as_str().as_bytes());
        for s in &self.series {
            ctx.update(b"\ns:");
            ctx.update(s.series_id.as_bytes());
            for (m, v) in &s.points {
                ctx.update(&m.to_le_bytes());
                ctx.update(&v.to_bits().to_le_bytes());
            }
        }
        for o in &self.outcomes {
            ctx.update(format!("\no:{}|{}|{}|{}|{}", o.minute, o.run_id, o.signal, o.wpk, o.ok).as_bytes());
        }
        naksha_contracts::signing::hex(ctx.finish().as_ref())
    }

    fn span(&self) -> Option<(i64, i64)> {
        let from = self.series.iter().filter_map(|s| s.points.first().map(|p| p.0)).min()?;
        let to = self.series.iter().filter_map(|s| s.points.last().map(|p| p.0)).max()?;
        Some((from, to))
    }
}

fn ts(minute: i64) -> i64 {
    minute * 60
}

fn alarms(scores: &[f64]) -> usize {
    scores.iter().filter(|s| **s >= 0.5).count()
}

/// Points at which the detector can alarm (after its learning period), as a count of minutes.
fn judged_minutes(p: &Params, points: &[(i64, f64)]) -> f64 {
    match (points.first(), points.last()) {
        (Some(first), Some(last)) => ((last.0 - first.0) as f64 - p.learning_days * 1440.0).max(0.0),
        _ => 0.0,
    }
}

/// Fit one series on its training part: the most sensitive setting within the alarm budget.
pub fn fit_series(base: &Params, settings: &Settings, train: &[(i64, f64)]) -> Option<SeriesFit> {
    let judged = judged_minutes(base, train);
    if judged < 1440.0 {
        return None; // under a day past the learning period: no evidence, keep the defaults
    }
    let points: Vec<(i64, f64)> = train.iter().map(|(m, v)| (ts(*m), *v)).collect();
    let mut tried = Vec::new();
    for buckets in [settings.seasonal_buckets, 0] {
        for tail in &settings.alarm_tails {
            let p = Params { buckets, alarm_tail: *tail, ..base.clone() };
            let rate = alarms(&score_series(&p, &points)) as f64 / (judged / 1440.0);
            tried.push((SeriesFit { buckets, alarm_tail: *tail }, rate));
        }
    }
    let within = tried
        .iter()
        .filter(|(_, rate)| *rate <= settings.alarm_budget_per_day)
        // most sensitive first; at equal sensitivity the model that explains more (fewer alarms)
        .max_by(|a, b| a.0.alarm_tail.total_cmp(&b.0.alarm_tail).then(b.1.total_cmp(&a.1)));
    let fit = within
        .or_else(|| tried.iter().min_by(|a, b| a.1.total_cmp(&b.1).then(a.0.alarm_tail.total_cmp(&b.0.alarm_tail))))?;
    Some(fit.0)
}

fn robust_scale(values: &[f64]) -> f64 {
    let mad = |xs: &mut Vec<f64>| -> f64 {
        if xs.is_empty() {
            return 0.0;
        }
        xs.sort_by(f64::total_cmp);
        let med = xs[xs.len() / 2];
        let mut dev: Vec<f64> = xs.iter().map(|x| (x - med).abs()).collect();
        dev.sort_by(f64::total_cmp);
        1.4826 * dev[dev.len() / 2]
    };
    let mut v = values.to_vec();
    let by_values = mad(&mut v);
    if by_values > 0.0 {
        return by_values;
    }
    let mut diffs: Vec<f64> = values.windows(2).map(|w| w[1] - w[0]).collect();
    let by_diffs = mad(&mut diffs) / std::f64::consts::SQRT_2;
    if by_diffs > 0.0 {
        return by_diffs;
    }
    let level = v.get(v.len() / 2).copied().unwrap_or(0.0).abs();
    (0.5 * level).max(1.0)
}

/// Judge detector parameters on the held-back part of every series.
pub fn evaluate_detector(
    params_for: &dyn Fn(&str) -> Params,
    data: &TrainingData,
    holdout_from: i64,
    settings: &Settings,
) -> DetectorMetrics {
    let (mut series, mut holdout_days_sum, mut alarm_sum, mut excess_sum, mut injected, mut detected) =
        (0usize, 0.0f64, 0.0f64, 0.0f64, 0usize, 0usize);
    for s in &data.series {
        let p = params_for(&s.series_id);
        let split = s.points.partition_point(|(m, _)| *m < holdout_from);
        let held = s.points.len() - split;
        let Some(first) = s.points.first() else { continue };
        // Judge only series whose detector is past its learning period when the holdout starts.
        if held < settings.min_holdout_points || ((holdout_from - first.0) as f64) < p.learning_days * 1440.0 {
            continue;
        }
        // Held-back time, not points: series may report less often than once a minute.
        let last = s.points.last().map_or(holdout_from, |p| p.0);
        let held_days = ((last - holdout_from).max(1) as f64) / 1440.0;
        series += 1;
        holdout_days_sum += held_days;
        let points: Vec<(i64, f64)> = s.points.iter().map(|(m, v)| (ts(*m), *v)).collect();
        let scores = score_series(&p, &points);
        let raised = alarms(&scores[split..]) as f64;
        alarm_sum += raised / held_days;
        let allowed = settings.alarm_budget_per_day * held_days;
        excess_sum += (raised - allowed).max(0.0) / allowed.max(1.0);

        let at = split + held / 3;
        let values: Vec<f64> = s.points[..split].iter().map(|(_, v)| *v).collect();
        let shift = settings.injected_shift * robust_scale(&values);
        let shifted: Vec<(i64, f64)> =
            points.iter().enumerate().map(|(i, (t, v))| (*t, if i >= at { v + shift } else { *v })).collect();
        let scores = score_series(&p, &shifted);
        injected += 1;
        let end = (at + settings.detect_within).min(scores.len());
        if scores[at..end].iter().any(|s| *s >= 0.5) {
            detected += 1;
        }
    }
    if series == 0 {
        return DetectorMetrics::default();
    }
    let recall = detected as f64 / injected as f64;
    let score = recall - excess_sum / series as f64;
    DetectorMetrics {
        series_evaluated: series,
        holdout_days: round(holdout_days_sum / series as f64),
        alarms_per_day: round(alarm_sum / series as f64),
        injected,
        detected,
        score: round(score),
    }
}

fn round(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

/// Beta(1, 1) posteriors from the outcomes before `before`.
pub fn fit_remediation(outcomes: &[Outcome], before: i64) -> BTreeMap<String, BTreeMap<String, Arm>> {
    let mut out: BTreeMap<String, BTreeMap<String, Arm>> = BTreeMap::new();
    for o in outcomes.iter().filter(|o| o.minute < before) {
        let arm = out.entry(o.signal.clone()).or_default().entry(o.wpk.clone()).or_default();
        if o.ok {
            arm.successes += 1;
        } else {
            arm.failures += 1;
        }
    }
    out
}

/// Brier score of a remediation model on the outcomes at or after `from`.
pub fn evaluate_remediation(
    model: &BTreeMap<String, BTreeMap<String, Arm>>,
    outcomes: &[Outcome],
    from: i64,
) -> RemediationMetrics {
    let held: Vec<&Outcome> = outcomes.iter().filter(|o| o.minute >= from).collect();
    if held.is_empty() {
        return RemediationMetrics::default();
    }
    let y = |o: &Outcome| if o.ok { 1.0 } else { 0.0 };
    let brier = held
        .iter()
        .map(|o| {
            let p = model.get(&o.signal).and_then(|w| w.get(&o.wpk)).copied().unwrap_or_default().p();
            (p - y(o)).powi(2)
        })
        .sum::<f64>()
        / held.len() as f64;
    let baseline = held.iter().map(|o| (0.5 - y(o)).powi(2)).sum::<f64>() / held.len() as f64;
    RemediationMetrics {
        holdout_outcomes: held.len(),
        brier: Some(round(brier)),
        baseline_brier: Some(round(baseline)),
    }
}

/// The promotion gate.
pub fn gate(new: &Metrics, champion: Option<&ChampionMetrics>) -> (bool, String) {
    let Some(c) = champion else { return (true, "no champion yet".into()) };
    const EPS: f64 = 1e-9;
    let mut better = Vec::new();
    let mut worse = Vec::new();
    if new.detector.series_evaluated > 0 || c.detector.series_evaluated > 0 {
        let d = new.detector.score - c.detector.score;
        let line = format!("detector score {:.4} vs {:.4}", new.detector.score, c.detector.score);
        if d > EPS {
            better.push(line);
        } else if d < -EPS {
            worse.push(line);
        }
    }
    if let (Some(b), Some(cb)) = (new.remediation.brier, c.remediation.brier) {
        let line = format!("remediation Brier {b:.4} vs {cb:.4}");
        if b < cb - EPS {
            better.push(line);
        } else if b > cb + EPS {
            worse.push(line);
        }
    }
    if !worse.is_empty() {
        (false, format!("not better than champion {}: worse on {}", c.model_id, worse.join(", ")))
    } else if better.is_empty() {
        (false, format!("not better than champion {}: equal on every measure", c.model_id))
    } else {
        (true, format!("better than champion {}: {}", c.model_id, better.join(", ")))
    }
}

/// Train a version on `data` (normalised), judge it and the champion on the held-back part, and
/// apply the gate. `progress(stage, fraction)` is called as the work advances.
pub fn train(
    data: &TrainingData,
    champion: Option<&ModelArtifact>,
    settings: &Settings,
    created_at: &str,
    progress: &mut dyn FnMut(&str, f64),
) -> Result<Trained, TrainError> {
    let (from, to) = data.span().ok_or(TrainError::NoData)?;
    let holdout_from = to - ((to - from) as f64 * settings.holdout_fraction).round() as i64;
    let base = Params::default();
    let digest = data.digest();
    let code = code_version();

    progress("fitting detector", 0.3);
    let mut fits = BTreeMap::new();
    for s in &data.series {
        let split = s.points.partition_point(|(m, _)| *m < holdout_from);
        if let Some(fit) = fit_series(&base, settings, &s.points[..split]) {
            fits.insert(s.series_id.clone(), fit);
        }
    }
    let remediation = fit_remediation(&data.outcomes, holdout_from);
    let mut artifact = ModelArtifact {
        schema: SCHEMA,
        model_id: model_id(&data.tenant, &code, &digest),
        tenant: data.tenant.clone(),
        created_at: created_at.to_owned(),
        code_version: code,
        data_digest: digest,
        window: TrainingWindow {
            from_minute: from,
            to_minute: to,
            holdout_from_minute: holdout_from,
            series: data.series.len(),
            rows: data.rows(),
            outcomes: data.outcomes.len(),
        },
        detector: DetectorModel { base, series: fits },
        remediation,
        metrics: Metrics::default(),
    };

    progress("evaluating", 0.6);
    let detector = evaluate_detector(&|id| artifact.params_for(id), data, holdout_from, settings);
    let remediation = evaluate_remediation(&artifact.remediation, &data.outcomes, holdout_from);
    progress("evaluating champion", 0.75);
    let champion_metrics = champion.map(|c| ChampionMetrics {
        model_id: c.model_id.clone(),
        detector: evaluate_detector(&|id| c.params_for(id), data, holdout_from, settings),
        remediation: evaluate_remediation(&c.remediation, &data.outcomes, holdout_from),
    });
    artifact.metrics = Metrics { detector, remediation, champion: champion_metrics };
    let (promote, reason) = gate(&artifact.metrics, artifact.metrics.champion.as_ref());
    Ok(Trained { artifact, promote, reason })
}

#[cfg(test)]
mod tests;
