//! The `k8s` adapter: the same actions against the Kubernetes API.
//!
//! - `scale`: `PATCH …/deployments/{name}/scale` with a JSON merge patch of `spec.replicas`;
//! - `restart` (rollout restart): `PATCH …/deployments/{name}` with a strategic merge patch of
//!   the pod template's `kubectl.kubernetes.io/restartedAt` annotation;
//! - `delete_pod`: `DELETE /api/v1/namespaces/{ns}/pods/{pod}`;
//! - dry-runs are server-side: the same request with `?dryRun=All`.
//!
//! Targets are `deployment/<name>`; the namespace comes from `args.namespace` or the adapter's
//! default, for describing as for acting. Names are DNS-1123 subdomains and namespaces DNS-1123
//! labels, checked before any URL is built (a WPK is checked the same way at registration).

use serde_json::{Map, Value, json};

use naksha_contracts::wpk::{is_dns_label, is_dns_subdomain};

use crate::ActError;

#[derive(Debug, Clone)]
pub struct K8sAdapter {
    base: String,
    token: Option<String>,
    namespace: String,
    http: reqwest::Client,
}

fn split_target(target: &str) -> Result<(&str, &str), ActError> {
    match target.split_once('/') {
        Some(("deployment", name)) if is_dns_subdomain(name) => Ok(("deployment", name)),
        _ => Err(ActError::Refused(format!(
            "the k8s adapter acts on deployment/<name> (a DNS-1123 name), not {target:?}"
        ))),
    }
}

/// What the API server answered, when it was not a success.
enum ApiError {
    NotFound,
    Failed(ActError),
}

impl From<ApiError> for ActError {
    fn from(e: ApiError) -> Self {
        match e {
            ApiError::NotFound => ActError::Refused("not found".into()),
            ApiError::Failed(e) => e,
        }
    }
}

impl K8sAdapter {
    /// `base` is the API server URL (e.g. `https://kubernetes.default.svc`); `token` a bearer token.
    pub fn new(base: impl Into<String>, token: Option<String>, namespace: impl Into<String>) -> Self {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Self { base: base.into().trim_end_matches('/').to_owned(), token, namespace: namespace.into(), http }
    }

