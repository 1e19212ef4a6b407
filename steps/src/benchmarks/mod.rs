//! Benchmark types (`benchmark.type`), one module each, registered in `ALL`. A type says whether its
//! points need `isl`/`osl`/`concurrencies` and which steps run it once the deployment is healthy.

pub mod manual;
pub mod sa_bench;

use crate::build::Ctx;
use crate::recipe::Benchmark;
use srt_graph_engine::Step;

pub trait BenchmarkType: Sync {
    /// The `benchmark.type` value.
    fn name(&self) -> &'static str;
    /// Each point must give `isl`, `osl` and `concurrencies`.
    fn needs_points(&self) -> bool {
        false
    }
    /// The steps that run it against `endpoint`, the first after `after` (the health gate).
    fn steps(&self, ctx: &Ctx<'_>, bench: &Benchmark, endpoint: &str, after: &str) -> Vec<Step>;
}

/// Every benchmark type: one line per module.
pub const ALL: &[&dyn BenchmarkType] = &[&sa_bench::SaBench, &manual::Manual];

pub fn find(name: &str) -> Option<&'static dyn BenchmarkType> {
    ALL.iter().copied().find(|b| b.name() == name)
}
