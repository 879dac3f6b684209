//! Configuration read from the environment at cold start.
//!
//! A function declares what it needs through a [`ConfigReader`]; [`ConfigReader::finish`] fails
//! with *every* missing or invalid variable named at once, so a misconfigured deployment fails
//! its first invocation with one clear message instead of one variable at a time.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

/// Where the AWS APIs are served from, as named by `GET /health`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Aws,
    LocalStack,
    Moto,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Aws => "aws",
            Backend::LocalStack => "localstack",
            Backend::Moto => "moto",
        }
    }
}

impl FromStr for Backend {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "aws" => Ok(Backend::Aws),
            "localstack" => Ok(Backend::LocalStack),
            "moto" => Ok(Backend::Moto),
            other => Err(format!("unknown backend {other:?} (expected aws, localstack or moto)")),
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The configuration failed to load; every problem is listed.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {}", .problems.join("; "))]
pub struct ConfigError {
    pub problems: Vec<String>,
}

/// Reads variables and remembers what was wrong with them.
#[derive(Debug)]
pub struct ConfigReader {
    vars: HashMap<String, String>,
    problems: Vec<String>,
}

impl ConfigReader {
    /// Snapshot of the process environment.
    pub fn from_env() -> Self {
        Self::from_vars(std::env::vars())
    }

    /// A reader over explicit variables (tests, tools).
    pub fn from_vars<I, K, V>(vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Self { vars: vars.into_iter().map(|(k, v)| (k.into(), v.into())).collect(), problems: Vec::new() }
    }

    /// A variable that must be set and non-empty. Returns an empty string (and records the
    /// problem) when it is not.
    pub fn required(&mut self, name: &str) -> String {
        match self.optional(name) {
            Some(v) => v,
            None => {
                self.problems.push(format!("{name} is not set"));
                String::new()
            }
        }
    }

    /// A variable that may be absent; empty counts as absent.
    pub fn optional(&self, name: &str) -> Option<String> {
        self.vars.get(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
    }

    /// A variable parsed with `FromStr`, with a default when absent.
    pub fn parsed<T>(&mut self, name: &str, default: T) -> T
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        match self.optional(name) {
            None => default,
            Some(raw) => match raw.parse() {
                Ok(v) => v,
                Err(e) => {
                    self.problems.push(format!("{name}: {e}"));
                    default
                }
            },
        }
    }

    /// Record a problem found while interpreting variables.
    pub fn problem(&mut self, message: impl Into<String>) {
        self.problems.push(message.into());
    }

    /// `Ok` when nothing was missing or invalid.
    pub fn finish(self) -> Result<(), ConfigError> {
        if self.problems.is_empty() { Ok(()) } else { Err(ConfigError { problems: self.problems }) }
    }
}

/// Settings every function has: which backend it talks to.
#[derive(Debug, Clone)]
pub struct Platform {
    pub backend: Backend,
    pub endpoint_url: Option<String>,
}

impl Platform {
    /// `NAKSHA_BACKEND` names the backend; without it, a function with no `AWS_ENDPOINT_URL`
    /// is on AWS and one with an endpoint override is on an emulator (LocalStack by default).
    pub fn from_config(r: &mut ConfigReader) -> Self {
        let endpoint_url = r.optional("AWS_ENDPOINT_URL");
        let default = if endpoint_url.is_some() { Backend::LocalStack } else { Backend::Aws };
        let backend = r.parsed("NAKSHA_BACKEND", default);
        Self { backend, endpoint_url }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_every_missing_variable_at_once() {
        let mut r = ConfigReader::from_vars([("PRESENT", "x")]);
        assert_eq!(r.required("PRESENT"), "x");
        let _ = r.required("FIRST_MISSING");
        let _ = r.required("SECOND_MISSING");
        let err = r.finish().unwrap_err();
        assert_eq!(err.problems.len(), 2);
        assert!(err.to_string().contains("FIRST_MISSING"));
        assert!(err.to_string().contains("SECOND_MISSING"));
    }

    #[test]
    fn empty_values_count_as_missing() {
        let mut r = ConfigReader::from_vars([("BLANK", "  ")]);
        let _ = r.required("BLANK");
        assert!(r.finish().is_err());
    }

    #[test]
    fn invalid_parsed_value_is_a_problem() {
        let mut r = ConfigReader::from_vars([("NAKSHA_BACKEND", "azure")]);
        let b: Backend = r.parsed("NAKSHA_BACKEND", Backend::Aws);
        assert_eq!(b, Backend::Aws);
        let err = r.finish().unwrap_err();
        assert!(err.problems[0].contains("azure"));
    }

    #[test]
    fn backend_defaults_follow_the_endpoint_override() {
        let mut r = ConfigReader::from_vars([("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")]);
        assert_eq!(Platform::from_config(&mut r).backend, Backend::LocalStack);
        let mut r = ConfigReader::from_vars(Vec::<(String, String)>::new());
        assert_eq!(Platform::from_config(&mut r).backend, Backend::Aws);
        let mut r =
            ConfigReader::from_vars([("AWS_ENDPOINT_URL", "http://127.0.0.1:4566"), ("NAKSHA_BACKEND", "moto")]);
        assert_eq!(Platform::from_config(&mut r).backend, Backend::Moto);
    }
}
