//! Recipe → plan. Pure: no I/O. Placement follows srt-slurm (facts §3.3–3.5) and the seed's router mode.

use crate::diag::{did_you_mean, Diagnostic, RecipeError};
use crate::kinds::{self, start_frontend, start_nginx, start_router, start_worker};
use crate::recipe::{FrontendKind, Recipe, Role, RoleSpec};
use srt_graph_engine::{Container, Dag, Lifetime, Plan, PlanError, Step, PLAN_FORMAT};
use std::collections::BTreeMap;

/// Where and how the plan will run. `plan` uses the defaults; executors fill in real values.
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
    /// Python that runs workers (and installs the SGLang source into).
    pub worker_python: String,
    /// Python that has `sglang_router` (and Dynamo's frontend).
    pub frontend_python: String,
    /// Replace SGLang launches by `srt-graph mock-worker` with the same flags.
    pub mock_workers: bool,
    /// Container path of the recipe's configs (setup scripts).
    pub configs_dir: String,
    /// Where the SGLang source appears on a node; `{node}` is replaced by the node name.
    pub ext_src_dir: String,
    /// A Python virtualenv the run creates (or reuses) on node 0 and installs sglang-router into; workers'
    /// source installs go there too. `None` = the nodes' Python already has what it needs (containers).
    pub venv: Option<String>,
    /// The container worker-side steps run in (Slurm + pyxis), if any.
    pub container: Option<Container>,
    /// Mock Dynamo workers: the recipe's model directory when it exists here (with a tokenizer); `None` =
    /// generate a weightless one per node.
    pub local_model_dir: Option<String>,
}

/// What the local simulation installs for Dynamo besides `ai-dynamo` and `ai-dynamo-runtime` (installed
/// with `--no-deps`: their `aisimulate` dependency downloads from outside the package registries).
pub const DYNAMO_RUNTIME_DEPS: &[&str] = &[
    "packaging",
    "aiohttp",
    "certifi",
    "msgspec",
    "prometheus-client",
    "pyzmq",
    "tqdm",
    "transformers",
    "typing-extensions",
    "zstandard",
    "uvloop",
    "pydantic<=2.13.5",
];

/// The recipe's container for worker-side steps: the image, srt-slurm's mounts (model → `/model/`, run
/// directory → `/logs/`, recipe mounts, the SGLang source → `/ext-sglang-src/`) and one name per job,
/// so that an install persists into the worker's container.
pub fn worker_container(recipe: &Recipe, run_dir: &str) -> Option<Container> {
    let image = recipe.container.clone()?;
    let mut mounts = Vec::new();
    if let Some(model) = recipe.model_path.as_deref().filter(|m| m.starts_with('/')) {
        mounts.push(format!("{model}:/model/"));
    }
    mounts.push(format!("{run_dir}:/logs/"));
    for (host, inside) in &recipe.container_mounts {
        mounts.push(format!("{host}:{inside}"));
    }
    if let Some((src, _)) = &recipe.sglang_src_dir {
        mounts.push(format!("{src}:/ext-sglang-src/"));
    }
    Some(Container {
        image,
        mounts,
        name: Some("srt-graph-worker".into()),
    })
}

/// The sglang-router release the local simulation installs (the one verified against the mock).
pub const SGLANG_ROUTER_PACKAGE: &str = "sglang-router==0.3.2";

impl Default for Target {
    fn default() -> Self {
        Target {
            names: Vec::new(),
            addresses: Vec::new(),
            bind_all: true,
            run_dir: "$RUN_DIR".into(),
            srt_graph: "srt-graph".into(),
            worker_python: "python3".into(),
            frontend_python: "python3".into(),
            mock_workers: false,
            configs_dir: "/configs".into(),
            ext_src_dir: "/ext-sglang-src".into(),
            venv: None,
            container: None,
            local_model_dir: None,
        }
    }
}

struct Nodes {
    names: Vec<String>,
    addrs: Vec<String>,
    bind_all: bool,
}

impl Nodes {
    fn bind(&self, k: usize) -> &str {
        if self.bind_all {
            "0.0.0.0"
        } else {
            &self.addrs[k]
        }
    }
}

/// Leader URL(s) of a role's workers, for the routers.
struct Leaders {
    prefill: Vec<(String, u16)>,
    decode: Vec<String>,
    aggregated: Vec<String>,
}

