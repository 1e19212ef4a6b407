//! What a recorded run may have left running, found again from its directory: its nodes reached as
//! `run.json` places them, and every process group the journal, the run's tags and its pid files name.
//! `down`, `hold`, `resume` and `status` start from it.

use crate::cli_place::{place, Placed};
use crate::run_dir::read_meta_and_plan;
use srt_graph_engine::journal::{self, Event};
use srt_graph_engine::transport::Transport;
use std::path::Path;

/// A process group a run started: `(step, node, pgid)`.
pub type Group = (String, usize, i32);

/// Where a recorded run is (its nodes reached again) and every process group it may have left.
pub fn leftovers(
    run_dir: &Path,
    records: &[journal::Record],
) -> Result<(Placed, Vec<Group>), String> {
    let (meta, plan) = read_meta_and_plan(run_dir)?;
    let placed = place(
        &meta.placement,
        plan.nodes.len(),
        run_dir,
        Some(&plan.nodes),
    )
    .map_err(|e| format!("cannot reach the run's nodes: {e}"))?;
    let groups = run_groups(records, &plan, placed.transport.as_ref(), run_dir);
    Ok((placed, groups))
}

/// Every process group a run may have left: the journal's, the run-tagged processes on each machine
/// (spawns the journal never heard of), and the pid files of services that rewrite their environment
/// (nginx). `(step, node, pgid)`, most recent journal entries first.
pub fn run_groups(
    records: &[journal::Record],
    plan: &srt_graph_engine::Plan,
    transport: &dyn Transport,
    run_dir: &Path,
) -> Vec<Group> {
    let mut groups: Vec<Group> = records
        .iter()
        .rev()
        .filter_map(|r| match &r.event {
            Event::Spawned {
                step, node, pgid, ..
            } => Some((step.clone(), *node, *pgid)),
            _ => None,
        })
        .collect();
    let mut add = |step: String, node: usize, pgid: i32| {
        if !groups.iter().any(|(_, n, g)| *g == pgid && *n == node) {
            groups.push((step, node, pgid));
        }
    };
    let run_dir = run_dir.display().to_string();
    for node in transport.machines() {
        for (step, pgid) in transport.tagged_groups(node, &run_dir) {
            let node = plan
                .steps
                .iter()
                .find(|s| s.id == step)
                .map_or(node, |s| s.node);
            add(step, node, pgid);
        }
    }
    for s in &plan.steps {
        if let Some(pgid) = s
            .pid_file
            .as_deref()
            .and_then(|f| transport.pid_file_group(s.node, f))
        {
            add(s.id.clone(), s.node, pgid);
        }
    }
    groups
}