    /// The step's namespace, or the adapter's; refused unless a DNS-1123 label.
    fn namespace<'a>(&'a self, args: &'a Map<String, Value>) -> Result<&'a str, ActError> {
        let ns = match args.get("namespace") {
            None => self.namespace.as_str(),
            Some(v) => v.as_str().ok_or_else(|| ActError::Refused("namespace must be text".into()))?,
        };
        if is_dns_label(ns) {
            Ok(ns)
        } else {
            Err(ActError::Refused(format!("namespace {ns:?} is not a DNS-1123 label")))
        }
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<Value, ApiError> {
        let req = match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        };
        // P-4: the run's trace, one hop further, so the API server's audit log can be joined to it.
        let req = match crate::outgoing_traceparent() {
            Some(tp) => req.header("traceparent", tp),
            None => req,
        };
        let resp = req
            .send()
            .await
            .map_err(|e| ApiError::Failed(ActError::Unavailable(format!("kubernetes API unreachable: {e}"))))?;
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            Ok(body)
        } else if status.as_u16() == 404 {
            Err(ApiError::NotFound)
        } else {
            Err(ApiError::Failed(ActError::Refused(format!(
                "kubernetes API answered {status}: {}",
                body.get("message").and_then(Value::as_str).unwrap_or("")
            ))))
        }
    }

    pub async fn describe(&self, target: &str, args: &Map<String, Value>) -> Result<Option<Value>, ActError> {
        let (_, name) = split_target(target)?;
        let ns = self.namespace(args)?;
        let url = format!("{}/apis/apps/v1/namespaces/{ns}/deployments/{name}", self.base);
        match self.send(self.http.get(url)).await {
            Ok(d) => {
                let replicas = d["spec"]["replicas"].as_u64().unwrap_or(0);
                let ready = d["status"]["readyReplicas"].as_u64().unwrap_or(0);
                Ok(Some(json!({
                    "kind": "deployment",
                    "replicas": replicas,
                    "ready_replicas": ready,
                    "healthy": ready >= replicas,
                    "version": d["spec"]["template"]["spec"]["containers"][0]["image"],
                    "generation": d["metadata"]["generation"],
                })))
            }
            Err(ApiError::NotFound) => Ok(None),
            Err(ApiError::Failed(e)) => Err(e),
        }
    }

    /// Build the request for an action; `dry_run` adds `dryRun=All`.
    fn request(
        &self,
        action: &str,
        target: &str,
        args: &Map<String, Value>,
        dry_run: bool,
    ) -> Result<reqwest::RequestBuilder, ActError> {
        let (_, name) = split_target(target)?;
        let ns = self.namespace(args)?;
        let query: &[(&str, &str)] = if dry_run { &[("dryRun", "All")] } else { &[] };
        let apps = format!("{}/apis/apps/v1/namespaces/{ns}/deployments/{name}", self.base);
        Ok(match action {
            "scale" => {
                let replicas = args
                    .get("replicas")
                    .and_then(Value::as_u64)
                    .ok_or_else(|| ActError::Refused("scale needs replicas".into()))?;
                self.http
                    .patch(format!("{apps}/scale"))
                    .query(query)
                    .header("content-type", "application/merge-patch+json")
                    .body(json!({"spec": {"replicas": replicas}}).to_string())
            }
            "restart" => {
                let at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
                let patch = json!({"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": at}}}}});
                self.http
                    .patch(apps)
                    .query(query)
                    .header("content-type", "application/strategic-merge-patch+json")
                    .body(patch.to_string())
            }
            "delete_pod" => {
                let pod = args
                    .get("pod")
                    .and_then(Value::as_str)
                    .filter(|p| is_dns_subdomain(p))
                    .ok_or_else(|| ActError::Refused("delete_pod needs pod, a DNS-1123 name".into()))?;
                self.http.delete(format!("{}/api/v1/namespaces/{ns}/pods/{pod}", self.base)).query(query)
            }
            other => return Err(ActError::Refused(format!("the k8s adapter cannot {other}"))),
        })
    }

    pub async fn dry_run(&self, action: &str, target: &str, args: &Map<String, Value>) -> Result<Value, ActError> {
        let body = self.send(self.request(action, target, args, true)?).await?;
        Ok(json!({"server_dry_run": true, "action": action, "target": target, "response_kind": body["kind"]}))
    }

    pub async fn execute(&self, action: &str, target: &str, args: &Map<String, Value>) -> Result<Value, ActError> {
        let body = self.send(self.request(action, target, args, false)?).await?;
        Ok(
            json!({"action": action, "target": target, "response_kind": body["kind"], "generation": body["metadata"]["generation"]}),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_namespaces_are_dns_1123_before_any_url_is_built() {
        for ok in ["payments", "a", "pay-ments-2", "a.b-c.d"] {
            assert!(is_dns_subdomain(ok), "{ok}");
        }
        for bad in ["", "Payments", "-x", "x-", "a/b", "a..b", "../etc", "a%2fb", "x?dryRun=All", &"a".repeat(254)] {
            assert!(!is_dns_subdomain(bad), "{bad}");
        }
        assert!(is_dns_label("kube-system") && !is_dns_label("a.b") && !is_dns_label(&"a".repeat(64)));
        let k = K8sAdapter::new("http://127.0.0.1:9", None, "default");
        let mut args = Map::new();
        args.insert("namespace".into(), json!("../../api/v1/secrets"));
        assert!(matches!(k.namespace(&args), Err(ActError::Refused(_))));
        assert!(k.request("restart", "deployment/payments", &args, true).is_err());
        assert!(split_target("deployment/../secrets").is_err());
        args.insert("namespace".into(), json!("shop"));
        assert_eq!(k.namespace(&args).unwrap(), "shop");
        assert_eq!(k.namespace(&Map::new()).unwrap(), "default");
    }
}
