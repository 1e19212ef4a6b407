//! `check_identity`: after the health gate, before the benchmark: the recipe's `identity:` against the
//! worker nodes' fingerprints. A difference fails the run, naming each value, before a point is measured.

use crate::recipe::Identity;
use srt_graph_engine::{Lifetime, Step};

pub const KIND: &str = "check_identity";
pub const SPEC: super::Kind = super::Kind {
    name: KIND,
    fill: "#d1e7dd",
    policy: srt_graph_engine::Policy::default,
    on_resume: srt_graph_engine::OnResume::Regate,
    in_worker_container: false,
};

pub fn step(srt_graph: &str, run_dir: &str, nodes: &[String], id: &Identity) -> Step {
    let mut s = SPEC.step("check-identity", 0, Lifetime::Task);
    let dir = run_dir.trim_end_matches('/');
    let mut argv = vec![srt_graph.to_string(), "check-identity".into()];
    for n in nodes {
        argv.extend([
            "--fingerprint".into(),
            format!("{dir}/fingerprints/{n}.json"),
        ]);
    }
    let mut add = |flag: &str, v: &Option<String>| {
        if let Some(v) = v {
            argv.extend([flag.to_string(), v.clone()]);
        }
    };
    add("--model-repo", &id.model_repo);
    add("--model-revision", &id.model_revision);
    add("--image", &id.image);
    for (name, version) in &id.frameworks {
        argv.extend(["--framework".into(), format!("{name}={version}")]);
    }
    s.command = Some(argv);
    s.summary =
        "check the recipe's identity (model revision, image, frameworks) against the fingerprints"
            .into();
    s
}
