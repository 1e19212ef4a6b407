//! Subcommands that steps run on nodes: `mock-worker`, `wait-healthy`, `wait-ready`, `mount-source`,
//! `bench`.

use crate::error::{CliError, CliResult};
use clap::Args;

#[derive(Args)]
pub struct MockWorkerArgs {
    /// The same flags as `python3 -m sglang.launch_server`; unknown ones are accepted and ignored.
    /// Knobs: --mock-load-time S, --mock-slow-start S, --mock-ttft S, --mock-tokens-per-sec N,
    /// --mock-max-concurrent N, --mock-crash-after N, --mock-refuse-health, --mock-bootstrap-timeout S
    /// (or SRT_MOCK_LOAD_TIME, SRT_MOCK_SLOW_START, SRT_MOCK_TTFT, SRT_MOCK_TPS, SRT_MOCK_MAX_CONCURRENT,
    /// SRT_MOCK_CRASH_AFTER, SRT_MOCK_REFUSE_HEALTH=1, SRT_MOCK_BOOTSTRAP_TIMEOUT).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

/// The tokio runtime every subcommand uses; reports and returns `None` if it cannot start.
pub fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Failed(format!("cannot start the runtime: {e}")))
}

pub fn mock_worker(args: &MockWorkerArgs) -> CliResult {
    use srt_graph_node_tools::mock_worker;
    let cfg = mock_worker::parse_args(&args.args)
        .map_err(|e| CliError::Invalid(format!("mock-worker: {e}")))?;
    runtime()?
        .block_on(mock_worker::serve(cfg))
        .map_err(|e| CliError::Failed(format!("mock-worker: {e}")))
}

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    srt_graph_engine::policy::parse_duration(s)
        .map(std::time::Duration::from_secs_f64)
        .ok_or_else(|| format!("`{s}` is not a duration (e.g. 2s, 500ms)"))
}

#[derive(Args)]
pub struct WaitHealthyArgs {
    /// `sglang` (router `/workers`), `dynamo` (frontend `/health`) or `openai` (`/v1/models` of
    /// `trtllm-serve` or `vllm serve`, which cannot count workers).
    #[arg(long, default_value = "sglang")]
    pub mode: String,
    /// A router or frontend base URL; every one must see all workers.
    #[arg(long = "url", required = true)]
    pub urls: Vec<String>,
    #[arg(long, default_value_t = 0)]
    pub prefill: u32,
    #[arg(long, default_value_t = 0)]
    pub decode: u32,
    /// Longest pause between polls (a pause is 4 % of the time waited so far, at least 50 ms).
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub max_interval: std::time::Duration,
    /// After the gate, one chat request through this public URL.
    #[arg(long)]
    pub smoke: Option<String>,
    #[arg(long, default_value = "default")]
    pub model: String,
}

pub fn wait_healthy(a: &WaitHealthyArgs) -> CliResult {
    let w = srt_graph_node_tools::health::WaitHealthy {
        mode: a.mode.clone(),
        urls: a.urls.clone(),
        prefill: a.prefill,
        decode: a.decode,
        max_interval: a.max_interval,
        smoke: a.smoke.clone(),
        model: a.model.clone(),
    };
    runtime()?
        .block_on(srt_graph_node_tools::health::wait_healthy(&w))
        .map_err(CliError::Failed)
}

#[derive(Args)]
pub struct WaitReadyArgs {
    /// `tcp` (HOST:PORT accepts a connection) or `http` (URL answers 2xx).
    pub kind: String,
    pub target: String,
}

pub fn wait_ready(a: &WaitReadyArgs) -> CliResult {
    runtime()?
        .block_on(srt_graph_node_tools::health::wait_ready(
            &a.kind,
            &a.target,
            std::time::Duration::from_secs(1),
        ))
        .map_err(CliError::Invalid)
}

#[derive(Args)]
pub struct MountSourceArgs {
    /// The SGLang checkout (`backend.sglang_src_dir`).
    pub src: std::path::PathBuf,
    /// Where workers see it (`/ext-sglang-src` in a container).
    pub dst: std::path::PathBuf,
}

pub fn mount_source(a: &MountSourceArgs) -> CliResult {
    let msg =
        srt_graph_node_tools::health::mount_source(&a.src, &a.dst).map_err(CliError::Failed)?;
    println!("{msg}");
    Ok(())
}

