//! The node agent: one long-lived process per node (and per container on it), started by one launcher
//! command (`srun` on Slurm), that starts, signals and probes that node's processes and writes their logs.
//! A run then pays one launch per node instead of one per process and per node operation, and a dead
//! agent is one event (its launcher exits), not a silence.
//!
//! The agent speaks JSON lines: requests on its standard input, replies on its standard output. Its
//! processes are started as the local transport starts them (own process group, output timestamped into
//! the step's log, secrets replaced). When its input closes (the orchestrator is gone or done) it writes
//! nothing more and exits once the last of its processes has: the launcher's step, and with it the
//! processes, must outlive an orchestrator that was killed, so that `resume` can adopt them.
//!
//! `serve` is the agent; `Agent` is the orchestrator's end of one; `AgentPool` starts them on demand.

use crate::local::LocalTransport;
use crate::secret::Redactor;
use crate::transport::{Exit, GroupSignaller, Process, SpawnRequest, Transport};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc as std_mpsc, Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncBufReadExt;
use tokio::sync::oneshot;

/// What the orchestrator asks of an agent.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Start a process; `Started` (or `Done` with the error), later `Exited`.
    Spawn {
        id: u64,
        argv: Vec<String>,
        env: BTreeMap<String, String>,
        cwd: Option<String>,
        log: PathBuf,
        /// Values to replace in the log (they travel on this pipe, never in an argv).
        secrets: Vec<String>,
    },
    /// Signal a process group on this node.
    Signal { id: u64, pgid: i32, signal: i32 },
    /// Whether a process group on this node has a live member (`Done.ok`).
    Alive { id: u64, pgid: i32 },
    /// Answer at once: the orchestrator's heartbeat. `Done.output` says what is wrong with the node,
    /// if the agent can tell (its slurmd gone), else is empty.
    Ping { id: u64 },
    /// Run a short command to its end; its standard output (or error) in `Done.output`.
    Run {
        id: u64,
        argv: Vec<String>,
        limit_ms: u64,
    },
}

/// A request on a pipe several agents read (one launcher for many nodes, `srun --input=all`): `to`
/// names the node it is for; the others let it pass. Without `to`, every reader serves it.
#[derive(Debug, Serialize, Deserialize)]
pub struct Envelope {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    #[serde(flatten)]
    pub request: Request,
}

/// What an agent says.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Reply {
    /// First line: the agent is up, on `node` (Slurm's name for it, when it runs under Slurm).
    Ready {
        pid: i32,
        #[serde(default)]
        node: Option<String>,
    },
    Started {
        id: u64,
        pid: i32,
        pgid: i32,
    },
    Exited {
        id: u64,
        code: Option<i32>,
        signal: Option<i32>,
    },
    Done {
        id: u64,
        ok: bool,
        output: String,
    },
}

/// One agent of a job step with a task per node (`srun --nodes=N --ntasks-per-node=1`) makes what it
/// starts see the environment of a one-task step on its node, as a step's own `srun --nodes=1
/// --ntasks=1` gives it: a process that reads `SLURM_NTASKS` or `SLURM_PROCID` (distributed set-up,
/// a node-keyed config) must not take itself for task k of N. Changes this process's environment:
/// call it before any thread starts.
pub fn as_one_task_step() {
    let tasks = std::env::var("SLURM_STEP_NUM_TASKS").ok();
    let Some(node) = std::env::var("SLURMD_NODENAME")
        .ok()
        .filter(|_| tasks.as_deref().is_some_and(|t| t != "1"))
    else {
        return;
    };
    for (key, value) in [
        ("SLURM_STEP_NODELIST", node.as_str()),
        ("SLURM_STEP_NUM_NODES", "1"),
        ("SLURM_STEP_NUM_TASKS", "1"),
        ("SLURM_STEP_TASKS_PER_NODE", "1"),
        ("SLURM_TASKS_PER_NODE", "1"),
        ("SLURM_NNODES", "1"),
        ("SLURM_NTASKS", "1"),
        ("SLURM_NPROCS", "1"),
        ("SLURM_NODEID", "0"),
        ("SLURM_PROCID", "0"),
        ("SLURM_LOCALID", "0"),
        ("SLURM_GTIDS", "0"),
    ] {
        std::env::set_var(key, value);
    }
    for key in ["SLURM_NTASKS_PER_NODE", "SLURM_LABELIO"] {
        std::env::remove_var(key);
    }
}

