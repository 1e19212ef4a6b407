//! `shell`: a step the recipe declares under `steps:` — the only kind whose command goes through a shell,
//! because the user wrote a shell command.

use srt_graph_engine::{Lifetime, Policy, RetryOn, Step};

pub const KIND: &str = "shell";
pub const SPEC: super::Kind = super::Kind {
    name: KIND,
    fill: "#ffffff",
    policy: srt_graph_engine::Policy::default,
    on_resume: srt_graph_engine::OnResume::Stand,
    in_worker_container: false,
};

pub fn step(
    id: String,
    node: usize,
    run: &str,
    service: bool,
    retries: Option<u32>,
    timeout: Option<f64>,
) -> Step {
    let lifetime = if service {
        Lifetime::Service
    } else {
        Lifetime::Task
    };
    let mut s = SPEC.step(id, node, lifetime);
    s.command = Some(vec!["bash".into(), "-c".into(), run.into()]);
    let mut policy = Policy {
        timeout_secs: if service { None } else { timeout },
        ..Policy::default()
    };
    if let Some(r) = retries {
        policy.attempts = r + 1;
        policy.retry_on = vec![RetryOn::Spawn, RetryOn::Exit, RetryOn::Timeout];
    }
    s.policy = policy;
    s
}
