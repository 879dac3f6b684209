//! HTTP plumbing shared by every API function: the request loop, body limits, JSON in and out.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use lambda_http::{Body, Request, RequestExt, Response, service_fn};
use naksha_contracts::trace::TraceContext;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::Instrument;

use crate::auth::{Principal, READERS, Verifier};
use crate::idempotency::{Begin, Idempotency};
use crate::problem::Problem;

/// 405 unless the request uses `expected` (e.g. `"GET"`).
pub fn method(req: &Request, expected: &str) -> Result<(), Problem> {
    if req.method().as_str() == expected { Ok(()) } else { Err(Problem::method_not_allowed(req.method().as_str())) }
}

/// A GET by any of the reading roles: the caller's verified principal (401/403/405 otherwise).
pub async fn reader(verifier: &Verifier, req: &Request) -> Result<Principal, Problem> {
    method(req, "GET")?;
    let p = verifier.authenticate(req.headers()).await?;
    p.require_any(READERS)?;
    Ok(p)
}

/// Largest request body accepted (1 MiB); larger bodies get 413 before any parsing.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Run an HTTP Lambda. The handler returns a response or a [`Problem`]; this loop renders
/// problems as `application/problem+json`, logs the internal cause of server errors, and writes
/// one log line per request (method, route, status, latency; never headers or bodies).
pub async fn serve<H, Fut>(handler: H) -> Result<(), lambda_http::Error>
where
    H: Fn(Request) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Response<Body>, Problem>> + Send,
{
    serve_keyed(None, handler).await
}

/// [`serve`], honouring `Idempotency-Key` on writes when `idempotency` is given: a retried
/// request gets its first answer back and runs nothing (see [`crate::idempotency`]).
pub async fn serve_keyed<H, Fut>(idempotency: Option<Arc<Idempotency>>, handler: H) -> Result<(), lambda_http::Error>
where
    H: Fn(Request) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Response<Body>, Problem>> + Send,
{
    let handler = Arc::new(handler);
    lambda_http::run(service_fn(move |mut req: Request| {
        let method = req.method().to_string();
        let route = req.raw_http_path().to_owned();
        let started = Instant::now();
        let handler = Arc::clone(&handler);
        let idempotency = idempotency.clone();
        // P-4: the request's trace (its traceparent, else API Gateway's X-Ray id, else new) is
        // in every log line of the request and handed to the handler (`trace_of`).
        let trace = incoming_trace(req.headers());
        let span = tracing::info_span!("request", trace_id = %trace.trace_id());
        let traceparent = trace.traceparent();
        let trace_id = trace.trace_id().to_owned();
        let xray = req.lambda_context_ref().and_then(|c| c.xray_trace_id.clone());
        req.extensions_mut().insert(trace);
        let began = std::time::SystemTime::now();
        let work = async move {
            let mut replayed = false;
            let outcome = match idempotency.as_deref() {
                None => handler(req).await,
                Some(idem) => match idem.begin(&req).await {
                    Ok(None) => handler(req).await,
                    Ok(Some(Begin::Replay(kept))) => {
                        replayed = true;
                        Ok(kept)
                    }
                    Ok(Some(Begin::Run(claim))) => {
                        let r = handler(req).await;
                        let rendered = r.unwrap_or_else(render);
                        idem.finish(claim, &rendered).await;
                        Ok(rendered)
                    }
                    Err(problem) => Err(problem),
                },
            };
            let mut response = outcome.unwrap_or_else(render);
            if let Ok(v) = http::HeaderValue::from_str(&traceparent) {
                response.headers_mut().insert("traceparent", v);
            }
            tracing::info!(
                method = %method,
                route = %route,
                status = response.status().as_u16(),
                latency_ms = started.elapsed().as_secs_f64() * 1e3,
                replayed,
                "request"
            );
            let status = response.status();
            crate::xray::subsegment(
                "request",
                began,
                &[("naksha_trace_id", &trace_id), ("http_status", status.as_str())],
                status.is_server_error(),
            );
            Ok::<_, Infallible>(response)
        }
        .instrument(span);
        async move { crate::xray::in_invocation(xray.as_deref(), work).await }
    }))
    .await
}

/// The trace a request belongs to: its `traceparent`, else its X-Ray header, else a new one.
pub fn incoming_trace(headers: &http::HeaderMap) -> TraceContext {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    header("traceparent")
        .and_then(TraceContext::parse)
        .or_else(|| header("x-amzn-trace-id").and_then(TraceContext::from_xray))
        .map_or_else(TraceContext::new_root, |t| t.child())
}

