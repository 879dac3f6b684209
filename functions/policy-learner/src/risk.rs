//! Risk findings: behaviour in the audit records that a platform or security lead wants to see
//! and, once enforced, block. Rules describe behaviour (what was created, read, shared or
//! switched off, and how often), never particular files or names from the data they were
//! checked on. Each finding names every record that shows it.

use std::collections::BTreeMap;

use chrono::Duration;
use serde::Serialize;

use crate::records::{Format, Record};

/// One rule: its id, what it means, and the policy that enforcing it would apply.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Rule {
    pub id: &'static str,
    pub severity: &'static str,
    pub title: &'static str,
    /// What enforcing does (an admission or SCP-style deny).
    pub enforce: &'static str,
}

pub const RULES: &[Rule] = &[
    Rule {
        id: "k8s.privileged_pod",
        severity: "high",
        title: "a privileged container (or one with SYS_ADMIN) was created",
        enforce: "deny pods whose containers set privileged or add SYS_ADMIN/ALL",
    },
    Rule {
        id: "k8s.host_namespace_pod",
        severity: "high",
        title: "a pod shares the node's network, PID or IPC namespace",
        enforce: "deny pods with hostNetwork, hostPID or hostIPC",
    },
    Rule {
        id: "k8s.sensitive_mount",
        severity: "high",
        title: "a pod mounts a sensitive host path",
        enforce: "deny hostPath volumes under /, /etc, /proc, /var/run/docker.sock, /var/lib/kubelet, …",
    },
    Rule {
        id: "k8s.exec_attach",
        severity: "medium",
        title: "someone exec'd or attached into a running pod",
        enforce: "deny create on pods/exec and pods/attach outside break-glass",
    },
    Rule {
        id: "k8s.cluster_admin_binding",
        severity: "high",
        title: "a binding grants cluster-admin",
        enforce: "deny (Cluster)RoleBindings to cluster-admin",
    },
    Rule {
        id: "k8s.wildcard_role",
        severity: "medium",
        title: "a role grants * verbs, resources or API groups",
        enforce: "deny roles with wildcards",
    },
    Rule {
        id: "k8s.escalating_role",
        severity: "medium",
        title: "a role grants pods/exec, secrets, or escalate/bind/impersonate",
        enforce: "review roles granting exec, secrets or escalation",
    },
    Rule {
        id: "k8s.secret_read_unusual",
        severity: "medium",
        title: "secrets read by a principal that is not a control-plane component",
        enforce: "deny get/list/watch on secrets except to named service accounts",
    },
    Rule {
        id: "k8s.anonymous_request",
        severity: "high",
        title: "an anonymous request was allowed",
        enforce: "disable anonymous auth; deny system:unauthenticated",
    },
    Rule {
        id: "k8s.system_namespace_write",
        severity: "medium",
        title: "a workload or service account was created in kube-system or kube-public",
        enforce: "deny creates in system namespaces outside the control plane",
    },
    Rule {
        id: "k8s.system_role_changed",
        severity: "medium",
        title: "a built-in system: role or binding was changed or deleted",
        enforce: "deny changes to system: RBAC objects",
    },
    Rule {
        id: "k8s.credentials_in_configmap",
        severity: "medium",
        title: "a config map holds credentials",
        enforce: "deny config maps whose keys or values look like credentials",
    },
    Rule {
        id: "k8s.node_port_service",
        severity: "low",
        title: "a NodePort service exposes a pod on every node",
        enforce: "deny Services of type NodePort",
    },
    Rule {
        id: "k8s.denied_burst",
        severity: "medium",
        title: "a burst of forbidden or unauthorised requests from one principal",
        enforce: "alert and review the principal",
    },
    Rule {
        id: "aws.logging_disabled",
        severity: "high",
        title: "audit logging or flow logs were stopped, deleted or narrowed",
        enforce: "SCP: deny cloudtrail:StopLogging/DeleteTrail/PutEventSelectors/UpdateTrail, ec2:DeleteFlowLogs, config/guardduty disable",
    },
    Rule {
        id: "aws.secret_read_burst",
        severity: "high",
        title: "secrets, decrypted parameters or password data read in a burst",
        enforce: "alert; limit secretsmanager:GetSecretValue, ssm:GetParameter*(WithDecryption), ec2:GetPasswordData to named roles",
    },
    Rule {
        id: "aws.credentials_elsewhere",
        severity: "high",
        title: "an instance's role credentials were used from a second address",
        enforce: "condition aws:SourceVpc / aws:ec2InstanceSourceVPC on instance roles",
    },
    Rule {
        id: "aws.access_denied_burst",
        severity: "medium",
        title: "a burst of AccessDenied from one principal (enumeration)",
        enforce: "alert and review the principal",
    },
    Rule {
        id: "aws.shared_externally",
        severity: "high",
        title: "a snapshot, image, bucket or function was shared with another account or everyone",
        enforce: "SCP: deny sharing outside the organisation",
    },
    Rule {
        id: "aws.iam_persistence",
        severity: "high",
        title: "credentials or admin rights were given to another user",
        enforce: "deny iam:CreateAccessKey/CreateLoginProfile for other users and AdministratorAccess attachment outside the pipeline",
    },
    Rule {
        id: "aws.leave_organization",
        severity: "high",
        title: "the account tried to leave its organisation",
        enforce: "SCP: deny organizations:LeaveOrganization",
    },
    Rule {
        id: "aws.open_ingress",
        severity: "medium",
        title: "a security group was opened to the whole internet",
        enforce: "deny ingress from any address (a /0 CIDR, IPv4 or IPv6)",
    },
    Rule {
        id: "aws.user_data",
        severity: "medium",
        title: "instance user data was read in a burst or changed",
        enforce: "limit ec2:DescribeInstanceAttribute(userData) and ModifyInstanceAttribute",
    },
];

