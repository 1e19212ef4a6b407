//! The plan: a DAG of steps, each a command to run on one logical node. This is the stable JSON contract
//! printed by `plan --json` and stored as `RUN_DIR/plan.json`.

use crate::error::PlanError;
use crate::policy::Policy;
use petgraph::graph::{DiGraph, NodeIndex};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// Version of the JSON layout below; bumped on any incompatible change.
pub const PLAN_FORMAT: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lifetime {
    /// Runs to completion; done when it exits 0.
    Task,
    /// Long-lived; done when started, stopped at teardown.
    Service,
}

/// How to tell from outside that a service is up (used by `resume` and `status`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Probe {
    Http { url: String },
    Tcp { host: String, port: u16 },
}

/// A container image a step runs in (Slurm + pyxis); other transports run the command on the host.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Container {
    pub image: String,
    /// `host_path:container_path` each.
    #[serde(default)]
    pub mounts: Vec<String>,
    /// Named containers persist on a node for the job: an install step and the worker that needs it
    /// share one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// What `resume` does with a finished task when it is needed again (something downstream runs). Set by
/// the step kind that creates the step; the engine only follows it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnResume {
    /// Its result stands (a benchmark point does not depend on the processes being the same ones).
    #[default]
    Stand,
    /// Its effect lives on a node and may be gone (a mount, an install): run again, it is idempotent.
    Recheck,
    /// A readiness gate: check again after a service it depends on restarts.
    Regate,
}

impl OnResume {
    fn is_stand(&self) -> bool {
        *self == OnResume::Stand
    }
}

/// A step launched as one MPI job across nodes (`srun --mpi=…`), as TensorRT-LLM workers are: one
/// process per GPU on every node of the worker. Transports without MPI run the step on its first node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mpi {
    /// Every node of the job, the step's own first.
    pub nodes: Vec<usize>,
    /// Tasks in all (one per GPU).
    pub tasks: u32,
    /// srun's `--mpi` plugin (`pmix`).
    pub plugin: String,
    #[serde(default)]
    pub oversubscribe: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_bind: Option<String>,
}

/// Something a step needs on its node before anything starts: a program on `PATH` or a file (an absolute
/// path), and how to get it. Checked where the executor can check it (`run` preflight).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requirement {
    pub what: String,
    /// Other paths that would do as well (the first found is used).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub or: Vec<String>,
    pub hint: String,
}

/// A file the step needs, written into the run directory before the step starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepFile {
    pub path: String,
    pub content: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub id: String,
    pub kind: String,
    /// Index into `Plan::nodes`.
    pub node: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    pub lifetime: Lifetime,
    pub depends_on: Vec<String>,
    /// argv; `None` for a step that only groups others.
    pub command: Option<Vec<String>>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    #[serde(default)]
    pub ports: Vec<u16>,
    pub policy: Policy,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe: Option<Probe>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<StepFile>,
    /// Where the service writes its pid (for programs that rewrite their environment and so lose the
    /// run tag): lets resume and down find a process the journal never recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<Container>,
    /// One line for humans: what this step is for.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub summary: String,
    #[serde(default, skip_serializing_if = "OnResume::is_stand")]
    pub on_resume: OnResume,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mpi: Option<Mpi>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requires: Vec<Requirement>,
    /// Digest of the secret values the step carries (see `secret`): in the fingerprint instead of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_digest: Option<String>,
}

impl Step {
    pub fn new(
        id: impl Into<String>,
        kind: impl Into<String>,
        node: usize,
        lifetime: Lifetime,
    ) -> Step {
        Step {
            id: id.into(),
            kind: kind.into(),
            node,
            role: None,
            lifetime,
            depends_on: Vec::new(),
            command: None,
            env: BTreeMap::new(),
            cwd: None,
            ports: Vec::new(),
            policy: Policy::default(),
            probe: None,
            files: Vec::new(),
            pid_file: None,
            container: None,
            summary: String::new(),
            on_resume: OnResume::Stand,
            mpi: None,
            requires: Vec::new(),
            secret_digest: None,
        }
    }

    pub fn is_service(&self) -> bool {
        self.lifetime == Lifetime::Service
    }