/// The agent: answers requests on stdin until it closes, then waits for its processes and returns.
pub async fn serve() -> std::io::Result<()> {
    let (tx, mut replies) = tokio::sync::mpsc::unbounded_channel::<Reply>();
    let mut out = std::io::stdout();
    let node = std::env::var("SLURMD_NODENAME").ok();
    write_reply(
        &mut out,
        &Reply::Ready {
            pid: std::process::id() as i32,
            node: node.clone(),
        },
    )?;
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let mut processes = tokio::task::JoinSet::new();
    // The node's slurmd as this agent last saw it: `(pid, gone)`.
    let mut slurmd = node
        .as_deref()
        .and_then(find_slurmd)
        .map(|pid| (pid, false));
    loop {
        tokio::select! {
            line = lines.next_line() => match line {
                Ok(Some(line)) if line.trim().is_empty() => {}
                Ok(Some(line)) => match serde_json::from_str::<Envelope>(&line) {
                    Ok(Envelope { to: Some(to), .. }) if node.as_ref() != Some(&to) => {}
                    Ok(Envelope { request: Request::Ping { id }, .. }) => {
                        let output = check_slurmd(&mut slurmd, node.as_deref());
                        let _ = tx.send(Reply::Done { id, ok: true, output });
                    }
                    Ok(envelope) => handle(envelope.request, &tx, &mut processes),
                    Err(e) => eprintln!("node agent: unreadable request ({e}): {line}"),
                },
                // The orchestrator is gone or done: say nothing more (nobody reads it).
                Ok(None) | Err(_) => break,
            },
            Some(reply) = replies.recv() => {
                // A closed pipe means the orchestrator is gone; the processes carry on.
                let _ = write_reply(&mut out, &reply);
            }
        }
    }
    while processes.join_next().await.is_some() {}
    Ok(())
}

/// The slurmd serving `node` on this machine: the oldest live process named `slurmd` started with
/// `-N node` (several per machine: Slurm's multiple-slurmd mode) or, where none has `-N`, without it
/// (one per machine). Not one of its short-lived forks (each step launch forks one, which execs
/// slurmstepd; others exit as soon as they start, their command lines already empty). `None` when
/// none is visible (another PID namespace): then its loss is left to Slurm to see.
fn find_slurmd(node: &str) -> Option<u32> {
    // (pid, start time, the node after `-N`, if any)
    let daemons: Vec<(u32, u64, Option<String>)> = std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let stat = crate::local::proc_stat(pid as i32)?;
            if !stat.alive() || !is_slurmd(pid) || is_slurmd(u32::try_from(stat.ppid).ok()?) {
                return None;
            }
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let args: Vec<String> = cmdline
                .split(|&b| b == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            if !args.first().is_some_and(|a| a.ends_with("slurmd")) {
                return None;
            }
            let named = args
                .iter()
                .position(|a| a == "-N")
                .and_then(|i| args.get(i + 1).cloned());
            Some((pid, stat.start_ticks, named))
        })
        .collect();
    let several = daemons.iter().any(|(_, _, n)| n.is_some());
    daemons
        .into_iter()
        .filter(|(_, _, n)| {
            if several {
                n.as_deref() == Some(node)
            } else {
                true
            }
        })
        .min_by_key(|(_, started, _)| *started)
        .map(|(pid, _, _)| pid)
}

/// What the heartbeat says of the node's slurmd: nothing while it runs (a restarted one, found
/// again, is as good), else that it is gone.
fn check_slurmd(slurmd: &mut Option<(u32, bool)>, node: Option<&str>) -> String {
    let Some((pid, gone)) = *slurmd else {
        return String::new();
    };
    if !gone && !is_slurmd(pid) {
        *slurmd = Some(match node.and_then(find_slurmd) {
            Some(again) => (again, false),
            None => (pid, true),
        });
    }
    match *slurmd {
        Some((pid, true)) => format!("slurmd not running (pid {pid} is gone)"),
        _ => String::new(),
    }
}

fn is_slurmd(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "slurmd")
}

fn write_reply(out: &mut std::io::Stdout, reply: &Reply) -> std::io::Result<()> {
    let mut line = serde_json::to_string(reply).map_err(std::io::Error::other)?;
    line.push('\n');
    let mut lock = out.lock();
    lock.write_all(line.as_bytes())?;
    lock.flush()
}

type ReplyTx = tokio::sync::mpsc::UnboundedSender<Reply>;

