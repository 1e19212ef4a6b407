//! `srt-graph mock-worker`: a GPU-less stand-in for `python3 -m sglang.launch_server`, started with the same
//! flags. It serves the SGLang HTTP API that sglang-router and OpenAI clients use, and in disaggregated mode
//! a prefill and a decode mock cooperate through the bootstrap rendezvous as real workers do: the prefill
//! worker registers each request's `bootstrap_room` on its bootstrap port once it has "prefilled" it, and the
//! decode worker fetches the room from `bootstrap_host:bootstrap_port` before it streams a single token. A
//! request that reaches decode without its prefill partner therefore fails, as it would for real.
//!
//! Token model (documented approximation, shared with `srt-graph bench`): one whitespace-separated word of
//! a prompt is one token; each generated token is one word.
//!
//! Timing: with `--mock-perf-table` (a role's latency table from `srt-graph perf-table`), the worker's
//! `engine` runs the shared batch scheduler against the performance model; without one, each request
//! takes a fixed time to its first token and a fixed rate after it. `--mock-sim-speed N` runs either
//! clock N times faster.

mod api;
mod engine;
mod metrics;
mod profiler;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use axum::{Json, Router};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{watch, Semaphore};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Prefill,
    Decode,
    Regular,
}

#[derive(Debug, Clone)]
pub struct MockConfig {
    pub host: String,
    pub port: u16,
    pub mode: Mode,
    pub bootstrap_port: u16,
    pub served_model_name: String,
    pub model_path: String,
    pub tp_size: u32,
    /// Seconds between listening and answering `/health` with 200.
    pub load_time: f64,
    /// Seconds before the HTTP port is even opened.
    pub slow_start: f64,
    /// Seconds of prefill before the first token.
    pub ttft: f64,
    /// Tokens per second of one request's decode.
    pub tokens_per_sec: f64,
    /// Requests served at once; more wait in a queue.
    pub max_concurrent: usize,
    /// Exit with status 1 when this many requests have arrived.
    pub crash_after: Option<u64>,
    /// Answer `/health` with 503 forever.
    pub refuse_health: bool,
    /// How long decode waits for its prefill partner's KV.
    pub bootstrap_timeout: f64,
    /// Answer every N-th request with a 500 (a flaky worker).
    pub fail_every: Option<u64>,
    /// Generate no tokens at all (a worker that "succeeds" with empty output).
    pub empty_output: bool,
    /// The role's timing file (`srt-graph perf-table`); `None` = the fixed timing.
    pub perf_table: Option<std::path::PathBuf>,
    /// The simulated clock runs this many times faster than the wall clock.
    pub sim_speed: f64,
    /// SGLang's `--kv-events-config` (JSON), checked as SGLang reads it; the mock publishes no events.
    pub kv_events_config: Option<serde_json::Value>,
}

impl Default for MockConfig {
    fn default() -> Self {
        MockConfig {
            host: "127.0.0.1".into(),
            port: 30000,
            mode: Mode::Regular,
            bootstrap_port: 30001,
            served_model_name: String::new(),
            model_path: "mock-model".into(),
            tp_size: 1,
            load_time: 0.5,
            slow_start: 0.0,
            ttft: 0.02,
            tokens_per_sec: 500.0,
            max_concurrent: 16_384,
            crash_after: None,
            refuse_health: false,
            bootstrap_timeout: 30.0,
            fail_every: None,
            empty_output: false,
            perf_table: None,
            sim_speed: 1.0,
            kv_events_config: None,
        }
    }
}

