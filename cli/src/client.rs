//! The API client: where the API is and who is calling (flags, then `NAKSHA_*`, then the config
//! file), requests with retries that are safe to repeat, and errors that map to exit codes.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::Value;

/// What went wrong, and so the exit code: 1 failed, 2 usage, 3 refused by the API.
#[derive(Debug)]
pub enum CliError {
    /// The command line or a local file is wrong (exit 2).
    Usage(String),
    /// The API answered with a problem (exit 3): one readable line.
    Refused { status: u16, title: String, detail: String, errors: Vec<String> },
    /// Anything else: the API could not be reached, a run failed, a check did not pass (exit 1).
    Failed(String),
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Failed(_) => 1,
            CliError::Usage(_) => 2,
            CliError::Refused { .. } => 3,
        }
    }

    pub fn usage(what: impl Into<String>) -> Self {
        CliError::Usage(what.into())
    }

    pub fn failed(what: impl Into<String>) -> Self {
        CliError::Failed(what.into())
    }

    /// A problem+json answer (or any error answer) as a `Refused`.
    pub fn from_answer(status: u16, body: &str) -> Self {
        let doc: Value = serde_json::from_str(body).unwrap_or(Value::Null);
        let text = |k: &str| doc.get(k).and_then(Value::as_str).map(str::to_owned);
        let errors = doc
            .get("errors")
            .and_then(Value::as_array)
            .map(|es| {
                es.iter()
                    .map(|e| {
                        let at = e.get("pointer").and_then(Value::as_str).unwrap_or("");
                        let msg = e.get("message").or_else(|| e.get("detail")).and_then(Value::as_str).unwrap_or("");
                        if at.is_empty() { msg.to_owned() } else { format!("{at}: {msg}") }
                    })
                    .collect()
            })
            .unwrap_or_default();
        let reason = StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("error");
        CliError::Refused {
            status,
            title: text("title").unwrap_or_else(|| reason.to_owned()),
            detail: text("detail").unwrap_or_else(|| body.chars().take(200).collect::<String>().trim().to_owned()),
            errors,
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Usage(m) | CliError::Failed(m) => f.write_str(m),
            CliError::Refused { status, title, detail, errors } => {
                write!(f, "{status} {title}: {detail}")?;
                if !errors.is_empty() {
                    write!(f, " [{}]", errors.join("; "))?;
                }
                Ok(())
            }
        }
    }
}

/// The config file (YAML): `api`, `token` or `token_file`, `output`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    pub api: Option<String>,
    pub token: Option<String>,
    pub token_file: Option<PathBuf>,
    pub output: Option<String>,
}

impl ConfigFile {
    /// The file named, else `$NAKSHA_CONFIG`, else `$XDG_CONFIG_HOME/naksha/config.yaml` or
    /// `~/.config/naksha/config.yaml` if it exists. A named file that cannot be read is an error.
    pub fn load(named: Option<&Path>) -> Result<Self, CliError> {
        let path = match named {
            Some(p) => Some(p.to_path_buf()),
            None => {
                let base = std::env::var_os("XDG_CONFIG_HOME")
                    .map(PathBuf::from)
                    .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")));
                base.map(|b| b.join("naksha").join("config.yaml")).filter(|p| p.exists())
            }
        };
        let Some(path) = path else { return Ok(Self::default()) };
        let text = std::fs::read_to_string(&path)
            .map_err(|e| CliError::usage(format!("cannot read the config file {}: {e}", path.display())))?;
        serde_yaml::from_str(&text)
            .map_err(|e| CliError::usage(format!("the config file {} is not valid: {e}", path.display())))
    }
}

/// An API answer that was not a problem.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub text: String,
}

/// A request body.
#[derive(Debug, Clone)]
pub enum Body {
    None,
    Json(Value),
    Raw { bytes: Vec<u8>, content_type: &'static str },
}

#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
    /// Attempts for one request when the answer says a retry can help (429, 502–504, no answer).
    pub attempts: u32,
}

