//! The local transport: every node is this machine; each step runs in its own process group and its
//! output is copied line by line, timestamped, into its log file.

use crate::transport::{
    open_log, Exit, GroupSignaller, Process, SpawnRequest, Transport, TransportError,
};
use async_trait::async_trait;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// Environment variables that tag every process a run starts (value: the run directory, the step id).
pub const RUN_TAG: &str = "SRT_GRAPH_RUN";
pub const STEP_TAG: &str = "SRT_GRAPH_STEP";

#[derive(Debug, Default, Clone)]
pub struct LocalTransport;

/// A process started here: the step's command itself (local), or the client (`ssh`, `srun`) that runs it
/// on a node, with the pid and process group of the command there.
pub struct ChildProcess {
    pub child: tokio::process::Child,
    pub pid: i32,
    pub pgid: i32,
    pub last: Arc<Mutex<String>>,
    pub copiers: Vec<tokio::task::JoinHandle<()>>,
    /// Follows a log the process writes itself (Slurm `--output`); stopped as soon as it exits.
    pub follower: Option<tokio::task::JoinHandle<()>>,
    /// Released when the process ends (an ssh session slot).
    pub slot: Option<Box<dyn Send + Sync>>,
}

#[async_trait]
impl Process for ChildProcess {
    fn pid(&self) -> i32 {
        self.pid
    }
    fn pgid(&self) -> i32 {
        self.pgid
    }
    async fn wait(&mut self) -> std::io::Result<Exit> {
        let status = self.child.wait().await?;
        if let Some(f) = self.follower.take() {
            f.abort();
        }
        drain(std::mem::take(&mut self.copiers)).await;
        self.slot = None;
        Ok(match (status.code(), status.signal()) {
            (Some(c), _) => Exit::Code(c),
            (None, Some(s)) => Exit::Signal(s),
            (None, None) => Exit::Code(-1),
        })
    }
    fn last_line(&self) -> Arc<Mutex<String>> {
        self.last.clone()
    }
}

/// `HH:MM:SS.mmm` in UTC, for log lines.
pub fn clock() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs() % 86_400;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60,
        now.subsec_millis()
    )
}

/// Starts a copier for each of the child's stdout and stderr (see `copier`).
pub(crate) fn copy_output(
    child: &mut tokio::process::Child,
    log: Arc<tokio::sync::Mutex<tokio::fs::File>>,
    last: &Arc<Mutex<String>>,
    pid_tx: Option<tokio::sync::mpsc::UnboundedSender<(i32, i32)>>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut copiers = Vec::new();
    if let Some(out) = child.stdout.take() {
        copiers.push(copier(out, log.clone(), last.clone(), pid_tx.clone()));
    }
    if let Some(err) = child.stderr.take() {
        copiers.push(copier(err, log, last.clone(), pid_tx));
    }
    copiers
}

/// Lets copiers drain what a process wrote before it exited, bounded (a forked grandchild may hold the
/// pipe open), then stops them.
pub(crate) async fn drain(copiers: Vec<tokio::task::JoinHandle<()>>) {
    for mut c in copiers {
        let _ = tokio::time::timeout(std::time::Duration::from_millis(500), &mut c).await;
        c.abort();
    }
}

/// Copies a process's output into its log, one timestamped line at a time. With `pid_tx`, a remote
/// wrapper's pid line is also sent there (see `remote`).
fn copier<R>(
    reader: R,
    log: Arc<tokio::sync::Mutex<tokio::fs::File>>,
    last: Arc<Mutex<String>>,
    pid_tx: Option<tokio::sync::mpsc::UnboundedSender<(i32, i32)>>,
) -> tokio::task::JoinHandle<()>
where
    R: tokio::io::AsyncRead + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let mut reader = BufReader::new(reader);
        let mut buf = Vec::with_capacity(256);
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buf);
                    let line = line.trim_end_matches(['\n', '\r']);
                    if let Some(tx) = &pid_tx {
                        if let Some(ids) = crate::remote::parse_pid_line(line) {
                            let _ = tx.send(ids);
                        }
                    }
                    if let Ok(mut l) = last.lock() {
                        l.clear();
                        l.push_str(line);
                    }
                    let mut f = log.lock().await;
                    let _ = f
                        .write_all(format!("[{}] {line}\n", clock()).as_bytes())
                        .await;
                }
            }
        }
        let _ = log.lock().await.flush().await;
    })
}

#[async_trait]
impl Transport for LocalTransport {
    fn name(&self) -> &'static str {
        "local"
    }

    fn port_holder(&self, _node: usize, addr: &str, port: u16) -> Option<String> {
        let holders = port_holders(addr, port);
        (!holders.is_empty()).then(|| holders.join(", "))
    }

    async fn spawn(&self, req: &SpawnRequest) -> Result<Box<dyn Process>, TransportError> {
        let (program, args) = req.argv.split_first().ok_or(TransportError::EmptyCommand)?;
        let log = Arc::new(tokio::sync::Mutex::new(open_log(&req.log).await?));
        let mut cmd = tokio::process::Command::new(program);
        cmd.args(args)
            .envs(&req.env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Own process group: teardown signals the group, so forked children go too.
            .process_group(0)
            .kill_on_drop(false);
        if let Some(dir) = &req.cwd {
            cmd.current_dir(dir);
        }
        let mut child = cmd.spawn().map_err(|source| TransportError::Spawn {
            program: program.clone(),
            source,
        })?;
        let pid = child.id().map_or(-1, |p| p as i32);
        let last = Arc::new(Mutex::new(String::new()));
        let copiers = copy_output(&mut child, log, &last, None);
        Ok(Box::new(ChildProcess {
            child,
            pid,
            pgid: pid,
            last,
            copiers,
            follower: None,
            slot: None,
        }))
    }
}

