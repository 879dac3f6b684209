//! What `POST /learn` reads: JSON lines, each one Naksha audit record (what `GET /agent/audit`
//! returns), an AWS CloudTrail record (or the S3 delivery object `{"Records":[...]}`), or a
//! Kubernetes `audit.k8s.io` Event (v1 or v1beta1). Each becomes a [`Record`]: what the learners
//! need and nothing else (P-1: source addresses become per-tenant pseudonyms, user agents,
//! request bodies and secrets' values are never kept).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use naksha_contracts::TenantId;
use naksha_contracts::audit::AuditRecord;
use naksha_core::privacy::{Pseudonymiser, find_pii};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// The source format of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    NakshaAudit,
    Cloudtrail,
    K8sAudit,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::NakshaAudit => "naksha_audit",
            Format::Cloudtrail => "cloudtrail",
            Format::K8sAudit => "k8s_audit",
        }
    }
}

/// One audit record, normalised. `id` is the source's own id (CloudTrail `eventID`, Kubernetes
/// `auditID`, `naksha-audit/<seq>`), so a suggestion's evidence leads back to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    pub format: Format,
    pub at: DateTime<Utc>,
    /// Who acted: an IAM ARN (assumed-role sessions as their role's ARN), a Kubernetes user or
    /// service account, a Naksha approver.
    pub principal: String,
    /// `iam_user`, `assumed_role`, `root`, `aws_service`, `user`, `service_account`, `node`,
    /// `anonymous`, `naksha`.
    pub principal_kind: String,
    /// `s3:PutBucketPolicy`, `create pods/exec`, `act`, `rejection`.
    pub action: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    /// The error code, or the HTTP status ≥ 400; empty when it succeeded.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub error: String,
    /// Where the call came from: an AWS service's name, or a pseudonym of the address.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source: String,
    /// What the rules look at, extracted from the request (never values of secrets).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub facts: BTreeMap<String, Value>,
}

impl Record {
    pub fn fact_str(&self, key: &str) -> &str {
        self.facts.get(key).and_then(Value::as_str).unwrap_or_default()
    }

    pub fn fact_bool(&self, key: &str) -> bool {
        self.facts.get(key).and_then(Value::as_bool).unwrap_or(false)
    }

    pub fn fact_strings(&self, key: &str) -> Vec<String> {
        self.facts
            .get(key)
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
            .unwrap_or_default()
    }

    pub fn failed(&self) -> bool {
        !self.error.is_empty()
    }
}

/// A line that could not be read, named by its 1-based number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BadLine {
    pub line: usize,
    pub reason: String,
}

/// What a body held.
#[derive(Debug, Default)]
pub struct Parsed {
    pub records: Vec<Record>,
    pub bad: Vec<BadLine>,
    /// Naksha audit records as posted, checked against the tenant's chain before use.
    pub chain: Vec<(usize, AuditRecord)>,
}

/// Read every non-blank line. Each line is one record, or a CloudTrail delivery object.
pub fn parse_lines(text: &str, tenant: &TenantId, pseudo: &Pseudonymiser<'_>) -> Parsed {
    let mut out = Parsed::default();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let value: Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(e) => {
                out.bad.push(BadLine { line: n, reason: format!("not JSON: {e}") });
                continue;
            }
        };
        match parse_value(&value, tenant, pseudo) {
            Ok(Parsed1::Many(records)) => out.records.extend(records),
            Ok(Parsed1::Chain(record, parsed)) => {
                out.chain.push((n, *record));
                out.records.push(*parsed);
            }
            Err(reason) => out.bad.push(BadLine { line: n, reason }),
        }
    }
    out
}

enum Parsed1 {
    Many(Vec<Record>),
    Chain(Box<AuditRecord>, Box<Record>),
}

