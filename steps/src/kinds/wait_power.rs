//! `wait_power`: the benchmark waits for the power collector's first complete scrape (every expected GPU
//! in one sweep), as srtctl does before its benchmark. Past `startup_timeout_seconds` a `required`
//! telemetry fails the run before any point; otherwise the log says the power figures will be missing.

use srt_graph_engine::{Lifetime, Policy, Step};

pub const KIND: &str = "wait_power";
pub const SPEC: super::Kind = super::Kind {
    name: KIND,
    fill: "#f8d7da",
    policy: Policy::default,
    on_resume: srt_graph_engine::OnResume::Regate,
    in_worker_container: false,
};

pub const ID: &str = "power-ready";

pub fn step(srt_graph: &str, dir: &str, t: &crate::recipe::Telemetry) -> Step {
    let mut s = SPEC.step(ID, 0, Lifetime::Task);
    let mut argv = vec![
        srt_graph.to_string(),
        "wait-power".into(),
        "--dir".into(),
        dir.into(),
        "--timeout".into(),
        format!("{}s", t.startup_timeout_secs),
    ];
    if t.required {
        argv.push("--required".into());
    }
    s.command = Some(argv);
    // Bounded twice: by the tool's own deadline and, should it hang, by the engine.
    s.policy.timeout_secs = Some(t.startup_timeout_secs + 30.0);
    s.summary = format!(
        "wait up to {} s for a complete power scrape{}",
        t.startup_timeout_secs,
        if t.required {
            " (required: no benchmark without it)"
        } else {
            ""
        }
    );
    s
}
