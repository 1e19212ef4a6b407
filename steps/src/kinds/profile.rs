//! `profile`: the capture window of `profiling.type: torch` or `nsys` (srtctl's `start_all_profiling` /
//! `stop_all_profiling` around the benchmark): one step asks every worker leader to start profiling its
//! role's window of forward steps (`/start_profile`, or `/engine/start_profile` under Dynamo) just
//! before the first benchmark point; one step stops them after the last. A worker that refuses is a
//! warning in the step's log, as in srtctl; the report lists the profiles that were written.

use srt_graph_engine::{Lifetime, Step};

pub const KIND: &str = "profile";
pub const SPEC: super::Kind = super::Kind {
    name: KIND,
    fill: "#f8d7da",
    policy: srt_graph_engine::Policy::default,
    // A restarted worker lost its capture: asking again is harmless.
    on_resume: srt_graph_engine::OnResume::Regate,
    in_worker_container: false,
};

/// One worker leader to profile: its base URL, where its traces go, and its window of steps.
pub struct Target {
    pub url: String,
    pub output_dir: String,
    pub start_step: u64,
    pub stop_step: u64,
}

/// Where a frontend type's workers take profiling requests.
pub fn path_prefix(dynamo: bool) -> &'static str {
    if dynamo {
        "/engine"
    } else {
        ""
    }
}

/// `--worker START:STOP=URL=DIR` per target (`srt-graph profile`'s form).
fn worker_args(targets: &[Target]) -> Vec<String> {
    targets
        .iter()
        .flat_map(|t| {
            [
                "--worker".to_string(),
                format!(
                    "{}:{}={}={}",
                    t.start_step, t.stop_step, t.url, t.output_dir
                ),
            ]
        })
        .collect()
}

pub fn start(srt_graph: &str, targets: &[Target], prefix: &str, activities: &str) -> Step {
    let mut s = SPEC.step("profile-start", 0, Lifetime::Task);
    let mut argv = vec![
        srt_graph.to_string(),
        "profile".into(),
        "start".into(),
        "--path".into(),
        format!("{prefix}/start_profile"),
        "--activities".into(),
        activities.into(),
    ];
    argv.extend(worker_args(targets));
    s.command = Some(argv);
    s.summary = format!(
        "start profiling {} worker(s) ({activities}) before the benchmark",
        targets.len()
    );
    s
}

pub fn stop(srt_graph: &str, targets: &[Target], prefix: &str) -> Step {
    let mut s = SPEC.step("profile-stop", 0, Lifetime::Task);
    let mut argv = vec![
        srt_graph.to_string(),
        "profile".into(),
        "stop".into(),
        "--path".into(),
        format!("{prefix}/stop_profile"),
    ];
    argv.extend(worker_args(targets));
    s.command = Some(argv);
    s.summary = format!(
        "stop profiling {} worker(s) after the benchmark",
        targets.len()
    );
    s
}
