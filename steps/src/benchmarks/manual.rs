//! `benchmark.type: manual` (the default): no benchmark; the deployment is left for the user to drive.

use super::BenchmarkType;
use crate::build::Ctx;
use crate::recipe::Benchmark;
use srt_graph_engine::Step;

pub struct Manual;

impl BenchmarkType for Manual {
    fn name(&self) -> &'static str {
        "manual"
    }

    fn steps(&self, _: &Ctx<'_>, _: &Benchmark, _: &str, _: &str) -> Vec<Step> {
        Vec::new()
    }
}
