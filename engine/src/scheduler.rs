//! The executor's event loop. It alone owns run state; attempt tasks only report messages. A step starts
//! the moment its last dependency is done; tasks count against `--jobs` and the per-node cap, services do
//! not (a cap that counted long-lived services would deadlock a graph with more services than slots).

use crate::journal::{Event, Journal, RunStatus};
use crate::plan::{Dag, Lifetime, Step};
use crate::policy::RetryOn;
use crate::progress::Observer;
use crate::rundir::{log_path, log_tail};
use crate::trace::Span;
use crate::transport::{Exit, SpawnRequest, Transport};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
// tokio's clock: the same as the system's in a run, and pausable in the scheduler's tests.
use tokio::sync::mpsc;
use tokio::time::Instant;

const SIGTERM: i32 = 15;
const SIGKILL: i32 = 9;
/// A task past its timeout gets this long between SIGTERM and SIGKILL.
const TIMEOUT_GRACE: Duration = Duration::from_secs(2);

#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Most tasks running at once (services excluded).
    pub jobs: usize,
    /// Most tasks running at once on one node.
    pub per_node: usize,
    /// On a failure, still run every branch that does not depend on it.
    pub keep_going: bool,
    /// Leave services up after success.
    pub keep_up: bool,
    /// SIGTERM → SIGKILL grace at teardown.
    pub grace: Duration,
    pub run_dir: PathBuf,
    /// Steps already done (e.g. by an earlier run being resumed); they are not run again.
    pub already_done: Vec<String>,
    /// Services of an earlier run that are still up and healthy: `(step, pgid)`. They are not restarted;
    /// they are watched (their death fails the run) and torn down like the run's own.
    pub adopted: Vec<(String, i32)>,
}

/// How often an adopted service (not our child: no exit to await) is checked for life.
const ADOPTED_POLL: Duration = Duration::from_millis(500);