#[derive(Args)]
pub struct BenchArgs {
    /// Base URL of an OpenAI-compatible server (nginx, a router, a worker).
    #[arg(long)]
    pub url: String,
    #[arg(long, default_value = "/v1/completions")]
    pub endpoint: String,
    #[arg(long)]
    pub model: String,
    /// Recorded as `tokenizer_id` (token counts use the documented word approximation).
    #[arg(long)]
    pub tokenizer: Option<String>,
    #[arg(long)]
    pub isl: u32,
    #[arg(long)]
    pub osl: u32,
    #[arg(long, default_value_t = 0.8)]
    pub random_range_ratio: f64,
    /// One concurrency or several joined by `x` (sa-bench's "AxBxC").
    #[arg(long)]
    pub concurrency: String,
    /// Requests per concurrency point = concurrency × this.
    #[arg(long, default_value_t = 5)]
    pub prompts_per_concurrency: u32,
    /// Requests per second (Poisson arrivals), or `inf`.
    #[arg(long, default_value = "inf")]
    pub request_rate: String,
    /// Save one sa-bench result JSON per concurrency here.
    #[arg(long)]
    pub result_dir: Option<std::path::PathBuf>,
    /// File name for a single concurrency (default: sa-bench's pattern).
    #[arg(long)]
    pub result_filename: Option<String>,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[arg(long, default_value = "600s", value_parser = parse_duration)]
    pub request_timeout: std::time::Duration,
    /// A point with a larger share of failed requests (in percent) is invalid and fails the command.
    #[arg(long, default_value_t = 5.0, value_parser = percent)]
    pub max_failed_percent: f64,
    /// The endpoint is simulated: what times it (written into every result as `simulated.timing`).
    #[arg(long, env = "SRT_SIMULATED")]
    pub simulated: Option<String>,
    /// The simulated clock runs N times faster; results are multiplied back into model time.
    #[arg(long, env = "SRT_SIM_SPEED", default_value_t = 1.0)]
    pub sim_speed: f64,
    /// A simulated run's timing files: a role that fell back to the fixed timing is named in the label.
    #[arg(long, env = "SRT_PERF_DIR")]
    pub perf_dir: Option<std::path::PathBuf>,
    /// sa-bench's `--use-chat-template`: `on` wraps each prompt in the model's chat template (or fails
    /// without one), `auto` where the model has one, `off` sends raw prompts.
    #[arg(long, value_enum, default_value = "auto")]
    pub chat_template: srt_graph_node_tools::loadgen::ChatTemplateUse,
    /// sa-bench's `--custom-tokenizer` (its DeepSeek-V4 adapters are rendered by srt-graph).
    #[arg(long)]
    pub custom_tokenizer: Option<String>,
    /// Where each saved point writes its measurement window (power telemetry joins watts to it).
    #[arg(long, env = "SRT_MEASUREMENT_WINDOW_DIR")]
    pub window_dir: Option<std::path::PathBuf>,
}

fn percent(v: &str) -> Result<f64, String> {
    match v.parse::<f64>() {
        Ok(x) if (0.0..=100.0).contains(&x) => Ok(x),
        _ => Err(format!("`{v}` is not a percentage from 0 to 100")),
    }
}

