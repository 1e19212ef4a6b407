//! A transport without processes, for testing the scheduler: each step's attempts follow a script
//! (exit after a delay, run until signalled, ignore SIGTERM, fail to start), and every spawn and signal
//! is recorded with the time it happened. Timing uses tokio's clock, so tests run under
//! `tokio::time::pause()` and take no wall-clock time.

use crate::transport::{
    Exit, GroupSignaller, NodeLoss, Process, SpawnRequest, Transport, TransportError,
};
use async_trait::async_trait;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

const SIGKILL: i32 = 9;
const SIGTERM: i32 = 15;

/// What one attempt of a step does.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Attempt {
    /// Exits with `code` after `after` (unless signalled first).
    Exit { after: Duration, code: i32 },
    /// Runs until a signal ends it (a service).
    UntilSignalled,
    /// Runs until SIGKILL: SIGTERM is ignored (a wedged process).
    IgnoresTerm,
    /// The transport cannot start it; `transient` as a refused connection, else as a refused host key.
    SpawnFails { transient: bool },
    /// Runs until signalled; the first signal finds its node gone: the node is reported lost and the
    /// process never reports an end.
    LosesNodeOnSignal,
}

/// What the fake transport saw, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Seen {
    Spawned {
        step: String,
        at: Duration,
    },
    Signalled {
        step: String,
        signal: i32,
        at: Duration,
    },
}

struct Group {
    step: String,
    ignores_term: bool,
    /// `Some(node)`: a signal finds this node lost (`Attempt::LosesNodeOnSignal`).
    loses_node: Option<usize>,
    /// `None` while alive, then how it ended.
    ended: watch::Sender<Option<Exit>>,
}

/// See the module comment. Steps without a script exit 0 at once (tasks) or run until signalled
/// (services, when listed with `service`).
pub struct FakeTransport {
    t0: Instant,
    scripts: Mutex<HashMap<String, VecDeque<Attempt>>>,
    groups: Mutex<HashMap<i32, Group>>,
    next_pid: Mutex<i32>,
    seen: Mutex<Vec<Seen>>,
    lost: Mutex<Vec<NodeLoss>>,
}

impl Default for FakeTransport {
    fn default() -> Self {
        FakeTransport {
            t0: Instant::now(),
            scripts: Mutex::new(HashMap::new()),
            groups: Mutex::new(HashMap::new()),
            next_pid: Mutex::new(1000),
            seen: Mutex::new(Vec::new()),
            lost: Mutex::new(Vec::new()),
        }
    }
}

impl FakeTransport {
    /// The attempts of `step`, in order; the last one repeats.
    pub fn script(self, step: &str, attempts: &[Attempt]) -> Self {
        if let Ok(mut s) = self.scripts.lock() {
            s.insert(step.into(), attempts.iter().copied().collect());
        }
        self
    }

