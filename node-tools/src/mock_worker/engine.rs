//! The mock worker's GPU: one task per attention-DP rank runs the shared batch scheduler
//! (`srt_graph_perf_model::scheduler`) in real time, each step lasting the model's predicted latency
//! divided by the simulation speed, and hands every request its tokens as the steps end.

use srt_graph_perf_model::scheduler::{BatchScheduler, Event, Limits, Phase, Request, StepKind};
use srt_graph_perf_model::LatencyTable;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// What a request hears from the engine.
#[derive(Debug, Clone, Copy)]
pub enum Progress {
    Tokens { tokens: u32, done: bool },
    Prefilled,
}

struct Job {
    req: Request,
    tx: mpsc::UnboundedSender<Progress>,
}

pub struct Engine {
    ranks: Vec<mpsc::UnboundedSender<Job>>,
    /// Each rank's batch state, for `/metrics`.
    pub states: Arc<Vec<super::metrics::RankState>>,
    next_rank: AtomicUsize,
    next_id: AtomicU64,
    pub table: Arc<LatencyTable>,
    pub speed: f64,
}

impl Engine {
    /// Starts one scheduler task per attention-DP rank (must run inside a tokio runtime).
    pub fn start(
        table: LatencyTable,
        phase: Phase,
        speed: f64,
        profiler: Arc<super::profiler::Profiler>,
    ) -> Engine {
        let table = Arc::new(table);
        let speed = if speed.is_finite() && speed > 0.0 {
            speed
        } else {
            1.0
        };
        let n = table.input.attention_dp.max(1);
        let states: Arc<Vec<super::metrics::RankState>> =
            Arc::new((0..n).map(|_| Default::default()).collect());
        let ranks = (0..n)
            .map(|k| {
                let (tx, rx) = mpsc::unbounded_channel();
                let rank = Rank {
                    table: table.clone(),
                    phase,
                    speed,
                    states: states.clone(),
                    index: k as usize,
                    profiler: profiler.clone(),
                };
                tokio::spawn(run_rank(rx, rank));
                tx
            })
            .collect();
        Engine {
            ranks,
            states,
            next_rank: AtomicUsize::new(0),
            next_id: AtomicU64::new(0),
            table,
            speed,
        }
    }

    /// Queues a request on the next rank (round robin, as SGLang's DP controller does).
    pub fn submit(
        &self,
        prompt_tokens: u32,
        output_tokens: u32,
    ) -> mpsc::UnboundedReceiver<Progress> {
        let (tx, rx) = mpsc::unbounded_channel();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let rank = self.next_rank.fetch_add(1, Ordering::Relaxed) % self.ranks.len();
        let job = Job {
            req: Request {
                id,
                prompt_tokens,
                output_tokens,
            },
            tx,
        };
        // A rank task ends only with the process.
        let _ = self.ranks[rank].send(job);
        rx
    }

    /// Model time scaled to wall time.
    pub fn wall(&self, model_ms: f64) -> Duration {
        Duration::from_secs_f64((model_ms / 1000.0 / self.speed).max(0.0))
    }
}

/// What one rank's task runs with.
struct Rank {
    table: Arc<LatencyTable>,
    phase: Phase,
    speed: f64,
    states: Arc<Vec<super::metrics::RankState>>,
    index: usize,
    profiler: Arc<super::profiler::Profiler>,
}

async fn run_rank(mut rx: mpsc::UnboundedReceiver<Job>, rank: Rank) {
    let Rank {
        table,
        phase,
        speed,
        states,
        index,
        profiler,
    } = rank;
    let state = &states[index];
    let mut sched = BatchScheduler::new(phase, Limits::from_table(&table));
    let mut waiting: HashMap<u64, mpsc::UnboundedSender<Progress>> = HashMap::new();
    // End of the last step: steps chain on absolute deadlines, so that the 1 ms timer's rounding never
    // accumulates (a late step is followed by an early one).
    let mut clock: Option<Instant> = None;
    loop {
        while let Ok(job) = rx.try_recv() {
            waiting.insert(job.req.id, job.tx);
            sched.submit(job.req);
        }
        let step = sched.next_step(&table);
        state.record(&sched);
        let Some(step) = step else {
            clock = None;
            match rx.recv().await {
                Some(job) => {
                    waiting.insert(job.req.id, job.tx);
                    sched.submit(job.req);
                    continue;
                }
                None => return,
            }
        };
        let start = clock.map_or_else(Instant::now, |c| {
            c.max(Instant::now() - Duration::from_millis(50))
        });
        let end = start + Duration::from_secs_f64(step.ms / 1000.0 / speed);
        tokio::time::sleep_until(end).await;
        clock = Some(end);
        profiler.step(super::profiler::Span {
            rank: index,
            name: match step.kind {
                StepKind::Prefill => "prefill batch",
                StepKind::Decode => "decode batch",
            },
            start,
            end,
            args: serde_json::json!({"batch": step.batch, "model_ms": step.ms}),
        });
        for e in step.events {
            match e {
                Event::Tokens { id, tokens, done } => {
                    let alive = waiting
                        .get(&id)
                        .is_some_and(|tx| tx.send(Progress::Tokens { tokens, done }).is_ok());
                    if done || !alive {
                        waiting.remove(&id);
                    }
                }
                Event::Prefilled { id } => {
                    if let Some(tx) = waiting.remove(&id) {
                        let _ = tx.send(Progress::Prefilled);
                    }
                }
            }
        }
    }
}
