//! `benchmark.type: mooncake-router`: Mooncake's traces through aiperf (srt-slurm's mooncake-router benchmark).

use super::BenchmarkType;
use crate::build::Ctx;
use crate::recipe::Benchmark;
use srt_graph_engine::Step;

pub struct MooncakeRouter;

impl BenchmarkType for MooncakeRouter {
    fn name(&self) -> &'static str {
        "mooncake-router"
    }

    fn keys(&self) -> &'static [&'static str] {
        &[
            "mooncake_workload",
            "ttft_threshold_ms",
            "itl_threshold_ms",
            "aiperf_args",
            "aiperf_package",
        ]
    }

    fn steps(&self, ctx: &Ctx<'_>, b: &Benchmark, endpoint: &str, after: &str) -> Vec<Step> {
        let mut args = vec![
            endpoint.into(),
            super::model_name(ctx),
            super::opt(b, "mooncake_workload", "conversation"),
            super::opt(b, "ttft_threshold_ms", "2000"),
            super::opt(b, "itl_threshold_ms", "25"),
            super::tokenizer(ctx),
        ];
        args.extend(super::aiperf_args(b));
        let mut s = super::script_step(
            ctx,
            self.name(),
            "mooncake-router/bench.sh",
            args,
            &[("aiperf", "install it with `pip install aiperf`")],
            after,
        );
        super::set_aiperf_package(b, &mut s);
        vec![s]
    }
}
