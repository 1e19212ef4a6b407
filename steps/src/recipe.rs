//! The recipe as srt-graph understands it (both srt-slurm eras), once read and validated (`read`): plain
//! data the compiler and the plug-ins work from.

use crate::yaml::{Node, Pos};

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
    /// The role as engines take it (`--disaggregation-mode`, srtctl's worker modes): `agg` for aggregated.
    pub fn engine_mode(self) -> &'static str {
        match self {
            Role::Prefill => "prefill",
            Role::Decode => "decode",
            Role::Aggregated => "agg",
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
    /// The role's engine flags (`backend.sglang_config.<role>`) in the order written.
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
    /// The registered frontend type (`frontends::find`): `sglang` (SGLang's router) or `dynamo`.
    pub kind: &'static str,
    /// Whether the deployment runs on Dynamo's runtime (NATS + etcd discovery, `dynamo.*` workers).
    pub dynamo: bool,
    pub multiple: bool,
    pub num_additional: u32,
    /// `frontend.args` (or the seed's `sglang_router_args` / `dynamo_frontend_args`).
    pub args: Vec<(String, Node)>,
    pub env: Vec<(String, String)>,
    pub nginx_keepalive_timeout: String,
    /// The image nginx runs in (alias resolved); unset: nginx on the host (srtctl's default image,
    /// `nginx:1.27.4`, is a registry pull, and every node runs nginx as well from its packages).
    pub nginx_container: Option<String>,
    /// srtctl's `nginx_raise_ulimit`: nginx starts under `ulimit -n 1048576` with `worker_rlimit_nofile`
    /// to match, for clusters whose default limit is lower than the benchmark's connections need.
    pub nginx_raise_ulimit: bool,
    /// Every key of the section as written (`ctx_router`, `server_config_extra`… for `trtllm_serve`).
    pub options: Vec<(String, Node)>,
}

#[derive(Debug, Clone, PartialEq)]
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
    /// A point with a larger share of failed requests is invalid (srt-graph's; default 5).
    pub max_failed_percent: f64,
    /// Every key of the section as written, for the types that read more than sa-bench's knobs.
    pub options: Vec<(String, Node)>,
    pub pos: Pos,
}

impl Benchmark {
    pub fn option(&self, key: &str) -> Option<&Node> {
        self.options.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
}

#[derive(Debug, Clone)]
pub struct Dynamo {
    pub install: bool,
    /// What `pip install` receives: `ai-dynamo==X` (and its runtime), or a git ref.
    pub packages: Vec<String>,
    /// `dynamo.request_plane` (srtctl's default: `tcp`).
    pub request_plane: String,
    /// A commit or the top of the tree (a git source, which only a real run can build).
    pub from_git: bool,
    /// `dynamo.wheel`: a version from the site's staged wheel index (`DYNAMO_INDEX_URL`), not PyPI.
    pub staged_wheel: bool,
    /// `dynamo.version` as written.
    pub version: Option<String>,
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
    /// Runs in the workers' container when the run has one (srt-graph's own key).
    pub container: bool,
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

/// `identity:`: what the recipe declares it runs, checked after the health gate.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Identity {
    pub model_repo: Option<String>,
    pub model_revision: Option<String>,
    pub image: Option<String>,
    pub frameworks: Vec<(String, String)>,
}

/// Which profiler `profiling.type` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProfilingKind {
    /// The workers' `/start_profile` (PyTorch profiler) in each role's step window.
    Torch,
    /// Workers under `nsys profile`, captured in the step window (cudaProfilerApi).
    Nsys,
    /// Workers under `nsys profile --delay --duration`.
    NsysTime,
}

impl ProfilingKind {
    pub fn name(self) -> &'static str {
        match self {
            ProfilingKind::Torch => "torch",
            ProfilingKind::Nsys => "nsys",
            ProfilingKind::NsysTime => "nsys-time",
        }
    }
}

/// Forward steps `start..stop` of a worker.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepWindow {
    pub start: u64,
    pub stop: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Profiling {
    pub kind: ProfilingKind,
    /// Every role's window (srtctl's 0..50 where the recipe names none).
    pub windows: Vec<(Role, StepWindow)>,
    pub delay_secs: u64,
    pub duration_secs: u64,
    pub benchmark_duration_secs: u64,
    pub extra_nsys_args: Vec<String>,
    /// The seed era's profiling load (a phase's `isl`/`osl`/`concurrency`), run as one sa-bench point
    /// when the recipe's benchmark is `manual` or absent.
    pub load: Option<BenchPoint>,
    pub pos: Pos,
}

impl Profiling {
    pub fn window(&self, role: Role) -> StepWindow {
        self.windows
            .iter()
            .find(|(r, _)| *r == role)
            .map_or(StepWindow { start: 0, stop: 50 }, |(_, w)| *w)
    }
}

