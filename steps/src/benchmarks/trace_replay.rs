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
            "aiperf_package",
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
        let mut s = super::script_step(ctx, self.name(), "trace-replay/bench.sh", args, &[], after);
        // The script installs aiperf into a venv of its own with uv (downloaded with curl if missing).
        s.requires.push(srt_graph_engine::Requirement {
            what: "uv".into(),
            or: vec!["curl".into()],
            hint: "trace-replay's script installs `benchmark.aiperf_package` (default `aiperf`) with uv, or fetches uv with curl".into(),
        });
        super::set_aiperf_package(b, &mut s);
        vec![s]
    }
}
