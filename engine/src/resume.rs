//! Resume: a pure function from (the previous plan, the new plan, the journal, what probes see now) to what
//! stays done, which running services are adopted, and what runs again — each with its reason.
//! Promise: never skip a step whose effect is gone; never re-run one whose effect still stands.

use crate::journal::{Event, Record};
use crate::plan::{Dag, Lifetime, OnResume, Plan, Step};
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// Per step: sha256 over its kind, node, argv, env, cwd, files and its dependencies' fingerprints.
/// Secret values count through the step's digest of them: a stored plan (redacted) and a compiled one
/// (real values) of the same recipe fingerprint alike.
pub fn fingerprints(plan: &Plan) -> HashMap<String, String> {
    let redacted;
    let plan = if plan.secret_env.is_empty() {
        plan
    } else {
        redacted = plan.redacted();
        &redacted
    };
    let index: HashMap<&str, usize> = plan
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id.as_str(), i))
        .collect();
    let mut memo: Vec<Option<String>> = vec![None; plan.steps.len()];
    fn fp(
        i: usize,
        plan: &Plan,
        index: &HashMap<&str, usize>,
        memo: &mut Vec<Option<String>>,
        depth: usize,
    ) -> String {
        if let Some(f) = &memo[i] {
            return f.clone();
        }
        let s = &plan.steps[i];
        let mut h = Sha256::new();
        let mut own = serde_json::json!({
            "kind": s.kind, "node": s.node, "command": s.command, "env": s.env, "cwd": s.cwd,
            "files": s.files, "lifetime": s.lifetime, "container": s.container,
        });
        // Only when set: plans recorded before MPI launches keep their fingerprints.
        if let Some(m) = &s.mpi {
            own["mpi"] = serde_json::json!(m);
        }
        if let Some(d) = &s.secret_digest {
            own["secret"] = serde_json::json!(d);
        }
        h.update(own.to_string().as_bytes());
        if depth < 10_000 {
            for d in &s.depends_on {
                if let Some(&j) = index.get(d.as_str()) {
                    h.update(fp(j, plan, index, memo, depth + 1).as_bytes());
                }
            }
        }
        let out: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
        memo[i] = Some(out.clone());
        out
    }
    (0..plan.steps.len())
        .map(|i| (plan.steps[i].id.clone(), fp(i, plan, &index, &mut memo, 0)))
        .collect()
}

/// What the journal says about one step's latest attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    NeverStarted,
    Finished,
    Failed(String),
    /// Started but neither finished nor failed (the orchestrator died under it).
    Unfinished,
    /// A service that was up when the journal ends (it may have died since).
    Up {
        pgid: i32,
    },
    /// A service that exited or was stopped.
    Down(String),
}

/// The latest state of each step according to the journal.
pub fn replay(records: &[Record]) -> HashMap<String, Recorded> {
    let mut state: HashMap<String, Recorded> = HashMap::new();
    let mut service_pgid: HashMap<String, i32> = HashMap::new();
    for r in records {
        match &r.event {
            Event::StepStarted { step, .. } => {
                state.insert(step.clone(), Recorded::Unfinished);
            }
            Event::Spawned {
                step,
                pgid,
                service,
                ..
            } => {
                if *service {
                    service_pgid.insert(step.clone(), *pgid);
                    // A service is up once spawned; its `step_finished` follows in the same instant, but
                    // an orchestrator killed between the two writes leaves only this record.
                    state.insert(step.clone(), Recorded::Up { pgid: *pgid });
                }
            }
            Event::StepFinished { step, .. } => {
                let s = match service_pgid.get(step) {
                    Some(&pgid) => Recorded::Up { pgid },
                    None => Recorded::Finished,
                };
                state.insert(step.clone(), s);
            }
            Event::StepFailed {
                step,
                reason,
                will_retry,
                ..
            } => {
                if !will_retry {
                    state.insert(step.clone(), Recorded::Failed(reason.clone()));
                }
            }
            Event::ServiceExited { step, reason } => {
                state.insert(step.clone(), Recorded::Down(format!("exited: {reason}")));
            }
            Event::ServiceStopped { step } => {
                state.insert(step.clone(), Recorded::Down("stopped at teardown".into()));
            }
            // A service on a lost node is not up, whatever its last record says.
            Event::NodeLost {
                node,
                reason,
                steps,
            } => {
                for step in steps {
                    if let Some(s @ Recorded::Up { .. }) = state.get_mut(step) {
                        *s = Recorded::Down(format!("its node {node} was lost ({reason})"));
                    }
                }
            }
            Event::RunStarted { .. } | Event::RunFinished { .. } => {}
        }
    }
    state
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decision {
    /// Tasks whose result stands.
    pub keep: Vec<String>,
    /// Services still up and healthy: `(step, pgid)`.
    pub adopt: Vec<(String, i32)>,
    /// Steps to run (again), with the reason.
    pub run: Vec<(String, String)>,
}

pub struct Inputs<'a> {
    pub old_plan: &'a Plan,
    pub new: &'a Dag,
    pub journal: &'a [Record],
    /// Is this service (with this process group) alive and healthy right now?
    pub service_alive: &'a dyn Fn(&Step, i32) -> bool,
    /// Does this finished task's output still stand (e.g. its benchmark result file is complete)?
    pub output_ok: &'a dyn Fn(&Step) -> bool,
    /// `--from STEP`: this step and everything downstream run again.
    pub from: Option<&'a str>,
    /// `--only STEP`: only this step runs; everything else is taken as it stands.
    pub only: Option<&'a str>,
}

