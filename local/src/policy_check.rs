//! `naksha-local policy-check`: P-1…P-6 as CI enforces them on what is shipped, before anything
//! runs (the policy learner's `GET /compliance` checks the live system). Reads `template.yaml`,
//! the functions' entry points and every shipped WPK; each rule names what breaks it.
//!
//! | rule | policy | fails when |
//! |---|---|---|
//! | `route-auth` | P-5 | the HTTP API has no default JWT authorizer, a route (other than `/health`, `/metrics`) opts out of it, or its function's entry point never verifies the token itself |
//! | `tracing` | P-4 | a function does not trace actively (X-Ray) |
//! | `logs` | P-4 | a function has no log group of its own with a retention |
//! | `tenant-key` | P-5 | a table's partition key is not the tenant-first `pk`, or an index is not keyed by a tenant attribute, unless the table says why it is not tenant-owned (`Metadata.Naksha.NotTenantOwned`) |
//! | `http-async` | P-6 | an HTTP function may run longer than API Gateway waits (30 s): long work belongs on a queue with progress |
//! | `auto-dry-run` | P-3 | a shipped WPK is `auto` without `dry_run: true` |
//! | `scan-skip-reason` | P-2 | a resource suppresses an IaC scanner (checkov) finding without a reason of at least 40 characters (`make lint` runs the scanner; a suppression is an argument, not a switch) |

use std::path::Path;

use serde_yaml::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub rule: &'static str,
    pub policy: &'static str,
    pub what: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.policy, self.rule, self.what)
    }
}

/// The longest an HTTP function may run: the HTTP API waits at most 30 s for its integration.
pub const MAX_HTTP_TIMEOUT_S: u64 = 30;

fn get<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    let mut cur = v;
    for p in path {
        cur = cur.get(*p)?;
    }
    Some(cur)
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Tagged(t) => text(&t.value),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => String::new(),
    }
}

/// Functions (logical id → resource) of the template.
fn functions(t: &Value) -> Vec<(String, &Value)> {
    t.get("Resources")
        .and_then(Value::as_mapping)
        .into_iter()
        .flatten()
        .filter(|(_, r)| r.get("Type").and_then(Value::as_str) == Some("AWS::Serverless::Function"))
        .map(|(k, r)| (text(k), r))
        .collect()
}

