//! `mock_model`: write a weightless model directory (tokenizer, config) that Dynamo's mocker loads, for
//! simulated Dynamo workers on a node without the recipe's model.

use srt_graph_engine::{Lifetime, Step};

pub const KIND: &str = "mock_model";
pub const SPEC: super::Kind = super::Kind {
    name: KIND,
    fill: "#e8e8e8",
    policy: srt_graph_engine::Policy::default,
    on_resume: srt_graph_engine::OnResume::Stand,
    in_worker_container: false,
};

pub fn step(node: usize, node_name: &str, srt_graph: &str, dir: &str, served_name: &str) -> Step {
    let mut s = SPEC.step(format!("mock-model/{node_name}"), node, Lifetime::Task);
    s.command = Some(vec![
        srt_graph.into(),
        "mock-model".into(),
        dir.into(),
        "--name".into(),
        served_name.into(),
    ]);
    s.summary = "write a weightless model directory (tokenizer, config) for dynamo.mocker".into();
    s
}
