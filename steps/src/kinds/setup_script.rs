//! `setup_script`: the recipe's `setup_script` (a file under the configs directory), run with bash on
//! each node that runs workers, before anything is installed or started there.

use srt_graph_engine::{Lifetime, Policy, Step};

pub const KIND: &str = "setup_script";
pub const SPEC: super::Kind = super::Kind {
    name: KIND,
    fill: "#e8e8e8",
    policy,
    on_resume: srt_graph_engine::OnResume::Stand,
    in_worker_container: true,
};

pub fn policy() -> Policy {
    Policy {
        timeout_secs: Some(1800.0),
        ..Policy::default()
    }
}

pub fn step(node: usize, node_name: &str, configs_dir: &str, script: &str) -> Step {
    let mut s = SPEC.step(format!("setup/{node_name}"), node, Lifetime::Task);
    let path = format!("{}/{script}", configs_dir.trim_end_matches('/'));
    s.command = Some(vec!["bash".into(), path]);
    s.summary = format!("run setup script {script}");
    s
}