/// Check the template text; `sources` answers the source of a function's entry point by binary
/// name (`None`: not found).
pub fn check_template(template: &str, sources: &dyn Fn(&str) -> Option<String>) -> Result<Vec<Violation>, String> {
    let t: Value = serde_yaml::from_str(template).map_err(|e| format!("template.yaml: {e}"))?;
    let mut out = Vec::new();
    let mut v = |rule: &'static str, policy: &'static str, what: String| out.push(Violation { rule, policy, what });
    let resources = t.get("Resources").and_then(Value::as_mapping).cloned().unwrap_or_default();
    // The HTTP API's default authorizer.
    for (name, r) in &resources {
        if r.get("Type").and_then(Value::as_str) == Some("AWS::Serverless::HttpApi")
            && get(r, &["Properties", "Auth", "DefaultAuthorizer"]).is_none()
        {
            v("route-auth", "P-5", format!("{} has no DefaultAuthorizer: every route would be open", text(name)));
        }
    }
    let global_tracing = get(&t, &["Globals", "Function", "Tracing"]).map(text);
    let global_timeout = get(&t, &["Globals", "Function", "Timeout"]).map(text).and_then(|s| s.parse::<u64>().ok());
    for (name, f) in functions(&t) {
        let props = f.get("Properties").cloned().unwrap_or(Value::Null);
        let binary = get(f, &["Metadata", "BuildProperties", "Binary"]).map(text).unwrap_or_default();
        // Tracing.
        let tracing = props.get("Tracing").map(text).or_else(|| global_tracing.clone());
        if tracing.as_deref() != Some("Active") {
            v(
                "tracing",
                "P-4",
                format!("{name} does not trace (Tracing: {})", tracing.unwrap_or_else(|| "unset".into())),
            );
        }
        // Its own log group, with a retention.
        let log_group = resources.iter().find(|(_, r)| {
            r.get("Type").and_then(Value::as_str) == Some("AWS::Logs::LogGroup")
                && get(r, &["Properties", "LogGroupName"])
                    .map(text)
                    .is_some_and(|n| n.contains(&format!("${{{name}}}")))
        });
        match log_group {
            None => v("logs", "P-4", format!("{name} has no log group (/aws/lambda/${{{name}}})")),
            Some((_, g)) if get(g, &["Properties", "RetentionInDays"]).is_none() => {
                v("logs", "P-4", format!("{name}'s log group keeps logs forever (no RetentionInDays)"))
            }
            Some(_) => {}
        }
        // HTTP routes.
        let events = props.get("Events").and_then(Value::as_mapping).cloned().unwrap_or_default();
        let routes: Vec<(String, Value)> = events
            .values()
            .filter(|e| e.get("Type").and_then(Value::as_str) == Some("HttpApi"))
            .map(|e| (get(e, &["Properties", "Path"]).map(text).unwrap_or_default(), e.clone()))
            .collect();
        if routes.is_empty() {
            continue;
        }
        let anonymous = routes.iter().all(|(p, _)| p == "/health" || p == "/metrics");
        for (path, e) in &routes {
            let opted_out = get(e, &["Properties", "Auth", "Authorizer"]).map(text).is_some_and(|a| a == "NONE");
            if opted_out && !anonymous {
                v("route-auth", "P-5", format!("{name}: {path} opts out of the JWT authorizer"));
            }
        }
        if !anonymous {
            match sources(&binary) {
                None => v("route-auth", "P-5", format!("{name}: no entry point for binary {binary:?}")),
                Some(src) if !src.contains("verifier") => {
                    v("route-auth", "P-5", format!("{name} ({binary}) never verifies the token itself"))
                }
                Some(_) => {}
            }
        }
        let timeout =
            props.get("Timeout").map(text).and_then(|s| s.parse::<u64>().ok()).or(global_timeout).unwrap_or(3);
        if timeout > MAX_HTTP_TIMEOUT_S {
            v(
                "http-async",
                "P-6",
                format!(
                    "{name} serves HTTP with a {timeout} s timeout (API Gateway waits {MAX_HTTP_TIMEOUT_S}): queue the work and report progress"
                ),
            );
        }
    }
    // IaC scanner suppressions: each one says why it holds in production.
    for (name, r) in &resources {
        for skip in get(r, &["Metadata", "checkov", "skip"]).and_then(Value::as_sequence).into_iter().flatten() {
            let id = skip.get("id").map(text).unwrap_or_default();
            let why = skip.get("comment").map(text).unwrap_or_default();
            if id.is_empty() || why.trim().len() < 40 {
                v(
                    "scan-skip-reason",
                    "P-2",
                    format!("{} suppresses {id:?} without a reason (comment of at least 40 characters)", text(name)),
                );
            }
        }
    }
    // Tables.
    for (name, r) in &resources {
        if r.get("Type").and_then(Value::as_str) != Some("AWS::DynamoDB::Table") {
            continue;
        }
        let name = text(name);
        if get(r, &["Metadata", "Naksha", "NotTenantOwned"]).map(text).is_some_and(|why| why.len() >= 10) {
            continue;
        }
        let hash = get(r, &["Properties", "KeySchema"])
            .and_then(Value::as_sequence)
            .and_then(|ks| ks.iter().find(|k| k.get("KeyType").map(text).as_deref() == Some("HASH")))
            .and_then(|k| k.get("AttributeName"))
            .map(text)
            .unwrap_or_default();
        if hash != "pk" && hash != "tenant" {
            v("tenant-key", "P-5", format!("{name}'s partition key is {hash:?}, not the tenant-first pk"));
        }
        for index in
            get(r, &["Properties", "GlobalSecondaryIndexes"]).and_then(Value::as_sequence).into_iter().flatten()
        {
            let key = index
                .get("KeySchema")
                .and_then(Value::as_sequence)
                .and_then(|ks| ks.iter().find(|k| k.get("KeyType").map(text).as_deref() == Some("HASH")))
                .and_then(|k| k.get("AttributeName"))
                .map(text)
                .unwrap_or_default();
            if !key.contains("tenant") {
                let index_name = index.get("IndexName").map(text).unwrap_or_default();
                v("tenant-key", "P-5", format!("{name} index {index_name} is keyed by {key:?}, not by a tenant"));
            }
        }
    }
    Ok(out)
}

