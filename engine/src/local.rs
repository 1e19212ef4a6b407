//! The local transport: every node is this machine; each step runs in its own process group and its
//! output is copied line by line, timestamped, into its log file.

use crate::process::{copy_output, ChildProcess, RUN_TAG, STEP_TAG};
use crate::transport::{
    open_log, GroupSignaller, Process, SpawnRequest, Transport, TransportError,
};
use async_trait::async_trait;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use std::process::Stdio;
use std::sync::{Arc, Mutex};

#[derive(Debug, Default, Clone)]
pub struct LocalTransport;

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
        // SIGPIPE ignored, as the remote wrapper does: a service whose log pipe is cut (the orchestrator
        // died) then sees EPIPE on a write instead of dying, keeps serving, and `resume` can adopt it.
        // SAFETY: the closure runs between fork and exec and only calls signal(2), which is
        // async-signal-safe; it touches no memory of the parent.
        unsafe {
            cmd.pre_exec(|| {
                nix::sys::signal::signal(Signal::SIGPIPE, nix::sys::signal::SigHandler::SigIgn)
                    .map(drop)
                    .map_err(std::io::Error::from)
            });
        }
        let mut child = cmd.spawn().map_err(|source| TransportError::Spawn {
            program: program.clone(),
            source,
        })?;
        let pid = child.id().map_or(-1, |p| p as i32);
        let last = Arc::new(Mutex::new(String::new()));
        let copiers = copy_output(&mut child, log, &last, None, &req.redact);
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

/// What `/proc/<pid>/stat` says of a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    /// `R`, `S`, `Z` (zombie), `X` (dead), …
    pub state: char,
    pub ppid: i32,
    pub pgid: i32,
    /// Since boot, in clock ticks.
    pub start_ticks: u64,
}

impl ProcStat {
    pub fn alive(&self) -> bool {
        self.state != 'Z' && self.state != 'X'
    }
}

/// `/proc/<pid>/stat` of `pid`, if it exists.
pub fn proc_stat(pid: i32) -> Option<ProcStat> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the `(comm)`, which may itself contain spaces and parentheses.
    let fields: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
    Some(ProcStat {
        state: fields.first()?.chars().next()?,
        ppid: fields.get(1)?.parse().ok()?,
        pgid: fields.get(2)?.parse().ok()?,
        start_ticks: fields.get(19)?.parse().ok()?,
    })
}

/// The process group of `pid` if it is alive and not a zombie.
fn live_pgid(pid: i32) -> Option<i32> {
    proc_stat(pid).filter(ProcStat::alive).map(|s| s.pgid)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::Exit;

    /// A cut log pipe must not kill a service: its SIGPIPE is ignored (bit 13 of /proc's SigIgn mask),
    /// whatever the orchestrator's own disposition was.
    #[tokio::test]
    async fn a_step_starts_with_sigpipe_ignored() {
        let dir = tempfile::tempdir().expect("tmp");
        let log = dir.path().join("step.log");
        let req = SpawnRequest {
            step: "probe".into(),
            node: 0,
            argv: vec![
                "sh".into(),
                "-c".into(),
                "grep SigIgn /proc/self/status".into(),
            ],
            env: Default::default(),
            cwd: None,
            log: log.clone(),
            container: None,
            mpi: None,
            redact: Default::default(),
        };
        let mut p = LocalTransport.spawn(&req).await.expect("spawn");
        assert_eq!(p.wait().await.expect("wait"), Exit::Code(0));
        let text = std::fs::read_to_string(&log).expect("log");
        let mask = text
            .split("SigIgn:")
            .nth(1)
            .and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
            .expect("a SigIgn line");
        assert_ne!(mask & (1 << (Signal::SIGPIPE as u64 - 1)), 0, "{text}");
    }
}
