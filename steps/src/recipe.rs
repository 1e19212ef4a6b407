//! The recipe schema (both srt-slurm eras), read from the positioned tree with precise diagnostics.

use crate::cluster::ClusterConfig;
use crate::diag::{join, Keys, Reader};
use crate::yaml::{Node, Pos, Value};

/// Which process coordinates prefill and decode workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrontendKind {
    /// SGLang's own `sglang_router` (the seed's router mode).
    SglangRouter,
    /// Dynamo frontends over NATS + etcd (srt-slurm's default).
    Dynamo,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Prefill,
    Decode,
    Aggregated,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Prefill => "prefill",
            Role::Decode => "decode",
            Role::Aggregated => "aggregated",
        }
    }
    /// Short form used in step ids (`agg-0`).
    pub fn id_prefix(self) -> &'static str {
        match self {
            Role::Prefill => "prefill",
            Role::Decode => "decode",
            Role::Aggregated => "agg",
        }
    }
}

/// One role's workers: how many, on how many nodes, with which SGLang flags and environment.
#[derive(Debug, Clone)]
pub struct RoleSpec {
    pub role: Role,
    pub nodes: u32,
    pub workers: u32,
    pub gpus_per_worker: u32,
    /// `sglang_config.<role>` flags in the order written.
    pub config: Vec<(String, Node)>,
    pub config_pos: Pos,
    pub env: Vec<(String, String)>,
}

impl RoleSpec {
    pub fn flag(&self, names: &[&str]) -> Option<&Node> {
        self.config
            .iter()
            .find(|(k, _)| names.contains(&k.as_str()))
            .map(|(_, v)| v)
    }
}

#[derive(Debug, Clone)]
pub struct Frontend {
    pub kind: FrontendKind,
    pub multiple: bool,
    pub num_additional: u32,
    /// `frontend.args` (or the seed's `sglang_router_args` / `dynamo_frontend_args`).
    pub args: Vec<(String, Node)>,
    pub env: Vec<(String, String)>,
    pub nginx_keepalive_timeout: String,
}

#[derive(Debug, Clone)]
pub struct BenchPoint {
    pub isl: u32,
    pub osl: u32,
    pub concurrencies: Vec<u32>,
    pub req_rate: Option<f64>,
}

#[derive(Debug, Clone)]
pub struct Benchmark {
    pub kind: String,
    pub points: Vec<BenchPoint>,
    pub random_range_ratio: f64,
    pub num_prompts_mult: u32,
    pub num_warmup_mult: u32,
    pub pos: Pos,
}