/// Shipped WPKs (JSON or YAML documents, or lists of them under `wpks:` as in a scenario file):
/// each `auto` one must dry-run.
pub fn check_wpks(files: &[(String, String)]) -> Vec<Violation> {
    let mut out = Vec::new();
    fn walk(v: &Value, file: &str, out: &mut Vec<Violation>) {
        match v {
            Value::Mapping(m) => {
                if let (Some(id), Some(safety)) = (m.get("id"), m.get("safety")) {
                    let mode = safety.get("mode").map(text).unwrap_or_default();
                    let dry = safety.get("dry_run").and_then(Value::as_bool).unwrap_or(false);
                    if mode == "auto" && !dry {
                        out.push(Violation {
                            rule: "auto-dry-run",
                            policy: "P-3",
                            what: format!("{file}: WPK {} is auto without dry_run", text(id)),
                        });
                    }
                }
                for v in m.values() {
                    walk(v, file, out);
                }
            }
            Value::Sequence(s) => s.iter().for_each(|v| walk(v, file, out)),
            _ => {}
        }
    }
    for (file, body) in files {
        match serde_yaml::from_str::<Value>(body) {
            Ok(v) => walk(&v, file, &mut out),
            Err(e) => out.push(Violation {
                rule: "auto-dry-run",
                policy: "P-3",
                what: format!("{file}: does not parse: {e}"),
            }),
        }
    }
    out
}