fn parse_value(v: &Value, tenant: &TenantId, pseudo: &Pseudonymiser<'_>) -> Result<Parsed1, String> {
    let Some(o) = v.as_object() else { return Err("not a JSON object".into()) };
    if let Some(records) = o.get("Records") {
        let arr = records.as_array().ok_or("Records must be an array of CloudTrail records")?;
        let mut out = Vec::with_capacity(arr.len());
        for (i, r) in arr.iter().enumerate() {
            out.push(cloudtrail(r, pseudo).map_err(|e| format!("Records[{i}]: {e}"))?);
        }
        return Ok(Parsed1::Many(out));
    }
    if o.contains_key("eventID") && o.contains_key("eventSource") {
        return Ok(Parsed1::Many(vec![cloudtrail(v, pseudo)?]));
    }
    if o.get("kind").is_some_and(|k| k == "Event") && o.contains_key("auditID") {
        return Ok(Parsed1::Many(vec![k8s(v, pseudo)?]));
    }
    if o.contains_key("seq") && o.contains_key("hash") && o.contains_key("prev_hash") {
        let (chain, record) = naksha(v, tenant)?;
        return Ok(Parsed1::Chain(Box::new(chain), Box::new(record)));
    }
    Err("unrecognised format: not a Naksha audit record, a CloudTrail record or a Kubernetes audit Event".into())
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    cur.as_str()
}

fn time(raw: Option<&str>, field: &str) -> Result<DateTime<Utc>, String> {
    let raw = raw.ok_or_else(|| format!("{field} is missing"))?;
    DateTime::parse_from_rfc3339(raw).map(|t| t.with_timezone(&Utc)).map_err(|_| format!("{field} is not RFC 3339"))
}

fn bounded(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// A source address becomes a pseudonym; an AWS service's name stays as it is.
fn source(raw: &str, pseudo: &Pseudonymiser<'_>) -> String {
    if raw.is_empty() {
        String::new()
    } else if raw.ends_with(".amazonaws.com") || raw == "AWS Internal" {
        raw.to_owned()
    } else {
        pseudo.pseudonym(raw)
    }
}

/// A principal is kept (suggestions name it) unless it is itself personal data such as an
/// e-mail address, which becomes a pseudonym.
fn principal(raw: &str, pseudo: &Pseudonymiser<'_>) -> String {
    if find_pii(raw).is_empty() { bounded(raw, 512) } else { pseudo.pseudonym(raw) }
}

// ------------------------------------------------------------------------------- CloudTrail

/// `iam` from `iam.amazonaws.com`; the API version suffix of Lambda's names goes
/// (`CreateFunction20150331` → `CreateFunction`).
pub fn iam_action(event_source: &str, event_name: &str) -> String {
    let service = event_source.split('.').next().unwrap_or(event_source);
    let service = match service {
        "monitoring" => "cloudwatch",
        "signin" => "signin",
        s => s,
    };
    let name = event_name.trim_end_matches(|c: char| c.is_ascii_digit() || c == 'v');
    let name = if name.len() + 4 < event_name.len() || name.is_empty() { name } else { event_name };
    format!("{service}:{}", if name.is_empty() { event_name } else { name })
}

fn cloudtrail(v: &Value, pseudo: &Pseudonymiser<'_>) -> Result<Record, String> {
    let id = str_at(v, &["eventID"]).filter(|s| !s.is_empty()).ok_or("eventID is missing")?;
    let event_source = str_at(v, &["eventSource"]).ok_or("eventSource is missing")?;
    let event_name = str_at(v, &["eventName"]).ok_or("eventName is missing")?;
    let at = time(str_at(v, &["eventTime"]), "eventTime")?;
    let identity = v.get("userIdentity").filter(|u| u.is_object()).ok_or("userIdentity is missing")?;
    let kind = identity.get("type").and_then(Value::as_str).unwrap_or("");
    let (who, principal_kind) = match kind {
        "AssumedRole" => {
            let issuer = str_at(identity, &["sessionContext", "sessionIssuer", "arn"]);
            let arn = str_at(identity, &["arn"]).unwrap_or_default();
            (issuer.map_or_else(|| role_of_session(arn), str::to_owned), "assumed_role")
        }
        "IAMUser" => {
            // Console sign-in records name the user but not always the ARN.
            let arn = str_at(identity, &["arn"]).filter(|a| !a.is_empty()).map(str::to_owned).unwrap_or_else(|| {
                format!(
                    "arn:aws:iam::{}:user/{}",
                    str_at(identity, &["accountId"]).unwrap_or_default(),
                    str_at(identity, &["userName"]).unwrap_or_default()
                )
            });
            (arn, "iam_user")
        }
        "Root" => (str_at(identity, &["arn"]).unwrap_or_default().to_owned(), "root"),
        "AWSService" | "" => (str_at(identity, &["invokedBy"]).unwrap_or("aws-service").to_owned(), "aws_service"),
        other => (str_at(identity, &["arn"]).unwrap_or(other).to_owned(), "other"),
    };
    let mut facts = BTreeMap::new();
    facts.insert("read_only".into(), json!(v.get("readOnly").and_then(Value::as_bool).unwrap_or(false)));
    if kind == "AssumedRole" {
        let session = str_at(identity, &["arn"]).unwrap_or_default().rsplit('/').next().unwrap_or_default();
        if is_instance_id(session) {
            facts.insert("instance_session".into(), json!(session));
        }
    }
    if let Some(key) = str_at(identity, &["accessKeyId"]).filter(|k| !k.is_empty()) {
        // A key id is not a secret, but it identifies a person's credentials: keep a pseudonym.
        facts.insert("credential".into(), json!(pseudo.pseudonym(key)));
    }
    if str_at(identity, &["sessionContext", "attributes", "mfaAuthenticated"]) == Some("false") && kind == "IAMUser" {
        facts.insert("mfa".into(), json!(false));
    }
    let request = v.get("requestParameters").unwrap_or(&Value::Null);
    request_facts(event_name, request, &who, &mut facts);
    let mut resources: Vec<String> = v
        .get("resources")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|r| r.get("ARN").and_then(Value::as_str)).map(|s| bounded(s, 512)).collect())
        .unwrap_or_default();
    resources.sort();
    resources.dedup();
    Ok(Record {
        id: bounded(id, 128),
        format: Format::Cloudtrail,
        at,
        principal: principal(&who, pseudo),
        principal_kind: principal_kind.into(),
        action: iam_action(event_source, event_name),
        resources,
        namespace: String::new(),
        error: bounded(str_at(v, &["errorCode"]).unwrap_or_default(), 128),
        source: source(str_at(v, &["sourceIPAddress"]).unwrap_or_default(), pseudo),
        facts,
    })
}

