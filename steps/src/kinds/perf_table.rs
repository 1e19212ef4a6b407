//! `perf_table`: compute each role's latency table with the performance model (or read it from the
//! cache) into the run directory, before any simulated worker starts.

use srt_graph_engine::{Lifetime, Policy, Step};

pub const KIND: &str = "perf_table";
pub const SPEC: super::Kind = super::Kind {
    name: KIND,
    fill: "#e8e8e8",
    policy: Policy::default,
    on_resume: srt_graph_engine::OnResume::Recheck,
    in_worker_container: true,
};

pub struct TableArgs<'a> {
    pub srt_graph: &'a str,
    pub python: &'a str,
    pub cache: &'a str,
    pub out_dir: &'a str,
    pub inputs_json: String,
    /// Also write Dynamo mocker's NPZ per role.
    pub npz: bool,
}

pub fn step(a: &TableArgs<'_>) -> Step {
    let mut s = SPEC.step("perf-tables", 0, Lifetime::Task);
    let mut argv = vec![
        a.srt_graph.to_string(),
        "perf-table".into(),
        "--python".into(),
        a.python.into(),
        "--cache".into(),
        a.cache.into(),
        "--out-dir".into(),
        a.out_dir.into(),
        "--inputs".into(),
        a.inputs_json.clone(),
    ];
    if a.npz {
        argv.push("--npz".into());
    }
    s.command = Some(argv);
    s.summary = "compute each role's latency table with aiconfigurator (cached)".into();
    s
}
