//! DynamoDB helpers every store uses: attribute values in and out, typed items (serde), the one
//! BatchGetItem reader, and how a failed condition is recognised.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::builders::KeysAndAttributesBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::aws::describe_error;

pub type Item = HashMap<String, AttributeValue>;

pub use crate::StoreError as DdbError;

pub fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

/// A number attribute from anything with a decimal `Display` (integers).
pub fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// The smallest magnitude DynamoDB stores (closer to zero is refused with a ValidationException).
pub const DDB_MIN_MAGNITUDE: f64 = 1e-130;
/// Just under the largest magnitude DynamoDB stores (9.9999999999999999999999999999999999999E+125).
pub const DDB_MAX_MAGNITUDE: f64 = 9.999_999_999_999_99e125;

/// A DynamoDB number from an `f64`: plain digits where they are short, E notation otherwise.
/// Values DynamoDB cannot hold never become a write that fails on every retry: magnitudes under
/// 1e-130 are stored as 0 and larger ones than DynamoDB's largest (or non-finite ones) as that
/// largest, with the sign kept (NaN as 0). Inputs are bounded far inside this range at ingest;
/// this is the last line for derived values.
pub fn number(v: f64) -> String {
    let v = if v.is_nan() || v.abs() < DDB_MIN_MAGNITUDE {
        0.0
    } else if v.abs() > DDB_MAX_MAGNITUDE {
        DDB_MAX_MAGNITUDE.copysign(v)
    } else {
        v
    };
    let a = v.abs();
    if a == 0.0 || (1e-12..1e20).contains(&a) { format!("{v}") } else { format!("{v:e}") }
}

pub fn f(v: f64) -> AttributeValue {
    AttributeValue::N(number(v))
}

pub fn get_s<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)?.as_s().ok().map(String::as_str)
}

pub fn get_n<T: std::str::FromStr>(item: &Item, name: &str) -> Option<T> {
    item.get(name)?.as_n().ok()?.parse().ok()
}

/// A list of strings (`L` of `S`); missing or other types read as empty.
pub fn get_strings(item: &Item, name: &str) -> Vec<String> {
    item.get(name)
        .and_then(|v| v.as_l().ok())
        .map(|l| l.iter().filter_map(|v| v.as_s().ok().cloned()).collect())
        .unwrap_or_default()
}

/// A map of strings (`M` of `S`); other value types are skipped.
pub fn get_string_map<C: FromIterator<(String, String)>>(item: &Item, name: &str) -> C {
    item.get(name)
        .and_then(|v| v.as_m().ok())
        .map(|m| m.iter().filter_map(|(k, v)| Some((k.clone(), v.as_s().ok()?.clone()))).collect())
        .unwrap_or_else(|| std::iter::empty().collect())
}

pub fn string_map<'a>(pairs: impl IntoIterator<Item = (&'a String, &'a String)>) -> AttributeValue {
    AttributeValue::M(pairs.into_iter().map(|(k, v)| (k.clone(), AttributeValue::S(v.clone()))).collect())
}

/// A typed item (its field names are the attribute names) from what DynamoDB returned.
pub fn from_item<T: DeserializeOwned>(item: Item) -> Result<T, DdbError> {
    serde_dynamo::aws_sdk_dynamodb_1::from_item(item).map_err(|e| DdbError(e.to_string()))
}

/// The attributes of a typed item.
pub fn to_item<T: Serialize>(value: &T) -> Result<Item, DdbError> {
    serde_dynamo::aws_sdk_dynamodb_1::to_item(value).map_err(|e| DdbError(e.to_string()))
}

/// Whether a write failed because its condition did not hold (as opposed to an outage).
pub fn condition_failed<E, R>(e: &SdkError<E, R>) -> bool
where
    E: ProvideErrorMetadata,
{
    e.as_service_error().and_then(|x| x.code()) == Some("ConditionalCheckFailedException")
}

/// Whether a transaction was cancelled (one of its conditions did not hold).
pub fn transaction_cancelled<E, R>(e: &SdkError<E, R>) -> bool
where
    E: ProvideErrorMetadata,
{
    e.as_service_error().and_then(|x| x.code()) == Some("TransactionCanceledException")
}

