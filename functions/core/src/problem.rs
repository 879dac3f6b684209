//! RFC 9457 problem details: the one error type every HTTP function returns.
//!
//! A `Problem` carries what the client may see (`title`, `detail`, `errors`) and, separately,
//! an internal cause that is logged but never sent.

use lambda_http::{Body, Response};
use serde_json::{Map, Value};

pub const CONTENT_TYPE: &str = "application/problem+json";

pub use naksha_contracts::input::FieldError;

#[derive(Debug, Clone)]
pub struct Problem {
    pub status: u16,
    pub slug: &'static str,
    pub title: &'static str,
    pub detail: String,
    pub errors: Vec<FieldError>,
    /// Extra members (RFC 9457 §3.2), e.g. which dependencies are down.
    pub extensions: Map<String, Value>,
    /// Extra response headers, e.g. `WWW-Authenticate`.
    pub headers: Vec<(&'static str, String)>,
    /// Logged, never sent.
    pub internal: Option<String>,
}

impl Problem {
    pub fn new(status: u16, slug: &'static str, title: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            slug,
            title,
            detail: detail.into(),
            errors: Vec::new(),
            extensions: Map::new(),
            headers: Vec::new(),
            internal: None,
        }
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(400, "invalid-input", "The request is invalid", detail)
    }

    /// 400 listing every problem found.
    pub fn invalid_fields(errors: Vec<FieldError>) -> Self {
        let detail = match errors.len() {
            1 => "1 problem was found in the request body; nothing was written".to_owned(),
            n => format!("{n} problems were found in the request body; nothing was written"),
        };
        Self { errors, ..Self::bad_request(detail) }
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        let detail = detail.into();
        let challenge = format!("Bearer error=\"invalid_token\", error_description=\"{}\"", detail.replace('"', "'"));
        let mut p = Self::new(401, "unauthorized", "Authentication failed", detail);
        p.headers.push(("www-authenticate", challenge));
        p
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(403, "forbidden", "Permission denied", detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(404, "not-found", "Not found", detail)
    }

    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(409, "conflict", "Conflict with the current state", detail)
    }

    pub fn payload_too_large(limit: usize, got: usize) -> Self {
        Self::new(
            413,
            "payload-too-large",
            "Request body too large",
            format!("the body is {got} bytes; the limit is {limit} bytes"),
        )
    }

    /// 413 for a request that is within the body limit but too large in another way.
    pub fn too_large(detail: impl Into<String>) -> Self {
        Self::new(413, "payload-too-large", "Request too large", detail)
    }

    /// 429 with `Retry-After` (seconds).
    pub fn too_many_requests(detail: impl Into<String>, retry_after: u64) -> Self {
        let mut p = Self::new(429, "too-many-requests", "Too many requests", detail)
            .with_extension("retry_after", serde_json::json!(retry_after));
        p.headers.push(("retry-after", retry_after.to_string()));
        p
    }

    pub fn method_not_allowed(method: &str) -> Self {
        Self::new(405, "method-not-allowed", "Method not allowed", format!("{method} is not supported here"))
    }

    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(503, "unavailable", "Service unavailable", detail)
    }

    /// 500 with a generic client message; `cause` goes to the log only.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        let mut p = Self::new(500, "internal", "Internal error", "the request failed; it has been logged");
        p.internal = Some(cause.to_string());
        p
    }

    pub fn with_internal(mut self, cause: impl std::fmt::Display) -> Self {
        self.internal = Some(cause.to_string());
        self
    }

    pub fn with_extension(mut self, key: &str, value: Value) -> Self {
        self.extensions.insert(key.to_owned(), value);
        self
    }

    pub fn type_uri(&self) -> String {
        format!("urn:naksha:problem:{}", self.slug)
    }

    pub fn body(&self) -> Value {
        let mut doc = Map::new();
        doc.insert("type".into(), Value::String(self.type_uri()));
        doc.insert("title".into(), Value::String(self.title.to_owned()));
        doc.insert("status".into(), Value::from(self.status));
        doc.insert("detail".into(), Value::String(self.detail.clone()));
        if !self.errors.is_empty() {
            doc.insert("errors".into(), serde_json::to_value(&self.errors).unwrap_or(Value::Array(Vec::new())));
        }
        for (k, v) in &self.extensions {
            doc.entry(k.clone()).or_insert_with(|| v.clone());
        }
        Value::Object(doc)
    }

    pub fn into_response(self) -> Response<Body> {
        let body = self.body().to_string();
        let mut builder = Response::builder()
            .status(self.status)
            .header("content-type", CONTENT_TYPE)
            .header("cache-control", "no-store");
        for (name, value) in &self.headers {
            builder = builder.header(*name, value.as_str());
        }
        builder.body(Body::Text(body)).unwrap_or_else(|_| {
            let mut r = Response::new(Body::Text(String::from("{\"status\":500}")));
            *r.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
            r
        })
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.title, self.detail)
    }
}

impl std::error::Error for Problem {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_has_the_rfc9457_members_and_never_the_internal_cause() {
        let p = Problem::internal("dynamodb said: secret table arn");
        let body = p.body();
        assert_eq!(body["status"], 500);
        assert_eq!(body["type"], "urn:naksha:problem:internal");
        assert!(body["title"].is_string() && body["detail"].is_string());
        assert!(!body.to_string().contains("secret table arn"));
    }

    #[test]
    fn response_is_problem_json_with_status_and_challenge() {
        let r = Problem::unauthorized("token expired").into_response();
        assert_eq!(r.status(), 401);
        assert_eq!(r.headers()["content-type"], CONTENT_TYPE);
        assert!(r.headers()["www-authenticate"].to_str().unwrap().contains("invalid_token"));
    }

    #[test]
    fn invalid_fields_lists_each_error() {
        let p = Problem::invalid_fields(vec![
            FieldError::new("/events/0/value", "must be a number"),
            FieldError::new("/events/3/ts", "must be RFC 3339"),
        ]);
        let body = p.body();
        assert_eq!(body["errors"].as_array().unwrap().len(), 2);
        assert_eq!(body["errors"][1]["pointer"], "/events/3/ts");
    }
}