#[derive(Debug, Clone)]
pub struct Dynamo {
    pub install: bool,
    /// What `pip install` receives: `ai-dynamo==X`, a wheel path, or a git ref.
    pub packages: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct UserStep {
    pub name: String,
    pub run: String,
    /// `None` = every node.
    pub node: Option<u32>,
    pub after: Vec<String>,
    pub before: Vec<String>,
    pub service: bool,
    pub retries: Option<u32>,
    pub timeout_secs: Option<f64>,
    pub env: Vec<(String, String)>,
    pub pos: Pos,
    pub index: usize,
}

#[derive(Debug, Clone)]
pub struct PolicyOverride {
    pub kind: String,
    pub attempts: Option<u32>,
    pub backoff_secs: Option<f64>,
    pub timeout_secs: Option<f64>,
    pub retry_on_exit: Option<bool>,
    pub pos: Pos,
}

#[derive(Debug, Clone)]
pub struct Recipe {
    pub file: String,
    pub name: String,
    pub model_path: Option<String>,
    pub container: Option<String>,
    pub precision: Option<String>,
    pub gpu_type: Option<String>,
    pub gpus_per_node: u32,
    /// prefill+decode, or aggregated, or none (a recipe of only `steps:`).
    pub roles: Vec<RoleSpec>,
    pub frontend: Frontend,
    pub sglang_src_dir: Option<(String, Pos)>,
    pub benchmark: Option<Benchmark>,
    pub health_max_attempts: u32,
    pub health_interval_secs: u32,
    pub dynamo: Dynamo,
    pub infra_dedicated_node: bool,
    pub environment: Vec<(String, String)>,
    pub setup_script: Option<String>,
    pub container_mounts: Vec<(String, String)>,
    pub srun_options: Vec<(String, String)>,
    pub sbatch_directives: Vec<(String, String)>,
    pub slurm_account: Option<String>,
    pub slurm_partition: Option<String>,
    pub slurm_time_limit: String,
    pub steps: Vec<UserStep>,
    pub policies: Vec<PolicyOverride>,
    /// Keys kept but not acted on.
    pub ignored: Vec<String>,
    pub notes: Vec<String>,
    pub root_pos: Pos,
    pub resources_pos: Pos,
}

impl Recipe {
    pub fn is_disaggregated(&self) -> bool {
        self.roles.iter().any(|r| r.role == Role::Prefill)
    }
    pub fn role(&self, role: Role) -> Option<&RoleSpec> {
        self.roles.iter().find(|r| r.role == role)
    }
    pub fn total_nodes(&self) -> u32 {
        self.roles.iter().map(|r| r.nodes).sum::<u32>().max(1)
            + u32::from(self.infra_dedicated_node && self.frontend.kind == FrontendKind::Dynamo)
    }
}

const TOP: Keys = Keys {
    known: &[
        "name",
        "model",
        "resources",
        "backend",
        "frontend",
        "benchmark",
        "slurm",
        "health_check",
        "dynamo",
        "environment",
        "setup_script",
        "container_mounts",
        "extra_mount",
        "srun_options",
        "sbatch_directives",
        "steps",
        "policy",
        "infra",
    ],
    ignored: &[
        "profiling",
        "output",
        "observability",
        "telemetry",
        "identity",
        "reporting",
        "enable_config_dump",
    ],
};
const MODEL: Keys = Keys {
    known: &["path", "container", "precision"],
    ignored: &["stage_dir"],
};
const RESOURCES: Keys = Keys {
    known: &[
        "gpu_type",
        "gpus_per_node",
        "prefill_nodes",
        "prefill_workers",
        "decode_nodes",
        "decode_workers",
        "agg_nodes",
        "agg_workers",
        "gpus_per_prefill",
        "gpus_per_decode",
        "gpus_per_agg",
    ],
    ignored: &["spread_workers", "het_jobs"],
};
const BACKEND: Keys = Keys {
    known: &[
        "type",
        "use_sglang_router",
        "enable_multiple_frontends",
        "num_additional_frontends",
        "sglang_src_dir",
        "prefill_environment",
        "decode_environment",
        "aggregated_environment",
        "sglang_config",
        "gpu_type",
    ],
    ignored: &["kv_events_config", "mooncake_kv_store"],
};
const SGLANG_CONFIG: Keys = Keys {
    known: &["prefill", "decode", "aggregated"],
    ignored: &[],
};
const FRONTEND: Keys = Keys {
    known: &[
        "type",
        "use_sglang_router",
        "enable_multiple_frontends",
        "num_additional_frontends",
        "args",
        "env",
        "sglang_router_args",
        "dynamo_frontend_args",
        "nginx_keepalive_timeout",
    ],
    ignored: &[
        "nginx_container",
        "nginx_raise_ulimit",
        "nginx_session_affinity",
        "nginx_session_affinity_header",
        "dedicated_node",
        "ctx_router",
        "gen_router",
        "server_config_extra",
        "orchestrator_placement",
    ],
};
const BENCHMARK: Keys = Keys {
    known: &[
        "type",
        "isl",
        "osl",
        "concurrencies",
        "req_rate",
        "random_range_ratio",
        "num_prompts_mult",
        "num_warmup_mult",
        "sweep",
    ],
    ignored: &[
        "command",
        "itl_threshold_ms",
        "ttft_threshold_ms",
        "max_tokens",
        "mooncake_workload",
        "num_examples",
        "num_shots",
        "num_threads",
        "repeat",
        "temperature",
        "top_k",
        "top_p",
        "client_placement",
        "client_dedicated_node",
        "colocate_with_frontend",
        "dataset_name",
        "dataset_path",
        "trace_file",
        "reuse_http_connections",
        "container_image",
        "env",
        "max_context_length",
        "categories",
        "num_requests",
        "concurrency",
        "prefix_ratios",
        "custom_tokenizer",
        "use_chat_template",
        "export_node_metrics",
        "aiperf_args",
        "slow_down_factor",
        "goodput",
    ],
};
const BENCH_SWEEP: Keys = Keys {
    known: &["mode", "parameters"],
    ignored: &[],
};
const SLURM: Keys = Keys {
    known: &["account", "partition", "time_limit"],
    ignored: &[],
};
const HEALTH: Keys = Keys {
    known: &["max_attempts", "interval_seconds"],
    ignored: &[],
};
const DYNAMO: Keys = Keys {
    known: &[
        "install",
        "version",
        "hash",
        "top_of_tree",
        "wheel",
        "request_plane",
        "event_plane",
    ],
    ignored: &["cargo_patches"],
};
const INFRA: Keys = Keys {
    known: &["etcd_nats_dedicated_node"],
    ignored: &["nats_max_payload_mb"],
};
const STEP: Keys = Keys {
    known: &[
        "name", "run", "node", "after", "before", "service", "retries", "timeout", "env",
    ],
    ignored: &[],
};
const POLICY: Keys = Keys {
    known: &["attempts", "retries", "backoff", "timeout", "retry_on_exit"],
    ignored: &[],
};

const MAX_COUNT: i64 = 100_000;
const MAX_GPUS_PER_NODE: i64 = 1024;

/// Reads one (already override/sweep-expanded) recipe document.
pub fn read(doc: &Node, cluster: &ClusterConfig, r: &mut Reader) -> Option<Recipe> {
    if matches!(doc.value, Value::Null) {
        r.error(doc.pos, "", "the recipe is empty", Some("a recipe is a mapping with at least `name` and either `resources`+`backend` or `steps`".into()));
        return None;
    }
    if !r.check_keys(doc, "", &TOP) {
        return None;
    }
    let name = match doc.get("name") {
        Some(n) => r.string(Some(n), "name").filter(|s| !s.trim().is_empty()),
        None => {
            r.error(
                doc.pos,
                "name",
                "missing required key `name`",
                Some("add `name: my-benchmark` at the top level".into()),
            );
            None
        }
    };
    if let Some(n) = doc.get("name") {
        if name.is_none() && !matches!(n.value, Value::Map(_) | Value::Seq(_)) {
            r.error(n.pos, "name", "`name` must not be empty", None);
        }
    }
    let empty = Node::new(Value::Null, doc.pos);
    let section = |key: &str| doc.get(key).unwrap_or(&empty);

    // model (aliases resolved once, here)
    let model = section("model");
    r.check_keys(model, "model", &MODEL);
    let model_path = r
        .string(model.get("path"), "model.path")
        .map(|p| cluster.resolve_model(&p));
    let container = r
        .string(model.get("container"), "model.container")
        .map(|c| cluster.resolve_container(&c));
    let precision = r.string(model.get("precision"), "model.precision");

    // resources
    let res = section("resources");
    r.check_keys(res, "resources", &RESOURCES);
    let gpu_type = r.string(res.get("gpu_type"), "resources.gpu_type");
    let gpus_per_node = cluster
        .gpus_per_node
        .or_else(|| {
            r.int(
                res.get("gpus_per_node"),
                "resources.gpus_per_node",
                1,
                MAX_GPUS_PER_NODE,
            )
            .map(|v| v as u32)
        })
        .unwrap_or(4);
    let count = |r: &mut Reader, key: &str, min: i64| {
        r.int(res.get(key), &join("resources", key), min, MAX_COUNT)
            .map(|v| v as u32)
    };
    let prefill_nodes = count(r, "prefill_nodes", 0);
    let decode_nodes = count(r, "decode_nodes", 0);
    let prefill_workers = count(r, "prefill_workers", 1);
    let decode_workers = count(r, "decode_workers", 1);
    let agg_nodes = count(r, "agg_nodes", 1);
    let agg_workers = count(r, "agg_workers", 1);
    let gpus_per = |r: &mut Reader, key: &str| {
        r.int(
            res.get(key),
            &join("resources", key),
            1,
            MAX_GPUS_PER_NODE * MAX_COUNT,
        )
        .map(|v| v as u32)
    };
    let gpus_per_prefill = gpus_per(r, "gpus_per_prefill");
    let gpus_per_decode = gpus_per(r, "gpus_per_decode");
    let gpus_per_agg = gpus_per(r, "gpus_per_agg");

    // backend
    let backend = section("backend");
    r.check_keys(backend, "backend", &BACKEND);
    if let Some(t) = backend.get("type") {
        if let Some(kind) = r.string(Some(t), "backend.type") {
            if kind != "sglang" {
                r.error(
                    t.pos,
                    "backend.type",
                    format!("backend `{kind}` is not supported: srt-graph runs SGLang workers only"),
                    Some("use `type: sglang` (srt-slurm's trtllm, vllm and mocker backends are out of scope)".into()),
                );
            }
        }
    }
    let sgl = backend.get("sglang_config").unwrap_or(&empty);
    r.check_keys(sgl, "backend.sglang_config", &SGLANG_CONFIG);

    // frontend: `frontend.type` (current) or `use_sglang_router` under backend or frontend (seed)
    let front = section("frontend");
    r.check_keys(front, "frontend", &FRONTEND);
    let mut kind = FrontendKind::Dynamo;
    let seed_router = r
        .boolean(
            backend.get("use_sglang_router"),
            "backend.use_sglang_router",
        )
        .unwrap_or(false)
        | r.boolean(front.get("use_sglang_router"), "frontend.use_sglang_router")
            .unwrap_or(false);
    if seed_router {
        kind = FrontendKind::SglangRouter;
    }
    if let Some(t) = front.get("type") {
        match r.string(Some(t), "frontend.type").as_deref() {
            Some("sglang") | Some("sglang_router") => kind = FrontendKind::SglangRouter,
            Some("dynamo") => {
                if seed_router {
                    r.error(
                        t.pos,
                        "frontend.type",
                        "`frontend.type: dynamo` contradicts `use_sglang_router: true`",
                        Some("keep one of them".into()),
                    );
                }
                kind = FrontendKind::Dynamo;
            }
            Some(other) => r.error(
                t.pos,
                "frontend.type",
                format!("frontend `{other}` is not supported"),
                Some(
                    "valid: `sglang` (SGLang router) or `dynamo` (Dynamo frontends, the default)"
                        .into(),
                ),
            ),
            None => {}
        }
    }
    let pick_bool = |r: &mut Reader, key: &str| {
        r.boolean(front.get(key), &join("frontend", key))
            .or_else(|| r.boolean(backend.get(key), &join("backend", key)))
    };
    let multiple = pick_bool(r, "enable_multiple_frontends").unwrap_or(true);
    let num_additional = r
        .int(
            front.get("num_additional_frontends"),
            "frontend.num_additional_frontends",
            0,
            4096,
        )
        .or_else(|| {
            r.int(
                backend.get("num_additional_frontends"),
                "backend.num_additional_frontends",
                0,
                4096,
            )
        })
        .unwrap_or(9) as u32;
    let mut args = flag_map(r, front.get("args"), "frontend.args");
    let legacy = match kind {
        FrontendKind::SglangRouter => "sglang_router_args",
        FrontendKind::Dynamo => "dynamo_frontend_args",
    };
    args.extend(flag_map(r, front.get(legacy), &join("frontend", legacy)));
    let frontend = Frontend {
        kind,
        multiple,
        num_additional,
        args,
        env: r.string_map(front.get("env"), "frontend.env"),
        nginx_keepalive_timeout: r
            .string(
                front.get("nginx_keepalive_timeout"),
                "frontend.nginx_keepalive_timeout",
            )
            .unwrap_or_else(|| "600s".into()),
    };

    // roles
    let mut roles = Vec::new();
    let disagg = prefill_nodes.is_some() || decode_nodes.is_some();
    let agg = agg_nodes.is_some() || agg_workers.is_some();
    let res_pos = doc.get("resources").map_or(doc.pos, |n| n.pos);
    if disagg && agg {
        r.error(
            res_pos,
            "resources",
            "both disaggregated (prefill_/decode_nodes) and aggregated (agg_nodes/agg_workers) resources are set",
            Some("a recipe is either disaggregated or aggregated; remove one set".into()),
        );
    } else if disagg && prefill_nodes.unwrap_or(0) + decode_nodes.unwrap_or(0) == 0 {
        r.error(
            res_pos,
            "resources.prefill_nodes",
            "prefill_nodes and decode_nodes are both 0: there is nowhere to run",
            Some("give prefill (or decode) at least one node".into()),
        );
    } else if disagg {
        if sgl.get("aggregated").is_some() {
            r.error(
                sgl.get("aggregated").map_or(sgl.pos, |n| n.pos),
                "backend.sglang_config.aggregated",
                "an `aggregated` section in a disaggregated recipe (prefill_nodes/decode_nodes are set)",
                Some("use `prefill:` and `decode:` sections, or switch resources to agg_nodes/agg_workers".into()),
            );
        }
        for (role, nodes, workers, gpw, env_key) in [
            (
                Role::Prefill,
                prefill_nodes,
                prefill_workers,
                gpus_per_prefill,
                "prefill_environment",
            ),
            (
                Role::Decode,
                decode_nodes,
                decode_workers,
                gpus_per_decode,
                "decode_environment",
            ),
        ] {
            let Some(nodes) = nodes else {
                r.error(
                    res_pos,
                    &join("resources", &format!("{}_nodes", role.as_str())),
                    format!("missing `{}_nodes`: a disaggregated recipe needs both prefill and decode nodes", role.as_str()),
                    None,
                );
                continue;
            };
            let section_node = sgl.get(role.as_str());
            if section_node.is_none() && !sgl.as_map().is_none_or(|m| m.is_empty()) {
                r.error(
                    sgl.pos,
                    &join("backend.sglang_config", role.as_str()),
                    format!("missing `{}` section: a disaggregated recipe configures both prefill and decode", role.as_str()),
                    None,
                );
            }
            if let Some(spec) = role_spec(
                r,
                role,
                nodes,
                workers.unwrap_or(1),
                gpw,
                gpus_per_node,
                section_node,
                backend.get(env_key),
                env_key,
                res,
            ) {
                roles.push(spec);
            }
        }
    } else if agg {
        if let Some(d) = sgl.get("decode") {
            r.error(
                d.pos,
                "backend.sglang_config.decode",
                "a `decode` section in an aggregated recipe",
                Some("aggregated workers read `aggregated:` (or `prefill:`)".into()),
            );
        }
        let section_node = sgl.get("aggregated").or_else(|| sgl.get("prefill"));
        let nodes = agg_nodes.unwrap_or(1);
        if let Some(spec) = role_spec(
            r,
            Role::Aggregated,
            nodes,
            agg_workers.unwrap_or(1),
            gpus_per_agg,
            gpus_per_node,
            section_node,
            backend.get("aggregated_environment"),
            "aggregated_environment",
            res,
        ) {
            roles.push(spec);
        }
    }

    // bootstrap port agreement (the seed's most common router failure)
    if let (Some(p), Some(d)) = (
        roles.iter().find(|s| s.role == Role::Prefill),
        roles.iter().find(|s| s.role == Role::Decode),
    ) {
        let key = ["disaggregation-bootstrap-port"];
        let pp = p.flag(&key);
        let dp = d.flag(&key);
        let val = |n: Option<&Node>| {
            n.and_then(Node::scalar_text)
                .unwrap_or_else(|| "30001".into())
        };
        if (pp.is_some() || dp.is_some()) && val(pp) != val(dp) {
            let (at, path) = match dp {
                Some(n) => (
                    n.pos,
                    "backend.sglang_config.decode.disaggregation-bootstrap-port",
                ),
                None => (
                    pp.map_or(p.config_pos, |n| n.pos),
                    "backend.sglang_config.prefill.disaggregation-bootstrap-port",
                ),
            };
            r.error(
                at,
                path,
                format!(
                    "disaggregation bootstrap port mismatch: prefill uses {}{}, decode uses {}{}",
                    val(pp),
                    if pp.is_none() { " (default)" } else { "" },
                    val(dp),
                    if dp.is_none() { " (default)" } else { "" },
                ),
                Some("prefill and decode must name the same `disaggregation-bootstrap-port` (default 30001); the router hands decode the prefill's bootstrap port".into()),
            );
        }
    }

    let sglang_src_dir = backend.get("sglang_src_dir").and_then(|n| {
        r.string(Some(n), "backend.sglang_src_dir")
            .filter(|s| !s.trim().is_empty())
            .map(|s| (s, n.pos))
    });
    if let Some((_, pos)) = &sglang_src_dir {
        if kind != FrontendKind::SglangRouter {
            r.error(
                *pos,
                "backend.sglang_src_dir",
                "`sglang_src_dir` only works in SGLang router mode",
                Some("set `backend.use_sglang_router: true` (or `frontend.type: sglang`), or remove `sglang_src_dir`".into()),
            );
        }
    }

    let benchmark = read_benchmark(r, doc.get("benchmark"));

    let slurm = section("slurm");
    r.check_keys(slurm, "slurm", &SLURM);
    let slurm_account = r
        .string(slurm.get("account"), "slurm.account")
        .or_else(|| cluster.default_account.clone());
    let slurm_partition = r
        .string(slurm.get("partition"), "slurm.partition")
        .or_else(|| cluster.default_partition.clone());
    let slurm_time_limit = r
        .string(slurm.get("time_limit"), "slurm.time_limit")
        .or_else(|| cluster.default_time_limit.clone())
        .unwrap_or_else(|| "04:00:00".into());

    let health = section("health_check");
    r.check_keys(health, "health_check", &HEALTH);
    let health_max_attempts = r
        .int(
            health.get("max_attempts"),
            "health_check.max_attempts",
            1,
            1_000_000,
        )
        .unwrap_or(180) as u32;
    let health_interval_secs = r
        .int(
            health.get("interval_seconds"),
            "health_check.interval_seconds",
            1,
            3600,
        )
        .unwrap_or(10) as u32;

    let dyn_node = section("dynamo");
    r.check_keys(dyn_node, "dynamo", &DYNAMO);
    let install = r
        .boolean(dyn_node.get("install"), "dynamo.install")
        .unwrap_or(true);
    let version = r
        .string(dyn_node.get("version"), "dynamo.version")
        .unwrap_or_else(|| "0.8.0".into());
    let hash = r.string(dyn_node.get("hash"), "dynamo.hash");
    let wheel = r.string(dyn_node.get("wheel"), "dynamo.wheel");
    let top_of_tree = r
        .boolean(dyn_node.get("top_of_tree"), "dynamo.top_of_tree")
        .unwrap_or(false);
    let sources =
        usize::from(hash.is_some()) + usize::from(wheel.is_some()) + usize::from(top_of_tree);
    if sources > 1 {
        r.error(
            dyn_node.pos,
            "dynamo",
            "set at most one of `hash`, `wheel`, `top_of_tree`",
            None,
        );
    }
    for key in ["request_plane", "event_plane"] {
        if let Some(v) = r.string(dyn_node.get(key), &join("dynamo", key)) {
            let valid: &[&str] = if key == "request_plane" {
                &["nats", "tcp", "http"]
            } else {
                &["nats", "zmq"]
            };
            if !valid.contains(&v.as_str()) {
                r.error(
                    dyn_node.get(key).map_or(dyn_node.pos, |n| n.pos),
                    &join("dynamo", key),
                    format!("`{v}` is not a valid {key}"),
                    Some(format!("valid: {}", valid.join(", "))),
                );
            }
        }
    }
    let packages = if let Some(w) = wheel {
        vec![w]
    } else if let Some(h) = hash {
        vec![format!("git+https://github.com/ai-dynamo/dynamo.git@{h}")]
    } else if top_of_tree {
        vec!["git+https://github.com/ai-dynamo/dynamo.git".into()]
    } else {
        vec![
            format!("ai-dynamo-runtime=={version}"),
            format!("ai-dynamo=={version}"),
        ]
    };

    let infra = section("infra");
    r.check_keys(infra, "infra", &INFRA);
    let infra_dedicated_node = r
        .boolean(
            infra.get("etcd_nats_dedicated_node"),
            "infra.etcd_nats_dedicated_node",
        )
        .unwrap_or(false);

    let environment = r.string_map(doc.get("environment"), "environment");
    let setup_script = r.string(doc.get("setup_script"), "setup_script");
    let mut container_mounts = r.string_map(doc.get("container_mounts"), "container_mounts");
    for (i, m) in r
        .string_list(doc.get("extra_mount"), "extra_mount")
        .into_iter()
        .enumerate()
    {
        match m.split_once(':') {
            Some((h, c)) if !h.is_empty() && !c.is_empty() && !c.contains(':') => {
                container_mounts.push((h.into(), c.into()))
            }
            _ => {
                let pos = doc.get("extra_mount").map_or(doc.pos, |n| match &n.value {
                    Value::Seq(items) => items.get(i).map_or(n.pos, |x| x.pos),
                    _ => n.pos,
                });
                r.error(
                    pos,
                    &format!("extra_mount[{i}]"),
                    format!("`{m}` is not `host_path:container_path`"),
                    None,
                );
            }
        }
    }
    let srun_options = r.string_map(doc.get("srun_options"), "srun_options");
    let sbatch_directives = r.string_map(doc.get("sbatch_directives"), "sbatch_directives");
    let steps = read_steps(r, doc.get("steps"));
    let policies = read_policies(r, doc.get("policy"));

    if roles.is_empty() && steps.is_empty() && r.diagnostics.is_empty() {
        r.error(
            doc.pos,
            "resources",
            "nothing to run: the recipe has neither workers (`resources` with prefill/decode or agg nodes) nor `steps`",
            Some("add `resources:` and `backend:` sections, or a `steps:` list".into()),
        );
    }

    let mut notes = Vec::new();
    if let Some(b) = &benchmark {
        if b.kind != "sa-bench" && b.kind != "manual" {
            notes.push(format!(
                "benchmark type `{}` is not run by srt-graph (only sa-bench); no benchmark step",
                b.kind
            ));
        }
    }
    Some(Recipe {
        file: r.file.clone(),
        name: name?,
        model_path,
        container,
        precision,
        gpu_type,
        gpus_per_node,
        roles,
        frontend,
        sglang_src_dir,
        benchmark,
        health_max_attempts,
        health_interval_secs,
        dynamo: Dynamo { install, packages },
        infra_dedicated_node,
        environment,
        setup_script,
        container_mounts,
        srun_options,
        sbatch_directives,
        slurm_account,
        slurm_partition,
        slurm_time_limit,
        steps,
        policies,
        ignored: std::mem::take(&mut r.ignored),
        notes,
        root_pos: doc.pos,
        resources_pos: res_pos,
    })
}

/// A flag map (`sglang_config.<role>`, `frontend.args`): keys are flag names, values scalars or lists.
fn flag_map(r: &mut Reader, node: Option<&Node>, path: &str) -> Vec<(String, Node)> {
    let Some(node) = node else { return Vec::new() };
    match &node.value {
        Value::Null => Vec::new(),
        Value::Map(entries) => entries
            .iter()
            .map(|e| (e.key.clone(), e.value.clone()))
            .collect(),
        _ => {
            r.error(
                node.pos,
                path,
                format!(
                    "expected a mapping of flag names to values, found {}",
                    node.describe()
                ),
                Some("e.g. `tensor-parallel-size: 4`".into()),
            );
            Vec::new()
        }
    }
}

/// Tensor-parallel size as srt-slurm reads it (first of these spellings that is an integer).
const TP_KEYS: &[&str] = &[
    "tensor-parallel-size",
    "tensor_parallel_size",
    "tp-size",
    "tp_size",
    "tp",
];

#[allow(clippy::too_many_arguments)]
fn role_spec(
    r: &mut Reader,
    role: Role,
    nodes: u32,
    workers: u32,
    gpus_per_worker: Option<u32>,
    gpus_per_node: u32,
    section: Option<&Node>,
    env: Option<&Node>,
    env_key: &str,
    res: &Node,
) -> Option<RoleSpec> {
    let path = join("backend.sglang_config", role.as_str());
    let mut config = flag_map(r, section, &path);
    // srt-slurm refuses snake_case flags; SGLang's argparse only knows the kebab-case spelling, so
    // normalise (a seed example writes `served_model_name`) unless both spellings are present.
    for i in 0..config.len() {
        let k = config[i].0.clone();
        if k.contains('_') {
            let kebab = k.replace('_', "-");
            if config.iter().any(|(o, _)| o == &kebab) {
                r.error(
                    config[i].1.pos,
                    &join(&path, &k),
                    format!("`{k}` and `{kebab}` are the same SGLang flag"),
                    Some("keep one".into()),
                );
            } else {
                config[i].0 = kebab;
            }
        }
    }
    for (k, v) in &config {
        if matches!(k.as_str(), "port" | "disaggregation-bootstrap-port") {
            let valid = match &v.value {
                Value::Int(p) => (1..=65535).contains(p),
                _ => false,
            };
            if !valid {
                r.error(
                    v.pos,
                    &join(&path, k),
                    format!("{} is not a TCP port", v.describe()),
                    Some("a port is an integer from 1 to 65535".into()),
                );
            }
        }
        if matches!(v.value, Value::Map(_)) {
            r.error(
                v.pos,
                &join(&path, k),
                "a flag value cannot be a mapping",
                Some("write it as a JSON string: '{\"key\": 1}'".into()),
            );
        }
    }
    let total_gpus = u64::from(nodes) * u64::from(gpus_per_node);
    let sec_pos = section.map_or(Pos { line: 1, col: 1 }, |s| s.pos);
    let tp_value = config
        .iter()
        .find(|(k, _)| TP_KEYS.contains(&k.as_str()))
        .and_then(|(_, n)| match &n.value {
            Value::Int(i) => u32::try_from(*i).ok(),
            Value::Str(s) => s.parse().ok(),
            _ => None,
        });
    let gpus_key = format!("resources.gpus_per_{}", role.id_prefix());
    // Blame the resources key that decided the GPUs per worker.
    let res_pos = res
        .get(&format!("gpus_per_{}", role.id_prefix()))
        .or_else(|| res.get(&format!("{}_workers", role.id_prefix())))
        .map_or(res.pos, |n| n.pos);
    let gpw = match gpus_per_worker {
        Some(g) => g,
        // No nodes of its own: the workers share other roles' nodes, sized by their TP.
        None if nodes == 0 => match tp_value {
            Some(tp) if tp >= 1 => tp,
            _ => {
                r.error(
                    res_pos,
                    &gpus_key,
                    format!(
                        "{}_nodes is 0, so the GPUs per {} worker cannot be derived",
                        role.id_prefix(),
                        role.as_str()
                    ),
                    Some(format!("set `{gpus_key}` (or tensor-parallel-size)")),
                );
                return None;
            }
        },
        // srt-slurm: a worker gets nodes // workers whole nodes, or a share of a node when workers > nodes.
        None if workers <= nodes => (nodes / workers) * gpus_per_node,
        None => ((total_gpus / u64::from(workers)) as u32).max(1),
    };
    if gpw == 0 {
        r.error(res_pos, &gpus_key, "a worker needs at least one GPU", None);
        return None;
    }
    if nodes > 0 && u64::from(gpw) * u64::from(workers) > total_gpus {
        r.error(
            res_pos,
            &gpus_key,
            format!("{workers} workers × {gpw} GPUs need {} GPUs, but {nodes} node(s) × {gpus_per_node} have {total_gpus}", u64::from(gpw) * u64::from(workers)),
            None,
        );
        return None;
    }
    if gpw > gpus_per_node && gpw % gpus_per_node != 0 {
        r.error(
            res_pos,
            &gpus_key,
            format!("a worker of {gpw} GPUs does not fill whole {gpus_per_node}-GPU nodes"),
            Some(format!(
                "use a multiple of {gpus_per_node}, or at most {gpus_per_node}"
            )),
        );
        return None;
    }
    if let Some((key, tp_node)) = config.iter().find(|(k, _)| TP_KEYS.contains(&k.as_str())) {
        // Templated values (`"{tp}"`) are skipped, as srt-slurm does.
        if let Some(tp) = match &tp_node.value {
            Value::Int(i) => Some(*i),
            Value::Str(s) => s.parse().ok(),
            _ => None,
        } {
            if tp < 1 {
                r.error(
                    tp_node.pos,
                    &join(&path, key),
                    format!("tensor parallel size {tp} must be at least 1"),
                    None,
                );
            } else if nodes > 0 && tp as u64 * u64::from(workers) > total_gpus {
                r.error(
                    tp_node.pos,
                    &join(&path, key),
                    format!("TP {tp} × {workers} {} worker(s) = {} GPUs, but {nodes} node(s) × {gpus_per_node} GPUs = {total_gpus}", role.as_str(), tp as u64 * u64::from(workers)),
                    Some("srt-slurm's rule: tensor-parallel-size × workers ≤ nodes × gpus_per_node".into()),
                );
            } else if tp as u64 > u64::from(gpw) {
                r.error(
                    tp_node.pos,
                    &join(&path, key),
                    format!(
                        "TP {tp} does not fit in one {} worker of {gpw} GPUs",
                        role.as_str()
                    ),
                    Some(format!(
                        "srt-slurm's rule: tensor-parallel-size ≤ GPUs per worker ({gpw})"
                    )),
                );
            }
        }
    }
    Some(RoleSpec {
        role,
        nodes,
        workers,
        gpus_per_worker: gpw,
        config,
        config_pos: sec_pos,
        env: r.string_map(env, &join("backend", env_key)),
    })
}

fn read_benchmark(r: &mut Reader, node: Option<&Node>) -> Option<Benchmark> {
    let node = node?;
    if !r.check_keys(node, "benchmark", &BENCHMARK) || matches!(node.value, Value::Null) {
        return None;
    }
    let kind = r
        .string(node.get("type"), "benchmark.type")
        .unwrap_or_else(|| "manual".into());
    let sa_bench = kind == "sa-bench";
    let base = read_point(r, node, "benchmark", sa_bench);
    let mut points = Vec::new();
    if let Some(sweep) = node.get("sweep") {
        if r.check_keys(sweep, "benchmark.sweep", &BENCH_SWEEP) {
            let mode = r
                .string(sweep.get("mode"), "benchmark.sweep.mode")
                .unwrap_or_else(|| "zip".into());
            if mode != "zip" && mode != "grid" {
                r.error(
                    sweep.get("mode").map_or(sweep.pos, |n| n.pos),
                    "benchmark.sweep.mode",
                    format!("`{mode}` is not a sweep mode"),
                    Some("valid: zip, grid".into()),
                );
            }
            let params: Vec<(String, Vec<Node>)> = sweep
                .get("parameters")
                .and_then(Node::as_map)
                .map(|m| {
                    m.iter()
                        .map(|e| {
                            let vals = match &e.value.value {
                                Value::Seq(items) => items.clone(),
                                _ => vec![e.value.clone()],
                            };
                            (e.key.clone(), vals)
                        })
                        .collect()
                })
                .unwrap_or_default();
            let combos: Vec<Vec<(String, Node)>> = if mode == "grid" {
                let mut acc: Vec<Vec<(String, Node)>> = vec![vec![]];
                for (k, vals) in &params {
                    acc = acc
                        .into_iter()
                        .flat_map(|c| {
                            vals.iter().map(move |v| {
                                let mut c = c.clone();
                                c.push((k.clone(), v.clone()));
                                c
                            })
                        })
                        .collect();
                    if acc.len() > crate::variants::MAX_VARIANTS {
                        r.error(
                            sweep.pos,
                            "benchmark.sweep",
                            "benchmark sweep expands to too many points",
                            None,
                        );
                        return None;
                    }
                }
                acc
            } else {
                let n = params.iter().map(|(_, v)| v.len()).max().unwrap_or(0);
                if let Some((k, v)) = params.iter().find(|(_, v)| v.len() != n) {
                    r.error(
                        sweep.pos,
                        &format!("benchmark.sweep.parameters.{k}"),
                        format!(
                            "zip sweep lists must have equal length ({} vs {n})",
                            v.len()
                        ),
                        None,
                    );
                    return None;
                }
                (0..n)
                    .map(|i| {
                        params
                            .iter()
                            .map(|(k, v)| (k.clone(), v[i].clone()))
                            .collect()
                    })
                    .collect()
            };
            for combo in combos {
                let mut doc = node.clone();
                if let Value::Map(entries) = &mut doc.value {
                    entries.retain(|e| e.key != "sweep");
                    for (k, v) in combo {
                        match entries.iter_mut().find(|e| e.key == k) {
                            Some(e) => e.value = v,
                            None => entries.push(crate::yaml::Entry {
                                key: k,
                                key_pos: v.pos,
                                value: v,
                            }),
                        }
                    }
                }
                if let Some(p) = read_point(r, &doc, "benchmark.sweep", sa_bench) {
                    points.push(p);
                }
            }
        }
    } else if let Some(p) = base {
        points.push(p);
    }
    let ratio_node = node.get("random_range_ratio");
    let random_range_ratio = match ratio_node.map(|n| &n.value) {
        None | Some(Value::Null) => 0.8,
        Some(Value::Float(x)) if (0.0..=1.0).contains(x) => *x,
        Some(Value::Int(i)) if (0..=1).contains(i) => *i as f64,
        Some(_) => {
            let n = ratio_node.unwrap_or(node);
            r.error(
                n.pos,
                "benchmark.random_range_ratio",
                format!("expected a number from 0 to 1, found {}", n.describe()),
                None,
            );
            0.8
        }
    };
    Some(Benchmark {
        kind,
        points,
        random_range_ratio,
        num_prompts_mult: r
            .int(
                node.get("num_prompts_mult"),
                "benchmark.num_prompts_mult",
                1,
                10_000,
            )
            .unwrap_or(5) as u32,
        num_warmup_mult: r
            .int(
                node.get("num_warmup_mult"),
                "benchmark.num_warmup_mult",
                0,
                10_000,
            )
            .unwrap_or(1) as u32,
        pos: node.pos,
    })
}

fn read_point(r: &mut Reader, node: &Node, path: &str, required: bool) -> Option<BenchPoint> {
    let isl = r.int(node.get("isl"), &join(path, "isl"), 1, 10_000_000);
    let osl = r.int(node.get("osl"), &join(path, "osl"), 1, 10_000_000);
    let conc = node.get("concurrencies");
    let mut concurrencies = Vec::new();
    let cpath = join(path, "concurrencies");
    if let Some(c) = conc {
        let items: Vec<(String, Pos)> = match &c.value {
            Value::Str(s) => s
                .split('x')
                .map(|p| (p.trim().to_string(), c.pos))
                .collect(),
            Value::Int(i) => vec![(i.to_string(), c.pos)],
            Value::Seq(items) => items
                .iter()
                .map(|n| (n.scalar_text().unwrap_or_default(), n.pos))
                .collect(),
            _ => {
                r.error(
                    c.pos,
                    &cpath,
                    format!(
                        "expected \"AxBxC\" or a list of integers, found {}",
                        c.describe()
                    ),
                    None,
                );
                vec![]
            }
        };
        for (text, pos) in items {
            match text.parse::<u32>() {
                Ok(v) if (1..=1_000_000).contains(&v) => concurrencies.push(v),
                _ => r.error(
                    pos,
                    &cpath,
                    format!("`{text}` is not a concurrency"),
                    Some(
                        "concurrencies are positive integers joined by `x`, e.g. \"4x16x64\""
                            .into(),
                    ),
                ),
            }
        }
    }
    let req_rate = match node.get("req_rate") {
        None => None,
        Some(n) => {
            match &n.value {
                Value::Null => None,
                Value::Str(s) if s == "inf" => None,
                Value::Float(x) if x.is_infinite() && *x > 0.0 => None,
                Value::Int(i) if *i > 0 => Some(*i as f64),
                Value::Float(x) if *x > 0.0 && x.is_finite() => Some(*x),
                Value::Str(s) if s.parse::<f64>().is_ok_and(|x| x > 0.0 && x.is_finite()) => {
                    s.parse().ok()
                }
                _ => {
                    r.error(n.pos, &join(path, "req_rate"), format!("expected \"inf\" or a positive number of requests per second, found {}", n.describe()), None);
                    None
                }
            }
        }
    };
    if !required {
        return None;
    }
    let missing: Vec<&str> = [
        ("isl", isl.is_none()),
        ("osl", osl.is_none()),
        ("concurrencies", concurrencies.is_empty() && conc.is_none()),
    ]
    .iter()
    .filter(|(_, m)| *m)
    .map(|(k, _)| *k)
    .collect();
    if !missing.is_empty() {
        if node.get("isl").is_none() || node.get("osl").is_none() || conc.is_none() {
            r.error(
                node.pos,
                path,
                format!("sa-bench needs {}", missing.join(", ")),
                Some("e.g. isl: 1024, osl: 128, concurrencies: \"4x16\"".into()),
            );
        }
        return None;
    }
    Some(BenchPoint {
        isl: isl? as u32,
        osl: osl? as u32,
        concurrencies,
        req_rate,
    })
}

fn read_steps(r: &mut Reader, node: Option<&Node>) -> Vec<UserStep> {
    let Some(node) = node else { return Vec::new() };
    let items = match &node.value {
        Value::Null => return Vec::new(),
        Value::Seq(items) => items,
        _ => {
            r.error(
                node.pos,
                "steps",
                format!("expected a list of steps, found {}", node.describe()),
                Some("e.g. steps: [{name: a, run: \"echo hi\"}]".into()),
            );
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let path = format!("steps[{i}]");
        if !matches!(item.value, Value::Map(_)) {
            r.error(
                item.pos,
                &path,
                format!(
                    "expected a mapping with `name` and `run`, found {}",
                    item.describe()
                ),
                None,
            );
            continue;
        }
        r.check_keys(item, &path, &STEP);
        let name = r.string(item.get("name"), &join(&path, "name"));
        let run = r.string(item.get("run"), &join(&path, "run"));
        if name.is_none() {
            r.error(
                item.pos,
                &join(&path, "name"),
                "missing `name` (the step's id)",
                None,
            );
        }
        if run.is_none() {
            r.error(
                item.pos,
                &join(&path, "run"),
                "missing `run` (the shell command)",
                None,
            );
        }
        if let Some(n) = &name {
            if n.is_empty() || n.chars().any(|c| c.is_whitespace() || c.is_control()) {
                r.error(
                    item.get("name").map_or(item.pos, |x| x.pos),
                    &join(&path, "name"),
                    format!("step name {n:?} must be non-empty and contain no spaces"),
                    None,
                );
            }
        }
        let node_sel = match item.get("node") {
            None => Some(0),
            Some(n) if n.value == Value::Str("all".into()) => None,
            Some(n) => r
                .int(Some(n), &join(&path, "node"), 0, MAX_COUNT)
                .map(|v| v as u32)
                .or(Some(0)),
        };
        let timeout_secs = item.get("timeout").and_then(|t| {
            let text = t.scalar_text().unwrap_or_default();
            let parsed = srt_graph_engine::policy::parse_duration(&text);
            if parsed.is_none() {
                r.error(
                    t.pos,
                    &join(&path, "timeout"),
                    format!("`{text}` is not a duration"),
                    Some("e.g. 90s, 500ms, 30m, 2h".into()),
                );
            }
            parsed
        });
        let step = UserStep {
            name: name.unwrap_or_default(),
            run: run.unwrap_or_default(),
            node: node_sel,
            after: r.string_list(item.get("after"), &join(&path, "after")),
            before: r.string_list(item.get("before"), &join(&path, "before")),
            service: r
                .boolean(item.get("service"), &join(&path, "service"))
                .unwrap_or(false),
            retries: r
                .int(item.get("retries"), &join(&path, "retries"), 0, 100)
                .map(|v| v as u32),
            timeout_secs,
            env: r.string_map(item.get("env"), &join(&path, "env")),
            pos: item.pos,
            index: i,
        };
        if let Some(prev) = out
            .iter()
            .find(|s: &&UserStep| s.name == step.name && !step.name.is_empty())
        {
            r.error(
                item.get("name").map_or(item.pos, |x| x.pos),
                &join(&path, "name"),
                format!(
                    "step name `{}` is already used by the step at line {}",
                    step.name, prev.pos.line
                ),
                None,
            );
        }
        out.push(step);
    }
    out
}

fn read_policies(r: &mut Reader, node: Option<&Node>) -> Vec<PolicyOverride> {
    let Some(node) = node else { return Vec::new() };
    let Some(entries) = node.as_map() else {
        if !matches!(node.value, Value::Null) {
            r.error(
                node.pos,
                "policy",
                format!(
                    "expected a mapping of step kinds to policies, found {}",
                    node.describe()
                ),
                Some("e.g. policy: {pip_install: {attempts: 5, backoff: 2s}}".into()),
            );
        }
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in entries {
        let path = join("policy", &e.key);
        if !crate::kinds::names().any(|k| k == e.key) {
            let help = crate::diag::did_you_mean(&e.key, crate::kinds::names())
                .map(|k| format!("did you mean `{k}`?"))
                .unwrap_or_else(|| {
                    format!(
                        "step kinds: {}",
                        crate::kinds::names().collect::<Vec<_>>().join(", ")
                    )
                });
            r.error(
                e.key_pos,
                &path,
                format!("`{}` is not a step kind", e.key),
                Some(help),
            );
            continue;
        }
        r.check_keys(&e.value, &path, &POLICY);
        let dur = |r: &mut Reader, key: &str| {
            e.value.get(key).and_then(|t| {
                let text = t.scalar_text().unwrap_or_default();
                let v = srt_graph_engine::policy::parse_duration(&text);
                if v.is_none() {
                    r.error(
                        t.pos,
                        &join(&path, key),
                        format!("`{text}` is not a duration"),
                        Some("e.g. 90s, 500ms, 30m, 2h".into()),
                    );
                }
                v
            })
        };
        let attempts = r
            .int(e.value.get("attempts"), &join(&path, "attempts"), 1, 100)
            .or_else(|| {
                r.int(e.value.get("retries"), &join(&path, "retries"), 0, 99)
                    .map(|v| v + 1)
            })
            .map(|v| v as u32);
        out.push(PolicyOverride {
            kind: e.key.clone(),
            attempts,
            backoff_secs: dur(r, "backoff"),
            timeout_secs: dur(r, "timeout"),
            retry_on_exit: r.boolean(e.value.get("retry_on_exit"), &join(&path, "retry_on_exit")),
            pos: e.value.pos,
        });
    }
    out
}
