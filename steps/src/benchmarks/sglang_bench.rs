//! `benchmark.type: sglang-bench`: SGLang's serving benchmark (`sglang.bench_serving`) through srt-slurm's script.

use super::BenchmarkType;
use crate::build::Ctx;
use crate::recipe::Benchmark;
use srt_graph_engine::Step;

pub struct SglangBench;

impl BenchmarkType for SglangBench {
    fn name(&self) -> &'static str {
        "sglang-bench"
    }

    fn keys(&self) -> &'static [&'static str] {
        &["isl", "osl", "concurrencies", "req_rate"]
    }

    fn steps(&self, ctx: &Ctx<'_>, b: &Benchmark, endpoint: &str, after: &str) -> Vec<Step> {
        let concurrencies = super::joined(b, "concurrencies", "x");
        let args = vec![
            endpoint.into(),
            super::opt(b, "isl", ""),
            super::opt(b, "osl", ""),
            concurrencies,
            super::opt(b, "req_rate", "inf"),
        ];
        vec![super::script_step(
            ctx,
            self.name(),
            "sglang-bench/bench.sh",
            args,
            &[],
            after,
        )]
    }
}
