//! `mount_source`: make the user's SGLang checkout visible at `/ext-sglang-src/` on a node.
//!
//! In a container this is a bind mount added to the launch flags; the step then checks that the mount is
//! really there and is a Python project. On the local executor the "mount" is a symlink in the node's
//! directory. Either way the step fails if the source is missing — it never pretends.

use srt_graph_engine::{Lifetime, Policy, Step};

pub const KIND: &str = "mount_source";
pub const SPEC: super::Kind = super::Kind {
    name: KIND,
    fill: "#e8e8e8",
    policy,
    on_resume: srt_graph_engine::OnResume::Recheck,
    in_worker_container: false,
};

pub fn policy() -> Policy {
    Policy {
        timeout_secs: Some(60.0),
        ..Policy::default()
    }
}

pub fn step(node: usize, node_name: &str, srt_graph: &str, src: &str, dst: &str) -> Step {
    let mut s = SPEC.step(format!("mount-src/{node_name}"), node, Lifetime::Task);
    s.command = Some(vec![
        srt_graph.into(),
        "mount-source".into(),
        src.into(),
        dst.into(),
    ]);
    s.summary = format!("make {src} visible at {dst}");
    s
}