/// The SGLang flags the mock reads, and its own knobs. Any other `--flag [values…]` of an SGLang command
/// line is accepted and ignored (`known_only`), as the mock must take whatever a recipe passes.
#[derive(clap::Parser, Debug)]
#[command(
    name = "mock-worker",
    args_override_self = true,
    disable_help_flag = true
)]
struct MockArgs {
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    #[arg(long, default_value_t = 30000)]
    port: u16,
    #[arg(long, default_value = "null", value_parser = parse_mode)]
    disaggregation_mode: Mode,
    #[arg(long, default_value_t = 30001)]
    disaggregation_bootstrap_port: u16,
    #[arg(long, default_value = "")]
    served_model_name: String,
    #[arg(long, alias = "model", default_value = "mock-model")]
    model_path: String,
    /// Read leniently: a templated or odd value counts as 1 (it only sizes the simulated worker).
    #[arg(long, aliases = ["tp-size", "tp"], default_value = "1")]
    tensor_parallel_size: String,
    #[arg(long, env = "SRT_MOCK_LOAD_TIME", default_value_t = 0.5, value_parser = non_negative)]
    mock_load_time: f64,
    #[arg(long, env = "SRT_MOCK_SLOW_START", default_value_t = 0.0, value_parser = non_negative)]
    mock_slow_start: f64,
    #[arg(long, env = "SRT_MOCK_TTFT", default_value_t = 0.02, value_parser = non_negative)]
    mock_ttft: f64,
    #[arg(long, env = "SRT_MOCK_TPS", default_value_t = 500.0, value_parser = positive)]
    mock_tokens_per_sec: f64,
    #[arg(long, env = "SRT_MOCK_MAX_CONCURRENT", default_value_t = 16_384.0, value_parser = non_negative)]
    mock_max_concurrent: f64,
    #[arg(long, env = "SRT_MOCK_CRASH_AFTER", value_parser = non_negative)]
    mock_crash_after: Option<f64>,
    #[arg(long, env = "SRT_MOCK_BOOTSTRAP_TIMEOUT", default_value_t = 30.0, value_parser = non_negative)]
    mock_bootstrap_timeout: f64,
    #[arg(long, env = "SRT_MOCK_REFUSE_HEALTH", value_parser = clap::builder::FalseyValueParser::new())]
    mock_refuse_health: bool,
    #[arg(long, env = "SRT_MOCK_FAIL_EVERY", value_parser = clap::value_parser!(u64).range(1..))]
    mock_fail_every: Option<u64>,
    #[arg(long, env = "SRT_MOCK_EMPTY_OUTPUT", value_parser = clap::builder::FalseyValueParser::new())]
    mock_empty_output: bool,
    #[arg(long, env = "SRT_MOCK_PERF_TABLE")]
    mock_perf_table: Option<std::path::PathBuf>,
    #[arg(long, env = "SRT_SIM_SPEED", default_value_t = 1.0, value_parser = positive)]
    mock_sim_speed: f64,
    #[arg(long)]
    kv_events_config: Option<String>,
}

fn parse_mode(v: &str) -> Result<Mode, String> {
    match v {
        "prefill" => Ok(Mode::Prefill),
        "decode" => Ok(Mode::Decode),
        "null" | "none" => Ok(Mode::Regular),
        other => Err(format!("`{other}` is not prefill or decode")),
    }
}

fn non_negative(v: &str) -> Result<f64, String> {
    v.parse::<f64>()
        .ok()
        .filter(|x| x.is_finite() && *x >= 0.0)
        .ok_or_else(|| format!("`{v}` is not a non-negative number"))
}

fn positive(v: &str) -> Result<f64, String> {
    non_negative(v)
        .ok()
        .filter(|x| *x > 0.0)
        .ok_or_else(|| format!("`{v}` is not a positive number"))
}

