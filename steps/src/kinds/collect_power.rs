//! `collect_power`: srtctl's DCGM power collector. On the orchestrator's node (the benchmark's clock),
//! every exporter is read each period into `samples.csv`; `manifest.json` says what was expected
//! (devices, benchmark windows) and, when the collector is stopped, what was observed and whether each
//! benchmark window is covered. See `srt_graph_node_tools::power`.

use srt_graph_engine::{Lifetime, Step};

pub const KIND: &str = "collect_power";
pub const SPEC: super::Kind = super::Kind {
    name: KIND,
    fill: "#fde2e4",
    policy: srt_graph_engine::Policy::default,
    on_resume: srt_graph_engine::OnResume::Stand,
    in_worker_container: false,
};

pub const ID: &str = "collect-power";

/// What the collector reads and expects.
pub struct Collect<'a> {
    pub srt_graph: &'a str,
    pub dir: &'a str,
    pub run_name: &'a str,
    pub telemetry: &'a crate::recipe::Telemetry,
    /// `NODE=URL` of each exporter.
    pub endpoints: Vec<String>,
    /// `NODE:GPU:ROLE` of each GPU expected to report.
    pub devices: Vec<String>,
    /// `TYPE:ISL:OSL:CONCURRENCY` of each measured point that writes a measurement window.
    pub windows: Vec<String>,
    /// The exporter's command on the first node, for the manifest's provenance.
    pub command: String,
}

pub fn step(c: &Collect<'_>) -> Step {
    let t = c.telemetry;
    let mut s = SPEC.step(ID, 0, Lifetime::Service);
    let mut argv = vec![
        c.srt_graph.to_string(),
        "collect-power".into(),
        "--dir".into(),
        c.dir.into(),
        "--interval".into(),
        format!("{}s", t.interval_secs),
        "--request-timeout".into(),
        format!("{}s", t.request_timeout_secs),
        "--startup-timeout".into(),
        format!("{}s", t.startup_timeout_secs),
        "--run-name".into(),
        c.run_name.into(),
        "--image".into(),
        t.exporter_image.clone(),
        "--port".into(),
        t.exporter_port.to_string(),
        "--command".into(),
        c.command.clone(),
    ];
    if t.required {
        argv.push("--required".into());
    }
    for e in &c.endpoints {
        argv.extend(["--endpoint".into(), e.clone()]);
    }
    for d in &c.devices {
        argv.extend(["--device".into(), d.clone()]);
    }
    for w in &c.windows {
        argv.extend(["--window".into(), w.clone()]);
    }
    s.command = Some(argv);
    s.summary = format!(
        "sample GPU power of {} GPU(s) on {} node(s) every {} s into {}",
        c.devices.len(),
        c.endpoints.len(),
        t.interval_secs,
        c.dir
    );
    s
}
