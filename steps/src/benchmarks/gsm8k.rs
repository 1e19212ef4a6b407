//! `benchmark.type: gsm8k` (also its older name `gsm8k-bench`): GSM8K accuracy through srt-slurm's
//! script — vLLM's harness for the vLLM backend, SGLang's for the others.

use super::BenchmarkType;
use crate::build::Ctx;
use crate::recipe::Benchmark;
use srt_graph_engine::Step;

pub struct Gsm8k;

impl BenchmarkType for Gsm8k {
    fn name(&self) -> &'static str {
        "gsm8k"
    }

    fn keys(&self) -> &'static [&'static str] {
        &[
            "num_examples",
            "max_tokens",
            "num_threads",
            "num_shots",
            "temperature",
            "top_p",
            "top_k",
            "repeat",
        ]
    }

    fn aliases(&self) -> &'static [&'static str] {
        &["gsm8k-bench"]
    }

    fn steps(&self, ctx: &Ctx<'_>, b: &Benchmark, endpoint: &str, after: &str) -> Vec<Step> {
        let shots = super::opt(b, "num_shots", "5");
        let (script, args) = if ctx.recipe.backend == "vllm" {
            let (host, port) = endpoint.rsplit_once(':').unwrap_or((endpoint, "8000"));
            (
                "gsm8k/vllm-bench.sh",
                vec![
                    host.into(),
                    port.into(),
                    super::model_name(ctx),
                    super::opt(b, "num_examples", "1319"),
                    super::opt(b, "max_tokens", "256"),
                    shots,
                    super::opt(b, "temperature", "0.0"),
                    super::opt(b, "repeat", "1"),
                ],
            )
        } else {
            (
                "gsm8k/sglang-bench.sh",
                vec![
                    endpoint.into(),
                    super::opt(b, "num_examples", "1319"),
                    super::opt(b, "max_tokens", "16384"),
                    super::opt(b, "num_threads", "512"),
                    shots,
                    super::opt(b, "temperature", ""),
                    super::opt(b, "top_p", ""),
                    super::opt(b, "top_k", ""),
                ],
            )
        };
        vec![super::script_step(
            ctx,
            self.name(),
            script,
            args,
            &[],
            after,
        )]
    }
}