pub fn rule(id: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.id == id)
}

/// A rule matched by one subject's records.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub rule: &'static str,
    pub subject: String,
    pub record_ids: Vec<String>,
}

/// How many matching calls within [`BURST_WINDOW`] make a burst.
pub const SECRET_BURST: usize = 5;
pub const DENIED_BURST: usize = 10;
pub const USER_DATA_BURST: usize = 5;
pub const BURST_WINDOW: Duration = Duration::minutes(10);

fn is_control_plane(r: &Record) -> bool {
    matches!(r.principal_kind.as_str(), "node" | "system")
        || r.principal.starts_with("system:serviceaccount:kube-system:")
}

fn k8s_write(r: &Record) -> bool {
    matches!(r.fact_str("verb"), "create" | "update" | "patch")
}

fn resource(r: &Record) -> &str {
    r.fact_str("resource")
}

/// The rule a single record matches on its own, if any (bursts are counted separately).
fn single(r: &Record) -> Vec<&'static str> {
    let mut out = Vec::new();
    match r.format {
        Format::K8sAudit => {
            let allowed = r.error.is_empty() && r.fact_str("decision") != "forbid";
            let write = k8s_write(r);
            if write && r.fact_bool("privileged") {
                out.push("k8s.privileged_pod");
            }
            if write && !r.fact_strings("host_namespaces").is_empty() {
                out.push("k8s.host_namespace_pod");
            }
            if write && !r.fact_strings("sensitive_mounts").is_empty() {
                out.push("k8s.sensitive_mount");
            }
            if matches!(resource(r), "pods/exec" | "pods/attach") && matches!(r.fact_str("verb"), "create" | "get") {
                out.push("k8s.exec_attach");
            }
            let bindings = matches!(resource(r), "clusterrolebindings" | "rolebindings");
            if write && bindings && r.fact_str("role_ref") == "cluster-admin" {
                out.push("k8s.cluster_admin_binding");
            }
            let roles = matches!(resource(r), "clusterroles" | "roles");
            if write && roles && r.fact_bool("wildcard") {
                out.push("k8s.wildcard_role");
            }
            if write && roles && !r.fact_strings("grants").is_empty() && !r.fact_bool("wildcard") {
                out.push("k8s.escalating_role");
            }
            if resource(r) == "secrets"
                && matches!(r.fact_str("verb"), "get" | "list" | "watch")
                && !is_control_plane(r)
                && allowed
            {
                out.push("k8s.secret_read_unusual");
            }
            if r.principal_kind == "anonymous" && allowed {
                out.push("k8s.anonymous_request");
            }
            if r.fact_str("verb") == "create"
                && matches!(r.namespace.as_str(), "kube-system" | "kube-public")
                && matches!(
                    resource(r),
                    "pods"
                        | "deployments"
                        | "daemonsets"
                        | "statefulsets"
                        | "replicasets"
                        | "jobs"
                        | "cronjobs"
                        | "serviceaccounts"
                )
            {
                out.push("k8s.system_namespace_write");
            }
            let rbac = matches!(resource(r), "clusterroles" | "clusterrolebindings" | "roles" | "rolebindings");
            if rbac
                && matches!(r.fact_str("verb"), "update" | "patch" | "delete")
                && r.fact_str("name").starts_with("system:")
                && !is_control_plane(r)
            {
                out.push("k8s.system_role_changed");
            }
            if write && resource(r) == "configmaps" && !r.fact_strings("credential_keys").is_empty() {
                out.push("k8s.credentials_in_configmap");
            }
            if write && resource(r) == "services" && r.fact_str("service_type") == "NodePort" {
                out.push("k8s.node_port_service");
            }
        }
        Format::Cloudtrail => {
            let name = r.action.split(':').nth(1).unwrap_or_default();
            let service = r.action.split(':').next().unwrap_or_default();
            let logging_off = matches!(
                (service, name),
                (
                    "cloudtrail",
                    "StopLogging" | "DeleteTrail" | "PutEventSelectors" | "UpdateTrail" | "PutInsightSelectors"
                ) | ("ec2", "DeleteFlowLogs")
                    | ("config", "StopConfigurationRecorder" | "DeleteConfigurationRecorder" | "DeleteDeliveryChannel")
                    | ("guardduty", "DeleteDetector" | "DisassociateFromMasterAccount" | "StopMonitoringMembers")
                    | ("securityhub", "DisableSecurityHub")
                    | ("logs", "DeleteLogGroup" | "DeleteLogStream")
            );
            if logging_off {
                out.push("aws.logging_disabled");
            }
            let shared = r.fact_strings("shared_with");
            if !shared.is_empty() {
                out.push("aws.shared_externally");
            }
            let target = r.fact_str("target_user");
            if service == "iam"
                && (matches!(name, "CreateAccessKey" | "CreateLoginProfile" | "UpdateLoginProfile")
                    && !target.is_empty()
                    && !r.fact_bool("own_user")
                    || r.fact_str("policy_arn").ends_with("/AdministratorAccess"))
                && r.error.is_empty()
            {
                out.push("aws.iam_persistence");
            }
            if service == "organizations" && name == "LeaveOrganization" {
                out.push("aws.leave_organization");
            }
            if r.fact_bool("open_to_world") {
                out.push("aws.open_ingress");
            }
            if name == "ModifyInstanceAttribute" && r.fact_bool("user_data") {
                out.push("aws.user_data");
            }
        }
        Format::NakshaAudit => {}
    }
    out
}

