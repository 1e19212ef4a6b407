//! What `srt-graph monitor` shows of one run directory at one moment, read from its files alone (plan,
//! journal, logs, results), so that it works the same for local, ssh and Slurm runs and from any machine
//! that sees the directory.

use srt_graph_engine::journal::{self, Event};
use srt_graph_engine::resume::{replay, Recorded};
use srt_graph_engine::Plan;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepState {
    Pending,
    Running,
    Up,
    Done,
    Failed,
    Stopped,
    Interrupted,
}

impl StepState {
    pub fn as_str(self) -> &'static str {
        match self {
            StepState::Pending => "pending",
            StepState::Running => "running",
            StepState::Up => "up",
            StepState::Done => "done",
            StepState::Failed => "FAILED",
            StepState::Stopped => "stopped",
            StepState::Interrupted => "interrupted",
        }
    }
}

#[derive(Debug, Clone)]
pub struct StepView {
    pub id: String,
    pub kind: String,
    pub node: String,
    pub state: StepState,
    /// Seconds since the step's latest attempt started (running) or its recorded duration.
    pub secs: Option<f64>,
    pub detail: String,
}

#[derive(Debug, Clone)]
pub struct Snapshot {
    pub dir: PathBuf,
    pub recipe: String,
    /// What the run is doing now, in words.
    pub stage: String,
    pub steps: Vec<StepView>,
    /// (healthy, expected) workers by the health gate's latest report.
    pub workers: Option<(u32, u32)>,
    /// The benchmark step running now and its latest progress line.
    pub benchmark: Option<(String, String)>,
    pub elapsed_secs: f64,
    pub finished: Option<String>,
    /// A simulated run: what times it and its clock's speed-up (the plan's benchmark steps say).
    pub simulated: Option<(String, String)>,
    /// Each worker's latest scraped gauges (`sglang:num_running_reqs`, …), if the run scrapes them.
    pub metrics: Vec<(String, std::collections::BTreeMap<&'static str, f64>)>,
    /// Each node's latest host sample, if the run samples its hosts.
    pub hosts: Vec<crate::hosts::HostNow>,
}

impl Snapshot {
    pub fn count(&self, state: StepState) -> usize {
        self.steps.iter().filter(|s| s.state == state).count()
    }
    /// Steps still to run by the plan.
    pub fn remaining(&self) -> Vec<&StepView> {
        self.steps
            .iter()
            .filter(|s| matches!(s.state, StepState::Pending | StepState::Running))
            .collect()
    }
}

/// `a/b prefill, c/d decode` (the health gate's report) → (a + c, b + d), from its latest line; the
/// gate reports once per router or frontend (`; `-separated), each sees every worker: the first counts.
pub fn parse_health(line: &str) -> Option<(u32, u32)> {
    let mut have = 0;
    let mut want = 0;
    let mut any = false;
    let first = line.split(';').next().unwrap_or(line);
    for word in first.split(|c: char| c.is_whitespace() || c == ',') {
        if let Some((a, b)) = word.split_once('/') {
            if let (Ok(a), Ok(b)) = (a.parse::<u32>(), b.parse::<u32>()) {
                have += a;
                want += b;
                any = true;
            }
        }
    }
    any.then_some((have, want))
}

fn last_line(path: &Path, pred: impl Fn(&str) -> bool) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().rev().find(|l| pred(l)).map(|l| l.to_string())
}