pub fn bench(a: &BenchArgs) -> CliResult {
    let concurrencies: Result<Vec<u32>, _> = a
        .concurrency
        .split('x')
        .map(|c| c.trim().parse::<u32>())
        .collect();
    let concurrencies = match concurrencies {
        Ok(c) if !c.is_empty() && c.iter().all(|&x| x > 0) => c,
        _ => {
            return Err(CliError::Invalid(format!(
                "--concurrency `{}` is not positive integers joined by `x`",
                a.concurrency
            )))
        }
    };
    let request_rate = match a.request_rate.as_str() {
        "inf" => None,
        r => match r.parse::<f64>() {
            Ok(x) if x > 0.0 && x.is_finite() => Some(x),
            _ => {
                return Err(CliError::Invalid(format!(
                    "--request-rate `{r}` is not `inf` or a positive number"
                )));
            }
        },
    };
    if a.result_filename.is_some() && concurrencies.len() > 1 {
        return Err(CliError::Invalid(
            "--result-filename names one file; give one concurrency".into(),
        ));
    }
    let cfg = srt_graph_node_tools::loadgen::BenchConfig {
        url: a.url.clone(),
        endpoint: a.endpoint.clone(),
        model: a.model.clone(),
        tokenizer: a.tokenizer.clone(),
        isl: a.isl,
        osl: a.osl,
        random_range_ratio: a.random_range_ratio,
        concurrencies,
        prompts_per_concurrency: a.prompts_per_concurrency,
        request_rate,
        result_dir: a.result_dir.clone(),
        result_filename: a.result_filename.clone(),
        seed: a.seed,
        request_timeout: a.request_timeout,
        progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
        max_failed_fraction: a.max_failed_percent / 100.0,
        simulated: simulated_label(a),
        sim_speed: a.sim_speed,
        chat_template: a.chat_template,
        custom_tokenizer: a.custom_tokenizer.clone(),
        window_dir: a.window_dir.clone(),
    };
    runtime()?
        .block_on(srt_graph_node_tools::loadgen::run(&cfg))
        .map(|_| ())
        .map_err(CliError::Failed)
}

/// The result label of a simulated run, naming any role whose table fell back to the fixed timing.
fn simulated_label(a: &BenchArgs) -> Option<String> {
    use srt_graph_node_tools::perf_table::{path_for, read, RoleTiming};
    let label = a.simulated.clone()?;
    let Some(dir) = &a.perf_dir else {
        return Some(label);
    };
    let fallbacks: Vec<String> = ["agg", "prefill", "decode"]
        .iter()
        .filter_map(|role| match read(&path_for(dir, role)) {
            Ok(RoleTiming::Fallback { fallback }) => Some(format!("{role}: {fallback}")),
            _ => None,
        })
        .collect();
    Some(if fallbacks.is_empty() {
        label
    } else {
        format!("fixed timing (fallback: {})", fallbacks.join("; "))
    })
}

#[derive(clap::Subcommand)]
pub enum NodeOp {
    /// Send SIGNAL (a number) to process group PGID.
    Signal { pgid: i32, signal: i32 },
    /// Print `alive` if a process of group PGID lives (zombies do not count), else `gone`.
    Alive { pgid: i32 },
    /// Print `STEP<TAB>PGID` for every live process tagged with RUN_DIR.
    Tagged { run_dir: String },
    /// Print the process group of the live pid written in FILE.
    PidFile { file: String },
    /// Print who listens on ADDR:PORT.
    PortHolder { addr: String, port: u16 },
    /// Print this node's IPv4 address on INTERFACE, else its first non-loopback IPv4 address.
    Address { interface: String },
    /// In a container: print the image's OS, and fail naming each PROGRAM not on PATH.
    ImageCheck { programs: Vec<String> },
    /// Write this node's environment fingerprint (srt-graph, OS, Python and its packages, container,
    /// GPUs) as JSON to OUT.
    Fingerprint {
        #[arg(long)]
        node: String,
        #[arg(long)]
        python: String,
        #[arg(long)]
        container: Option<String>,
        /// The model directory as the workers see it (its Hugging Face revision is recorded).
        #[arg(long)]
        model: Option<std::path::PathBuf>,
        #[arg(long)]
        out: std::path::PathBuf,
    },
}

/// The node agent (see `srt_graph_engine::agent`), until its input closes and its processes are gone.
pub fn node_agent() -> CliResult {
    // Before the runtime's threads: it changes this process's environment.
    srt_graph_engine::agent::as_one_task_step();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| CliError::Failed(format!("cannot start the runtime: {e}")))?
        .block_on(srt_graph_engine::agent::serve())
        .map_err(|e| CliError::Failed(format!("node agent: {e}")))
}

