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

/// Where srtctl looks for a setup script: its `configs/`, then `configs/patches/`.
pub fn candidates(configs_dir: &str, script: &str) -> [String; 2] {
    let dir = configs_dir.trim_end_matches('/');
    [format!("{dir}/{script}"), format!("{dir}/patches/{script}")]
}

/// Runs the first of the candidates that exists (srtctl's order); the names reach the shell only as
/// positional arguments. A missing script is a requirement the run checks before anything starts.
pub fn step(
    node: usize,
    node_name: &str,
    configs_dir: &str,
    script: &str,
    host_configs: &str,
) -> Step {
    let mut s = SPEC.step(format!("setup/{node_name}"), node, Lifetime::Task);
    let [path, patch] = candidates(configs_dir, script);
    s.command = Some(vec![
        "bash".into(),
        "-c".into(),
        r#"if [ -f "$1" ]; then exec bash "$1"; else exec bash "$2"; fi"#.into(),
        "setup".into(),
        path,
        patch,
    ]);
    let [on_host, patch_on_host] = candidates(host_configs, script);
    s.requires.push(srt_graph_engine::Requirement {
        what: on_host.clone(),
        or: vec![patch_on_host.clone()],
        hint: format!(
            "srtctl looks for setup scripts in its configs/ (searched {on_host} and {patch_on_host}); set `srtctl_root` in srtslurm.yaml to the srt-slurm checkout that has it, or drop `setup_script`"
        ),
    });
    s.summary = format!("run setup script {script}");
    s
}
