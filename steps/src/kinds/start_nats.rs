//! `start_nats`: the NATS server Dynamo's workers and frontends talk through (JetStream on).

use srt_graph_engine::{Lifetime, Probe, Step};

pub const KIND: &str = "start_nats";
pub const SPEC: super::Kind = super::Kind {
    name: KIND,
    fill: "#e2d9f3",
    policy: srt_graph_engine::Policy::default,
    on_resume: srt_graph_engine::OnResume::Stand,
    in_worker_container: false,
};
pub const PORT: u16 = 4222;

pub fn step(node: usize, bind: &str, addr: &str) -> Step {
    let mut s = SPEC.step("nats", node, Lifetime::Service);
    s.command = Some(vec![
        "nats-server".into(),
        "-a".into(),
        bind.into(),
        "-p".into(),
        PORT.to_string(),
        "-js".into(),
    ]);
    s.ports = vec![PORT];
    s.probe = Some(Probe::Tcp {
        host: addr.into(),
        port: PORT,
    });
    s.summary = "NATS for Dynamo".into();
    s
}
