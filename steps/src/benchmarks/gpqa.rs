//! `benchmark.type: gpqa`: GPQA accuracy (srt-slurm's gpqa benchmark).

use super::BenchmarkType;
use crate::build::Ctx;
use crate::recipe::Benchmark;
use srt_graph_engine::Step;

pub struct Gpqa;

impl BenchmarkType for Gpqa {
    fn name(&self) -> &'static str {
        "gpqa"
    }

    fn keys(&self) -> &'static [&'static str] {
        &["num_examples", "max_tokens", "repeat", "num_threads"]
    }

    fn steps(&self, ctx: &Ctx<'_>, b: &Benchmark, endpoint: &str, after: &str) -> Vec<Step> {
        let args = vec![
            endpoint.into(),
            super::opt(b, "num_examples", "198"),
            super::opt(b, "max_tokens", "32768"),
            super::opt(b, "repeat", "8"),
            super::opt(b, "num_threads", "128"),
        ];
        vec![super::script_step(
            ctx,
            self.name(),
            "gpqa/bench.sh",
            args,
            &[],
            after,
        )]
    }
}