/// `args` without the flags `MockArgs` does not know (and their values, up to the next flag).
fn known_only(args: &[String]) -> Vec<String> {
    use clap::CommandFactory;
    let cmd = MockArgs::command();
    let takes_value = |name: &str| -> Option<bool> {
        cmd.get_arguments()
            .find(|a| {
                a.get_long() == Some(name)
                    || a.get_all_aliases().is_some_and(|al| al.contains(&name))
            })
            .map(|a| a.get_action().takes_values())
    };
    let mut out = vec!["mock-worker".to_string()];
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        let Some(flag) = arg.strip_prefix("--") else {
            i += 1;
            continue;
        };
        let (name, inline) = match flag.split_once('=') {
            Some((n, _)) => (n, true),
            None => (flag, false),
        };
        match takes_value(name) {
            Some(value) => match args.get(i + 1).filter(|_| value && !inline) {
                // `--flag=value`: a value that looks like a flag (`-1`) stays a value.
                Some(v) => {
                    out.push(format!("{arg}={v}"));
                    i += 1;
                }
                None => out.push(arg.clone()),
            },
            None if !inline => {
                // An SGLang flag the mock does not need: skip its values (up to the next flag).
                while args.get(i + 1).is_some_and(|v| !v.starts_with("--")) {
                    i += 1;
                }
            }
            None => {}
        }
        i += 1;
    }
    out
}

/// Reads an SGLang command line (plus the mock's knobs, also from `SRT_MOCK_*` in the environment, so
/// that recipes can inject faults per role).
pub fn parse_args(args: &[String]) -> Result<MockConfig, String> {
    use clap::Parser;
    let a = MockArgs::try_parse_from(known_only(args)).map_err(|e| {
        e.to_string()
            .lines()
            .next()
            .unwrap_or("invalid arguments")
            .trim_start_matches("error: ")
            .to_string()
    })?;
    let served_model_name = if a.served_model_name.is_empty() {
        a.model_path.clone()
    } else {
        a.served_model_name
    };
    let kv_events_config = a
        .kv_events_config
        .map(|text| {
            serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .filter(serde_json::Value::is_object)
                .ok_or_else(|| format!("--kv-events-config `{text}` is not a JSON object"))
        })
        .transpose()?;
    Ok(MockConfig {
        kv_events_config,
        host: a.host,
        port: a.port,
        mode: a.disaggregation_mode,
        bootstrap_port: a.disaggregation_bootstrap_port,
        served_model_name,
        model_path: a.model_path,
        tp_size: a.tensor_parallel_size.parse().unwrap_or(1),
        load_time: a.mock_load_time,
        slow_start: a.mock_slow_start,
        ttft: a.mock_ttft,
        tokens_per_sec: a.mock_tokens_per_sec,
        max_concurrent: a.mock_max_concurrent.max(1.0) as usize,
        crash_after: a.mock_crash_after.map(|n| n as u64),
        refuse_health: a.mock_refuse_health,
        bootstrap_timeout: a.mock_bootstrap_timeout,
        fail_every: a.mock_fail_every,
        empty_output: a.mock_empty_output,
        perf_table: a.mock_perf_table,
        sim_speed: a.mock_sim_speed,
    })
}

/// A prefilled room, as the decode side fetches it.
#[derive(Debug, Clone)]
struct Room {
    prompt_tokens: usize,
}

struct Shared {
    cfg: MockConfig,
    started: Instant,
    requests: AtomicU64,
    active: AtomicUsize,
    queue: Arc<Semaphore>,
    /// room → prefilled KV (prefill side only).
    rooms: Mutex<HashMap<u64, watch::Sender<Option<Room>>>>,
    http: reqwest::Client,
    crashed: AtomicBool,
    /// The performance model's engine, when the role has a latency table.
    engine: Option<engine::Engine>,
    metrics: metrics::Metrics,
    profiler: Arc<profiler::Profiler>,
}

type AppState = Arc<Shared>;

