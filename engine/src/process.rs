//! Process plumbing every transport shares: the handle of a started process, the copiers that write its
//! output into its log, the tags every process carries, and the pid line of the remote wrapper. A leaf:
//! it knows the transport traits and nothing else of the engine.

use crate::secret::Redactor;
use crate::transport::{Exit, Process};
use async_trait::async_trait;
use std::os::unix::process::ExitStatusExt;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// Environment variables that tag every process a run starts (value: the run directory, the step id).
pub const RUN_TAG: &str = "SRT_GRAPH_RUN";
pub const STEP_TAG: &str = "SRT_GRAPH_STEP";

/// First line a wrapped command prints.
pub const PID_MARK: &str = "srt-graph-pid";

/// `(pid, pgid)` from a wrapper's first line.
pub fn parse_pid_line(line: &str) -> Option<(i32, i32)> {
    let mut f = line.split_whitespace();
    if f.next()? != PID_MARK {
        return None;
    }
    let pid = f.next()?.parse().ok()?;
    let pgid = f.next()?.parse().ok()?;
    Some((pid, pgid))
}

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
        Ok(exit_of(status))
    }
    fn last_line(&self) -> Arc<Mutex<String>> {
        self.last.clone()
    }
}

/// How a process ended, from its wait status.
pub fn exit_of(status: std::process::ExitStatus) -> Exit {
    match (status.code(), status.signal()) {
        (Some(c), _) => Exit::Code(c),
        (None, Some(s)) => Exit::Signal(s),
        (None, None) => Exit::Code(-1),
    }
}

/// The last line of a log someone else writes (a node agent's process), followed from the moment it
/// is first asked for (the progress display asks; batch output never does, and nothing polls), until
/// `stop` or drop.
pub struct LastLineOf {
    log: std::path::PathBuf,
    last: Arc<Mutex<String>>,
    /// `None` until asked for; `Some(None)` once stopped.
    follower: Mutex<Option<Option<tokio::task::JoinHandle<()>>>>,
}

impl LastLineOf {
    pub fn new(log: std::path::PathBuf) -> LastLineOf {
        LastLineOf {
            log,
            last: Arc::default(),
            follower: Mutex::new(None),
        }
    }

    /// The line, kept current from now on (what the log held before is an earlier attempt's).
    pub fn get(&self) -> Arc<Mutex<String>> {
        if let Ok(mut f) = self.follower.lock() {
            if f.is_none() {
                let offset = std::fs::metadata(&self.log).map_or(0, |m| m.len());
                *f = Some(Some(follow_last_line(
                    self.log.clone(),
                    offset,
                    self.last.clone(),
                )));
            }
        }
        self.last.clone()
    }

    pub fn stop(&self) {
        let running = self
            .follower
            .lock()
            .ok()
            .and_then(|mut f| f.replace(None).flatten());
        if let Some(f) = running {
            f.abort();
        }
    }
}

impl Drop for LastLineOf {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Follows a log someone else writes (Slurm's `--output`, a node agent) from `offset`, keeping its last
/// non-empty line for the progress display. Reads only what was added since the last look.
pub fn follow_last_line(
    log: std::path::PathBuf,
    mut offset: u64,
    last: Arc<Mutex<String>>,
) -> tokio::task::JoinHandle<()> {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    tokio::spawn(async move {
        let mut chunk = Vec::new();
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            let Ok(mut f) = tokio::fs::File::open(&log).await else {
                continue;
            };
            let len = f.metadata().await.map_or(0, |m| m.len());
            if len <= offset {
                continue;
            }
            // Only the tail matters: skip to the last 64 KiB of what is new.
            let from = offset.max(len.saturating_sub(64 * 1024));
            if f.seek(std::io::SeekFrom::Start(from)).await.is_err() {
                continue;
            }
            chunk.clear();
            if (&mut f)
                .take(len - from)
                .read_to_end(&mut chunk)
                .await
                .is_err()
            {
                continue;
            }
            offset = len;
            let new = String::from_utf8_lossy(&chunk);
            if let Some(l) = new.lines().rev().find(|l| !l.trim().is_empty()) {
                if let Ok(mut g) = last.lock() {
                    *g = l.to_string();
                }
            }
        }
    })
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
    redact: &Redactor,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut copiers = Vec::new();
    if let Some(out) = child.stdout.take() {
        let to = (log.clone(), last.clone(), redact.clone());
        copiers.push(copier(out, to, pid_tx.clone()));
    }
    if let Some(err) = child.stderr.take() {
        copiers.push(copier(err, (log, last.clone(), redact.clone()), pid_tx));
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

/// Where a copier writes: the log, the last-line slot (progress), and the secrets it must not write.
type CopyTo = (
    Arc<tokio::sync::Mutex<tokio::fs::File>>,
    Arc<Mutex<String>>,
    Redactor,
);

/// Copies a process's output into its log, one timestamped line at a time, secret values replaced
/// before they are written. With `pid_tx`, a remote wrapper's pid line is also sent there (see `remote`).
fn copier<R>(
    reader: R,
    (log, last, redact): CopyTo,
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
                    let line = redact.clean(line.trim_end_matches(['\n', '\r']));
                    let line = line.as_ref();
                    if let Some(tx) = &pid_tx {
                        if let Some(ids) = parse_pid_line(line) {
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
