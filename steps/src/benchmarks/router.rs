//! `benchmark.type: router`: Prefix-sharing workload against the router (srt-slurm's router benchmark).

use super::BenchmarkType;
use crate::build::Ctx;
use crate::recipe::Benchmark;
use srt_graph_engine::Step;

pub struct Router;

impl BenchmarkType for Router {
    fn name(&self) -> &'static str {
        "router"
    }

    fn keys(&self) -> &'static [&'static str] {
        &["isl", "osl", "num_requests", "concurrency", "prefix_ratios"]
    }

    fn steps(&self, ctx: &Ctx<'_>, b: &Benchmark, endpoint: &str, after: &str) -> Vec<Step> {
        let ratios = match super::joined(b, "prefix_ratios", " ") {
            r if r.is_empty() => "0.1 0.3 0.5 0.7 0.9".to_string(),
            r => r,
        };
        let args = vec![
            endpoint.into(),
            super::opt(b, "isl", "14000"),
            super::opt(b, "osl", "200"),
            super::opt(b, "num_requests", "200"),
            super::opt(b, "concurrency", "20"),
            ratios,
        ];
        vec![super::script_step(
            ctx,
            self.name(),
            "router/bench.sh",
            args,
            &[],
            after,
        )]
    }
}
