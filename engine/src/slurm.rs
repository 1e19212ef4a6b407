//! The Slurm transport: inside an allocation, one node agent per node (and per named container on it)
//! that starts, signals and probes that node's processes (see `agent`). The host agents of all nodes
//! are one job step (`srun --nodes=N --ntasks-per-node=1`), started on first use, and so are the
//! agents in each named container on the nodes the plan runs it on (pyxis creates the container on
//! all of them at once); an agent lost later, or in a heterogeneous job, takes a step of its own. Without a run directory for the
//! agents' messages, or with `SRT_GRAPH_NODE_AGENT=0`, and for MPI steps and unnamed containers, each
//! process is its own job step, its output written by Slurm straight into the step's log (`--output`).
//! Options are spelled `--key=value` (Slurm 25.11 rejects some space-separated forms). Steps naming a
//! container run under pyxis; without one they run on the node's host system.

use crate::agent::{Agent, AgentPool, Member};
use crate::plan::Container;
use crate::process::{
    copy_output, drain, follow_last_line, parse_pid_line, ChildProcess, PID_MARK,
};
use crate::remote::{self, run_captured, NodeShell};
use crate::transport::{
    open_log, GroupSignaller, Process, SpawnRequest, Transport, TransportError,
};
use async_trait::async_trait;
use std::collections::HashMap;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const OP_LIMIT: Duration = Duration::from_secs(30);
/// Removing a container deletes its unpacked image: tens of GB for a real serving image.
const REMOVE_LIMIT: Duration = Duration::from_secs(600);
/// A step that has not started its command after this long is reported as failed to start.
const START_LIMIT: Duration = Duration::from_secs(300);

/// One node of the allocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlurmNode {
    pub name: String,
    /// Component of a heterogeneous job (`--het-group`), if the job is one.
    pub het_group: Option<usize>,
}

#[derive(Debug, Clone)]
pub struct SlurmOptions {
    pub job_id: String,
    /// Node of each logical node.
    pub nodes: Vec<SlurmNode>,
    /// `srt-graph` on the nodes (answers node operations).
    pub node_tool: String,
    /// Extra `--key=value` (or bare `--key`) options for every srun (`srun_options`).
    pub srun_options: Vec<String>,
    /// Where node agents write their launchers' messages (`logs/` of the run); `None`: no agents.
    pub agent_logs: Option<std::path::PathBuf>,
}

/// A node agent serves one node's host system (`None`) or one container on it.
type AgentKey = (usize, Option<Container>);

pub struct SlurmTransport {
    opts: SlurmOptions,
    pyxis: bool,
    agents: Arc<AgentPool<AgentKey>>,
    /// The agent groups started by one srun each, or tried: the host systems (`None`) and each
    /// named container, with whether the start has settled (every member up, or gone).
    groups_started: Arc<Mutex<HashMap<Option<Container>, Arc<AtomicBool>>>>,
    /// The nodes each named container of the plan runs on (from `will_run`).
    container_nodes: std::sync::OnceLock<HashMap<Container, Vec<usize>>>,
    /// Node loss, watched from the first spawn on.
    watch: std::sync::OnceLock<crate::slurm_watch::Watch>,
}

/// The allocation this process runs in, from Slurm's environment: job id and nodes (a heterogeneous job
/// lists its components in order).
pub fn allocation_from_env() -> Result<(String, Vec<SlurmNode>), String> {
    let job = std::env::var("SLURM_JOB_ID")
        .map_err(|_| "not inside a Slurm allocation (SLURM_JOB_ID is not set)".to_string())?;
    let het_size: Option<usize> = std::env::var("SLURM_HET_SIZE")
        .ok()
        .and_then(|s| s.parse().ok());
    let mut nodes = Vec::new();
    match het_size {
        Some(n) if n > 1 => {
            for g in 0..n {
                let var = format!("SLURM_JOB_NODELIST_HET_GROUP_{g}");
                let list = std::env::var(&var).map_err(|_| format!("{var} is not set"))?;
                for name in expand_nodelist(&list)? {
                    nodes.push(SlurmNode {
                        name,
                        het_group: Some(g),
                    });
                }
            }
        }
        _ => {
            let list = std::env::var("SLURM_JOB_NODELIST")
                .or_else(|_| std::env::var("SLURM_NODELIST"))
                .map_err(|_| "SLURM_JOB_NODELIST is not set".to_string())?;
            for name in expand_nodelist(&list)? {
                nodes.push(SlurmNode {
                    name,
                    het_group: None,
                });
            }
        }
    }
    Ok((job, nodes))
}

