//! Importing experiments written for other tools: a Chaos Toolkit experiment (JSON) or an AWS FIS
//! experiment template. What maps onto Naksha's faults, probes and rollbacks is converted; the
//! answer names every part that could not be mapped, and an experiment whose method maps onto no
//! fault is refused. Scripts (SSM documents, `process` providers) are never run.

use naksha_act::faults::FaultKind;
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::specs::{BlastRadius, FaultSpec, Probe, Rollback, Spec};

/// Recovery deadline of an imported spec that says nothing about it.
pub const DEFAULT_DEADLINE_S: u64 = 300;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Native,
    ChaosToolkit,
    Fis,
}

/// What an import made of a document.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Imported {
    pub format: Format,
    pub spec: Spec,
    pub mapped: Vec<String>,
    pub unmapped: Vec<String>,
}

/// Nothing of the document maps onto a fault.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NothingMaps {
    pub format: Format,
    pub unmapped: Vec<String>,
}

/// Which format a document is in (`None`: none known).
pub fn detect(doc: &Value) -> Option<Format> {
    let o = doc.as_object()?;
    if o.contains_key("fault") {
        Some(Format::Native)
    } else if o.contains_key("actions")
        && (o.contains_key("stopConditions") || o.contains_key("targets") || o.contains_key("roleArn"))
    {
        Some(Format::Fis)
    } else if o.contains_key("title") && (o.contains_key("method") || o.contains_key("steady-state-hypothesis")) {
        Some(Format::ChaosToolkit)
    } else if o.contains_key("title") && o.len() <= 3 {
        // Chaos Toolkit's smallest (invalid) experiments: a title and nothing to run.
        Some(Format::ChaosToolkit)
    } else {
        None
    }
}

/// A spec id from a title: lowercase, runs of anything else as `-`, at most 64.
pub fn slug(title: &str, fallback: &str) -> String {
    let mut out = String::new();
    for c in title.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
        if out.len() >= 60 {
            break;
        }
    }
    let out = out.trim_matches('-').to_owned();
    if out.is_empty() { fallback.to_owned() } else { out }
}

fn name_of(activity: &Value, i: usize) -> String {
    activity["name"].as_str().map_or_else(|| format!("#{i}"), |n| format!("{n:?}"))
}

fn python_target(provider: &Value) -> Option<String> {
    (provider["type"] == "python")
        .then(|| format!("{}.{}", provider["module"].as_str().unwrap_or("?"), provider["func"].as_str().unwrap_or("?")))
}

fn ctk_fault(target: &str, args: &Map<String, Value>) -> Option<(FaultKind, Map<String, Value>)> {
    match target {
        "chaosk8s.pod.actions.terminate_pods" | "chaosk8s.pod.actions.kill_microservice" => {
            let pods = args.get("qty").and_then(Value::as_u64).unwrap_or(1);
            Some((FaultKind::KillPod, json!({"pods": pods}).as_object().cloned().unwrap_or_default()))
        }
        // A new image that does not start: the deployment crash-loops.
        "chaosk8s.deployment.actions.set_deployment_image" => Some((FaultKind::CrashLoop, Map::new())),
        _ => None,
    }
}

