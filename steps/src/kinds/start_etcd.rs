//! `start_etcd`: the etcd Dynamo registers its components in.

use srt_graph_engine::{Lifetime, Probe, Step};

pub const KIND: &str = "start_etcd";
pub const SPEC: super::Kind = super::Kind {
    name: KIND,
    fill: "#e2d9f3",
    policy: srt_graph_engine::Policy::default,
    on_resume: srt_graph_engine::OnResume::Stand,
    in_worker_container: false,
};
pub const CLIENT_PORT: u16 = 2379;
pub const PEER_PORT: u16 = 2380;

pub fn step(node: usize, bind: &str, addr: &str, data_dir: &str) -> Step {
    let mut s = SPEC.step("etcd", node, Lifetime::Service);
    s.command = Some(vec![
        "etcd".into(),
        "--data-dir".into(),
        data_dir.into(),
        "--listen-client-urls".into(),
        format!("http://{bind}:{CLIENT_PORT}"),
        "--advertise-client-urls".into(),
        format!("http://{addr}:{CLIENT_PORT}"),
        "--listen-peer-urls".into(),
        format!("http://{bind}:{PEER_PORT}"),
    ]);
    s.ports = vec![CLIENT_PORT, PEER_PORT];
    s.probe = Some(Probe::Http {
        url: format!("http://{addr}:{CLIENT_PORT}/health"),
    });
    s.summary = "etcd for Dynamo".into();
    s
}
