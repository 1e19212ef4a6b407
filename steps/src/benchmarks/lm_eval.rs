//! `benchmark.type: lm-eval`: lm-evaluation-harness over the endpoint (srt-slurm's lm-eval benchmark).

use super::BenchmarkType;
use crate::build::Ctx;
use crate::recipe::Benchmark;
use srt_graph_engine::Step;

pub struct LmEval;

impl BenchmarkType for LmEval {
    fn name(&self) -> &'static str {
        "lm-eval"
    }

    fn steps(&self, ctx: &Ctx<'_>, _: &Benchmark, endpoint: &str, after: &str) -> Vec<Step> {
        let args = vec![endpoint.into(), "/infmax-workspace".into()];
        vec![super::script_step(
            ctx,
            self.name(),
            "lm-eval/bench.sh",
            args,
            &[("lm_eval", "install it with `pip install lm-eval`")],
            after,
        )]
    }
}