/// The rules, in order:
/// 1. A task runs again if it never ran, did not finish, failed, changed (fingerprints include their
///    dependencies', so a change runs its whole subtree), or its output is gone (an incomplete result).
/// 2. A step is *needed* if it runs or something downstream of it runs.
/// 3. A needed service that is not alive and healthy (or changed) restarts; a needed service downstream of
///    a restarting one restarts too (a router that talked to a dead worker); a needed readiness gate
///    (`OnResume::Regate`) downstream of a restart checks again. Other finished tasks stand: a benchmark
///    point's result does not depend on the processes being the same ones.
/// 4. Needed node-local steps (`OnResume::Recheck`: mounts, installs) run again: their effect is re-checked on the node.
/// 5. Live, healthy services that are not restarted are adopted; everything else is kept.
pub fn decide(inp: &Inputs<'_>) -> Decision {
    let old_fp = fingerprints(inp.old_plan);
    let new_fp = fingerprints(&inp.new.plan);
    let recorded = replay(inp.journal);
    let dag = inp.new;
    let n = dag.plan.steps.len();
    let mut reason: Vec<Option<String>> = vec![None; n];
    let mut alive: Vec<Option<i32>> = vec![None; n];

    // Rule 1 (and the services' own state).
    for i in 0..n {
        let s = dag.step(i);
        let state = recorded
            .get(&s.id)
            .cloned()
            .unwrap_or(Recorded::NeverStarted);
        let changed = old_fp.get(&s.id) != new_fp.get(&s.id);
        if let Recorded::Up { pgid } = state {
            if !changed && (inp.service_alive)(s, pgid) {
                alive[i] = Some(pgid);
            }
        }
        if inp.only.is_some() {
            if inp.only == Some(s.id.as_str()) {
                reason[i] = Some("selected with --only".into());
            }
            continue;
        }
        if s.lifetime == Lifetime::Service {
            continue;
        }
        reason[i] = if changed && old_fp.contains_key(&s.id) {
            Some("its command, environment, inputs or dependencies changed".into())
        } else if changed {
            Some("new in this plan".into())
        } else {
            match state {
                Recorded::NeverStarted => Some("never ran".into()),
                Recorded::Unfinished => Some("was running when the orchestrator stopped".into()),
                Recorded::Failed(r) => Some(format!("failed: {r}")),
                Recorded::Finished if !(inp.output_ok)(s) => {
                    Some("its output is missing or incomplete".into())
                }
                _ => None,
            }
        };
    }
    if let Some(from) = inp.from.and_then(|f| dag.index.get(f).copied()) {
        for j in std::iter::once(from).chain(dag.downstream(from)) {
            reason[j].get_or_insert_with(|| format!("selected with --from {}", dag.step(from).id));
        }
    }
    if inp.only.is_none() {
        // Rules 2–4 until nothing changes.
        loop {
            let mut needed = vec![false; n];
            for &i in dag.order.iter().rev() {
                needed[i] = reason[i].is_some() || dag.dependents(i).any(|d| needed[d]);
            }
            let mut grew = false;
            for &i in &dag.order {
                if reason[i].is_some() || !needed[i] {
                    continue;
                }
                let s = dag.step(i);
                let restarted_dep = dag
                    .dependencies_sorted(i)
                    .into_iter()
                    .find(|&d| reason[d].is_some() && dag.step(d).lifetime == Lifetime::Service)
                    .map(|d| dag.step(d).id.clone());
                let r = if s.lifetime == Lifetime::Service {
                    match (alive[i], restarted_dep) {
                        (None, _) => Some(match recorded.get(&s.id) {
                            Some(Recorded::Up { .. }) => {
                                "service is no longer alive and healthy".to_string()
                            }
                            Some(Recorded::Down(r)) => format!("service is down ({r})"),
                            _ if old_fp.get(&s.id) != new_fp.get(&s.id) => "service changed".into(),
                            _ => "service never started".into(),
                        }),
                        (Some(_), Some(up)) => Some(format!("depends on `{up}`, which runs again")),
                        (Some(_), None) => None,
                    }
                } else {
                    match s.on_resume {
                        OnResume::Recheck => {
                            Some("node-local effect: re-checked on its node".into())
                        }
                        OnResume::Regate => {
                            restarted_dep.map(|up| format!("depends on `{up}`, which runs again"))
                        }
                        OnResume::Stand => None,
                    }
                };
                if r.is_some() {
                    reason[i] = r;
                    grew = true;
                }
            }
            if !grew {
                break;
            }
        }
    }
    let mut out = Decision::default();
    for &i in &dag.order {
        let id = dag.step(i).id.clone();
        match (&reason[i], alive[i]) {
            (Some(r), _) => out.run.push((id, r.clone())),
            (None, Some(pgid)) => out.adopt.push((id, pgid)),
            (None, None) => out.keep.push(id),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::PLAN_FORMAT;

    fn step(id: &str, kind: &str, deps: &[&str], service: bool) -> Step {
        let mut s = Step::new(
            id,
            kind,
            0,
            if service {
                Lifetime::Service
            } else {
                Lifetime::Task
            },
        );
        s.depends_on = deps.iter().map(|d| d.to_string()).collect();
        s.command = Some(vec!["run".into(), id.into()]);
        // What the recipe side's kinds set (the engine itself knows no kind).
        s.on_resume = match kind {
            "pip_install" => OnResume::Recheck,
            "wait_healthy" => OnResume::Regate,
            _ => OnResume::Stand,
        };
        s
    }

    fn plan(steps: Vec<Step>) -> Plan {
        Plan {
            format: PLAN_FORMAT,
            recipe: "t".into(),
            nodes: vec!["node0".into()],
            addresses: vec!["a".into()],
            steps,
            endpoint: None,
            ignored: vec![],
            notes: vec![],
            secret_env: vec![],
        }
    }

    fn rec(event: Event) -> Record {
        Record { t: 0.0, event }
    }

    fn finished(step: &str) -> Vec<Record> {
        vec![
            rec(Event::StepStarted {
                step: step.into(),
                attempt: 1,
                node: 0,
            }),
            rec(Event::StepFinished {
                step: step.into(),
                attempt: 1,
                secs: 1.0,
            }),
        ]
    }

    fn up(step: &str, pgid: i32) -> Vec<Record> {
        vec![
            rec(Event::StepStarted {
                step: step.into(),
                attempt: 1,
                node: 0,
            }),
            rec(Event::Spawned {
                step: step.into(),
                node: 0,
                pid: pgid,
                pgid,
                service: true,
            }),
            rec(Event::StepFinished {
                step: step.into(),
                attempt: 1,
                secs: 0.1,
            }),
        ]
    }

    fn graph() -> Plan {
        plan(vec![
            step("pip", "pip_install", &[], false),
            step("worker", "start_worker", &["pip"], true),
            step("router", "start_router", &["worker"], true),
            step("gate", "wait_healthy", &["router"], false),
            step("bench/c1", "run_benchmark", &["gate"], false),
            step("bench/c2", "run_benchmark", &["bench/c1"], false),
        ])
    }

    fn journal() -> Vec<Record> {
        [
            finished("pip"),
            up("worker", 100),
            up("router", 200),
            finished("gate"),
            finished("bench/c1"),
        ]
        .concat()
    }

    /// `decide` on the standard graph and journal, with the given probes.
    fn decide_std(alive: &dyn Fn(&Step, i32) -> bool, ok: &dyn Fn(&Step) -> bool) -> Decision {
        let p = graph();
        let dag = Dag::new(p.clone()).unwrap();
        let j = journal();
        decide(&Inputs {
            old_plan: &p,
            new: &dag,
            journal: &j,
            service_alive: alive,
            output_ok: ok,
            from: None,
            only: None,
        })
    }

    fn ids(v: &[(String, String)]) -> Vec<&str> {
        v.iter().map(|(s, _)| s.as_str()).collect()
    }

    #[test]
    fn live_services_are_adopted_and_only_the_rest_runs() {
        let d = decide_std(&|_, _| true, &|_| true);
        assert_eq!(
            d.adopt,
            vec![("worker".to_string(), 100), ("router".to_string(), 200)]
        );
        assert_eq!(ids(&d.run), ["pip", "bench/c2"]);
        assert_eq!(d.keep, ["gate", "bench/c1"]);
    }

    #[test]
    fn a_dead_worker_restarts_what_needs_it_and_finished_points_stand() {
        let d = decide_std(&|s, _| s.id != "worker", &|_| true);
        assert!(d.adopt.is_empty(), "{:?}", d.adopt);
        // The finished benchmark point stands; the gate checks the new processes before the next point.
        assert_eq!(ids(&d.run), ["pip", "worker", "router", "gate", "bench/c2"]);
        assert_eq!(d.keep, ["bench/c1"]);
    }

    #[test]
    fn a_changed_step_and_its_dependents_rerun_and_incomplete_results_rerun() {
        let old = graph();
        let mut new = graph();
        new.steps[4].command = Some(vec![
            "run".into(),
            "bench/c1".into(),
            "--isl".into(),
            "2".into(),
        ]);
        let dag = Dag::new(new).unwrap();
        let j = journal();
        let d = decide(&Inputs {
            old_plan: &old,
            new: &dag,
            journal: &j,
            service_alive: &|_, _| true,
            output_ok: &|_| true,
            from: None,
            only: None,
        });
        assert_eq!(ids(&d.run), ["pip", "bench/c1", "bench/c2"]);
        assert!(d.run[1].1.contains("changed"));

        let d = decide_std(&|_, _| true, &|s| s.id != "bench/c1");
        assert_eq!(ids(&d.run), ["pip", "bench/c1", "bench/c2"]);
    }

    #[test]
    fn a_service_spawned_but_not_yet_marked_finished_counts_as_up() {
        let records = vec![
            rec(Event::StepStarted {
                step: "worker".into(),
                attempt: 1,
                node: 0,
            }),
            rec(Event::Spawned {
                step: "worker".into(),
                node: 0,
                pid: 40,
                pgid: 40,
                service: true,
            }),
        ];
        assert_eq!(
            replay(&records).get("worker"),
            Some(&Recorded::Up { pgid: 40 })
        );
    }

    #[test]
    fn from_and_only() {
        let p = graph();
        let dag = Dag::new(p.clone()).unwrap();
        let j = journal();
        let base = |from, only| {
            decide(&Inputs {
                old_plan: &p,
                new: &dag,
                journal: &j,
                service_alive: &|_, _| true,
                output_ok: &|_| true,
                from,
                only,
            })
        };
        assert_eq!(
            ids(&base(Some("gate"), None).run),
            ["pip", "gate", "bench/c1", "bench/c2"]
        );
        assert_eq!(ids(&base(None, Some("bench/c1")).run), ["bench/c1"]);
    }

    #[test]
    fn unfinished_and_failed_steps_rerun() {
        let p = graph();
        let dag = Dag::new(p.clone()).unwrap();
        let mut j = journal();
        j.push(rec(Event::StepStarted {
            step: "bench/c2".into(),
            attempt: 1,
            node: 0,
        }));
        let d = decide(&Inputs {
            old_plan: &p,
            new: &dag,
            journal: &j,
            service_alive: &|_, _| true,
            output_ok: &|_| true,
            from: None,
            only: None,
        });
        assert!(d
            .run
            .iter()
            .any(|(s, r)| s == "bench/c2" && r.contains("was running")));
    }

    #[test]
    fn a_finished_run_interrupted_in_teardown_restarts_nothing() {
        let plan = plan(vec![
            step("worker", "start_worker", &[], true),
            step("router", "start_router", &["worker"], true),
            step("gate", "wait_healthy", &["router"], false),
            step("bench", "run_benchmark", &["gate"], false),
        ]);
        let j = [
            up("worker", 5),
            up("router", 6),
            finished("gate"),
            finished("bench"),
            vec![rec(Event::ServiceStopped {
                step: "router".into(),
            })],
        ]
        .concat();
        let dag = Dag::new(plan.clone()).unwrap();
        let d = decide(&Inputs {
            old_plan: &plan,
            new: &dag,
            journal: &j,
            service_alive: &|_, _| true,
            output_ok: &|_| true,
            from: None,
            only: None,
        });
        assert!(d.run.is_empty(), "{:?}", d.run);
        assert_eq!(d.adopt, vec![("worker".to_string(), 5)]);
        assert_eq!(d.keep, ["router", "gate", "bench"]);
    }
}