/// Slurm's compressed host list (`gb300-[001-004,010],login1`) as node names, in order.
pub fn expand_nodelist(list: &str) -> Result<Vec<String>, String> {
    // The crate reads a malformed range leniently (`x[3-` → `x`); a wrong node would be worse than an
    // error, so brackets are checked first.
    check_ranges(list).map_err(|why| format!("cannot read the node list `{list}`: {why}"))?;
    hostlist::expand(list.trim())
        .map_err(|e| format!("cannot read the node list `{list}`: {e}"))
        .and_then(|v| {
            let v: Vec<String> = v.into_iter().filter(|n| !n.trim().is_empty()).collect();
            if v.is_empty() {
                Err(format!("the node list `{list}` names no node"))
            } else {
                Ok(v)
            }
        })
}

/// Every `[...]` holds numbers and ranges (`1-4,7`), brackets are balanced and not nested.
fn check_ranges(list: &str) -> Result<(), String> {
    let mut rest = list;
    while let Some(open) = rest.find(['[', ']']) {
        if rest.as_bytes()[open] == b']' {
            return Err("`]` without `[`".into());
        }
        let after = &rest[open + 1..];
        let close = after.find(']').ok_or("`[` without `]`")?;
        let inside = &after[..close];
        let ok = !inside.is_empty()
            && inside.split(',').all(|part| {
                let mut ends = part.splitn(2, '-');
                ends.all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            });
        if !ok {
            return Err(format!("`[{inside}]` is not a list of numbers and ranges"));
        }
        rest = &after[close + 1..];
    }
    Ok(())
}

fn classify(node: &str, text: &str) -> TransportError {
    let lower = text.to_ascii_lowercase();
    let fatal = [
        "invalid job id",
        "job has already finished",
        "invalid node name",
        "unrecognized option",
        "invalid option",
        "not in the job",
        "required node not available",
    ];
    let said = text.trim().replace('\n', "\n    ");
    if fatal.iter().any(|f| lower.contains(f)) {
        TransportError::Refused {
            node: node.to_string(),
            detail: format!("srun refused the step:\n    {said}"),
        }
    } else {
        TransportError::Unreachable {
            node: node.to_string(),
            detail: format!("srun could not start the step:\n    {said}"),
        }
    }
}

/// pyxis adds `--container-image` to srun's own help.
pub fn pyxis_available() -> bool {
    run_captured(
        std::process::Command::new("srun").arg("--help"),
        Duration::from_secs(10),
    )
    .is_ok_and(|help| help.contains("--container-image"))
}

/// The prefix pyxis gives the enroot containers of `--container-name`.
pub const PYXIS_PREFIX: &str = "pyxis_";

/// The pyxis options of a step's container.
pub fn container_args(c: &Container) -> Vec<String> {
    let mut out = vec![
        format!("--container-image={}", c.image),
        "--no-container-entrypoint".to_string(),
        "--no-container-mount-home".to_string(),
    ];
    if !c.mounts.is_empty() {
        out.push(format!("--container-mounts={}", c.mounts.join(",")));
    }
    if let Some(name) = &c.name {
        out.push(format!("--container-name={name}"));
    }
    out
}

impl SlurmTransport {
    pub fn new(mut opts: SlurmOptions) -> SlurmTransport {
        if std::env::var("SRT_GRAPH_NODE_AGENT").is_ok_and(|v| v == "0") {
            opts.agent_logs = None;
        }
        SlurmTransport {
            opts,
            pyxis: pyxis_available(),
            agents: Arc::default(),
            groups_started: Arc::default(),
            container_nodes: std::sync::OnceLock::new(),
            watch: std::sync::OnceLock::new(),
        }
    }

    /// One command on one node (its agent, else its own srun), its output captured, given `limit`.
    /// A lost node is asked only while its agent still answers (a drained node does; a dead NIC
    /// would hold the call for all of `limit`, minutes for a container removal).
    fn run_on_within(
        &self,
        node: usize,
        argv: &[String],
        limit: Duration,
    ) -> Result<String, String> {
        let lost = self.watch.get().is_some_and(|w| w.is_lost(node));
        if lost && !self.agent_answers(node) {
            let name = self
                .node(node)
                .map_or_else(|_| node.to_string(), |n| n.name.clone());
            return Err(format!(
                "not asked: node {name} was lost during the run and does not answer"
            ));
        }
        if let Some(agent) = self.host_agent(node)? {
            return agent.run(argv, limit);
        }
        let limit = if lost { limit.min(OP_LIMIT) } else { limit };
        let n = self.node(node).map_err(|e| e.to_string())?;
        let mut cmd = std::process::Command::new("srun");
        cmd.arg("--quiet").args(self.srun_args(n)).args(argv);
        run_captured(&mut cmd, limit)
    }

    /// Whether `node`'s host agent answers a heartbeat within a second (true without agents: the
    /// srun of a lost node is then held to `OP_LIMIT`).
    fn agent_answers(&self, node: usize) -> bool {
        let Some(key) = self.agent_key(node, None) else {
            return true;
        };
        self.agents.running(&key).is_some_and(|a| {
            a.ping()
                .is_ok_and(|rx| matches!(rx.recv_timeout(Duration::from_secs(1)), Ok(Ok(_))))
        })
    }