/// The trace of a request served by [`serve_keyed`] (a new one for a request built elsewhere).
pub fn trace_of(req: &Request) -> TraceContext {
    req.extensions().get::<TraceContext>().cloned().unwrap_or_else(TraceContext::new_root)
}

/// A problem as its response; server errors' internal cause is logged here.
fn render(problem: Problem) -> Response<Body> {
    if problem.status >= 500 {
        tracing::error!(status = problem.status, detail = %problem.detail,
            cause = problem.internal.as_deref().unwrap_or(""), "request failed");
    }
    problem.into_response()
}

/// [`serve`] with state built once per cold start and shared by every request: the handler
/// gets its own handle on it.
pub async fn serve_with<T, H, Fut>(app: T, handler: H) -> Result<(), lambda_http::Error>
where
    T: Send + Sync + 'static,
    H: Fn(Arc<T>, Request) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Response<Body>, Problem>> + Send,
{
    serve_keyed_with(app, None, handler).await
}

/// [`serve_with`] and [`serve_keyed`] together.
pub async fn serve_keyed_with<T, H, Fut>(
    app: T,
    idempotency: Option<Arc<Idempotency>>,
    handler: H,
) -> Result<(), lambda_http::Error>
where
    T: Send + Sync + 'static,
    H: Fn(Arc<T>, Request) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Response<Body>, Problem>> + Send,
{
    let app = Arc::new(app);
    serve_keyed(idempotency, move |req| handler(Arc::clone(&app), req)).await
}

/// The request body, refused with 413 when over [`MAX_BODY_BYTES`].
pub fn body_bytes(req: &Request) -> Result<&[u8], Problem> {
    let body: &[u8] = req.body().as_ref();
    if body.len() > MAX_BODY_BYTES {
        return Err(Problem::payload_too_large(MAX_BODY_BYTES, body.len()));
    }
    Ok(body)
}

/// Parse a JSON body into `T`; a syntax or shape error is a 400 naming where it went wrong.
pub fn json_body<T: DeserializeOwned>(req: &Request) -> Result<T, Problem> {
    let bytes = body_bytes(req)?;
    if bytes.is_empty() {
        return Err(Problem::bad_request("the request body is empty; a JSON document is expected"));
    }
    serde_json::from_slice(bytes)
        .map_err(|e| Problem::bad_request(format!("the body is not valid JSON for this route: {e}")))
}

/// A JSON response with the given status.
pub fn json<T: Serialize>(status: u16, value: &T) -> Result<Response<Body>, Problem> {
    let body = serde_json::to_string(value).map_err(Problem::internal)?;
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("cache-control", "no-store")
        .body(Body::Text(body))
        .map_err(Problem::internal)
}

/// A plain-text response (used by `/metrics`).
pub fn text(status: u16, content_type: &str, body: String) -> Result<Response<Body>, Problem> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("cache-control", "no-store")
        .body(Body::Text(body))
        .map_err(Problem::internal)
}

/// A path parameter from the route (e.g. `{run_id}`), 404 when absent.
pub fn path_param(req: &Request, name: &str) -> Result<String, Problem> {
    req.path_parameters_ref()
        .and_then(|p| p.first(name))
        .map(str::to_owned)
        .ok_or_else(|| Problem::not_found(format!("no {name} in the path")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_over_one_mebibyte_is_413() {
        let req = Request::new(Body::Binary(vec![b' '; MAX_BODY_BYTES + 1]));
        assert_eq!(body_bytes(&req).unwrap_err().status, 413);
        let req = Request::new(Body::Binary(vec![b' '; MAX_BODY_BYTES]));
        assert_eq!(body_bytes(&req).unwrap().len(), MAX_BODY_BYTES);
    }

    #[test]
    fn empty_and_malformed_json_are_400() {
        #[derive(serde::Deserialize, Debug)]
        struct T {
            #[allow(dead_code)]
            a: u32,
        }
        let empty = Request::new(Body::Empty);
        assert_eq!(json_body::<T>(&empty).unwrap_err().status, 400);
        let bad = Request::new(Body::Text("{\"a\": \"x\"}".into()));
        assert_eq!(json_body::<T>(&bad).unwrap_err().status, 400);
        let good = Request::new(Body::Text("{\"a\": 1}".into()));
        assert_eq!(json_body::<T>(&good).unwrap().a, 1);
    }
}
