//! The mock worker's `/metrics`: the Prometheus names a real SGLang server exposes, driven by what the
//! worker is doing — the engine's batches (running and queued requests, KV-cache use) and the requests
//! it serves (tokens, TTFT, ITL, end-to-end latency). Times and rates are in model time, as the results
//! are, so a simulated clock ×N does not change them. The mock has no prefix cache: its hit rate is 0.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// One attention-DP rank's batch state, written by its scheduler task after every change.
#[derive(Default)]
pub struct RankState {
    pub running: AtomicUsize,
    pub queued: AtomicUsize,
    pub kv_used: AtomicU64,
    pub kv_capacity: AtomicU64,
}

impl RankState {
    pub fn record(&self, sched: &srt_graph_perf_model::scheduler::BatchScheduler) {
        let (used, cap) = sched.kv_usage();
        self.running.store(sched.admitted(), Ordering::Relaxed);
        self.queued.store(sched.waiting(), Ordering::Relaxed);
        self.kv_used.store(used, Ordering::Relaxed);
        self.kv_capacity.store(cap.unwrap_or(0), Ordering::Relaxed);
    }
}

pub struct Metrics {
    registry: Registry,
    running: Gauge<i64>,
    queued: Gauge<i64>,
    token_usage: Gauge<f64, AtomicU64>,
    gen_throughput: Gauge<f64, AtomicU64>,
    pub prompt_tokens: Counter,
    pub generation_tokens: Counter,
    pub requests: Counter,
    pub ttft: Histogram,
    pub itl: Histogram,
    pub e2e: Histogram,
    /// (when, generation tokens then): the last scrape, for the throughput since.
    last: Mutex<(Instant, u64)>,
    /// Wall seconds per model second.
    speed: f64,
}

impl Metrics {
    pub fn new(model: &str, speed: f64) -> Metrics {
        let labels = [("model_name".into(), model.to_string().into())];
        let mut registry = Registry::with_labels(labels.into_iter());
        let m = Metrics {
            registry: Registry::default(),
            running: Gauge::default(),
            queued: Gauge::default(),
            token_usage: Gauge::default(),
            gen_throughput: Gauge::default(),
            prompt_tokens: Counter::default(),
            generation_tokens: Counter::default(),
            requests: Counter::default(),
            // 1 ms … ~65 s to the first token and end to end; 0.1 ms … ~1.6 s between tokens.
            ttft: Histogram::new(exponential_buckets(0.001, 2.0, 17)),
            itl: Histogram::new(exponential_buckets(0.0001, 2.0, 15)),
            e2e: Histogram::new(exponential_buckets(0.01, 2.0, 13)),
            last: Mutex::new((Instant::now(), 0)),
            speed: if speed > 0.0 { speed } else { 1.0 },
        };
        let r = &mut registry;
        r.register(
            "sglang:num_running_reqs",
            "The number of running requests",
            m.running.clone(),
        );
        r.register(
            "sglang:num_queue_reqs",
            "The number of requests in the waiting queue",
            m.queued.clone(),
        );
        r.register(
            "sglang:token_usage",
            "The token usage of the KV cache (0..1)",
            m.token_usage.clone(),
        );
        r.register(
            "sglang:gen_throughput",
            "The generation throughput (token/s, model time)",
            m.gen_throughput.clone(),
        );
        let no_prefix_cache: Gauge<f64, AtomicU64> = Gauge::default();
        r.register(
            "sglang:cache_hit_rate",
            "The prefix cache hit rate (the mock has no prefix cache)",
            no_prefix_cache,
        );
        r.register(
            "sglang:prompt_tokens",
            "Number of prefill tokens processed",
            m.prompt_tokens.clone(),
        );
        r.register(
            "sglang:generation_tokens",
            "Number of generation tokens processed",
            m.generation_tokens.clone(),
        );
        r.register(
            "sglang:num_requests",
            "Number of requests processed",
            m.requests.clone(),
        );
        r.register(
            "sglang:time_to_first_token_seconds",
            "Histogram of time to first token in seconds",
            m.ttft.clone(),
        );
        r.register(
            "sglang:inter_token_latency_seconds",
            "Histogram of inter-token latency in seconds",
            m.itl.clone(),
        );
        r.register(
            "sglang:e2e_request_latency_seconds",
            "Histogram of end-to-end request latency in seconds",
            m.e2e.clone(),
        );
        Metrics { registry, ..m }
    }