/// Whether DynamoDB refused the request itself (a `ValidationException`, also inside a cancelled
/// transaction): the same write fails on every retry, so it must not be retried as an outage.
pub fn rejected<E>(e: &SdkError<E>) -> bool
where
    E: ProvideErrorMetadata + std::error::Error,
{
    match e.as_service_error().and_then(|x| x.code()) {
        Some("ValidationException") => true,
        Some("TransactionCanceledException") => describe_error(e).contains("ValidationError"),
        _ => false,
    }
}

/// Every item a query finds, all pages.
pub async fn query_all(
    query: aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder,
) -> Result<Vec<Item>, DdbError> {
    query.into_paginator().items().send().try_collect().await.map_err(|e| DdbError(describe_error(&e)))
}

/// Every item a scan finds, all pages.
pub async fn scan_all(
    scan: aws_sdk_dynamodb::operation::scan::builders::ScanFluentBuilder,
) -> Result<Vec<Item>, DdbError> {
    scan.into_paginator().items().send().try_collect().await.map_err(|e| DdbError(describe_error(&e)))
}

/// Read `keys` with BatchGetItem: 100 per request, unprocessed keys retried with backoff (an
/// error after 8 tries). `shape` sets each request's read options (consistency, projection).
pub async fn batch_get(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    keys: Vec<Item>,
    shape: impl Fn(KeysAndAttributesBuilder) -> KeysAndAttributesBuilder,
) -> Result<Vec<Item>, DdbError> {
    let mut out = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(100) {
        let first = shape(KeysAndAttributes::builder().set_keys(Some(chunk.to_vec())))
            .build()
            .map_err(|e| DdbError(e.to_string()))?;
        let mut request = Some(first);
        let mut attempt = 0u32;
        while let Some(req) = request.take() {
            let resp = client
                .batch_get_item()
                .request_items(table, req)
                .send()
                .await
                .map_err(|e| DdbError(describe_error(&e)))?;
            if let Some(items) = resp.responses().and_then(|r| r.get(table)) {
                out.extend(items.iter().cloned());
            }
            if let Some(rest) = resp.unprocessed_keys().and_then(|u| u.get(table)).filter(|r| !r.keys().is_empty()) {
                attempt += 1;
                if attempt > 8 {
                    return Err(DdbError("BatchGetItem kept returning unprocessed keys".into()));
                }
                tokio::time::sleep(Duration::from_millis(25 << attempt.min(6))).await;
                request = Some(rest.clone());
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_round_trip_through_their_dynamodb_text() {
        for v in [0.0, 1.0, -2.5, 0.1 + 0.2, 1e-7, 123456789.123, 1e19, 1e30, -3.3e-40, 1e100] {
            let text = number(v);
            assert_eq!(text.parse::<f64>().unwrap(), v, "{text}");
            assert!(text.len() < 40, "{text}");
        }
    }

    #[test]
    fn numbers_dynamodb_cannot_hold_become_the_nearest_it_can() {
        assert_eq!(number(1e-140), "0");
        assert_eq!(number(-5e-324), "0");
        assert_eq!(number(f64::NAN), "0");
        assert_eq!(number(1e-130).parse::<f64>().unwrap(), 1e-130);
        for big in [1e200, f64::INFINITY, -1e127] {
            let text = number(big);
            let back: f64 = text.parse().unwrap();
            assert!(back.abs() <= DDB_MAX_MAGNITUDE && back.abs() > 9e125 && back.signum() == big.signum(), "{text}");
        }
    }

    #[test]
    fn typed_items_round_trip_through_attribute_values() {
        #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
        struct T {
            pk: String,
            count: u64,
            mean: f64,
            labels: std::collections::BTreeMap<String, String>,
        }
        let t = T { pk: "acme#x".into(), count: 3, mean: 0.25, labels: [("a".into(), "b".into())].into() };
        let item = to_item(&t).unwrap();
        assert_eq!(item["count"], AttributeValue::N("3".into()));
        assert_eq!(from_item::<T>(item).unwrap(), t);
    }
}