/// What the ssh and Slurm transports ask of a node (`srt-graph node-op …` run there).
pub fn node_op(op: &NodeOp) -> CliResult {
    use srt_graph_engine::local;
    use srt_graph_engine::transport::GroupSignaller;
    let t = local::LocalTransport;
    match op {
        NodeOp::Signal { pgid, signal } => t.signal_group(0, *pgid, *signal).map_err(|e| {
            CliError::Failed(format!("signal {signal} to process group {pgid}: {e}"))
        })?,
        NodeOp::Alive { pgid } => {
            println!(
                "{}",
                if t.group_alive(0, *pgid) {
                    "alive"
                } else {
                    "gone"
                }
            );
        }
        NodeOp::Tagged { run_dir } => {
            for (step, _, pgid) in local::tagged_processes(run_dir) {
                println!("{step}\t{pgid}");
            }
        }
        NodeOp::PidFile { file } => {
            if let Some(g) = local::pid_file_group(file) {
                println!("{g}");
            }
        }
        NodeOp::PortHolder { addr, port } => {
            println!("{}", local::port_holders(addr, *port).join(", "));
        }
        NodeOp::ImageCheck { programs } => image_check(programs)?,
        NodeOp::Fingerprint {
            node,
            python,
            container,
            model,
            out,
        } => {
            use srt_graph_node_tools::fingerprint;
            let f = fingerprint::collect(node, python, container.as_deref(), model.as_deref());
            fingerprint::write(out, &f).map_err(CliError::Failed)?;
            println!("fingerprint of {node} → {}", out.display());
        }
        NodeOp::Address { interface } => match interface_address(interface) {
            Some(a) => println!("{a}"),
            None => {
                return Err(CliError::Failed(format!(
                    "no IPv4 address on {interface} nor any other interface"
                )))
            }
        },
    }
    Ok(())
}

/// What a run's first step in a container checks: the programs its steps call by name are there.
fn image_check(programs: &[String]) -> CliResult {
    let os = srt_graph_node_tools::fingerprint::os_release()
        .unwrap_or_else(|| "an image without /etc/os-release".into());
    println!("container image: {os}");
    let path = std::env::var("PATH").unwrap_or_default();
    let missing: Vec<&str> = programs
        .iter()
        .filter(|p| {
            !path
                .split(':')
                .any(|d| std::path::Path::new(d).join(p).is_file())
        })
        .map(String::as_str)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let hints: Vec<String> = missing
        .iter()
        .filter_map(|p| srt_graph_steps::kinds::install_hint(p).map(|h| format!("`{h}`")))
        .collect();
    Err(CliError::Failed(format!(
        "the image ({os}) has no {} on PATH ({path}), which this node's steps run; use an image that has it{}",
        missing.join(", "),
        if hints.is_empty() { String::new() } else { format!(" (in a Debian image: {})", hints.join(", ")) }
    )))
}

/// srt-slurm's lookup order: the interface's address, then the first non-loopback address.
fn interface_address(interface: &str) -> Option<std::net::Ipv4Addr> {
    let addrs: Vec<(String, std::net::Ipv4Addr)> = nix::ifaddrs::getifaddrs()
        .ok()?
        .filter_map(|a| {
            let ip = a.address?.as_sockaddr_in()?.ip();
            Some((a.interface_name, ip))
        })
        .collect();
    addrs
        .iter()
        .find(|(name, _)| name == interface)
        .or_else(|| addrs.iter().find(|(_, ip)| !ip.is_loopback()))
        .map(|(_, ip)| *ip)
}

#[derive(Args)]
pub struct MockModelArgs {
    /// Directory to write (created if needed).
    pub dir: std::path::PathBuf,
    /// Model name recorded in config.json.
    #[arg(long, default_value = "mock")]
    pub name: String,
}

/// A weightless model directory for `dynamo.mocker` (what the `mock-model/<node>` steps run).
pub fn mock_model(a: &MockModelArgs) -> CliResult {
    srt_graph_node_tools::mock_model::write(&a.dir, &a.name)
        .map_err(|e| CliError::Failed(format!("{}: {e}", a.dir.display())))?;
    println!(
        "wrote a weightless model directory for `{}` in {}",
        a.name,
        a.dir.display()
    );
    Ok(())
}

#[derive(Args)]
pub struct ScrapeMetricsArgs {
    /// The raw capture (srtctl's `raw_prometheus.jsonl` shape), appended to; needed with `--target`.
    #[arg(long)]
    pub out: Option<std::path::PathBuf>,
    /// This node's host samples, appended to.
    #[arg(long)]
    pub host_out: std::path::PathBuf,
    /// Time between sweeps (0.5 s at least).
    #[arg(long, default_value = "1s", value_parser = interval)]
    pub interval: std::time::Duration,
    /// `ROLE=WORKER=URL` of a `/metrics` endpoint (WORKER empty for a frontend); repeat.
    #[arg(long = "target", value_name = "ROLE=WORKER=URL", value_parser = srt_graph_node_tools::scrape::Target::parse)]
    pub targets: Vec<srt_graph_node_tools::scrape::Target>,
}