fn handle(req: Request, tx: &ReplyTx, processes: &mut tokio::task::JoinSet<()>) {
    let tx = tx.clone();
    match req {
        Request::Spawn {
            id,
            argv,
            env,
            cwd,
            log,
            secrets,
        } => {
            let req = SpawnRequest {
                step: String::new(),
                node: 0,
                argv,
                env,
                cwd,
                log,
                container: None,
                mpi: None,
                redact: Redactor::new(secrets),
            };
            processes.spawn(async move {
                match LocalTransport.spawn(&req).await {
                    Err(e) => {
                        let _ = tx.send(Reply::Done {
                            id,
                            ok: false,
                            output: e.to_string(),
                        });
                    }
                    Ok(mut p) => {
                        let _ = tx.send(Reply::Started {
                            id,
                            pid: p.pid(),
                            pgid: p.pgid(),
                        });
                        let (code, signal) = match p.wait().await {
                            Ok(Exit::Code(c)) => (Some(c), None),
                            Ok(Exit::Signal(s)) => (None, Some(s)),
                            Err(_) => (Some(-1), None),
                        };
                        let _ = tx.send(Reply::Exited { id, code, signal });
                    }
                }
            });
        }
        Request::Signal { id, pgid, signal } => {
            let outcome = LocalTransport.signal_group(0, pgid, signal);
            let _ = tx.send(Reply::Done {
                id,
                ok: outcome.is_ok(),
                output: outcome.err().map(|e| e.to_string()).unwrap_or_default(),
            });
        }
        Request::Alive { id, pgid } => {
            let _ = tx.send(Reply::Done {
                id,
                ok: LocalTransport.group_alive(0, pgid),
                output: String::new(),
            });
        }
        Request::Ping { id } => {
            let _ = tx.send(Reply::Done {
                id,
                ok: true,
                output: String::new(),
            });
        }
        Request::Run { id, argv, limit_ms } => {
            tokio::task::spawn_blocking(move || {
                let outcome = match argv.split_first() {
                    None => Err("empty command".to_string()),
                    Some((program, args)) => crate::remote::run_captured(
                        std::process::Command::new(program).args(args),
                        Duration::from_millis(limit_ms),
                    ),
                };
                let (ok, output) = match outcome {
                    Ok(o) => (true, o),
                    Err(e) => (false, e),
                };
                let _ = tx.send(Reply::Done { id, ok, output });
            });
        }
    }
}

/// Where one answer arrives: `(ok, output)`, or why the agent is gone.
pub type Answer = std_mpsc::Receiver<Result<(bool, String), String>>;

/// Who waits for an answer to request `id`.
#[derive(Default)]
struct Waiting {
    started: Option<oneshot::Sender<Result<(i32, i32), String>>>,
    exited: Option<oneshot::Sender<Result<Exit, String>>>,
    done: Option<std_mpsc::Sender<Result<(bool, String), String>>>,
}

/// One agent's waiters and fate.
struct Shared {
    /// `node2`, or `node2 (container srt-graph-…)`.
    label: String,
    waiting: Mutex<HashMap<u64, Waiting>>,
    /// Why the agent is gone, once it is.
    lost: Mutex<Option<String>>,
}

impl Shared {
    fn new(label: &str) -> Shared {
        Shared {
            label: label.to_string(),
            waiting: Mutex::default(),
            lost: Mutex::default(),
        }
    }

    fn lost(&self) -> Option<String> {
        self.lost.lock().ok().and_then(|l| l.clone())
    }

    /// The agent is gone: everyone still waiting is told why (the first reason given stands).
    fn fail_all(&self, why: &str) {
        let why = match self.lost.lock() {
            Ok(mut l) => l.get_or_insert_with(|| why.to_string()).clone(),
            Err(_) => why.to_string(),
        };
        let waiting: Vec<Waiting> = self
            .waiting
            .lock()
            .map(|mut w| w.drain().map(|(_, v)| v).collect())
            .unwrap_or_default();
        for w in waiting {
            if let Some(s) = w.started {
                let _ = s.send(Err(why.clone()));
            }
            if let Some(s) = w.exited {
                let _ = s.send(Err(why.clone()));
            }
            if let Some(s) = w.done {
                let _ = s.send(Err(why.clone()));
            }
        }
    }

    fn dispatch(&self, reply: Reply) {
        let Ok(mut waiting) = self.waiting.lock() else {
            return;
        };
        match reply {
            Reply::Ready { .. } => {}
            Reply::Started { id, pid, pgid } => {
                if let Some(s) = waiting.get_mut(&id).and_then(|w| w.started.take()) {
                    let _ = s.send(Ok((pid, pgid)));
                }
            }
            Reply::Exited { id, code, signal } => {
                if let Some(w) = waiting.remove(&id) {
                    let exit = match (code, signal) {
                        (_, Some(s)) => Exit::Signal(s),
                        (Some(c), None) => Exit::Code(c),
                        (None, None) => Exit::Code(-1),
                    };
                    if let Some(s) = w.exited {
                        let _ = s.send(Ok(exit));
                    }
                }
            }
            Reply::Done { id, ok, output } => {
                if let Some(w) = waiting.remove(&id) {
                    // A spawn that failed answers with `Done`.
                    if let Some(s) = w.started {
                        let _ = s.send(Err(output));
                    } else if let Some(s) = w.done {
                        let _ = s.send(Ok((ok, output)));
                    }
                }
            }
        }
    }
}

