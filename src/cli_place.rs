//! Where a run's steps execute: the executor flags, what `run.json` remembers of them, and the transport,
//! node names and node addresses they give. `run`, `resume`, `status` and `down` all go through here.

use clap::{Args, ValueEnum};
use serde::{Deserialize, Serialize};
use srt_graph_engine::local::LocalTransport;
use srt_graph_engine::slurm::{self, AddressSource, SlurmNode, SlurmOptions, SlurmTransport};
use srt_graph_engine::ssh::{self, SshOptions, SshTransport};
use srt_graph_engine::transport::Transport;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Executor {
    #[default]
    Local,
    Ssh,
    Slurm,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AddressFrom {
    /// Slurm's NodeAddr (`scontrol show node`).
    Nodeaddr,
    /// The cluster config's `network_interface`, looked up on each node (srt-slurm's way).
    Interface,
}

#[derive(Args, Clone)]
pub struct PlaceArgs {
    /// Where steps run. Default: `slurm` inside an allocation (SLURM_JOB_ID set), else `local`.
    #[arg(long, value_enum)]
    pub executor: Option<Executor>,
    /// ssh: the hosts, in logical node order (node 0 first); names from your ssh config work.
    #[arg(long, value_delimiter = ',', value_name = "HOST,…")]
    pub hosts: Vec<String>,
    /// ssh: a file with one host per line (`#` comments; extra words after the host are ignored).
    #[arg(long, value_name = "FILE")]
    pub hostfile: Option<PathBuf>,
    /// ssh: use this ssh config file (`ssh -F`) instead of ~/.ssh/config.
    #[arg(long, value_name = "FILE", env = "SRT_GRAPH_SSH_CONFIG")]
    pub ssh_config: Option<PathBuf>,
    /// slurm: a node's address for URLs, `NODE=ADDR` (repeatable); wins over --address-from.
    #[arg(long = "node-address", value_name = "NODE=ADDR", value_parser = parse_node_address)]
    pub node_addresses: Vec<(String, String)>,
    /// slurm: where node addresses come from (default: `interface` if the cluster config names a
    /// `network_interface`, else `nodeaddr`).
    #[arg(long, value_enum)]
    pub address_from: Option<AddressFrom>,
    /// local: address of logical node 0; node k gets the next k addresses (default 127.0.1.1).
    #[arg(long, default_value = "127.0.1.1")]
    pub first_address: std::net::Ipv4Addr,
}

fn parse_node_address(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((n, a)) if !n.is_empty() && !a.is_empty() => Ok((n.into(), a.into())),
        _ => Err(format!("`{s}` is not NODE=ADDR")),
    }
}

/// What `run.json` keeps of the placement, so that `resume`, `status` and `down` reach the same nodes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Placement {
    #[serde(default)]
    pub executor: Executor,
    pub first_address: Option<std::net::Ipv4Addr>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_config: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_addresses: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address_from: Option<AddressFrom>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_interface: Option<String>,
    /// The Slurm job the run (or its last resume) ran in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slurm_job: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub srun_options: Vec<String>,
    /// Nodes (Slurm node names, ssh hosts) left out this time (`resume --exclude`: lost ones).
    #[serde(skip)]
    pub exclude: Vec<String>,
}

impl Placement {
    /// From the command line (and the cluster config / recipe for what they can say).
    pub fn from_args(
        args: &PlaceArgs,
        network_interface: Option<String>,
        config_hosts: &[String],
        srun_options: Vec<String>,
    ) -> Result<Placement, String> {
        let executor = args
            .executor
            .unwrap_or(if std::env::var_os("SLURM_JOB_ID").is_some() {
                Executor::Slurm
            } else {
                Executor::Local
            });
        let mut hosts = args.hosts.clone();
        if let Some(file) = &args.hostfile {
            let text = std::fs::read_to_string(file)
                .map_err(|e| format!("--hostfile {}: {e}", file.display()))?;
            hosts.extend(
                text.lines()
                    .map(|l| l.split('#').next().unwrap_or("").trim())
                    .filter_map(|l| l.split_whitespace().next())
                    .map(str::to_string),
            );
        }
        if hosts.is_empty() {
            hosts = config_hosts.to_vec();
        }
        if executor == Executor::Ssh && hosts.is_empty() {
            return Err(
                "the ssh executor needs hosts: --hosts h1,h2,…, --hostfile FILE, or `ssh_hosts:` in the cluster config"
                    .into(),
            );
        }
        if executor != Executor::Ssh && !hosts.is_empty() && !args.hosts.is_empty() {
            return Err("--hosts and --hostfile are for --executor ssh".into());
        }
        Ok(Placement {
            executor,
            first_address: Some(args.first_address),
            hosts,
            ssh_config: args.ssh_config.as_ref().map(|p| absolute(p)),
            node_addresses: args.node_addresses.iter().cloned().collect(),
            address_from: args.address_from,
            network_interface,
            slurm_job: None,
            srun_options,
            exclude: Vec::new(),
        })
    }
}

