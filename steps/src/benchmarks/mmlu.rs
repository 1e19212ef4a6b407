//! `benchmark.type: mmlu`: MMLU accuracy (srt-slurm's mmlu benchmark).

use super::BenchmarkType;
use crate::build::Ctx;
use crate::recipe::Benchmark;
use srt_graph_engine::Step;

pub struct Mmlu;

impl BenchmarkType for Mmlu {
    fn name(&self) -> &'static str {
        "mmlu"
    }

    fn keys(&self) -> &'static [&'static str] {
        &["num_examples", "max_tokens", "repeat", "num_threads"]
    }

    fn steps(&self, ctx: &Ctx<'_>, b: &Benchmark, endpoint: &str, after: &str) -> Vec<Step> {
        let args = vec![
            endpoint.into(),
            super::opt(b, "num_examples", "200"),
            super::opt(b, "max_tokens", "2048"),
            super::opt(b, "repeat", "8"),
            super::opt(b, "num_threads", "512"),
        ];
        vec![super::script_step(
            ctx,
            self.name(),
            "mmlu/bench.sh",
            args,
            &[],
            after,
        )]
    }
}
