//! Where a run's time went, from its plan and journal alone: submit → first request and → results in
//! stages (Slurm queue, orchestrator start → first step, containers, installs, workers → healthy per role,
//! the health gate and its lag, benchmark, teardown), and the critical path to the results: the chain of
//! steps, each waiting on the dependency that finished last, with each segment's share.

use serde::Serialize;
use srt_graph_engine::journal::{Event, Record};
use srt_graph_engine::Plan;
use std::collections::BTreeMap;
use std::path::Path;

/// `submit.json`, written by `srt-graph submit` beside the job script.
pub const SUBMIT_FILE: &str = "submit.json";

/// One stage: its span in seconds since the clock's zero (submit, else the run's start).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Stage {
    pub name: String,
    pub start_s: f64,
    pub end_s: f64,
    /// What the span is made of (per node or role), for people.
    pub detail: String,
}

impl Stage {
    pub fn secs(&self) -> f64 {
        (self.end_s - self.start_s).max(0.0)
    }
}

/// One segment of the critical path: a step's own time, or the wait before it started once the last
/// of its dependencies was done (`step: None`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Segment {
    pub step: Option<String>,
    pub kind: Option<String>,
    pub node: Option<String>,
    pub secs: f64,
    /// Of the path's total.
    pub share: f64,
    pub what: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct Breakdown {
    /// `submit`: the clock starts at `srt-graph submit`; `run`: at the orchestrator's start.
    pub clock: &'static str,
    pub first_request_s: Option<f64>,
    pub results_s: Option<f64>,
    pub ended_s: Option<f64>,
    pub stages: Vec<Stage>,
    /// To the last benchmark point's end (else to the last step that finished).
    pub critical_path: Vec<Segment>,
    pub resumed: bool,
}

/// Each step's first start and last finish (a service finishes when it is up), epoch seconds.
#[derive(Default, Clone, Copy)]
struct Span {
    start: Option<f64>,
    end: Option<f64>,
}

pub fn read(run_dir: &Path) -> Option<Breakdown> {
    let plan: Plan =
        serde_json::from_slice(&std::fs::read(run_dir.join("plan.json")).ok()?).ok()?;
    let journal = srt_graph_engine::journal::read(&run_dir.join("journal.jsonl")).ok()?;
    let submitted = std::fs::read(run_dir.join(SUBMIT_FILE))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v["submitted_at"].as_f64());
    let ready = worker_ready_times(run_dir, &plan, &journal);
    compute(&plan, &journal, submitted, &ready)
}

/// Lines an engine prints once it serves: SGLang's, then the uvicorn line of vLLM's and TensorRT-LLM's
/// OpenAI servers.
const READY_LINES: [&str; 2] = [
    "The server is fired up and ready to roll",
    "Application startup complete",
];

/// When each worker first printed a ready line (epoch seconds), from the `[HH:MM:SS.mmm]` (UTC) stamps
/// of its log, dated by the step's start.
fn worker_ready_times(run_dir: &Path, plan: &Plan, journal: &[Record]) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for s in plan.steps.iter().filter(|s| s.kind == "start_worker") {
        let Some(started) = journal.iter().find_map(|r| match &r.event {
            Event::StepStarted { step, .. } if *step == s.id => Some(r.t),
            _ => None,
        }) else {
            continue;
        };
        let Ok(text) = std::fs::read_to_string(srt_graph_engine::rundir::log_path(run_dir, &s.id))
        else {
            continue;
        };
        let stamp = text
            .lines()
            .find(|l| READY_LINES.iter().any(|m| l.contains(m)))
            .and_then(time_of_day);
        if let Some(tod) = stamp {
            let day = (started / 86_400.0).floor() * 86_400.0;
            let mut t = day + tod;
            // A worker that became ready after midnight UTC.
            if t < started - 1.0 {
                t += 86_400.0;
            }
            out.insert(s.id.clone(), t);
        }
    }
    out
}

/// Seconds since midnight from a line's `[HH:MM:SS.mmm]` prefix.
fn time_of_day(line: &str) -> Option<f64> {
    let stamp = line.strip_prefix('[')?.get(..12)?;
    let mut parts = stamp.split(':');
    let h: f64 = parts.next()?.parse().ok()?;
    let m: f64 = parts.next()?.parse().ok()?;
    let sec: f64 = parts.next()?.parse().ok()?;
    Some(h * 3600.0 + m * 60.0 + sec)
}