fn absolute(p: &Path) -> PathBuf {
    p.canonicalize().unwrap_or_else(|_| p.to_path_buf())
}

/// A transport with the names and addresses of the nodes it reaches.
pub struct Placed {
    pub transport: Arc<dyn Transport>,
    pub names: Vec<String>,
    pub addresses: Vec<String>,
    /// Services bind 0.0.0.0 when some address is a name, not an IP.
    pub bind_all: bool,
    /// Whether process groups recorded earlier can still be reached (false in a new Slurm allocation:
    /// the old job's processes ended with it, and its pids mean nothing on these nodes).
    pub recorded_reachable: bool,
    /// The Slurm job, if any.
    pub slurm_job: Option<String>,
    /// Steps naming a container cannot run here (Slurm without pyxis; elsewhere they run on the host).
    pub refuses_containers: bool,
}

/// Logical node k of the local executor listens on its own loopback address (Linux routes all of
/// 127/8), so every node keeps the real ports.
pub fn loopback_address(first: std::net::Ipv4Addr, k: usize) -> String {
    std::net::Ipv4Addr::from(u32::from(first).wrapping_add(k as u32)).to_string()
}

/// Where the run is now. `recorded_nodes`: the node names of a plan already run (for `down`/`status`
/// outside the allocation).
pub fn place(
    p: &Placement,
    total: usize,
    run_dir: &Path,
    recorded_nodes: Option<&[String]>,
) -> Result<Placed, String> {
    let node_tool = std::env::current_exe()
        .map_or_else(|_| "srt-graph".to_string(), |p| p.display().to_string());
    let left_out = || {
        if p.exclude.is_empty() {
            String::new()
        } else {
            format!(" once {} is left out", p.exclude.join(", "))
        }
    };
    match p.executor {
        Executor::Local if !p.exclude.is_empty() => Err(format!(
            "--exclude {}: the local executor has no nodes to leave out (it is for --executor slurm or ssh)",
            p.exclude.join(",")
        )),
        Executor::Local => {
            let first = p
                .first_address
                .unwrap_or(std::net::Ipv4Addr::new(127, 0, 1, 1));
            Ok(Placed {
                transport: Arc::new(LocalTransport),
                names: (0..total).map(|k| format!("node{k}")).collect(),
                addresses: (0..total).map(|k| loopback_address(first, k)).collect(),
                bind_all: false,
                recorded_reachable: true,
                slurm_job: None,
                refuses_containers: false,
            })
        }
        Executor::Ssh => {
            let hosts: Vec<String> = p
                .hosts
                .iter()
                .filter(|h| !p.exclude.contains(h))
                .cloned()
                .collect();
            if hosts.len() < total {
                return Err(format!(
                    "the recipe needs {total} node(s); {} host(s) were given{} ({})",
                    hosts.len(),
                    left_out(),
                    hosts.join(", ")
                ));
            }
            let hosts: Vec<String> = hosts[..total].to_vec();
            let mut addresses = Vec::with_capacity(total);
            for h in &hosts {
                addresses.push(
                    ssh::resolve_address(p.ssh_config.as_deref(), h).map_err(|e| e.to_string())?,
                );
            }
            let transport = SshTransport::connect(SshOptions {
                hosts: hosts.clone(),
                config: p.ssh_config.clone(),
                node_tool,
                control_dir: control_dir(run_dir),
                sessions_per_connection: 8,
            })
            .map_err(|e| format!("cannot connect: {e}"))?;
            Ok(Placed {
                bind_all: !all_ips(&addresses),
                // Its masters close when the last handle goes.
                transport: Arc::new(transport),
                names: hosts,
                addresses,
                // Left-out hosts move the logical nodes: the recorded groups are not where they were.
                recorded_reachable: p.exclude.is_empty(),
                slurm_job: None,
                refuses_containers: false,
            })
        }
        Executor::Slurm => {
            let (job, nodes) = match (slurm::allocation_from_env(), recorded_nodes, &p.slurm_job) {
                (Ok(a), _, _) => a,
                // Outside the allocation (down, status): the recorded job and nodes.
                (Err(_), Some(names), Some(job)) => (
                    job.clone(),
                    names
                        .iter()
                        .map(|n| SlurmNode {
                            name: n.clone(),
                            het_group: None,
                        })
                        .collect(),
                ),
                (Err(e), _, _) => {
                    return Err(format!(
                        "{e}; the slurm executor runs inside an allocation (`srt-graph submit`, or salloc/sbatch)"
                    ))
                }
            };
            let nodes: Vec<SlurmNode> = nodes
                .into_iter()
                .filter(|n| !p.exclude.contains(&n.name))
                .collect();
            if nodes.len() < total {
                return Err(format!(
                    "the recipe needs {total} node(s); the allocation has {}{} ({})",
                    nodes.len(),
                    left_out(),
                    nodes
                        .iter()
                        .map(|n| n.name.as_str())
                        .collect::<Vec<_>>()
                        .join(",")
                ));
            }
            let nodes: Vec<SlurmNode> = nodes[..total].to_vec();
            let names: Vec<String> = nodes.iter().map(|n| n.name.clone()).collect();
            let transport = SlurmTransport::new(SlurmOptions {
                job_id: job.clone(),
                nodes,
                node_tool,
                srun_options: p.srun_options.clone(),
                agent_logs: Some(run_dir.join("logs")),
            });
            let source = if !p.node_addresses.is_empty()
                && names.iter().all(|n| p.node_addresses.contains_key(n))
            {
                AddressSource::Map(p.node_addresses.clone().into_iter().collect())
            } else {
                match (p.address_from, &p.network_interface) {
                    (Some(AddressFrom::Interface), Some(i)) | (None, Some(i)) => {
                        AddressSource::Interface(i.clone())
                    }
                    (Some(AddressFrom::Interface), None) => return Err(
                        "--address-from interface needs `network_interface` in the cluster config"
                            .into(),
                    ),
                    _ => AddressSource::NodeAddr,
                }
            };
            let mut addresses = transport.addresses(&source)?;
            for (k, n) in names.iter().enumerate() {
                if let Some(a) = p.node_addresses.get(n) {
                    addresses[k] = a.clone();
                }
            }
            Ok(Placed {
                bind_all: !all_ips(&addresses),
                refuses_containers: !transport.pyxis(),
                transport: Arc::new(transport),
                names,
                addresses,
                recorded_reachable: p.exclude.is_empty()
                    && p.slurm_job.as_deref().is_none_or(|j| j == job),
                slurm_job: Some(job),
            })
        }
    }
}