/// Listening TCP sockets on `addr:port` (or the wildcard address, which also blocks it), from
/// `/proc/net/tcp{,6}`, mapped to the processes that hold them through `/proc/*/fd`: `pid (command line)`.
pub fn port_holders(addr: &str, port: u16) -> Vec<String> {
    // /proc/net/tcp writes an IPv4 address as the hex of its in-memory (little-endian) u32.
    let want: Option<String> = addr
        .parse::<std::net::Ipv4Addr>()
        .ok()
        .map(|ip| format!("{:08X}", u32::from_le_bytes(ip.octets())));
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            // local_address is HEXIP:HEXPORT; state 0A is LISTEN; the inode is field 9.
            let listening = f.get(3) == Some(&"0A");
            let local = f.get(1).and_then(|a| a.rsplit_once(':'));
            let on_port = local.and_then(|(_, p)| u16::from_str_radix(p, 16).ok()) == Some(port);
            let on_addr = local.is_some_and(|(a, _)| {
                a.chars().all(|c| c == '0')
                    || want.as_deref().is_none_or(|w| a.eq_ignore_ascii_case(w))
            });
            let on_port = on_port && on_addr;
            if listening && on_port {
                if let Some(inode) = f.get(9) {
                    inodes.push(format!("socket:[{inode}]"));
                }
            }
        }
    }
    if inodes.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return out;
    };
    for p in procs.flatten() {
        let Some(pid) = p.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        let holds = fds
            .flatten()
            .filter_map(|fd| std::fs::read_link(fd.path()).ok())
            .any(|l| inodes.iter().any(|i| l.as_os_str() == i.as_str()));
        if holds {
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| {
                    String::from_utf8_lossy(&c)
                        .replace('\0', " ")
                        .trim()
                        .to_string()
                })
                .unwrap_or_default();
            out.push(format!("pid {pid} ({cmd})"));
        }
    }
    out
}

impl GroupSignaller for LocalTransport {
    fn signal_group(&self, _node: usize, pgid: i32, signal: i32) -> std::io::Result<()> {
        if pgid <= 1 {
            return Ok(());
        }
        let sig = Signal::try_from(signal).map_err(std::io::Error::from)?;
        match killpg(Pid::from_raw(pgid), sig) {
            Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    fn group_alive(&self, _node: usize, pgid: i32) -> bool {
        pgid > 1 && !live_group_members(pgid).is_empty()
    }

    fn machines(&self) -> Vec<usize> {
        vec![0]
    }

    fn tagged_groups(&self, _node: usize, run_dir: &str) -> Vec<(String, i32)> {
        tagged_processes(run_dir)
            .into_iter()
            .map(|(step, _, pgid)| (step, pgid))
            .collect()
    }

    fn pid_file_group(&self, _node: usize, pid_file: &str) -> Option<i32> {
        pid_file_group(pid_file)
    }
}

/// The process group of `pid` if it is alive and not a zombie, from `/proc/<pid>/stat`.
fn live_pgid(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the `(comm)`, which may itself contain spaces and parentheses.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?;
    let _ppid = fields.next();
    let pgid = fields.next()?.parse::<i32>().ok()?;
    (state != "Z" && state != "X").then_some(pgid)
}

/// Pids of the group's processes that are not zombies (a zombie holds no resources, and init may be slow
/// to reap it), read from `/proc`.
pub fn live_group_members(pgid: i32) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        // No procfs: fall back to "the group exists".
        return if killpg(Pid::from_raw(pgid), None).is_ok() {
            vec![pgid]
        } else {
            vec![]
        };
    };
    let mut out = Vec::new();
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if live_pgid(pid) == Some(pgid) {
            out.push(pid);
        }
    }
    out
}

/// Live (non-zombie) processes on this machine tagged with `run_dir`: `(step, pid, pgid)`, from
/// `/proc/*/environ`. Finds what the journal may not know (a spawn the orchestrator died before recording).
/// Programs that rewrite their environment (nginx) lose the tag; their steps declare a pid file instead.
pub fn tagged_processes(run_dir: &str) -> Vec<(String, i32, i32)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let want = format!("{RUN_TAG}={run_dir}");
    let step_prefix = format!("{STEP_TAG}=");
    let mut out = Vec::new();
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        let vars: Vec<&[u8]> = environ.split(|&b| b == 0).collect();
        if !vars.contains(&want.as_bytes()) {
            continue;
        }
        let step = vars
            .iter()
            .find_map(|v| v.strip_prefix(step_prefix.as_bytes()))
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_default();
        if let Some(pgid) = live_pgid(pid) {
            out.push((step, pid, pgid));
        }
    }
    out
}

/// The process group of the live process whose pid a service wrote to `pid_file`, if any.
pub fn pid_file_group(pid_file: &str) -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(pid_file)
        .ok()?
        .trim()
        .parse()
        .ok()?;
    if pid <= 1 {
        return None;
    }
    let pgid = nix::unistd::getpgid(Some(Pid::from_raw(pid)))
        .ok()?
        .as_raw();
    (!live_group_members(pgid).is_empty()).then_some(pgid)
}