pub fn compute(
    plan: &Plan,
    journal: &[Record],
    submitted: Option<f64>,
    ready: &BTreeMap<String, f64>,
) -> Option<Breakdown> {
    let run_start = journal
        .iter()
        .find(|r| matches!(r.event, Event::RunStarted { .. }))?
        .t;
    let t0 = submitted.filter(|s| *s <= run_start).unwrap_or(run_start);
    let mut spans: BTreeMap<&str, Span> = BTreeMap::new();
    let mut ended = None;
    for r in journal {
        match &r.event {
            Event::StepStarted { step, .. } => {
                let s = spans.entry(step.as_str()).or_default();
                s.start.get_or_insert(r.t);
            }
            Event::StepFinished { step, .. } => {
                spans.entry(step.as_str()).or_default().end = Some(r.t);
            }
            Event::RunFinished { .. } => ended = Some(r.t),
            _ => {}
        }
    }
    let rel = |t: f64| t - t0;
    let of_kind = |kinds: &[&str]| -> Vec<(&srt_graph_engine::Step, f64, f64)> {
        plan.steps
            .iter()
            .filter(|s| kinds.contains(&s.kind.as_str()))
            .filter_map(|s| {
                let sp = spans.get(s.id.as_str())?;
                Some((s, sp.start?, sp.end?))
            })
            .collect()
    };
    let benches = of_kind(&["run_benchmark"]);
    let first_request = benches.iter().map(|b| b.1).reduce(f64::min);
    let results = benches.iter().map(|b| b.2).reduce(f64::max);
    let mut stages = Vec::new();
    if t0 < run_start {
        stages.push(Stage {
            name: "Slurm queue and batch start".into(),
            start_s: 0.0,
            end_s: rel(run_start),
            detail: "`srt-graph submit` → the orchestrator's start in the job".into(),
        });
    }
    if let Some(first) = spans.values().filter_map(|s| s.start).reduce(f64::min) {
        stages.push(Stage {
            name: "orchestrator start → first step".into(),
            start_s: rel(run_start),
            end_s: rel(first),
            detail: "reading the recipe, placing the plan, the journal".into(),
        });
    }
    let per = |rows: &[(&srt_graph_engine::Step, f64, f64)], by_role: bool| -> String {
        let mut longest: BTreeMap<String, f64> = BTreeMap::new();
        for (s, a, b) in rows {
            let key = if by_role {
                s.role.clone().unwrap_or_else(|| "worker".into())
            } else {
                plan.nodes.get(s.node).cloned().unwrap_or_default()
            };
            let e = longest.entry(key).or_insert(0.0);
            *e = e.max(b - a);
        }
        longest
            .iter()
            .map(|(k, v)| format!("{k} {v:.1} s"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    for (name, kinds, by_role) in [
        (
            "containers (create, image unpack)",
            &["start_container"][..],
            false,
        ),
        (
            "installs and setup",
            &["pip_install", "setup_script", "mount_source"][..],
            false,
        ),
        (
            "routers and frontends up",
            &["start_router", "start_frontend", "start_nginx"][..],
            false,
        ),
    ] {
        let rows = of_kind(kinds);
        if let Some(stage) = span_stage(name, &rows, t0, per(&rows, by_role)) {
            stages.push(stage);
        }
    }
    // A worker's step is done once spawned; healthy is its engine's ready line.
    let workers: Vec<(&srt_graph_engine::Step, f64, f64)> = of_kind(&["start_worker"])
        .into_iter()
        .map(|(s, a, b)| (s, a, ready.get(&s.id).copied().unwrap_or(b)))
        .collect();
    let told = workers
        .iter()
        .filter(|w| ready.contains_key(&w.0.id))
        .count();
    if let Some(mut stage) =
        span_stage("workers start → healthy", &workers, t0, per(&workers, true))
    {
        if told < workers.len() {
            stage.detail.push_str(&format!(
                " ({} of {} printed a ready line; the others count to their spawn)",
                told,
                workers.len()
            ));
        }
        stages.push(stage);
    }
    for gate in of_kind(&["wait_healthy"]) {
        let ready = gate
            .0
            .depends_on
            .iter()
            .filter_map(|d| spans.get(d.as_str())?.end)
            .reduce(f64::max);
        let lag = ready.map_or(String::new(), |r| {
            format!(
                "; passed {:.1} s after the last of its dependencies was up",
                gate.2 - r
            )
        });
        stages.push(Stage {
            name: format!("health gate ({})", gate.0.id),
            start_s: rel(gate.1),
            end_s: rel(gate.2),
            detail: format!("routers/frontends see every worker, then a smoke request{lag}"),
        });
    }
    if let (Some(a), Some(b)) = (first_request, results) {
        stages.push(Stage {
            name: "benchmark".into(),
            start_s: rel(a),
            end_s: rel(b),
            detail: format!("{} point(s) with the warm-up", benches.len()),
        });
    }
    if let (Some(from), Some(e)) = (
        results.or_else(|| spans.values().filter_map(|s| s.end).reduce(f64::max)),
        ended,
    ) {
        stages.push(Stage {
            name: "teardown".into(),
            start_s: rel(from),
            end_s: rel(e),
            detail: "every service stopped, containers removed".into(),
        });
    }
    stages.sort_by(|a, b| a.start_s.total_cmp(&b.start_s));
    let resumed = journal
        .iter()
        .filter(|r| matches!(r.event, Event::RunStarted { .. }))
        .count()
        > 1;
    Some(Breakdown {
        clock: if t0 < run_start { "submit" } else { "run" },
        first_request_s: first_request.map(rel),
        results_s: results.map(rel),
        ended_s: ended.map(rel),
        stages,
        critical_path: critical_path(plan, &spans, t0, results),
        resumed,
    })
}

fn span_stage(
    name: &str,
    rows: &[(&srt_graph_engine::Step, f64, f64)],
    t0: f64,
    detail: String,
) -> Option<Stage> {
    let a = rows.iter().map(|r| r.1).reduce(f64::min)?;
    let b = rows.iter().map(|r| r.2).reduce(f64::max)?;
    Some(Stage {
        name: format!("{name} ×{}", rows.len()),
        start_s: a - t0,
        end_s: b - t0,
        detail,
    })
}

/// Back from the step that ended at `target` (else the last to finish): each step's own time, then the
/// wait since the dependency that finished last, down to a step with none; the clock's zero closes it.
fn critical_path(
    plan: &Plan,
    spans: &BTreeMap<&str, Span>,
    t0: f64,
    target: Option<f64>,
) -> Vec<Segment> {
    let done = |id: &str| spans.get(id).and_then(|s| Some((s.start?, s.end?)));
    let by_id: BTreeMap<&str, &srt_graph_engine::Step> =
        plan.steps.iter().map(|s| (s.id.as_str(), s)).collect();
    let last = plan
        .steps
        .iter()
        .filter_map(|s| Some((s, done(&s.id)?)))
        .filter(|(_, (_, end))| target.is_none_or(|t| (*end - t).abs() < 1e-6))
        .max_by(|a, b| a.1 .1.total_cmp(&b.1 .1));
    let Some((mut step, (mut start, end))) = last else {
        return Vec::new();
    };
    let total = (end - t0).max(1e-9);
    let mut path = Vec::new();
    let push = |path: &mut Vec<Segment>,
                step: Option<&srt_graph_engine::Step>,
                secs: f64,
                what: String| {
        path.push(Segment {
            step: step.map(|s| s.id.clone()),
            kind: step.map(|s| s.kind.clone()),
            node: step.and_then(|s| plan.nodes.get(s.node).cloned()),
            secs: secs.max(0.0),
            share: secs.max(0.0) / total,
            what,
        });
    };
    let mut end_of = end;
    // A plan is acyclic, so the walk ends; the bound is for a journal that does not match its plan.
    for _ in 0..=plan.steps.len() {
        push(&mut path, Some(step), end_of - start, "its own time".into());
        let before = step
            .depends_on
            .iter()
            .filter_map(|d| Some((*by_id.get(d.as_str())?, done(d)?)))
            .max_by(|a, b| a.1 .1.total_cmp(&b.1 .1));
        match before {
            Some((dep, (dep_start, dep_end))) => {
                push(
                    &mut path,
                    None,
                    start - dep_end,
                    format!("{} started after {} was done", step.id, dep.id),
                );
                (step, start, end_of) = (dep, dep_start, dep_end);
            }
            None => {
                push(
                    &mut path,
                    None,
                    start - t0,
                    format!("before {} started", step.id),
                );
                break;
            }
        }
    }
    path.retain(|s| s.step.is_some() || s.secs >= 0.05);
    path.reverse();
    path
}

/// The breakdown as text (for `status`).
pub fn render(b: &Breakdown) -> String {
    let zero = if b.clock == "submit" {
        "submit"
    } else {
        "run start"
    };
    let mut out = String::new();
    let fmt = |v: Option<f64>| v.map_or("–".to_string(), |v| format!("{v:.1} s"));
    out.push_str(&format!(
        "where the time went ({zero} → first request {}, → results {}, → ended {}){}:\n",
        fmt(b.first_request_s),
        fmt(b.results_s),
        fmt(b.ended_s),
        if b.resumed { ", across resumes" } else { "" }
    ));
    for s in &b.stages {
        out.push_str(&format!(
            "  {:>7.1} s  {:<42} {:>6.1} → {:>6.1}  {}\n",
            s.secs(),
            s.name,
            s.start_s,
            s.end_s,
            s.detail
        ));
    }
    if !b.critical_path.is_empty() {
        let total: f64 = b.critical_path.iter().map(|s| s.secs).sum();
        out.push_str(&format!("critical path ({total:.1} s):\n"));
        for s in &b.critical_path {
            let who = match (&s.step, &s.node) {
                (Some(id), Some(n)) => format!("{id} on {n}"),
                (Some(id), None) => id.clone(),
                _ => format!("(waiting: {})", s.what),
            };
            out.push_str(&format!(
                "  {:>7.1} s {:>4.0} %  {who}\n",
                s.secs,
                s.share * 100.0
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use srt_graph_engine::journal::Event;

    fn plan() -> Plan {
        let mut v = serde_json::json!({
            "format": 1, "recipe": "r", "nodes": ["n0", "n1"], "addresses": ["n0", "n1"],
            "steps": [
                {"id": "venv/n0", "kind": "pip_install", "node": 0, "depends_on": [], "command": null, "env": {}, "ports": []},
                {"id": "decode-0", "kind": "start_worker", "node": 1, "role": "decode", "depends_on": ["venv/n0"], "command": null, "env": {}, "ports": []},
                {"id": "gate", "kind": "wait_healthy", "node": 0, "depends_on": ["decode-0"], "command": null, "env": {}, "ports": []},
                {"id": "bench/c4", "kind": "run_benchmark", "node": 0, "depends_on": ["gate"], "command": null, "env": {}, "ports": []}
            ]
        });
        for s in v["steps"].as_array_mut().expect("steps") {
            s["lifetime"] = "task".into();
            s["policy"] = serde_json::json!({"attempts": 1, "backoff_ms": 0, "backoff_max_ms": 0,
                "timeout_secs": null, "retry_on": []});
            s["summary"] = "".into();
            s["on_resume"] = "recheck".into();
        }
        serde_json::from_value(v).expect("plan")
    }

    fn rec(t: f64, event: Event) -> Record {
        Record { t, event }
    }

    #[test]
    fn stages_and_the_critical_path_add_up_from_submit() {
        let started = |s: &str, t| {
            rec(
                t,
                Event::StepStarted {
                    step: s.into(),
                    attempt: 1,
                    node: 0,
                },
            )
        };
        let finished = |s: &str, t| {
            rec(
                t,
                Event::StepFinished {
                    step: s.into(),
                    attempt: 1,
                    secs: 0.0,
                },
            )
        };
        let journal = vec![
            rec(
                110.0,
                Event::RunStarted {
                    recipe: "r".into(),
                    orchestrator_pid: 1,
                    host: "h".into(),
                    transport: "slurm".into(),
                    continues: None,
                },
            ),
            started("venv/n0", 111.0),
            finished("venv/n0", 121.0),
            started("decode-0", 121.5),
            finished("decode-0", 122.0),
            started("gate", 122.0),
            finished("gate", 150.0),
            started("bench/c4", 150.5),
            finished("bench/c4", 170.0),
            rec(
                175.0,
                Event::RunFinished {
                    status: srt_graph_engine::journal::RunStatus::Succeeded,
                    reason: None,
                },
            ),
        ];
        let ready = BTreeMap::from([("decode-0".to_string(), 148.0)]);
        let b = compute(&plan(), &journal, Some(100.0), &ready).expect("breakdown");
        assert_eq!(b.clock, "submit");
        assert_eq!(
            (b.first_request_s, b.results_s, b.ended_s),
            (Some(50.5), Some(70.0), Some(75.0))
        );
        let stage = |name: &str| {
            b.stages
                .iter()
                .find(|s| s.name.starts_with(name))
                .expect(name)
        };
        assert_eq!(stage("Slurm queue").secs(), 10.0);
        assert_eq!(
            stage("workers start → healthy").secs(),
            26.5,
            "to the ready line"
        );
        assert!(stage("health gate").detail.contains("passed 28.0 s after"));
        assert_eq!(stage("teardown").secs(), 5.0);
        let steps: Vec<&str> = b
            .critical_path
            .iter()
            .filter_map(|s| s.step.as_deref())
            .collect();
        assert_eq!(steps, ["venv/n0", "decode-0", "gate", "bench/c4"]);
        let total: f64 = b.critical_path.iter().map(|s| s.secs).sum();
        assert!(
            (total - 70.0).abs() < 1e-9,
            "{total}: the path spans submit → results"
        );
        let shares: f64 = b.critical_path.iter().map(|s| s.share).sum();
        assert!((shares - 1.0).abs() < 1e-9);
        assert!(render(&b).contains("critical path (70.0 s)"));
    }

    #[test]
    fn a_ready_line_is_dated_by_its_stamp() {
        assert_eq!(
            time_of_day("[01:02:03.500] The server is fired up"),
            Some(3723.5)
        );
        assert_eq!(time_of_day("no stamp"), None);
    }
}
