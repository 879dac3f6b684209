//! Per-tenant limits: requests per second (every authenticated route), new series per minute and
//! total series (ingest). A tenant over a limit gets 429 problem+json with `Retry-After`; nothing
//! of the refused request is written.
//!
//! The counters are fixed windows in the limits table (`LIMITS_TABLE`), taken with one
//! conditional `UpdateItem` (or, for series, one transaction over both series counters), so
//! they hold across every warm instance of every function:
//!
//! | `pk` | what | TTL |
//! |---|---|---|
//! | `<tenant>#rps#<epoch second>` | requests in that second | 2 minutes |
//! | `<tenant>#new-series#<epoch minute>` | series first seen in that minute | 1 hour |
//! | `<tenant>#series` | series ever counted (never decremented) | — |
//! | `<tenant>#limits` | the tenant's override: `requests_per_second`, `new_series_per_minute`, `max_series` | — |
//!
//! Defaults come from `LIMIT_REQUESTS_PER_SECOND`, `LIMIT_NEW_SERIES_PER_MINUTE` and
//! `LIMIT_MAX_SERIES`; an operator (not the tenant) writes the override item
//! (docs/runbooks/limits.md). Overrides are cached for a minute per instance.
//!
//! When the limits table cannot be reached, requests are let through (and logged): a limit
//! protects the service, it must not become its outage.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};
use naksha_contracts::TenantId;

use crate::aws::describe_error;
use crate::config::ConfigReader;
use crate::ddb::{condition_failed, get_n, n, s, transaction_cancelled};
use crate::problem::Problem;

/// How long a tenant's override is trusted before it is read again.
const OVERRIDE_TTL: Duration = Duration::from_secs(60);

/// One tenant's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TenantLimits {
    pub requests_per_second: u64,
    pub new_series_per_minute: u64,
    pub max_series: u64,
}

impl Default for TenantLimits {
    fn default() -> Self {
        Self { requests_per_second: 50, new_series_per_minute: 1_000, max_series: 20_000 }
    }
}

/// Which limit refused a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exceeded {
    RequestsPerSecond { limit: u64 },
    NewSeriesPerMinute { limit: u64, asked: u64 },
    TotalSeries { limit: u64, asked: u64 },
}

impl Exceeded {
    /// Seconds until a retry can succeed (for `Retry-After`).
    pub fn retry_after(&self, now: i64) -> u64 {
        match self {
            Self::RequestsPerSecond { .. } => 1,
            Self::NewSeriesPerMinute { .. } => (60 - now.rem_euclid(60)).max(1) as u64,
            // Only a raised limit helps; ask again in an hour.
            Self::TotalSeries { .. } => 3600,
        }
    }

    fn problem(&self, now: i64) -> Problem {
        let detail = match self {
            Self::RequestsPerSecond { limit } => {
                format!("this tenant may make {limit} requests per second; slow down and retry")
            }
            Self::NewSeriesPerMinute { limit, asked } => format!(
                "this request starts {asked} new series; this tenant may start {limit} per minute; nothing was written, retry after the minute"
            ),
            Self::TotalSeries { limit, asked } => format!(
                "this request starts {asked} new series, which would take this tenant past its {limit} series; nothing was written (ask an operator to raise the limit, or send fewer distinct series)"
            ),
        };
        Problem::too_many_requests(detail, self.retry_after(now))
    }
}

/// A request refused by a limit, and when (for `Retry-After`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{exceeded:?}")]
pub struct Refused {
    pub exceeded: Exceeded,
    pub at: i64,
}

impl From<Refused> for Problem {
    fn from(r: Refused) -> Self {
        r.exceeded.problem(r.at)
    }
}

#[derive(Debug)]
enum Store {
    Dynamo {
        db: aws_sdk_dynamodb::Client,
        table: String,
    },
    /// For unit tests of the callers: counters in memory, overrides set directly.
    Memory {
        counters: Mutex<HashMap<String, u64>>,
        overrides: Mutex<HashMap<TenantId, TenantLimits>>,
    },
}