    /// Every node the step runs on: its MPI job's, else its own.
    pub fn nodes(&self) -> Vec<usize> {
        self.mpi
            .as_ref()
            .map_or_else(|| vec![self.node], |m| m.nodes.clone())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub format: u32,
    pub recipe: String,
    /// Node names, index = logical node.
    pub nodes: Vec<String>,
    /// Address each node is reached at (same order as `nodes`).
    pub addresses: Vec<String>,
    pub steps: Vec<Step>,
    /// Where clients reach the deployment, if it serves one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Recipe keys kept but not acted on.
    #[serde(default)]
    pub ignored: Vec<String>,
    /// Decisions worth telling the user (e.g. fewer routers placed than asked).
    #[serde(default)]
    pub notes: Vec<String>,
    /// Environment variables whose values are secret: shown and stored as `<redacted>`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secret_env: Vec<String>,
}

impl Plan {
    /// Marks `names` secret and records, per step, a digest of the secret values it carries (in its
    /// environment or anywhere in its command and files), so fingerprints change with them. Called on the
    /// compiled plan, whose values are real.
    pub fn mark_secret(&mut self, names: impl IntoIterator<Item = String>) {
        let mut names: Vec<String> = names.into_iter().collect();
        names.sort();
        names.dedup();
        self.secret_env = names;
        let pairs = self.secret_pairs();
        for step in &mut self.steps {
            let text = step_text(step);
            let carried: Vec<(&str, &str)> = pairs
                .iter()
                .filter(|(k, v)| {
                    step.env.get(k) == Some(v) || (!v.is_empty() && text.contains(v.as_str()))
                })
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            step.secret_digest = (!carried.is_empty()).then(|| crate::secret::digest(carried));
        }
    }

    /// `(name, value)` of every secret variable as the steps carry it (values already redacted skipped).
    fn secret_pairs(&self) -> Vec<(String, String)> {
        let mut pairs: Vec<(String, String)> = self
            .steps
            .iter()
            .flat_map(|s| s.env.iter())
            .filter(|(k, v)| self.secret_env.contains(k) && v.as_str() != crate::secret::REDACTED)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        pairs.sort();
        pairs.dedup();
        pairs
    }

    /// What replaces this plan's secret values in text it produces (logs, journal, errors).
    pub fn redactor(&self) -> crate::secret::Redactor {
        crate::secret::Redactor::new(self.secret_pairs().into_iter().map(|(_, v)| v))
    }

    /// The plan as it may be shown or stored: secret variables' values are `<redacted>`, and so is any
    /// occurrence of a secret value elsewhere (an argument, a file, a URL).
    pub fn redacted(&self) -> Plan {
        let r = self.redactor();
        let clean = |s: &mut String| {
            if let std::borrow::Cow::Owned(c) = r.clean(s) {
                *s = c;
            }
        };
        let mut out = self.clone();
        for step in &mut out.steps {
            for (k, v) in step.env.iter_mut() {
                if self.secret_env.contains(k) {
                    *v = crate::secret::REDACTED.to_string();
                } else {
                    clean(v);
                }
            }
            step.command.iter_mut().flatten().for_each(clean);
            step.files.iter_mut().for_each(|f| clean(&mut f.content));
            step.cwd.iter_mut().for_each(clean);
            clean(&mut step.summary);
            if let Some(Probe::Http { url }) = &mut step.probe {
                clean(url);
            }
            if let Some(c) = &mut step.container {
                c.mounts.iter_mut().for_each(clean);
            }
        }
        out.notes.iter_mut().for_each(clean);
        out.endpoint.iter_mut().for_each(clean);
        out
    }
}

/// Everything of a step a secret value could hide in besides its environment.
fn step_text(step: &Step) -> String {
    let mut text = String::new();
    for part in step.command.iter().flatten().chain(step.cwd.iter()) {
        text.push_str(part);
        text.push('\0');
    }
    for f in &step.files {
        text.push_str(&f.content);
        text.push('\0');
    }
    text
}

/// A validated plan with its graph: edges point from a dependency to its dependent.
#[derive(Debug, Clone)]
pub struct Dag {
    pub plan: Plan,
    pub graph: DiGraph<usize, ()>,
    pub index: HashMap<String, usize>,
    /// Step indices in a deterministic topological order.
    pub order: Vec<usize>,
}

impl Dag {
    /// Checks ids are unique, dependencies exist, nodes are in range and the graph has no cycle.
    pub fn new(plan: Plan) -> Result<Dag, PlanError> {
        let mut index = HashMap::with_capacity(plan.steps.len());
        let mut graph = DiGraph::with_capacity(plan.steps.len(), plan.steps.len() * 2);
        for (i, step) in plan.steps.iter().enumerate() {
            if index.insert(step.id.clone(), i).is_some() {
                return Err(PlanError::DuplicateStep(step.id.clone()));
            }
            if step.node >= plan.nodes.len() {
                return Err(PlanError::NodeOutOfRange {
                    step: step.id.clone(),
                    node: step.node,
                    nodes: plan.nodes.len(),
                });
            }
            graph.add_node(i);
        }
        for (i, step) in plan.steps.iter().enumerate() {
            for dep in &step.depends_on {
                let Some(&d) = index.get(dep) else {
                    return Err(PlanError::MissingDependency {
                        step: step.id.clone(),
                        dependency: dep.clone(),
                    });
                };
                graph.add_edge(NodeIndex::new(d), NodeIndex::new(i), ());
            }
        }
        let order = topo_order(&plan, &graph)?;
        Ok(Dag {
            plan,
            graph,
            index,
            order,
        })
    }