pub fn compile(recipe: &Recipe, target: &Target) -> Result<Plan, RecipeError> {
    let total = recipe.total_nodes() as usize;
    let names: Vec<String> = (0..total)
        .map(|k| {
            target
                .names
                .get(k)
                .cloned()
                .unwrap_or_else(|| format!("node{k}"))
        })
        .collect();
    let addrs: Vec<String> = (0..total)
        .map(|k| {
            target
                .addresses
                .get(k)
                .cloned()
                .unwrap_or_else(|| names[k].clone())
        })
        .collect();
    let nodes = Nodes {
        names,
        addrs,
        bind_all: target.bind_all,
    };
    let mut steps: Vec<Step> = Vec::new();
    let mut notes = recipe.notes.clone();
    let mock = target.mock_workers.then_some(target.srt_graph.as_str());
    let router_mode = recipe.frontend.kind == FrontendKind::SglangRouter;

    // The run's own Python environment (local simulation): created once, sglang-router installed into it.
    let mut venv_ready: Vec<String> = Vec::new();
    // The steps that install into the venv (sglang-router, Dynamo): what runs from it waits for them.
    let mut packages_ready: Vec<String> = Vec::new();
    let python_of = |venv: &str| format!("{}/bin/python", venv.trim_end_matches('/'));
    // Only what the venv serves: the router, or installs of a mounted SGLang source.
    let needs_venv = !recipe.roles.is_empty() || recipe.sglang_src_dir.is_some();
    let venv = target.venv.as_ref().filter(|_| needs_venv);
    let (worker_python, frontend_python) = match venv {
        Some(v) => (python_of(v), python_of(v)),
        None => (target.worker_python.clone(), target.frontend_python.clone()),
    };
    if let Some(venv) = venv {
        let name = &nodes.names[0];
        steps.push(kinds::pip_install::venv(0, name, venv));
        venv_ready.push(format!("venv/{name}"));
        if router_mode && !recipe.roles.is_empty() {
            let mut s = kinds::pip_install::packages(
                format!("pip-router/{name}"),
                0,
                &worker_python,
                &[SGLANG_ROUTER_PACKAGE.to_string()],
                "install the real sglang-router (cached in the venv between runs)",
            );
            s.command = s.command.map(|argv| kinds::pip_install::locked(venv, argv));
            s.depends_on = venv_ready.clone();
            packages_ready.push(s.id.clone());
            steps.push(s);
        }
        if !router_mode && !recipe.roles.is_empty() {
            // Dynamo into the run's venv: the packages without their dependencies, then what they need.
            let mut core = recipe.dynamo.packages.clone();
            core.insert(0, "--no-deps".into());
            let mut s = kinds::pip_install::packages(
                format!("pip-dynamo/{name}"),
                0,
                &worker_python,
                &core,
                "install Dynamo (frontend, runtime, mocker) into the venv",
            );
            s.command = s.command.map(|argv| kinds::pip_install::locked(venv, argv));
            s.depends_on = venv_ready.clone();
            let deps: Vec<String> = DYNAMO_RUNTIME_DEPS.iter().map(|d| d.to_string()).collect();
            let mut d = kinds::pip_install::packages(
                format!("pip-dynamo-deps/{name}"),
                0,
                &worker_python,
                &deps,
                "install what Dynamo needs at run time",
            );
            d.command = d.command.map(|argv| kinds::pip_install::locked(venv, argv));
            d.depends_on = vec![s.id.clone()];
            packages_ready.push(d.id.clone());
            steps.push(s);
            steps.push(d);
        }
    }
    // Mock Dynamo workers read a model directory: the recipe's, or one generated per node.
    let mocker_model = |k: usize| -> String {
        target
            .local_model_dir
            .clone()
            .unwrap_or_else(|| format!("{}/{}/mock-model", target.run_dir, nodes.names[k]))
    };
    let dynamo_mock = !router_mode && target.mock_workers;
    if dynamo_mock && !recipe.roles.is_empty() {
        notes.push(
            "--mock-workers: Dynamo workers run as Dynamo's own GPU-less `dynamo.mocker`, keeping their prefill/decode role (it supports disaggregation); `sglang_config` flags are not passed to it, and a worker spanning nodes runs on its first node only".into(),
        );
    }

    // Per-node preparation steps that every worker process on that node waits for.
    let mut prep: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    let worker_nodes: std::collections::BTreeSet<usize> = worker_node_set(recipe);
    for &k in &worker_nodes {
        let name = &nodes.names[k];
        let mut last: Option<String> = None;
        let mut chain = |mut s: Step, steps: &mut Vec<Step>| {
            if let Some(l) = &last {
                s.depends_on.push(l.clone());
            }
            last = Some(s.id.clone());
            steps.push(s);
        };
        if let Some(script) = &recipe.setup_script {
            chain(
                kinds::setup_script::step(k, name, &target.configs_dir, script),
                &mut steps,
            );
        }
        if !router_mode && recipe.dynamo.install && !target.mock_workers && venv.is_none() {
            chain(
                kinds::pip_install::packages(
                    format!("pip-dynamo/{name}"),
                    k,
                    &worker_python,
                    &recipe.dynamo.packages,
                    "install Dynamo (once per node)",
                ),
                &mut steps,
            );
        }
        if let Some((src, _)) = &recipe.sglang_src_dir {
            let dst = target.ext_src_dir.replace("{node}", name);
            // In a container the source is a mount (`/ext-sglang-src/`); on a host it is linked there.
            if target.container.is_none() {
                chain(
                    kinds::mount_source::step(k, name, &target.srt_graph, src, &dst),
                    &mut steps,
                );
            }
            let mut pip = kinds::pip_install::editable(k, name, &worker_python, &dst);
            if let Some(venv) = venv {
                // Every node's install goes into the one shared venv here: serialise them.
                pip.command = pip
                    .command
                    .map(|argv| kinds::pip_install::locked(venv, argv));
                pip.depends_on.extend(venv_ready.iter().cloned());
            }
            chain(pip, &mut steps);
        }
        if dynamo_mock && target.local_model_dir.is_none() {
            let s = kinds::mock_model::step(
                k,
                name,
                &target.srt_graph,
                &mocker_model(k),
                &served_model_name(recipe),
            );
            chain(s, &mut steps);
        }
        if let Some(l) = last {
            prep.insert(k, vec![l]);
        }
    }

    // Dynamo infrastructure: NATS + etcd on the infra node, each with a readiness check.
    let mut infra_ready: Vec<String> = Vec::new();
    let mut infra_env: BTreeMap<String, String> = BTreeMap::new();
    if !router_mode && !recipe.roles.is_empty() {
        let infra = if recipe.infra_dedicated_node {
            total - 1
        } else if recipe.frontend.multiple && total > 1 {
            1
        } else {
            0
        };
        let addr = nodes.addrs[infra].clone();
        steps.push(kinds::start_nats::step(infra, nodes.bind(infra), &addr));
        steps.push(kinds::start_etcd::step(
            infra,
            nodes.bind(infra),
            &addr,
            &format!("{}/etcd", target.run_dir),
        ));
        let mut n = kinds::wait_healthy::infra(
            "nats/ready",
            infra,
            &target.srt_graph,
            ("tcp", format!("{addr}:{}", kinds::start_nats::PORT)),
            300.0,
        );
        n.depends_on.push("nats".into());
        let mut e = kinds::wait_healthy::infra(
            "etcd/ready",
            infra,
            &target.srt_graph,
            (
                "http",
                format!("http://{addr}:{}/health", kinds::start_etcd::CLIENT_PORT),
            ),
            300.0,
        );
        e.depends_on.push("etcd".into());
        steps.push(n);
        steps.push(e);
        infra_ready = vec!["nats/ready".into(), "etcd/ready".into()];
        infra_env.insert(
            "NATS_SERVER".into(),
            format!("nats://{addr}:{}", kinds::start_nats::PORT),
        );
        infra_env.insert(
            "ETCD_ENDPOINTS".into(),
            format!("http://{addr}:{}", kinds::start_etcd::CLIENT_PORT),
        );
    }

    // Workers.
    let mut leaders = Leaders {
        prefill: vec![],
        decode: vec![],
        aggregated: vec![],
    };
    let mut worker_steps: Vec<String> = Vec::new();
    let mut slots: BTreeMap<usize, u16> = BTreeMap::new();
    let gpn = recipe.gpus_per_node;
    let mut free: Vec<u32> = vec![gpn; total];
    let mut base_node = 0usize;
    for spec in &recipe.roles {
        let http_base = flag_port(spec, "port").unwrap_or(start_worker::HTTP_PORT);
        let boot_base = flag_port(spec, "disaggregation-bootstrap-port")
            .unwrap_or(start_worker::BOOTSTRAP_PORT);
        // A role with nodes of its own uses them; a role with 0 nodes packs into GPUs left on earlier nodes.
        let region = if spec.nodes > 0 {
            base_node..base_node + spec.nodes as usize
        } else {
            0..base_node
        };
        for w in 0..spec.workers {
            let Some((first, span, cuda)) =
                allocate(&mut free, region.clone(), spec.gpus_per_worker, gpn)
            else {
                return Err(RecipeError::Invalid(vec![diag(
                    recipe,
                    recipe.resources_pos,
                    "resources",
                    format!(
                        "{} worker {w} ({} GPUs) does not fit: {} node(s) of {gpn} GPUs are available to it and the workers before it took the rest",
                        spec.role.as_str(),
                        spec.gpus_per_worker,
                        region.len()
                    ),
                    Some(format!("raise {}_nodes or lower the workers / GPUs per worker", spec.role.id_prefix())),
                )]));
            };
            let slot = *slots.entry(first).and_modify(|s| *s += 1).or_insert(0);
            let offset = slot.saturating_mul(start_worker::PORT_STRIDE);
            let http_port = http_base.saturating_add(offset);
            // Prefill always gets a bootstrap port; decode only repeats it when the recipe wrote it.
            let names_bootstrap = spec.role == Role::Prefill
                || spec.flag(&["disaggregation-bootstrap-port"]).is_some();
            let bootstrap = names_bootstrap.then(|| boot_base.saturating_add(offset));
            let leader_addr = nodes.addrs[first].clone();
            let url = format!("http://{leader_addr}:{http_port}");
            match spec.role {
                Role::Prefill => leaders.prefill.push((url, bootstrap.unwrap_or(boot_base))),
                Role::Decode => leaders.decode.push(url),
                Role::Aggregated => leaders.aggregated.push(url),
            }
            for rank in 0..span {
                let node = first + rank as usize;
                let wid = format!("{}-{w}", spec.role.id_prefix());
                let id = if rank == 0 {
                    wid.clone()
                } else {
                    format!("{wid}/rank{rank}")
                };
                let place = start_worker::Placement {
                    id: id.clone(),
                    node,
                    bind: nodes.bind(node),
                    http_port,
                    bootstrap_port: bootstrap,
                    dist: (span > 1).then(|| {
                        (
                            leader_addr.clone(),
                            start_worker::DIST_INIT_PORT + slot,
                            span,
                            rank,
                        )
                    }),
                    cuda_devices: cuda.clone(),
                    probe_addr: &nodes.addrs[node],
                };
                let mut env = kinds::env(&recipe.environment);
                env.extend(kinds::env(&spec.env));
                env.extend(infra_env.clone());
                let mut s = if dynamo_mock {
                    // The mocker simulates a whole worker in one process: only the leader runs.
                    if rank > 0 {
                        continue;
                    }
                    start_worker::dynamo_mocker(
                        spec,
                        &worker_python,
                        &place,
                        &mocker_model(node),
                        &served_model_name(recipe),
                        env,
                    )
                } else {
                    start_worker::step(
                        spec,
                        recipe.frontend.kind,
                        &worker_python,
                        mock,
                        &place,
                        env,
                    )
                };
                if dynamo_mock {
                    s.depends_on.extend(packages_ready.iter().cloned());
                }
                s.depends_on
                    .extend(prep.get(&node).cloned().unwrap_or_default());
                s.depends_on.extend(infra_ready.iter().cloned());
                worker_steps.push(id);
                steps.push(s);
            }
        }
        base_node += spec.nodes as usize;
    }

    // Routers / frontends, nginx, health gate.
    let mut public: Option<String> = None;
    let mut gate_urls: Vec<String> = Vec::new();
    let mut frontends: Vec<String> = Vec::new();
    if !recipe.roles.is_empty() {
        let placement = frontend_nodes(recipe, total, router_mode);
        if recipe.frontend.multiple && recipe.frontend.num_additional as usize + 1 > placement.len()
        {
            notes.push(format!(
                "{} frontend(s) requested (1 + num_additional_frontends {}), {} placed: one per node at most, on nodes {}",
                recipe.frontend.num_additional + 1,
                recipe.frontend.num_additional,
                placement.len(),
                placement.iter().map(|k| nodes.names[*k].clone()).collect::<Vec<_>>().join(", ")
            ));
        }
        let mut upstreams = Vec::new();
        for (i, &k) in placement.iter().enumerate() {
            let addr = nodes.addrs[k].clone();
            let s = if router_mode {
                let port = if recipe.frontend.multiple {
                    start_router::INTERNAL_PORT
                } else {
                    start_nginx::PUBLIC_PORT
                };
                let workers = start_router::Workers {
                    prefill: &leaders.prefill,
                    decode: &leaders.decode,
                    aggregated: &leaders.aggregated,
                };
                let mut s = start_router::step(
                    i,
                    k,
                    &frontend_python,
                    nodes.bind(k),
                    &addr,
                    port,
                    &workers,
                    &recipe.frontend.args,
                );
                s.depends_on.extend(packages_ready.iter().cloned());
                s.env = kinds::env(&recipe.environment);
                s.env.extend(kinds::env(&recipe.frontend.env));
                // A router needs its workers started (it waits for their health itself).
                s.depends_on.extend(
                    worker_steps
                        .iter()
                        .filter(|w| !w.contains("/rank"))
                        .cloned(),
                );
                gate_urls.push(format!("http://{addr}:{port}"));
                upstreams.push(format!("{addr}:{port}"));
                s
            } else {
                let port = if recipe.frontend.multiple && k == 0 {
                    start_frontend::COLOCATED_PORT
                } else {
                    start_frontend::PORT
                };
                let mut env = kinds::env(&recipe.environment);
                env.extend(infra_env.clone());
                if dynamo_mock {
                    // The simulation keeps Dynamo's own planes on the node's (loopback) address.
                    for var in [
                        "DYN_TCP_RPC_HOST",
                        "DYN_TCP_RESPONSE_STREAM_HOST",
                        "DYN_EVENT_PLANE_HOST",
                    ] {
                        env.insert(var.into(), addr.clone());
                    }
                }
                env.extend(kinds::env(&recipe.frontend.env));
                let mut s = start_frontend::step(
                    i,
                    k,
                    &frontend_python,
                    &start_frontend::Listen {
                        bind: nodes.bind(k),
                        addr: &addr,
                        port,
                    },
                    &recipe.frontend.args,
                    env,
                );
                s.depends_on.extend(infra_ready.iter().cloned());
                s.depends_on.extend(packages_ready.iter().cloned());
                if !target.mock_workers && recipe.dynamo.install && worker_nodes.contains(&k) {
                    s.depends_on.push(format!("pip-dynamo/{}", nodes.names[k]));
                }
                gate_urls.push(format!("http://{addr}:{port}"));
                upstreams.push(format!("{addr}:{port}"));
                s
            };
            frontends.push(s.id.clone());
            steps.push(s);
        }
        let max_conc = recipe
            .benchmark
            .as_ref()
            .and_then(|b| {
                b.points
                    .iter()
                    .flat_map(|p| p.concurrencies.iter().copied())
                    .max()
            })
            .unwrap_or(1024);
        if recipe.frontend.multiple {
            let listen = if nodes.bind_all {
                start_nginx::PUBLIC_PORT.to_string()
            } else {
                format!("{}:{}", nodes.addrs[0], start_nginx::PUBLIC_PORT)
            };
            let cfg = start_nginx::Config {
                listen,
                upstreams: &upstreams,
                run_dir: &target.run_dir,
                keepalive_timeout: &recipe.frontend.nginx_keepalive_timeout,
                max_concurrency: max_conc,
            };
            let mut nginx = start_nginx::step(0, &nodes.addrs[0], &cfg);
            // nginx talks to the routers/frontends (and keeps connections to them): it starts after them
            // and, on resume, restarts when they do.
            nginx.depends_on = frontends.clone();
            steps.push(nginx);
            frontends.push("nginx".into());
        }
        public = Some(format!(
            "http://{}:{}",
            nodes.addrs[0],
            start_nginx::PUBLIC_PORT
        ));

        let (prefill, decode) = match recipe.role(Role::Aggregated) {
            Some(a) => (0, a.workers),
            None => (
                recipe.role(Role::Prefill).map_or(0, |r| r.workers),
                recipe.role(Role::Decode).map_or(0, |r| r.workers),
            ),
        };
        let model = served_model_name(recipe);
        let expect = kinds::wait_healthy::Expect {
            mode: if router_mode { "sglang" } else { "dynamo" },
            urls: &gate_urls,
            prefill,
            decode,
            public_url: public.as_deref(),
            model: &model,
            timeout_secs: f64::from(recipe.health_max_attempts)
                * f64::from(recipe.health_interval_secs),
            interval_secs: recipe.health_interval_secs,
        };
        let mut gate = kinds::wait_healthy::step("wait-healthy", 0, &target.srt_graph, &expect);
        gate.depends_on.extend(frontends.iter().cloned());
        gate.depends_on.extend(worker_steps.iter().cloned());
        steps.push(gate);

        if let Some(b) = recipe.benchmark.as_ref().filter(|b| b.kind == "sa-bench") {
            let mut prev = "wait-healthy".to_string();
            // The benchmark runs on node 0 and counts tokens with the mocker's tokenizer.
            let mocker_tokenizer = mocker_model(0);
            let gpus = |role: Role| {
                recipe
                    .role(role)
                    .map_or(0, |r| r.workers * r.gpus_per_worker)
            };
            let (ctx, gen) = match recipe.role(Role::Aggregated) {
                Some(a) => (a.workers * a.gpus_per_worker, 0),
                None => (gpus(Role::Prefill), gpus(Role::Decode)),
            };
            let multi = b.points.len() > 1;
            for p in &b.points {
                let result_dir = format!("{}/sa-bench_isl_{}_osl_{}", target.run_dir, p.isl, p.osl);
                let point = kinds::run_benchmark::Point {
                    url: public.as_deref().unwrap_or_default(),
                    model: &model,
                    tokenizer: if dynamo_mock {
                        Some(mocker_tokenizer.as_str())
                    } else {
                        recipe.model_path.as_deref()
                    },
                    isl: p.isl,
                    osl: p.osl,
                    random_range_ratio: b.random_range_ratio,
                    req_rate: p.req_rate,
                    result_dir: &result_dir,
                    prefill_gpus: ctx,
                    decode_gpus: gen,
                };
                let prefix = if multi {
                    format!("sa-bench/isl{}-osl{}", p.isl, p.osl)
                } else {
                    "sa-bench".into()
                };
                if b.num_warmup_mult > 0 {
                    let id = format!("{prefix}/warmup");
                    let mut s = kinds::run_benchmark::warmup(
                        &id,
                        0,
                        &target.srt_graph,
                        &point,
                        &p.concurrencies,
                        b.num_warmup_mult,
                    );
                    s.depends_on.push(prev.clone());
                    prev = id;
                    steps.push(s);
                }
                for &c in &p.concurrencies {
                    let id = format!("{prefix}/c{c}");
                    if steps.iter().any(|s| s.id == id) {
                        continue;
                    }
                    let mut s = kinds::run_benchmark::measure(
                        &id,
                        0,
                        &target.srt_graph,
                        &point,
                        c,
                        b.num_prompts_mult,
                    );
                    s.depends_on.push(prev.clone());
                    prev = id;
                    steps.push(s);
                }
            }
        }
    }

    add_user_steps(recipe, &nodes, &mut steps)?;
    apply_policies(recipe, &mut steps);
    check_ports(recipe, &nodes, &steps)?;
    if let Some(c) = &target.container {
        for s in steps
            .iter_mut()
            .filter(|s| kinds::find(&s.kind).is_some_and(|k| k.in_worker_container))
        {
            s.container = Some(c.clone());
        }
    }

    let plan = Plan {
        format: PLAN_FORMAT,
        recipe: recipe.name.clone(),
        nodes: nodes.names,
        addresses: nodes.addrs,
        steps,
        endpoint: public,
        ignored: recipe.ignored.clone(),
        notes,
    };
    // Validate the graph (unique ids, deps, cycles) with the engine's own rules.
    Dag::new(plan.clone()).map_err(|e| plan_error(recipe, e))?;
    Ok(plan)
}

