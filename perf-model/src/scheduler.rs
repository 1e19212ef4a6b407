//! One attention-DP rank's batch scheduler, as SGLang's runs it: continuous batching bounded by the
//! maximum running requests and the KV cache, prefill first (in chunks of at most `chunked_prefill`
//! tokens) whenever a request waits and fits, else one decode step for every running request.
//!
//! Pure: no clock. The mock worker drives it in (scaled) real time; `predict` in virtual time. Both
//! therefore schedule exactly the same batches.

use crate::table::LatencyTable;
use std::collections::VecDeque;

pub type RequestId = u64;

/// What the rank does with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Prefill, then decode every token (aggregated serving).
    Aggregated,
    /// Prefill only; the request leaves when its KV is ready for the decode side.
    PrefillOnly,
    /// The KV arrives prefilled; decode every token.
    DecodeOnly,
}

impl Phase {
    /// The phase of a role as the model input names it (`prefill`, `decode`, `agg`).
    pub fn of_role(role: &str) -> Phase {
        match role {
            "prefill" => Phase::PrefillOnly,
            "decode" => Phase::DecodeOnly,
            _ => Phase::Aggregated,
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Request {
    pub id: RequestId,
    pub prompt_tokens: u32,
    pub output_tokens: u32,
}

/// What happened to a request by the end of a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// `tokens` more output tokens; `done` = this was its last.
    Tokens {
        id: RequestId,
        tokens: u32,
        done: bool,
    },
    /// Prefill finished (prefill-only ranks): the KV is ready to transfer.
    Prefilled { id: RequestId },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepKind {
    Prefill,
    Decode,
}

/// One forward pass: how long it takes and what it yields when it ends.
#[derive(Debug, Clone)]
pub struct Step {
    pub kind: StepKind,
    pub ms: f64,
    /// Sequences in the pass.
    pub batch: usize,
    pub events: Vec<Event>,
}

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_running: usize,
    pub chunked_prefill: u32,
    pub kv_capacity_tokens: Option<u64>,
    /// Output tokens a decode step yields per request (1 + expected accepted MTP drafts).
    pub tokens_per_step: f64,
}

impl Limits {
    pub fn from_table(t: &LatencyTable) -> Limits {
        Limits {
            max_running: t.input.max_batch.max(1) as usize,
            chunked_prefill: t.input.chunked_prefill.max(1),
            kv_capacity_tokens: t.kv_capacity_tokens,
            tokens_per_step: t.input.tokens_per_step(),
        }
    }
}

#[derive(Debug)]
struct Live {
    req: Request,
    prefill_left: u32,
    generated: u32,
    /// Fractional output progress (MTP yields a non-integer expected count per step).
    progress: f64,
}

impl Live {
    fn reserved(&self) -> u64 {
        u64::from(self.req.prompt_tokens) + u64::from(self.req.output_tokens)
    }
}

#[derive(Debug)]
pub struct BatchScheduler {
    phase: Phase,
    limits: Limits,
    waiting: VecDeque<Request>,
    /// Admitted and still prefilling (the first may be part-way through its chunks).
    prefilling: VecDeque<Live>,
    running: Vec<Live>,
    kv_used: u64,
}

impl BatchScheduler {
    pub fn new(phase: Phase, limits: Limits) -> BatchScheduler {
        BatchScheduler {
            phase,
            limits,
            waiting: VecDeque::new(),
            prefilling: VecDeque::new(),
            running: Vec::new(),
            kv_used: 0,
        }
    }

    pub fn submit(&mut self, req: Request) {
        self.waiting.push_back(req);
    }

    /// Requests waiting, prefilling or running.
    pub fn outstanding(&self) -> usize {
        self.waiting.len() + self.prefilling.len() + self.running.len()
    }

    pub fn running(&self) -> usize {
        self.running.len()
    }

    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    /// Admitted requests: prefilling or decoding (SGLang's running batch).
    pub fn admitted(&self) -> usize {
        self.prefilling.len() + self.running.len()
    }

    /// KV-cache tokens reserved by admitted requests, and the capacity (`None`: unbounded).
    pub fn kv_usage(&self) -> (u64, Option<u64>) {
        (self.kv_used, self.limits.kv_capacity_tokens)
    }

    /// Admits the next waiting request when the batch and the KV cache have room (an empty rank always
    /// admits one, so that a request larger than the cache still runs).
    fn admit(&mut self) -> Option<Live> {
        let req = *self.waiting.front()?;
        let live_count = self.prefilling.len() + self.running.len();
        let need = u64::from(req.prompt_tokens) + u64::from(req.output_tokens);
        let fits = self
            .limits
            .kv_capacity_tokens
            .is_none_or(|cap| self.kv_used + need <= cap);
        if live_count > 0 && (live_count >= self.limits.max_running || !fits) {
            return None;
        }
        self.waiting.pop_front();
        self.kv_used += need;
        Some(Live {
            req,
            prefill_left: if self.phase == Phase::DecodeOnly {
                0
            } else {
                req.prompt_tokens.max(1)
            },
            generated: 0,
            progress: 0.0,
        })
    }

    /// The next forward pass, or `None` when there is nothing to do.
    pub fn next_step(&mut self, table: &LatencyTable) -> Option<Step> {
        if self.phase == Phase::DecodeOnly {
            while let Some(live) = self.admit() {
                self.running.push(live);
            }
        } else {
            while let Some(live) = self.admit() {
                self.prefilling.push_back(live);
            }
            if !self.prefilling.is_empty() {
                return Some(self.prefill_step(table));
            }
        }
        (!self.running.is_empty()).then(|| self.decode_step(table))
    }

    fn prefill_step(&mut self, table: &LatencyTable) -> Step {
        let mut budget = self.limits.chunked_prefill;
        let (mut seqs, mut tokens) = (0u32, 0u32);
        let mut events = Vec::new();
        let mut finished = 0;
        for live in self.prefilling.iter_mut() {
            if budget == 0 {
                break;
            }
            let take = live.prefill_left.min(budget);
            live.prefill_left -= take;
            budget -= take;
            seqs += 1;
            tokens += take;
            if live.prefill_left == 0 {
                finished += 1;
            }
        }
        for _ in 0..finished {
            let Some(mut live) = self.prefilling.pop_front() else {
                break;
            };
            match self.phase {
                Phase::PrefillOnly => {
                    self.kv_used -= live.reserved();
                    events.push(Event::Prefilled { id: live.req.id });
                }
                _ => {
                    // The prefill pass yields the first output token.
                    live.generated = 1;
                    live.progress = 1.0;
                    let done = live.req.output_tokens <= 1;
                    events.push(Event::Tokens {
                        id: live.req.id,
                        tokens: 1,
                        done,
                    });
                    if done {
                        self.kv_used -= live.reserved();
                    } else {
                        self.running.push(live);
                    }
                }
            }
        }
        let per_seq = f64::from(tokens) / f64::from(seqs.max(1));
        Step {
            kind: StepKind::Prefill,
            ms: table.prefill_ms(f64::from(seqs.max(1)), per_seq),
            batch: seqs as usize,
            events,
        }
    }

    fn decode_step(&mut self, table: &LatencyTable) -> Step {
        let batch = self.running.len();
        let ctx: f64 = self
            .running
            .iter()
            .map(|l| f64::from(l.req.prompt_tokens + l.generated))
            .sum::<f64>()
            / batch as f64;
        let ms = table.decode_ms(batch as f64, ctx);
        let mut events = Vec::with_capacity(batch);
        let per_step = self.limits.tokens_per_step;
        let mut freed = 0u64;
        self.running.retain_mut(|live| {
            live.progress += per_step;
            let due = (live.progress.floor() as u32).min(live.req.output_tokens);
            let tokens = due.saturating_sub(live.generated);
            live.generated = due;
            let done = live.generated >= live.req.output_tokens;
            if tokens > 0 {
                events.push(Event::Tokens {
                    id: live.req.id,
                    tokens,
                    done,
                });
            }
            if done {
                freed += live.reserved();
            }
            !done
        });
        self.kv_used -= freed;
        Step {
            kind: StepKind::Decode,
            ms,
            batch,
            events,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::flat_table;

    fn limits(max_running: usize) -> Limits {
        Limits {
            max_running,
            chunked_prefill: 100,
            kv_capacity_tokens: None,
            tokens_per_step: 1.0,
        }
    }

    #[test]
    fn prefill_first_then_one_token_per_decode_step() {
        let t = flat_table(5.0, 1.0);
        let mut s = BatchScheduler::new(Phase::Aggregated, limits(8));
        for id in 0..2 {
            s.submit(Request {
                id,
                prompt_tokens: 40,
                output_tokens: 3,
            });
        }
        let first = s.next_step(&t).expect("a prefill");
        assert_eq!(first.kind, StepKind::Prefill);
        assert_eq!(first.batch, 2);
        assert_eq!(first.events.len(), 2);
        let second = s.next_step(&t).expect("a decode step");
        assert_eq!(second.kind, StepKind::Decode);
        let third = s.next_step(&t).expect("the last decode step");
        assert!(third
            .events
            .iter()
            .all(|e| matches!(e, Event::Tokens { done: true, .. })));
        assert!(s.next_step(&t).is_none());
    }

    #[test]
    fn long_prompts_are_chunked_and_the_batch_is_bounded() {
        let t = flat_table(5.0, 1.0);
        let mut s = BatchScheduler::new(Phase::Aggregated, limits(1));
        for id in 0..2 {
            s.submit(Request {
                id,
                prompt_tokens: 250,
                output_tokens: 2,
            });
        }
        let kinds: Vec<_> = (0..3)
            .filter_map(|_| s.next_step(&t))
            .map(|s| s.batch)
            .collect();
        // Three chunks of ≤100 tokens for the first request; the second waits for a free slot.
        assert_eq!(kinds, vec![1, 1, 1]);
        assert_eq!(s.waiting(), 1);
    }

    #[test]
    fn mtp_yields_the_expected_accepted_tokens() {
        let t = flat_table(5.0, 1.0);
        let mut l = limits(4);
        l.tokens_per_step = 2.5;
        let mut s = BatchScheduler::new(Phase::DecodeOnly, l);
        s.submit(Request {
            id: 7,
            prompt_tokens: 10,
            output_tokens: 10,
        });
        let mut steps = 0;
        while s.next_step(&t).is_some() {
            steps += 1;
        }
        assert_eq!(steps, 4);
    }
}