pub async fn serve(cfg: MockConfig) -> std::io::Result<()> {
    crate::sys::raise_nofile_limit();
    if cfg.slow_start > 0.0 {
        log_line!(
            "mock-worker: slow start, opening the port in {:.1}s",
            cfg.slow_start
        );
        tokio::time::sleep(Duration::from_secs_f64(cfg.slow_start)).await;
    }
    if let Some(kv) = &cfg.kv_events_config {
        // Said once, so that nobody reads a KV router's behaviour here as the engine's.
        log_line!(
            "mock-worker: --kv-events-config {kv}: accepted; the mock publishes no KV events (a KV router sees none from it)"
        );
    }
    let role = match cfg.mode {
        Mode::Prefill => "prefill",
        Mode::Decode => "decode",
        Mode::Regular => "agg",
    };
    let profiler = Arc::new(profiler::Profiler::new(format!(
        "{role}_{}_{}",
        cfg.host, cfg.port
    )));
    let engine = start_engine(&cfg, &profiler)?;
    let state = Arc::new(Shared {
        engine,
        profiler,
        metrics: metrics::Metrics::new(&cfg.served_model_name, cfg.sim_speed),
        started: Instant::now(),
        requests: AtomicU64::new(0),
        active: AtomicUsize::new(0),
        queue: Arc::new(Semaphore::new(cfg.max_concurrent)),
        rooms: Mutex::new(HashMap::new()),
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(256)
            .build()
            .map_err(std::io::Error::other)?,
        crashed: AtomicBool::new(false),
        cfg: cfg.clone(),
    });
    let app = Router::new()
        .route("/health", get(health))
        .route("/health_generate", get(health))
        .route("/get_server_info", get(server_info))
        .route("/server_info", get(server_info))
        .route("/get_model_info", get(model_info))
        .route("/model_info", get(model_info))
        .route("/v1/models", get(models))
        .route("/get_load", get(load))
        .route("/metrics", get(prometheus))
        .route("/flush_cache", post(flush_cache).get(flush_cache))
        .route("/start_profile", post(start_profile))
        .route("/stop_profile", post(stop_profile))
        // Dynamo's worker paths for the same (srtctl's profiling library calls these under Dynamo).
        .route("/engine/start_profile", post(start_profile))
        .route("/engine/stop_profile", post(stop_profile))
        .route("/generate", post(api::generate))
        .route("/v1/completions", post(api::completions))
        .route("/v1/chat/completions", post(api::chat))
        .with_state(state.clone());
    // Streams are many small writes: without TCP_NODELAY, Nagle + delayed ACK add ~40 ms per token.
    let listener = tokio::net::TcpListener::bind((cfg.host.as_str(), cfg.port))
        .await?
        .tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
    let mode = match cfg.mode {
        Mode::Prefill => "prefill",
        Mode::Decode => "decode",
        Mode::Regular => "regular",
    };
    match &state.engine {
        Some(e) => log_line!(
            "mock-worker: {mode} worker for `{}` on http://{}:{} (load {:.1}s), SIMULATED: paced by {} {} ({}, {}), simulated clock ×{}",
            cfg.served_model_name, cfg.host, cfg.port, cfg.load_time, e.table.engine.name, e.table.engine.version,
            e.table.input.system, e.table.input, cfg.sim_speed
        ),
        None => log_line!(
            "mock-worker: {mode} worker for `{}` on http://{}:{} (load {:.1}s), SIMULATED with the fixed timing: ttft {:.3}s, {:.0} tok/s, simulated clock ×{}",
            cfg.served_model_name, cfg.host, cfg.port, cfg.load_time, cfg.ttft, cfg.tokens_per_sec, cfg.sim_speed
        ),
    }
    if cfg.mode == Mode::Prefill {
        let boot = Router::new()
            .route("/kv/{room}", get(bootstrap_fetch))
            .with_state(state.clone());
        let boot_listener =
            tokio::net::TcpListener::bind((cfg.host.as_str(), cfg.bootstrap_port)).await?;
        log_line!(
            "mock-worker: bootstrap server on {}:{}",
            cfg.host,
            cfg.bootstrap_port
        );
        tokio::spawn(async move {
            if let Err(e) = axum::serve(boot_listener, boot).await {
                log_line!("mock-worker: bootstrap server failed: {e}");
                std::process::exit(1);
            }
        });
    }
    if !cfg.refuse_health {
        // SGLang's own line once it serves: what the run's time breakdown reads as "healthy".
        let load = std::time::Duration::from_secs_f64(cfg.load_time.max(0.0));
        tokio::spawn(async move {
            tokio::time::sleep(load).await;
            log_line!("The server is fired up and ready to roll!");
        });
    }
    axum::serve(listener, app).await
}

