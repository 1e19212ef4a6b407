//! The ssh transport: the system `ssh` (so `~/.ssh/config`, agents, jump hosts and keys work as the user
//! has them), multiplexed over ControlMaster connections opened in parallel at start and closed at the end.
//!
//! sshd allows 10 sessions per connection (`MaxSessions`), and every running command holds one (its output
//! streams back through it), so each host gets a pool of masters with at most `sessions_per_connection`
//! sessions each; a new master opens only when all are full.

use crate::process::{RUN_TAG, STEP_TAG};
use crate::remote::{self, run_captured, shell_line, NodeShell};
use crate::transport::{GroupSignaller, Process, SpawnRequest, Transport, TransportError};
use async_trait::async_trait;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Bound on a node operation (signal, probe) over ssh.
const OP_LIMIT: Duration = Duration::from_secs(20);

#[derive(Debug, Clone)]
pub struct SshOptions {
    /// ssh destination of each logical node (several nodes may share a host).
    pub hosts: Vec<String>,
    /// `ssh -F FILE`; `None` = the user's own configuration.
    pub config: Option<PathBuf>,
    /// `srt-graph` on the hosts (answers node operations).
    pub node_tool: String,
    /// Where the control sockets live (a short path: sockets are limited to ~100 bytes).
    pub control_dir: PathBuf,
    pub sessions_per_connection: usize,
}

pub struct SshTransport {
    opts: SshOptions,
    /// Distinct hosts, in first-use order; a master's socket is named by its host's index here.
    distinct: Vec<String>,
    /// Open sessions per master, per host.
    pool: Arc<Mutex<HashMap<String, Vec<usize>>>>,
    /// Serialises opening masters after start.
    opening: Mutex<()>,
    /// Host loss, watched from the first spawn on.
    watch: std::sync::OnceLock<crate::ssh_watch::Watch>,
}

/// A session slot on one master; freed on drop.
struct Slot {
    pool: Arc<Mutex<HashMap<String, Vec<usize>>>>,
    host: String,
    master: usize,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Ok(mut pool) = self.pool.lock() {
            if let Some(n) = pool
                .get_mut(&self.host)
                .and_then(|v| v.get_mut(self.master))
            {
                *n = n.saturating_sub(1);
            }
        }
    }
}

/// What ssh's own error output means: a retry cures a dropped or refused connection, not a host key or
/// authentication failure.
fn classify(host: &str, text: &str) -> TransportError {
    let lower = text.to_ascii_lowercase();
    let fatal = [
        ("host key verification failed", "the host key does not match the one on record (known_hosts); fix known_hosts, nothing was retried"),
        ("remote host identification has changed", "the host key changed; fix known_hosts, nothing was retried"),
        ("permission denied", "authentication failed (permission denied); check the user, key or agent, nothing was retried"),
        ("could not resolve hostname", "unknown host name; check --hosts / the hostfile / ssh config"),
    ];
    let detail = text.trim().lines().last().unwrap_or("").trim().to_string();
    for (needle, what) in fatal {
        if lower.contains(needle) {
            return TransportError::Refused {
                node: host.to_string(),
                detail: format!(
                    "{what}\n    ssh said: {}",
                    text.trim().replace('\n', "\n    ")
                ),
            };
        }
    }
    TransportError::Unreachable {
        node: host.to_string(),
        detail: if detail.is_empty() {
            "ssh failed without a message".into()
        } else {
            detail
        },
    }
}

