//! What the compiler's stages and the plug-ins (backends, frontends, benchmarks) share while one recipe
//! compiles: where it runs (`Target`), its nodes, and what earlier stages decided (`Ctx`).

use crate::kinds::start_worker;
use crate::recipe::{Recipe, RoleSpec};
use srt_graph_engine::Container;
use std::collections::BTreeMap;

/// Where and how the plan will run. `plan` uses the defaults; executors fill in real values.
/// Where the node tools (`srt-graph`, a static binary) appear inside worker containers.
pub const CONTAINER_TOOL_DIR: &str = "/srt-graph-bin";

#[derive(Debug, Clone)]
pub struct Target {
    /// Node names; missing ones are named `node<k>`.
    pub names: Vec<String>,
    /// Address of each node for URLs; missing ones default to the name.
    pub addresses: Vec<String>,
    /// Bind services to 0.0.0.0 (a real node) or to the node's own address (loopback simulation).
    pub bind_all: bool,
    pub run_dir: String,
    /// Program that provides `mock-worker`, `wait-healthy`, `bench`…
    pub srt_graph: String,
    /// The same inside worker containers: the static binary, mounted (`compile::CONTAINER_TOOL_DIR`).
    pub container_tool: String,
    /// Python that runs workers (and installs the SGLang source into).
    pub worker_python: String,
    /// Python that has `sglang_router` (and Dynamo's frontend).
    pub frontend_python: String,
    /// Replace the inference engine by its stand-in (see `StandIn`).
    pub mock_workers: bool,
    /// Only a short first benchmark point (`run --smoke`): the deployment is checked end to end in
    /// seconds, as a sweep over many recipes needs.
    pub smoke: bool,
    /// Container path of the recipe's configs (setup scripts).
    pub configs_dir: String,
    /// Where the SGLang source appears on a node; `{node}` is replaced by the node name.
    pub ext_src_dir: String,
    /// A Python virtualenv the run creates (or reuses) on node 0 and installs sglang-router into; workers'
    /// source installs go there too. `None` = the nodes' Python already has what it needs (containers).
    pub venv: Option<String>,
    /// The container worker-side steps run in (Slurm + pyxis), if any.
    pub container: Option<Container>,
    /// The container nginx runs in (`frontend.nginx_container`), if any.
    pub nginx_container: Option<Container>,
    /// The simulated clock runs this many times faster than the wall clock (`--sim-speed`).
    pub sim_speed: f64,
    /// The venv that holds the performance model (aiconfigurator-core), for simulated runs; `None` =
    /// stand-ins keep the fixed timing (`--timing fixed`).
    pub perf_venv: Option<String>,
    /// Where computed latency tables are cached across runs.
    pub perf_cache: String,
    /// Mock Dynamo workers: the recipe's model directory when it exists here (with a tokenizer); `None` =
    /// generate a weightless one per node.
    pub local_model_dir: Option<String>,
}

impl Default for Target {
    fn default() -> Self {
        Target {
            names: Vec::new(),
            addresses: Vec::new(),
            bind_all: true,
            run_dir: "$RUN_DIR".into(),
            srt_graph: "srt-graph".into(),
            container_tool: format!("{CONTAINER_TOOL_DIR}/srt-graph"),
            worker_python: "python3".into(),
            frontend_python: "python3".into(),
            mock_workers: false,
            smoke: false,
            configs_dir: "/configs".into(),
            ext_src_dir: "/ext-sglang-src".into(),
            venv: None,
            container: None,
            nginx_container: None,
            local_model_dir: None,
            sim_speed: 1.0,
            perf_venv: None,
            perf_cache: "$SRT_GRAPH_CACHE/perf-tables".into(),
        }
    }
}

/// The plan's nodes: names, the addresses URLs use, and what services bind to.
pub struct Nodes {
    pub names: Vec<String>,
    pub addrs: Vec<String>,
    pub bind_all: bool,
}

impl Nodes {
    pub fn new(target: &Target, total: usize) -> Nodes {
        let names: Vec<String> = (0..total)
            .map(|k| {
                target
                    .names
                    .get(k)
                    .cloned()
                    .unwrap_or_else(|| format!("node{k}"))
            })
            .collect();
        let addrs = (0..total)
            .map(|k| {
                target
                    .addresses
                    .get(k)
                    .cloned()
                    .unwrap_or_else(|| names[k].clone())
            })
            .collect();
        Nodes {
            names,
            addrs,
            bind_all: target.bind_all,
        }
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The address a service on node `k` binds to.
    pub fn bind(&self, k: usize) -> &str {
        if self.bind_all {
            "0.0.0.0"
        } else {
            &self.addrs[k]
        }
    }
}

/// What runs in place of the inference engine under `--mock-workers`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StandIn {
    /// The real engine.
    None,
    /// `srt-graph mock-worker`: speaks SGLang's HTTP API to the real sglang-router.
    MockWorker,
    /// Dynamo's own GPU-less `dynamo.mocker`: registers with the real Dynamo frontends.
    DynamoMocker,
}

/// Leader URL(s) of each role's workers, for routers.
#[derive(Debug, Default)]
pub struct Leaders {
    /// `(url, bootstrap port)` of every prefill leader.
    pub prefill: Vec<(String, u16)>,
    pub decode: Vec<String>,
    pub aggregated: Vec<String>,
}

/// One process of one worker, placed: what a backend turns into a step.
pub struct WorkerProcess<'a> {
    pub spec: &'a RoleSpec,
    pub place: start_worker::Placement<'a>,
    /// The recipe's environment, the role's, and Dynamo's discovery endpoints.
    pub env: BTreeMap<String, String>,
}

/// One frontend (router or Dynamo frontend), placed: what a frontend type turns into a step.
pub struct FrontendProcess<'a> {
    pub index: usize,
    pub node: usize,
    pub leaders: &'a Leaders,
    /// Ids of the workers' leader steps.
    pub workers: &'a [String],
}

/// What every stage and plug-in reads while one recipe compiles.
pub struct Ctx<'a> {
    pub recipe: &'a Recipe,
    pub target: &'a Target,
    pub nodes: Nodes,
    /// The run's venv, when the recipe needs one.
    pub venv: Option<&'a str>,
    pub worker_python: String,
    pub frontend_python: String,
    pub stand_in: StandIn,
    /// The step that creates the venv (what installs into it waits for it).
    pub venv_ready: Vec<String>,
    /// The steps that install into the venv: what runs from it waits for them.
    pub packages_ready: Vec<String>,
    /// NATS and etcd readiness gates (Dynamo's runtime), and the environment that points at them.
    pub infra_ready: Vec<String>,
    pub infra_env: BTreeMap<String, String>,
    /// The model name clients send.
    pub served_model: String,
    /// How the pinned Dynamo's mocker takes a role (the stand-in's flags).
    pub mocker_role_flags: start_worker::MockerRoleFlags,
    /// The performance model of this deployment (`perf_model::derive`).
    pub perf: srt_graph_perf_model::DeploymentModel,
    /// The step that writes the roles' latency tables, when the run simulates with them.
    pub perf_ready: Option<String>,
}

impl Ctx<'_> {
    /// The model directory Dynamo's mocker reads on node `k`: the recipe's, or one generated there.
    pub fn mocker_model(&self, k: usize) -> String {
        self.target.local_model_dir.clone().unwrap_or_else(|| {
            format!("{}/{}/mock-model", self.target.run_dir, self.nodes.names[k])
        })
    }

    pub fn python_of(venv: &str) -> String {
        format!("{}/bin/python", venv.trim_end_matches('/'))
    }
}