/// Takes GPUs for one worker from `free` (per-node free counts) within `region`: whole free nodes for a
/// worker of ≥ 1 node, else the first node with room. Returns (first node, node count, CUDA devices).
fn allocate(
    free: &mut [u32],
    region: std::ops::Range<usize>,
    gpw: u32,
    gpn: u32,
) -> Option<(usize, u32, Option<String>)> {
    if gpw >= gpn {
        let span = (gpw / gpn) as usize;
        let start = region
            .clone()
            .find(|&k| k + span <= region.end && (k..k + span).all(|j| free[j] == gpn))?;
        free[start..start + span].fill(0);
        return Some((start, span as u32, None));
    }
    let k = region.clone().find(|&k| free[k] >= gpw)?;
    let first_dev = gpn - free[k];
    free[k] -= gpw;
    let devs: Vec<String> = (first_dev..first_dev + gpw)
        .map(|d| d.to_string())
        .collect();
    Some((k, 1, Some(devs.join(","))))
}

fn worker_node_set(recipe: &Recipe) -> std::collections::BTreeSet<usize> {
    let used: usize = recipe.roles.iter().map(|r| r.nodes as usize).sum();
    (0..used).collect()
}

fn flag_port(spec: &RoleSpec, key: &str) -> Option<u16> {
    spec.flag(&[key])
        .and_then(|n| n.scalar_text())
        .and_then(|t| t.parse().ok())
}

