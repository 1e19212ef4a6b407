//! Orchestration overhead of the executor on the local transport: synthetic graphs of 10, 100 and 1,000
//! steps (chains, fans, layered diamonds) of real processes. Overhead = makespan − the critical path made of
//! the steps' own measured durations, i.e. the time the engine itself adds between and around steps.
//! Target (README): ≤ 2 % + 100 ms at 1,000 steps. Writes `target/bench-engine.txt`.

use srt_graph_engine::journal::Journal;
use srt_graph_engine::local::LocalTransport;
use srt_graph_engine::progress::Plain;
use srt_graph_engine::scheduler::RunOptions;
use srt_graph_engine::{execute, Dag, Lifetime, Plan, Step, PLAN_FORMAT};
use std::sync::Arc;
use std::time::Duration;

fn step(id: String, deps: Vec<String>, argv: &[&str]) -> Step {
    let mut s = Step::new(id, "shell", 0, Lifetime::Task);
    s.depends_on = deps;
    s.command = Some(argv.iter().map(|a| a.to_string()).collect());
    s
}

fn plan(name: &str, steps: Vec<Step>) -> Dag {
    Dag::new(Plan {
        format: PLAN_FORMAT,
        recipe: name.into(),
        nodes: vec!["node0".into()],
        addresses: vec!["127.0.1.1".into()],
        steps,
        endpoint: None,
        ignored: vec![],
        notes: vec![],
        secret_env: vec![],
    })
    .expect("valid plan")
}

fn chain(n: usize, argv: &[&str]) -> Dag {
    let steps = (0..n)
        .map(|i| {
            step(
                format!("s{i}"),
                if i == 0 {
                    vec![]
                } else {
                    vec![format!("s{}", i - 1)]
                },
                argv,
            )
        })
        .collect();
    plan("chain", steps)
}

fn fan(n: usize, argv: &[&str]) -> Dag {
    let mut steps = vec![step("root".into(), vec![], argv)];
    let mids: Vec<String> = (0..n - 2).map(|i| format!("m{i}")).collect();
    steps.extend(
        mids.iter()
            .map(|m| step(m.clone(), vec!["root".into()], argv)),
    );
    steps.push(step("sink".into(), mids, argv));
    plan("fan", steps)
}

/// Layers of `width` steps; each step depends on two steps of the layer before.
fn diamonds(n: usize, width: usize, argv: &[&str]) -> Dag {
    let mut steps = Vec::new();
    for i in 0..n {
        let (layer, pos) = (i / width, i % width);
        let deps = if layer == 0 {
            vec![]
        } else {
            let prev = (layer - 1) * width;
            vec![
                format!("d{}", prev + pos),
                format!("d{}", prev + (pos + 1) % width),
            ]
        };
        steps.push(step(format!("d{i}"), deps, argv));
    }
    plan("diamonds", steps)
}

/// Longest path where each step weighs its measured duration.
fn critical_path_secs(dag: &Dag, trace: &serde_json::Value) -> f64 {
    let mut dur = vec![0.0f64; dag.plan.steps.len()];
    for e in trace["traceEvents"].as_array().into_iter().flatten() {
        if let (Some(name), Some(d)) = (e["name"].as_str(), e["dur"].as_f64()) {
            if let Some(&i) = dag.index.get(name) {
                dur[i] = d / 1e6;
            }
        }
    }
    let mut finish = vec![0.0f64; dur.len()];
    for &i in &dag.order {
        let start = dag.dependencies(i).map(|d| finish[d]).fold(0.0, f64::max);
        finish[i] = start + dur[i];
    }
    finish.into_iter().fold(0.0, f64::max)
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let noop: &[&str] = &["true"];
    let sleep: &[&str] = &["sleep", "0.05"];
    let mut report = String::from(
        "graph                      steps  makespan_s  critical_path_s  overhead_s  overhead_%\n",
    );
    let cases: Vec<(String, Dag)> = vec![
        ("chain/true".into(), chain(10, noop)),
        ("chain/true".into(), chain(100, noop)),
        ("chain/true".into(), chain(1000, noop)),
        ("chain/sleep0.05".into(), chain(100, sleep)),
        ("fan/sleep0.05".into(), fan(10, sleep)),
        ("fan/sleep0.05".into(), fan(100, sleep)),
        ("fan/sleep0.05".into(), fan(1000, sleep)),
        ("diamonds-w10/true".into(), diamonds(1000, 10, noop)),
        ("diamonds-w10/sleep0.05".into(), diamonds(1000, 10, sleep)),
    ];
    for (name, dag) in cases {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::create_dir_all(dir.path().join("logs")).expect("logs");
        let mut journal = Journal::open(&dir.path().join("journal.jsonl")).expect("journal");
        let opts = RunOptions {
            jobs: 1024,
            per_node: 1024,
            keep_going: false,
            keep_up: false,
            grace: Duration::from_secs(5),
            run_dir: dir.path().to_path_buf(),
            already_done: vec![],
            adopted: vec![],
        };
        let report_run = rt.block_on(async {
            let (_tx, rx) = tokio::sync::mpsc::unbounded_channel();
            let mut observer = Plain { quiet: true };
            execute(
                &dag,
                Arc::new(LocalTransport),
                &opts,
                &mut journal,
                &mut observer,
                rx,
            )
            .await
        });
        assert!(report_run.failures.is_empty(), "{:?}", report_run.failures);
        let trace: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("trace.json")).expect("trace"))
                .expect("json");
        let cp = critical_path_secs(&dag, &trace);
        let overhead = report_run.makespan_secs - cp;
        report.push_str(&format!(
            "{name:<26} {:>5} {:>11.3} {:>16.3} {:>11.3} {:>10.1}\n",
            dag.plan.steps.len(),
            report_run.makespan_secs,
            cp,
            overhead,
            100.0 * overhead / report_run.makespan_secs.max(1e-9)
        ));
    }
    print!("{report}");
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-engine.txt");
    let _ = std::fs::write(out, &report);
}