    /// How long a signal or probe waits for a node's agent: briefly once the node is lost (it may
    /// never answer; teardown must not hang on it).
    fn answer_limit(&self, node: usize) -> Duration {
        if self.watch.get().is_some_and(|w| w.is_lost(node)) {
            Duration::from_millis(500)
        } else {
            Duration::from_secs(10)
        }
    }

    /// The agent of `node`'s host system, started if need be (blocking); `None` without agents.
    fn host_agent(&self, node: usize) -> Result<Option<Arc<Agent>>, String> {
        let Some(key) = self.agent_key(node, None) else {
            return Ok(None);
        };
        // Every signal and probe comes here: the launcher is built only when there is no agent yet.
        if let Some(a) = self.agents.running(&key) {
            return Ok(Some(a));
        }
        if let Some(a) = self.group_agent(None)(&key) {
            return Ok(Some(a));
        }
        let start = self.agent_launcher(&key).map_err(|e| e.to_string())?;
        self.agents.get(&key, start).map(Some)
    }

    /// What finds a key's agent in its group (blocking): the group's agents are started at once, the
    /// first time any of them is needed: the host agent of every node (`container: None`), or the
    /// agent in `container` on every node the plan runs it on. One `srun --nodes=N
    /// --ntasks-per-node=1` job step (one process here, where one per node cost a launch and a helper
    /// each; pyxis creates the container on all N nodes at once), and each agent serves as soon as it
    /// is up (one node's work does not wait for another's image unpack). `None`: not in a group, or
    /// the group's start left it out (its node failed); an agent lost later, or left out, is started
    /// by its own srun, which names what failed. A heterogeneous job's components take one srun per
    /// node.
    fn group_agent(
        &self,
        container: Option<&Container>,
    ) -> impl FnOnce(&AgentKey) -> Option<Arc<Agent>> + Send + 'static {
        let group = container.cloned();
        let starts = self.groups_started.clone();
        let pool = self.agents.clone();
        // The logical nodes of the group, and the distinct Slurm nodes they are on.
        let ks: Vec<usize> = match container {
            None => (0..self.opts.nodes.len()).collect(),
            Some(c) => self
                .container_nodes
                .get()
                .and_then(|m| m.get(c))
                .cloned()
                .unwrap_or_default(),
        };
        let nodes: Vec<(usize, SlurmNode)> = ks
            .iter()
            .filter_map(|&k| Some((k, self.opts.nodes.get(k)?.clone())))
            .collect();
        let mut names: Vec<String> = Vec::new();
        for (_, n) in &nodes {
            if !names.contains(&n.name) {
                names.push(n.name.clone());
            }
        }
        let tool = match container {
            None => Some(self.opts.node_tool.clone()),
            Some(c) => self.tool_in(c),
        };
        let mut cmd = std::process::Command::new("srun");
        cmd.args([
            format!("--jobid={}", self.opts.job_id),
            "--overlap".to_string(),
            format!("--nodes={}", names.len()),
            format!("--ntasks={}", names.len()),
            "--ntasks-per-node=1".to_string(),
            format!("--nodelist={}", names.join(",")),
            "--label".to_string(),
            "--input=all".to_string(),
        ]);
        cmd.args(&self.opts.srun_options);
        let suffix = match container {
            None => String::new(),
            Some(c) => {
                cmd.args(container_args(c));
                format!(" (container {})", c.name.as_deref().unwrap_or(""))
            }
        };
        let log_name = match container.and_then(|c| c.name.as_deref()) {
            None => "agent-nodes.log".to_string(),
            Some(name) => format!("agent-nodes-{name}.log"),
        };
        let dir = self.opts.agent_logs.clone();
        let several = names.len() > 1 && nodes.iter().all(|(_, n)| n.het_group.is_none());
        move |key: &AgentKey| {
            let (Some(dir), Some(tool)) = (dir.filter(|_| several), tool) else {
                return None;
            };
            let settled = {
                let mut starts = starts.lock().ok()?;
                match starts.get(&group) {
                    Some(settled) => settled.clone(),
                    None => {
                        let settled = Arc::new(AtomicBool::new(false));
                        starts.insert(group.clone(), settled.clone());
                        cmd.args([tool, "node-agent".to_string()]);
                        let members: Vec<Member> = names
                            .iter()
                            .map(|n| Member {
                                label: format!("{n}{suffix}"),
                                node: Some(n.clone()),
                            })
                            .collect();
                        let (pool, done) = (pool.clone(), settled.clone());
                        let start = move || {
                            let _ = std::fs::create_dir_all(&dir);
                            let mut put = |i: usize, agent: &Arc<Agent>| {
                                for (k, n) in &nodes {
                                    if names.get(i) == Some(&n.name) {
                                        pool.put((*k, group.clone()), agent.clone());
                                    }
                                }
                            };
                            if let Err(e) = Agent::start_many_with(
                                &members,
                                cmd,
                                &dir.join(log_name),
                                crate::agent::START_LIMIT,
                                &mut put,
                            ) {
                                tracing::warn!("not every agent of the group started: {e}");
                            }
                            done.store(true, Ordering::SeqCst);
                        };
                        if std::thread::Builder::new()
                            .name("agents-start".into())
                            .spawn(start)
                            .is_err()
                        {
                            settled.store(true, Ordering::SeqCst);
                        }
                        settled
                    }
                }
            };
            loop {
                if let Some(a) = pool.running(key) {
                    return Some(a);
                }
                if settled.load(Ordering::SeqCst) {
                    return pool.running(key);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// Which agent runs a process on `node` in `container`: `None` when it takes its own srun (no
    /// agents, an unnamed container, or one without the node tool mounted).
    fn agent_key(&self, node: usize, container: Option<&Container>) -> Option<AgentKey> {
        self.opts.agent_logs.as_ref()?;
        match container {
            None => Some((node, None)),
            Some(c) if c.name.is_some() && self.tool_in(c).is_some() => {
                Some((node, Some(c.clone())))
            }
            Some(_) => None,
        }
    }

    /// The node tool as a container sees it: through the mount of the directory it is in.
    fn tool_in(&self, c: &Container) -> Option<String> {
        let tool = std::path::Path::new(&self.opts.node_tool);
        let (dir, file) = (tool.parent()?.to_str()?, tool.file_name()?.to_str()?);
        c.mounts.iter().find_map(|m| {
            let mut parts = m.split(':');
            let (host, inside) = (parts.next()?, parts.next()?);
            (host.trim_end_matches('/') == dir.trim_end_matches('/'))
                .then(|| format!("{}/{file}", inside.trim_end_matches('/')))
        })
    }

    /// What starts the agent for `key` when it is first needed: its srun, its label, its messages' log.
    fn agent_launcher(
        &self,
        key: &AgentKey,
    ) -> Result<impl FnOnce() -> Result<Agent, String> + Send + 'static, TransportError> {
        let (node, container) = key;
        let n = self.node(*node)?.clone();
        let mut cmd = std::process::Command::new("srun");
        cmd.args(self.srun_args(&n));
        let (label, tool) = match container {
            None => (n.name.clone(), self.opts.node_tool.clone()),
            Some(c) => {
                cmd.args(container_args(c));
                let tool = self.tool_in(c).unwrap_or_default();
                (
                    format!("{} (container {})", n.name, c.name.as_deref().unwrap_or("")),
                    tool,
                )
            }
        };
        cmd.args([tool, "node-agent".to_string()]);
        let dir = self.opts.agent_logs.clone().unwrap_or_default();
        let log = dir.join(format!(
            "agent-{}{}.log",
            n.name,
            container
                .as_ref()
                .and_then(|c| c.name.as_deref())
                .map(|c| format!("-{c}"))
                .unwrap_or_default()
        ));
        Ok(move || {
            let _ = std::fs::create_dir_all(&dir);
            Agent::start(&label, cmd, &log, crate::agent::START_LIMIT)
        })
    }

    /// The agent for a process, started off the async runtime if need be.
    async fn agent_for(&self, key: AgentKey) -> Result<Arc<Agent>, TransportError> {
        if let Some(a) = self.agents.running(&key) {
            return Ok(a);
        }
        let name = self.node(key.0)?.name.clone();
        let start = self.agent_launcher(&key)?;
        let in_group = self.group_agent(key.1.as_ref());
        let pool = self.agents.clone();
        tokio::task::spawn_blocking(move || match in_group(&key) {
            Some(a) => Ok(a),
            None => pool.get(&key, start),
        })
        .await
        .map_err(|e| TransportError::Unreachable {
            node: name.clone(),
            detail: e.to_string(),
        })?
        .map_err(|e| classify(&name, &e))
    }

    /// Closes every agent (those serving containers first, when `containers_only`) and waits, bounded,
    /// for them to be gone: a container cannot be removed while its agent runs in it.
    fn close_agents(&self, containers_only: bool, limit: Duration) {
        let agents: Vec<Arc<Agent>> = self
            .agents
            .all()
            .into_iter()
            .filter(|((_, c), _)| !containers_only || c.is_some())
            .map(|(_, a)| a)
            .collect();
        for a in &agents {
            a.close();
        }
        // A lost node's agent may never see its input close: its launcher is ended after a moment
        // (the run is over; Slurm ends what the step still holds on the other nodes).
        let node_lost = self.watch.get().is_some_and(|w| !w.losses().is_empty());
        let limit = if node_lost {
            limit.min(Duration::from_secs(1))
        } else {
            limit
        };
        let deadline = Instant::now() + limit;
        for a in &agents {
            if a.join_reader(deadline.saturating_duration_since(Instant::now())) {
                continue;
            }
            if node_lost {
                a.kill();
            } else {
                tracing::warn!(agent = %a.label, "the node agent is still up (its processes are)");
            }
        }
    }

    pub fn pyxis(&self) -> bool {
        self.pyxis
    }

    fn node(&self, k: usize) -> Result<&SlurmNode, TransportError> {
        self.opts
            .nodes
            .get(k)
            .ok_or_else(|| TransportError::Refused {
                node: format!("node {k}"),
                detail: format!("the allocation has {} node(s)", self.opts.nodes.len()),
            })
    }

    /// `srun` options that place one task on `node` of this job.
    pub fn srun_args(&self, node: &SlurmNode) -> Vec<String> {
        let mut a = vec![
            format!("--jobid={}", self.opts.job_id),
            "--overlap".to_string(),
            "--nodes=1".to_string(),
            "--ntasks=1".to_string(),
            format!("--nodelist={}", node.name),
        ];
        self.finish_srun_args(&mut a, node);
        a
    }

    /// One MPI job over `mpi.nodes` with one task per GPU (TensorRT-LLM's launch).
    pub fn mpi_srun_args(&self, mpi: &crate::plan::Mpi) -> Result<Vec<String>, TransportError> {
        let nodes = mpi
            .nodes
            .iter()
            .map(|&k| self.node(k).cloned())
            .collect::<Result<Vec<_>, _>>()?;
        let names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
        let mut a = vec![
            format!("--jobid={}", self.opts.job_id),
            "--overlap".to_string(),
            format!("--nodes={}", nodes.len()),
            format!("--ntasks={}", mpi.tasks),
            format!("--nodelist={}", names.join(",")),
            format!("--mpi={}", mpi.plugin),
        ];
        if mpi.oversubscribe {
            a.push("--oversubscribe".into());
        }
        if let Some(b) = &mpi.cpu_bind {
            a.push(format!("--cpu-bind={b}"));
        }
        if let Some(first) = nodes.first() {
            self.finish_srun_args(&mut a, first);
        }
        Ok(a)
    }

    fn finish_srun_args(&self, a: &mut Vec<String>, node: &SlurmNode) {
        if let Some(g) = node.het_group {
            a.push(format!("--het-group={g}"));
        }
        a.extend(self.opts.srun_options.iter().cloned());
    }

    /// Addresses of the nodes, looked up once per distinct node.
    pub fn addresses(&self, source: &AddressSource) -> Result<Vec<String>, String> {
        // `(logical node, node)`, one per distinct node name.
        let mut distinct: Vec<(usize, &SlurmNode)> = Vec::new();
        for (k, n) in self.opts.nodes.iter().enumerate() {
            if !distinct.iter().any(|(_, x)| x.name == n.name) {
                distinct.push((k, n));
            }
        }
        let cache: HashMap<String, String> = match source {
            // One `scontrol` for every node: one process, not one per node (64 at 64 nodes).
            AddressSource::NodeAddr => {
                let names: Vec<&str> = distinct.iter().map(|(_, n)| n.name.as_str()).collect();
                node_addrs(&names)?
            }
            AddressSource::Map(map) => distinct
                .iter()
                .map(|(_, n)| {
                    let addr = map.get(&n.name).cloned().ok_or_else(|| {
                        format!(
                            "no address given for node `{}` (--node-address {}=ADDR)",
                            n.name, n.name
                        )
                    })?;
                    Ok((n.name.clone(), addr))
                })
                .collect::<Result<_, String>>()?,
            AddressSource::Interface(iface) => std::thread::scope(|s| {
                let handles: Vec<_> = distinct
                    .iter()
                    .map(|&(k, n)| {
                        s.spawn(move || {
                            self.interface_address(k, iface)
                                .map(|a| (n.name.clone(), a))
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| {
                        h.join()
                            .unwrap_or_else(|_| Err("address lookup failed".into()))
                    })
                    .collect::<Result<_, String>>()
            })?,
        };
        Ok(self
            .opts
            .nodes
            .iter()
            .map(|n| {
                cache
                    .get(&n.name)
                    .cloned()
                    .unwrap_or_else(|| n.name.clone())
            })
            .collect())
    }

    /// The address of `iface` on logical node `k` (srt-slurm's `network_interface`), asked of the node.
    fn interface_address(&self, k: usize, iface: &str) -> Result<String, String> {
        let argv = [
            self.opts.node_tool.clone(),
            "node-op".into(),
            "address".into(),
            iface.to_string(),
        ];
        let name = self.node(k).map_err(|e| e.to_string())?.name.clone();
        self.run_on_within(k, &argv, OP_LIMIT)
            .map(|s| s.trim().to_string())
            .map_err(|e| format!("address of `{name}` on interface {iface}: {e}"))
    }
}

/// Slurm's `NodeAddr` of each node, from one `scontrol show node A,B,…`.
fn node_addrs(names: &[&str]) -> Result<HashMap<String, String>, String> {
    let list = names.join(",");
    let out = run_captured(
        std::process::Command::new("scontrol").args(["show", "node", &list]),
        OP_LIMIT,
    )
    .map_err(|e| format!("`scontrol show node {list}`: {e}"))?;
    let found = parse_node_addrs(&out);
    match names.iter().find(|n| !found.contains_key(**n)) {
        Some(missing) => Err(format!(
            "`scontrol show node {list}` printed no NodeAddr for {missing}"
        )),
        None => Ok(found),
    }
}

/// `NodeName=… NodeAddr=…` pairs from `scontrol show node` (one record per node).
fn parse_node_addrs(text: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut name: Option<&str> = None;
    for field in text.split_whitespace() {
        if let Some(n) = field.strip_prefix("NodeName=") {
            name = Some(n);
        } else if let (Some(a), Some(n)) = (field.strip_prefix("NodeAddr="), name) {
            out.insert(n.to_string(), a.to_string());
        }
    }
    out
}

/// Where node addresses for URLs come from.
#[derive(Debug, Clone)]
pub enum AddressSource {
    /// Slurm's `NodeAddr` (`scontrol show node`).
    NodeAddr,
    /// The IPv4 address of this interface on the node (srt-slurm's `network_interface`), with its
    /// fallbacks: the first non-loopback address, then the node name.
    Interface(String),
    /// Given by the user, node name → address.
    Map(HashMap<String, String>),
}

impl NodeShell for SlurmTransport {
    fn run_on(&self, node: usize, argv: &[String]) -> Result<String, String> {
        self.run_on_within(node, argv, OP_LIMIT)
    }
    fn node_tool(&self) -> &str {
        &self.opts.node_tool
    }
}

impl GroupSignaller for SlurmTransport {
    fn signal_group(&self, node: usize, pgid: i32, signal: i32) -> std::io::Result<()> {
        if pgid <= 1 {
            return Ok(());
        }
        match self.host_agent(node).map_err(std::io::Error::other)? {
            Some(agent) => agent
                .signal(pgid, signal, self.answer_limit(node))
                .map_err(std::io::Error::other),
            None => remote::signal_group(self, node, pgid, signal),
        }
    }
    fn remove_containers(&self, plan: &crate::plan::Plan) -> Result<Vec<(String, String)>, String> {
        self.close_agents(true, Duration::from_secs(30));
        let mut named: Vec<(usize, &str)> = plan
            .steps
            .iter()
            .filter_map(|s| Some((s.node, s.container.as_ref()?.name.as_deref()?)))
            .collect();
        named.sort_unstable();
        named.dedup();
        // All nodes at once: each removal deletes an unpacked image, seconds to minutes of disk work.
        let outcomes: Vec<(String, String, Result<String, String>)> = std::thread::scope(|scope| {
            let running: Vec<_> = named
                .iter()
                .map(|&(node, name)| {
                    scope.spawn(move || {
                        // pyxis names its enroot containers `pyxis_<name>`.
                        let enroot_name = format!("{PYXIS_PREFIX}{name}");
                        let argv = [
                            "enroot".to_string(),
                            "remove".into(),
                            "-f".into(),
                            enroot_name.clone(),
                        ];
                        let node_name = self
                            .node(node)
                            .map_or_else(|_| node.to_string(), |n| n.name.clone());
                        let outcome = self.run_on_within(node, &argv, REMOVE_LIMIT);
                        (node_name, enroot_name, outcome)
                    })
                })
                .collect();
            running
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        (String::new(), String::new(), Err("panicked".to_string()))
                    })
                })
                .collect()
        });
        let mut removed = Vec::new();
        let mut errors = Vec::new();
        for (node_name, enroot_name, outcome) in outcomes {
            match outcome {
                Ok(_) => removed.push((node_name, enroot_name)),
                Err(e) if e.contains("No such") || e.contains("does not exist") => {}
                Err(e) => errors.push(format!("{node_name}: {enroot_name}: {e}")),
            }
        }
        if errors.is_empty() {
            Ok(removed)
        } else {
            Err(errors.join("; "))
        }
    }
    fn group_alive(&self, node: usize, pgid: i32) -> bool {
        if pgid <= 1 {
            return false;
        }
        match self.host_agent(node) {
            Ok(Some(agent)) => agent.alive(pgid, self.answer_limit(node)).unwrap_or(false),
            Ok(None) => remote::group_alive(self, node, pgid),
            Err(_) => false,
        }
    }
    fn machines(&self) -> Vec<usize> {
        let mut seen: Vec<&str> = Vec::new();
        let mut out = Vec::new();
        for (k, n) in self.opts.nodes.iter().enumerate() {
            if !seen.contains(&n.name.as_str()) {
                seen.push(&n.name);
                out.push(k);
            }
        }
        out
    }
    fn tagged_groups(&self, node: usize, run_dir: &str) -> Vec<(String, i32)> {
        remote::tagged_groups(self, node, run_dir)
    }
    fn pid_file_group(&self, node: usize, pid_file: &str) -> Option<i32> {
        remote::pid_file_group(self, node, pid_file)
    }
}

/// The wrapper's pid line in the log, written after `offset`.
fn pid_in_log(log: &std::path::Path, offset: u64) -> Option<(i32, i32)> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(log).ok()?;
    f.seek(SeekFrom::Start(offset)).ok()?;
    let mut text = String::new();
    f.take(1 << 20).read_to_string(&mut text).ok()?;
    text.lines()
        .filter(|l| l.contains(PID_MARK))
        .find_map(|l| parse_pid_line(&l[l.find(PID_MARK)?..]))
}