impl Client {
    pub fn new(base: &str, token: Option<String>) -> Result<Self, CliError> {
        let base = base.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(CliError::usage(format!("the API address must be an http(s) URL, not {base:?}")));
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .user_agent(concat!("naksha-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| CliError::failed(format!("cannot build an HTTP client: {e}")))?;
        Ok(Self { base, token, http, attempts: 6 })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub async fn get(&self, path: &str) -> Result<Value, CliError> {
        Ok(self.send(Method::GET, path, Body::None, None).await?.body)
    }

    /// A write, sent with one `Idempotency-Key` for all its attempts, so a retry after a lost
    /// answer never does the work twice.
    pub async fn post(&self, path: &str, body: Body) -> Result<Answer, CliError> {
        let key = uuid::Uuid::now_v7().to_string();
        self.send(Method::POST, path, body, Some(&key)).await
    }

    pub async fn send(&self, method: Method, path: &str, body: Body, key: Option<&str>) -> Result<Answer, CliError> {
        let url = format!("{}{path}", self.base);
        let mut last = String::new();
        for attempt in 0..self.attempts.max(1) {
            if attempt > 0 {
                tokio::time::sleep(backoff(attempt)).await;
            }
            let mut req = self.http.request(method.clone(), &url);
            if let Some(t) = &self.token {
                req = req.bearer_auth(t);
            }
            if let Some(k) = key {
                req = req.header("idempotency-key", k);
            }
            req = match &body {
                Body::None => req,
                Body::Json(v) => req.json(v),
                Body::Raw { bytes, content_type } => req.header("content-type", *content_type).body(bytes.clone()),
            };
            let resp = match req.send().await {
                Ok(r) => r,
                Err(e) => {
                    last = format!("no answer from {}: {e}", self.base);
                    continue;
                }
            };
            let status = resp.status().as_u16();
            let retry_after =
                resp.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
            let text = resp.text().await.unwrap_or_default();
            if (200..300).contains(&status) {
                let body = serde_json::from_str(&text).unwrap_or(Value::Null);
                return Ok(Answer { status, body, text });
            }
            if retryable(status) && attempt + 1 < self.attempts {
                if let Some(s) = retry_after {
                    tokio::time::sleep(Duration::from_secs(s.min(30))).await;
                }
                last = CliError::from_answer(status, &text).to_string();
                continue;
            }
            return Err(CliError::from_answer(status, &text));
        }
        Err(CliError::failed(last))
    }
}

/// 429 (a limit), 500 (the local emulator loses an answer now and then), 502–504: worth another
/// attempt, with the same idempotency key.
pub fn retryable(status: u16) -> bool {
    matches!(status, 429 | 500 | 502 | 503 | 504)
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(250u64.saturating_mul(1 << attempt.min(6)).min(8_000))
}

/// Percent-encode one path segment or query value (RFC 3986 unreserved characters stay).
pub fn enc(s: &str) -> String {
    const RESERVED: &percent_encoding::AsciiSet =
        &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');
    percent_encoding::utf8_percent_encode(s, RESERVED).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_reads_as_one_line_with_each_field_named() {
        let body = r#"{"type":"urn:x","title":"Invalid input","status":400,"detail":"2 problems","errors":[{"pointer":"/value","message":"must be a number"},{"pointer":"/name","message":"required"}]}"#;
        let e = CliError::from_answer(400, body);
        assert_eq!(e.exit_code(), 3);
        assert_eq!(e.to_string(), "400 Invalid input: 2 problems [/value: must be a number; /name: required]");
        assert!(!e.to_string().contains('\n'));
    }

    #[test]
    fn an_answer_that_is_not_a_problem_still_reads_clearly() {
        let e = CliError::from_answer(502, "<html>bad gateway</html>");
        assert_eq!(e.to_string(), "502 Bad Gateway: <html>bad gateway</html>");
    }

    #[test]
    fn exit_codes_mean_what_the_docs_say() {
        assert_eq!(CliError::failed("x").exit_code(), 1);
        assert_eq!(CliError::usage("x").exit_code(), 2);
    }

    #[test]
    fn only_answers_a_retry_can_change_are_retried() {
        for s in [429, 500, 502, 503, 504] {
            assert!(retryable(s), "{s}");
        }
        for s in [400, 401, 403, 404, 409, 413] {
            assert!(!retryable(s), "{s}");
        }
        assert!(backoff(1) < backoff(2) && backoff(20) == Duration::from_secs(8));
    }

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(enc("deployment/a b"), "deployment%2Fa%20b");
        assert_eq!(enc("run-01.x_~"), "run-01.x_~");
    }

    #[test]
    fn config_files_refuse_unknown_keys_and_the_api_must_be_a_url() {
        let dir = std::env::temp_dir().join(format!("naksha-cli-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good.yaml");
        std::fs::write(&good, "api: http://127.0.0.1:9000\ntoken_file: /tmp/t\n").unwrap();
        let c = ConfigFile::load(Some(&good));
        assert!(c.as_ref().is_ok_and(|c| c.api.as_deref() == Some("http://127.0.0.1:9000")), "{c:?}");
        let bad = dir.join("bad.yaml");
        std::fs::write(&bad, "api: http://x\ntokn: y\n").unwrap();
        assert!(matches!(ConfigFile::load(Some(&bad)), Err(CliError::Usage(_))));
        assert!(matches!(ConfigFile::load(Some(&dir.join("none.yaml"))), Err(CliError::Usage(_))));
        assert!(matches!(Client::new("127.0.0.1:9000", None), Err(CliError::Usage(_))));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
