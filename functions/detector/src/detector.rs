//! The streaming detector: one value at a time in, an anomaly score in [0, 1] out. At 0.5 the
//! series raises a signal.
//!
//! 1. **Raw surprise** of each value against the recent past: the larger of a spike score
//!    (distance from the trailing median in robust units, MAD-based) and a level-shift score
//!    (the mean of the last few values against the same trailing median).
//! 2. **Anomaly likelihood**: how unusual the recent average surprise is compared with this
//!    series' own history of surprises (a normal tail probability). A noisy series learns that
//!    big surprises are ordinary; a calm one that small ones are not.
//! 3. **Score**: `0.5 · log(tail) / log(alarm_tail)`, capped at 1, so 0.5 is exactly "rarer
//!    than `alarm_tail`". After an alarm the score stays below 0.5 for `refractory` values: one
//!    incident, one signal.
//!
//! Values that are not finite, or not newer than the last one, are ignored (score 0, state
//! unchanged). Nothing is random; the same input gives the same scores.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// Tunable parameters: part of the model contract, since the trainer fits them per series and the
/// consumer loads them from the tenant's champion (defaults fixed for NAB, see docs/detection.md).
pub use naksha_contracts::models::DetectorParams as Params;

/// Everything the detector remembers about one series. Small: a few hundred numbers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub seen: u64,
    pub last_ts: Option<i64>,
    recent: VecDeque<f64>,
    surprises: VecDeque<f64>,
    averaged: VecDeque<f64>,
    since_alarm: Option<u64>,
    pub last_score: f64,
    /// Per time-of-day bucket: running level and running absolute deviation (None: not seen
    /// yet; JSON has no NaN).
    #[serde(default)]
    season_level: Vec<Option<f64>>,
    #[serde(default)]
    season_spread: Vec<Option<f64>>,
    #[serde(default)]
    first_ts: Option<i64>,
    /// Extra orders of magnitude of evidence this series currently needs.
    #[serde(default)]
    strictness: f64,
}

fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n == 0 {
        return 0.0;
    }
    if n % 2 == 1 { sorted[n / 2] } else { (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0 }
}

