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
    /// Run a short command to its end; its standard output (or error) in `Done.output`.
    Run {
        id: u64,
        argv: Vec<String>,
        limit_ms: u64,
    },
}

/// What an agent says.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Reply {
    /// First line: the agent is up.
    Ready {
        pid: i32,
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

/// The agent: answers requests on stdin until it closes, then waits for its processes and returns.
pub async fn serve() -> std::io::Result<()> {
    let (tx, mut replies) = tokio::sync::mpsc::unbounded_channel::<Reply>();
    let mut out = std::io::stdout();
    write_reply(
        &mut out,
        &Reply::Ready {
            pid: std::process::id() as i32,
        },
    )?;
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let mut processes = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            line = lines.next_line() => match line {
                Ok(Some(line)) if line.trim().is_empty() => {}
                Ok(Some(line)) => match serde_json::from_str::<Request>(&line) {
                    Ok(req) => handle(req, &tx, &mut processes),
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

/// Who waits for an answer to request `id`.
#[derive(Default)]
struct Waiting {
    started: Option<oneshot::Sender<Result<(i32, i32), String>>>,
    exited: Option<oneshot::Sender<Result<Exit, String>>>,
    done: Option<std_mpsc::Sender<Result<(bool, String), String>>>,
}

#[derive(Default)]
struct Shared {
    waiting: Mutex<HashMap<u64, Waiting>>,
    /// Why the agent is gone, once it is.
    lost: Mutex<Option<String>>,
}

impl Shared {
    fn lost(&self) -> Option<String> {
        self.lost.lock().ok().and_then(|l| l.clone())
    }

    /// The agent is gone: everyone still waiting is told why.
    fn fail_all(&self, why: &str) {
        if let Ok(mut l) = self.lost.lock() {
            l.get_or_insert_with(|| why.to_string());
        }
        let waiting: Vec<Waiting> = self
            .waiting
            .lock()
            .map(|mut w| w.drain().map(|(_, v)| v).collect())
            .unwrap_or_default();
        for w in waiting {
            if let Some(s) = w.started {
                let _ = s.send(Err(why.to_string()));
            }
            if let Some(s) = w.exited {
                let _ = s.send(Err(why.to_string()));
            }
            if let Some(s) = w.done {
                let _ = s.send(Err(why.to_string()));
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

/// The orchestrator's end of one agent.
pub struct Agent {
    /// `node2`, or `node2 (container srt-graph-…)`.
    pub label: String,
    stdin: Mutex<Option<std::process::ChildStdin>>,
    shared: Arc<Shared>,
    next_id: AtomicU64,
    child: Arc<Mutex<std::process::Child>>,
    reader: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// How long an agent may take to say it is up: its launcher may first create a container (unpacking
/// the image), as a step's own `srun` would.
pub const START_LIMIT: Duration = Duration::from_secs(300);

impl Agent {
    /// Starts `launcher` (whose last words run `srt-graph node-agent` on the node) and waits until the
    /// agent says it is up. The launcher's own messages go to `errors_log`.
    pub fn start(
        label: &str,
        mut launcher: std::process::Command,
        errors_log: &std::path::Path,
        limit: Duration,
    ) -> Result<Agent, String> {
        use std::os::unix::process::CommandExt;
        let errors = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(errors_log)
            .map_err(|e| format!("cannot open {}: {e}", errors_log.display()))?;
        let mut child = launcher
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(errors)
            // Its own group: an interrupt at the terminal reaches the orchestrator, which tears down.
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot start the node agent on {label}: {e}"))?;
        let stdin = child.stdin.take();
        let stdout = child
            .stdout
            .take()
            .ok_or("the node agent has no output pipe")?;
        let child = Arc::new(Mutex::new(child));
        let shared = Arc::new(Shared::default());
        let (ready_tx, ready_rx) = std_mpsc::channel::<()>();
        let reader = {
            let (shared, child, label) = (shared.clone(), child.clone(), label.to_string());
            std::thread::spawn(move || read_replies(stdout, &shared, &child, &label, ready_tx))
        };
        let agent = Agent {
            label: label.to_string(),
            stdin: Mutex::new(stdin),
            shared,
            next_id: AtomicU64::new(1),
            child,
            reader: Mutex::new(Some(reader)),
        };
        match ready_rx.recv_timeout(limit) {
            Ok(()) => Ok(agent),
            Err(std_mpsc::RecvTimeoutError::Disconnected) => {
                agent.join_reader(Duration::from_secs(5));
                let why = agent.shared.lost().unwrap_or_default();
                let tail = crate::rundir::log_tail_of(errors_log, 6);
                Err(format!("{why}\n{tail}").trim().to_string())
            }
            Err(std_mpsc::RecvTimeoutError::Timeout) => {
                agent.kill();
                Err(format!(
                    "the node agent on {label} did not start within {}s",
                    limit.as_secs()
                ))
            }
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
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut line = serde_json::to_string(&make(id)).map_err(|e| e.to_string())?;
        line.push('\n');
        if let Ok(mut w) = self.shared.waiting.lock() {
            w.insert(id, waiting);
        }
        let written = match self.stdin.lock().ok().as_deref_mut() {
            Some(Some(stdin)) => stdin
                .write_all(line.as_bytes())
                .and_then(|()| stdin.flush()),
            _ => Err(std::io::Error::other("closed")),
        };
        if let Err(e) = written {
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

    pub fn signal(&self, pgid: i32, signal: i32) -> Result<(), String> {
        match self.ask(
            |id| Request::Signal { id, pgid, signal },
            Duration::from_secs(10),
        )? {
            (true, _) => Ok(()),
            (false, e) => Err(e),
        }
    }

    pub fn alive(&self, pgid: i32) -> Result<bool, String> {
        self.ask(|id| Request::Alive { id, pgid }, Duration::from_secs(10))
            .map(|(alive, _)| alive)
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
        let last = Arc::new(Mutex::new(String::new()));
        let offset = std::fs::metadata(&req.log).map_or(0, |m| m.len());
        let follower = crate::process::follow_last_line(req.log.clone(), offset, last.clone());
        Ok(Box::new(AgentProcess {
            pid,
            pgid,
            exited: Some(exited_rx),
            last,
            follower: Some(follower),
        }))
    }

    /// No more requests: the agent exits once its processes have.
    pub fn close(&self) {
        if let Ok(mut s) = self.stdin.lock() {
            s.take();
        }
    }

    /// Waits (bounded) for the agent to be gone after `close`; whether it is.
    pub fn join_reader(&self, limit: Duration) -> bool {
        let deadline = std::time::Instant::now() + limit;
        loop {
            let finished = self
                .reader
                .lock()
                .ok()
                .is_none_or(|r| r.as_ref().is_none_or(|h| h.is_finished()));
            if finished {
                if let Some(h) = self.reader.lock().ok().and_then(|mut r| r.take()) {
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

    /// Ends the launcher (the agent's step ends with it, and Slurm ends what the step still holds).
    pub fn kill(&self) {
        self.close();
        if let Ok(mut c) = self.child.lock() {
            let _ = c.kill();
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.close();
    }
}

/// The reader thread: replies to their waiters; at the end of the agent's output, everyone still
/// waiting learns how the agent ended.
fn read_replies(
    stdout: std::process::ChildStdout,
    shared: &Shared,
    child: &Mutex<std::process::Child>,
    label: &str,
    ready: std_mpsc::Sender<()>,
) {
    let mut ready = Some(ready);
    for line in std::io::BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        match serde_json::from_str::<Reply>(&line) {
            Ok(Reply::Ready { .. }) => {
                if let Some(r) = ready.take() {
                    let _ = r.send(());
                }
            }
            Ok(reply) => shared.dispatch(reply),
            Err(_) => tracing::debug!(agent = label, "not a reply: {line}"),
        }
    }
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
    shared.fail_all(&format!("the node agent on {label} {how}"));
}

/// A process an agent started.
struct AgentProcess {
    pid: i32,
    pgid: i32,
    exited: Option<oneshot::Receiver<Result<Exit, String>>>,
    last: Arc<Mutex<String>>,
    follower: Option<tokio::task::JoinHandle<()>>,
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
        if let Some(f) = self.follower.take() {
            f.abort();
        }
        match outcome {
            Ok(Ok(exit)) => Ok(exit),
            Ok(Err(why)) => Err(std::io::Error::other(why)),
            Err(_) => Err(std::io::Error::other("the node agent is gone")),
        }
    }
    fn last_line(&self) -> Arc<Mutex<String>> {
        self.last.clone()
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        if let Some(f) = self.follower.take() {
            f.abort();
        }
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