/// One launcher and its pipes, shared by the agents it started (one, or one per node).
struct Link {
    /// Request ids, unique over every agent of the launcher (a heartbeat to all carries one).
    next_id: AtomicU64,
    stdin: Mutex<Option<std::process::ChildStdin>>,
    child: Arc<Mutex<std::process::Child>>,
    reader: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Link {
    /// One request line to the launcher (every agent it started reads it).
    fn write(&self, envelope: &Envelope) -> std::io::Result<()> {
        let mut line = serde_json::to_string(envelope).map_err(std::io::Error::other)?;
        line.push('\n');
        match self.stdin.lock().ok().as_deref_mut() {
            Some(Some(stdin)) => stdin
                .write_all(line.as_bytes())
                .and_then(|()| stdin.flush()),
            _ => Err(std::io::Error::other("closed")),
        }
    }
}

/// The orchestrator's end of one agent.
pub struct Agent {
    /// `node2`, or `node2 (container srt-graph-…)`.
    pub label: String,
    /// The node it serves, when its launcher serves several.
    to: Option<String>,
    shared: Arc<Shared>,
    link: Arc<Link>,
}

/// One agent a launcher starts: its label and, under Slurm, its node's name (`SLURMD_NODENAME`).
pub struct Member {
    pub label: String,
    pub node: Option<String>,
}

/// How long an agent may take to say it is up: its launcher may first create a container (unpacking
/// the image), as a step's own `srun` would.
pub const START_LIMIT: Duration = Duration::from_secs(300);

impl Agent {
    /// Starts `launcher` (whose last words run `srt-graph node-agent` on the node) and waits until the
    /// agent says it is up. The launcher's own messages go to `errors_log`.
    pub fn start(
        label: &str,
        launcher: std::process::Command,
        errors_log: &std::path::Path,
        limit: Duration,
    ) -> Result<Agent, String> {
        let member = Member {
            label: label.to_string(),
            node: None,
        };
        let mut agents = Agent::start_many(&[member], launcher, errors_log, limit)?;
        agents
            .pop()
            .ok_or_else(|| "no node agent started".to_string())
    }

    /// Starts one launcher that runs an agent on each member's node (`srun --nodes=N --label
    /// --input=all`: every agent reads every request and serves those `to` its node; each reply
    /// comes back behind its task's label) and waits until all say they are up. One member: its
    /// launcher's lines are not labelled. An agent that ends (srun: `task N: Killed`) fails its own
    /// waiters by name; the others serve on.
    pub fn start_many(
        members: &[Member],
        launcher: std::process::Command,
        errors_log: &std::path::Path,
        limit: Duration,
    ) -> Result<Vec<Agent>, String> {
        let agents = Agent::start_many_with(members, launcher, errors_log, limit, &mut |_, _| {})?;
        Ok(agents
            .into_iter()
            .filter_map(|a| Arc::try_unwrap(a).ok())
            .collect())
    }

    /// As `start_many`, and `on_ready(i, agent)` as each member says it is up: its node's work need
    /// not wait for the slowest member (a container still being unpacked elsewhere).
    pub fn start_many_with(
        members: &[Member],
        mut launcher: std::process::Command,
        errors_log: &std::path::Path,
        limit: Duration,
        on_ready: &mut dyn FnMut(usize, &Arc<Agent>),
    ) -> Result<Vec<Arc<Agent>>, String> {
        use std::os::unix::process::CommandExt;
        let errors = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(errors_log)
            .map_err(|e| format!("cannot open {}: {e}", errors_log.display()))?;
        let labels = members
            .iter()
            .map(|m| m.label.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let mut child = launcher
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            // Its own group: an interrupt at the terminal reaches the orchestrator, which tears down.
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot start the node agent on {labels}: {e}"))?;
        let stdin = child.stdin.take();
        let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
            return Err("the node agent has no output pipe".to_string());
        };
        let routes: Vec<Route> = members
            .iter()
            .map(|m| Route {
                node: m.node.clone(),
                shared: Arc::new(Shared::new(&m.label)),
            })
            .collect();
        let routes = Arc::new(routes);
        let child = Arc::new(Mutex::new(child));
        let (ready_tx, ready_rx) = std_mpsc::channel::<usize>();
        let watcher = {
            let routes = routes.clone();
            std::thread::spawn(move || watch_launcher_messages(stderr, errors, &routes))
        };
        let reader = {
            let (routes, child) = (routes.clone(), child.clone());
            std::thread::spawn(move || read_replies(stdout, &routes, &child, watcher, ready_tx))
        };
        let link = Arc::new(Link {
            next_id: AtomicU64::new(1),
            stdin: Mutex::new(stdin),
            child,
            reader: Mutex::new(Some(reader)),
        });
        let several = routes.len() > 1;
        let agents: Vec<Arc<Agent>> = routes
            .iter()
            .map(|r| {
                Arc::new(Agent {
                    label: r.shared.label.clone(),
                    to: r.node.clone().filter(|_| several),
                    shared: r.shared.clone(),
                    link: link.clone(),
                })
            })
            .collect();
        let deadline = std::time::Instant::now() + limit;
        let mut up = vec![false; agents.len()];
        // Settled: up, or gone before it was (srun says which task ended); the others serve on.
        let settled = |up: &[bool]| agents.iter().zip(up).all(|(a, u)| *u || a.lost().is_some());
        let failed = |up: &[bool]| {
            let why = agents
                .iter()
                .zip(up)
                .find_map(|(a, u)| if *u { None } else { a.lost() })?;
            let tail = crate::rundir::log_tail_of(errors_log, 6);
            Some(format!("{why}\n{tail}").trim().to_string())
        };
        while !settled(&up) {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match ready_rx.recv_timeout(left.min(Duration::from_millis(100))) {
                Ok(i) => {
                    if let Some(a) = agents.get(i).filter(|_| !up[i]) {
                        on_ready(i, a);
                        up[i] = true;
                    }
                }
                Err(std_mpsc::RecvTimeoutError::Disconnected) => {
                    agents[0].join_reader(Duration::from_secs(5));
                    let why = agents.iter().find_map(|a| a.lost()).unwrap_or_default();
                    let tail = crate::rundir::log_tail_of(errors_log, 6);
                    return Err(format!("{why}\n{tail}").trim().to_string());
                }
                Err(std_mpsc::RecvTimeoutError::Timeout) if !left.is_zero() => {}
                Err(std_mpsc::RecvTimeoutError::Timeout) => {
                    agents[0].kill();
                    let late: Vec<&str> = agents
                        .iter()
                        .zip(&up)
                        .filter(|(_, u)| !**u)
                        .map(|(a, _)| a.label.as_str())
                        .collect();
                    return Err(format!(
                        "the node agent on {} did not start within {}s",
                        late.join(", "),
                        limit.as_secs()
                    ));
                }
            }
        }
        match failed(&up) {
            Some(why) => Err(why),
            None => Ok(agents),
        }
    }

