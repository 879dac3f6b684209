//! PromQL over Prometheus's HTTP API (`GET /api/v1/query`).

use serde_json::{Value, json};

use super::telemetry::ObserveError;

#[derive(Debug, Clone)]
pub struct PrometheusObserver {
    base: String,
    http: reqwest::Client,
}

/// Escape a value for use inside a PromQL double-quoted label matcher.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "")
}

/// Fill `{resource}` and `{name}` (the part after `kind/`) into a query template.
pub fn render(template: &str, resource: &str) -> String {
    let name = resource.rsplit('/').next().unwrap_or(resource);
    template.replace("{resource}", &escape(resource)).replace("{name}", &escape(name))
}

impl PrometheusObserver {
    pub fn new(base: impl Into<String>) -> Self {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(3))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Self { base: base.into().trim_end_matches('/').to_owned(), http }
    }

    /// Run an instant query; the result is `[{metric, value}]` for vectors, or the scalar.
    pub async fn query(&self, promql: &str) -> Result<Value, ObserveError> {
        let resp = self
            .http
            .get(format!("{}/api/v1/query", self.base))
            .query(&[("query", promql)])
            .send()
            .await
            .map_err(|e| ObserveError(format!("prometheus unreachable: {e}")))?;
        let body = resp.bytes().await.map_err(|e| ObserveError(format!("prometheus answer unreadable: {e}")))?;
        decode_answer(&body)
    }

    pub async fn query_for(&self, template: &str, resource: &str) -> Result<Value, ObserveError> {
        self.query(&render(template, resource)).await
    }
}

/// An instant query's answer (`/api/v1/query`): `[{metric, value}]` for a vector, the number
/// for a scalar, the result as given for a matrix or a string; an error answer, non-JSON or an
/// unknown `resultType` is an error.
pub fn decode_answer(body: &[u8]) -> Result<Value, ObserveError> {
    let body: Value =
        serde_json::from_slice(body).map_err(|e| ObserveError(format!("prometheus answered non-JSON: {e}")))?;
    if body["status"] != "success" {
        return Err(ObserveError(format!("prometheus: {} {}", body["errorType"], body["error"])));
    }
    let data = &body["data"];
    Ok(match data["resultType"].as_str() {
        Some("vector") => Value::Array(
            data["result"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|s| json!({"metric": s["metric"], "value": s["value"][1].as_str().and_then(|v| v.parse::<f64>().ok())}))
                .collect(),
        ),
        Some("scalar") => json!(data["result"][1].as_str().and_then(|v| v.parse::<f64>().ok())),
        Some("matrix" | "string") => data["result"].clone(),
        // Found by fuzzing: an answer with no or an unknown resultType was passed on as if it
        // were a result (raw `[time, "value"]` pairs where samples were expected).
        other => return Err(ObserveError(format!("prometheus answered an unknown resultType {other:?}"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_decode_by_their_result_type_and_an_unknown_one_is_refused() {
        let vector = br#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"job":"a"},"value":[1,"0.5"]}]}}"#;
        assert_eq!(decode_answer(vector).unwrap(), json!([{"metric": {"job": "a"}, "value": 0.5}]));
        let scalar = br#"{"status":"success","data":{"resultType":"scalar","result":[1,"42"]}}"#;
        assert_eq!(decode_answer(scalar).unwrap(), json!(42.0));
        let typo = br#"{"status":"success","data":{"resultTqpe":"vector","result":[{"value":[1,"0.5"]}]}}"#;
        assert!(decode_answer(typo).is_err());
        assert!(decode_answer(br#"{"status":"error","error":"bad"}"#).is_err());
        assert!(decode_answer(b"<html>").is_err());
    }

    #[test]
    fn templates_are_filled_and_escaped() {
        assert_eq!(render(r#"up{job="{name}"}"#, "deployment/payments"), r#"up{job="payments"}"#);
        assert_eq!(render(r#"x{r="{resource}"}"#, r#"deployment/a"b"#), r#"x{r="deployment/a\"b"}"#);
    }
}