fn all_ips(addresses: &[String]) -> bool {
    addresses
        .iter()
        .all(|a| a.parse::<std::net::IpAddr>().is_ok())
}

/// Control sockets live under /tmp (socket paths are limited to ~100 bytes), one directory per run.
fn control_dir(run_dir: &Path) -> PathBuf {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    run_dir.hash(&mut h);
    std::env::temp_dir().join(format!(
        "srt-graph-ssh-{:012x}",
        h.finish() & 0xffff_ffff_ffff
    ))
}

/// Fails before anything starts if a step needs containers the cluster cannot run.
pub fn check_containers(placed: &Placed, dag: &srt_graph_engine::Dag) -> Result<(), String> {
    let Some(step) = dag.plan.steps.iter().find(|s| s.container.is_some()) else {
        return Ok(());
    };
    if !placed.refuses_containers {
        return check_container_sources(dag);
    }
    let image = step.container.as_ref().map_or("", |c| c.image.as_str());
    Err(format!(
        "step `{}` runs in the container `{image}` (model.container), but this cluster's srun has no pyxis \
         (`--container-image` is not in `srun --help`)\n  help: install pyxis (enroot) on the cluster, or run \
         with --mock-workers to run workers on the host\nnothing was started",
        step.id
    ))
}

/// What a container needs from this machine, checked before anything starts: an image given as a path
/// (a squashfs) exists, and so does the host side of every mount. A registry name is pyxis's to fetch.
fn check_container_sources(dag: &srt_graph_engine::Dag) -> Result<(), String> {
    let nothing = "\nnothing was started";
    for step in &dag.plan.steps {
        let Some(c) = &step.container else { continue };
        let node = dag.plan.nodes.get(step.node).map_or("?", String::as_str);
        if c.image.starts_with('/') && !std::path::Path::new(&c.image).is_file() {
            return Err(format!(
                "step `{}` on {node} runs in the container image {}, which does not exist\n  help: build or copy the squashfs there, or point `model.container` (or its alias under `containers:` in srtslurm.yaml) at one that does{nothing}",
                step.id, c.image
            ));
        }
        for mount in &c.mounts {
            let source = mount.split(':').next().unwrap_or("");
            if source.starts_with('/') && !std::path::Path::new(source).exists() {
                return Err(format!(
                    "step `{}` on {node} mounts {source} into its container (`{mount}`), and {source} does not exist\n  help: create it, or fix the recipe's `container_mounts` / `extra_mount` (or the model path){nothing}",
                    step.id
                ));
            }
        }
    }
    Ok(())
}