impl SshTransport {
    /// Opens one master per distinct host, in parallel; fails (closing what it opened) if any host
    /// cannot be reached.
    pub fn connect(opts: SshOptions) -> Result<SshTransport, TransportError> {
        let mut distinct: Vec<String> = Vec::new();
        for h in &opts.hosts {
            if !distinct.contains(h) {
                distinct.push(h.clone());
            }
        }
        std::fs::create_dir_all(&opts.control_dir).map_err(|source| TransportError::Spawn {
            program: format!("mkdir {}", opts.control_dir.display()),
            source,
        })?;
        let t = SshTransport {
            opts,
            distinct,
            pool: Arc::new(Mutex::new(HashMap::new())),
            opening: Mutex::new(()),
            watch: std::sync::OnceLock::new(),
        };
        let results: Vec<Result<(), TransportError>> = std::thread::scope(|s| {
            let handles: Vec<_> = t
                .distinct
                .iter()
                .map(|h| s.spawn(|| t.open_master(h, 0)))
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(TransportError::Unreachable {
                            node: "?".into(),
                            detail: "connection thread failed".into(),
                        })
                    })
                })
                .collect()
        });
        let mut errors: Vec<TransportError> = results.into_iter().filter_map(Result::err).collect();
        if errors.is_empty() {
            if let Ok(mut pool) = t.pool.lock() {
                for h in &t.distinct {
                    pool.insert(h.clone(), vec![0]);
                }
            }
            return Ok(t);
        }
        t.close();
        // A refusal says more than a timeout next to it.
        errors.sort_by_key(|e| e.is_transient());
        Err(errors.remove(0))
    }

    fn ssh(&self) -> std::process::Command {
        let mut c = std::process::Command::new("ssh");
        if let Some(cfg) = &self.opts.config {
            c.arg("-F").arg(cfg);
        }
        c.args(["-T", "-o", "BatchMode=yes", "-o", "ConnectTimeout=15"]);
        c
    }

    fn control_path(&self, host: &str, master: usize) -> PathBuf {
        let k = self.distinct.iter().position(|h| h == host).unwrap_or(0);
        self.opts.control_dir.join(format!("{k}-{master}"))
    }

    /// Reuses a live master at this socket (a resumed run), else starts one that backgrounds itself once
    /// authenticated.
    fn open_master(&self, host: &str, master: usize) -> Result<(), TransportError> {
        let path = self.control_path(host, master);
        let check = self
            .ssh()
            .arg("-o")
            .arg(format!("ControlPath={}", path.display()))
            .args(["-O", "check", "--", host])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if check.is_ok_and(|s| s.success()) {
            return Ok(());
        }
        let _ = std::fs::remove_file(&path);
        let errlog = path.with_extension("log");
        let _ = std::fs::remove_file(&errlog);
        // `-f` forks after authentication; the forked master keeps no pipe of ours (its messages go to
        // `-E`), so waiting for this command cannot hang on it.
        let status = self
            .ssh()
            .arg("-o")
            .arg(format!("ControlPath={}", path.display()))
            .args([
                "-o",
                "ControlMaster=yes",
                "-o",
                // A master whose orchestrator died (kill -9) exits once idle this long; a live run
                // reopens a master that went away (see `acquire`).
                "ControlPersist=10m",
                "-o",
                // A host that stops answering ends the master within 6 s (the watch then asks
                // whether the host answers at all).
                "ServerAliveInterval=2",
                "-o",
                "ServerAliveCountMax=3",
                "-E",
            ])
            .arg(&errlog)
            .args(["-f", "-N", "--", host])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(|source| TransportError::Spawn {
                program: "ssh".into(),
                source,
            })?;
        if status.success() {
            return Ok(());
        }
        let said = std::fs::read_to_string(&errlog).unwrap_or_default();
        Err(classify(host, &said))
    }

    /// Closes every master this transport may have opened (again: harmless).
    pub fn close(&self) {
        let counts: Vec<(String, usize)> = self.pool.lock().map_or_else(
            |_| Vec::new(),
            |p| p.iter().map(|(h, v)| (h.clone(), v.len().max(1))).collect(),
        );
        let counts = if counts.is_empty() {
            self.distinct.iter().map(|h| (h.clone(), 1)).collect()
        } else {
            counts
        };
        for (host, n) in counts {
            for m in 0..n {
                let path = self.control_path(&host, m);
                let _ = self
                    .ssh()
                    .arg("-o")
                    .arg(format!("ControlPath={}", path.display()))
                    .args(["-O", "exit", "--", &host])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
                let _ = std::fs::remove_file(path.with_extension("log"));
            }
        }
        // Only if empty: a master that refused to exit keeps its socket.
        let _ = std::fs::remove_dir(&self.opts.control_dir);
    }

    fn host(&self, node: usize) -> Result<&str, TransportError> {
        self.opts
            .hosts
            .get(node)
            .map(String::as_str)
            .ok_or_else(|| TransportError::Refused {
                node: format!("node {node}"),
                detail: format!("only {} host(s) were given", self.opts.hosts.len()),
            })
    }

    /// A session slot on a master of `host` with room, opening another master when all are full.
    fn acquire(&self, host: &str) -> Result<(Slot, PathBuf), TransportError> {
        let cap = self.opts.sessions_per_connection.max(1);
        let master = {
            let mut pool = self.pool.lock().map_err(|_| TransportError::Unreachable {
                node: host.into(),
                detail: "session pool poisoned".into(),
            })?;
            let masters = pool.entry(host.to_string()).or_insert_with(|| vec![0]);
            match masters.iter().position(|&n| n < cap) {
                Some(m) => {
                    masters[m] += 1;
                    m
                }
                None => {
                    // A new master, its first slot reserved; it is opened below.
                    masters.push(1);
                    masters.len() - 1
                }
            }
        };
        // Held from here: a failed open gives the slot back.
        let slot = Slot {
            pool: self.pool.clone(),
            host: host.to_string(),
            master,
        };
        let path = self.control_path(host, master);
        if !path.exists() {
            // New, or gone (idle past ControlPersist, killed): one opener at a time, and whoever comes
            // second finds it open.
            let _opening = self
                .opening
                .lock()
                .map_err(|_| TransportError::Unreachable {
                    node: host.into(),
                    detail: "connection lock poisoned".into(),
                })?;
            if !path.exists() {
                tracing::debug!(host, master, "opening a connection");
                self.open_master(host, master)?;
            }
        }
        Ok((slot, path))
    }

    fn session(&self, path: &Path, host: &str, line: &str) -> std::process::Command {
        let mut c = self.ssh();
        c.arg("-o")
            .arg(format!("ControlPath={}", path.display()))
            .args(["-o", "ControlMaster=no", "--", host, line]);
        c
    }
}