/// Reads the run directory now; `orchestrator_alive` says whether a started step is running (true) or
/// was cut off by a dead orchestrator (false).
pub fn read(dir: &Path, orchestrator_alive: bool) -> Result<Snapshot, crate::ResultsError> {
    let plan_path = dir.join("plan.json");
    let plan: Plan = serde_json::from_slice(&crate::read(&plan_path)?).map_err(|e| {
        crate::ResultsError::Parse {
            path: plan_path.clone(),
            message: e.to_string(),
        }
    })?;
    let records = journal::read(&dir.join("journal.jsonl")).unwrap_or_default();
    let state = replay(&records);
    let now = journal::now();
    let t0 = records
        .iter()
        .find(|r| matches!(r.event, Event::RunStarted { .. }))
        .map_or(now, |r| r.t);
    let mut started_at = std::collections::HashMap::new();
    let mut duration = std::collections::HashMap::new();
    let mut finished = None;
    for r in &records {
        match &r.event {
            Event::StepStarted { step, .. } => {
                started_at.insert(step.clone(), r.t);
            }
            Event::StepFinished { step, secs, .. } => {
                duration.insert(step.clone(), *secs);
            }
            Event::RunStarted { .. } => finished = None,
            Event::RunFinished { status, .. } => {
                finished = Some(format!("{status:?}").to_lowercase());
            }
            _ => {}
        }
    }
    let end = if finished.is_some() {
        records.last().map_or(now, |r| r.t)
    } else {
        now
    };
    let mut steps = Vec::new();
    for s in &plan.steps {
        let rec = state.get(&s.id).cloned().unwrap_or(Recorded::NeverStarted);
        let (st, detail) = match rec {
            Recorded::NeverStarted => (StepState::Pending, String::new()),
            Recorded::Finished => (StepState::Done, String::new()),
            Recorded::Unfinished if orchestrator_alive && finished.is_none() => {
                (StepState::Running, String::new())
            }
            Recorded::Unfinished => (StepState::Interrupted, String::new()),
            Recorded::Failed(r) => (StepState::Failed, r),
            Recorded::Up { .. } if finished.is_some() || !orchestrator_alive => {
                (StepState::Stopped, String::new())
            }
            Recorded::Up { .. } => (StepState::Up, String::new()),
            Recorded::Down(r) => (StepState::Stopped, r),
        };
        let secs = match st {
            StepState::Running | StepState::Up => started_at.get(&s.id).map(|t| end - t),
            _ => duration.get(&s.id).copied(),
        };
        steps.push(StepView {
            id: s.id.clone(),
            kind: s.kind.clone(),
            node: plan.nodes.get(s.node).cloned().unwrap_or_default(),
            state: st,
            secs,
            detail,
        });
    }
    let log = |id: &str| srt_graph_engine::rundir::log_path(dir, id);
    let workers = steps
        .iter()
        .filter(|s| s.kind == "wait_healthy")
        .filter_map(|s| last_line(&log(&s.id), |l| parse_health(l).is_some()))
        .find_map(|l| parse_health(&l))
        .or_else(|| {
            let ready = steps
                .iter()
                .any(|s| s.kind == "wait_healthy" && s.state == StepState::Done);
            let expected = plan
                .steps
                .iter()
                .filter(|s| s.kind.starts_with("start_worker"))
                .count() as u32;
            ready.then_some((expected, expected))
        });
    let benchmark = steps
        .iter()
        .find(|s| s.kind == "run_benchmark" && s.state == StepState::Running)
        .map(|s| {
            let line = last_line(&log(&s.id), |l| !l.trim().is_empty()).unwrap_or_default();
            (s.id.clone(), line)
        });
    let stage = stage(&steps, finished.as_deref(), orchestrator_alive);
    let scrape_out = plan
        .steps
        .iter()
        .find(|s| s.kind == "scrape_metrics")
        .and_then(|s| {
            let argv = s.command.as_ref()?;
            let i = argv.iter().position(|a| a == "--out")?;
            argv.get(i + 1).cloned()
        });
    Ok(Snapshot {
        hosts: crate::hosts::latest(dir),
        metrics: scrape_out
            .map(|out| crate::metrics::latest(Path::new(&out)))
            .unwrap_or_default(),
        simulated: plan.steps.iter().find_map(|s| {
            Some((
                s.env.get("SRT_SIMULATED")?.clone(),
                s.env
                    .get("SRT_SIM_SPEED")
                    .cloned()
                    .unwrap_or_else(|| "1".into()),
            ))
        }),
        dir: dir.to_path_buf(),
        recipe: plan.recipe.clone(),
        stage,
        steps,
        workers,
        benchmark,
        elapsed_secs: (end - t0).max(0.0),
        finished,
    })
}

fn stage(steps: &[StepView], finished: Option<&str>, alive: bool) -> String {
    if let Some(f) = finished {
        return f.to_string();
    }
    let running: Vec<&StepView> = steps
        .iter()
        .filter(|s| s.state == StepState::Running)
        .collect();
    if running.is_empty() && !alive {
        return "not running (orchestrator gone: `srt-graph resume` continues it)".into();
    }
    let has = |k: &str| running.iter().any(|s| s.kind.starts_with(k));
    if let Some(b) = running.iter().find(|s| s.kind == "run_benchmark") {
        format!("benchmark {}", b.id)
    } else if has("wait_healthy") {
        "waiting for workers to be healthy".into()
    } else if has("pip_install") || has("start_container") || has("setup_script") {
        "preparing nodes".into()
    } else if running.is_empty() {
        "starting".into()
    } else {
        format!("running {}", running[0].id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_health_gates_report() {
        let l = "[   3.1s] http://n:30080: 2/2 prefill, 1/2 decode — missing 0 prefill, 1 decode";
        assert_eq!(parse_health(l), Some((3, 4)));
        assert_eq!(parse_health("Model is ready."), None);
        assert_eq!(
            parse_health("a: 1/1 prefill, 1/1 decode; b: 1/1 prefill, 1/1 decode"),
            Some((2, 2))
        );
    }
}
