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
        }
    }
}

/// Flags with a value that the mock reads; every other `--flag [values…]` is accepted and ignored, as the
/// mock must take any SGLang command line.
pub fn parse_args(
    args: &[String],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<MockConfig, String> {
    let mut c = MockConfig::default();
    let num = |name: &str, v: &str| -> Result<f64, String> {
        v.parse::<f64>()
            .ok()
            .filter(|x| x.is_finite() && *x >= 0.0)
            .ok_or_else(|| format!("{name}: `{v}` is not a non-negative number"))
    };
    // Knobs also come from the environment so that recipes can inject faults per role.
    let knobs = [
        ("SRT_MOCK_LOAD_TIME", "--mock-load-time"),
        ("SRT_MOCK_SLOW_START", "--mock-slow-start"),
        ("SRT_MOCK_TTFT", "--mock-ttft"),
        ("SRT_MOCK_TPS", "--mock-tokens-per-sec"),
        ("SRT_MOCK_MAX_CONCURRENT", "--mock-max-concurrent"),
        ("SRT_MOCK_CRASH_AFTER", "--mock-crash-after"),
        ("SRT_MOCK_BOOTSTRAP_TIMEOUT", "--mock-bootstrap-timeout"),
    ];
    let mut all: Vec<String> = Vec::new();
    for (var, flag) in knobs {
        if let Some(v) = env(var) {
            all.push(flag.into());
            all.push(v);
        }
    }
    if env("SRT_MOCK_REFUSE_HEALTH").is_some_and(|v| v == "1" || v == "true") {
        all.push("--mock-refuse-health".into());
    }
    all.extend(args.iter().cloned());
    let mut i = 0;
    let mut bootstrap_set = false;
    while i < all.len() {
        let arg = &all[i];
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let takes_value = |f: &str| {
            matches!(
                f,
                "--host"
                    | "--port"
                    | "--disaggregation-mode"
                    | "--disaggregation-bootstrap-port"
                    | "--served-model-name"
                    | "--model-path"
                    | "--model"
                    | "--tensor-parallel-size"
                    | "--tp-size"
                    | "--tp"
                    | "--mock-load-time"
                    | "--mock-slow-start"
                    | "--mock-ttft"
                    | "--mock-tokens-per-sec"
                    | "--mock-max-concurrent"
                    | "--mock-crash-after"
                    | "--mock-bootstrap-timeout"
            )
        };
        if takes_value(&flag) {
            let value = match inline {
                Some(v) => v,
                None => {
                    i += 1;
                    all.get(i)
                        .cloned()
                        .ok_or_else(|| format!("{flag} needs a value"))?
                }
            };
            match flag.as_str() {
                "--host" => c.host = value,
                "--port" => {
                    c.port = value
                        .parse()
                        .map_err(|_| format!("--port: `{value}` is not a port"))?
                }
                "--disaggregation-mode" => {
                    c.mode = match value.as_str() {
                        "prefill" => Mode::Prefill,
                        "decode" => Mode::Decode,
                        "null" | "none" => Mode::Regular,
                        other => {
                            return Err(format!(
                                "--disaggregation-mode: `{other}` is not prefill or decode"
                            ))
                        }
                    }
                }
                "--disaggregation-bootstrap-port" => {
                    bootstrap_set = true;
                    c.bootstrap_port = value.parse().map_err(|_| {
                        format!("--disaggregation-bootstrap-port: `{value}` is not a port")
                    })?
                }
                "--served-model-name" => c.served_model_name = value,
                "--model-path" | "--model" => c.model_path = value,
                "--tensor-parallel-size" | "--tp-size" | "--tp" => {
                    c.tp_size = value.parse().unwrap_or(1)
                }
                "--mock-load-time" => c.load_time = num(&flag, &value)?,
                "--mock-slow-start" => c.slow_start = num(&flag, &value)?,
                "--mock-ttft" => c.ttft = num(&flag, &value)?,
                "--mock-tokens-per-sec" => {
                    c.tokens_per_sec = num(&flag, &value)?;
                    if c.tokens_per_sec <= 0.0 {
                        return Err("--mock-tokens-per-sec must be > 0".into());
                    }
                }
                "--mock-max-concurrent" => c.max_concurrent = num(&flag, &value)?.max(1.0) as usize,
                "--mock-crash-after" => c.crash_after = Some(num(&flag, &value)? as u64),
                "--mock-bootstrap-timeout" => c.bootstrap_timeout = num(&flag, &value)?,
                _ => {}
            }
        } else if flag == "--mock-refuse-health" {
            c.refuse_health = true;
        } else if flag.starts_with("--") && inline.is_none() {
            // An SGLang flag the mock does not need: skip its values (up to the next flag).
            while all.get(i + 1).is_some_and(|v| !v.starts_with("--")) {
                i += 1;
            }
        }
        i += 1;
    }
    let _ = bootstrap_set;
    if c.served_model_name.is_empty() {
        c.served_model_name = c.model_path.clone();
    }
    Ok(c)
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
        let c = parse_args(
            &args(&[
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
            ]),
            &|_| None,
        )
        .unwrap();
        assert_eq!(c.mode, Mode::Prefill);
        assert_eq!(
            (c.host.as_str(), c.port, c.bootstrap_port, c.tp_size),
            ("127.0.1.1", 30010, 30011, 4)
        );
        assert_eq!(c.served_model_name, "m");
    }

    #[test]
    fn knobs_from_env_and_flags() {
        let c = parse_args(&args(&["--mock-ttft", "0.5"]), &|k| {
            (k == "SRT_MOCK_CRASH_AFTER").then(|| "3".to_string())
        })
        .unwrap();
        assert_eq!(c.crash_after, Some(3));
        assert_eq!(c.ttft, 0.5);
        assert!(parse_args(&args(&["--mock-ttft", "-1"]), &|_| None).is_err());
    }
}
