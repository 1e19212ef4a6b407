//! `run_benchmark`: sa-bench with the built-in load generator (`srt-graph bench`), one step per
//! concurrency so an interrupted sweep resumes per point.

use srt_graph_engine::{Lifetime, Policy, Step};

pub const KIND: &str = "run_benchmark";
pub const SPEC: super::Kind = super::Kind {
    name: KIND,
    fill: "#ffe5d0",
    policy,
    on_resume: srt_graph_engine::OnResume::Stand,
    // srtctl runs the benchmark client in the job's container too.
    in_worker_container: true,
};

/// A point that could not start sent no request: starting it again is safe. (pyxis attaching to the
/// job's container can meet a process of it that is just exiting — "unable to open user namespace
/// file" — and refuse the step once.) A point that ran and failed is not retried.
pub fn policy() -> Policy {
    Policy {
        timeout_secs: Some(4.0 * 3600.0),
        attempts: 2,
        ..Policy::default()
    }
}

pub struct Point<'a> {
    pub url: &'a str,
    pub model: &'a str,
    pub tokenizer: Option<&'a str>,
    pub isl: u32,
    pub osl: u32,
    pub random_range_ratio: f64,
    pub req_rate: Option<f64>,
    pub result_dir: &'a str,
    pub max_failed_percent: f64,
    pub prefill_gpus: u32,
    pub decode_gpus: u32,
    /// `--chat-template` when not the load generator's default (`auto`).
    pub chat_template: Option<&'a str>,
    pub custom_tokenizer: Option<&'a str>,
}

fn rate_text(r: Option<f64>) -> String {
    r.map_or_else(
        || "inf".into(),
        |x| {
            if x.fract() == 0.0 {
                format!("{}", x as u64)
            } else {
                x.to_string()
            }
        },
    )
}

/// sa-bench's result file name (srt-slurm's `bench.sh`), so its rollup and analysis scripts find the
/// files: `results_concurrency_C_gpus_T_ctx_P_gen_D.json` when disaggregated, else
/// `results_concurrency_C_gpus_T.json`.
pub fn result_filename(p: &Point<'_>, concurrency: u32) -> String {
    let total = p.prefill_gpus + p.decode_gpus;
    if p.prefill_gpus > 0 && p.decode_gpus > 0 {
        format!(
            "results_concurrency_{concurrency}_gpus_{total}_ctx_{}_gen_{}.json",
            p.prefill_gpus, p.decode_gpus
        )
    } else {
        format!("results_concurrency_{concurrency}_gpus_{total}.json")
    }
}

fn base_argv(srt_graph: &str, p: &Point<'_>) -> Vec<String> {
    let mut argv = vec![
        srt_graph.to_string(),
        "bench".into(),
        "--url".into(),
        p.url.into(),
        "--model".into(),
        p.model.into(),
    ];
    if let Some(t) = p.tokenizer {
        argv.extend(["--tokenizer".into(), t.into()]);
    }
    argv.extend([
        "--isl".into(),
        p.isl.to_string(),
        "--osl".into(),
        p.osl.to_string(),
        "--random-range-ratio".into(),
        p.random_range_ratio.to_string(),
    ]);
    if let Some(mode) = p.chat_template {
        argv.extend(["--chat-template".into(), mode.into()]);
    }
    if let Some(t) = p.custom_tokenizer {
        argv.extend(["--custom-tokenizer".into(), t.into()]);
    }
    argv
}

/// The warm-up pass: every concurrency once, results discarded, at sa-bench's warm-up rate of 250 req/s.
pub fn warmup(
    id: &str,
    node: usize,
    srt_graph: &str,
    p: &Point<'_>,
    concurrencies: &[u32],
    mult: u32,
) -> Step {
    let mut s = SPEC.step(id, node, Lifetime::Task);
    let mut argv = base_argv(srt_graph, p);
    let list: Vec<String> = concurrencies.iter().map(u32::to_string).collect();
    argv.extend([
        "--concurrency".into(),
        list.join("x"),
        "--prompts-per-concurrency".into(),
        mult.to_string(),
        "--request-rate".into(),
        "250".into(),
    ]);
    s.command = Some(argv);
    s.summary = "sa-bench warm-up".into();
    s
}

pub fn measure(
    id: &str,
    node: usize,
    srt_graph: &str,
    p: &Point<'_>,
    concurrency: u32,
    mult: u32,
) -> Step {
    let mut s = SPEC.step(id, node, Lifetime::Task);
    let mut argv = base_argv(srt_graph, p);
    argv.extend([
        "--concurrency".into(),
        concurrency.to_string(),
        "--prompts-per-concurrency".into(),
        mult.to_string(),
        "--request-rate".into(),
        rate_text(p.req_rate),
        "--result-dir".into(),
        p.result_dir.into(),
        "--result-filename".into(),
        result_filename(p, concurrency),
        "--max-failed-percent".into(),
        p.max_failed_percent.to_string(),
    ]);
    s.command = Some(argv);
    s.summary = format!(
        "sa-bench at concurrency {concurrency}, {} prompts",
        concurrency * mult
    );
    s
}