/// The address of an ssh destination for URLs: `ssh -G` resolves aliases (`HostName`), then the name is
/// looked up here; a name that does not resolve is kept as it is.
pub fn resolve_address(config: Option<&Path>, host: &str) -> Result<String, TransportError> {
    let mut c = std::process::Command::new("ssh");
    if let Some(cfg) = config {
        c.arg("-F").arg(cfg);
    }
    c.args(["-G", "--", host]);
    let out =
        run_captured(&mut c, Duration::from_secs(10)).map_err(|e| TransportError::Refused {
            node: host.into(),
            detail: format!("`ssh -G` failed: {e}"),
        })?;
    let name = out
        .lines()
        .find_map(|l| l.strip_prefix("hostname "))
        .map(str::trim)
        .unwrap_or(host)
        .to_string();
    if name.parse::<std::net::IpAddr>().is_ok() {
        return Ok(name);
    }
    use std::net::ToSocketAddrs;
    Ok((name.as_str(), 22)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.find(|a| a.is_ipv4()))
        .map_or(name, |a| a.ip().to_string()))
}

impl Drop for SshTransport {
    /// Masters are closed however the transport goes away (a panic included); the watch first, so
    /// that closing them is no loss.
    fn drop(&mut self) {
        if let Some(w) = self.watch.get() {
            w.stop();
        }
        self.close();
    }
}

impl SshTransport {
    fn start_watch(&self) {
        self.watch.get_or_init(|| {
            let sockets = self
                .distinct
                .iter()
                .map(|h| (h.clone(), self.control_path(h, 0)))
                .collect();
            let config = self.opts.config.clone();
            crate::ssh_watch::Watch::start(
                self.opts.hosts.clone(),
                sockets,
                Box::new(move |host| {
                    let mut c = std::process::Command::new("ssh");
                    if let Some(cfg) = &config {
                        c.arg("-F").arg(cfg);
                    }
                    c.args([
                        "-T",
                        "-o",
                        "BatchMode=yes",
                        "-o",
                        "ConnectTimeout=5",
                        "-o",
                        "ControlPath=none",
                        "--",
                        host,
                        "true",
                    ]);
                    run_captured(&mut c, Duration::from_secs(10)).map(|_| ())
                }),
            )
        });
    }

    /// A lost host is not waited on: it may never answer.
    fn refuse_lost(&self, node: usize) -> std::io::Result<()> {
        match self.watch.get().filter(|w| w.is_lost(node)) {
            Some(_) => Err(std::io::Error::other(format!(
                "{} is lost",
                self.host(node).unwrap_or("the host")
            ))),
            None => Ok(()),
        }
    }
}

