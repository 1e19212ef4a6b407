//! Helpers shared by the integration tests.
#![allow(dead_code)] // each test binary uses its own subset

pub mod loopback;
pub mod slurm;

use srt_graph_engine::journal::{self, Event};
use srt_graph_engine::local::{live_group_members, pid_file_group, tagged_processes};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// PATH with /usr/sbin, where Debian puts nginx.
pub fn path_env() -> String {
    format!("{}:/usr/sbin", std::env::var("PATH").unwrap_or_default())
}

/// `(step, pgid, service)` of every process the run's journal recorded.
pub fn spawned_groups(run_dir: &Path) -> Vec<(String, i32, bool)> {
    journal::read(&run_dir.join("journal.jsonl"))
        .map(|j| {
            j.into_iter()
                .filter_map(|r| match r.event {
                    Event::Spawned {
                        step,
                        pgid,
                        service,
                        ..
                    } => Some((step, pgid, service)),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Process groups of the run still alive: journaled ones, processes carrying the run tag, and services
/// found through their pid files (nginx rewrites its environment).
pub fn survivors(run_dir: &Path) -> Vec<(String, i32)> {
    let mut alive: Vec<(String, i32)> = spawned_groups(run_dir)
        .into_iter()
        .filter(|(_, g, _)| !live_group_members(*g).is_empty())
        .map(|(s, g, _)| (s, g))
        .collect();
    if let Ok(dir) = run_dir.canonicalize() {
        alive.extend(
            tagged_processes(&dir.display().to_string())
                .into_iter()
                .map(|(s, _, g)| (s, g)),
        );
    }
    if let Ok(bytes) = std::fs::read(run_dir.join("plan.json")) {
        if let Ok(plan) = serde_json::from_slice::<srt_graph_engine::Plan>(&bytes) {
            alive.extend(
                plan.steps
                    .into_iter()
                    .filter_map(|s| Some((s.id, pid_file_group(s.pid_file.as_deref()?)?))),
            );
        }
    }
    alive
}

/// Nothing the run started is left (checked by process group and by run tag, not by name).
pub fn assert_no_survivors(run_dir: &Path) {
    assert!(
        !spawned_groups(run_dir).is_empty(),
        "the run spawned nothing"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let alive = survivors(run_dir);
        if alive.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "processes survived: {alive:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// SIGKILLs whatever of the run is left: for tests that kill the orchestrator on purpose.
pub fn kill_all(run_dir: &Path) {
    for (_, pgid) in survivors(run_dir) {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pgid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

/// Waits until the run's journal holds an `event` of `step` (`spawned`, `step_finished`, …). If the run
/// ends first or 5 minutes pass, kills the orchestrator and whatever it started, and fails the test.
pub fn wait_for_event(run_dir: &Path, child: &mut std::process::Child, event: &str, step: &str) {
    let needle = format!(r#""event":"{event}","step":"{step}""#);
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let journal = std::fs::read_to_string(run_dir.join("journal.jsonl")).unwrap_or_default();
        if journal.contains(&needle) {
            return;
        }
        if Instant::now() > deadline || child.try_wait().ok().flatten().is_some() {
            let _ = child.kill();
            let _ = child.wait();
            kill_all(run_dir);
            panic!("the run never reached {event} {step}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `srt-graph resume RUN_DIR` (with `-q --grace 3s` and `extra`) must succeed: its stderr. On failure,
/// kills whatever of the run is left and fails the test with resume's output.
pub fn resume_ok(run_dir: &Path, extra: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_srt-graph"))
        .args(["resume", "-q", "--grace", "3s"])
        .args(extra)
        .arg(run_dir)
        .env("PATH", path_env())
        .output()
        .expect("resume");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        kill_all(run_dir);
        panic!("resume did not complete: {err}");
    }
    err
}

/// Asserts that resume's report adopted each of `steps`.
pub fn assert_adopted(resume_stderr: &str, steps: &[&str]) {
    for s in steps {
        assert!(
            resume_stderr.contains(&format!("adopt   {s}")),
            "{s} not adopted: {resume_stderr}"
        );
    }
}

/// `srt-graph run recipe.yaml --mock-workers -q --run-dir DIR/run EXTRA…` in `dir`, with `recipe` written to
/// `dir/recipe.yaml` and no ambient Slurm or cluster config: the caller chooses how to run it (spawn,
/// output) and where its stderr goes. Returns the command and the run directory.
pub fn mock_run(
    dir: &Path,
    recipe: &str,
    extra: &[&str],
) -> (std::process::Command, std::path::PathBuf) {
    std::fs::write(dir.join("recipe.yaml"), recipe).expect("write recipe");
    let run_dir = dir.join("run");
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_srt-graph"));
    c.current_dir(dir)
        .args(["run", "recipe.yaml", "--mock-workers", "-q", "--run-dir"])
        .arg(&run_dir)
        .args(extra)
        .env("PATH", path_env())
        .env_remove("SLURM_JOB_ID")
        .env_remove("SRTSLURM_CONFIG");
    (c, run_dir)
}

/// Samples the command line of every process on this machine (every node of the test environments is
/// on it) from a thread, until `finish`: what any other user of a node could read with `ps`.
pub struct ArgvWatch {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<(usize, Vec<String>)>,
}

impl ArgvWatch {
    pub fn start(needles: &[&str]) -> ArgvWatch {
        let needles: Vec<Vec<u8>> = needles.iter().map(|n| n.as_bytes().to_vec()).collect();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut samples = 0;
            let mut hits = Vec::new();
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
                    let Ok(argv) = std::fs::read(entry.path().join("cmdline")) else {
                        continue;
                    };
                    samples += 1;
                    if needles
                        .iter()
                        .any(|n| argv.windows(n.len()).any(|w| w == n.as_slice()))
                    {
                        hits.push(String::from_utf8_lossy(&argv).replace('\0', " "));
                    }
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            (samples, hits)
        });
        ArgvWatch { stop, thread }
    }

    /// Stops sampling: `(command lines read, those holding a needle)`.
    pub fn finish(self) -> (usize, Vec<String>) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().unwrap_or_default()
    }
}

/// No file under `dir` holds a needle (inputs the user gave, named in `inputs`, excepted) and nothing
/// there is open to other users; the directory itself and `logs/` are owner-only.
pub fn assert_run_dir_keeps_secrets(dir: &Path, needles: &[&str], inputs: &[&str]) {
    use std::os::unix::fs::PermissionsExt;
    for d in [dir.to_path_buf(), dir.join("logs")] {
        let mode = std::fs::metadata(&d).expect("run dir").permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{} is {mode:o}", d.display());
    }
    let mut todo = vec![dir.to_path_buf()];
    let mut files = 0;
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).expect("read dir").flatten() {
            let path = e.path();
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            let mode = meta.permissions().mode() & 0o777;
            assert_eq!(
                mode & 0o007,
                0,
                "{} is open to others ({mode:o})",
                path.display()
            );
            if meta.is_dir() {
                todo.push(path);
                continue;
            }
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if inputs.contains(&name) || !meta.is_file() {
                continue;
            }
            files += 1;
            let bytes = std::fs::read(&path).unwrap_or_default();
            for n in needles {
                assert!(
                    !bytes.windows(n.len()).any(|w| w == n.as_bytes()),
                    "{} holds the secret value {n}",
                    path.display()
                );
            }
        }
    }
    assert!(files > 3, "only {files} files under {}", dir.display());
}

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// The environment directory, or `None` (skip, said aloud) when not root.
pub fn env_dir(var: &str, script: &str) -> Option<PathBuf> {
    if !is_root() {
        eprintln!("SKIPPED: this test needs root to run {script} (sshd / slurmd / munged)");
        return None;
    }
    match std::env::var_os(var) {
        Some(d) => Some(PathBuf::from(d)),
        None => panic!(
            "{var} is not set: bring the test environment up with `bash {script} up` and export {var} \
             (scripts/test.sh does both)"
        ),
    }
}

/// The run's journal records of `event` (`node_lost`, `spawned`, …), parsed.
pub fn journal_events(run_dir: &Path, event: &str) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run_dir.join("journal.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|r| r["event"] == event)
        .collect()
}

/// After the run directory's disk filled: the journal is whole (every complete line parses, and a
/// torn last one is all it may lose), it ends with the run failed because the disk is full, `status`
/// says so, and no result file is a truncated JSON that looks complete.
pub fn assert_full_disk_recorded(run_dir: &Path) {
    let text = std::fs::read_to_string(run_dir.join("journal.jsonl")).expect("journal");
    for line in text.split_inclusive('\n').filter(|l| l.ends_with('\n')) {
        assert!(
            serde_json::from_str::<serde_json::Value>(line).is_ok(),
            "corrupt journal line: {line}"
        );
    }
    let finished = journal_events(run_dir, "run_finished");
    let last = finished.last().expect("the run's end is recorded");
    assert_eq!(last["status"], "failed", "{last}");
    let reason = last["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("No space left on device"), "{last}");
    let said = status(run_dir);
    eprintln!("status after the disk filled:\n{said}");
    assert!(
        said.contains("orchestrator: gone; the run failed: ")
            && said.contains("No space left on device"),
        "{said}"
    );
    let v = status_json(run_dir);
    assert_eq!(v["finished"], "failed", "{v}");
    assert!(
        v["failure"]
            .as_str()
            .is_some_and(|f| f.contains("No space left on device")),
        "{v}"
    );
    for dir in std::fs::read_dir(run_dir).into_iter().flatten().flatten() {
        if !dir.file_name().to_string_lossy().starts_with("sa-bench_") {
            continue;
        }
        for f in std::fs::read_dir(dir.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            if f.path().extension().is_some_and(|e| e == "json") {
                let v: serde_json::Value =
                    serde_json::from_slice(&std::fs::read(f.path()).expect("read"))
                        .unwrap_or_else(|e| panic!("{}: {e}", f.path().display()));
                assert!(v["completed"].as_u64().is_some(), "{}", f.path().display());
            }
        }
    }
}

fn status_output(run_dir: &Path, extra: &[&str]) -> Vec<u8> {
    std::process::Command::new(env!("CARGO_BIN_EXE_srt-graph"))
        .arg("status")
        .arg(run_dir)
        .args(extra)
        .env("PATH", path_env())
        .env_remove("SLURM_JOB_ID")
        .output()
        .expect("status")
        .stdout
}

/// `srt-graph status RUN_DIR` as a user runs it, outside any allocation: what it prints.
pub fn status(run_dir: &Path) -> String {
    String::from_utf8_lossy(&status_output(run_dir, &[])).into_owned()
}

/// `srt-graph status RUN_DIR --json`, parsed.
pub fn status_json(run_dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&status_output(run_dir, &["--json"])).expect("status --json")
}

/// A file system mounted for a test (a disk to fill), unmounted however the test ends.
pub struct Mounted(pub PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// Fills the file system holding `dir` (zeros written until it refuses more): the filler's path.
pub fn fill_disk(dir: &Path) -> PathBuf {
    use std::io::Write;
    let filler = dir.join("filler");
    let mut f = std::fs::File::create(&filler).expect("filler");
    let block = vec![0u8; 1 << 16];
    while f.write_all(&block).is_ok() {}
    let _ = f.sync_all();
    filler
}