/// The performance model's engine for this role, or `None` (the fixed timing) with the reason printed.
fn start_engine(
    cfg: &MockConfig,
    profiler: &Arc<profiler::Profiler>,
) -> std::io::Result<Option<engine::Engine>> {
    use crate::perf_table::RoleTiming;
    use srt_graph_perf_model::scheduler::Phase;
    let Some(path) = &cfg.perf_table else {
        return Ok(None);
    };
    match crate::perf_table::read(path).map_err(std::io::Error::other)? {
        RoleTiming::Table(t) => {
            let phase = match cfg.mode {
                Mode::Prefill => Phase::PrefillOnly,
                Mode::Decode => Phase::DecodeOnly,
                Mode::Regular => Phase::Aggregated,
            };
            Ok(Some(engine::Engine::start(
                *t,
                phase,
                cfg.sim_speed,
                profiler.clone(),
            )))
        }
        RoleTiming::Fallback { fallback } => {
            log_line!("mock-worker: no performance model for this role ({fallback}); using the fixed timing");
            Ok(None)
        }
    }
}

fn loaded(s: &Shared) -> bool {
    s.started.elapsed().as_secs_f64() >= s.cfg.load_time
}

async fn health(State(s): State<AppState>) -> Response {
    if s.cfg.refuse_health || !loaded(&s) {
        return (StatusCode::SERVICE_UNAVAILABLE, "model not loaded").into_response();
    }
    StatusCode::OK.into_response()
}

async fn server_info(State(s): State<AppState>) -> Json<Value> {
    let c = &s.cfg;
    let mode = match c.mode {
        Mode::Prefill => json!("prefill"),
        Mode::Decode => json!("decode"),
        Mode::Regular => json!("null"),
    };
    Json(json!({
        "model_path": c.model_path,
        "served_model_name": c.served_model_name,
        "tokenizer_path": c.model_path,
        "host": c.host,
        "port": c.port,
        "tp_size": c.tp_size,
        "dp_size": 1,
        "disaggregation_mode": mode,
        "disaggregation_bootstrap_port": c.bootstrap_port,
        "max_total_num_tokens": 1_000_000,
        "max_running_requests": c.max_concurrent,
        "is_mock": true,
        "version": concat!("srt-graph-mock-", env!("CARGO_PKG_VERSION")),
        "internal_states": [{"last_gen_throughput": 0.0}],
    }))
}

async fn model_info(State(s): State<AppState>) -> Json<Value> {
    Json(json!({
        "model_path": s.cfg.model_path,
        "tokenizer_path": s.cfg.model_path,
        "is_generation": true,
        "preferred_sampling_params": null,
        "weight_version": "default",
    }))
}

async fn models(State(s): State<AppState>) -> Json<Value> {
    Json(json!({"object": "list", "data": [{
        "id": s.cfg.served_model_name, "object": "model", "created": 0, "owned_by": "sglang",
        "root": s.cfg.model_path, "max_model_len": 131072,
    }]}))
}

async fn load(State(s): State<AppState>) -> Json<Value> {
    Json(json!({"load": s.active.load(Ordering::Relaxed), "queue": 0}))
}

async fn prometheus(State(s): State<AppState>) -> Response {
    let ranks = s.engine.as_ref().map_or(&[][..], |e| &e.states[..]);
    let text = s.metrics.render(ranks, s.active.load(Ordering::Relaxed));
    (
        [("content-type", "text/plain; version=0.0.4; charset=utf-8")],
        text,
    )
        .into_response()
}