impl NodeShell for SshTransport {
    fn run_on(&self, node: usize, argv: &[String]) -> Result<String, String> {
        let host = self.host(node).map_err(|e| e.to_string())?;
        let line = shell_line(argv).map_err(|e| e.to_string())?;
        let (_slot, path) = self.acquire(host).map_err(|e| e.to_string())?;
        run_captured(&mut self.session(&path, host, &line), OP_LIMIT)
    }
    fn node_tool(&self) -> &str {
        &self.opts.node_tool
    }
}

impl GroupSignaller for SshTransport {
    fn signal_group(&self, node: usize, pgid: i32, signal: i32) -> std::io::Result<()> {
        self.refuse_lost(node)?;
        remote::signal_group(self, node, pgid, signal)
    }
    fn group_alive(&self, node: usize, pgid: i32) -> bool {
        self.refuse_lost(node).is_ok() && remote::group_alive(self, node, pgid)
    }
    fn machines(&self) -> Vec<usize> {
        self.distinct
            .iter()
            .filter_map(|h| self.opts.hosts.iter().position(|x| x == h))
            .collect()
    }
    fn tagged_groups(&self, node: usize, run_dir: &str) -> Vec<(String, i32)> {
        remote::tagged_groups(self, node, run_dir)
    }
    fn pid_file_group(&self, node: usize, pid_file: &str) -> Option<i32> {
        remote::pid_file_group(self, node, pid_file)
    }
}

#[async_trait]
impl Transport for SshTransport {
    fn name(&self) -> &'static str {
        "ssh"
    }

    fn port_holder(&self, node: usize, addr: &str, port: u16) -> Option<String> {
        remote::port_holder(self, node, addr, port)
    }

    fn lost_nodes(&self) -> Vec<crate::transport::NodeLoss> {
        self.watch
            .get()
            .map(crate::ssh_watch::Watch::losses)
            .unwrap_or_default()
    }

    async fn spawn(&self, req: &SpawnRequest) -> Result<Box<dyn Process>, TransportError> {
        if req.argv.is_empty() {
            return Err(TransportError::EmptyCommand);
        }
        self.start_watch();
        let host = self.host(req.node)?.to_string();
        // The environment follows on the session's standard input, never in an argv: every user of
        // either machine can read argvs (`ps`), only the owner can read a process's environment.
        let line = shell_line(&remote::wrapped_env_on_stdin(req.cwd.as_deref(), &req.argv))?;
        let env = remote::env_script(&req.env)?;
        // Opening another master blocks for a connection: keep it off the event loop.
        let (slot, path) = tokio::task::block_in_place(|| self.acquire(&host))?;
        let mut cmd = tokio::process::Command::from(self.session(&path, &host, &line));
        // The local client carries the run tag too, so `down` finds it if the orchestrator dies.
        for tag in [RUN_TAG, STEP_TAG] {
            if let Some(v) = req.env.get(tag) {
                cmd.env(tag, v);
            }
        }
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(false);
        let mut child = cmd.spawn().map_err(|source| TransportError::Spawn {
            program: "ssh".into(),
            source,
        })?;
        if let Some(mut stdin) = child.stdin.take() {
            // Closed after the script: the wrapper reads to its end. A failed write shows up as the
            // wrapper's exit (126) with the session's own error in the log.
            tokio::spawn(async move {
                use tokio::io::AsyncWriteExt;
                let _ = stdin.write_all(env.as_bytes()).await;
            });
        }
        let slot = Some(Box::new(slot) as Box<dyn Send + Sync>);
        remote::start_piped(child, &req.log, &host, classify, slot, &req.redact).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_key_and_auth_failures_are_not_retried() {
        let e = classify("h1", "Host key verification failed.\n");
        assert!(!e.is_transient(), "{e}");
        assert!(e.to_string().contains("known_hosts"));
        let e = classify("h1", "root@h1: Permission denied (publickey).");
        assert!(!e.is_transient());
        let e = classify(
            "h1",
            "ssh: connect to host 127.0.1.9 port 22: Connection refused",
        );
        assert!(e.is_transient());
        assert!(e.to_string().contains("Connection refused"));
    }
}