/// The per-tenant limits of one function instance (build once per cold start).
#[derive(Debug)]
pub struct Limits {
    store: Store,
    defaults: TenantLimits,
    cached: Mutex<HashMap<TenantId, (Instant, TenantLimits)>>,
}

/// Where the limits live and their defaults, read from the environment.
#[derive(Debug, Clone)]
pub struct LimitsConfig {
    pub table: String,
    pub defaults: TenantLimits,
}

impl LimitsConfig {
    /// `None` without `LIMITS_TABLE` (no limits: local tools and unit tests).
    pub fn from_config(r: &mut ConfigReader) -> Option<Self> {
        let table = r.optional("LIMITS_TABLE")?;
        let d = TenantLimits::default();
        let defaults = TenantLimits {
            requests_per_second: r.parsed("LIMIT_REQUESTS_PER_SECOND", d.requests_per_second),
            new_series_per_minute: r.parsed("LIMIT_NEW_SERIES_PER_MINUTE", d.new_series_per_minute),
            max_series: r.parsed("LIMIT_MAX_SERIES", d.max_series),
        };
        Some(Self { table, defaults })
    }
}

fn now_secs() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

impl Limits {
    pub fn dynamo(db: aws_sdk_dynamodb::Client, config: LimitsConfig) -> Self {
        Self::with(Store::Dynamo { db, table: config.table }, config.defaults)
    }

    pub fn memory(defaults: TenantLimits) -> Self {
        Self::with(Store::Memory { counters: Mutex::default(), overrides: Mutex::default() }, defaults)
    }

    fn with(store: Store, defaults: TenantLimits) -> Self {
        Self { store, defaults, cached: Mutex::default() }
    }

    /// Memory store only: give `tenant` its own limits.
    pub fn set_override(&self, tenant: &TenantId, limits: TenantLimits) {
        if let Store::Memory { overrides, .. } = &self.store
            && let Ok(mut o) = overrides.lock()
        {
            o.insert(tenant.clone(), limits);
        }
        if let Ok(mut c) = self.cached.lock() {
            c.remove(tenant);
        }
    }

    /// The tenant's limits: its override if it has one, else the defaults.
    pub async fn of(&self, tenant: &TenantId) -> TenantLimits {
        if let Some((at, l)) = self.cached.lock().ok().and_then(|c| c.get(tenant).copied())
            && at.elapsed() < OVERRIDE_TTL
        {
            return l;
        }
        let limits = match &self.store {
            Store::Memory { overrides, .. } => {
                overrides.lock().ok().and_then(|o| o.get(tenant).copied()).unwrap_or(self.defaults)
            }
            Store::Dynamo { db, table } => {
                match db.get_item().table_name(table).key("pk", s(tenant.key(&["limits"]))).send().await {
                    Ok(out) => out.item().map_or(self.defaults, |i| TenantLimits {
                        requests_per_second: get_n(i, "requests_per_second")
                            .unwrap_or(self.defaults.requests_per_second),
                        new_series_per_minute: get_n(i, "new_series_per_minute")
                            .unwrap_or(self.defaults.new_series_per_minute),
                        max_series: get_n(i, "max_series").unwrap_or(self.defaults.max_series),
                    }),
                    Err(e) => {
                        tracing::warn!(error = %describe_error(&e), "could not read the tenant's limits; the defaults apply");
                        self.defaults
                    }
                }
            }
        };
        if let Ok(mut c) = self.cached.lock() {
            c.insert(tenant.clone(), (Instant::now(), limits));
        }
        limits
    }

