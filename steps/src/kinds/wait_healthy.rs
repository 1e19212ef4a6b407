//! `wait_healthy`: poll until every expected worker is registered, then send one smoke request.
//! SGLang router mode counts `/workers` on every router; Dynamo mode counts `/health` `instances[]`.

use srt_graph_engine::{Lifetime, Policy, Step};

pub const KIND: &str = "wait_healthy";
pub const SPEC: super::Kind = super::Kind {
    name: KIND,
    fill: "#f8d7da",
    policy,
    on_resume: srt_graph_engine::OnResume::Regate,
    in_worker_container: false,
};

pub fn policy() -> Policy {
    Policy {
        timeout_secs: Some(1800.0),
        ..Policy::default()
    }
}

pub struct Expect<'a> {
    pub mode: &'a str,
    pub urls: &'a [String],
    pub prefill: u32,
    pub decode: u32,
    pub public_url: Option<&'a str>,
    pub model: &'a str,
    pub timeout_secs: f64,
    pub interval_secs: u32,
}

pub fn step(id: &str, node: usize, srt_graph: &str, e: &Expect<'_>) -> Step {
    let mut s = SPEC.step(id, node, Lifetime::Task);
    let mut argv = vec![
        srt_graph.to_string(),
        "wait-healthy".into(),
        "--mode".into(),
        e.mode.into(),
    ];
    for u in e.urls {
        argv.extend(["--url".into(), u.clone()]);
    }
    argv.extend([
        "--prefill".into(),
        e.prefill.to_string(),
        "--decode".into(),
        e.decode.to_string(),
        "--max-interval".into(),
        format!("{}s", e.interval_secs.min(2)),
    ]);
    if let Some(p) = e.public_url {
        argv.extend(["--smoke".into(), p.into(), "--model".into(), e.model.into()]);
    }
    s.command = Some(argv);
    s.policy = Policy {
        timeout_secs: Some(e.timeout_secs),
        ..policy()
    };
    s.summary = format!(
        "wait for {} prefill + {} decode worker(s)",
        e.prefill, e.decode
    );
    s
}

/// Readiness of an infrastructure service (NATS by TCP, etcd by `/health`).
pub fn infra(
    id: &str,
    node: usize,
    srt_graph: &str,
    target: (&str, String),
    timeout_secs: f64,
) -> Step {
    let mut s = SPEC.step(id, node, Lifetime::Task);
    s.command = Some(vec![
        srt_graph.into(),
        "wait-ready".into(),
        target.0.into(),
        target.1.clone(),
    ]);
    s.policy = Policy {
        timeout_secs: Some(timeout_secs),
        ..policy()
    };
    s.summary = format!("wait until {} answers", target.1);
    s
}