/// The model name clients must send: `served-model-name` if set, else the model path.
pub fn served_model_name(recipe: &Recipe) -> String {
    recipe
        .roles
        .iter()
        .find_map(|r| r.flag(&["served-model-name"]).and_then(|n| n.scalar_text()))
        .or_else(|| recipe.model_path.clone())
        .unwrap_or_else(|| "default".into())
}

/// Nodes that host routers (router mode) or Dynamo frontends, in order.
///
/// Router mode: router 0 on node 0, the others on nodes 1, 1+k, 1+2k… with
/// `k = ceil((total-1)/num_additional)` (the seed's formula), one per node.
/// Dynamo mode: frontend 0 on node 1 (with NATS/etcd), the others on 2, 2+k… with
/// `k = ceil((total-2)/num_additional)`. Single frontend: node 0.
pub fn frontend_nodes(recipe: &Recipe, total: usize, router_mode: bool) -> Vec<usize> {
    let f = &recipe.frontend;
    if !f.multiple {
        return vec![0];
    }
    let (first, start) = if router_mode || total < 2 {
        (0, 1)
    } else {
        (1, 2)
    };
    let mut out = vec![first];
    let extra = f.num_additional as usize;
    if extra == 0 || total <= start {
        return out;
    }
    let step = (total - start).div_ceil(extra).max(1);
    let mut idx = start;
    while idx < total && out.len() < extra + 1 {
        out.push(idx);
        idx += step;
    }
    out
}