/// Everything, from the repository at `root`.
pub fn check_repo(root: &Path) -> Result<Vec<Violation>, String> {
    let template = std::fs::read_to_string(root.join("template.yaml")).map_err(|e| format!("template.yaml: {e}"))?;
    let functions = root.join("functions");
    let sources = |binary: &str| -> Option<String> {
        std::fs::read_dir(&functions)
            .ok()?
            .flatten()
            .map(|d| d.path().join("src/bin").join(format!("{binary}.rs")))
            .find(|p| p.exists())
            .and_then(|p| std::fs::read_to_string(p).ok())
    };
    let mut out = check_template(&template, &sources)?;
    let mut wpks = Vec::new();
    let mut dirs = vec![root.join("events/wpk"), root.join("data")];
    dirs.extend(std::fs::read_dir(&functions).into_iter().flatten().flatten().map(|d| d.path()));
    for dir in dirs {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            let ext = path.extension().and_then(|e| e.to_str()).unwrap_or_default();
            if !["json", "yaml", "yml"].contains(&ext) {
                continue;
            }
            let body = std::fs::read_to_string(&path).unwrap_or_default();
            if body.contains("safety") {
                let name = path.strip_prefix(root).unwrap_or(&path).display().to_string();
                wpks.push((name, body));
            }
        }
    }
    if wpks.is_empty() {
        return Err("no shipped WPK found: the auto-dry-run rule checked nothing".into());
    }
    out.extend(check_wpks(&wpks));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
    }

    fn template() -> String {
        std::fs::read_to_string(repo().join("template.yaml")).unwrap_or_default()
    }

    fn real_sources(binary: &str) -> Option<String> {
        std::fs::read_dir(repo().join("functions"))
            .ok()?
            .flatten()
            .map(|d| d.path().join("src/bin").join(format!("{binary}.rs")))
            .find(|p| p.exists())
            .and_then(|p| std::fs::read_to_string(p).ok())
    }

    fn rules(template: &str) -> Vec<&'static str> {
        check_template(template, &real_sources).unwrap_or_default().into_iter().map(|v| v.rule).collect()
    }

    #[test]
    fn the_shipped_repository_keeps_every_policy() {
        let violations = check_repo(&repo()).unwrap_or_else(|e| vec![Violation { rule: "", policy: "", what: e }]);
        assert!(violations.is_empty(), "{}", violations.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"));
    }

    /// Replace exactly one occurrence (the broken copy must differ in one place only).
    fn once(t: &str, from: &str, to: &str) -> String {
        assert!(t.contains(from), "the template no longer holds {from:?}");
        t.replacen(from, to, 1)
    }

    #[test]
    fn a_route_without_auth_fails() {
        let t = once(&template(), "        DefaultAuthorizer: NakshaJwt\n", "");
        assert!(rules(&t).contains(&"route-auth"));
        let t = once(
            &template(),
            "            Path: /wpk\n            Method: GET\n",
            "            Path: /wpk\n            Method: GET\n            Auth:\n              Authorizer: NONE\n",
        );
        assert_eq!(rules(&t), vec!["route-auth"]);
        // A function whose entry point never verifies the token.
        let no_verify = |b: &str| real_sources(b).map(|s| if b == "wpk-list" { s.replace("verifier", "v") } else { s });
        let v = check_template(&template(), &no_verify).unwrap_or_default();
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].what.contains("wpk-list"));
    }

    #[test]
    fn a_function_without_tracing_or_logs_fails() {
        let t = once(&template(), "    Tracing: Active\n", "    Tracing: PassThrough\n");
        assert!(rules(&t).iter().all(|r| *r == "tracing") && !rules(&t).is_empty());
        let t = once(
            &template(),
            "      LogGroupName: !Sub /aws/lambda/${WpkListFunction}\n",
            "      LogGroupName: /aws/lambda/elsewhere\n",
        );
        assert_eq!(rules(&t), vec!["logs"]);
    }

    #[test]
    fn a_table_not_keyed_by_the_tenant_fails() {
        let t = once(
            &template(),
            "      TableName: !Sub ${Prefix}.policies\n      BillingMode: PAY_PER_REQUEST\n      AttributeDefinitions:\n        - AttributeName: pk\n          AttributeType: S\n        - AttributeName: sk\n          AttributeType: S\n      KeySchema:\n        - AttributeName: pk\n",
            "      TableName: !Sub ${Prefix}.policies\n      BillingMode: PAY_PER_REQUEST\n      AttributeDefinitions:\n        - AttributeName: id\n          AttributeType: S\n        - AttributeName: sk\n          AttributeType: S\n      KeySchema:\n        - AttributeName: id\n",
        );
        assert_eq!(rules(&t), vec!["tenant-key"]);
        // An index that lets one query read across tenants.
        let t = once(
            &template(),
            "        - IndexName: by_tenant\n          KeySchema:\n            - AttributeName: tenant\n",
            "        - IndexName: by_tenant\n          KeySchema:\n            - AttributeName: status\n",
        );
        assert_eq!(rules(&t), vec!["tenant-key"]);
    }

    #[test]
    fn a_scanner_finding_suppressed_without_a_reason_fails() {
        let t = once(
            &template(),
            "          - id: CKV_AWS_33\n            comment: \"The wildcard principal is bound",
            "          - id: CKV_AWS_33\n            comment: \"ok\"\n            x: \"The wildcard principal is bound",
        );
        assert_eq!(rules(&t), vec!["scan-skip-reason"]);
    }

    #[test]
    fn a_long_http_function_fails() {
        let t = once(
            &template(),
            "      Description: GET /policies/suggestions - the tenant's suggestions with their evidence.\n      MemorySize: 512\n      Timeout: 29\n",
            "      Description: GET /policies/suggestions - the tenant's suggestions with their evidence.\n      MemorySize: 512\n      Timeout: 120\n",
        );
        assert_eq!(rules(&t), vec!["http-async"]);
    }

    #[test]
    fn a_shipped_auto_wpk_without_dry_run_fails() {
        let ok = ("a.yaml".to_owned(), "id: r\nsafety: {mode: auto, dry_run: true}\n".to_owned());
        let manual = ("b.json".to_owned(), r#"{"id": "m", "safety": {"mode": "manual"}}"#.to_owned());
        let bad = (
            "s.yaml".to_owned(),
            "scenarios:\n  x:\n    wpks:\n      - id: r\n        safety: {mode: auto}\n".to_owned(),
        );
        assert!(check_wpks(&[ok.clone(), manual]).is_empty());
        let v = check_wpks(&[ok, bad]);
        assert_eq!((v.len(), v[0].rule), (1, "auto-dry-run"));
        assert!(v[0].what.contains("s.yaml"));
    }
}