    /// Why it is gone, if it is.
    pub fn lost(&self) -> Option<String> {
        self.shared.lost()
    }

    fn send(&self, make: impl FnOnce(u64) -> Request, waiting: Waiting) -> Result<u64, String> {
        if let Some(why) = self.lost() {
            return Err(why);
        }
        let id = self.link.next_id.fetch_add(1, Ordering::Relaxed);
        let envelope = Envelope {
            to: self.to.clone(),
            request: make(id),
        };
        if let Ok(mut w) = self.shared.waiting.lock() {
            w.insert(id, waiting);
        }
        if let Err(e) = self.link.write(&envelope) {
            if let Ok(mut w) = self.shared.waiting.lock() {
                w.remove(&id);
            }
            return Err(self.lost().unwrap_or_else(|| {
                format!("the node agent on {} cannot be reached: {e}", self.label)
            }));
        }
        Ok(id)
    }

    /// A request with one answer, waited for here (for callers outside the async runtime's reach).
    fn ask(
        &self,
        make: impl FnOnce(u64) -> Request,
        limit: Duration,
    ) -> Result<(bool, String), String> {
        let (tx, rx) = std_mpsc::channel();
        let id = self.send(
            make,
            Waiting {
                done: Some(tx),
                ..Waiting::default()
            },
        )?;
        match rx.recv_timeout(limit) {
            Ok(answer) => answer,
            Err(_) => {
                if let Ok(mut w) = self.shared.waiting.lock() {
                    w.remove(&id);
                }
                Err(format!(
                    "the node agent on {} did not answer within {}s",
                    self.label,
                    limit.as_secs()
                ))
            }
        }
    }

    /// Signals a process group on the node, waiting at most `limit` for the agent's answer.
    pub fn signal(&self, pgid: i32, signal: i32, limit: Duration) -> Result<(), String> {
        match self.ask(|id| Request::Signal { id, pgid, signal }, limit)? {
            (true, _) => Ok(()),
            (false, e) => Err(e),
        }
    }

    /// Whether a process group on the node has a live member, waiting at most `limit`.
    pub fn alive(&self, pgid: i32, limit: Duration) -> Result<bool, String> {
        self.ask(|id| Request::Alive { id, pgid }, limit)
            .map(|(alive, _)| alive)
    }

