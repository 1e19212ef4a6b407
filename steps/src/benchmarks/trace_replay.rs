//! `benchmark.type: trace-replay`: A recorded trace replayed through aiperf (srt-slurm's trace-replay benchmark).

use super::BenchmarkType;
use crate::build::Ctx;
use crate::recipe::Benchmark;
use srt_graph_engine::Step;

pub struct TraceReplay;

impl BenchmarkType for TraceReplay {
    fn name(&self) -> &'static str {
        "trace-replay"
    }

    fn keys(&self) -> &'static [&'static str] {
        &[
            "trace_file",
            "concurrencies",
            "ttft_threshold_ms",
            "itl_threshold_ms",
            "aiperf_args",
        ]
    }

    fn steps(&self, ctx: &Ctx<'_>, b: &Benchmark, endpoint: &str, after: &str) -> Vec<Step> {
        let mut args = vec![
            endpoint.into(),
            super::model_name(ctx),
            super::opt(b, "trace_file", ""),
            super::joined(b, "concurrencies", ","),
            super::opt(b, "ttft_threshold_ms", "2000"),
            super::opt(b, "itl_threshold_ms", "25"),
            super::tokenizer(ctx),
        ];
        args.extend(super::aiperf_args(b));
        vec![super::script_step(
            ctx,
            self.name(),
            "trace-replay/bench.sh",
            args,
            &[("aiperf", "install it with `pip install aiperf`")],
            after,
        )]
    }
}