fn add_user_steps(
    recipe: &Recipe,
    nodes: &Nodes,
    steps: &mut Vec<Step>,
) -> Result<(), RecipeError> {
    let mut diags = Vec::new();
    let total = nodes.names.len();
    // Expand `node: all` into one step per node.
    let mut expanded: Vec<(usize, Step)> = Vec::new();
    for u in &recipe.steps {
        let targets: Vec<usize> = match u.node {
            Some(k) if (k as usize) < total => vec![k as usize],
            Some(k) => {
                diags.push(diag(
                    recipe,
                    u.pos,
                    &format!("steps[{}].node", u.index),
                    format!("node {k} does not exist: this recipe has {total} node(s)"),
                    Some(format!("use 0..{} or `all`", total - 1)),
                ));
                continue;
            }
            None => (0..total).collect(),
        };
        for k in targets {
            let id = if u.node.is_none() {
                format!("{}/{}", u.name, nodes.names[k])
            } else {
                u.name.clone()
            };
            let mut s = kinds::shell::step(id, k, &u.run, u.service, u.retries, u.timeout_secs);
            s.env = kinds::env(&recipe.environment);
            s.env.extend(kinds::env(&u.env));
            expanded.push((u.index, s));
        }
    }
    let compiled: Vec<(String, String)> = steps
        .iter()
        .map(|s| (s.id.clone(), s.kind.clone()))
        .collect();
    let all_ids: Vec<String> = compiled
        .iter()
        .map(|(i, _)| i.clone())
        .chain(expanded.iter().map(|(_, s)| s.id.clone()))
        .collect();
    // A reference names a step id, a user step name (all its per-node copies) or a kind.
    // (id, kind, user step name) of every user step copy.
    let user: Vec<(String, String, String)> = expanded
        .iter()
        .map(|(idx, s)| {
            let base = recipe
                .steps
                .iter()
                .find(|u| u.index == *idx)
                .map(|u| u.name.clone())
                .unwrap_or_default();
            (s.id.clone(), s.kind.clone(), base)
        })
        .collect();
    let resolve = |name: &str| -> Vec<String> {
        compiled
            .iter()
            .filter(|(i, k)| i == name || k == name)
            .map(|(i, _)| i.clone())
            .chain(
                user.iter()
                    .filter(|(i, k, b)| i == name || k == name || b == name)
                    .map(|(i, _, _)| i.clone()),
            )
            .collect()
    };
    let mut before_edges: Vec<(String, String)> = Vec::new();
    for (idx, s) in expanded.iter_mut() {
        let Some(u) = recipe.steps.iter().find(|u| u.index == *idx) else {
            continue;
        };
        for (field, list) in [("after", &u.after), ("before", &u.before)] {
            for name in list {
                let found = resolve(name);
                if found.is_empty() {
                    let help = did_you_mean(
                        name,
                        all_ids
                            .iter()
                            .map(String::as_str)
                            .chain(kinds::names().map(|k| -> &str { k })),
                    )
                    .map_or_else(
                        || "name a step id, a `steps:` name or a step kind".to_string(),
                        |k| format!("did you mean `{k}`?"),
                    );
                    diags.push(diag(
                        recipe,
                        u.pos,
                        &format!("steps[{idx}].{field}"),
                        format!("`{name}` is not a step or step kind of this plan"),
                        Some(help),
                    ));
                    continue;
                }
                for f in found.into_iter().filter(|f| f != &s.id) {
                    if field == "after" {
                        if !s.depends_on.contains(&f) {
                            s.depends_on.push(f);
                        }
                    } else {
                        before_edges.push((f, s.id.clone()));
                    }
                }
            }
        }
    }
    if !diags.is_empty() {
        return Err(RecipeError::Invalid(diags));
    }
    steps.extend(expanded.into_iter().map(|(_, s)| s));
    for (later, first) in before_edges {
        if let Some(s) = steps.iter_mut().find(|s| s.id == later) {
            if !s.depends_on.contains(&first) {
                s.depends_on.push(first);
            }
        }
    }
    Ok(())
}

