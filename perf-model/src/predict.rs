//! `predict`: the deployment's batch schedulers run in virtual time against a closed-loop client (as the
//! benchmark drives it: `concurrency` requests in flight, a new one as each finishes), so a prediction
//! schedules the very batches a simulated run does, without waiting for them.

use crate::scheduler::{BatchScheduler, Event, Limits, Phase, Request, RequestId};
use crate::table::LatencyTable;
use serde::Serialize;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// The serving side: the tables of its roles and how many workers each has.
pub struct Deployment<'a> {
    /// Aggregated workers, or the prefill and decode roles.
    pub roles: Vec<RoleTables<'a>>,
}

pub struct RoleTables<'a> {
    pub table: &'a LatencyTable,
    pub phase: Phase,
    pub workers: u32,
}

impl<'a> Deployment<'a> {
    /// The deployment of these roles' tables (`agg`, or `prefill` and `decode`), prefill first, each
    /// with the workers its input names.
    pub fn from_tables(tables: &'a [LatencyTable]) -> Deployment<'a> {
        let mut roles: Vec<RoleTables<'a>> = tables
            .iter()
            .map(|t| RoleTables {
                table: t,
                phase: Phase::of_role(&t.input.role),
                workers: t.input.workers.max(1),
            })
            .collect();
        roles.sort_by_key(|r| r.phase != Phase::PrefillOnly);
        Deployment { roles }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Load {
    pub isl: u32,
    pub osl: u32,
    pub concurrency: u32,
    /// Requests the client sends in all.
    pub requests: u32,
    /// sa-bench's `random_range_ratio`: each request's lengths are drawn uniformly from
    /// `[ratio × len, len]` (1 = fixed lengths).
    pub range_ratio: f64,
}

/// The client's request lengths, drawn as sa-bench draws them (a fixed seed: predictions repeat).
fn lengths(load: &Load) -> Vec<(u32, u32)> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut uniform = move || {
        // xorshift64*: plenty for drawing lengths.
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        (state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    };
    let ratio = load.range_ratio.clamp(0.0, 1.0);
    let mut draw = |len: u32| -> u32 {
        let lo = (f64::from(len) * ratio).floor();
        (lo + uniform() * (f64::from(len) - lo + 1.0))
            .floor()
            .clamp(1.0, f64::from(len.max(1))) as u32
    };
    (0..load.requests)
        .map(|_| (draw(load.isl), draw(load.osl)))
        .collect()
}

/// Predicted figures of one benchmark point (times in ms).
#[derive(Debug, Clone, Serialize)]
pub struct Prediction {
    pub concurrency: u32,
    pub mean_ttft_ms: f64,
    pub median_ttft_ms: f64,
    pub mean_tpot_ms: f64,
    pub median_tpot_ms: f64,
    pub mean_itl_ms: f64,
    pub request_throughput: f64,
    pub output_throughput: f64,
    pub output_tps_per_gpu: f64,
    pub output_tps_per_user: f64,
    pub gpus: u32,
}

/// One schedulable rank: its scheduler and the step it is in, if any.
struct Rank<'a> {
    sched: BatchScheduler,
    table: &'a LatencyTable,
    busy: Option<Vec<Event>>,
    /// Index of its role in `Deployment::roles` (prefill ranks hand over to the next role).
    role: usize,
    /// Requests routed to it that have not arrived yet (the router counts them at once).
    arriving: usize,
}

#[derive(PartialEq, Eq, PartialOrd, Ord)]
enum Due {
    StepDone(usize),
    Arrive(usize, RequestId),
}

#[derive(Default, Clone, Copy)]
struct Timing {
    start: u64,
    first: Option<u64>,
    end: Option<u64>,
}

/// Nanoseconds of virtual time (integers keep the event heap totally ordered).
fn ns(ms: f64) -> u64 {
    (ms * 1e6).max(0.0) as u64
}

struct Sim<'a> {
    ranks: Vec<Rank<'a>>,
    /// Rank indices of each role.
    by_role: Vec<Vec<usize>>,
    heap: BinaryHeap<Reverse<(u64, u64, Due)>>,
    seq: u64,
    timing: Vec<Timing>,
    lengths: Vec<(u32, u32)>,
    load: Load,
    issued: u32,
}

impl<'a> Sim<'a> {
    fn new(d: &Deployment<'a>, load: Load) -> Sim<'a> {
        let mut ranks = Vec::new();
        let mut by_role = Vec::new();
        for (role, r) in d.roles.iter().enumerate() {
            let mut ids = Vec::new();
            let per_worker = r.table.input.attention_dp.max(1);
            for _ in 0..r.workers.max(1) * per_worker {
                ids.push(ranks.len());
                ranks.push(Rank {
                    sched: BatchScheduler::new(r.phase, Limits::from_table(r.table)),
                    table: r.table,
                    busy: None,
                    role,
                    arriving: 0,
                });
            }
            by_role.push(ids);
        }
        Sim {
            ranks,
            by_role,
            heap: BinaryHeap::new(),
            seq: 0,
            timing: vec![Timing::default(); load.requests as usize],
            lengths: lengths(&load),
            load,
            issued: 0,
        }
    }

    fn push(&mut self, at: u64, due: Due) {
        self.seq += 1;
        self.heap.push(Reverse((at, self.seq, due)));
    }

    /// The rank of `role` with the fewest outstanding requests (the router's load balance).
    fn pick(&mut self, role: usize) -> usize {
        let ids = &self.by_role[role];
        let rank = ids
            .iter()
            .copied()
            .min_by_key(|&i| self.ranks[i].sched.outstanding() + self.ranks[i].arriving)
            .unwrap_or(0);
        self.ranks[rank].arriving += 1;
        rank
    }

    fn issue(&mut self, now: u64) {
        if self.issued >= self.load.requests {
            return;
        }
        let id = RequestId::from(self.issued);
        self.issued += 1;
        self.timing[id as usize].start = now;
        let rank = self.pick(0);
        self.push(now, Due::Arrive(rank, id));
    }

    fn start_step(&mut self, rank: usize, now: u64) {
        let r = &mut self.ranks[rank];
        if r.busy.is_some() {
            return;
        }
        if let Some(step) = r.sched.next_step(r.table) {
            r.busy = Some(step.events);
            self.push(now + ns(step.ms), Due::StepDone(rank));
        }
    }

    fn run(mut self) -> Vec<Timing> {
        for _ in 0..self.load.concurrency.min(self.load.requests) {
            self.issue(0);
        }
        while let Some(Reverse((now, _, due))) = self.heap.pop() {
            match due {
                Due::Arrive(rank, id) => {
                    let (prompt_tokens, output_tokens) = self.lengths[id as usize];
                    self.ranks[rank].arriving -= 1;
                    self.ranks[rank].sched.submit(Request {
                        id,
                        prompt_tokens,
                        output_tokens,
                    });
                    self.start_step(rank, now);
                }
                Due::StepDone(rank) => {
                    let events = self.ranks[rank].busy.take().unwrap_or_default();
                    for e in events {
                        self.deliver(rank, e, now);
                    }
                    self.start_step(rank, now);
                }
            }
        }
        self.timing
    }

    fn deliver(&mut self, rank: usize, e: Event, now: u64) {
        match e {
            Event::Tokens { id, done, .. } => {
                let t = &mut self.timing[id as usize];
                t.first.get_or_insert(now);
                if done {
                    t.end = Some(now);
                    self.issue(now);
                }
            }
            Event::Prefilled { id } => {
                let role = self.ranks[rank].role;
                let ms = kv_transfer_ms(self.ranks[rank].table, self.lengths[id as usize].0);
                let next = self.pick(role + 1);
                self.push(now + ns(ms), Due::Arrive(next, id));
            }
        }
    }
}

/// The KV cache of a `prompt`-token request crossing from prefill to decode, per GPU: a fixed handshake
/// (bootstrap, NIXL) plus its bytes at the link's rate.
pub fn kv_transfer_ms(table: &LatencyTable, prompt: u32) -> f64 {
    let bytes = table.kv_bytes_per_token.unwrap_or(0) as f64 * f64::from(prompt);
    1.0 + bytes / (table.input.kv_link_gbps.max(0.1) * 1e6)
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        0.0
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

/// Predicts one benchmark point. The deployment's last role is the one that decodes.
pub fn predict(d: &Deployment<'_>, load: Load) -> Prediction {
    let gpus: u32 = d
        .roles
        .iter()
        .map(|r| r.workers * r.table.input.gpus_per_worker.max(1))
        .sum();
    let lens = lengths(&load);
    let timing = Sim::new(d, load).run();
    let done: Vec<(&Timing, u32)> = timing
        .iter()
        .zip(&lens)
        .filter(|(t, _)| t.end.is_some())
        .map(|(t, l)| (t, l.1))
        .collect();
    let ms = |a: u64, b: u64| (b.saturating_sub(a)) as f64 / 1e6;
    let ttft: Vec<f64> = done
        .iter()
        .map(|(t, _)| ms(t.start, t.first.unwrap_or(t.start)))
        .collect();
    let tpot: Vec<f64> = done
        .iter()
        .filter(|(_, osl)| *osl > 1)
        .map(|(t, osl)| {
            ms(t.first.unwrap_or(t.start), t.end.unwrap_or(t.start)) / f64::from(osl - 1)
        })
        .collect();
    let makespan = done
        .iter()
        .filter_map(|(t, _)| t.end)
        .max()
        .map_or(0.0, |end| end as f64 / 1e9);
    let requests = done.len() as f64;
    let tokens: f64 = done.iter().map(|(_, osl)| f64::from(*osl)).sum();
    let output_throughput = if makespan > 0.0 {
        tokens / makespan
    } else {
        0.0
    };
    let mean_tpot = mean(&tpot);
    Prediction {
        concurrency: load.concurrency,
        mean_ttft_ms: mean(&ttft),
        median_ttft_ms: median(ttft),
        mean_tpot_ms: mean_tpot,
        median_tpot_ms: median(tpot),
        mean_itl_ms: mean_tpot,
        request_throughput: if makespan > 0.0 {
            requests / makespan
        } else {
            0.0
        },
        output_throughput,
        output_tps_per_gpu: output_throughput / f64::from(gpus.max(1)),
        output_tps_per_user: if mean_tpot > 0.0 {
            1000.0 / mean_tpot
        } else {
            0.0
        },
        gpus,
    }
}

/// Indices of the points on the Pareto frontier of (tokens/s per user, tokens/s per GPU): no other
/// point is at least as good on both and better on one.
pub fn pareto(points: &[Prediction]) -> Vec<usize> {
    (0..points.len())
        .filter(|&i| {
            let p = &points[i];
            !points.iter().any(|q| {
                q.output_tps_per_user >= p.output_tps_per_user
                    && q.output_tps_per_gpu >= p.output_tps_per_gpu
                    && (q.output_tps_per_user > p.output_tps_per_user
                        || q.output_tps_per_gpu > p.output_tps_per_gpu)
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::flat_table;

    #[test]
    fn one_request_costs_a_prefill_and_its_decode_steps() {
        let t = flat_table(50.0, 10.0);
        let d = Deployment {
            roles: vec![RoleTables {
                table: &t,
                phase: Phase::Aggregated,
                workers: 1,
            }],
        };
        let p = predict(
            &d,
            Load {
                isl: 100,
                osl: 11,
                concurrency: 1,
                requests: 3,
                range_ratio: 1.0,
            },
        );
        assert!((p.mean_ttft_ms - 50.0).abs() < 1e-6, "{p:?}");
        assert!((p.mean_tpot_ms - 10.0).abs() < 1e-6, "{p:?}");
        // 3 requests × (50 + 100 ms), 11 tokens each.
        assert!((p.output_throughput - 33.0 / 0.45).abs() < 1e-3, "{p:?}");
    }

    #[test]
    fn disaggregated_ttft_adds_the_kv_transfer() {
        let mut pre = flat_table(50.0, 10.0);
        pre.kv_bytes_per_token = Some(1_000_000);
        pre.input.kv_link_gbps = 1.0;
        let dec = flat_table(50.0, 10.0);
        let d = Deployment {
            roles: vec![
                RoleTables {
                    table: &pre,
                    phase: Phase::PrefillOnly,
                    workers: 1,
                },
                RoleTables {
                    table: &dec,
                    phase: Phase::DecodeOnly,
                    workers: 1,
                },
            ],
        };
        let p = predict(
            &d,
            Load {
                isl: 100,
                osl: 5,
                concurrency: 1,
                requests: 1,
                range_ratio: 1.0,
            },
        );
        // prefill 50 + transfer (1 + 100 MB at 1 GB/s = 101) + the first decode step 10.
        assert!((p.mean_ttft_ms - 161.0).abs() < 1e-6, "{p:?}");
    }
}
