//! `benchmark.type: longbenchv2`: LongBench v2 (srt-slurm's longbenchv2 benchmark).

use super::BenchmarkType;
use crate::build::Ctx;
use crate::recipe::Benchmark;
use srt_graph_engine::Step;

pub struct LongBenchV2;

impl BenchmarkType for LongBenchV2 {
    fn name(&self) -> &'static str {
        "longbenchv2"
    }

    fn keys(&self) -> &'static [&'static str] {
        &[
            "max_context_length",
            "num_threads",
            "max_tokens",
            "num_examples",
            "categories",
        ]
    }

    fn steps(&self, ctx: &Ctx<'_>, b: &Benchmark, endpoint: &str, after: &str) -> Vec<Step> {
        let args = vec![
            endpoint.into(),
            super::opt(b, "max_context_length", "128000"),
            super::opt(b, "num_threads", "16"),
            super::opt(b, "max_tokens", "16384"),
            super::opt(b, "num_examples", ""),
            super::joined(b, "categories", ","),
        ];
        vec![super::script_step(
            ctx,
            self.name(),
            "longbenchv2/bench.sh",
            args,
            &[],
            after,
        )]
    }
}
