//! `srt-graph mock-worker`: a GPU-less stand-in for `python3 -m sglang.launch_server`, started with the same
//! flags. It serves the SGLang HTTP API that sglang-router and OpenAI clients use, and in disaggregated mode
//! a prefill and a decode mock cooperate through the bootstrap rendezvous as real workers do: the prefill
//! worker registers each request's `bootstrap_room` on its bootstrap port once it has "prefilled" it, and the
//! decode worker fetches the room from `bootstrap_host:bootstrap_port` before it streams a single token. A
//! request that reaches decode without its prefill partner therefore fails, as it would for real.
//!
//! Token model (documented approximation, shared with `srt-graph bench`): one whitespace-separated word of
//! a prompt is one token; each generated token is one word.

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use axum::{Json, Router};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::convert::Infallible;
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
    Ok(MockConfig {
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
}

type AppState = Arc<Shared>;

pub async fn serve(cfg: MockConfig) -> std::io::Result<()> {
    crate::sys::raise_nofile_limit();
    if cfg.slow_start > 0.0 {
        eprintln!(
            "mock-worker: slow start, opening the port in {:.1}s",
            cfg.slow_start
        );
        tokio::time::sleep(Duration::from_secs_f64(cfg.slow_start)).await;
    }
    let state = Arc::new(Shared {
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
        .route("/flush_cache", post(flush_cache).get(flush_cache))
        .route("/generate", post(generate))
        .route("/v1/completions", post(completions))
        .route("/v1/chat/completions", post(chat))
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
    eprintln!(
        "mock-worker: {mode} worker for `{}` on http://{}:{} (load {:.1}s, ttft {:.3}s, {:.0} tok/s)",
        cfg.served_model_name, cfg.host, cfg.port, cfg.load_time, cfg.ttft, cfg.tokens_per_sec
    );
    if cfg.mode == Mode::Prefill {
        let boot = Router::new()
            .route("/kv/{room}", get(bootstrap_fetch))
            .with_state(state.clone());
        let boot_listener =
            tokio::net::TcpListener::bind((cfg.host.as_str(), cfg.bootstrap_port)).await?;
        eprintln!(
            "mock-worker: bootstrap server on {}:{}",
            cfg.host, cfg.bootstrap_port
        );
        tokio::spawn(async move {
            if let Err(e) = axum::serve(boot_listener, boot).await {
                eprintln!("mock-worker: bootstrap server failed: {e}");
                std::process::exit(1);
            }
        });
    }
    axum::serve(listener, app).await
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

/// What the three generation endpoints have in common once their bodies are read.
struct GenRequest {
    prompt_tokens: usize,
    max_tokens: usize,
    stream: bool,
    include_usage: bool,
    bootstrap: Option<(String, u16, u64)>,
    model: String,
}

fn count_tokens(v: &Value) -> usize {
    match v {
        Value::String(s) => s.split_whitespace().count().max(1),
        Value::Array(items) if items.iter().all(Value::is_number) => items.len(),
        Value::Array(items) => items.iter().map(count_tokens).sum(),
        _ => 1,
    }
}

fn parse_request(body: &Value, default_model: &str, default_max: usize) -> GenRequest {
    let u = |v: &Value| v.as_u64().map(|x| x as usize);
    let max_tokens = body
        .get("max_tokens")
        .and_then(u)
        .or_else(|| body.get("max_completion_tokens").and_then(u))
        .or_else(|| body.pointer("/sampling_params/max_new_tokens").and_then(u))
        .unwrap_or(default_max)
        .clamp(1, 1_000_000);
    let prompt_tokens = if let Some(msgs) = body.get("messages").and_then(Value::as_array) {
        msgs.iter()
            .map(|m| m.get("content").map_or(1, count_tokens))
            .sum()
    } else if let Some(p) = body.get("prompt") {
        count_tokens(p)
    } else if let Some(ids) = body.get("input_ids") {
        count_tokens(ids)
    } else {
        body.get("text").map_or(1, count_tokens)
    };
    let bootstrap = match (
        body.get("bootstrap_host").and_then(Value::as_str),
        body.get("bootstrap_room").and_then(Value::as_u64),
    ) {
        (Some(h), Some(room)) => {
            let port = body
                .get("bootstrap_port")
                .and_then(Value::as_u64)
                .unwrap_or(30001) as u16;
            Some((h.to_string(), port, room))
        }
        _ => None,
    };
    GenRequest {
        prompt_tokens,
        max_tokens,
        stream: body.get("stream").and_then(Value::as_bool).unwrap_or(false),
        include_usage: body
            .pointer("/stream_options/include_usage")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        bootstrap,
        model: body
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or(default_model)
            .to_string(),
    }
}

#[derive(Clone, Copy)]
enum Api {
    Generate,
    Completions,
    Chat,
}

async fn generate(State(s): State<AppState>, Json(body): Json<Value>) -> Response {
    handle(s, body, Api::Generate).await
}
async fn completions(State(s): State<AppState>, Json(body): Json<Value>) -> Response {
    handle(s, body, Api::Completions).await
}
async fn chat(State(s): State<AppState>, Json(body): Json<Value>) -> Response {
    handle(s, body, Api::Chat).await
}

fn error(status: StatusCode, message: String) -> Response {
    (status, Json(json!({"error": {"message": message, "type": "mock_worker_error", "code": status.as_u16()}}))).into_response()
}

const WORDS: [&str; 8] = [
    "alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta",
];

async fn handle(s: AppState, body: Value, api: Api) -> Response {
    if !loaded(&s) {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "model is still loading".into(),
        );
    }
    let n = s.requests.fetch_add(1, Ordering::SeqCst) + 1;
    if let Some(limit) = s.cfg.crash_after {
        if n > limit && !s.crashed.swap(true, Ordering::SeqCst) {
            eprintln!("mock-worker: crash injected after {limit} request(s)");
            std::process::exit(1);
        }
    }
    if s.cfg
        .fail_every
        .is_some_and(|every| n.is_multiple_of(every))
    {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("injected fault: request {n} fails (--mock-fail-every)"),
        );
    }
    let req = parse_request(&body, &s.cfg.served_model_name, 16);
    let Ok(permit) = s.queue.clone().acquire_owned().await else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "shutting down".into());
    };
    s.active.fetch_add(1, Ordering::Relaxed);
    let guard = ActiveGuard(s.clone(), permit);
    match s.cfg.mode {
        Mode::Prefill => {
            // Prefill the prompt, then publish the room for the decode side.
            tokio::time::sleep(Duration::from_secs_f64(s.cfg.ttft)).await;
            if let Some((_, _, room)) = req.bootstrap {
                let tx = {
                    let mut rooms = s.rooms.lock().unwrap_or_else(|p| p.into_inner());
                    rooms
                        .entry(room)
                        .or_insert_with(|| watch::channel(None).0)
                        .clone()
                };
                tx.send_replace(Some(Room {
                    prompt_tokens: req.prompt_tokens,
                }));
                // Forget rooms nobody fetches.
                let weak = Arc::downgrade(&s);
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_secs(120)).await;
                    if let Some(s) = weak.upgrade() {
                        s.rooms
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .remove(&room);
                    }
                });
            }
            // The router discards the prefill response; give it one token.
            respond(guard, req, api, 1, Duration::ZERO).await
        }
        Mode::Decode => {
            let Some((host, port, room)) = req.bootstrap.clone() else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "a decode worker needs bootstrap_host, bootstrap_port and bootstrap_room: send requests through the PD router".into(),
                );
            };
            let url = format!("http://{host}:{port}/kv/{room}");
            let fetched = s
                .http
                .get(&url)
                .timeout(Duration::from_secs_f64(s.cfg.bootstrap_timeout + 5.0))
                .send()
                .await
                .and_then(reqwest::Response::error_for_status);
            if let Err(e) = fetched {
                return error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("KV transfer failed: no prefilled room {room} at bootstrap {host}:{port}: {e}"),
                );
            }
            let tokens = req.max_tokens;
            respond(guard, req, api, tokens, Duration::ZERO).await
        }
        Mode::Regular => {
            let tokens = req.max_tokens;
            respond(guard, req, api, tokens, Duration::from_secs_f64(s.cfg.ttft)).await
        }
    }
}

