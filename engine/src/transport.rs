//! How a step's command reaches a node. One trait; quoting, if a transport needs any, happens inside it.

use async_trait::async_trait;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use thiserror::Error;

/// What to start: an argv (never a shell string), its environment and working directory.
#[derive(Debug, Clone)]
pub struct SpawnRequest {
    pub step: String,
    pub node: usize,
    pub argv: Vec<String>,
    /// Added to the transport's base environment.
    pub env: BTreeMap<String, String>,
    pub cwd: Option<String>,
    /// stdout and stderr go here, one timestamped line at a time.
    pub log: PathBuf,
    pub container: Option<crate::plan::Container>,
    /// Launch as one MPI job across nodes (Slurm); other transports run it on `node` alone.
    pub mpi: Option<crate::plan::Mpi>,
    /// Secret values to keep out of the log (and out of any argv: `env` values never go there).
    pub redact: crate::secret::Redactor,
}

#[derive(Debug, Error)]
pub enum TransportError {
    #[error("cannot start `{program}`: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("empty command")]
    EmptyCommand,
    #[error("cannot open log {path}: {source}")]
    Log {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("an argument holds a NUL byte; it cannot be passed to a remote command")]
    Unquotable,
    #[error("`{0}` is not a valid environment variable name (letters, digits and `_`, not starting with a digit)")]
    BadEnvName(String),
    /// The node could not be reached (connection refused, timed out, dropped): worth a retry.
    #[error("{node} unreachable: {detail}")]
    Unreachable { node: String, detail: String },
    /// Reached, but refused for a reason a retry cannot cure (host key, authentication, unknown host,
    /// missing container support).
    #[error("{node}: {detail}")]
    Refused { node: String, detail: String },
}

impl TransportError {
    /// Whether a retry may cure it.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            TransportError::Spawn { .. } | TransportError::Unreachable { .. }
        )
    }
}

/// Opens a step's log for appending (attempts append to one file).
pub async fn open_log(path: &std::path::Path) -> Result<tokio::fs::File, TransportError> {
    tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .await
        .map_err(|source| TransportError::Log {
            path: path.display().to_string(),
            source,
        })
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
}

impl Exit {
    pub fn success(self) -> bool {
        self == Exit::Code(0)
    }
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exit::Code(c) => write!(f, "exit code {c}"),
            Exit::Signal(s) => write!(f, "killed by signal {s}"),
        }
    }
}

/// A node of the run that is gone (Slurm took it out, or it stopped answering).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeLoss {
    /// Logical node.
    pub node: usize,
    /// The node's name where it runs (`node2`).
    pub name: String,
    /// Why it counts as lost (`slurmd not responding`, `drained: bad dimm`).
    pub reason: String,
}

/// The nodes a watch found lost, shared by the watch and its transport.
#[derive(Debug, Clone, Default)]
pub struct Losses(Arc<Mutex<Vec<NodeLoss>>>);

impl Losses {
    /// Every loss so far, in the order seen.
    pub fn all(&self) -> Vec<NodeLoss> {
        self.0.lock().map(|l| l.clone()).unwrap_or_default()
    }

    pub fn has(&self, node: usize) -> bool {
        self.0
            .lock()
            .is_ok_and(|l| l.iter().any(|x| x.node == node))
    }

    pub fn has_name(&self, name: &str) -> bool {
        self.0
            .lock()
            .is_ok_and(|l| l.iter().any(|x| x.name == name))
    }

    /// `name` is lost: every logical node on it (`names`: logical node → name), once each.
    pub fn record(&self, names: &[String], name: &str, reason: &str) {
        let Ok(mut l) = self.0.lock() else { return };
        for (k, _) in names.iter().enumerate().filter(|(_, n)| *n == name) {
            if !l.iter().any(|x| x.node == k) {
                tracing::warn!(node = %name, %reason, "node lost");
                l.push(NodeLoss {
                    node: k,
                    name: name.to_string(),
                    reason: reason.to_string(),
                });
            }
        }
    }
}

/// A started process: its group can be signalled while someone else waits for it.
#[async_trait]
pub trait Process: Send {
    fn pid(&self) -> i32;
    /// Process group id; signals go to the whole group (launchers fork).
    fn pgid(&self) -> i32;
    async fn wait(&mut self) -> std::io::Result<Exit>;
    /// The last line the process printed (for progress display).
    fn last_line(&self) -> Arc<Mutex<String>>;
}

/// Reaches process groups recorded earlier (works without the `Process` handle, from another orchestrator
/// process too: `down`, `resume`).
pub trait GroupSignaller: Send + Sync {
    fn signal_group(&self, node: usize, pgid: i32, signal: i32) -> std::io::Result<()>;
    /// Whether any process of the group is still alive.
    fn group_alive(&self, node: usize, pgid: i32) -> bool;
    /// One node per distinct machine: where to look for processes of a run.
    fn machines(&self) -> Vec<usize>;
    /// Live processes on `node`'s machine tagged with the run directory: `(step, pgid)`.
    fn tagged_groups(&self, node: usize, run_dir: &str) -> Vec<(String, i32)>;
    /// The live process group of the pid written in `pid_file` on `node`.
    fn pid_file_group(&self, node: usize, pid_file: &str) -> Option<i32>;
    /// Removes the named containers the plan's steps ran in, on each node that ran one (they outlive
    /// the processes, and the job); `(node, container)` for each removed. Transports without
    /// containers have none.
    fn remove_containers(
        &self,
        _plan: &crate::plan::Plan,
    ) -> Result<Vec<(String, String)>, String> {
        Ok(Vec::new())
    }
}

#[async_trait]
pub trait Transport: GroupSignaller {
    fn name(&self) -> &'static str;
    /// The plan about to run, before its first spawn (a transport that starts per-node helpers for
    /// it, such as the Slurm one's container agents, learns where they are needed).
    fn will_run(&self, _plan: &crate::plan::Plan) {}
    async fn spawn(&self, req: &SpawnRequest) -> Result<Box<dyn Process>, TransportError>;
    /// The nodes lost so far (each once, in the order seen): read often, so kept cheap. Transports
    /// that cannot tell have none.
    fn lost_nodes(&self) -> Vec<NodeLoss> {
        Vec::new()
    }
    /// Who listens on `addr:port` on that node (pid and command line), for "address already in use"
    /// failures.
    fn port_holder(&self, _node: usize, _addr: &str, _port: u16) -> Option<String> {
        None
    }
}