fn is_secret_read(r: &Record) -> bool {
    matches!(
        r.action.as_str(),
        "secretsmanager:GetSecretValue" | "secretsmanager:BatchGetSecretValue" | "ec2:GetPasswordData"
    ) || matches!(r.action.as_str(), "ssm:GetParameter" | "ssm:GetParameters" | "ssm:GetParametersByPath")
        && r.fact_bool("with_decryption")
}

fn is_denied(r: &Record) -> bool {
    match r.format {
        Format::Cloudtrail => {
            let e = r.error.as_str();
            e.contains("AccessDenied") || e.contains("UnauthorizedOperation") || e == "Forbidden"
        }
        Format::K8sAudit => r.error == "401" || r.error == "403",
        Format::NakshaAudit => false,
    }
}

fn is_user_data_read(r: &Record) -> bool {
    r.action == "ec2:DescribeInstanceAttribute" && r.fact_bool("user_data")
}

/// Records (sorted by time) that contain at least `n` within any window of [`BURST_WINDOW`]:
/// every record that belongs to such a window.
fn bursts<'a>(records: &[&'a Record], n: usize) -> Vec<&'a Record> {
    let mut sorted: Vec<&Record> = records.to_vec();
    sorted.sort_by_key(|r| r.at);
    let mut keep = vec![false; sorted.len()];
    let mut start = 0;
    for end in 0..sorted.len() {
        while sorted[end].at - sorted[start].at > BURST_WINDOW {
            start += 1;
        }
        if end + 1 - start >= n {
            keep[start..=end].iter_mut().for_each(|k| *k = true);
        }
    }
    sorted.into_iter().zip(keep).filter(|(_, k)| *k).map(|(r, _)| r).collect()
}