    /// Count one request of `tenant` in this second; 429 when the second is full.
    pub async fn admit_request(&self, tenant: &TenantId) -> Result<(), Refused> {
        let now = now_secs();
        let limit = self.of(tenant).await.requests_per_second;
        let key = tenant.key(&["rps", &now.to_string()]);
        match self.take(&[(key, 1, limit, Some(now + 120))]).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(Refused { exceeded: Exceeded::RequestsPerSecond { limit }, at: now }),
            Err(e) => {
                tracing::warn!(error = %e, "could not count the request against the tenant's limit; let through");
                Ok(())
            }
        }
    }

    /// Count `new` series first seen now; 429 naming the limit when either the minute's or the
    /// total's would be exceeded (then neither counter moves).
    pub async fn admit_new_series(&self, tenant: &TenantId, new: u64) -> Result<(), Refused> {
        if new == 0 {
            return Ok(());
        }
        let now = now_secs();
        let l = self.of(tenant).await;
        if new > l.new_series_per_minute {
            return Err(Refused {
                exceeded: Exceeded::NewSeriesPerMinute { limit: l.new_series_per_minute, asked: new },
                at: now,
            });
        }
        let minute = tenant.key(&["new-series", &now.div_euclid(60).to_string()]);
        let total = tenant.key(&["series"]);
        let both = [(minute, new, l.new_series_per_minute, Some(now + 3600)), (total.clone(), new, l.max_series, None)];
        match self.take(&both).await {
            Ok(true) => Ok(()),
            Ok(false) => {
                // Which one was full: the total is the one a retry cannot fix, so say so if it is.
                let total_full = self.count(&total).await.is_some_and(|c| c + new > l.max_series);
                let exceeded = if total_full {
                    Exceeded::TotalSeries { limit: l.max_series, asked: new }
                } else {
                    Exceeded::NewSeriesPerMinute { limit: l.new_series_per_minute, asked: new }
                };
                Err(Refused { exceeded, at: now })
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not count new series against the tenant's limits; let through");
                Ok(())
            }
        }
    }

    async fn count(&self, key: &str) -> Option<u64> {
        match &self.store {
            Store::Memory { counters, .. } => counters.lock().ok().map(|c| c.get(key).copied().unwrap_or(0)),
            Store::Dynamo { db, table } => {
                let out = db.get_item().table_name(table).key("pk", s(key)).consistent_read(true).send().await.ok()?;
                Some(out.item().and_then(|i| get_n(i, "n")).unwrap_or(0))
            }
        }
    }

    /// Add each `amount` to its counter if every counter stays within its `max`; all or nothing.
    /// `Ok(false)`: a counter was full.
    async fn take(&self, counters: &[(String, u64, u64, Option<i64>)]) -> Result<bool, String> {
        if counters.iter().any(|(_, amount, max, _)| amount > max) {
            return Ok(false);
        }
        match &self.store {
            Store::Memory { counters: stored, .. } => {
                let mut c = stored.lock().map_err(|_| "poisoned".to_owned())?;
                if counters.iter().any(|(k, amount, max, _)| c.get(k).copied().unwrap_or(0) + amount > *max) {
                    return Ok(false);
                }
                for (k, amount, _, _) in counters {
                    *c.entry(k.clone()).or_default() += amount;
                }
                Ok(true)
            }
            Store::Dynamo { db, table } => {
                if let [(key, amount, max, ttl)] = counters {
                    let (expression, values) = add_within(*amount, *max, *ttl);
                    let sent = db
                        .update_item()
                        .table_name(table)
                        .key("pk", s(key))
                        .condition_expression(ROOM)
                        .update_expression(expression)
                        .set_expression_attribute_values(Some(values))
                        .send()
                        .await;
                    return match sent {
                        Ok(_) => Ok(true),
                        Err(e) if condition_failed(&e) => Ok(false),
                        Err(e) => Err(describe_error(&e)),
                    };
                }
                let items = counters
                    .iter()
                    .map(|(key, amount, max, ttl)| {
                        let (expression, values) = add_within(*amount, *max, *ttl);
                        Update::builder()
                            .table_name(table)
                            .key("pk", s(key))
                            .condition_expression(ROOM)
                            .update_expression(expression)
                            .set_expression_attribute_values(Some(values))
                            .build()
                            .map(|u| TransactWriteItem::builder().update(u).build())
                            .map_err(|e| e.to_string())
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                match db.transact_write_items().set_transact_items(Some(items)).send().await {
                    Ok(_) => Ok(true),
                    Err(e) if transaction_cancelled(&e) && describe_error(&e).contains("ConditionalCheckFailed") => {
                        Ok(false)
                    }
                    Err(e) => Err(describe_error(&e)),
                }
            }
        }
    }
}

/// The update adding `amount` to a counter's `n` (and moving its TTL), for [`ROOM`].
fn add_within(amount: u64, max: u64, ttl: Option<i64>) -> (&'static str, HashMap<String, AttributeValue>) {
    let mut values = HashMap::from([(":amount".to_owned(), n(amount)), (":room".to_owned(), n(max - amount))]);
    match ttl {
        Some(t) => {
            values.insert(":ttl".to_owned(), n(t));
            (ADD_TTL, values)
        }
        None => (ADD, values),
    }
}

const ROOM: &str = "attribute_not_exists(n) OR n <= :room";
const ADD: &str = "ADD n :amount";
const ADD_TTL: &str = "ADD n :amount SET expires_at = :ttl";

#[cfg(test)]
mod tests {
    use super::*;

    fn acme() -> TenantId {
        TenantId::from_record("acme").unwrap()
    }

    #[tokio::test]
    async fn a_tenant_over_its_requests_per_second_gets_429_with_retry_after_and_others_do_not() {
        let limits = Limits::memory(TenantLimits { requests_per_second: 3, ..Default::default() });
        let mut refused = None;
        for _ in 0..10 {
            if let Err(p) = limits.admit_request(&acme()).await {
                refused = Some(p);
                break;
            }
        }
        let p =
            Problem::from(refused.expect("the fourth request in a second is refused (unless the second turned over)"));
        assert_eq!(p.status, 429);
        assert!(p.headers.iter().any(|(k, v)| *k == "retry-after" && v == "1"));
        assert!(limits.admit_request(&TenantId::from_record("other").unwrap()).await.is_ok());
    }

    #[tokio::test]
    async fn new_series_count_against_the_minute_and_the_total_and_a_refusal_takes_nothing() {
        let limits = Limits::memory(TenantLimits { new_series_per_minute: 10, max_series: 15, ..Default::default() });
        let t = acme();
        assert!(limits.admit_new_series(&t, 0).await.is_ok());
        let p = Problem::from(limits.admit_new_series(&t, 11).await.unwrap_err());
        assert!(p.detail.contains("per minute"), "{}", p.detail);
        assert!(limits.admit_new_series(&t, 8).await.is_ok());
        assert!(limits.admit_new_series(&t, 2).await.is_ok());
        // The minute is full (10 of 10), the total is not (10 of 15).
        assert_eq!(Problem::from(limits.admit_new_series(&t, 1).await.unwrap_err()).status, 429);
        assert_eq!(limits.count(&t.key(&["series"])).await, Some(10), "a refused request counts nothing");
        // An override raises the minute but not the total: the total now refuses, for an hour.
        limits.set_override(&t, TenantLimits { new_series_per_minute: 100, max_series: 15, ..Default::default() });
        assert!(limits.admit_new_series(&t, 5).await.is_ok());
        let p = Problem::from(limits.admit_new_series(&t, 1).await.unwrap_err());
        assert!(p.detail.contains("past its 15 series"), "{}", p.detail);
        assert!(p.headers.iter().any(|(k, v)| *k == "retry-after" && v == "3600"));
    }

    #[test]
    fn retry_after_points_at_the_next_window() {
        assert_eq!(Exceeded::NewSeriesPerMinute { limit: 1, asked: 2 }.retry_after(1_000_000_040), 40);
        assert_eq!(Exceeded::RequestsPerSecond { limit: 1 }.retry_after(5), 1);
    }
}