#[async_trait]
impl Transport for SlurmTransport {
    fn name(&self) -> &'static str {
        "slurm"
    }

    fn will_run(&self, plan: &crate::plan::Plan) {
        let mut nodes: HashMap<Container, Vec<usize>> = HashMap::new();
        for step in &plan.steps {
            if let Some(c) = step.container.as_ref().filter(|c| c.name.is_some()) {
                let on = nodes.entry(c.clone()).or_default();
                if !on.contains(&step.node) {
                    on.push(step.node);
                }
            }
        }
        let _ = self.container_nodes.set(nodes);
    }

    fn port_holder(&self, node: usize, addr: &str, port: u16) -> Option<String> {
        remote::port_holder(self, node, addr, port)
    }

    fn lost_nodes(&self) -> Vec<crate::transport::NodeLoss> {
        self.watch
            .get()
            .map(crate::slurm_watch::Watch::losses)
            .unwrap_or_default()
    }

    async fn spawn(&self, req: &SpawnRequest) -> Result<Box<dyn Process>, TransportError> {
        if req.argv.is_empty() {
            return Err(TransportError::EmptyCommand);
        }
        self.watch.get_or_init(|| {
            let pool = self.agents.clone();
            crate::slurm_watch::Watch::start(
                self.opts.nodes.iter().map(|n| n.name.clone()).collect(),
                Box::new(move || {
                    pool.all()
                        .into_iter()
                        .filter(|((_, c), _)| c.is_none())
                        .map(|((k, _), a)| (k, a))
                        .collect()
                }),
            )
        });
        let node = self.node(req.node)?.clone();
        if req.container.is_some() && !self.pyxis {
            return Err(TransportError::Refused {
                node: node.name,
                detail: "the step runs in a container, but srun has no pyxis (`--container-image` is not in `srun --help`)".into(),
            });
        }
        if req.mpi.is_none() {
            if let Some(key) = self.agent_key(req.node, req.container.as_ref()) {
                let agent = self.agent_for(key).await?;
                return agent.spawn(req).await.map_err(|why| match agent.lost() {
                    Some(lost) => TransportError::Unreachable {
                        node: node.name.clone(),
                        detail: lost,
                    },
                    None => TransportError::Spawn {
                        program: req.argv[0].clone(),
                        source: std::io::Error::other(why),
                    },
                });
            }
        }
        let file = open_log(&req.log).await?;
        let offset = file.metadata().await.map_or(0, |m| m.len());
        let log_file = Arc::new(tokio::sync::Mutex::new(file));
        let srun_args = match &req.mpi {
            Some(mpi) => self.mpi_srun_args(mpi)?,
            None => self.srun_args(&node),
        };
        // Slurm writes the task's output to the log itself (it outlives the orchestrator), unless the
        // run has secrets: then it comes through here, where they are replaced before it is written.
        let slurm_writes_log = req.redact.is_empty();
        let mut cmd = tokio::process::Command::new("srun");
        cmd.args(srun_args);
        if slurm_writes_log {
            cmd.arg(format!("--output={}", req.log.display()))
                .arg("--open-mode=append");
        }
        if let Some(c) = &req.container {
            cmd.args(container_args(c));
        }
        // srun execs its argv directly (no shell); the environment travels with srun (--export=ALL).
        cmd.args(remote::wrapped(req.cwd.as_deref(), &req.argv))
            .envs(&req.env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(false);
        let mut child = cmd.spawn().map_err(|source| TransportError::Spawn {
            program: "srun".into(),
            source,
        })?;
        if !slurm_writes_log {
            drop(log_file);
            return remote::start_piped(child, &req.log, &node.name, classify, None, &req.redact)
                .await;
        }
        let last = Arc::new(Mutex::new(String::new()));
        // srun's own messages (not the task's output) go to the same log.
        let copiers = copy_output(&mut child, log_file, &last, None, &req.redact);
        let deadline = Instant::now() + START_LIMIT;
        loop {
            if let Some((pid, pgid)) = pid_in_log(&req.log, offset) {
                let follower = Some(follow_last_line(req.log.clone(), offset, last.clone()));
                return Ok(Box::new(ChildProcess {
                    child,
                    pid,
                    pgid,
                    last,
                    copiers,
                    follower,
                    slot: None,
                }));
            }
            if let Ok(Some(status)) = child.try_wait() {
                drain(copiers).await;
                let tail = crate::rundir::log_tail_of(&req.log, 6);
                return Err(classify(&node.name, &format!("{status}\n{tail}")));
            }
            if Instant::now() > deadline {
                let _ = child.start_kill();
                return Err(TransportError::Unreachable {
                    node: node.name,
                    detail: format!("the step did not start within {}s", START_LIMIT.as_secs()),
                });
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for SlurmTransport {
    fn drop(&mut self) {
        self.close_agents(false, Duration::from_secs(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_addresses_come_from_one_scontrol_record_per_node() {
        let text = "NodeName=node1 Arch=x86_64 CoresPerSocket=1\n   NodeAddr=127.0.1.1 NodeHostName=h\n\nNodeName=node2 Arch=x86_64\n   NodeAddr=10.0.0.2 NodeHostName=h\n";
        let got = parse_node_addrs(text);
        assert_eq!(got.get("node1").map(String::as_str), Some("127.0.1.1"));
        assert_eq!(got.get("node2").map(String::as_str), Some("10.0.0.2"));
        assert_eq!(got.len(), 2);
    }

    #[test]
    fn node_lists_expand_like_slurm() {
        assert_eq!(
            expand_nodelist("gb300-[001-004,010]").unwrap(),
            [
                "gb300-001",
                "gb300-002",
                "gb300-003",
                "gb300-004",
                "gb300-010"
            ]
        );
        assert_eq!(
            expand_nodelist("a[1-2],b7,c[09-10]").unwrap(),
            ["a1", "a2", "b7", "c09", "c10"]
        );
        assert_eq!(expand_nodelist("node1").unwrap(), ["node1"]);
        assert!(expand_nodelist("").is_err());
        assert!(expand_nodelist("x[3-").is_err());
        assert!(expand_nodelist("x[3-]").is_err());
        assert!(expand_nodelist("x]1").is_err());
        assert!(expand_nodelist("x[a-b]").is_err());
    }

    #[test]
    fn an_mpi_step_is_one_srun_over_its_nodes_with_a_task_per_gpu() {
        let node = |name: &str| SlurmNode {
            name: name.into(),
            het_group: None,
        };
        let t = SlurmTransport {
            opts: SlurmOptions {
                job_id: "7".into(),
                nodes: vec![node("n0"), node("n1"), node("n2")],
                node_tool: "srt-graph".into(),
                srun_options: vec![],
                agent_logs: None,
            },
            pyxis: false,
            agents: Arc::default(),
            groups_started: Arc::default(),
            container_nodes: std::sync::OnceLock::new(),
            watch: std::sync::OnceLock::new(),
        };
        let mpi = crate::plan::Mpi {
            nodes: vec![1, 2],
            tasks: 8,
            plugin: "pmix".into(),
            oversubscribe: true,
            cpu_bind: Some("verbose,none".into()),
        };
        assert_eq!(
            t.mpi_srun_args(&mpi).expect("args"),
            [
                "--jobid=7",
                "--overlap",
                "--nodes=2",
                "--ntasks=8",
                "--nodelist=n1,n2",
                "--mpi=pmix",
                "--oversubscribe",
                "--cpu-bind=verbose,none"
            ]
        );
        let beyond = crate::plan::Mpi {
            nodes: vec![3],
            ..mpi
        };
        assert!(t.mpi_srun_args(&beyond).is_err());
    }

    #[test]
    fn srun_options_use_key_equals_value() {
        let t = SlurmTransport {
            opts: SlurmOptions {
                job_id: "42".into(),
                nodes: vec![SlurmNode {
                    name: "gb300-001".into(),
                    het_group: Some(1),
                }],
                node_tool: "srt-graph".into(),
                srun_options: vec!["--cpu-bind=none".into(), "--mpi=pmix".into()],
                agent_logs: None,
            },
            pyxis: false,
            agents: Arc::default(),
            groups_started: Arc::default(),
            container_nodes: std::sync::OnceLock::new(),
            watch: std::sync::OnceLock::new(),
        };
        assert_eq!(
            t.srun_args(&t.opts.nodes[0]),
            [
                "--jobid=42",
                "--overlap",
                "--nodes=1",
                "--ntasks=1",
                "--nodelist=gb300-001",
                "--het-group=1",
                "--cpu-bind=none",
                "--mpi=pmix"
            ]
        );
        let c = Container {
            image: "/c/sglang.sqsh".into(),
            mounts: vec!["/models/ds:/model/".into(), "/src:/ext-sglang-src/".into()],
            name: Some("srt-graph-worker".into()),
        };
        assert_eq!(
            container_args(&c),
            [
                "--container-image=/c/sglang.sqsh",
                "--no-container-entrypoint",
                "--no-container-mount-home",
                "--container-mounts=/models/ds:/model/,/src:/ext-sglang-src/",
                "--container-name=srt-graph-worker"
            ]
        );
    }
}