/// Import a Chaos Toolkit experiment.
pub fn chaos_toolkit(doc: &Value) -> Result<Imported, NothingMaps> {
    let (mut mapped, mut unmapped) = (Vec::new(), Vec::new());
    let title = doc["title"].as_str().unwrap_or("imported experiment").chars().take(200).collect::<String>();
    let mut fault: Option<FaultSpec> = None;
    match doc.get("method").and_then(Value::as_array) {
        None => unmapped.push("method: missing — nothing to inject".to_owned()),
        Some(m) if m.is_empty() => unmapped.push("method: empty — nothing to inject".to_owned()),
        Some(method) => {
            for (i, a) in method.iter().enumerate() {
                let name = name_of(a, i);
                let provider = &a["provider"];
                if provider.is_null() {
                    unmapped.push(format!("method {name}: no provider (the pre-1.0 layout); not run"));
                    continue;
                }
                if a["type"] == "probe" {
                    unmapped.push(format!("method probe {name}: not run; Naksha watches the world itself"));
                    continue;
                }
                let target = python_target(provider);
                let args = provider["arguments"].as_object().cloned().unwrap_or_default();
                match target.as_deref().and_then(|t| ctk_fault(t, &args).map(|f| (t.to_owned(), f))) {
                    Some((t, (kind, params))) if fault.is_none() => {
                        mapped.push(format!("method action {name} ({t}) → fault {}", kind.as_str()));
                        fault = Some(FaultSpec { kind: kind.into(), params });
                    }
                    Some((t, _)) => unmapped
                        .push(format!("method action {name} ({t}): one fault per run; only the first is injected")),
                    None => unmapped.push(format!(
                        "method action {name} ({}): no counterpart in the simulated world",
                        target
                            .unwrap_or_else(|| format!("{} provider", provider["type"].as_str().unwrap_or("unknown")))
                    )),
                }
            }
        }
    }
    let mut steady_state = Vec::new();
    let probes = doc["steady-state-hypothesis"]["probes"].as_array().cloned().unwrap_or_default();
    for (i, p) in probes.iter().enumerate() {
        let name = name_of(p, i);
        let provider = &p["provider"];
        match provider["type"].as_str() {
            Some("http") => match provider["url"].as_str() {
                Some(url) if url.contains("${") => unmapped.push(format!(
                    "steady-state probe {name}: its URL {url:?} needs configuration Naksha does not have"
                )),
                Some(url) if url.starts_with("http://") || url.starts_with("https://") => {
                    let status = p["tolerance"].as_u64().and_then(|s| u16::try_from(s).ok()).unwrap_or(200);
                    mapped
                        .push(format!("steady-state probe {name} → http {url} answers {status} (allowed hosts only)"));
                    steady_state.push(Probe::Http { url: url.to_owned(), status });
                }
                other => unmapped.push(format!("steady-state probe {name}: {other:?} is not an HTTP URL")),
            },
            Some("python") => {
                let target = python_target(provider).unwrap_or_default();
                if target.starts_with("chaosk8s.pod.probes.") || target.starts_with("chaosk8s.deployment.probes.") {
                    mapped.push(format!("steady-state probe {name} ({target}) → resource-health"));
                    if !steady_state.contains(&Probe::ResourceHealth) {
                        steady_state.push(Probe::ResourceHealth);
                    }
                } else {
                    unmapped.push(format!("steady-state probe {name} ({target}): no counterpart"));
                }
            }
            other => unmapped
                .push(format!("steady-state probe {name}: a {} provider is not run", other.unwrap_or("unknown"))),
        }
    }
    if !steady_state.contains(&Probe::ResourceHealth) {
        mapped.push("steady state: resource-health added (Naksha checks every experiment's target)".to_owned());
        steady_state.insert(0, Probe::ResourceHealth);
    }
    for (i, r) in doc["rollbacks"].as_array().cloned().unwrap_or_default().iter().enumerate() {
        let name = name_of(r, i);
        match python_target(&r["provider"]).as_deref() {
            Some(t @ ("chaosk8s.deployment.actions.rollback_deployment" | "chaosk8s.node.actions.uncordon_node")) => {
                mapped.push(format!("rollback {name} ({t}) → revert-fault"));
            }
            other => unmapped.push(format!(
                "rollback {name} ({}): not run; revert-fault always runs",
                other.unwrap_or("not python")
            )),
        }
    }
    if doc.get("runtime").is_some() {
        unmapped
            .push("runtime: Naksha always checks the steady state before and after, and always rolls back".to_owned());
    }
    for key in ["configuration", "secrets", "controls"] {
        if doc.get(key).is_some() {
            unmapped.push(format!("{key}: not used"));
        }
    }
    let Some(fault) = fault else { return Err(NothingMaps { format: Format::ChaosToolkit, unmapped }) };
    let spec = Spec {
        id: slug(&title, "chaostoolkit-import"),
        title,
        description: doc["description"].as_str().map(|d| d.chars().take(2000).collect()),
        fault,
        blast_radius: BlastRadius { kind: "deployment".into(), count: Some(1), percent: None },
        steady_state,
        recovery_deadline_s: DEFAULT_DEADLINE_S,
        rollbacks: vec![Rollback::RevertFault],
    };
    Ok(Imported { format: Format::ChaosToolkit, spec, mapped, unmapped })
}

fn fis_fault(action_id: &str) -> Option<FaultKind> {
    match action_id {
        "aws:ec2:terminate-instances"
        | "aws:ec2:stop-instances"
        | "aws:ecs:stop-task"
        | "aws:ec2:send-spot-instance-interruptions"
        | "aws:eks:terminate-nodegroup-instances" => Some(FaultKind::KillPod),
        "aws:ecs:task-network-packet-loss" | "aws:ecs:task-network-latency" | "aws:network:disrupt-connectivity" => {
            Some(FaultKind::Latency)
        }
        "aws:ecs:task-cpu-stress" => Some(FaultKind::CpuSpike),
        _ => None,
    }
}

/// `PT10M` → 600.
fn iso_seconds(d: &str) -> Option<u64> {
    let rest = d.strip_prefix("PT")?;
    let (mut total, mut num) = (0u64, String::new());
    for c in rest.chars() {
        match c {
            '0'..='9' => num.push(c),
            'H' | 'M' | 'S' => {
                let n: u64 = num.parse().ok()?;
                total += n * match c {
                    'H' => 3600,
                    'M' => 60,
                    _ => 1,
                };
                num.clear();
            }
            _ => return None,
        }
    }
    num.is_empty().then_some(total)
}