/// SGLang's `/start_profile`: a body of `ProfileReqInput` fields (or none: profile until the stop).
async fn start_profile(State(s): State<AppState>, body: axum::body::Bytes) -> Response {
    let req: profiler::StartRequest = if body.iter().all(u8::is_ascii_whitespace) {
        Default::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(r) => r,
            Err(e) => {
                return (
                    StatusCode::BAD_REQUEST,
                    format!("not a profile request: {e}"),
                )
                    .into_response()
            }
        }
    };
    // SGLang's default directory.
    let default_dir = std::env::var("SGLANG_TORCH_PROFILER_DIR").unwrap_or_else(|_| "/tmp".into());
    match s.profiler.start(req, &default_dir) {
        Ok(msg) => {
            log_line!("mock-worker: {msg}");
            (StatusCode::OK, format!("Start profiling. {msg}\n")).into_response()
        }
        Err(e) => (StatusCode::BAD_REQUEST, e).into_response(),
    }
}

async fn stop_profile(State(s): State<AppState>) -> Response {
    match s.profiler.stop() {
        Ok(Some(p)) => {
            log_line!("mock-worker: profile written to {}", p.display());
            (
                StatusCode::OK,
                format!("Stop profiling. Trace: {}\n", p.display()),
            )
                .into_response()
        }
        // The window may have closed by itself already (SGLang answers the same way).
        Ok(None) => (StatusCode::OK, "Stop profiling. No capture was running.\n").into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e).into_response(),
    }
}

async fn flush_cache() -> StatusCode {
    StatusCode::OK
}

/// Prefill side of the rendezvous: answers once the room has been prefilled here, or 404 at the timeout.
async fn bootstrap_fetch(State(s): State<AppState>, Path(room): Path<u64>) -> Response {
    let mut rx = {
        let mut rooms = s.rooms.lock().unwrap_or_else(|p| p.into_inner());
        rooms
            .entry(room)
            .or_insert_with(|| watch::channel(None).0)
            .subscribe()
    };
    let limit = Duration::from_secs_f64(s.cfg.bootstrap_timeout);
    let fetched = tokio::time::timeout(limit, async {
        rx.wait_for(|r| r.is_some())
            .await
            .ok()
            .and_then(|r| r.as_ref().map(|r| r.prompt_tokens))
    })
    .await;
    match fetched {
        Ok(Some(tokens)) => {
            s.rooms
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&room);
            Json(json!({"room": room, "prompt_tokens": tokens})).into_response()
        }
        _ => {
            s.rooms
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&room);
            (
                StatusCode::NOT_FOUND,
                format!("room {room} was never prefilled here"),
            )
                .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn takes_any_sglang_command_line() {
        let c = parse_args(&args(&[
            "--disaggregation-mode",
            "prefill",
            "--cuda-graph-bs",
            "1",
            "2",
            "4",
            "--trust-remote-code",
            "--served-model-name",
            "m",
            "--host",
            "127.0.1.1",
            "--port",
            "30010",
            "--disaggregation-bootstrap-port",
            "30011",
            "--tensor-parallel-size",
            "4",
            "--mem-fraction-static=0.8",
        ]))
        .unwrap();
        assert_eq!(c.mode, Mode::Prefill);
        assert_eq!(
            (c.host.as_str(), c.port, c.bootstrap_port, c.tp_size),
            ("127.0.1.1", 30010, 30011, 4)
        );
        assert_eq!(c.served_model_name, "m");
    }

    #[test]
    fn knobs_from_flags_and_bad_values_refused() {
        let c = parse_args(&args(&["--mock-ttft", "0.5", "--mock-crash-after=3"])).unwrap();
        assert_eq!(c.crash_after, Some(3));
        assert_eq!(c.ttft, 0.5);
        let err = parse_args(&args(&["--mock-ttft", "-1"])).unwrap_err();
        assert!(err.contains("not a non-negative number"), "{err}");
        assert!(parse_args(&args(&["--port", "x"])).is_err());
        assert!(parse_args(&args(&["--disaggregation-mode", "both"])).is_err());
        // A later flag overrides an earlier one (and an environment knob).
        let c = parse_args(&args(&["--port", "1", "--port", "2"])).unwrap();
        assert_eq!(c.port, 2);
    }
}
