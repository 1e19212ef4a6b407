//! `benchmark.type: sa-bench`: srt-slurm's serving benchmark, run by the built-in load generator
//! (`srt-graph bench`): per `(isl, osl)` point an optional warm-up, then one step per concurrency, so an
//! interrupted sweep resumes per point. Results are named and laid out as sa-bench's.

use super::BenchmarkType;
use crate::build::{Ctx, StandIn};
use crate::diag::Reader;
use crate::kinds::run_benchmark;
use crate::recipe::{Benchmark, Role};
use crate::yaml::{Node, Value};
use srt_graph_engine::Step;

pub struct SaBench;

/// srt-slurm's sa-bench tokenizer adapters (`benchmark.custom_tokenizer`) that the load generator renders
/// itself (`srt_graph_node_tools::chat_template`, which keeps the same list; a test holds them equal).
pub const CUSTOM_TOKENIZERS: &[&str] = &[
    "sa_bench_tokenizers.sglang_deepseek_v4.SGLangDeepseekV4Tokenizer",
    "sa_bench_tokenizers.vllm_deepseek_v4.VLLMDeepseekV4Tokenizer",
];

impl BenchmarkType for SaBench {
    fn name(&self) -> &'static str {
        "sa-bench"
    }

    fn keys(&self) -> &'static [&'static str] {
        &["use_chat_template", "custom_tokenizer"]
    }

    fn check(&self, section: &Node, r: &mut Reader) {
        r.boolean(
            section.get("use_chat_template"),
            "benchmark.use_chat_template",
        );
        let Some(node) = section.get("custom_tokenizer") else {
            return;
        };
        if let Some(name) = r.string(Some(node), "benchmark.custom_tokenizer") {
            if !CUSTOM_TOKENIZERS.contains(&name.as_str()) {
                r.error(
                    node.pos,
                    "benchmark.custom_tokenizer",
                    format!("`{name}` is not an sa-bench tokenizer adapter srt-graph renders"),
                    Some(format!("valid: {}", CUSTOM_TOKENIZERS.join(", "))),
                );
            }
        }
    }

    fn needs_points(&self) -> bool {
        true
    }

    fn steps(&self, ctx: &Ctx<'_>, b: &Benchmark, endpoint: &str, after: &str) -> Vec<Step> {
        let recipe = ctx.recipe;
        // The benchmark runs on node 0 and, with the mocker, counts tokens with its tokenizer.
        let mocker_tokenizer = ctx.mocker_model(0);
        let tokenizer = if ctx.stand_in == StandIn::DynamoMocker {
            Some(mocker_tokenizer.as_str())
        } else {
            recipe.model_path.as_deref()
        };
        let gpus = |role: Role| {
            recipe
                .role(role)
                .map_or(0, |r| r.workers * r.gpus_per_worker)
        };
        let (prefill_gpus, decode_gpus) = match recipe.role(Role::Aggregated) {
            Some(a) => (a.workers * a.gpus_per_worker, 0),
            None => (gpus(Role::Prefill), gpus(Role::Decode)),
        };
        let srt_graph = &ctx.target.srt_graph;
        // srtctl's default is on: `auto` applies the model's template where it has one.
        let chat_template = match b.option("use_chat_template").map(|n| &n.value) {
            Some(Value::Bool(true)) => Some("on"),
            Some(Value::Bool(false)) => Some("off"),
            _ => None,
        };
        let custom_tokenizer = b.option("custom_tokenizer").and_then(Node::scalar_text);
        let multi = b.points.len() > 1;
        let mut steps: Vec<Step> = Vec::new();
        let mut prev = after.to_string();
        for p in &b.points {
            let result_dir = format!(
                "{}/sa-bench_isl_{}_osl_{}",
                ctx.target.run_dir, p.isl, p.osl
            );
            let point = run_benchmark::Point {
                url: endpoint,
                model: &ctx.served_model,
                tokenizer,
                isl: p.isl,
                osl: p.osl,
                random_range_ratio: b.random_range_ratio,
                req_rate: p.req_rate,
                result_dir: &result_dir,
                prefill_gpus,
                decode_gpus,
                max_failed_percent: b.max_failed_percent,
                chat_template,
                custom_tokenizer: custom_tokenizer.as_deref(),
            };
            let prefix = if multi {
                format!("sa-bench/isl{}-osl{}", p.isl, p.osl)
            } else {
                "sa-bench".into()
            };
            if b.num_warmup_mult > 0 {
                let id = format!("{prefix}/warmup");
                let mut s = run_benchmark::warmup(
                    &id,
                    0,
                    srt_graph,
                    &point,
                    &p.concurrencies,
                    b.num_warmup_mult,
                );
                s.depends_on.push(prev.clone());
                prev = id;
                steps.push(s);
            }
            for &c in &p.concurrencies {
                let id = format!("{prefix}/c{c}");
                if steps.iter().any(|s| s.id == id) {
                    continue;
                }
                let mut s =
                    run_benchmark::measure(&id, 0, srt_graph, &point, c, b.num_prompts_mult);
                s.depends_on.push(prev.clone());
                prev = id;
                steps.push(s);
            }
        }
        steps
    }
}