    /// A heartbeat to each of `agents`, the answers (or each agent's loss) on the channels returned,
    /// in order. Agents that share a launcher get one request for all of them (every agent reads
    /// every request there: one per agent would cost the launcher agents² lines).
    pub fn ping_all(agents: &[&Agent]) -> Vec<Result<Answer, String>> {
        let mut out: Vec<Option<Result<Answer, String>>> = agents.iter().map(|_| None).collect();
        for (i, a) in agents.iter().enumerate() {
            if out[i].is_some() {
                continue;
            }
            if a.lost().is_some() {
                out[i] = Some(a.ping());
                continue;
            }
            // One slot per agent: the same agent listed twice (two logical nodes on one node) is
            // asked again on its own below.
            let mut members: Vec<usize> = Vec::new();
            for j in i..agents.len() {
                let same_link = Arc::ptr_eq(&agents[j].link, &a.link);
                let listed = members.iter().any(|&m| std::ptr::eq(agents[m], agents[j]));
                if same_link && !listed && agents[j].lost().is_none() {
                    members.push(j);
                }
            }
            if members.len() < 2 || a.to.is_none() {
                out[i] = Some(a.ping());
                continue;
            }
            let id = a.link.next_id.fetch_add(1, Ordering::Relaxed);
            let mut channels = Vec::new();
            for &j in &members {
                let (tx, rx) = std_mpsc::channel();
                if let Ok(mut w) = agents[j].shared.waiting.lock() {
                    w.insert(
                        id,
                        Waiting {
                            done: Some(tx),
                            ..Waiting::default()
                        },
                    );
                }
                channels.push((j, rx));
            }
            let envelope = Envelope {
                to: None,
                request: Request::Ping { id },
            };
            let written = a.link.write(&envelope);
            for (j, rx) in channels {
                out[j] = Some(match &written {
                    Ok(()) => Ok(rx),
                    Err(e) => {
                        if let Ok(mut w) = agents[j].shared.waiting.lock() {
                            w.remove(&id);
                        }
                        Err(format!(
                            "the node agent on {} cannot be reached: {e}",
                            agents[j].label
                        ))
                    }
                });
            }
        }
        // Every slot is filled above; a lost agent's ping says it is lost.
        out.into_iter()
            .zip(agents)
            .map(|(o, a)| o.unwrap_or_else(|| a.ping()))
            .collect()
    }

    /// Sends a heartbeat; the answer (or the agent's loss) arrives on the channel returned.
    pub fn ping(&self) -> Result<Answer, String> {
        let (tx, rx) = std_mpsc::channel();
        self.send(
            |id| Request::Ping { id },
            Waiting {
                done: Some(tx),
                ..Waiting::default()
            },
        )?;
        Ok(rx)
    }

    /// Runs `argv` on the node to its end within `limit`: its standard output, else its error.
    pub fn run(&self, argv: &[String], limit: Duration) -> Result<String, String> {
        let limit_ms = limit.as_millis() as u64;
        let argv = argv.to_vec();
        // The agent enforces `limit`; the wait here allows for the round trip.
        match self.ask(
            |id| Request::Run { id, argv, limit_ms },
            limit + Duration::from_secs(5),
        )? {
            (true, out) => Ok(out),
            (false, e) => Err(e),
        }
    }

    /// Starts a process; its handle reports its exit (or the agent's loss).
    pub async fn spawn(&self, req: &SpawnRequest) -> Result<Box<dyn Process>, String> {
        let (started_tx, started_rx) = oneshot::channel();
        let (exited_tx, exited_rx) = oneshot::channel();
        let secrets = req.redact.values().to_vec();
        self.send(
            |id| Request::Spawn {
                id,
                argv: req.argv.clone(),
                env: req.env.clone(),
                cwd: req.cwd.clone(),
                log: req.log.clone(),
                secrets,
            },
            Waiting {
                started: Some(started_tx),
                exited: Some(exited_tx),
                done: None,
            },
        )?;
        let (pid, pgid) = started_rx
            .await
            .map_err(|_| format!("the node agent on {} is gone", self.label))??;
        Ok(Box::new(AgentProcess {
            pid,
            pgid,
            exited: Some(exited_rx),
            last: crate::process::LastLineOf::new(req.log.clone()),
        }))
    }

    /// No more requests, for this agent and every other its launcher started: they exit once their
    /// processes have.
    pub fn close(&self) {
        if let Ok(mut s) = self.link.stdin.lock() {
            s.take();
        }
    }