/// Q(z) = P(Z > z) for a standard normal (Abramowitz–Stegun erfc approximation, |ε| < 1.5e-7).
pub fn normal_tail(z: f64) -> f64 {
    let x = z / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * x.abs());
    let poly =
        t * (0.254_829_592 + t * (-0.284_496_736 + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erfc = poly * (-x * x).exp();
    let erfc = if x >= 0.0 { erfc } else { 2.0 - erfc };
    0.5 * erfc
}

impl State {
    /// Feed one value; returns its anomaly score in [0, 1].
    pub fn update(&mut self, p: &Params, ts: i64, value: f64) -> f64 {
        if !value.is_finite() || self.last_ts.is_some_and(|last| ts <= last) {
            return 0.0;
        }
        self.last_ts = Some(ts);
        self.first_ts.get_or_insert(ts);
        self.seen += 1;
        let local = self.surprise(p, value);
        let seasonal = self.seasonal_surprise(p, ts, value);
        // Anomalous only if no model explains the value.
        let surprise = seasonal.map_or(local, |s| s.min(local));
        push(&mut self.recent, value, p.window);
        push(&mut self.surprises, surprise, p.averaging);
        let avg = self.surprises.iter().sum::<f64>() / self.surprises.len() as f64;
        let (mean, std) = mean_std(&self.averaged);
        push(&mut self.averaged, avg, p.history);
        if let Some(n) = self.since_alarm.as_mut() {
            *n += 1;
        }
        let days = (ts - self.first_ts.unwrap_or(ts)) as f64 / 86_400.0;
        let learning = (self.seen as usize) < p.warmup || days < p.learning_days || self.averaged.len() < 20;
        let score = if learning {
            0.0
        } else {
            let tail = normal_tail((avg - mean) / std.max(1e-3)).max(1e-300);
            // A series that alarms often needs stronger evidence: each alarm makes the bar ten
            // times stricter, relaxing again over `relax` values.
            let bar = p.alarm_tail * 10f64.powf(-self.strictness);
            (0.5 * tail.ln() / bar.ln()).clamp(0.0, 1.0)
        };
        // A value far outside what both models allow is an anomaly even on a series whose
        // surprises are usually large.
        let score = if p.extreme > 0.0 && !learning && surprise >= p.extreme { score.max(0.5) } else { score };
        let in_refractory = self.since_alarm.is_some_and(|n| (n as usize) <= p.refractory);
        let score = if in_refractory { score.min(0.49) } else { score };
        if p.relax > 0 {
            self.strictness = (self.strictness - 1.0 / p.relax as f64).max(0.0);
        }
        if score >= 0.5 {
            self.since_alarm = Some(0);
            if p.relax > 0 {
                self.strictness += 1.0;
            }
        }
        self.last_score = score;
        score
    }

    /// How surprising `value` is for its time of day, once the profile has been learned; learns
    /// from the value afterwards.
    fn seasonal_surprise(&mut self, p: &Params, ts: i64, value: f64) -> Option<f64> {
        if p.buckets == 0 {
            return None;
        }
        if self.season_level.len() != p.buckets {
            self.season_level = vec![None; p.buckets];
            self.season_spread = vec![None; p.buckets];
        }
        let b = ((ts.rem_euclid(86_400) as f64 / 86_400.0) * p.buckets as f64) as usize % p.buckets;
        let days = (ts - self.first_ts.unwrap_or(ts)) as f64 / 86_400.0;
        let out = match (self.season_level[b], self.season_spread[b]) {
            (Some(level), Some(spread)) if days >= p.seasonal_days => {
                let (_, std) = mean_std(&self.recent);
                let scale = (1.4826 * spread).max(0.25 * std).max(1e-3 * level.abs()).max(1e-9);
                let z = (value - level).abs() / scale;
                Some(1.0 - (-z / 6.0).exp())
            }
            _ => None,
        };
        let r = p.seasonal_rate;
        match self.season_level[b] {
            Some(level) => {
                let dev = (value - level).abs();
                self.season_level[b] = Some(level + r * (value - level));
                self.season_spread[b] = Some(self.season_spread[b].map_or(dev, |spread| spread + r * (dev - spread)));
            }
            None => self.season_level[b] = Some(value),
        }
        out
    }

    /// How surprising `value` is given the trailing window, in robust units squashed to [0, 1).
    fn surprise(&self, p: &Params, value: f64) -> f64 {
        if self.recent.len() < 3 {
            return 0.0;
        }
        let mut sorted: Vec<f64> = self.recent.iter().copied().collect();
        sorted.sort_by(f64::total_cmp);
        let med = median(&sorted);
        // Short-term noise from successive differences: on a trending or seasonal window the
        // spread of the values overstates it. A flat window still has a scale (a small fraction
        // of its level), so noise-free series react to real changes and not to rounding.
        let mut diffs: Vec<f64> =
            self.recent.iter().zip(self.recent.iter().skip(1)).map(|(a, b)| (b - a).abs()).collect();
        diffs.sort_by(f64::total_cmp);
        let noise = 1.4826 * median(&diffs) / std::f64::consts::SQRT_2;
        let scale = noise.max(1e-3 * med.abs()).max(1e-9);
        let spike = (value - med).abs() / scale;
        let k = p.short.min(self.recent.len());
        let short_mean = (self.recent.iter().rev().take(k.saturating_sub(1)).sum::<f64>() + value) / k.max(1) as f64;
        let shift = (short_mean - med).abs() / scale;
        let z = spike.max(1.5 * shift);
        1.0 - (-z / 6.0).exp()
    }
}

fn push(q: &mut VecDeque<f64>, v: f64, cap: usize) {
    if q.len() == cap.max(1) {
        q.pop_front();
    }
    q.push_back(v);
}

fn mean_std(q: &VecDeque<f64>) -> (f64, f64) {
    if q.is_empty() {
        return (0.0, 0.0);
    }
    let n = q.len() as f64;
    let mean = q.iter().sum::<f64>() / n;
    let var = q.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
    (mean, var.sqrt())
}

/// Score a whole series (timestamps in seconds), as the NAB harness and tests do.
pub fn score_series(p: &Params, points: &[(i64, f64)]) -> Vec<f64> {
    let mut s = State::default();
    points.iter().map(|(t, v)| s.update(p, *t, *v)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(n: usize, f: impl Fn(usize) -> f64) -> Vec<(i64, f64)> {
        (0..n).map(|i| (i as i64 * 300, f(i))).collect()
    }

    /// Deterministic noise in [-1, 1].
    fn noise(i: usize) -> f64 {
        let x = (i as u64).wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((x >> 33) as f64 / (1u64 << 31) as f64) * 2.0 - 1.0
    }

    fn alarms(scores: &[f64]) -> Vec<usize> {
        scores.iter().enumerate().filter(|(_, s)| **s >= 0.5).map(|(i, _)| i).collect()
    }

    #[test]
    fn normal_tail_matches_known_values() {
        assert!((normal_tail(0.0) - 0.5).abs() < 1e-7);
        assert!((normal_tail(1.96) - 0.025).abs() < 1e-4);
        assert!((normal_tail(-1.96) - 0.975).abs() < 1e-4);
        assert!(normal_tail(8.0) < 1e-14);
    }

    #[test]
    fn flags_a_spike_and_only_once() {
        let s = series(1200, |i| 10.0 + noise(i) + if i == 900 { 25.0 } else { 0.0 });
        let a = alarms(&score_series(&Params::default(), &s));
        assert_eq!(a.len(), 1, "{a:?}");
        assert!((900..910).contains(&a[0]), "{a:?}");
    }

    #[test]
    fn flags_a_level_shift_soon_after_it_happens() {
        let s = series(1500, |i| 50.0 + 2.0 * noise(i) + if i >= 1000 { 15.0 } else { 0.0 });
        let a = alarms(&score_series(&Params::default(), &s));
        assert!(!a.is_empty() && (1000..1015).contains(&a[0]), "{a:?}");
        assert!(a.iter().all(|i| *i >= 1000), "no alarm before the shift: {a:?}");
    }

    #[test]
    fn a_slow_drift_that_becomes_steep_is_noticed() {
        let s = series(2000, |i| 20.0 + noise(i) + if i > 1500 { (i - 1500) as f64 * 0.3 } else { 0.0 });
        let a = alarms(&score_series(&Params::default(), &s));
        assert!(a.iter().any(|i| (1500..1600).contains(i)), "{a:?}");
        assert!(a.iter().all(|i| *i > 1500), "{a:?}");
    }

    #[test]
    fn a_steady_daily_cycle_is_not_an_anomaly() {
        let day = 288.0;
        let s = series(3000, |i| 100.0 + 30.0 * (i as f64 * std::f64::consts::TAU / day).sin() + noise(i));
        let a = alarms(&score_series(&Params::default(), &s));
        assert!(a.len() <= 1, "a plain daily cycle raised {a:?}");
    }

    #[test]
    fn a_flat_series_is_quiet_until_it_moves() {
        let s = series(1000, |i| if i < 800 { 5.0 } else { 9.0 });
        let a = alarms(&score_series(&Params::default(), &s));
        assert_eq!(a.first().map(|i| (800..805).contains(i)), Some(true), "{a:?}");
    }

    #[test]
    fn nan_infinity_gaps_and_out_of_order_points_do_not_panic_or_count() {
        let p = Params::default();
        let mut st = State::default();
        assert_eq!(st.update(&p, 0, 1.0), 0.0);
        assert_eq!(st.update(&p, 300, f64::NAN), 0.0);
        assert_eq!(st.update(&p, 600, f64::INFINITY), 0.0);
        assert_eq!(st.update(&p, 0, 2.0), 0.0, "not newer than the last value");
        assert_eq!(st.seen, 1);
        // A long gap is just the next value.
        let _ = st.update(&p, 10_000_000, 1.0);
        assert_eq!(st.seen, 2);
    }

    #[test]
    fn state_round_trips_and_scoring_is_deterministic() {
        let s = series(800, |i| 3.0 + noise(i));
        let p = Params::default();
        let mut a = State::default();
        // 40 values: most time-of-day buckets are still unseen when the state is stored.
        for (t, v) in &s[..40] {
            a.update(&p, *t, *v);
        }
        let half: State = serde_json::from_str(&serde_json::to_string(&a).unwrap()).unwrap();
        assert_eq!(half, a, "a partly learned profile round-trips");
        for (t, v) in &s[40..400] {
            a.update(&p, *t, *v);
        }
        let mut b: State = serde_json::from_str(&serde_json::to_string(&a).unwrap()).unwrap();
        for (t, v) in &s[400..] {
            assert_eq!(a.update(&p, *t, *v), b.update(&p, *t, *v));
        }
        assert_eq!(score_series(&p, &s), score_series(&p, &s));
        assert!(serde_json::to_string(&a).unwrap().len() < 40_000, "state stays small");
    }
}
