//! `fingerprint`: record what one node runs with (srt-graph, OS, Python and its packages, container,
//! GPUs and driver) in `fingerprints/<node>.json`, for `srt-graph diff`. It runs where the workers run
//! (in their container, with their Python), once the node is prepared; it never fails a run for what it
//! cannot read.

use srt_graph_engine::{Lifetime, Policy, Step};

pub const KIND: &str = "fingerprint";
pub const SPEC: super::Kind = super::Kind {
    name: KIND,
    fill: "#f0e6ff",
    policy,
    on_resume: srt_graph_engine::OnResume::Stand,
    in_worker_container: true,
};

pub fn policy() -> Policy {
    Policy {
        timeout_secs: Some(120.0),
        ..Policy::default()
    }
}

pub fn step(
    node: usize,
    node_name: &str,
    srt_graph: &str,
    python: &str,
    image: Option<&str>,
    model: Option<&str>,
    run_dir: &str,
) -> Step {
    let mut s = SPEC.step(format!("fingerprint/{node_name}"), node, Lifetime::Task);
    let mut argv = vec![
        srt_graph.into(),
        "node-op".into(),
        "fingerprint".into(),
        "--node".into(),
        node_name.into(),
        "--python".into(),
        python.into(),
        "--out".into(),
        format!("{run_dir}/fingerprints/{node_name}.json"),
    ];
    if let Some(image) = image {
        argv.extend(["--container".into(), image.into()]);
    }
    if let Some(model) = model {
        argv.extend(["--model".into(), model.into()]);
    }
    s.command = Some(argv);
    s.summary = format!("record {node_name}'s environment (Python packages, container, GPUs)");
    s
}
