//! The hub's API as the node calls it. The token is read from its file on every call, so a
//! rotated token is picked up without a restart; it is never logged.

use std::path::PathBuf;
use std::time::Duration;

use naksha_contracts::edge::{Delivery, HubKey};
use naksha_contracts::signing::Sealed;
use serde::Deserialize;
use serde_json::{Value, json};

/// Why a call to the hub did not work.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// Not reachable, or it failed in a way a retry may fix (5xx, 429): try again later.
    #[error("the hub is unreachable: {0}")]
    Unreachable(String),
    /// It answered and refused (4xx): retrying the same request will not help.
    #[error("the hub refused ({status}): {detail}")]
    Refused { status: u16, detail: String },
    #[error("the token file: {0}")]
    Token(String),
}

#[derive(Debug, Clone)]
pub struct Hub {
    base: String,
    token_file: PathBuf,
    http: reqwest::Client,
}

/// The answer to a registration.
#[derive(Debug, Clone, Deserialize)]
pub struct Registered {
    pub node_id: String,
    pub tenant: String,
    pub kid: String,
    pub keys: Vec<ServedKey>,
    pub wpk_keys: Vec<WpkKey>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ServedKey {
    #[serde(flatten)]
    pub key: HubKey,
    #[serde(default)]
    pub announcement: Option<Sealed>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct WpkKey {
    pub kid: String,
    pub public_key_pem: String,
}

/// The answer to a poll.
#[derive(Debug, Clone, Deserialize)]
pub struct Work {
    pub halted: bool,
    #[serde(default)]
    pub triggers: Vec<Value>,
}

impl Work {
    /// The deliveries as served, each parsed on its own: one malformed entry is refused by itself.
    pub fn deliveries(&self) -> Vec<(Value, Result<Delivery, String>)> {
        self.triggers
            .iter()
            .map(|v| (v.clone(), serde_json::from_value::<Delivery>(v.clone()).map_err(|e| e.to_string())))
            .collect()
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Keys {
    pub keys: Vec<ServedKey>,
}

impl Hub {
    pub fn new(base: &str, token_file: PathBuf) -> Result<Self, HubError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(40))
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| HubError::Unreachable(e.to_string()))?;
        Ok(Self { base: base.trim_end_matches('/').to_owned(), token_file, http })
    }

    fn token(&self) -> Result<String, HubError> {
        let t = std::fs::read_to_string(&self.token_file)
            .map_err(|e| HubError::Token(format!("{}: {e}", self.token_file.display())))?;
        let t = t.trim().to_owned();
        if t.is_empty() {
            return Err(HubError::Token(format!("{} is empty", self.token_file.display())));
        }
        Ok(t)
    }

    async fn call(&self, req: reqwest::RequestBuilder) -> Result<Value, HubError> {
        let resp = req.bearer_auth(self.token()?).send().await.map_err(|e| HubError::Unreachable(e.to_string()))?;
        let status = resp.status().as_u16();
        let text = resp.text().await.map_err(|e| HubError::Unreachable(e.to_string()))?;
        if status >= 500 || status == 429 || status == 408 {
            return Err(HubError::Unreachable(format!("HTTP {status}")));
        }
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if status >= 400 {
            let detail = body["detail"].as_str().map_or_else(|| format!("HTTP {status}"), str::to_owned);
            return Err(HubError::Refused { status, detail });
        }
        Ok(body)
    }

    fn parse<T: serde::de::DeserializeOwned>(v: Value, what: &str) -> Result<T, HubError> {
        serde_json::from_value(v)
            .map_err(|e| HubError::Unreachable(format!("the hub's {what} answer does not parse: {e}")))
    }

    pub async fn register(
        &self,
        public_key_pem: &str,
        labels: &std::collections::BTreeMap<String, String>,
        version: &str,
    ) -> Result<Registered, HubError> {
        let body = json!({"public_key": public_key_pem, "labels": labels, "version": version});
        let v = self.call(self.http.post(format!("{}/federation/register", self.base)).json(&body)).await?;
        Self::parse(v, "registration")
    }

    pub async fn heartbeat(&self, halted: bool) -> Result<bool, HubError> {
        let v = self
            .call(self.http.post(format!("{}/federation/heartbeat", self.base)).json(&json!({"halted": halted})))
            .await?;
        Ok(v["halted"].as_bool().unwrap_or(false))
    }

    pub async fn poll(&self, after: u64, wait: u64) -> Result<Work, HubError> {
        let url = format!("{}/federation/triggers?after={after}&wait={wait}", self.base);
        let v = self.call(self.http.get(url)).await?;
        Self::parse(v, "poll")
    }

    pub async fn keys(&self) -> Result<Keys, HubError> {
        let v = self.call(self.http.get(format!("{}/federation/keys", self.base))).await?;
        Self::parse(v, "keys")
    }

    /// Hand a signed result to the hub; `Ok(outcome)` once it took it.
    pub async fn result(&self, trigger_id: &str, sealed: &Sealed) -> Result<String, HubError> {
        let url = format!("{}/federation/triggers/{}/result", self.base, encode(trigger_id));
        let v = self.call(self.http.post(url).json(sealed)).await?;
        Ok(v["outcome"].as_str().unwrap_or("accepted").to_owned())
    }
}

/// A path segment, percent-encoded (a forged trigger id may hold anything).
fn encode(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