/// Holds a queue slot and the active count for as long as the response is being produced.
struct ActiveGuard(
    AppState,
    #[allow(dead_code)] tokio::sync::OwnedSemaphorePermit,
);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::Relaxed);
    }
}

fn chunk(api: Api, id: &str, model: &str, text: &str, finish: Option<&str>) -> Value {
    match api {
        Api::Generate => {
            json!({"text": text, "meta_info": {"id": id, "finish_reason": finish.map(|f| json!({"type": f}))}})
        }
        Api::Completions => json!({
            "id": id, "object": "text_completion", "created": 0, "model": model,
            "choices": [{"index": 0, "text": text, "logprobs": null, "finish_reason": finish}],
        }),
        Api::Chat => json!({
            "id": id, "object": "chat.completion.chunk", "created": 0, "model": model,
            "choices": [{"index": 0, "delta": {"content": text}, "logprobs": null, "finish_reason": finish}],
        }),
    }
}

async fn respond(
    guard: ActiveGuard,
    req: GenRequest,
    api: Api,
    tokens: usize,
    ttft: Duration,
) -> Response {
    let s = guard.0.clone();
    let tokens = if s.cfg.empty_output { 0 } else { tokens };
    let id = format!("mock-{:x}", fastrand::u64(..));
    let per_token = Duration::from_secs_f64(1.0 / s.cfg.tokens_per_sec);
    let usage = json!({"prompt_tokens": req.prompt_tokens, "completion_tokens": tokens,
        "total_tokens": req.prompt_tokens + tokens});
    if !req.stream {
        let _guard = guard;
        tokio::time::sleep(ttft + per_token * tokens.saturating_sub(1) as u32).await;
        let text: String = (0..tokens)
            .map(|i| format!(" {}", WORDS[i % WORDS.len()]))
            .collect();
        let body = match api {
            Api::Generate => {
                json!({"text": text, "meta_info": {"id": id, "prompt_tokens": req.prompt_tokens,
                "completion_tokens": tokens, "finish_reason": {"type": "length", "length": tokens}}})
            }
            Api::Completions => {
                json!({"id": id, "object": "text_completion", "created": 0, "model": req.model,
                "choices": [{"index": 0, "text": text, "logprobs": null, "finish_reason": "length"}], "usage": usage})
            }
            Api::Chat => {
                json!({"id": id, "object": "chat.completion", "created": 0, "model": req.model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "length"}],
                "usage": usage})
            }
        };
        return Json(body).into_response();
    }
    // Streaming: one SSE event per token; token i is due at start + ttft + i/tokens_per_sec. Deadlines are
    // absolute and every token already due goes out in one write, so the rate holds even when the timer
    // (1 ms resolution) is coarser than the token interval.
    let start = tokio::time::Instant::now();
    let due = move |i: usize| start + ttft + per_token.mul_f64(i as f64);
    let state = (0usize, guard, id, req, usage, false);
    let stream =
        futures_util::stream::unfold(state, move |(i, guard, id, req, usage, done)| async move {
            if done {
                return None;
            }
            if i == tokens {
                let mut out = String::new();
                if req.include_usage && !matches!(api, Api::Generate) {
                    let mut last = chunk(api, &id, &req.model, "", None);
                    last["choices"] = json!([]);
                    last["usage"] = usage.clone();
                    out.push_str(&format!("data: {last}\n\n"));
                }
                out.push_str("data: [DONE]\n\n");
                return Some((
                    Ok::<Bytes, Infallible>(Bytes::from(out)),
                    (i, guard, id, req, usage, true),
                ));
            }
            tokio::time::sleep_until(due(i)).await;
            let now = tokio::time::Instant::now();
            let mut out = String::new();
            let mut next = i;
            while next < tokens && (next == i || due(next) <= now) {
                let finish = (next + 1 == tokens).then_some("length");
                let text = format!(" {}", WORDS[next % WORDS.len()]);
                out.push_str(&format!(
                    "data: {}\n\n",
                    chunk(api, &id, &req.model, &text, finish)
                ));
                next += 1;
            }
            Some((Ok(Bytes::from(out)), (next, guard, id, req, usage, false)))
        });
    Response::builder()
        .header("content-type", "text/event-stream")
        .header("cache-control", "no-cache")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
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