    /// Wall time as model time.
    pub fn model_secs(&self, wall: std::time::Duration) -> f64 {
        wall.as_secs_f64() * self.speed
    }

    /// The exposition text, with the gauges read now: from the engine's ranks when it has some, else
    /// from the requests being served (the fixed timing has no queue and no KV model).
    pub fn render(&self, ranks: &[RankState], active: usize) -> String {
        if ranks.is_empty() {
            self.running.set(active as i64);
            self.queued.set(0);
            self.token_usage.set(0.0);
        } else {
            let sum = |f: fn(&RankState) -> u64| ranks.iter().map(f).sum::<u64>();
            self.running
                .set(sum(|r| r.running.load(Ordering::Relaxed) as u64) as i64);
            self.queued
                .set(sum(|r| r.queued.load(Ordering::Relaxed) as u64) as i64);
            let cap = sum(|r| r.kv_capacity.load(Ordering::Relaxed));
            let used = sum(|r| r.kv_used.load(Ordering::Relaxed));
            self.token_usage.set(if cap > 0 {
                used as f64 / cap as f64
            } else {
                0.0
            });
        }
        {
            let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            let tokens = self.generation_tokens.get();
            let wall = now.duration_since(last.0).as_secs_f64();
            if wall > 0.0 {
                self.gen_throughput
                    .set((tokens - last.1) as f64 / (wall * self.speed));
            }
            *last = (now, tokens);
        }
        let mut out = String::new();
        // Encoding into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use srt_graph_perf_model::scheduler::{BatchScheduler, Limits, Phase, Request};

    fn value(text: &str, name: &str) -> f64 {
        text.lines()
            .find(|l| l.starts_with(name) && !l.starts_with('#'))
            .and_then(|l| l.split_whitespace().last())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} not in:\n{text}"))
    }

    #[test]
    fn gauges_follow_the_batch_and_counters_the_requests() {
        let limits = Limits {
            max_running: 2,
            chunked_prefill: 8192,
            kv_capacity_tokens: Some(1000),
            tokens_per_step: 1.0,
        };
        let mut sched = BatchScheduler::new(Phase::Aggregated, limits);
        for id in 0..3 {
            sched.submit(Request {
                id,
                prompt_tokens: 100,
                output_tokens: 100,
            });
        }
        let ranks = [RankState::default()];
        let table = srt_graph_perf_model::testing::flat_table(10.0, 5.0);
        let _ = sched.next_step(&table);
        ranks[0].record(&sched);
        let m = Metrics::new("m", 4.0);
        m.generation_tokens.inc_by(10);
        m.ttft.observe(0.02);
        let text = m.render(&ranks, 0);
        assert_eq!(value(&text, "sglang:num_running_reqs"), 2.0);
        assert_eq!(value(&text, "sglang:num_queue_reqs"), 1.0);
        assert!(
            (value(&text, "sglang:token_usage") - 0.4).abs() < 1e-9,
            "{text}"
        );
        assert_eq!(value(&text, "sglang:generation_tokens_total"), 10.0);
        assert!(text.contains("model_name=\"m\""), "{text}");
        assert!(
            text.contains("sglang:time_to_first_token_seconds_bucket"),
            "{text}"
        );
        assert_eq!(value(&text, "sglang:cache_hit_rate"), 0.0);
        // Without an engine: what is being served, no queue.
        let fixed = m.render(&[], 5);
        assert_eq!(value(&fixed, "sglang:num_running_reqs"), 5.0);
        assert_eq!(value(&fixed, "sglang:num_queue_reqs"), 0.0);
    }
}
