//! The HTTP routes of insight-stream, independent of how they are wired into Lambda.

use lambda_http::{Body, Request, Response};
use naksha_core::auth::{Role, Verifier};
use naksha_core::http;
use naksha_core::metrics::{CounterStore, render};
use naksha_core::problem::Problem;

use crate::ingest::{Ingest, RecordSink};

/// `POST /ingest` (role `operator`) → 202 `{"accepted", "event_ids"}`.
pub async fn ingest<S: RecordSink, C: CounterStore>(
    verifier: &Verifier,
    ingest: &Ingest<S, C>,
    req: Request,
) -> Result<Response<Body>, Problem> {
    if req.method() != lambda_http::http::Method::POST {
        return Err(Problem::method_not_allowed(req.method().as_str()));
    }
    let principal = verifier.authorize(req.headers(), Role::Operator).await?;
    let body = http::body_bytes(&req)?;
    let accepted = ingest.ingest(&principal, body, chrono::Utc::now().timestamp_millis()).await?;
    http::json(202, &accepted)
}

/// `GET /metrics` → Prometheus text format 0.0.4, fleet-wide values.
pub async fn metrics<C: CounterStore>(counters: &C) -> Result<Response<Body>, Problem> {
    let values = counters
        .read_all()
        .await
        .map_err(|e| Problem::unavailable("the counter table could not be read").with_internal(e))?;
    http::text(200, "text/plain; version=0.0.4; charset=utf-8", render(&values, env!("CARGO_PKG_VERSION")))
}

#[cfg(test)]
mod tests {
    use lambda_http::request::LambdaRequest;

    #[test]
    fn the_sample_http_events_in_events_parse_as_api_gateway_v2_requests() {
        for (file, method, path) in
            [("ingest.json", "POST", "/ingest"), ("health.json", "GET", "/health"), ("metrics.json", "GET", "/metrics")]
        {
            let path_on_disk = format!("{}/../../events/{file}", env!("CARGO_MANIFEST_DIR"));
            let text = std::fs::read_to_string(&path_on_disk).unwrap();
            let event: LambdaRequest = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
            let request: lambda_http::Request = event.into();
            assert_eq!((request.method().as_str(), request.uri().path()), (method, path), "{file}");
        }
    }
}