/// `telemetry:`: GPU power from a DCGM exporter on every worker node, sampled by the orchestrator's node
/// into `<storage_subdir>/samples.csv` beside srtctl's `manifest.json` and `windows/`.
#[derive(Debug, Clone, PartialEq)]
pub struct Telemetry {
    pub exporter_image: String,
    pub exporter_port: u16,
    /// The exporter's command as written (`{port}`, and srt-graph's `{host}`, substituted); `None`:
    /// srtctl's `dcgm-exporter --collect-interval=100 --address :{port}`.
    pub exporter_command: Option<String>,
    pub interval_secs: f64,
    pub storage_subdir: String,
    /// The benchmark does not run without a complete scrape of every GPU.
    pub required: bool,
    pub startup_timeout_secs: f64,
    pub request_timeout_secs: f64,
    pub join_timeout_secs: f64,
    pub pos: Pos,
}

impl Telemetry {
    /// The command line the exporter runs on a node that binds `host`, as srtctl resolves it: the
    /// default template, or the recipe's with `{port}` (and `{host}`) filled in.
    pub fn command(&self, host: &str) -> String {
        let template = self
            .exporter_command
            .as_deref()
            .unwrap_or("dcgm-exporter --collect-interval=100 --address :{port}");
        template
            .replace("{port}", &self.exporter_port.to_string())
            .replace("{host}", host)
    }
}

/// How the run's `/metrics` endpoints are scraped into the run directory.
#[derive(Debug, Clone, PartialEq)]
pub struct Scrape {
    pub interval_secs: f64,
    /// File name in the run directory (srtctl's `raw_prometheus.jsonl`).
    pub output: String,
}

impl Default for Scrape {
    fn default() -> Scrape {
        Scrape {
            interval_secs: 1.0,
            output: "raw_prometheus.jsonl".into(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Recipe {
    pub file: String,
    pub name: String,
    /// The registered backend type (`backends::find`): `sglang`, `trtllm`, `vllm`, `mocker`.
    pub backend: &'static str,
    /// The backend's own keys under `backend:` (beyond the shared ones and its role configuration), as
    /// written: its plug-in reads them.
    pub backend_options: Vec<(String, Node)>,
    /// The recipe declares that its inference engine is simulated (srt-graph's own `mock_workers: true`):
    /// runs and plans behave as with `--mock-workers`.
    pub mock_workers: bool,
    /// srt-slurm's checkout (`srtctl_root` in srtslurm.yaml): where its benchmark scripts are.
    pub srtctl_root: Option<String>,
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
    /// Environment variables to treat as secret beyond the names that say so (`crate::secrets`):
    /// the recipe's `secret_env` and the cluster config's.
    pub secret_env: Vec<String>,
    pub run_dir_access: RunDirAccess,
    pub slurm_account: Option<String>,
    pub slurm_partition: Option<String>,
    pub slurm_time_limit: String,
    pub steps: Vec<UserStep>,
    pub policies: Vec<PolicyOverride>,
    /// The `/metrics` scrape during the run (`observability:`); `None`: turned off.
    pub scrape: Option<Scrape>,
    pub identity: Option<Identity>,
    pub profiling: Option<Profiling>,
    pub telemetry: Option<Telemetry>,
    /// Keys kept but not acted on.
    pub ignored: Vec<String>,
    pub notes: Vec<String>,
    pub root_pos: Pos,
    pub resources_pos: Pos,
    /// The variant's document with overrides, sweep values and aliases applied (`recipe.lock.yaml`).
    pub resolved: serde_json::Value,
}

impl Recipe {
    /// A key of the backend's own, as written.
    pub fn backend_option(&self, key: &str) -> Option<&Node> {
        self.backend_options
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }
    pub fn is_disaggregated(&self) -> bool {
        self.roles.iter().any(|r| r.role == Role::Prefill)
    }
    pub fn role(&self, role: Role) -> Option<&RoleSpec> {
        self.roles.iter().find(|r| r.role == role)
    }
    /// Nodes that host workers: `0..worker_nodes()`.
    pub fn worker_nodes(&self) -> usize {
        self.roles.iter().map(|r| r.nodes as usize).sum()
    }
    /// Nodes the job needs: the workers' (plus a dedicated infrastructure node); a recipe of `steps:`
    /// alone needs as many as its highest `node:` names.
    pub fn total_nodes(&self) -> u32 {
        if self.roles.is_empty() {
            let highest = self.steps.iter().filter_map(|s| s.node).max().unwrap_or(0);
            return highest.saturating_add(1);
        }
        self.roles.iter().map(|r| r.nodes).sum::<u32>().max(1)
            + u32::from(self.infra_dedicated_node && self.frontend.dynamo)
    }
}

/// Who may read a run directory: its owner (default), or also the owner's group (shared results).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RunDirAccess {
    #[default]
    Owner,
    Group,
}

impl RunDirAccess {
    /// Permission bits of the run directory.
    pub fn dir_mode(self) -> u32 {
        match self {
            RunDirAccess::Owner => 0o700,
            RunDirAccess::Group => 0o750,
        }
    }

    /// Most a file in the run directory may allow: the directory's bits without execute.
    pub fn file_mode(self) -> u32 {
        self.dir_mode() & 0o666
    }
}