fn interval(s: &str) -> Result<std::time::Duration, String> {
    srt_graph_engine::policy::parse_duration(s)
        .map(std::time::Duration::from_secs_f64)
        .ok_or_else(|| format!("`{s}` is not a duration (e.g. 1s, 500ms)"))
}

#[derive(Args)]
pub struct CollectPowerArgs {
    /// Where `samples.csv`, `manifest.json` and `windows/` go (`telemetry.storage_subdir`).
    #[arg(long)]
    pub dir: std::path::PathBuf,
    #[arg(long, default_value = "1s", value_parser = interval)]
    pub interval: std::time::Duration,
    #[arg(long, default_value = "2s", value_parser = interval)]
    pub request_timeout: std::time::Duration,
    /// How long the exporters have to give one sweep that covers every expected GPU.
    #[arg(long, default_value = "30s", value_parser = interval)]
    pub startup_timeout: std::time::Duration,
    /// Recorded in the manifest: the benchmark does not run without a complete sweep.
    #[arg(long)]
    pub required: bool,
    /// `NODE=URL` of an exporter's `/metrics`; repeat.
    #[arg(long = "endpoint", value_name = "NODE=URL", value_parser = srt_graph_node_tools::power::Endpoint::parse)]
    pub endpoints: Vec<srt_graph_node_tools::power::Endpoint>,
    /// `NODE:GPU:ROLE` of a GPU expected to report; repeat.
    #[arg(long = "device", value_name = "NODE:GPU:ROLE", value_parser = srt_graph_node_tools::power::parse_device)]
    pub devices: Vec<srt_graph_results::power::Device>,
    /// `TYPE:ISL:OSL:CONCURRENCY` of a measured point expected to write a window; repeat.
    #[arg(long = "window", value_name = "TYPE:ISL:OSL:C", value_parser = srt_graph_node_tools::power::parse_window)]
    pub windows: Vec<srt_graph_results::power::ExpectedWindow>,
    #[arg(long, default_value = "")]
    pub run_name: String,
    /// The exporter's image, port and command, for the manifest's provenance.
    #[arg(long, default_value = "")]
    pub image: String,
    #[arg(long, default_value_t = 9400)]
    pub port: u16,
    #[arg(long, default_value = "")]
    pub command: String,
}

pub fn collect_power(a: &CollectPowerArgs) -> CliResult {
    let cfg = srt_graph_node_tools::power::Config {
        dir: a.dir.clone(),
        interval: a.interval.max(std::time::Duration::from_millis(100)),
        request_timeout: a.request_timeout,
        startup_timeout: a.startup_timeout,
        required: a.required,
        endpoints: a.endpoints.clone(),
        devices: a.devices.clone(),
        windows: a.windows.clone(),
        run_name: a.run_name.clone(),
        image: a.image.clone(),
        port: a.port,
        command: a.command.clone(),
    };
    runtime()?
        .block_on(srt_graph_node_tools::power::collect(&cfg))
        .map(|_| ())
        .map_err(CliError::Failed)
}

#[derive(Args)]
pub struct WaitPowerArgs {
    /// The collector's directory (where its `manifest.json` is).
    #[arg(long)]
    pub dir: std::path::PathBuf,
    #[arg(long, default_value = "30s", value_parser = interval)]
    pub timeout: std::time::Duration,
    /// Fail when no complete sweep came in time (else warn and go on).
    #[arg(long)]
    pub required: bool,
}

pub fn wait_power(a: &WaitPowerArgs) -> CliResult {
    runtime()?
        .block_on(srt_graph_node_tools::power::wait_ready(
            &a.dir, a.timeout, a.required,
        ))
        .map_err(CliError::Failed)
}