    /// Waits (bounded) for the launcher to be gone after `close`; whether it is.
    pub fn join_reader(&self, limit: Duration) -> bool {
        let deadline = std::time::Instant::now() + limit;
        let reader = &self.link.reader;
        loop {
            let finished = reader
                .lock()
                .ok()
                .is_none_or(|r| r.as_ref().is_none_or(|h| h.is_finished()));
            if finished {
                if let Some(h) = reader.lock().ok().and_then(|mut r| r.take()) {
                    let _ = h.join();
                }
                return true;
            }
            if std::time::Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Ends the launcher (the agents' step ends with it, and Slurm ends what the step still holds).
    pub fn kill(&self) {
        self.close();
        if let Ok(mut c) = self.link.child.lock() {
            let _ = c.kill();
        }
    }
}

/// Where one member's replies go.
struct Route {
    node: Option<String>,
    shared: Arc<Shared>,
}

/// The launcher's own messages into its log; srun's word that one task ended (`srun: error: node2:
/// task 1: Killed`) fails that member at once, by name, while the others serve on.
fn watch_launcher_messages(
    stderr: std::process::ChildStderr,
    mut log: std::fs::File,
    routes: &[Route],
) {
    for line in std::io::BufReader::new(stderr).lines() {
        let Ok(line) = line else { break };
        let _ = writeln!(log, "{line}");
        let Some((node, task)) = line
            .strip_prefix("srun: error: ")
            .and_then(|rest| rest.split_once(": task "))
        else {
            continue;
        };
        if let Some(r) = routes.iter().find(|r| r.node.as_deref() == Some(node)) {
            r.shared.fail_all(&format!(
                "the node agent on {} ended (srun: task {task})",
                r.shared.label
            ));
        }
    }
}

/// srun's pieces of a longer line are this long (its I/O buffer); a shorter one ends a line.
const CUT_AT: usize = 1000;
/// A reply is never longer (a node operation's output): a runaway is dropped, not held.
const MAX_REPLY: usize = 64 << 20;

/// `(task, the rest)` of srun's `--label` prefix (`" 3: "`).
fn split_label(line: &[u8]) -> Option<(u32, &[u8])> {
    let colon = line.windows(2).position(|w| w == b": ")?;
    let task = std::str::from_utf8(&line[..colon])
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some((task, &line[colon + 2..]))
}

/// The reader thread: replies to their waiters (by task label when the launcher serves several); at
/// the end of the launcher's output, everyone still waiting learns how it ended.
fn read_replies(
    stdout: std::process::ChildStdout,
    routes: &[Route],
    child: &Mutex<std::process::Child>,
    watcher: std::thread::JoinHandle<()>,
    ready: std_mpsc::Sender<usize>,
) {
    let labelled = routes.len() > 1;
    let mut by_task: HashMap<u32, usize> = HashMap::new();
    // srun cuts a task's line after 1024 bytes and labels each piece: a task's pieces are joined
    // until they read as a reply (bytes: a cut may fall inside a UTF-8 character).
    let mut pieces: HashMap<Option<u32>, Vec<u8>> = HashMap::new();
    for line in std::io::BufReader::new(stdout).split(b'\n') {
        let Ok(line) = line else { break };
        let (task, body) = match split_label(&line).filter(|_| labelled) {
            Some((task, body)) => (Some(task), body),
            None => (None, line.as_slice()),
        };
        let joined = pieces.remove(&task).map(|mut held| {
            held.extend_from_slice(body);
            held
        });
        let text = joined.as_deref().unwrap_or(body);
        let reply = match serde_json::from_slice::<Reply>(text) {
            Ok(reply) => reply,
            Err(_) if labelled && body.len() >= CUT_AT && text.len() < MAX_REPLY => {
                pieces.insert(task, text.to_vec());
                continue;
            }
            Err(_) => {
                tracing::debug!("not a reply: {}", String::from_utf8_lossy(text));
                continue;
            }
        };
        match reply {
            Reply::Ready { node, .. } => {
                let at = match &node {
                    Some(n) if labelled => routes.iter().position(|r| r.node.as_ref() == Some(n)),
                    _ => Some(0),
                };
                if let (Some(at), Some(task)) = (at, task) {
                    by_task.insert(task, at);
                }
                if let Some(at) = at {
                    let _ = ready.send(at);
                }
            }
            reply => {
                let at = if labelled {
                    task.and_then(|t| by_task.get(&t).copied())
                } else {
                    Some(0)
                };
                match at.and_then(|i| routes.get(i)) {
                    Some(r) => r.shared.dispatch(reply),
                    None => tracing::debug!("a reply from no known agent (task {task:?})"),
                }
            }
        }
    }
    // srun's last words (which task ended, and how) name the loss better than its exit code.
    let _ = watcher.join();
    let status = child.lock().ok().and_then(|mut c| c.wait().ok());
    let how = status.map_or_else(
        || "ended".to_string(),
        |s| match crate::process::exit_of(s) {
            // srun exits 128 + n when its task was killed by signal n.
            Exit::Code(c) if (129..=192).contains(&c) => {
                format!("exited with code {c} (killed by signal {})", c - 128)
            }
            Exit::Code(c) => format!("exited with code {c}"),
            Exit::Signal(s) => format!("was killed by signal {s}"),
        },
    );
    for r in routes {
        r.shared
            .fail_all(&format!("the node agent on {} {how}", r.shared.label));
    }
}

/// A process an agent started.
struct AgentProcess {
    pid: i32,
    pgid: i32,
    exited: Option<oneshot::Receiver<Result<Exit, String>>>,
    last: crate::process::LastLineOf,
}

#[async_trait]
impl Process for AgentProcess {
    fn pid(&self) -> i32 {
        self.pid
    }
    fn pgid(&self) -> i32 {
        self.pgid
    }
    async fn wait(&mut self) -> std::io::Result<Exit> {
        let Some(rx) = self.exited.as_mut() else {
            return Err(std::io::Error::other("already waited for"));
        };
        let outcome = rx.await;
        self.exited = None;
        self.last.stop();
        match outcome {
            Ok(Ok(exit)) => Ok(exit),
            Ok(Err(why)) => Err(std::io::Error::other(why)),
            Err(_) => Err(std::io::Error::other("the node agent is gone")),
        }
    }
    fn last_line(&self) -> Arc<Mutex<String>> {
        self.last.get()
    }
}

/// Agents by key (a node, or a node's container), started on first use; one that is lost is replaced
/// by the next use.
pub struct AgentPool<K> {
    slots: Mutex<HashMap<K, Slot>>,
}

/// Where one key's agent lives; held while it starts, so that one start serves every caller.
type Slot = Arc<Mutex<Option<Arc<Agent>>>>;

impl<K> Default for AgentPool<K> {
    fn default() -> Self {
        AgentPool {
            slots: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: std::hash::Hash + Eq + Clone> AgentPool<K> {
    /// The agent for `key`, started by `start` if there is none yet (callers for the same key wait for
    /// one start; blocking: call it off the async runtime's threads when it may start one).
    pub fn get(
        &self,
        key: &K,
        start: impl FnOnce() -> Result<Agent, String>,
    ) -> Result<Arc<Agent>, String> {
        let slot = {
            let mut slots = self.slots.lock().map_err(|_| "agent pool poisoned")?;
            slots.entry(key.clone()).or_default().clone()
        };
        let mut slot = slot.lock().map_err(|_| "agent slot poisoned")?;
        if let Some(a) = slot.as_ref().filter(|a| a.lost().is_none()) {
            return Ok(a.clone());
        }
        let agent = Arc::new(start()?);
        *slot = Some(agent.clone());
        Ok(agent)
    }

    /// Places an agent started elsewhere (one of several from one launcher) under `key`.
    pub fn put(&self, key: K, agent: Arc<Agent>) {
        let slot = match self.slots.lock() {
            Ok(mut slots) => slots.entry(key).or_default().clone(),
            Err(_) => return,
        };
        let mut held = match slot.lock() {
            Ok(held) => held,
            Err(_) => return,
        };
        *held = Some(agent);
    }

    /// The agent for `key` if one is up.
    pub fn running(&self, key: &K) -> Option<Arc<Agent>> {
        let slot = self.slots.lock().ok()?.get(key)?.clone();
        let slot = slot.lock().ok()?;
        slot.as_ref().filter(|a| a.lost().is_none()).cloned()
    }

    /// Every agent started, with its key.
    pub fn all(&self) -> Vec<(K, Arc<Agent>)> {
        let slots: Vec<(K, Slot)> = self
            .slots
            .lock()
            .map(|s| s.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        slots
            .into_iter()
            .filter_map(|(k, s)| Some((k, s.lock().ok()?.clone()?)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::{check_slurmd, find_slurmd};

    /// A process named `slurmd` serving `node`: a copy of bash under that name, waiting on its input
    /// (a builtin: no child), with `-N node` among its arguments.
    fn fake_slurmd(dir: &std::path::Path, node: &str) -> std::process::Child {
        let bin = dir.join("slurmd");
        if !bin.exists() {
            std::fs::copy("/bin/bash", &bin).expect("copy bash");
        }
        std::process::Command::new(&bin)
            .args(["-c", "read -t 60 line", "-N", node])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .expect("start the stand-in")
    }

    #[test]
    fn a_slurmd_gone_is_said_and_one_started_again_is_found() {
        let dir = tempfile::tempdir().expect("tmp");
        let node = format!("srt-graph-test-{}", std::process::id());
        let mut first = fake_slurmd(dir.path(), &node);
        std::thread::sleep(std::time::Duration::from_millis(100));
        let mut seen = find_slurmd(&node).map(|pid| (pid, false));
        assert_eq!(seen, Some((first.id(), false)));
        assert_eq!(check_slurmd(&mut seen, Some(&node)), "");
        // Restarted (a new process): found again, no loss.
        let _ = first.kill();
        let _ = first.wait();
        let mut second = fake_slurmd(dir.path(), &node);
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert_eq!(check_slurmd(&mut seen, Some(&node)), "");
        assert_eq!(seen, Some((second.id(), false)));
        // Gone for good: said, and said again.
        let _ = second.kill();
        let _ = second.wait();
        let said = format!("slurmd not running (pid {} is gone)", second.id());
        assert_eq!(check_slurmd(&mut seen, Some(&node)), said);
        assert_eq!(check_slurmd(&mut seen, Some(&node)), said);
        // A node no slurmd serves is never reported.
        let mut none = None;
        assert_eq!(check_slurmd(&mut none, Some(&node)), "");
    }
}