/// A rule counted over a window: its id (empty: by format), what matches, how many make a burst.
type BurstRule = (&'static str, fn(&Record) -> bool, usize);

/// Every finding in `records`, one per (rule, subject), each naming its records.
pub fn findings(records: &[Record]) -> Vec<Finding> {
    let mut by: BTreeMap<(&'static str, String), Vec<String>> = BTreeMap::new();
    for r in records {
        for rule in single(r) {
            by.entry((rule, r.principal.clone())).or_default().push(r.id.clone());
        }
    }
    let mut per_principal: BTreeMap<&str, Vec<&Record>> = BTreeMap::new();
    for r in records {
        per_principal.entry(r.principal.as_str()).or_default().push(r);
    }
    for (who, rs) in &per_principal {
        let burst_rules: [BurstRule; 3] = [
            ("aws.secret_read_burst", is_secret_read, SECRET_BURST),
            ("aws.user_data", is_user_data_read, USER_DATA_BURST),
            ("", is_denied, DENIED_BURST),
        ];
        for (rule, matches, n) in burst_rules {
            let hits: Vec<&Record> = rs.iter().copied().filter(|r| matches(r)).collect();
            for r in bursts(&hits, n) {
                let rule = match (rule, r.format) {
                    ("", Format::K8sAudit) => "k8s.denied_burst",
                    ("", _) => "aws.access_denied_burst",
                    (rule, _) => rule,
                };
                by.entry((rule, (*who).to_owned())).or_default().push(r.id.clone());
            }
        }
        // Instance credentials used from more than one address: the calls from every address
        // but the first one seen.
        let mut sessions: BTreeMap<&str, Vec<&Record>> = BTreeMap::new();
        for r in rs.iter().filter(|r| !r.fact_str("instance_session").is_empty()) {
            sessions.entry(r.fact_str("instance_session")).or_default().push(r);
        }
        for calls in sessions.values_mut() {
            calls.sort_by_key(|r| r.at);
            let sources: Vec<&str> = calls
                .iter()
                .map(|r| r.source.as_str())
                .filter(|s| !s.is_empty() && !s.ends_with(".amazonaws.com") && *s != "AWS Internal")
                .collect();
            let Some(first) = sources.first().copied() else { continue };
            let elsewhere: Vec<String> = calls
                .iter()
                .filter(|r| !r.source.is_empty() && r.source != first && !r.source.ends_with(".amazonaws.com"))
                .map(|r| r.id.clone())
                .collect();
            if !elsewhere.is_empty() {
                by.entry(("aws.credentials_elsewhere", (*who).to_owned())).or_default().extend(elsewhere);
            }
        }
    }
    by.into_iter()
        .map(|((rule, subject), mut ids)| {
            ids.sort();
            ids.dedup();
            Finding { rule, subject, record_ids: ids }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::parse_lines;
    use chrono::{TimeZone, Utc};
    use naksha_contracts::TenantId;
    use naksha_core::privacy::PiiKey;
    use serde_json::json;

    fn parse(text: &str) -> Vec<Record> {
        let key = PiiKey::from_secret(b"test");
        let tenant = TenantId::from_record("acme").unwrap_or_else(|_| unreachable!());
        let p = parse_lines(text, &tenant, &key.for_tenant("acme"));
        assert!(p.bad.is_empty(), "{:?}", p.bad);
        p.records
    }

    fn k8s_file(name: &str) -> Vec<Record> {
        parse(&crate::records::tests_support::shared(&format!("k8s-audit/events/{name}")))
    }

    fn rules_of(records: &[Record]) -> Vec<&'static str> {
        findings(records).into_iter().map(|f| f.rule).collect()
    }

    #[test]
    fn each_kubernetes_rule_fires_on_its_behaviour() {
        let cases = [
            ("create_nginx_pod_privileged.json", "k8s.privileged_pod"),
            ("create_nginx_pod_hostnetwork.json", "k8s.host_namespace_pod"),
            ("create_nginx_pod_sensitive_mount.json", "k8s.sensitive_mount"),
            ("exec_pod.json", "k8s.exec_attach"),
            ("attach_pod.json", "k8s.exec_attach"),
            ("attach_cluster_admin_role.json", "k8s.cluster_admin_binding"),
            ("create_cluster_role_wildcard_verbs.json", "k8s.wildcard_role"),
            ("create_pod_kube_system_namespace.json", "k8s.system_namespace_write"),
            ("create_serviceaccount_kube_system_namespace.json", "k8s.system_namespace_write"),
            ("modify_cluster_role_node_problem_detector.json", "k8s.system_role_changed"),
            ("create_configmap_sensitive_values.json", "k8s.credentials_in_configmap"),
            ("create_nginx_service_nodeport.json", "k8s.node_port_service"),
        ];
        for (file, rule) in cases {
            assert!(rules_of(&k8s_file(file)).contains(&rule), "{file}: {:?}", rules_of(&k8s_file(file)));
        }
    }

    #[test]
    fn ordinary_kubernetes_changes_raise_nothing() {
        for file in [
            "create_nginx_pod_unprivileged.json",
            "create_nginx_pod_unsensitive_mount.json",
            "create_configmap.json",
            "create_deployment.json",
            "create_service.json",
            "create_serviceaccount.json",
            "delete_configmap.json",
            "create_clusterrole.json",
        ] {
            assert!(rules_of(&k8s_file(file)).is_empty(), "{file}: {:?}", rules_of(&k8s_file(file)));
        }
    }

    fn ev(user: &str, verb: &str, resource: &str, code: u64, extra: serde_json::Value) -> String {
        let mut v = json!({"kind": "Event", "apiVersion": "audit.k8s.io/v1", "auditID": format!("{user}-{verb}-{resource}-{code}-{}", extra),
            "verb": verb, "user": {"username": user}, "objectRef": {"resource": resource, "namespace": "prod"},
            "responseStatus": {"code": code}, "requestReceivedTimestamp": "2026-01-01T00:00:00Z", "stage": "ResponseComplete"});
        if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
            for (k, x) in e {
                o.insert(k.clone(), x.clone());
            }
        }
        v.to_string()
    }

    #[test]
    fn secrets_read_by_a_person_is_unusual_by_the_controller_is_not() {
        let r = parse(&ev("alice", "get", "secrets", 200, json!({})));
        assert_eq!(rules_of(&r), vec!["k8s.secret_read_unusual"]);
        let r = parse(&ev("system:kube-controller-manager", "get", "secrets", 200, json!({})));
        assert!(rules_of(&r).is_empty());
        let r = parse(&ev("alice", "get", "secrets", 403, json!({})));
        assert!(rules_of(&r).is_empty());
    }

    #[test]
    fn anonymous_allowed_is_a_finding_anonymous_refused_is_not() {
        let r = parse(&ev(
            "system:anonymous",
            "get",
            "pods",
            200,
            json!({"user": {"username": "system:anonymous", "groups": ["system:unauthenticated"]}}),
        ));
        assert_eq!(rules_of(&r), vec!["k8s.anonymous_request"]);
        let r = parse(&ev("system:anonymous", "get", "pods", 401, json!({"x": 1})));
        assert!(!rules_of(&r).contains(&"k8s.anonymous_request"));
    }

    #[test]
    fn a_daemonset_with_host_pid_in_its_template_is_found() {
        let body = json!({"requestObject": {"kind": "DaemonSet", "spec": {"template": {"spec": {"hostPID": true, "containers": [{"name": "x"}]}}}}});
        let r = parse(&ev("alice", "create", "daemonsets", 201, body));
        assert_eq!(rules_of(&r), vec!["k8s.host_namespace_pod"]);
    }

    fn ct(i: usize, who: &str, name: &str, minute: i64, error: &str, extra: serde_json::Value) -> String {
        let at =
            Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).single().unwrap_or_default() + Duration::seconds(minute * 60);
        let (source, event) = name.split_once(':').unwrap_or(("ec2", name));
        let mut v = json!({"eventID": format!("e{i}"), "eventSource": format!("{source}.amazonaws.com"), "eventName": event,
            "eventTime": at.to_rfc3339(), "userIdentity": {"type": "IAMUser", "arn": format!("arn:aws:iam::1:user/{who}")},
            "sourceIPAddress": "203.0.113.9", "requestParameters": null, "readOnly": false});
        if !error.is_empty() {
            v["errorCode"] = json!(error);
        }
        if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
            for (k, x) in e {
                o.insert(k.clone(), x.clone());
            }
        }
        v.to_string()
    }

    #[test]
    fn secret_reads_are_a_burst_only_when_many_fall_within_ten_minutes() {
        let spread: Vec<String> =
            (0..6).map(|i| ct(i, "bob", "secretsmanager:GetSecretValue", i as i64 * 20, "", json!({}))).collect();
        assert!(rules_of(&parse(&spread.join("\n"))).is_empty());
        let burst: Vec<String> =
            (0..6).map(|i| ct(i, "bob", "secretsmanager:GetSecretValue", 0, "", json!({}))).collect();
        let f = findings(&parse(&burst.join("\n")));
        assert_eq!(f.len(), 1);
        assert_eq!((f[0].rule, f[0].record_ids.len()), ("aws.secret_read_burst", 6));
        let params: Vec<String> = (0..6)
            .map(|i| ct(i, "bob", "ssm:GetParameter", 0, "", json!({"requestParameters": {"withDecryption": false}})))
            .collect();
        assert!(rules_of(&parse(&params.join("\n"))).is_empty());
    }

    #[test]
    fn access_denied_bursts_and_single_denials() {
        let few: Vec<String> = (0..3).map(|i| ct(i, "eve", "iam:ListUsers", 0, "AccessDenied", json!({}))).collect();
        assert!(rules_of(&parse(&few.join("\n"))).is_empty());
        let many: Vec<String> = (0..12)
            .map(|i| ct(i, "eve", "ec2:DescribeInstances", 1, "Client.UnauthorizedOperation", json!({})))
            .collect();
        assert_eq!(rules_of(&parse(&many.join("\n"))), vec!["aws.access_denied_burst"]);
    }

    #[test]
    fn logging_switched_off_even_when_it_failed_is_a_finding() {
        let r = parse(&ct(1, "eve", "cloudtrail:StopLogging", 0, "TrailNotFoundException", json!({})));
        assert_eq!(rules_of(&r), vec!["aws.logging_disabled"]);
        let r = parse(&ct(1, "eve", "cloudtrail:StartLogging", 0, "", json!({})));
        assert!(rules_of(&r).is_empty());
    }

    #[test]
    fn credentials_for_another_user_but_not_for_oneself() {
        let r = parse(&ct(1, "eve", "iam:CreateAccessKey", 0, "", json!({"requestParameters": {"userName": "admin"}})));
        assert_eq!(rules_of(&r), vec!["aws.iam_persistence"]);
        let r = parse(&ct(1, "eve", "iam:CreateAccessKey", 0, "", json!({"requestParameters": {"userName": "eve"}})));
        assert!(rules_of(&r).is_empty());
    }

    #[test]
    fn instance_credentials_from_a_second_address() {
        let mk = |i: usize, ip: &str| {
            json!({"eventID": format!("c{i}"), "eventSource": "sts.amazonaws.com", "eventName": "GetCallerIdentity", "eventTime": "2026-01-01T00:00:00Z",
                "userIdentity": {"type": "AssumedRole", "arn": "arn:aws:sts::1:assumed-role/web/i-0abc12345678def00", "accessKeyId": "ASIA1",
                    "sessionContext": {"sessionIssuer": {"arn": "arn:aws:iam::1:role/web"}}},
                "sourceIPAddress": ip, "readOnly": true}).to_string()
        };
        let same = [mk(1, "3.3.3.3"), mk(2, "3.3.3.3")].join("\n");
        assert!(rules_of(&parse(&same)).is_empty());
        let f = findings(&parse(&[mk(1, "3.3.3.3"), mk(2, "198.51.100.7")].join("\n")));
        assert_eq!((f[0].rule, f[0].record_ids.clone()), ("aws.credentials_elsewhere", vec!["c2".to_owned()]));
    }

    #[test]
    fn every_rule_is_documented_once() {
        let mut ids: Vec<&str> = RULES.iter().map(|r| r.id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), RULES.len());
    }
}
