//! The agentspec: nodes and conditional edges, checked at load.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use naksha_core::signing::sha256_hex;
use serde::Deserialize;
use serde_json::Value;

use crate::state::RunState;

/// What a node does; the implementations live in [`crate::agent`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeKind {
    Observe,
    Decide,
    Plan,
    Gate,
    Act,
    Verify,
    Record,
}

/// Named predicates over the run state that edges may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// A WPK was chosen and the run is not concluded.
    WpkChosen,
    /// The run has an outcome (refused, failed, aborted …).
    Concluded,
    /// The request asked for a plan only.
    DryRunOnly,
    /// The resource changed since the plan: plan again.
    StateChanged,
    /// An approval matches the current plan.
    Approved,
    /// At least one action was carried out.
    Acted,
}

impl Condition {
    const ALL: [Condition; 6] = [
        Condition::WpkChosen,
        Condition::Concluded,
        Condition::DryRunOnly,
        Condition::StateChanged,
        Condition::Approved,
        Condition::Acted,
    ];

    fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == name)
    }

    /// The name the agentspec uses.
    pub fn name(self) -> &'static str {
        match self {
            Condition::WpkChosen => "wpk_chosen",
            Condition::Concluded => "concluded",
            Condition::DryRunOnly => "dry_run_only",
            Condition::StateChanged => "state_changed",
            Condition::Approved => "approved",
            Condition::Acted => "acted",
        }
    }

    pub fn holds(self, s: &RunState) -> bool {
        match self {
            Condition::WpkChosen => s.decision.is_some() && s.outcome.is_none(),
            Condition::Concluded => s.outcome.is_some(),
            Condition::DryRunOnly => s.request.dry_run,
            Condition::StateChanged => s.replan,
            Condition::Approved => match (&s.approval, &s.plan) {
                (Some(a), Some(p)) => a.plan_sha256 == p.sha256 && !s.replan && s.outcome.is_none(),
                _ => false,
            },
            Condition::Acted => !s.receipts.is_empty() && s.outcome.is_none(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Node(String),
    Pause,
    End,
}

#[derive(Debug, Clone)]
pub struct Edge {
    pub to: Target,
    pub when: Option<Condition>,
}

#[derive(Debug, Clone)]
pub struct Node {
    pub kind: NodeKind,
    pub config: Value,
}

/// A checked graph.
#[derive(Debug, Clone)]
pub struct Graph {
    /// `v<version>-<first 12 hex of the spec's sha256>`: recorded with every checkpoint.
    pub version: String,
    pub start: String,
    pub max_steps: u32,
    pub on_error: String,
    pub nodes: BTreeMap<String, Node>,
    pub edges: BTreeMap<String, Vec<Edge>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SpecFile {
    version: u32,
    start: String,
    max_steps: u32,
    on_error: String,
    nodes: BTreeMap<String, NodeDef>,
    edges: BTreeMap<String, Vec<EdgeDef>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NodeDef {
    kind: NodeKind,
    #[serde(default)]
    #[allow(dead_code)]
    description: Option<String>,
    #[serde(default)]
    config: Value,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EdgeDef {
    to: String,
    #[serde(default)]
    when: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("invalid agentspec: {}", .0.join("; "))]
pub struct SpecError(pub Vec<String>);

/// The agentspec shipped with the agent.
pub const BUILTIN: &str = include_str!("../agentspec.yaml");

impl Graph {
    pub fn builtin() -> Result<Self, SpecError> {
        Self::load(BUILTIN)
    }

    pub fn load(text: &str) -> Result<Self, SpecError> {
        let file: SpecFile = serde_yaml::from_str(text).map_err(|e| SpecError(vec![e.to_string()]))?;
        let mut problems = Vec::new();
        if !file.nodes.contains_key(&file.start) {
            problems.push(format!("start node {:?} is not defined", file.start));
        }
        if !file.nodes.contains_key(&file.on_error) {
            problems.push(format!("on_error node {:?} is not defined", file.on_error));
        }
        if file.max_steps == 0 {
            problems.push("max_steps must be at least 1".into());
        }
        let mut edges = BTreeMap::new();
        for (from, list) in &file.edges {
            if !file.nodes.contains_key(from) {
                problems.push(format!("edges from unknown node {from:?}"));
            }
            let mut out = Vec::new();
            for (i, e) in list.iter().enumerate() {
                let to = match e.to.as_str() {
                    "$pause" => Target::Pause,
                    "$end" => Target::End,
                    n if file.nodes.contains_key(n) => Target::Node(n.to_owned()),
                    n => {
                        problems.push(format!("edge {from} → {n:?}: unknown node"));
                        continue;
                    }
                };
                let when = match &e.when {
                    None => None,
                    Some(c) => match Condition::parse(c) {
                        Some(c) => Some(c),
                        None => {
                            problems.push(format!("edge {from} → {}: unknown condition {c:?}", e.to));
                            continue;
                        }
                    },
                };
                if when.is_none() && i + 1 != list.len() {
                    problems.push(format!("edge {from} → {}: only the last edge may have no `when`", e.to));
                }
                out.push(Edge { to, when });
            }
            if list.last().is_some_and(|e| e.when.is_some()) {
                problems.push(format!("node {from}: the last edge must have no `when` (the default)"));
            }
            edges.insert(from.clone(), out);
        }
        for name in file.nodes.keys() {
            if !file.edges.contains_key(name) {
                problems.push(format!("node {name} has no outgoing edges"));
            }
        }
        // Every node must be reachable from the start.
        let mut seen = BTreeSet::new();
        let mut queue = VecDeque::from([file.start.clone(), file.on_error.clone()]);
        while let Some(n) = queue.pop_front() {
            if !seen.insert(n.clone()) {
                continue;
            }
            for e in edges.get(&n).into_iter().flatten() {
                if let Target::Node(t) = &e.to {
                    queue.push_back(t.clone());
                }
            }
        }
        for name in file.nodes.keys().filter(|n| !seen.contains(*n)) {
            problems.push(format!("node {name} is unreachable from {}", file.start));
        }
        if !problems.is_empty() {
            return Err(SpecError(problems));
        }
        let digest = sha256_hex(text.as_bytes());
        Ok(Self {
            version: format!("v{}-{}", file.version, &digest[..12]),
            start: file.start,
            max_steps: file.max_steps,
            on_error: file.on_error,
            nodes: file.nodes.into_iter().map(|(k, v)| (k, Node { kind: v.kind, config: v.config })).collect(),
            edges,
        })
    }

    /// Where a run goes after `node`.
    pub fn next(&self, node: &str, state: &RunState) -> Target {
        self.edges
            .get(node)
            .and_then(|list| list.iter().find(|e| e.when.is_none_or(|c| c.holds(state))))
            .map_or(Target::End, |e| e.to.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_spec_loads() {
        let g = Graph::builtin().unwrap();
        assert_eq!(g.start, "observe");
        assert_eq!(g.nodes.len(), 7);
        assert!(g.version.starts_with("v1-"));
    }

    #[test]
    fn a_broken_spec_names_every_problem() {
        let bad = r#"
version: 1
start: nowhere
max_steps: 0
on_error: record
nodes:
  record: {kind: record}
  orphan: {kind: verify}
  observe: {kind: observe}
edges:
  record:
    - {to: ghost}
    - {to: $end, when: moon_is_full}
  observe:
    - {to: record, when: acted}
"#;
        let err = Graph::load(bad).unwrap_err().0.join("\n");
        for expected in [
            "start node \"nowhere\"",
            "max_steps",
            "unknown node",
            "unknown condition \"moon_is_full\"",
            "node orphan has no outgoing edges",
            "node observe: the last edge must have no `when`",
            "node orphan is unreachable",
        ] {
            assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
        }
    }

    #[test]
    fn unknown_node_kinds_are_refused() {
        let bad = "version: 1\nstart: a\nmax_steps: 3\non_error: a\nnodes:\n  a: {kind: teleport}\nedges:\n  a: [{to: $end}]\n";
        assert!(Graph::load(bad).unwrap_err().to_string().contains("teleport"));
    }
}