/// Import an AWS FIS experiment template.
pub fn fis(doc: &Value) -> Result<Imported, NothingMaps> {
    let (mut mapped, mut unmapped) = (Vec::new(), Vec::new());
    let title = doc["description"]
        .as_str()
        .filter(|d| !d.is_empty())
        .unwrap_or("FIS experiment")
        .chars()
        .take(200)
        .collect::<String>();
    let mut fault: Option<FaultSpec> = None;
    let mut blast = BlastRadius { kind: "deployment".into(), count: Some(1), percent: None };
    let mut deadline = DEFAULT_DEADLINE_S;
    let targets = doc["targets"].as_object().cloned().unwrap_or_default();
    let actions = doc["actions"].as_object().cloned().unwrap_or_default();
    for (name, a) in &actions {
        let id = a["actionId"].as_str().unwrap_or("?");
        if id == "aws:fis:wait" {
            let secs = a["parameters"]["duration"].as_str().and_then(iso_seconds);
            match secs {
                Some(s) => {
                    deadline = deadline.max(s.clamp(10, crate::specs::MAX_DEADLINE_S));
                    mapped.push(format!("action {name:?} (aws:fis:wait {s} s) → recovery deadline {deadline} s"));
                }
                None => unmapped.push(format!("action {name:?} (aws:fis:wait): duration not understood")),
            }
            continue;
        }
        match fis_fault(id) {
            Some(kind) if fault.is_none() => {
                mapped.push(format!("action {name:?} ({id}) → fault {}", kind.as_str()));
                fault = Some(FaultSpec { kind: kind.into(), params: Map::new() });
                // Its target's selection mode is the blast radius.
                for (_, target_name) in a["targets"].as_object().into_iter().flatten() {
                    let Some(t) = target_name.as_str().and_then(|n| targets.get(n)) else { continue };
                    let mode = t["selectionMode"].as_str().unwrap_or("ALL");
                    blast = match mode
                        .strip_prefix("COUNT(")
                        .and_then(|m| m.strip_suffix(')'))
                        .and_then(|n| n.parse().ok())
                    {
                        Some(n) => BlastRadius { kind: "deployment".into(), count: Some(n), percent: None },
                        None => match mode
                            .strip_prefix("PERCENT(")
                            .and_then(|m| m.strip_suffix(')'))
                            .and_then(|n| n.parse().ok())
                        {
                            Some(p) => BlastRadius { kind: "deployment".into(), count: None, percent: Some(p) },
                            None => BlastRadius { kind: "deployment".into(), count: None, percent: Some(100) },
                        },
                    };
                    mapped.push(format!(
                        "target {target_name} ({} {mode}) → chaos-target deployments, {}",
                        t["resourceType"].as_str().unwrap_or("?"),
                        blast
                            .count
                            .map_or_else(|| format!("{}%", blast.percent.unwrap_or(100)), |c| format!("at most {c}"))
                    ));
                }
            }
            Some(_) => unmapped.push(format!("action {name:?} ({id}): one fault per run; only the first is injected")),
            None if id.starts_with("aws:ssm:") => {
                unmapped.push(format!("action {name:?} ({id}): runs an SSM document; scripts are not run here"))
            }
            None => unmapped.push(format!("action {name:?} ({id}): no counterpart in the simulated world")),
        }
    }
    match doc["stopConditions"].as_array() {
        Some(sc) if sc.iter().all(|c| c["source"] == "none") => mapped.push(
            "stopConditions: none — Naksha's own apply (the recovery deadline, the kill switch, a probe outside the blast radius)".to_owned(),
        ),
        Some(sc) => unmapped.extend(sc.iter().filter(|c| c["source"] != "none").map(|c| {
            format!("stop condition {}: CloudWatch alarms are not watched; Naksha's own stop conditions apply", c["source"])
        })),
        None => {}
    }
    for key in ["roleArn", "logConfiguration", "experimentOptions"] {
        if doc.get(key).is_some() {
            unmapped.push(format!("{key}: not used"));
        }
    }
    let Some(fault) = fault else { return Err(NothingMaps { format: Format::Fis, unmapped }) };
    mapped.push("steady state: resource-health (FIS templates have none)".to_owned());
    let spec = Spec {
        id: slug(&title, "fis-import"),
        title,
        description: None,
        fault,
        blast_radius: blast,
        steady_state: vec![Probe::ResourceHealth],
        recovery_deadline_s: deadline,
        rollbacks: vec![Rollback::RevertFault],
    };
    Ok(Imported { format: Format::Fis, spec, mapped, unmapped })
}

#[cfg(test)]
mod tests;