/// The recipe's `policy:` overrides, over the kinds' defaults each step was created with.
fn apply_policies(recipe: &Recipe, steps: &mut [Step]) {
    for s in steps.iter_mut() {
        for o in recipe.policies.iter().filter(|o| o.kind == s.kind) {
            if let Some(a) = o.attempts {
                s.policy.attempts = a;
            }
            if let Some(b) = o.backoff_secs {
                s.policy.backoff_ms = (b * 1000.0) as u64;
            }
            if let Some(t) = o.timeout_secs {
                if s.lifetime == Lifetime::Task {
                    s.policy.timeout_secs = Some(t);
                }
            }
            if let Some(e) = o.retry_on_exit {
                s.policy
                    .retry_on
                    .retain(|r| *r != srt_graph_engine::RetryOn::Exit);
                if e {
                    s.policy.retry_on.push(srt_graph_engine::RetryOn::Exit);
                }
            }
        }
    }
}

/// Two services planned on one node must not listen on one port.
fn check_ports(recipe: &Recipe, nodes: &Nodes, steps: &[Step]) -> Result<(), RecipeError> {
    let mut seen: BTreeMap<(String, u16), &str> = BTreeMap::new();
    let mut diags = Vec::new();
    for s in steps.iter().filter(|s| s.is_service()) {
        for &p in &s.ports {
            let key = (nodes.addrs[s.node].clone(), p);
            if let Some(other) = seen.get(&key) {
                let earlier = steps.iter().find(|x| x.id == *other);
                let (pos, path) = port_source(recipe, s, p)
                    .or_else(|| earlier.and_then(|e| port_source(recipe, e, p)))
                    .unwrap_or((recipe.resources_pos, "resources".into()));
                diags.push(diag(
                    recipe,
                    pos,
                    &path,
                    format!(
                        "port {p} on {} is used by both `{other}` and `{}`",
                        nodes.names[s.node], s.id
                    ),
                    Some("give one of them another port, or place it on another node".into()),
                ));
            } else {
                seen.insert(key, &s.id);
            }
        }
    }
    if diags.is_empty() {
        Ok(())
    } else {
        Err(RecipeError::Invalid(diags))
    }
}

