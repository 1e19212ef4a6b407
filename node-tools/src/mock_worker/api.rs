//! The SGLang HTTP API the router and clients see: the generation endpoints, their request bodies and
//! their responses (whole or streamed), paced by the worker's timing.

use super::{loaded, AppState, Mode, Room, Shared};
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

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

pub(super) async fn generate(State(s): State<AppState>, Json(body): Json<Value>) -> Response {
    handle(s, body, Api::Generate).await
}
pub(super) async fn completions(State(s): State<AppState>, Json(body): Json<Value>) -> Response {
    handle(s, body, Api::Completions).await
}
pub(super) async fn chat(State(s): State<AppState>, Json(body): Json<Value>) -> Response {
    handle(s, body, Api::Chat).await
}

fn error(status: StatusCode, message: String) -> Response {
    (status, Json(json!({"error": {"message": message, "type": "mock_worker_error", "code": status.as_u16()}}))).into_response()
}

const WORDS: [&str; 8] = [
    "alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta",
];

async fn handle(s: AppState, body: Value, api: Api) -> Response {
    let arrived = tokio::time::Instant::now();
    if !loaded(&s) {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "model is still loading".into(),
        );
    }
    let n = s.requests.fetch_add(1, Ordering::SeqCst) + 1;
    if let Some(limit) = s.cfg.crash_after {
        if n > limit && !s.crashed.swap(true, Ordering::SeqCst) {
            log_line!("mock-worker: crash injected after {limit} request(s)");
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
    let guard = ActiveGuard(s.clone(), permit, arrived);
    match s.cfg.mode {
        Mode::Prefill => {
            // Prefill the prompt, then publish the room for the decode side.
            match &s.engine {
                Some(e) => {
                    let mut rx = e.submit(req.prompt_tokens as u32, 1);
                    while let Some(p) = rx.recv().await {
                        if matches!(p, super::engine::Progress::Prefilled) {
                            break;
                        }
                    }
                }
                None => {
                    tokio::time::sleep(Duration::from_secs_f64(s.cfg.ttft / s.cfg.sim_speed)).await
                }
            }
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
            let pace = Pace::fixed(&s, Duration::ZERO);
            respond(guard, req, api, 1, pace).await
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
            let pace = match &s.engine {
                Some(e) => {
                    // The KV cache crosses from the prefill worker before decode can start.
                    let ms = srt_graph_perf_model::predict::kv_transfer_ms(
                        &e.table,
                        req.prompt_tokens as u32,
                    );
                    tokio::time::sleep(e.wall(ms)).await;
                    let rx = e.submit(req.prompt_tokens as u32, tokens as u32);
                    Pace::Engine { rx, out: 0 }
                }
                None => Pace::fixed(&s, Duration::ZERO),
            };
            respond(guard, req, api, tokens, pace).await
        }
        Mode::Regular => {
            let tokens = req.max_tokens;
            let pace = match &s.engine {
                Some(e) => Pace::Engine {
                    rx: e.submit(req.prompt_tokens as u32, tokens as u32),
                    out: 0,
                },
                None => Pace::fixed(&s, Duration::from_secs_f64(s.cfg.ttft)),
            };
            respond(guard, req, api, tokens, pace).await
        }
    }
}

/// Holds a queue slot and the active count for as long as the response is being produced.
struct ActiveGuard(
    AppState,
    #[allow(dead_code)] tokio::sync::OwnedSemaphorePermit,
    /// When the request arrived (before it waited for a slot).
    tokio::time::Instant,
);

/// What `/metrics` learns from one response as its tokens go out.
struct Observed {
    arrived: tokio::time::Instant,
    last: Option<tokio::time::Instant>,
}

impl Observed {
    /// `n` tokens went out now.
    fn tokens(&mut self, s: &Shared, n: usize) {
        let now = tokio::time::Instant::now();
        let m = &s.metrics;
        match self.last {
            None => m.ttft.observe(m.model_secs(now - self.arrived)),
            // Tokens that leave in one write shared the gap since the last one.
            Some(last) => {
                let gap = m.model_secs(now - last) / n.max(1) as f64;
                for _ in 0..n {
                    m.itl.observe(gap);
                }
            }
        }
        m.generation_tokens.inc_by(n as u64);
        self.last = Some(now);
    }

    fn finished(&self, s: &Shared) {
        let m = &s.metrics;
        m.e2e.observe(m.model_secs(self.arrived.elapsed()));
        m.requests.inc();
        // The fixed timing schedules no batches: a request is its step.
        if s.engine.is_none() {
            s.profiler.step(super::profiler::Span {
                rank: 0,
                name: "request (fixed timing)",
                start: self.arrived,
                end: tokio::time::Instant::now(),
                args: json!({}),
            });
        }
    }
}

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

/// When a response's tokens are due: on a fixed schedule, or as the engine's steps yield them.
pub(super) enum Pace {
    Fixed {
        start: tokio::time::Instant,
        ttft: Duration,
        per_token: Duration,
    },
    Engine {
        rx: tokio::sync::mpsc::UnboundedReceiver<super::engine::Progress>,
        out: usize,
    },
}

impl Pace {
    fn fixed(s: &Shared, ttft: Duration) -> Pace {
        let speed = s.cfg.sim_speed;
        Pace::Fixed {
            start: tokio::time::Instant::now(),
            ttft: ttft.div_f64(speed),
            per_token: Duration::from_secs_f64(1.0 / s.cfg.tokens_per_sec / speed),
        }
    }

    /// Waits until token `i` (0-based) is out; returns how many of `total` are out by then (> `i`).
    async fn wait(&mut self, i: usize, total: usize) -> usize {
        match self {
            Pace::Fixed {
                start,
                ttft,
                per_token,
            } => {
                let due = |k: usize| *start + *ttft + per_token.mul_f64(k as f64);
                tokio::time::sleep_until(due(i)).await;
                let now = tokio::time::Instant::now();
                let mut n = i + 1;
                while n < total && due(n) <= now {
                    n += 1;
                }
                n.min(total)
            }
            Pace::Engine { rx, out } => {
                while *out <= i {
                    match rx.recv().await {
                        Some(super::engine::Progress::Tokens { tokens, done }) => {
                            *out += tokens as usize;
                            if done {
                                *out = total;
                            }
                        }
                        Some(super::engine::Progress::Prefilled) | None => *out = total,
                    }
                }
                (*out).min(total)
            }
        }
    }
}

async fn respond(
    guard: ActiveGuard,
    req: GenRequest,
    api: Api,
    tokens: usize,
    mut pace: Pace,
) -> Response {
    let s = guard.0.clone();
    let tokens = if s.cfg.empty_output { 0 } else { tokens };
    s.metrics.prompt_tokens.inc_by(req.prompt_tokens as u64);
    let mut observed = Observed {
        arrived: guard.2,
        last: None,
    };
    let id = format!("mock-{:x}", fastrand::u64(..));
    let usage = json!({"prompt_tokens": req.prompt_tokens, "completion_tokens": tokens,
        "total_tokens": req.prompt_tokens + tokens});
    if !req.stream {
        let _guard = guard;
        let mut out = 0;
        while out < tokens {
            out = pace.wait(tokens - 1, tokens).await;
        }
        // The client sees every token at once: one gap, the whole latency.
        observed.tokens(&s, tokens);
        observed.finished(&s);
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
    // Streaming: one SSE event per token, as each is due; every token already due goes out in one write,
    // so the rate holds even when the timer (1 ms resolution) is coarser than the token interval.
    let state = (0usize, guard, id, req, usage, false, pace, observed);
    let stream = futures_util::stream::unfold(
        state,
        move |(i, guard, id, req, usage, done, mut pace, mut observed)| async move {
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
                observed.finished(&guard.0);
                return Some((
                    Ok::<Bytes, Infallible>(Bytes::from(out)),
                    (i, guard, id, req, usage, true, pace, observed),
                ));
            }
            let upto = pace.wait(i, tokens).await;
            observed.tokens(&guard.0, upto - i);
            let mut out = String::new();
            for next in i..upto {
                let finish = (next + 1 == tokens).then_some("length");
                let text = format!(" {}", WORDS[next % WORDS.len()]);
                out.push_str(&format!(
                    "data: {}\n\n",
                    chunk(api, &id, &req.model, &text, finish)
                ));
            }
            Some((
                Ok(Bytes::from(out)),
                (upto, guard, id, req, usage, false, pace, observed),
            ))
        },
    );
    Response::builder()
        .header("content-type", "text/event-stream")
        .header("cache-control", "no-cache")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}