/// `arn:aws:sts::1:assumed-role/R/session` → `arn:aws:iam::1:role/R`.
fn role_of_session(arn: &str) -> String {
    let mut parts = arn.splitn(6, ':');
    let (Some(_), Some(partition), Some(_), Some(_), Some(account), Some(rest)) =
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return arn.to_owned();
    };
    let role = rest.strip_prefix("assumed-role/").and_then(|r| r.split('/').next()).unwrap_or(rest);
    format!("arn:{partition}:iam::{account}:role/{role}")
}

fn is_instance_id(s: &str) -> bool {
    s.strip_prefix("i-").is_some_and(|h| (8..=17).contains(&h.len()) && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The few request fields the risk rules read: whom something was shared with, whether a
/// policy or a rule opens to everyone, whose credentials were made, whether a read decrypted.
fn request_facts(event: &str, req: &Value, caller: &str, facts: &mut BTreeMap<String, Value>) {
    let mut shared: Vec<String> = Vec::new();
    let mut collect_adds = |v: &Value| {
        for item in v.as_array().into_iter().flatten() {
            if let Some(g) = item.get("group").and_then(Value::as_str) {
                shared.push(g.to_owned());
            }
            if let Some(u) = item.get("userId").and_then(Value::as_str) {
                shared.push(u.to_owned());
            }
        }
    };
    match event {
        "ModifySnapshotAttribute" => {
            collect_adds(&req["createVolumePermission"]["add"]["items"]);
        }
        "ModifyImageAttribute" => {
            collect_adds(&req["launchPermission"]["add"]["items"]);
        }
        "ModifyDBSnapshotAttribute" | "ModifyDBClusterSnapshotAttribute" => {
            for v in req["valuesToAdd"].as_array().into_iter().flatten() {
                if let Some(s) = v.as_str() {
                    shared.push(s.to_owned());
                }
            }
        }
        "AddPermission" | "AddPermission20150331v2" | "AddPermission20150331" => {
            if let Some(p) = req["principal"].as_str() {
                shared.push(p.to_owned());
            }
        }
        "PutBucketPolicy" => {
            let policy = match &req["bucketPolicy"] {
                Value::String(s) => serde_json::from_str(s).unwrap_or(Value::Null),
                other => other.clone(),
            };
            for st in policy["Statement"].as_array().into_iter().flatten() {
                if st["Effect"] != "Allow" {
                    continue;
                }
                match &st["Principal"] {
                    Value::String(p) => shared.push(p.clone()),
                    Value::Object(m) => {
                        for v in m.values() {
                            match v {
                                Value::String(s) => shared.push(s.clone()),
                                Value::Array(a) => {
                                    shared.extend(a.iter().filter_map(|x| x.as_str().map(str::to_owned)))
                                }
                                _ => {}
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        "AuthorizeSecurityGroupIngress" => {
            let text = req.to_string();
            if text.contains("0.0.0.0/0") || text.contains("::/0") {
                facts.insert("open_to_world".into(), json!(true));
            }
        }
        "CreateAccessKey" | "CreateLoginProfile" | "UpdateLoginProfile" | "AttachUserPolicy" | "PutUserPolicy" => {
            if let Some(u) = req["userName"].as_str() {
                let own = caller.rsplit('/').next() == Some(u);
                facts.insert("target_user".into(), json!(bounded(u, 128)));
                facts.insert("own_user".into(), json!(own));
            }
        }
        "GetParameter" | "GetParameters" | "GetParametersByPath" => {
            facts.insert("with_decryption".into(), json!(req["withDecryption"].as_bool().unwrap_or(false)));
        }
        "ModifyInstanceAttribute" if req.get("userData").is_some() => {
            facts.insert("user_data".into(), json!(true));
        }
        "DescribeInstanceAttribute" if req["attribute"] == "userData" => {
            facts.insert("user_data".into(), json!(true));
        }
        _ => {}
    }
    if let Some(arn) = req["policyArn"].as_str() {
        facts.insert("policy_arn".into(), json!(bounded(arn, 256)));
    }
    if !shared.is_empty() {
        shared.sort();
        shared.dedup();
        facts.insert("shared_with".into(), json!(shared.into_iter().map(|s| bounded(&s, 256)).collect::<Vec<_>>()));
    }
}

// ------------------------------------------------------------------------------- Kubernetes

fn k8s(v: &Value, pseudo: &Pseudonymiser<'_>) -> Result<Record, String> {
    if let Some(api) = v.get("apiVersion") {
        let api = api.as_str().ok_or("apiVersion must be a string")?;
        if !api.starts_with("audit.k8s.io/") {
            return Err(format!("apiVersion {} is not audit.k8s.io", bounded(api, 64)));
        }
    }
    let id = str_at(v, &["auditID"]).filter(|s| !s.is_empty()).ok_or("auditID is missing")?;
    let verb = str_at(v, &["verb"]).ok_or("verb is missing")?;
    let at = time(
        str_at(v, &["requestReceivedTimestamp"]).or_else(|| str_at(v, &["timestamp"])),
        "requestReceivedTimestamp",
    )?;
    let username = str_at(v, &["user", "username"]).ok_or("user.username is missing")?;
    let groups: Vec<&str> = v["user"]["groups"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    let principal_kind = if username == "system:anonymous" || groups.contains(&"system:unauthenticated") {
        "anonymous"
    } else if username.starts_with("system:serviceaccount:") {
        "service_account"
    } else if username.starts_with("system:node:") {
        "node"
    } else if username.starts_with("system:") {
        "system"
    } else {
        "user"
    };
    let obj = v.get("objectRef").unwrap_or(&Value::Null);
    let resource = obj["resource"].as_str().unwrap_or_default();
    let sub = obj["subresource"].as_str().unwrap_or_default();
    let target = if resource.is_empty() {
        // A non-resource URL (`/healthz`, `/api`): the path without its query.
        str_at(v, &["requestURI"]).unwrap_or_default().split('?').next().unwrap_or_default().to_owned()
    } else if sub.is_empty() {
        resource.to_owned()
    } else {
        format!("{resource}/{sub}")
    };
    let code = v["responseStatus"]["code"].as_u64().unwrap_or(0);
    let mut facts = BTreeMap::new();
    facts.insert("verb".into(), json!(verb));
    facts.insert("resource".into(), json!(bounded(&target, 256)));
    facts.insert("api_group".into(), json!(obj["apiGroup"].as_str().unwrap_or_default()));
    if let Some(name) = obj["name"].as_str() {
        facts.insert("name".into(), json!(bounded(name, 253)));
    }
    if code > 0 {
        facts.insert("code".into(), json!(code));
    }
    if let Some(d) = str_at(v, &["annotations", "authorization.k8s.io/decision"]) {
        facts.insert("decision".into(), json!(d));
    }
    if let Some(body) = v.get("requestObject").filter(|b| b.is_object()) {
        object_facts(body, &mut facts);
    }
    let namespace = obj["namespace"].as_str().unwrap_or_default();
    let mut resources = Vec::new();
    if let Some(name) = obj["name"].as_str() {
        resources.push(bounded(&format!("{}/{}", if namespace.is_empty() { "-" } else { namespace }, name), 300));
    }
    let source = v["sourceIPs"].as_array().and_then(|a| a.first()).and_then(Value::as_str).unwrap_or_default();
    Ok(Record {
        id: bounded(id, 128),
        format: Format::K8sAudit,
        at,
        principal: principal(username, pseudo),
        principal_kind: principal_kind.into(),
        action: format!("{verb} {}", bounded(&target, 256)),
        resources,
        namespace: bounded(namespace, 253),
        error: if code >= 400 { code.to_string() } else { String::new() },
        source: source_k8s(source, pseudo),
        facts,
    })
}

fn source_k8s(raw: &str, pseudo: &Pseudonymiser<'_>) -> String {
    if raw.is_empty() { String::new() } else { pseudo.pseudonym(raw) }
}

/// The pod spec of a Pod, or of a workload's pod template.
fn pod_spec(body: &Value) -> Option<&Value> {
    match body["kind"].as_str().unwrap_or_default() {
        "Pod" => body.get("spec"),
        "CronJob" => body.pointer("/spec/jobTemplate/spec/template/spec"),
        _ => body.pointer("/spec/template/spec"),
    }
}

/// Host paths whose mount gives a container the node: its config, its runtime, its kubelet.
const SENSITIVE_HOST_PATHS: &[&str] = &[
    "/",
    "/etc",
    "/proc",
    "/sys",
    "/dev",
    "/root",
    "/boot",
    "/var/run/docker.sock",
    "/var/run/crio/crio.sock",
    "/run/containerd/containerd.sock",
    "/var/lib/kubelet",
    "/var/lib/kubelet/pki",
    "/etc/kubernetes",
    "/etc/kubernetes/manifests",
    "/var/run",
    "/run",
    "/var/lib/docker",
    "/home/admin",
];

fn object_facts(body: &Value, facts: &mut BTreeMap<String, Value>) {
    if let Some(spec) = pod_spec(body) {
        let mut host = Vec::new();
        for ns in ["hostNetwork", "hostPID", "hostIPC"] {
            if spec[ns].as_bool() == Some(true) {
                host.push(ns);
            }
        }
        if !host.is_empty() {
            facts.insert("host_namespaces".into(), json!(host));
        }
        let containers = ["containers", "initContainers", "ephemeralContainers"]
            .iter()
            .flat_map(|k| spec[*k].as_array().into_iter().flatten())
            .collect::<Vec<_>>();
        let privileged = containers.iter().any(|c| {
            let sc = &c["securityContext"];
            sc["privileged"].as_bool() == Some(true)
                || sc["capabilities"]["add"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|cap| matches!(cap.as_str(), Some("SYS_ADMIN" | "ALL" | "CAP_SYS_ADMIN")))
        });
        if privileged {
            facts.insert("privileged".into(), json!(true));
        }
        let paths: Vec<String> = spec["volumes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|vol| vol["hostPath"]["path"].as_str())
            .map(|p| bounded(p, 256))
            .collect();
        if !paths.is_empty() {
            let sensitive: Vec<&String> = paths
                .iter()
                .filter(|p| {
                    let p = p.trim_end_matches('/');
                    let p = if p.is_empty() { "/" } else { p };
                    SENSITIVE_HOST_PATHS.iter().any(|s| p == *s || (*s != "/" && p.starts_with(&format!("{s}/"))))
                })
                .collect();
            facts.insert("host_paths".into(), json!(paths));
            if !sensitive.is_empty() {
                facts.insert("sensitive_mounts".into(), json!(sensitive));
            }
        }
    }
    match body["kind"].as_str().unwrap_or_default() {
        "ClusterRoleBinding" | "RoleBinding" => {
            facts.insert("role_ref".into(), json!(bounded(body["roleRef"]["name"].as_str().unwrap_or_default(), 253)));
        }
        "ClusterRole" | "Role" => {
            let rules = body["rules"].as_array().cloned().unwrap_or_default();
            let has = |field: &str, what: &str| {
                rules.iter().any(|r| r[field].as_array().into_iter().flatten().any(|x| x.as_str() == Some(what)))
            };
            if has("verbs", "*") || has("resources", "*") || has("apiGroups", "*") {
                facts.insert("wildcard".into(), json!(true));
            }
            let grants = |res: &str, verbs: &[&str]| {
                rules.iter().any(|r| {
                    let rs: Vec<&str> =
                        r["resources"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
                    let vs: Vec<&str> = r["verbs"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
                    (rs.contains(&res) || rs.contains(&"*")) && vs.iter().any(|v| *v == "*" || verbs.contains(v))
                })
            };
            let mut escalations = Vec::new();
            if grants("pods/exec", &["create", "get"]) || grants("pods/attach", &["create", "get"]) {
                escalations.push("pods/exec");
            }
            if grants("secrets", &["get", "list", "watch"]) {
                escalations.push("secrets");
            }
            if rules.iter().any(|r| {
                r["verbs"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|v| matches!(v.as_str(), Some("escalate" | "bind" | "impersonate")))
            }) {
                escalations.push("escalate/bind/impersonate");
            }
            let writes = rules.iter().any(|r| {
                r["verbs"].as_array().into_iter().flatten().any(|v| {
                    matches!(v.as_str(), Some("create" | "update" | "patch" | "delete" | "deletecollection" | "*"))
                })
            });
            if writes {
                facts.insert("grants_writes".into(), json!(true));
            }
            if !escalations.is_empty() {
                facts.insert("grants".into(), json!(escalations));
            }
        }
        "ConfigMap" => {
            let keys: Vec<String> = body["data"].as_object().map(credential_keys).unwrap_or_default();
            if !keys.is_empty() {
                facts.insert("credential_keys".into(), json!(keys));
            }
        }
        "Service" => {
            if let Some(t) = body["spec"]["type"].as_str() {
                facts.insert("service_type".into(), json!(bounded(t, 32)));
            }
        }
        _ => {}
    }
}

/// Names of config map entries that hold credentials, judged by the key and by the shape of
/// the value (the value itself is never kept).
fn credential_keys(data: &Map<String, Value>) -> Vec<String> {
    const WORDS: &[&str] = &[
        "password",
        "passwd",
        "passphrase",
        "secret",
        "token",
        "access_key",
        "private_key",
        "api_key",
        "apikey",
        "credential",
    ];
    let sensitive = |name: &str| {
        let n = name.trim().to_ascii_lowercase().replace(['-', '.'], "_");
        WORDS.iter().any(|w| n.contains(w))
    };
    data.iter()
        .filter(|(k, v)| {
            let text = v.as_str().unwrap_or_default();
            // The entry's own name, or a `name = value` / `name: value` line inside a properties file.
            sensitive(k)
                || text.lines().any(|l| l.split_once(['=', ':']).is_some_and(|(name, _)| sensitive(name)))
                || text.contains("-----BEGIN") && text.contains("PRIVATE KEY")
                || text
                    .split(|c: char| !c.is_ascii_alphanumeric())
                    .any(|t| t.len() == 20 && (t.starts_with("AKIA") || t.starts_with("ASIA")))
        })
        .map(|(k, _)| bounded(k, 253))
        .collect()
}

// ------------------------------------------------------------------------------- Naksha

/// A record of the tenant's own chain. Another tenant's record is refused; whether it is really
/// in the chain is checked by the caller against the stored chain.
fn naksha(v: &Value, tenant: &TenantId) -> Result<(AuditRecord, Record), String> {
    let r: AuditRecord = serde_json::from_value(v.clone()).map_err(|e| format!("not a Naksha audit record: {e}"))?;
    if &r.tenant != tenant {
        return Err("a Naksha audit record of another tenant".into());
    }
    if r.compute_hash() != r.hash {
        return Err(format!("Naksha audit record {} does not match its hash (edited)", r.seq));
    }
    let record = from_chain(&r).ok_or_else(|| format!("Naksha audit record {} has no readable time", r.seq))?;
    Ok((r, record))
}

/// A chain record as the learners see it.
pub fn from_chain(r: &AuditRecord) -> Option<Record> {
    let e = &r.entry;
    let at = DateTime::parse_from_rfc3339(&e.at).ok()?.with_timezone(&Utc);
    let action = if e.kind.is_empty() { "act".to_owned() } else { e.kind.clone() };
    let mut facts = BTreeMap::new();
    facts.insert("seq".into(), json!(r.seq));
    facts.insert("run_id".into(), json!(e.run_id));
    facts.insert("wpk_id".into(), json!(e.wpk_id));
    facts.insert("wpk_version".into(), json!(e.wpk_version));
    facts.insert("outcome".into(), json!(e.outcome));
    facts.insert("standing".into(), json!(e.standing_approval));
    facts.insert("dry_run_passed".into(), json!(e.dry_run_passed));
    let targets: Vec<String> = {
        let mut t: Vec<String> =
            e.actions.iter().filter_map(|a| a.get("target").and_then(Value::as_str)).map(str::to_owned).collect();
        t.sort();
        t.dedup();
        t
    };
    facts.insert("targets".into(), json!(targets));
    Some(Record {
        id: format!("naksha-audit/{}", r.seq),
        format: Format::NakshaAudit,
        at,
        principal: e.approver.clone(),
        principal_kind: "naksha".into(),
        action,
        resources: if e.wpk_id.is_empty() { Vec::new() } else { vec![format!("wpk/{}/v{}", e.wpk_id, e.wpk_version)] },
        namespace: String::new(),
        error: if matches!(e.outcome.as_str(), "failed" | "rolled_back" | "aborted") {
            e.outcome.clone()
        } else {
            String::new()
        },
        source: String::new(),
        facts,
    })
}

#[cfg(test)]
pub(crate) mod tests_support {
    /// A file of the audit data kept in the repository (`data/shared/<path>`, copied from the shared data).
    pub fn shared(path: &str) -> String {
        std::fs::read_to_string(format!("{}/../../data/shared/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::tests_support::shared;
    use super::*;
    use naksha_core::privacy::PiiKey;

    fn tenant() -> TenantId {
        TenantId::from_record("acme").unwrap_or_else(|_| unreachable!())
    }

    fn parse(text: &str) -> Parsed {
        let key = PiiKey::from_secret(b"test");
        parse_lines(text, &tenant(), &key.for_tenant("acme"))
    }

    #[test]
    fn reads_every_cloudtrail_delivery_object_of_the_shared_data() {
        let dir = format!("{}/../../data/shared/cloudtrail/CloudTrail", env!("CARGO_MANIFEST_DIR"));
        let mut total = 0;
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            let p = parse(&text);
            assert!(p.bad.is_empty(), "{:?}: {:?}", entry.path(), p.bad);
            total += p.records.len();
        }
        assert_eq!(total, 2900);
    }

    #[test]
    fn a_cloudtrail_record_keeps_what_rules_need_and_pseudonymises_the_address() {
        let line = r#"{"eventVersion":"1.08","userIdentity":{"type":"AssumedRole","principalId":"AROA:i-0dbc91f429e48eeed","arn":"arn:aws:sts::123:assumed-role/steal-role/i-0dbc91f429e48eeed","accountId":"123","accessKeyId":"ASIAXYZ","sessionContext":{"sessionIssuer":{"type":"Role","arn":"arn:aws:iam::123:role/steal-role"}}},"eventTime":"2023-07-10T12:00:00Z","eventSource":"ec2.amazonaws.com","eventName":"ModifySnapshotAttribute","awsRegion":"us-east-1","sourceIPAddress":"192.168.10.20","userAgent":"x","requestParameters":{"snapshotId":"snap-1","createVolumePermission":{"add":{"items":[{"userId":"012345678901"}]}}},"responseElements":null,"eventID":"e-1","readOnly":false,"eventType":"AwsApiCall"}"#;
        let p = parse(line);
        assert!(p.bad.is_empty(), "{:?}", p.bad);
        let r = &p.records[0];
        assert_eq!(r.principal, "arn:aws:iam::123:role/steal-role");
        assert_eq!(r.action, "ec2:ModifySnapshotAttribute");
        assert_eq!(r.fact_strings("shared_with"), vec!["012345678901"]);
        assert_eq!(r.fact_str("instance_session"), "i-0dbc91f429e48eeed");
        assert!(!serde_json::to_string(r).unwrap_or_default().contains("192.168.10.20"));
        assert!(!serde_json::to_string(r).unwrap_or_default().contains("ASIAXYZ"));
    }

    #[test]
    fn lambda_names_lose_their_api_version() {
        assert_eq!(iam_action("lambda.amazonaws.com", "AddPermission20150331v2"), "lambda:AddPermission");
        assert_eq!(iam_action("lambda.amazonaws.com", "CreateFunction20150331"), "lambda:CreateFunction");
        assert_eq!(iam_action("ec2.amazonaws.com", "DescribeVpcs"), "ec2:DescribeVpcs");
        assert_eq!(iam_action("s3.amazonaws.com", "GetObjectAcl"), "s3:GetObjectAcl");
    }

    #[test]
    fn reads_the_kubernetes_events_v1_and_v1beta1_and_refuses_the_invalid_one() {
        let dir = format!("{}/../../data/shared/k8s-audit/events", env!("CARGO_MANIFEST_DIR"));
        let (mut ok, mut bad) = (0, 0);
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let p = parse(&std::fs::read_to_string(entry.path()).unwrap_or_default());
            ok += p.records.len();
            bad += p.bad.len();
        }
        assert_eq!((ok, bad), (35, 1));
    }

    #[test]
    fn kubernetes_pod_specs_yield_privileged_host_namespaces_and_sensitive_mounts() {
        let p = parse(&shared("k8s-audit/events/create_nginx_pod_privileged.json"));
        assert!(p.records[0].fact_bool("privileged"));
        let p = parse(&shared("k8s-audit/events/create_nginx_pod_hostnetwork.json"));
        assert_eq!(p.records[0].fact_strings("host_namespaces"), vec!["hostNetwork"]);
        let p = parse(&shared("k8s-audit/events/create_nginx_pod_sensitive_mount.json"));
        assert!(!p.records[0].fact_strings("sensitive_mounts").is_empty());
        let p = parse(&shared("k8s-audit/events/create_nginx_pod_unprivileged.json"));
        assert!(!p.records[0].fact_bool("privileged") && p.records[0].fact_strings("host_namespaces").is_empty());
        let p = parse(&shared("k8s-audit/events/exec_pod.json"));
        assert_eq!(p.records[0].action, "create pods/exec");
    }

    #[test]
    fn unknown_and_malformed_lines_are_named() {
        let p = parse("{\"kind\": 0}\n\nnot json\n{\"Records\": 3}\n");
        let lines: Vec<usize> = p.bad.iter().map(|b| b.line).collect();
        assert_eq!(lines, vec![1, 3, 4]);
        assert!(p.records.is_empty());
    }

    #[test]
    fn a_naksha_record_of_another_tenant_or_edited_is_refused() {
        use naksha_contracts::audit::{AuditEntry, AuditRecord};
        let entry = AuditEntry {
            kind: String::new(),
            run_id: "r1".into(),
            wpk_id: "restart".into(),
            wpk_version: 1,
            wpk_sha256: "s".into(),
            approver: "alice".into(),
            justification: "ok".into(),
            standing_approval: false,
            plan_sha256: "p".into(),
            before_sha256: "b".into(),
            after_sha256: "a".into(),
            actions: vec![json!({"target": "deployment/api"})],
            outcome: "succeeded".into(),
            at: "2026-01-01T00:00:00Z".into(),
            approval_sha256: "x".into(),
            dry_run_passed: true,
        };
        let ok = AuditRecord::seal(&tenant(), entry.clone(), None);
        let p = parse(&serde_json::to_string(&ok).unwrap_or_default());
        assert!(p.bad.is_empty(), "{:?}", p.bad);
        assert_eq!(p.records[0].id, "naksha-audit/1");
        assert!(p.records[0].fact_bool("dry_run_passed"));
        let other = AuditRecord::seal(&TenantId::from_record("globex").unwrap_or_else(|_| unreachable!()), entry, None);
        let p = parse(&serde_json::to_string(&other).unwrap_or_default());
        assert!(p.bad[0].reason.contains("another tenant"));
        let mut edited = ok;
        edited.entry.approver = "mallory".into();
        let p = parse(&serde_json::to_string(&edited).unwrap_or_default());
        assert!(p.bad[0].reason.contains("edited"));
    }

    #[test]
    fn the_shipped_sample_reads_whole_and_holds_the_three_formats() {
        let text =
            std::fs::read_to_string(format!("{}/../../data/audits/sample_audit.jsonl", env!("CARGO_MANIFEST_DIR")))
                .unwrap_or_default();
        let key = PiiKey::from_secret(b"test");
        let demo = TenantId::from_record("demo").unwrap_or_else(|_| unreachable!());
        let p = parse_lines(&text, &demo, &key.for_tenant("demo"));
        assert!(p.bad.is_empty(), "{:?}", p.bad);
        for f in [Format::NakshaAudit, Format::Cloudtrail, Format::K8sAudit] {
            assert!(p.records.iter().any(|r| r.format == f), "no {f:?} record in the sample");
        }
        assert!(text.len() < 1 << 20, "the sample fits one request");
    }
}