/// Best location to blame for a port: the recipe flag that set it, else the resources section.
fn port_source(recipe: &Recipe, s: &Step, port: u16) -> Option<(crate::yaml::Pos, String)> {
    if let Some(role) = &s.role {
        if let Some(spec) = recipe.roles.iter().find(|r| r.role.as_str() == role) {
            for key in ["port", "disaggregation-bootstrap-port"] {
                if let Some(n) = spec.flag(&[key]) {
                    if n.scalar_text()
                        .and_then(|t| t.parse::<u16>().ok())
                        .is_some_and(|v| v <= port)
                    {
                        return Some((n.pos, format!("backend.sglang_config.{role}.{key}")));
                    }
                }
            }
        }
    }
    None
}

fn diag(
    recipe: &Recipe,
    pos: crate::yaml::Pos,
    path: &str,
    message: String,
    help: Option<String>,
) -> Diagnostic {
    Diagnostic {
        file: recipe.file.clone(),
        pos,
        path: path.into(),
        message,
        help,
    }
}

fn plan_error(recipe: &Recipe, e: PlanError) -> RecipeError {
    let (pos, path) = match &e {
        PlanError::Cycle(ids) => recipe
            .steps
            .iter()
            .find(|u| {
                ids.iter()
                    .any(|i| i == &u.name || i.starts_with(&format!("{}/", u.name)))
            })
            .map_or((recipe.root_pos, "steps".to_string()), |u| {
                (u.pos, format!("steps[{}]", u.index))
            }),
        PlanError::DuplicateStep(id) => recipe
            .steps
            .iter()
            .find(|u| &u.name == id)
            .map_or((recipe.root_pos, "steps".to_string()), |u| {
                (u.pos, format!("steps[{}].name", u.index))
            }),
        _ => (recipe.root_pos, "steps".to_string()),
    };
    let help = match &e {
        PlanError::DuplicateStep(_) => {
            Some("this name is already the id of a compiled step; pick another".to_string())
        }
        PlanError::Cycle(_) => Some("remove one `after:`/`before:` edge of the cycle".to_string()),
        _ => None,
    };
    RecipeError::Invalid(vec![diag(recipe, pos, &path, e.to_string(), help)])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{load_str, ClusterConfig};

    fn recipe(text: &str) -> Recipe {
        let mut v = load_str(text, "t.yaml", None, &ClusterConfig::default()).expect("valid");
        v.remove(0).recipe
    }

    fn disagg(prefill_nodes: u32, decode_nodes: u32, extra: &str) -> String {
        format!(
            "name: t\nresources: {{gpu_type: gb300, gpus_per_node: 4, prefill_nodes: {prefill_nodes}, prefill_workers: {prefill_nodes}, decode_nodes: {decode_nodes}, decode_workers: {decode_nodes}}}\nbackend:\n  use_sglang_router: true\n{extra}\n  sglang_config:\n    prefill: {{tp-size: 4}}\n    decode: {{tp-size: 4}}\n"
        )
    }

    /// The seed's table: 0 → node 0 only; N additional → node 0 + N distributed with
    /// `ceil((total_nodes - 1) / N)` spacing, one router per node at most.
    #[test]
    fn router_distribution_follows_the_seed_formula() {
        let cases: &[(u32, u32, u32, &[usize])] = &[
            (1, 1, 0, &[0]),
            (2, 2, 3, &[0, 1, 2, 3]),
            (4, 6, 4, &[0, 1, 4, 7]), // total 10: ceil(9/4) = 3
            (4, 6, 9, &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]),
            (8, 12, 9, &[0, 1, 4, 7, 10, 13, 16, 19]), // total 20: ceil(19/9) = 3
            (1, 1, 9, &[0, 1]),                        // fewer nodes than routers: one per node
        ];
        for &(p, d, n, want) in cases {
            let r = recipe(&disagg(p, d, &format!("  num_additional_frontends: {n}")));
            let total = r.total_nodes() as usize;
            assert_eq!(frontend_nodes(&r, total, true), want, "P={p} D={d} N={n}");
        }
    }

    #[test]
    fn single_router_sits_on_node0_port_8000() {
        let r = recipe(&disagg(2, 2, "  enable_multiple_frontends: false"));
        let plan = compile(&r, &Target::default()).expect("plan");
        let routers: Vec<&Step> = plan
            .steps
            .iter()
            .filter(|s| s.kind == "start_router")
            .collect();
        assert_eq!(routers.len(), 1);
        assert_eq!(
            (routers[0].node, routers[0].ports.as_slice()),
            (0, &[8000u16, 29000][..])
        );
        assert!(!plan.steps.iter().any(|s| s.kind == "start_nginx"));
    }

    #[test]
    fn ports_of_workers_sharing_a_node_do_not_collide() {
        let r = recipe("name: t\nresources: {gpu_type: h100, gpus_per_node: 8, prefill_nodes: 1, prefill_workers: 2, gpus_per_prefill: 2, decode_nodes: 0, decode_workers: 2}\nfrontend: {type: sglang, enable_multiple_frontends: false}\nbackend:\n  sglang_config:\n    prefill: {tp-size: 2}\n    decode: {tp-size: 2}\n");
        let plan = compile(&r, &Target::default()).expect("plan");
        let workers: Vec<(&str, &[u16], &str)> = plan
            .steps
            .iter()
            .filter(|s| s.kind == "start_worker")
            .map(|s| {
                (
                    s.id.as_str(),
                    s.ports.as_slice(),
                    s.env.get("CUDA_VISIBLE_DEVICES").map_or("", String::as_str),
                )
            })
            .collect();
        assert_eq!(
            workers,
            [
                ("prefill-0", &[30000u16, 30001][..], "0,1"),
                ("prefill-1", &[30010, 30011][..], "2,3"),
                ("decode-0", &[30020][..], "4,5"),
                ("decode-1", &[30030][..], "6,7"),
            ]
        );
    }

    #[test]
    fn multi_node_workers_get_dist_init_and_ranks() {
        let r = recipe("name: t\nresources: {gpu_type: gb200, gpus_per_node: 4, prefill_nodes: 1, prefill_workers: 1, decode_nodes: 3, decode_workers: 1}\nbackend:\n  use_sglang_router: true\n  sglang_config:\n    prefill: {tp-size: 4}\n    decode: {tp-size: 12}\n");
        let plan = compile(&r, &Target::default()).expect("plan");
        for (id, node, rank) in [
            ("decode-0", 1, "0"),
            ("decode-0/rank1", 2, "1"),
            ("decode-0/rank2", 3, "2"),
        ] {
            let s = plan.steps.iter().find(|s| s.id == id).expect(id);
            assert_eq!(s.node, node);
            let argv = s.command.as_ref().expect("argv").join(" ");
            assert!(
                argv.contains(&format!(
                    "--dist-init-addr node1:29500 --nnodes 3 --node-rank {rank}"
                )),
                "{argv}"
            );
        }
        // The router is told only about leaders.
        let router = plan
            .steps
            .iter()
            .find(|s| s.kind == "start_router")
            .expect("router");
        let argv = router.command.as_ref().expect("argv").join(" ");
        assert!(
            argv.contains("--decode http://node1:30000 --host"),
            "{argv}"
        );
    }

    #[test]
    fn sweep_values_reach_the_command_line() {
        let mut v = load_str(
            "name: s\nsweep: {cps: [4096, 8192]}\nresources: {gpu_type: h100, gpus_per_node: 8, agg_nodes: 1, agg_workers: 1}\nfrontend: {type: sglang}\nbackend:\n  sglang_config:\n    aggregated: {chunked-prefill-size: \"{cps}\"}\n",
            "t.yaml",
            None,
            &ClusterConfig::default(),
        )
        .expect("valid");
        assert_eq!(v.len(), 2);
        let r = v.remove(1).recipe;
        assert_eq!(r.name, "s_cps8192");
        let plan = compile(&r, &Target::default()).expect("plan");
        let w = plan
            .steps
            .iter()
            .find(|s| s.kind == "start_worker")
            .expect("worker");
        assert!(w
            .command
            .as_ref()
            .expect("argv")
            .join(" ")
            .contains("--chunked-prefill-size 8192"));
    }
}
