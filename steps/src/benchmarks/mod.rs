//! Benchmark types (`benchmark.type`), one module each, registered in `ALL`. A type says whether its
//! points need `isl`/`osl`/`concurrencies` and which steps run it once the deployment is healthy.

pub mod custom;
pub mod gpqa;
pub mod gsm8k;
pub mod lm_eval;
pub mod longbenchv2;
pub mod manual;
pub mod mmlu;
pub mod mooncake_router;
pub mod router;
pub mod sa_bench;
pub mod sglang_bench;
pub mod trace_replay;

use crate::build::Ctx;
use crate::recipe::Benchmark;
use srt_graph_engine::Step;

pub trait BenchmarkType: Sync {
    /// The `benchmark.type` value.
    fn name(&self) -> &'static str;
    /// Older spellings recipes still use.
    fn aliases(&self) -> &'static [&'static str] {
        &[]
    }
    /// Keys of the section it reads beyond sa-bench's (so they are not reported as ignored).
    fn keys(&self) -> &'static [&'static str] {
        &[]
    }
    /// Checks the values of its own keys (types, valid values).
    fn check(&self, _section: &crate::yaml::Node, _r: &mut crate::diag::Reader) {}
    /// Each point must give `isl`, `osl` and `concurrencies`.
    fn needs_points(&self) -> bool {
        false
    }
    /// The steps that run it against `endpoint`, the first after `after` (the health gate).
    fn steps(&self, ctx: &Ctx<'_>, bench: &Benchmark, endpoint: &str, after: &str) -> Vec<Step>;
}

/// Every benchmark type: one line per module.
pub const ALL: &[&dyn BenchmarkType] = &[
    &sa_bench::SaBench,
    &manual::Manual,
    &sglang_bench::SglangBench,
    &router::Router,
    &mooncake_router::MooncakeRouter,
    &trace_replay::TraceReplay,
    &gsm8k::Gsm8k,
    &mmlu::Mmlu,
    &gpqa::Gpqa,
    &longbenchv2::LongBenchV2,
    &lm_eval::LmEval,
    &custom::Custom,
];

pub fn find(name: &str) -> Option<&'static dyn BenchmarkType> {
    ALL.iter()
        .copied()
        .find(|b| b.name() == name || b.aliases().contains(&name))
}

pub fn names() -> Vec<&'static str> {
    ALL.iter().map(|b| b.name()).collect()
}

/// A value of the benchmark section as text, else `default`.
pub fn opt(b: &Benchmark, key: &str, default: &str) -> String {
    b.option(key)
        .and_then(crate::yaml::Node::scalar_text)
        .unwrap_or_else(|| default.to_string())
}

/// A list (or `AxB` string) of the section joined with `sep`; empty when absent.
pub fn joined(b: &Benchmark, key: &str, sep: &str) -> String {
    use crate::yaml::Value;
    match b.option(key).map(|n| &n.value) {
        Some(Value::Seq(items)) => items
            .iter()
            .filter_map(crate::yaml::Node::scalar_text)
            .collect::<Vec<_>>()
            .join(sep),
        Some(Value::Str(s)) => s
            .split(['x', ',', ' '])
            .filter(|p| !p.is_empty())
            .collect::<Vec<_>>()
            .join(sep),
        Some(_) => b
            .option(key)
            .and_then(crate::yaml::Node::scalar_text)
            .unwrap_or_default(),
        None => String::new(),
    }
}

/// The model name benchmark clients send (srtctl: the served name, else the model path).
pub fn model_name(ctx: &Ctx<'_>) -> String {
    ctx.served_model.clone()
}

/// The tokenizer srtctl's scripts read: `/model` in a container, a Hugging Face id, else the path.
pub fn tokenizer(ctx: &Ctx<'_>) -> String {
    crate::backends::model_arg(ctx)
}

/// The step that runs one of srt-slurm's benchmark scripts (`src/srtctl/benchmarks/scripts/<script>`)
/// with srtctl's arguments, once the deployment is healthy. The scripts come from srt-slurm's checkout
/// (`srtctl_root` in srtslurm.yaml), else from where srtctl mounts them in its containers; a node without
/// them, or without the tool they drive, stops the run before anything starts.
pub fn script_step(
    ctx: &Ctx<'_>,
    kind: &str,
    script: &str,
    args: Vec<String>,
    tools: &[(&str, &str)],
    after: &str,
) -> Step {
    let path = match &ctx.recipe.srtctl_root {
        Some(root) => format!(
            "{}/src/srtctl/benchmarks/scripts/{script}",
            root.trim_end_matches('/')
        ),
        None => format!("/srtctl-benchmarks/{script}"),
    };
    let mut s = crate::kinds::run_benchmark::SPEC.step(kind, 0, srt_graph_engine::Lifetime::Task);
    let mut argv = vec!["bash".to_string(), path.clone()];
    argv.extend(args);
    s.command = Some(argv);
    s.depends_on.push(after.into());
    s.requires.push(srt_graph_engine::Requirement {
        what: path,
        or: Vec::new(),
        hint: "it is srt-slurm's benchmark script: set `srtctl_root` in srtslurm.yaml to an srt-slurm checkout (the scripts are under src/srtctl/benchmarks/scripts/)".into(),
    });
    for (tool, how) in tools {
        s.requires.push(srt_graph_engine::Requirement {
            what: (*tool).into(),
            or: Vec::new(),
            hint: format!("the `{kind}` benchmark drives it; {how}"),
        });
    }
    s.summary = format!("{kind}: srt-slurm's {script}");
    s
}

/// `aiperf_package` reaches the aiperf benchmarks' scripts as srtctl passes it: `AIPERF_PACKAGE`.
pub fn set_aiperf_package(b: &Benchmark, s: &mut Step) {
    if let Some(spec) = b
        .option("aiperf_package")
        .and_then(crate::yaml::Node::scalar_text)
    {
        s.env.insert("AIPERF_PACKAGE".into(), spec);
    }
}

/// `aiperf_args` as flags (srtctl's `append_aiperf_args`).
pub fn aiperf_args(b: &Benchmark) -> Vec<String> {
    use crate::yaml::Value;
    let Some(Value::Map(m)) = b.option("aiperf_args").map(|n| &n.value) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in m {
        match &e.value.value {
            Value::Bool(true) => out.push(format!("--{}", e.key)),
            Value::Bool(false) => {}
            _ => out.extend([
                format!("--{}", e.key),
                e.value.scalar_text().unwrap_or_default(),
            ]),
        }
    }
    out
}