#[derive(Args)]
pub struct ProfileArgs {
    /// `start` opens each worker's window, `stop` closes it.
    #[arg(value_parser = ["start", "stop"])]
    pub action: String,
    /// The workers' endpoint: `/start_profile` (SGLang) or `/engine/start_profile` (Dynamo), and the
    /// `stop_profile` twin.
    #[arg(long)]
    pub path: String,
    /// What the profiler records (SGLang's `activities`: CPU, GPU, CUDA_PROFILER…).
    #[arg(long, value_delimiter = ',', default_value = "CPU,GPU")]
    pub activities: Vec<String>,
    /// `START:STOP=URL=DIR` per worker leader.
    #[arg(long = "worker", required = true, value_parser = srt_graph_node_tools::profile::Worker::parse)]
    pub workers: Vec<srt_graph_node_tools::profile::Worker>,
}

pub fn profile(a: &ProfileArgs) -> CliResult {
    use srt_graph_node_tools::profile;
    let rt = runtime()?;
    let accepted = if a.action == "start" {
        rt.block_on(profile::start(&a.workers, &a.path, &a.activities))
    } else {
        rt.block_on(profile::stop(&a.workers, &a.path))
    };
    println!(
        "{} of {} worker(s) accepted `{}`",
        accepted,
        a.workers.len(),
        a.path
    );
    Ok(())
}

pub fn scrape_metrics(a: &ScrapeMetricsArgs) -> CliResult {
    let interval = a.interval.max(std::time::Duration::from_millis(500));
    runtime()?
        .block_on(srt_graph_node_tools::scrape::run(
            a.out.as_deref(),
            &a.host_out,
            interval,
            &a.targets,
        ))
        .map(|_| ())
        .map_err(CliError::Failed)
}

#[derive(Args)]
pub struct CheckIdentityArgs {
    /// A worker node's fingerprint (`fingerprints/<node>.json`); repeat.
    #[arg(long = "fingerprint", value_name = "FILE")]
    pub fingerprints: Vec<std::path::PathBuf>,
    #[arg(long)]
    pub model_repo: Option<String>,
    #[arg(long)]
    pub model_revision: Option<String>,
    #[arg(long)]
    pub image: Option<String>,
    /// `NAME=VERSION` (vllm, sglang, tensorrt_llm, dynamo); repeat.
    #[arg(long = "framework", value_name = "NAME=VERSION")]
    pub frameworks: Vec<String>,
}

pub fn check_identity(a: &CheckIdentityArgs) -> CliResult {
    use srt_graph_node_tools::identity::{check, Declared};
    let mut fingerprints = Vec::new();
    for f in &a.fingerprints {
        let text = std::fs::read_to_string(f).map_err(|e| {
            CliError::Failed(format!(
                "{}: {e} (the node's fingerprint step writes it)",
                f.display()
            ))
        })?;
        let v: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| CliError::Failed(format!("{}: {e}", f.display())))?;
        let node = v["node"].as_str().unwrap_or("?").to_string();
        fingerprints.push((node, v));
    }
    let declared = Declared {
        model_repo: a.model_repo.clone(),
        model_revision: a.model_revision.clone(),
        image: a.image.clone(),
        frameworks: a
            .frameworks
            .iter()
            .filter_map(|f| {
                f.split_once('=')
                    .map(|(n, v)| (n.to_string(), v.to_string()))
            })
            .collect(),
    };
    let outcomes = check(&declared, &fingerprints);
    for o in &outcomes {
        println!(
            "{} identity.{}: {}",
            if o.ok { '✓' } else { '✗' },
            o.field,
            o.message
        );
    }
    let bad: Vec<String> = outcomes
        .iter()
        .filter(|o| !o.ok)
        .map(|o| format!("identity.{}: {}", o.field, o.message))
        .collect();
    if bad.is_empty() {
        Ok(())
    } else {
        Err(CliError::Failed(format!(
            "what ran is not what the recipe's identity declares:\n  {}",
            bad.join("\n  ")
        )))
    }
}

#[cfg(test)]
mod custom_tokenizer_tests {
    /// The plan accepts exactly the sa-bench adapters the load generator renders.
    #[test]
    fn the_planner_and_the_load_generator_know_the_same_adapters() {
        assert_eq!(
            srt_graph_steps::benchmarks::sa_bench::CUSTOM_TOKENIZERS,
            srt_graph_node_tools::chat_template::CUSTOM_TOKENIZERS
        );
    }
}
