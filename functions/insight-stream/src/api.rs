//! The HTTP routes of insight-stream, independent of how they are wired into Lambda.

use lambda_http::{Body, Request, RequestExt, Response};
use naksha_core::auth::{READERS, Role, Verifier};
use naksha_core::http;
use naksha_core::metrics::{CounterStore, render};
use naksha_core::problem::{FieldError, Problem};

use crate::ingest::{Ingest, IngestError};
use crate::ports::{OpenSignals, RecordSink, SeriesIndex};

/// The most signals `GET /signals` returns.
pub const MAX_SIGNALS: usize = 500;

/// Every way ingest can refuse, as problem+json (mapped here, once).
pub fn ingest_problem(e: IngestError) -> Problem {
    match e {
        IngestError::Invalid(body) if body.errors.is_empty() => Problem::bad_request(body.detail),
        IngestError::Invalid(body) => Problem::invalid_fields(body.errors),
        IngestError::TooLarge(detail) => Problem::too_large(detail),
        IngestError::Limited(refused) => refused.into(),
        IngestError::Unavailable(cause) => {
            Problem::unavailable("the telemetry stream refused the events; nothing was written, retry")
                .with_internal(cause)
        }
        IngestError::Partial { accepted, failed, total, cause } => Problem::unavailable(format!(
            "{} of {total} events were written; resend only the failed ones",
            accepted.len()
        ))
        .with_extension("accepted_event_ids", serde_json::json!(accepted))
        .with_extension("failed_event_ids", serde_json::json!(failed))
        .with_internal(cause),
    }
}

/// `POST /ingest` (role `operator`) → 202 `{"accepted", "event_ids"}`.
pub async fn ingest<S: RecordSink, C: CounterStore, I: SeriesIndex>(
    verifier: &Verifier,
    ingest: &Ingest<S, C, I>,
    req: Request,
) -> Result<Response<Body>, Problem> {
    if req.method() != lambda_http::http::Method::POST {
        return Err(Problem::method_not_allowed(req.method().as_str()));
    }
    let principal = verifier.authorize(req.headers(), Role::Operator).await?;
    let body = http::body_bytes(&req)?;
    // Checked by the idempotency layer before this handler runs (visible ASCII, ≤ 255).
    let key = req.headers().get("idempotency-key").and_then(|v| v.to_str().ok());
    let trace = http::trace_of(&req).traceparent();
    let accepted = ingest
        .ingest_traced(&principal, body, chrono::Utc::now().timestamp_millis(), key, Some(&trace))
        .await
        .map_err(ingest_problem)?;
    http::json(202, &accepted)
}

/// `GET /signals?limit=N` (a reading role: operator, approver or admin) → 200 `{"signals": [...]}`: the caller's series
/// with an open anomaly signal, newest first, each naming the agent run it started.
pub async fn signals<O: OpenSignals>(verifier: &Verifier, store: &O, req: Request) -> Result<Response<Body>, Problem> {
    if req.method() != lambda_http::http::Method::GET {
        return Err(Problem::method_not_allowed(req.method().as_str()));
    }
    let principal = verifier.authenticate(req.headers()).await?;
    principal.require_any(READERS)?;
    let limit = match req.query_string_parameters_ref().and_then(|q| q.first("limit")) {
        None => 100,
        Some(raw) => match raw.parse::<usize>() {
            Ok(n) if (1..=MAX_SIGNALS).contains(&n) => n,
            _ => {
                return Err(Problem::invalid_fields(vec![FieldError::new(
                    "/limit",
                    format!("must be a whole number from 1 to {MAX_SIGNALS}"),
                )]));
            }
        },
    };
    let found = store
        .open_signals(&principal.tenant, limit)
        .await
        .map_err(|e| Problem::unavailable("the series table could not be read").with_internal(e))?;
    let signals: Vec<serde_json::Value> = found
        .iter()
        .map(|s| {
            serde_json::json!({
                "series": {"id": s.series_id, "source": s.source, "name": s.name, "labels": s.labels},
                "signal": crate::detection::signal_name(&s.name),
                "score": s.score,
                "current_score": s.current_score,
                "opened_at": chrono::DateTime::from_timestamp(s.minute, 0).map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
                "run_id": s.run_id,
                "model_id": s.model_id,
            })
        })
        .collect();
    http::json(200, &serde_json::json!({"count": signals.len(), "signals": signals}))
}

/// `GET /health` → 200 `{"status":"ok","backend"}` or 503 `{"status":"down",...}`; with a valid
/// token (any role) also which dependency is which. A token that does not verify is a 401.
pub async fn health(
    verifier: &Verifier,
    aws: &naksha_core::aws::Aws,
    backend: naksha_core::config::Backend,
    dependencies: &[crate::health::Dependency],
    req: Request,
) -> Result<Response<Body>, Problem> {
    if req.method() != lambda_http::http::Method::GET {
        return Err(Problem::method_not_allowed(req.method().as_str()));
    }
    let detailed = match req.headers().get(lambda_http::http::header::AUTHORIZATION) {
        None => false,
        Some(_) => verifier.authenticate(req.headers()).await.map(|_| true)?,
    };
    let (status, doc) = crate::health::check(aws, backend, dependencies).await.view(detailed);
    http::json(status, &doc)
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
    use super::*;
    use crate::event::parse_body;
    use lambda_http::request::LambdaRequest;

    #[test]
    fn ingest_errors_map_to_their_status_once_and_never_carry_the_cause() {
        let invalid = parse_body(br#"{"events":[{"name":5}]}"#, 0).unwrap_err();
        let p = ingest_problem(IngestError::Invalid(invalid));
        assert_eq!((p.status, p.errors[0].pointer.as_str()), (400, "/events/0/name"));
        let p = ingest_problem(IngestError::Invalid(parse_body(b"{not json", 0).unwrap_err()));
        assert_eq!((p.status, p.errors.len()), (400, 0));
        let p = ingest_problem(IngestError::Unavailable("ThrottlingException: arn:aws:kinesis:secret".into()));
        assert_eq!(p.status, 503);
        assert!(!p.body().to_string().contains("arn:aws"));
        let p = ingest_problem(IngestError::Partial {
            accepted: vec!["a".into()],
            failed: vec!["b".into()],
            total: 2,
            cause: "x".into(),
        });
        assert_eq!((p.status, p.extensions["failed_event_ids"][0].as_str()), (503, Some("b")));
    }

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
