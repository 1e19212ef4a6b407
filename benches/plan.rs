//! Plan throughput: parse + validate + compile + render (text, DOT, Mermaid, JSON) the whole shared
//! corpus, and a synthetic 1,000-node recipe. Run with `cargo bench --bench plan`; figures are printed and
//! written to `target/bench-plan.txt`. Targets (README): corpus < 1 s, 1,000 nodes < 100 ms.

use srt_graph_engine::{render, Dag};
use srt_graph_steps::{compile, load_file, load_str, ClusterConfig, Target};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            yaml_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "yaml")
            && !p.to_string_lossy().contains("srtslurm")
        {
            out.push(p);
        }
    }
}

fn render_all(dag: &Dag) -> usize {
    render::text(dag).len()
        + render::dot(dag, &srt_graph_steps::kinds::palette).len()
        + render::mermaid(dag).len()
        + render::json(dag).len()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Parse + validate + compile + render (4 formats) every recipe of `eras`, 7 times: the median.
fn corpus_figure(corpus: &Path, eras: &[&str], target: &Target) -> String {
    let mut jobs = Vec::new();
    for era in eras {
        let cluster = ClusterConfig::load(&corpus.join(era).join("srtslurm.yaml.example"))
            .expect("cluster config");
        let mut files = Vec::new();
        yaml_files(&corpus.join(era), &mut files);
        files.sort();
        jobs.extend(files.into_iter().map(|f| (f, cluster.clone())));
    }
    let mut times = Vec::new();
    let mut plans = 0;
    for _ in 0..7 {
        let t = Instant::now();
        plans = 0;
        for (f, cluster) in &jobs {
            for v in load_file(f, None, cluster).expect("corpus recipe") {
                let dag = Dag::new(compile(&v.recipe, target).expect("compile")).expect("dag");
                std::hint::black_box(render_all(&dag));
                plans += 1;
            }
        }
        times.push(t.elapsed());
    }
    format!(
        "corpus ({}): {} files, {plans} plans (variants), parse+compile+render 4 formats: median {:.1} ms (target < 1000 ms)\n",
        eras.join(" + "),
        jobs.len(),
        median(times).as_secs_f64() * 1e3
    )
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let corpus = root.join("../shared/corpus");
    let mut report = String::new();
    let target = Target::default();

    if corpus.is_dir() {
        // The two SGLang eras alone (comparable with figures from before the backends), then everything.
        for eras in [
            &["seed-era", "current"][..],
            &["seed-era", "current", "backends"][..],
        ] {
            report.push_str(&corpus_figure(&corpus, eras, &target));
        }
    } else {
        report.push_str("corpus: skipped (../shared/corpus absent)\n");
    }

    let big = "name: big\nresources: {gpu_type: gb300, gpus_per_node: 4, prefill_nodes: 500, prefill_workers: 500, decode_nodes: 500, decode_workers: 500}\nbackend:\n  use_sglang_router: true\n  sglang_config:\n    prefill: {tensor-parallel-size: 4, disaggregation-mode: prefill}\n    decode: {tensor-parallel-size: 4, disaggregation-mode: decode}\nbenchmark: {type: sa-bench, isl: 1024, osl: 1024, concurrencies: \"1x8x64x512\"}\n";
    let mut times = Vec::new();
    let mut steps = 0;
    for _ in 0..11 {
        let t = Instant::now();
        let v = load_str(big, "big.yaml", None, &ClusterConfig::default()).expect("valid");
        let dag = Dag::new(compile(&v[0].recipe, &target).expect("compile")).expect("dag");
        steps = dag.plan.steps.len();
        std::hint::black_box(render_all(&dag));
        times.push(t.elapsed());
    }
    report.push_str(&format!(
        "1,000-node recipe: {steps} steps, parse+compile+render 4 formats: median {:.1} ms (target < 100 ms)\n",
        median(times).as_secs_f64() * 1e3
    ));
    print!("{report}");
    let out = root.join("target/bench-plan.txt");
    if let Err(e) = std::fs::write(&out, &report) {
        eprintln!("cannot write {}: {e}", out.display());
    }
}
