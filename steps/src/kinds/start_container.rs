//! `start_container`: creates (or finds) the run's named container on one node before anything else runs
//! in it. pyxis creates a named container on first use; two steps starting at once on one node would
//! both try. It also checks that the image has the programs the node's steps call by name (`python3`,
//! `flock`), so a wrong image stops the run at its first step, naming the node and the fix.

use srt_graph_engine::{Lifetime, Policy, RetryOn, Step};

pub const KIND: &str = "start_container";
pub const SPEC: super::Kind = super::Kind {
    name: KIND,
    fill: "#e0e0ff",
    policy,
    // The container lives on the node, not in the run: check it again on resume (it is reused if there).
    on_resume: srt_graph_engine::OnResume::Recheck,
    in_worker_container: true,
};

pub fn policy() -> Policy {
    Policy {
        attempts: 2,
        retry_on: vec![RetryOn::Spawn],
        timeout_secs: Some(600.0),
        ..Policy::default()
    }
}

pub fn id(node_name: &str) -> String {
    format!("container/{node_name}")
}

/// nginx's own container, when `frontend.nginx_container` is another image than the workers'.
pub fn nginx_id(node_name: &str) -> String {
    format!("container/{node_name}/nginx")
}

/// `tool node-op image-check PROGRAM…` in the container (the container itself is set by the compiler).
pub fn step(id: String, node: usize, tool: &str, needs: &[String]) -> Step {
    let mut s = SPEC.step(id, node, Lifetime::Task);
    let mut argv = vec![tool.to_string(), "node-op".into(), "image-check".into()];
    argv.extend(needs.iter().cloned());
    s.command = Some(argv);
    s.summary = "start the run's container on this node and check its image".into();
    s
}