    pub fn step(&self, i: usize) -> &Step {
        &self.plan.steps[i]
    }

    pub fn dependents(&self, i: usize) -> impl Iterator<Item = usize> + '_ {
        self.graph
            .neighbors_directed(NodeIndex::new(i), petgraph::Direction::Outgoing)
            .map(|n| n.index())
    }

    pub fn dependencies(&self, i: usize) -> impl Iterator<Item = usize> + '_ {
        self.graph
            .neighbors_directed(NodeIndex::new(i), petgraph::Direction::Incoming)
            .map(|n| n.index())
    }

    /// Dependencies of `i` in the order the step declares them.
    pub fn dependencies_sorted(&self, i: usize) -> Vec<usize> {
        self.plan.steps[i]
            .depends_on
            .iter()
            .filter_map(|d| self.index.get(d).copied())
            .collect()
    }

    /// Every step that (transitively) depends on `i`, `i` excluded.
    pub fn downstream(&self, i: usize) -> Vec<usize> {
        let mut seen = vec![false; self.plan.steps.len()];
        let mut todo: Vec<usize> = self.dependents(i).collect();
        let mut out = Vec::new();
        while let Some(j) = todo.pop() {
            if !seen[j] {
                seen[j] = true;
                out.push(j);
                todo.extend(self.dependents(j));
            }
        }
        out.sort_unstable();
        out
    }
}

/// Kahn's algorithm, ties broken by declaration order so output is stable.
fn topo_order(plan: &Plan, graph: &DiGraph<usize, ()>) -> Result<Vec<usize>, PlanError> {
    let n = plan.steps.len();
    let mut indegree: Vec<usize> = (0..n)
        .map(|i| {
            graph
                .neighbors_directed(NodeIndex::new(i), petgraph::Direction::Incoming)
                .count()
        })
        .collect();
    let mut ready: std::collections::BTreeSet<usize> =
        (0..n).filter(|&i| indegree[i] == 0).collect();
    let mut order = Vec::with_capacity(n);
    while let Some(i) = ready.pop_first() {
        order.push(i);
        for j in graph.neighbors_directed(NodeIndex::new(i), petgraph::Direction::Outgoing) {
            let j = j.index();
            indegree[j] -= 1;
            if indegree[j] == 0 {
                ready.insert(j);
            }
        }
    }
    if order.len() < n {
        // Name one cycle so the user can break it.
        let cycle = petgraph::algo::kosaraju_scc(graph)
            .into_iter()
            .find(|c| c.len() > 1)
            .map(|c| {
                let mut ids: Vec<String> =
                    c.iter().map(|x| plan.steps[x.index()].id.clone()).collect();
                ids.sort();
                ids
            })
            .unwrap_or_default();
        return Err(PlanError::Cycle(cycle));
    }
    Ok(order)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(steps: Vec<Step>) -> Plan {
        Plan {
            format: PLAN_FORMAT,
            recipe: "t".into(),
            nodes: vec!["node0".into()],
            addresses: vec!["node0".into()],
            steps,
            endpoint: None,
            ignored: vec![],
            notes: vec![],
            secret_env: vec![],
        }
    }

    fn step(id: &str, deps: &[&str]) -> Step {
        let mut s = Step::new(id, "shell", 0, Lifetime::Task);
        s.depends_on = deps.iter().map(|d| d.to_string()).collect();
        s
    }

    #[test]
    fn cycle_is_named() {
        let e = Dag::new(plan(vec![
            step("a", &["b"]),
            step("b", &["a"]),
            step("c", &[]),
        ]))
        .unwrap_err();
        assert_eq!(e, PlanError::Cycle(vec!["a".into(), "b".into()]));
    }

    #[test]
    fn order_and_downstream() {
        let d = Dag::new(plan(vec![
            step("c", &["a", "b"]),
            step("a", &[]),
            step("b", &["a"]),
        ]))
        .unwrap();
        let ids: Vec<&str> = d.order.iter().map(|&i| d.step(i).id.as_str()).collect();
        assert_eq!(ids, ["a", "b", "c"]);
        assert_eq!(d.downstream(1), vec![0, 2]);
    }

    #[test]
    fn missing_dependency() {
        let e = Dag::new(plan(vec![step("a", &["zz"])])).unwrap_err();
        assert!(matches!(e, PlanError::MissingDependency { .. }));
    }
}