    /// A service that runs until signalled.
    pub fn service(self, step: &str) -> Self {
        self.script(step, &[Attempt::UntilSignalled])
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// The steps spawned, with when.
    pub fn spawns(&self, step: &str) -> Vec<Duration> {
        self.seen()
            .into_iter()
            .filter_map(|s| match s {
                Seen::Spawned { step: id, at } if id == step => Some(at),
                _ => None,
            })
            .collect()
    }

    /// `(step, signal)` in the order they were sent.
    pub fn signals(&self) -> Vec<(String, i32)> {
        self.seen()
            .into_iter()
            .filter_map(|s| match s {
                Seen::Signalled { step, signal, .. } => Some((step, signal)),
                _ => None,
            })
            .collect()
    }

    fn next_attempt(&self, step: &str) -> Attempt {
        let Ok(mut scripts) = self.scripts.lock() else {
            return Attempt::UntilSignalled;
        };
        match scripts.get_mut(step) {
            Some(q) if q.len() > 1 => q.pop_front().unwrap_or(Attempt::UntilSignalled),
            Some(q) => q.front().copied().unwrap_or(Attempt::UntilSignalled),
            None => Attempt::Exit {
                after: Duration::ZERO,
                code: 0,
            },
        }
    }

    fn note(&self, s: Seen) {
        if let Ok(mut seen) = self.seen.lock() {
            seen.push(s);
        }
    }
}

struct FakeProcess {
    pgid: i32,
    attempt: Attempt,
    ended: watch::Receiver<Option<Exit>>,
}

#[async_trait]
impl Process for FakeProcess {
    fn pid(&self) -> i32 {
        self.pgid
    }
    fn pgid(&self) -> i32 {
        self.pgid
    }
    async fn wait(&mut self) -> std::io::Result<Exit> {
        let signalled = async {
            match self.ended.wait_for(Option::is_some).await {
                Ok(e) => e.unwrap_or(Exit::Signal(SIGKILL)),
                Err(_) => Exit::Signal(SIGKILL),
            }
        };
        Ok(match self.attempt {
            Attempt::Exit { after, code } => tokio::select! {
                e = signalled => e,
                _ = tokio::time::sleep(after) => Exit::Code(code),
            },
            _ => signalled.await,
        })
    }
    fn last_line(&self) -> Arc<Mutex<String>> {
        Arc::new(Mutex::new(String::new()))
    }
}

impl GroupSignaller for FakeTransport {
    fn signal_group(&self, _node: usize, pgid: i32, signal: i32) -> std::io::Result<()> {
        let Ok(groups) = self.groups.lock() else {
            return Ok(());
        };
        let Some(g) = groups.get(&pgid) else {
            return Ok(());
        };
        self.note(Seen::Signalled {
            step: g.step.clone(),
            signal,
            at: self.t0.elapsed(),
        });
        if let Some(node) = g.loses_node {
            if let Ok(mut lost) = self.lost.lock() {
                if !lost.iter().any(|l| l.node == node) {
                    lost.push(NodeLoss {
                        node,
                        name: format!("node{node}"),
                        reason: "scripted loss".into(),
                    });
                }
            }
            return Ok(());
        }
        if signal == SIGKILL || (signal == SIGTERM && !g.ignores_term) {
            g.ended.send_if_modified(|e| {
                let alive = e.is_none();
                if alive {
                    *e = Some(Exit::Signal(signal));
                }
                alive
            });
        }
        Ok(())
    }

    fn group_alive(&self, _node: usize, pgid: i32) -> bool {
        self.groups
            .lock()
            .ok()
            .and_then(|g| g.get(&pgid).map(|g| g.ended.borrow().is_none()))
            .unwrap_or(false)
    }

    fn machines(&self) -> Vec<usize> {
        vec![0]
    }

    fn tagged_groups(&self, _node: usize, _run_dir: &str) -> Vec<(String, i32)> {
        Vec::new()
    }

    fn pid_file_group(&self, _node: usize, _pid_file: &str) -> Option<i32> {
        None
    }
}

#[async_trait]
impl Transport for FakeTransport {
    fn name(&self) -> &'static str {
        "fake"
    }

    fn lost_nodes(&self) -> Vec<NodeLoss> {
        self.lost.lock().map(|l| l.clone()).unwrap_or_default()
    }

    async fn spawn(&self, req: &SpawnRequest) -> Result<Box<dyn Process>, TransportError> {
        let attempt = self.next_attempt(&req.step);
        self.note(Seen::Spawned {
            step: req.step.clone(),
            at: self.t0.elapsed(),
        });
        if let Attempt::SpawnFails { transient } = attempt {
            let (node, detail) = (format!("node{}", req.node), "scripted failure".into());
            return Err(if transient {
                TransportError::Unreachable { node, detail }
            } else {
                TransportError::Refused { node, detail }
            });
        }
        let pgid = {
            let mut next = self
                .next_pid
                .lock()
                .map_err(|_| TransportError::EmptyCommand)?;
            *next += 1;
            *next
        };
        let (tx, rx) = watch::channel(None);
        if let Ok(mut groups) = self.groups.lock() {
            groups.insert(
                pgid,
                Group {
                    step: req.step.clone(),
                    ignores_term: attempt == Attempt::IgnoresTerm,
                    loses_node: (attempt == Attempt::LosesNodeOnSignal).then_some(req.node),
                    ended: tx.clone(),
                },
            );
        }
        // A scripted exit ends the group too (nothing of it lives on).
        if let Attempt::Exit { after, code } = attempt {
            tokio::spawn(async move {
                tokio::time::sleep(after).await;
                tx.send_if_modified(|e| {
                    let alive = e.is_none();
                    if alive {
                        *e = Some(Exit::Code(code));
                    }
                    alive
                });
            });
        }
        Ok(Box::new(FakeProcess {
            pgid,
            attempt,
            ended: rx,
        }))
    }
}