/// Interrupt requests from the user (Ctrl-C / SIGTERM): the first stops gracefully, the second skips
/// the grace period.
pub type Interrupts = mpsc::UnboundedReceiver<()>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepResult {
    NotRun,
    /// Done by an earlier run and still standing (resume).
    Kept,
    /// A service of an earlier run, still up, taken over (resume).
    Adopted,
    Done,
    /// A service that was up until teardown (or is still up with `--keep-up`).
    Up,
    Failed,
    Skipped,
    Cancelled,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct StepReport {
    pub id: String,
    pub kind: String,
    pub node: String,
    pub attempts: u32,
    pub secs: f64,
    pub result: StepResult,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ServiceHandle {
    pub step: String,
    pub node: usize,
    pub pgid: i32,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct RunReport {
    pub status: RunStatus,
    pub steps: Vec<StepReport>,
    /// One message per failure, each naming the step and ending with its log tail.
    pub failures: Vec<String>,
    pub makespan_secs: f64,
    pub critical_path: Vec<String>,
    /// Services left running (`--keep-up`).
    pub left_up: Vec<ServiceHandle>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    Pending,
    /// Waiting out a retry backoff.
    Backoff,
    Running,
    Done,
    Failed,
    Skipped,
    Cancelled,
}

enum Msg {
    Spawned {
        i: usize,
        attempt: u32,
        pid: i32,
        pgid: i32,
        last: Arc<std::sync::Mutex<String>>,
    },
    SpawnFailed {
        i: usize,
        attempt: u32,
        error: String,
        /// Whether a retry may cure it (a refused connection may; a host key mismatch may not).
        transient: bool,
    },
    Exited {
        i: usize,
        attempt: u32,
        exit: Result<Exit, String>,
        timed_out: bool,
    },
    RetryDue {
        i: usize,
    },
}

struct StepRun {
    state: State,
    attempts: u32,
    pgid: Option<i32>,
    /// Process group of the last attempt, kept after its leader exits (forked children may live on).
    last_pgid: Option<i32>,
    started: Option<Instant>,
    /// First start and final end, for the report and the critical path.
    first_start: Option<Instant>,
    end: Option<Instant>,
    stopping: bool,
    /// Taken as done from an earlier run, or adopted from it (resume).
    inherited: bool,
}

struct Executor<'a> {
    dag: &'a Dag,
    transport: Arc<dyn Transport>,
    opts: &'a RunOptions,
    journal: &'a mut Journal,
    observer: &'a mut dyn Observer,
    tx: mpsc::UnboundedSender<Msg>,
    runs: Vec<StepRun>,
    remaining_deps: Vec<usize>,
    spans: Vec<Span>,
    t0: Instant,
    running_tasks: usize,
    running_on: BTreeMap<usize, usize>,
    failures: Vec<String>,
    stopping: bool,
    status: RunStatus,
    hard: bool,
    /// The plan's secret values: kept out of logs, the journal, progress and the report.
    redact: crate::secret::Redactor,
    /// Nodes whose loss was handled.
    lost: std::collections::BTreeSet<usize>,
}

/// Runs the plan to completion (or failure / interrupt), then tears down.
pub async fn execute(
    dag: &Dag,
    transport: Arc<dyn Transport>,
    opts: &RunOptions,
    journal: &mut Journal,
    observer: &mut dyn Observer,
    mut interrupts: Interrupts,
) -> RunReport {
    let (tx, mut rx) = mpsc::unbounded_channel();
    transport.will_run(&dag.plan);
    let n = dag.plan.steps.len();
    let mut ex = Executor {
        dag,
        transport,
        opts,
        journal,
        observer,
        tx,
        runs: (0..n)
            .map(|_| StepRun {
                state: State::Pending,
                attempts: 0,
                pgid: None,
                last_pgid: None,
                started: None,
                first_start: None,
                end: None,
                stopping: false,
                inherited: false,
            })
            .collect(),
        remaining_deps: (0..n).map(|i| dag.dependencies(i).count()).collect(),
        spans: Vec::new(),
        t0: Instant::now(),
        running_tasks: 0,
        running_on: BTreeMap::new(),
        failures: Vec::new(),
        stopping: false,
        status: RunStatus::Succeeded,
        hard: false,
        redact: dag.plan.redactor(),
        lost: std::collections::BTreeSet::new(),
    };
    // Kept steps are done without running, but only once their own dependencies are: a kept benchmark
    // point between a restarted service and the next point must not let that point start early.
    for id in &opts.already_done {
        if let Some(&i) = dag.index.get(id) {
            ex.runs[i].inherited = true;
        }
    }
    for (id, pgid) in &opts.adopted {
        if let Some(&i) = dag.index.get(id) {
            ex.adopt(i, *pgid);
        }
    }
    let mut ticker = tokio::time::interval(Duration::from_millis(200));
    loop {
        if !ex.stopping {
            ex.start_ready();
        }
        if ex.quiescent() {
            break;
        }
        tokio::select! {
            Some(msg) = rx.recv() => ex.handle(msg),
            Some(()) = interrupts.recv() => ex.interrupt(),
            _ = ticker.tick() => {
                ex.check_nodes();
                ex.observer.tick();
            }
        }
    }
    let success = ex.status == RunStatus::Succeeded;
    let left_up = if success && opts.keep_up {
        ex.up_services()
    } else {
        ex.teardown(&mut rx, &mut interrupts).await;
        Vec::new()
    };
    ex.finish(left_up)
}

impl Executor<'_> {
    fn step(&self, i: usize) -> &Step {
        self.dag.step(i)
    }

    fn us(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.t0).as_micros() as u64
    }

    fn record(&mut self, e: Event) {
        if let Err(err) = self.journal.append(e) {
            // A journal we cannot write is a run we cannot resume: stop cleanly.
            if !self.stopping {
                self.failures.push(format!(
                    "cannot write the journal {}: {err}",
                    self.journal.path().display()
                ));
                self.status = RunStatus::Failed;
                self.stopping = true;
            }
        }
    }

    /// Nothing running, nothing waiting on a backoff, and nothing more can start.
    fn quiescent(&self) -> bool {
        // A service is busy until its spawn is reported: teardown must know its process group.
        let busy = self.runs.iter().enumerate().any(|(i, r)| {
            matches!(r.state, State::Backoff)
                || (r.state == State::Running
                    && (self.dag.step(i).lifetime == Lifetime::Task || r.pgid.is_none()))
        });
        if busy {
            return false;
        }
        if self.stopping {
            return true;
        }
        // Ready steps would have been started; anything still pending is blocked for good.
        !self
            .runs
            .iter()
            .enumerate()
            .any(|(i, r)| r.state == State::Pending && self.remaining_deps[i] == 0)
    }

    fn start_ready(&mut self) {
        for k in 0..self.dag.order.len() {
            let i = self.dag.order[k];
            if self.runs[i].state != State::Pending || self.remaining_deps[i] != 0 {
                continue;
            }
            if self.runs[i].inherited {
                self.complete(i);
                continue;
            }
            let step = self.step(i);
            let is_task = step.lifetime == Lifetime::Task;
            if is_task {
                let on_node = self.running_on.get(&step.node).copied().unwrap_or(0);
                if self.running_tasks >= self.opts.jobs || on_node >= self.opts.per_node {
                    continue;
                }
            }
            self.launch(i);
        }
    }

    fn launch(&mut self, i: usize) {
        let step = self.step(i).clone();
        let run = &mut self.runs[i];
        run.attempts += 1;
        run.state = State::Running;
        run.started = Some(Instant::now());
        run.first_start.get_or_insert(Instant::now());
        run.pgid = None;
        let attempt = run.attempts;
        if step.lifetime == Lifetime::Task {
            self.running_tasks += 1;
            *self.running_on.entry(step.node).or_insert(0) += 1;
        }
        self.record(Event::StepStarted {
            step: step.id.clone(),
            attempt,
            node: step.node,
        });
        if let Err(e) = write_files(&self.opts.run_dir, &step) {
            let _ = self.tx.send(Msg::SpawnFailed {
                i,
                attempt,
                error: format!("cannot write {}: {e}", step.id),
                transient: true,
            });
            return;
        }
        tracing::debug!(step = %step.id, attempt, node = step.node, "launch");
        let Some(argv) = step.command.clone() else {
            // A grouping step: done as soon as its dependencies are.
            let _ = self.tx.send(Msg::Exited {
                i,
                attempt,
                exit: Ok(Exit::Code(0)),
                timed_out: false,
            });
            return;
        };
        // Tag every process with its run and step: a process spawned just before the orchestrator died,
        // whose process group never reached the journal, can still be found and stopped (resume, down).
        let mut env = step.env.clone();
        env.insert(
            crate::process::RUN_TAG.into(),
            self.opts.run_dir.display().to_string(),
        );
        env.insert(crate::process::STEP_TAG.into(), step.id.clone());
        let req = SpawnRequest {
            step: step.id.clone(),
            node: step.node,
            argv,
            env,
            cwd: step.cwd.clone(),
            log: log_path(&self.opts.run_dir, &step.id),
            container: step.container.clone(),
            mpi: step.mpi.clone(),
            redact: self.redact.clone(),
        };
        let timeout = if step.lifetime == Lifetime::Task {
            step.policy.timeout()
        } else {
            None
        };
        let transport = self.transport.clone();
        let tx = self.tx.clone();
        // Asked for only when shown: a transport may follow the log to keep it (batch runs never do).
        let follow_last_line = self.observer.shows_last_lines();
        tokio::spawn(async move {
            if let Some(parent) = req.log.parent() {
                let _ = tokio::fs::create_dir_all(parent).await;
            }
            let mut proc = match transport.spawn(&req).await {
                Ok(p) => p,
                Err(e) => {
                    let _ = tx.send(Msg::SpawnFailed {
                        i,
                        attempt,
                        transient: e.is_transient(),
                        error: e.to_string(),
                    });
                    return;
                }
            };
            let pgid = proc.pgid();
            let _ = tx.send(Msg::Spawned {
                i,
                attempt,
                pid: proc.pid(),
                pgid,
                last: if follow_last_line {
                    proc.last_line()
                } else {
                    Arc::default()
                },
            });
            let (exit, timed_out) = match timeout {
                None => (proc.wait().await, false),
                Some(limit) => match tokio::time::timeout(limit, proc.wait()).await {
                    Ok(r) => (r, false),
                    Err(_) => {
                        let _ = transport.signal_group(req.node, pgid, SIGTERM);
                        let r = match tokio::time::timeout(TIMEOUT_GRACE, proc.wait()).await {
                            Ok(r) => r,
                            Err(_) => {
                                let _ = transport.signal_group(req.node, pgid, SIGKILL);
                                proc.wait().await
                            }
                        };
                        (r, true)
                    }
                },
            };
            let _ = tx.send(Msg::Exited {
                i,
                attempt,
                exit: exit.map_err(|e| e.to_string()),
                timed_out,
            });
        });
    }

    fn handle(&mut self, msg: Msg) {
        match msg {
            Msg::Spawned {
                i,
                attempt,
                pid,
                pgid,
                last,
            } => self.on_spawned(i, attempt, pid, pgid, last),
            Msg::SpawnFailed {
                i,
                attempt,
                error,
                transient,
            } => self.on_spawn_failed(i, attempt, error, transient),
            Msg::Exited {
                i,
                attempt,
                exit,
                timed_out,
            } => self.on_exited(i, attempt, exit, timed_out),
            Msg::RetryDue { i } => self.on_retry_due(i),
        }
    }

    /// A process started: a service is done from here on (readiness is a step of its own).
    fn on_spawned(
        &mut self,
        i: usize,
        attempt: u32,
        pid: i32,
        pgid: i32,
        last: Arc<std::sync::Mutex<String>>,
    ) {
        if self.runs[i].attempts != attempt {
            return;
        }
        self.runs[i].pgid = Some(pgid);
        self.runs[i].last_pgid = Some(pgid);
        let step = self.step(i).clone();
        self.observer.started(&step, attempt, last);
        self.record(Event::Spawned {
            step: step.id.clone(),
            node: step.node,
            pid,
            pgid,
            service: step.is_service(),
        });
        if step.lifetime == Lifetime::Service {
            // A service is done once started; readiness is a separate step.
            let elapsed = self.runs[i]
                .started
                .map_or(0.0, |s| s.elapsed().as_secs_f64());
            self.record(Event::StepFinished {
                step: step.id.clone(),
                attempt,
                secs: elapsed,
            });
            self.observer
                .finished(&step, attempt, Duration::from_secs_f64(elapsed));
            // Started while stopping? It goes down with the rest at teardown.
            self.complete(i);
            self.runs[i].state = State::Running; // stays up; `complete` released its dependents
            self.runs[i].end = None;
        }
    }

    fn on_spawn_failed(&mut self, i: usize, attempt: u32, error: String, transient: bool) {
        if self.runs[i].attempts == attempt {
            self.release(i);
            self.attempt_failed(
                i,
                attempt,
                format!("could not start: {error}"),
                transient.then_some(RetryOn::Spawn),
            );
        }
    }

    /// A process ended: a task succeeded, failed, timed out or was cancelled; a service died.
    fn on_exited(&mut self, i: usize, attempt: u32, exit: Result<Exit, String>, timed_out: bool) {
        if self.runs[i].attempts != attempt {
            return;
        }
        let step = self.step(i).clone();
        let end = Instant::now();
        let start = self.runs[i].started.unwrap_or(end);
        self.spans.push(Span {
            step: step.id.clone(),
            kind: step.kind.clone(),
            node: step.node,
            attempt,
            start_us: self.us(start),
            end_us: self.us(end),
            outcome: match &exit {
                Ok(e) if timed_out => format!("timed out ({e})"),
                Ok(e) => e.to_string(),
                Err(e) => e.clone(),
            },
        });
        if step.lifetime == Lifetime::Service {
            self.service_exited(i, exit);
            return;
        }
        self.release(i);
        match exit {
            Ok(e) if e.success() && !timed_out => {
                let secs = end.duration_since(start).as_secs_f64();
                self.record(Event::StepFinished {
                    step: step.id.clone(),
                    attempt,
                    secs,
                });
                self.observer
                    .finished(&step, attempt, end.duration_since(start));
                self.complete(i);
            }
            _ if self.runs[i].stopping => {
                self.runs[i].state = State::Cancelled;
                self.runs[i].end = Some(end);
                self.record(Event::StepFailed {
                    step: step.id.clone(),
                    attempt,
                    reason: "cancelled".into(),
                    will_retry: false,
                });
            }
            Ok(e) if timed_out => {
                let limit = step
                    .policy
                    .timeout_secs
                    .map_or(String::new(), crate::policy::fmt_secs);
                self.attempt_failed(
                    i,
                    attempt,
                    format!("timed out after {limit} ({e})"),
                    Some(RetryOn::Timeout),
                );
            }
            Ok(e) => self.attempt_failed(i, attempt, e.to_string(), Some(RetryOn::Exit)),
            Err(e) => self.attempt_failed(
                i,
                attempt,
                format!("lost track of the process: {e}"),
                Some(RetryOn::Spawn),
            ),
        }
    }

    /// A backoff is over: the step waits for a slot again (or is cancelled when the run is stopping).
    fn on_retry_due(&mut self, i: usize) {
        if self.runs[i].state == State::Backoff {
            if self.stopping {
                self.runs[i].state = State::Cancelled;
            } else {
                // Re-enter through the normal gate so caps still hold; the attempt count stays.
                self.runs[i].state = State::Pending;
            }
        }
    }

    /// Takes over a live service of an earlier run: done, up, and watched by polling its process group.
    fn adopt(&mut self, i: usize, pgid: i32) {
        let step = self.step(i).clone();
        self.complete(i);
        let run = &mut self.runs[i];
        run.state = State::Running;
        run.inherited = true;
        run.end = None;
        run.pgid = Some(pgid);
        run.last_pgid = Some(pgid);
        run.started = Some(Instant::now());
        run.first_start = Some(Instant::now());
        let attempt = run.attempts;
        self.record(Event::Spawned {
            step: step.id.clone(),
            node: step.node,
            pid: pgid,
            pgid,
            service: true,
        });
        self.record(Event::StepFinished {
            step: step.id.clone(),
            attempt,
            secs: 0.0,
        });
        self.observer.message(&format!(
            "adopted {} (process group {pgid}, still up and healthy)",
            step.id
        ));
        let (transport, tx) = (self.transport.clone(), self.tx.clone());
        tokio::spawn(async move {
            while transport.group_alive(step.node, pgid) {
                tokio::time::sleep(ADOPTED_POLL).await;
            }
            let _ = tx.send(Msg::Exited {
                i,
                attempt,
                exit: Err("its process group is gone".into()),
                timed_out: false,
            });
        });
    }

    /// Frees the task slots an attempt held (once per attempt: on exit or failed spawn).
    fn release(&mut self, i: usize) {
        let step = self.dag.step(i);
        if step.lifetime == Lifetime::Task {
            self.running_tasks = self.running_tasks.saturating_sub(1);
            if let Some(c) = self.running_on.get_mut(&step.node) {
                *c = c.saturating_sub(1);
            }
        }
    }

    fn complete(&mut self, i: usize) {
        self.runs[i].state = State::Done;
        self.runs[i].end = Some(Instant::now());
        let dependents: Vec<usize> = self.dag.dependents(i).collect();
        for d in dependents {
            self.remaining_deps[d] = self.remaining_deps[d].saturating_sub(1);
        }
    }

    /// `cause: None` = a failure no retry can cure.
    fn attempt_failed(&mut self, i: usize, attempt: u32, reason: String, cause: Option<RetryOn>) {
        let step = self.step(i).clone();
        let mut reason = self.redact.clean(&reason).into_owned();
        // A step that fails as the disk fills fails for that reason, whatever it printed.
        if let Some(full) = crate::rundir::disk_full(&self.opts.run_dir) {
            reason = format!("{reason}; {full}");
        }
        let will_retry = !self.stopping
            && attempt < step.policy.attempts
            && cause.is_some_and(|c| step.policy.retries(c));
        self.record(Event::StepFailed {
            step: step.id.clone(),
            attempt,
            reason: reason.clone(),
            will_retry,
        });
        self.observer.failed(&step, attempt, &reason, will_retry);
        if will_retry {
            self.runs[i].state = State::Backoff;
            let delay = step.policy.backoff(attempt + 1);
            let tx = self.tx.clone();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let _ = tx.send(Msg::RetryDue { i });
            });
            return;
        }
        self.runs[i].state = State::Failed;
        self.runs[i].end = Some(Instant::now());
        let tail = log_tail(&self.opts.run_dir, &step.id, 20);
        let tail = format!("{}{tail}", self.port_diagnosis(&step, &tail));
        let tries = if attempt > 1 {
            format!(" after {attempt} tries")
        } else {
            String::new()
        };
        self.failures.push(format!(
            "step `{}` ({}) on {} failed{tries}: {reason}\n  log: {}\n{tail}",
            step.id,
            step.kind,
            self.dag.plan.nodes[step.node],
            log_path(&self.opts.run_dir, &step.id).display()
        ));
        self.status = RunStatus::Failed;
        if self.opts.keep_going {
            for d in self.dag.downstream(i) {
                if self.runs[d].state == State::Pending {
                    self.runs[d].state = State::Skipped;
                }
            }
        } else {
            self.stop();
        }
    }

    fn service_exited(&mut self, i: usize, exit: Result<Exit, String>) {
        let step = self.step(i).clone();
        let was_stopping = self.runs[i].stopping;
        self.runs[i].pgid = None;
        self.runs[i].end = Some(Instant::now());
        let reason = match &exit {
            Ok(e) => e.to_string(),
            Err(e) => self.redact.clean(e).into_owned(),
        };
        // Stopped by us, or gone while an interrupted run winds down (a scheduler cancelling the job
        // signals every process at once): not a failure of its own.
        if was_stopping || self.status == RunStatus::Interrupted {
            self.runs[i].state = State::Done;
            self.record(Event::ServiceStopped {
                step: step.id.clone(),
            });
            return;
        }
        self.runs[i].state = State::Failed;
        self.record(Event::ServiceExited {
            step: step.id.clone(),
            reason: reason.clone(),
        });
        self.observer.failed(
            &step,
            self.runs[i].attempts,
            &format!("service exited: {reason}"),
            false,
        );
        let tail = log_tail(&self.opts.run_dir, &step.id, 20);
        let tail = format!("{}{tail}", self.port_diagnosis(&step, &tail));
        self.failures.push(format!(
            "service `{}` ({}) on {} exited while the run was live: {reason}\n  log: {}\n{tail}",
            step.id,
            step.kind,
            self.dag.plan.nodes[step.node],
            log_path(&self.opts.run_dir, &step.id).display()
        ));
        self.status = RunStatus::Failed;
        self.stop();
    }

    /// A node the transport says is lost fails the run, by name, with what ran there; the rest is torn
    /// down (what was on the node is signalled too, bounded: it may still be there, drained).
    /// A loss first seen once the run's work is all done (in its teardown) is recorded and said, and the
    /// run keeps its outcome: its results stand, and what is named there is what could not be seen
    /// to stop.
    fn check_nodes(&mut self) {
        // Stopping without a failure or an interrupt: every step finished; this is the teardown.
        let work_done = self.stopping && self.status == RunStatus::Succeeded;
        for loss in self.transport.lost_nodes() {
            if !self.lost.insert(loss.node) {
                continue;
            }
            // Running there, or failed there with its process group recorded (a connection to the node
            // that died first ended the session, not the process).
            let on_it: Vec<String> = (0..self.runs.len())
                .filter(|&i| {
                    let r = &self.runs[i];
                    self.step(i).node == loss.node
                        && ((r.state == State::Running && r.pgid.is_some())
                            || (r.state == State::Failed && r.last_pgid.is_some()))
                })
                .map(|i| self.step(i).id.clone())
                .collect();
            let what = match on_it.len() {
                0 => "nothing of the run was running on it".to_string(),
                1 => format!("{} was on it", on_it[0]),
                _ => format!("{} were on it", on_it.join(", ")),
            };
            let message = if work_done {
                format!(
                    "warning: node {} lost during teardown ({}): {what}; the run's work was done and its \
                     results stand, but what was on the node could not be seen to stop",
                    loss.name, loss.reason
                )
            } else {
                format!("node {} lost ({}): {what}", loss.name, loss.reason)
            };
            self.record(Event::NodeLost {
                node: loss.name.clone(),
                reason: loss.reason.clone(),
                steps: on_it,
            });
            self.observer.message(&message);
            if work_done {
                continue;
            }
            self.failures.push(message);
            if self.status != RunStatus::Interrupted {
                self.status = RunStatus::Failed;
            }
            self.stop();
        }
    }

    /// When a step died of "address already in use", name who holds its ports (the seed's own
    /// troubleshooting case: nginx and a router both on :8000).
    fn port_diagnosis(&self, step: &Step, tail: &str) -> String {
        let lower = tail.to_ascii_lowercase();
        if !lower.contains("address already in use") && !lower.contains("address in use") {
            return String::new();
        }
        step.ports
            .iter()
            .filter_map(|&p| {
                let addr = self
                    .dag
                    .plan
                    .addresses
                    .get(step.node)
                    .map_or("", String::as_str);
                self.transport
                    .port_holder(step.node, addr, p)
                    .map(|h| format!("  port {p} is held by {h}\n"))
            })
            .collect()
    }

    /// Stop starting work and cancel running tasks (services wait for teardown).
    fn stop(&mut self) {
        if self.stopping {
            return;
        }
        tracing::info!("stopping: no new steps start; running tasks are cancelled");
        self.stopping = true;
        for i in 0..self.runs.len() {
            match self.runs[i].state {
                State::Pending => self.runs[i].state = State::Cancelled,
                State::Running if self.step(i).lifetime == Lifetime::Task => {
                    self.runs[i].stopping = true;
                    if let Some(pgid) = self.runs[i].pgid {
                        let sig = if self.hard { SIGKILL } else { SIGTERM };
                        let _ = self.transport.signal_group(self.step(i).node, pgid, sig);
                    }
                }
                _ => {}
            }
        }
    }

    fn interrupt(&mut self) {
        if self.status == RunStatus::Interrupted {
            self.hard = true;
            self.observer
                .message("second interrupt: killing without grace");
            for i in 0..self.runs.len() {
                if self.runs[i].state == State::Running && self.step(i).lifetime == Lifetime::Task {
                    if let Some(pgid) = self.runs[i].pgid {
                        let _ = self
                            .transport
                            .signal_group(self.step(i).node, pgid, SIGKILL);
                    }
                }
            }
        } else {
            self.observer
                .message("interrupted: stopping (interrupt again to skip the grace period)");
            self.status = RunStatus::Interrupted;
            self.stop();
        }
    }

    fn up_services(&self) -> Vec<ServiceHandle> {
        (0..self.runs.len())
            .filter(|&i| self.step(i).lifetime == Lifetime::Service)
            .filter_map(|i| {
                self.runs[i].pgid.map(|pgid| ServiceHandle {
                    step: self.step(i).id.clone(),
                    node: self.step(i).node,
                    pgid,
                })
            })
            .collect()
    }

    /// Stops services in reverse topological order: services at the same depth together, each group
    /// SIGTERM, then SIGKILL after the grace period; every wait is bounded.
    async fn teardown(
        &mut self,
        rx: &mut mpsc::UnboundedReceiver<Msg>,
        interrupts: &mut Interrupts,
    ) {
        self.stop();
        // Let cancelled tasks report (bounded).
        let deadline = Instant::now() + self.opts.grace + Duration::from_secs(1);
        while self
            .runs
            .iter()
            .enumerate()
            .any(|(i, r)| r.state == State::Running && self.step(i).lifetime == Lifetime::Task)
        {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            tokio::select! {
                Some(m) = rx.recv() => self.handle(m),
                Some(()) = interrupts.recv() => self.interrupt(),
                _ = tokio::time::sleep(left) => break,
            }
        }
        let depth = crate::render::levels(self.dag);
        let max_depth = depth.iter().copied().max().unwrap_or(0);
        for level in (0..=max_depth).rev() {
            let group: Vec<usize> = (0..self.runs.len())
                .filter(|&i| {
                    depth[i] == level
                        && self.step(i).lifetime == Lifetime::Service
                        && self.runs[i].pgid.is_some()
                })
                .collect();
            if group.is_empty() {
                continue;
            }
            tracing::debug!(level, services = group.len(), "teardown wave");
            for &i in &group {
                self.runs[i].stopping = true;
                if let Some(pgid) = self.runs[i].pgid {
                    let sig = if self.hard { SIGKILL } else { SIGTERM };
                    let _ = self.transport.signal_group(self.step(i).node, pgid, sig);
                }
            }
            let deadline = Instant::now()
                + if self.hard {
                    Duration::from_millis(500)
                } else {
                    self.opts.grace
                };
            // A lost node may never report its processes' end: not waited for (they were signalled).
            let waited = |ex: &Self, i: usize| {
                ex.runs[i].pgid.is_some() && !ex.lost.contains(&ex.step(i).node)
            };
            while group.iter().any(|&i| waited(self, i)) {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                tokio::select! {
                    Some(m) = rx.recv() => self.handle(m),
                    Some(()) = interrupts.recv() => {
                        self.interrupt();
                        for &i in &group {
                            if let Some(pgid) = self.runs[i].pgid {
                                let _ = self.transport.signal_group(self.step(i).node, pgid, SIGKILL);
                            }
                        }
                    }
                    // A node lost now is not waited on for the rest of the grace period.
                    _ = tokio::time::sleep(left.min(Duration::from_millis(200))) => self.check_nodes(),
                }
            }
            // Whatever is left of each group (the leader may be gone while forked children live on).
            for &i in &group {
                let node = self.step(i).node;
                if let Some(pgid) = self.runs[i].last_pgid {
                    let _ = self.transport.signal_group(node, pgid, SIGKILL);
                }
            }
            let deadline = Instant::now() + Duration::from_secs(2);
            while group.iter().any(|&i| waited(self, i)) && Instant::now() < deadline {
                tokio::select! {
                    Some(m) = rx.recv() => self.handle(m),
                    _ = tokio::time::sleep(Duration::from_millis(50)) => self.check_nodes(),
                }
            }
        }
        // A node lost while the run wound down is named too (a connection that died first failed the
        // steps there before the loss was known).
        self.check_nodes();
        // A step that ended on its own (a crashed service, a failed task) may have left its group behind:
        // forked children locally; with ssh or srun the remote group itself, when only the connection to
        // it died.
        for i in 0..self.runs.len() {
            if self.runs[i].state != State::Failed {
                continue;
            }
            let node = self.step(i).node;
            if self.lost.contains(&node) {
                continue;
            }
            if let Some(pgid) = self.runs[i].last_pgid {
                if self.transport.group_alive(node, pgid) {
                    tracing::debug!(step = %self.step(i).id, pgid, "stopping what is left of a failed step");
                    let _ = self.transport.signal_group(node, pgid, SIGKILL);
                }
            }
        }
        self.check_nodes();
    }

    fn finish(mut self, left_up: Vec<ServiceHandle>) -> RunReport {
        let now = Instant::now();
        // Close spans of services that are still up (kept up) at the end of the run.
        for i in 0..self.runs.len() {
            let step = self.step(i).clone();
            if step.lifetime == Lifetime::Service && self.runs[i].pgid.is_some() {
                let start = self.runs[i].started.unwrap_or(now);
                self.spans.push(Span {
                    step: step.id.clone(),
                    kind: step.kind.clone(),
                    node: step.node,
                    attempt: self.runs[i].attempts,
                    start_us: self.us(start),
                    end_us: self.us(now),
                    outcome: "up".into(),
                });
            }
        }
        let status = self.status;
        let reason = match status {
            // Its first line: the logs' tails are in the steps' own logs.
            RunStatus::Failed => self
                .failures
                .first()
                .and_then(|f| f.lines().next())
                .map(str::to_string),
            _ => None,
        };
        self.record(Event::RunFinished { status, reason });
        if let Err(e) = self.journal.close() {
            self.failures.push(format!(
                "the journal {} is incomplete: {e}",
                self.journal.path().display()
            ));
        }
        let trace = crate::trace::render(&self.dag.plan.nodes, &self.spans);
        let _ =
            crate::rundir::write_atomic(&self.opts.run_dir.join("trace.json"), trace.as_bytes());
        let steps: Vec<StepReport> = (0..self.runs.len())
            .map(|i| {
                let s = self.step(i);
                let r = &self.runs[i];
                let secs = match (r.first_start, r.end) {
                    (Some(a), Some(b)) => b.saturating_duration_since(a).as_secs_f64(),
                    (Some(a), None) => now.saturating_duration_since(a).as_secs_f64(),
                    _ => 0.0,
                };
                let result = match r.state {
                    State::Done | State::Running
                        if r.inherited && s.lifetime == Lifetime::Service =>
                    {
                        StepResult::Adopted
                    }
                    // Kept steps stand whether or not the run got past them.
                    State::Done | State::Pending | State::Cancelled if r.inherited => {
                        StepResult::Kept
                    }
                    State::Pending | State::Backoff => StepResult::NotRun,
                    State::Done if s.lifetime == Lifetime::Service => StepResult::Up,
                    State::Done => StepResult::Done,
                    State::Running if s.lifetime == Lifetime::Service => StepResult::Up,
                    State::Running => StepResult::Cancelled,
                    State::Failed => StepResult::Failed,
                    State::Skipped => StepResult::Skipped,
                    State::Cancelled => StepResult::Cancelled,
                };
                StepReport {
                    id: s.id.clone(),
                    kind: s.kind.clone(),
                    node: self.dag.plan.nodes[s.node].clone(),
                    attempts: r.attempts,
                    secs,
                    result,
                }
            })
            .collect();
        RunReport {
            status,
            critical_path: self.critical_path(),
            steps,
            failures: std::mem::take(&mut self.failures)
                .into_iter()
                .map(|f| self.redact.clean(&f).into_owned())
                .collect(),
            makespan_secs: now.saturating_duration_since(self.t0).as_secs_f64(),
            left_up,
        }
    }

    /// Walk back from the task that finished last, each time to the dependency that finished last.
    fn critical_path(&self) -> Vec<String> {
        let end_of = |i: usize| -> Option<Instant> {
            let r = &self.runs[i];
            if self.step(i).lifetime == Lifetime::Service {
                // A service's contribution ends when it started.
                r.first_start.map(|s| s.max(r.started.unwrap_or(s)))
            } else {
                r.end
            }
        };
        let mut cur = (0..self.runs.len())
            .filter_map(|i| end_of(i).map(|e| (e, i)))
            .max()
            .map(|(_, i)| i);
        let mut path = Vec::new();
        while let Some(i) = cur {
            path.push(self.step(i).id.clone());
            cur = self
                .dag
                .dependencies(i)
                .filter_map(|d| end_of(d).map(|e| (e, d)))
                .max()
                .map(|(_, d)| d);
        }
        path.reverse();
        path
    }
}

fn write_files(run_dir: &Path, step: &Step) -> std::io::Result<()> {
    for f in &step.files {
        let path = run_dir.join(&f.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        crate::rundir::write_atomic(&path, f.content.as_bytes())?;
    }
    Ok(())
}
