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

/// A sample's value as Prometheus writes it (a string): the number, or null when it is not a
/// finite one (`"NaN"`, `"+Inf"`, anything else).
fn sample_value(v: &Value) -> Value {
    json!(v.as_str().and_then(|v| v.parse::<f64>().ok()).filter(|v| v.is_finite()))
}

/// An instant query's answer (`/api/v1/query`): `[{metric, value}]` for a vector, the number
/// for a scalar, `[{metric, values}]` for a matrix, the text for a string; every value a finite
/// number or null. An error answer, non-JSON or an unknown `resultType` is an error.
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
                .map(|s| json!({"metric": s["metric"], "value": sample_value(&s["value"][1])}))
                .collect(),
        ),
        Some("scalar") => sample_value(&data["result"][1]),
        // Found by fuzzing: a matrix was passed on as sent, so a series could carry a "value" of
        // any shape (`[t, "NaN"]`) where readers expect a number. Now each series is its metric
        // and its values, each a finite number or null, and nothing else.
        Some("matrix") => Value::Array(
            data["result"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|s| {
                    let values: Vec<Value> =
                        s["values"].as_array().into_iter().flatten().map(|p| sample_value(&p[1])).collect();
                    json!({"metric": s["metric"], "values": values})
                })
                .collect(),
        ),
        Some("string") => json!(data["result"][1].as_str()),
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
        let matrix = br#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"job":"a"},"values":[[1,"0.5"],[2,"NaN"],[3,"+Inf"]],"value":[1,"NaN"]}]}}"#;
        assert_eq!(decode_answer(matrix).unwrap(), json!([{"metric": {"job": "a"}, "values": [0.5, null, null]}]));
        let string = br#"{"status":"success","data":{"resultType":"string","result":[1,"up"]}}"#;
        assert_eq!(decode_answer(string).unwrap(), json!("up"));
        let nan = br#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"NaN"]}]}}"#;
        assert_eq!(decode_answer(nan).unwrap(), json!([{"metric": {}, "value": null}]));
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
