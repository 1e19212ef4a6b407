//! `srt-graph run` / `down` on the local transport with recipes of `shell` steps: parallelism, caps,
//! retries, timeouts, service death, interrupts, keep-up, and that no process of a run survives.

mod common;

use assert_cmd::Command;
use serde_json::Value;
use srt_graph_engine::journal::{self, Event};
use srt_graph_engine::local::live_group_members;
use std::path::PathBuf;
use std::time::{Duration, Instant};

struct Run {
    _dir: tempfile::TempDir,
    root: PathBuf,
    run_dir: PathBuf,
}

impl Run {
    fn new(recipe: &str) -> Run {
        let dir = tempfile::tempdir().expect("tmp");
        let root = dir.path().to_path_buf();
        std::fs::write(
            root.join("recipe.yaml"),
            recipe.replace("@DIR@", &root.display().to_string()),
        )
        .expect("write");
        Run {
            run_dir: root.join("run"),
            root,
            _dir: dir,
        }
    }

    fn cmd(&self, extra: &[&str]) -> Command {
        let mut c = Command::cargo_bin("srt-graph").expect("bin");
        c.env_remove("SRTSLURM_CONFIG")
            .env_remove("SLURM_JOB_ID")
            .current_dir(&self.root);
        c.arg("run")
            .arg("recipe.yaml")
            .arg("--run-dir")
            .arg(&self.run_dir)
            .args(extra);
        c.timeout(Duration::from_secs(60));
        c
    }

    fn journal(&self) -> Vec<Event> {
        journal::read(&self.run_dir.join("journal.jsonl"))
            .expect("journal")
            .into_iter()
            .map(|r| r.event)
            .collect()
    }

    fn spans(&self) -> Vec<Value> {
        let t: Value =
            serde_json::from_slice(&std::fs::read(self.run_dir.join("trace.json")).expect("trace"))
                .expect("json");
        t["traceEvents"]
            .as_array()
            .expect("events")
            .iter()
            .filter(|e| e["ph"] == "X")
            .cloned()
            .collect()
    }

    fn summary(&self) -> Value {
        serde_json::from_slice(&std::fs::read(self.run_dir.join("summary.json")).expect("summary"))
            .expect("json")
    }

    fn step_report(&self, id: &str) -> Value {
        self.summary()["steps"]
            .as_array()
            .expect("steps")
            .iter()
            .find(|s| s["id"] == id)
            .cloned()
            .expect(id)
    }

    /// Every process group the run started is gone (checked by group, not by name).
    fn assert_no_survivors(&self) {
        common::assert_no_survivors(&self.run_dir);
    }
}

fn span(spans: &[Value], name: &str) -> (u64, u64) {
    let s = spans
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no span {name}"));
    let ts = s["ts"].as_u64().expect("ts");
    (ts, ts + s["dur"].as_u64().expect("dur"))
}

fn overlap(a: (u64, u64), b: (u64, u64)) -> bool {
    a.0 < b.1 && b.0 < a.1
}

const TWO_STEPS: &str = "name: two-steps\nsteps:\n  - {name: a, run: \"sleep 1\"}\n  - {name: b, run: \"sleep 1\"}\n  - {name: c, run: \"echo done\", after: [a, b]}\n";

#[test]
fn independent_steps_run_in_parallel_and_dependents_wait() {
    let r = Run::new(TWO_STEPS);
    r.cmd(&[]).assert().success();
    let spans = r.spans();
    let (a, b, c) = (span(&spans, "a"), span(&spans, "b"), span(&spans, "c"));
    assert!(overlap(a, b), "a {a:?} and b {b:?} should overlap");
    assert!(c.0 >= a.1 && c.0 >= b.1, "c must start after a and b");
    for f in [
        "recipe.yaml",
        "plan.json",
        "journal.jsonl",
        "trace.json",
        "summary.json",
        "logs/c.log",
    ] {
        assert!(r.run_dir.join(f).exists(), "{f} missing");
    }
    let log = std::fs::read_to_string(r.run_dir.join("logs/c.log")).expect("log");
    assert!(
        log.starts_with('[') && log.trim_end().ends_with("done"),
        "timestamped log line: {log}"
    );
    assert_eq!(
        r.summary()["critical_path"].as_array().expect("path").len(),
        2
    );
    r.assert_no_survivors();
}

#[test]
fn jobs_1_serialises_tasks() {
    let r = Run::new(TWO_STEPS);
    r.cmd(&["--jobs", "1"]).assert().success();
    let spans = r.spans();
    assert!(!overlap(span(&spans, "a"), span(&spans, "b")));
}

#[test]
fn a_step_that_fails_twice_then_succeeds_is_retried() {
    let r = Run::new(
        "name: retry\nsteps:\n  - name: flaky\n    run: 'n=$(cat @DIR@/count 2>/dev/null || echo 0); n=$((n+1)); echo $n > @DIR@/count; echo try $n; [ $n -ge 3 ]'\n    retries: 2\npolicy:\n  shell: {backoff: 50ms}\n",
    );
    r.cmd(&[]).assert().success();
    assert_eq!(r.step_report("flaky")["attempts"], 3);
    assert_eq!(r.step_report("flaky")["result"], "done");
    let failed = r
        .journal()
        .into_iter()
        .filter(|e| {
            matches!(
                e,
                Event::StepFailed {
                    will_retry: true,
                    ..
                }
            )
        })
        .count();
    assert_eq!(failed, 2);
}

#[test]
fn retries_are_bounded() {
    let r = Run::new("name: retry\nsteps:\n  - {name: never, run: 'echo nope; exit 4', retries: 1}\npolicy:\n  shell: {backoff: 10ms}\n");
    let out = r.cmd(&[]).output().expect("run");
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("step `never` (shell) on node0 failed after 2 tries: exit code 4"),
        "{err}"
    );
    assert!(err.contains("nope"), "log tail shown: {err}");
}

#[test]
fn a_timeout_kills_the_step_and_fails_the_run() {
    let r = Run::new(
        "name: slow\nsteps:\n  - {name: slow, run: 'sleep 30 & sleep 30', timeout: 500ms}\n",
    );
    let out = r.cmd(&[]).output().expect("run");
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("timed out after 0.5s"), "{err}");
    r.assert_no_survivors();
}

#[test]
fn a_service_that_dies_fails_the_run_with_its_log_tail() {
    let r = Run::new(
        "name: svc\nsteps:\n  - {name: svc, run: 'echo starting; sleep 1; echo dying now; exit 7', service: true}\n  - {name: long, run: 'sleep 30'}\n",
    );
    let out = r.cmd(&[]).output().expect("run");
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("service `svc` (shell) on node0 exited while the run was live: exit code 7"),
        "{err}"
    );
    assert!(err.contains("dying now"), "{err}");
    // Detected when it died, not when the 30 s task would have ended.
    let spans = r.spans();
    let (svc_start, svc_end) = span(&spans, "svc");
    let (_, long_end) = span(&spans, "long");
    assert!(
        svc_end - svc_start < 3_000_000,
        "service span {svc_start}..{svc_end}"
    );
    assert!(
        long_end < svc_end + 2_000_000,
        "the task was cancelled within 2 s of the death"
    );
    assert_eq!(r.step_report("long")["result"], "cancelled");
    r.assert_no_survivors();
}

#[test]
fn keep_going_runs_independent_branches() {
    let r = Run::new(
        "name: kg\nsteps:\n  - {name: bad, run: 'exit 1'}\n  - {name: after-bad, run: 'true', after: [bad]}\n  - {name: good, run: 'sleep 0.5'}\n",
    );
    let out = r.cmd(&["--keep-going"]).output().expect("run");
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(r.step_report("good")["result"], "done");
    assert_eq!(r.step_report("after-bad")["result"], "skipped");
}

#[test]
fn teardown_kills_whole_process_groups_even_if_they_ignore_sigterm() {
    let r = Run::new(
        "name: stubborn\nsteps:\n  - {name: svc, run: \"trap '' TERM; sleep 300 & sleep 300 & wait\", service: true}\n  - {name: work, run: 'sleep 0.3'}\n",
    );
    let started = Instant::now();
    r.cmd(&["--grace", "500ms"]).assert().success();
    assert!(started.elapsed() < Duration::from_secs(20));
    r.assert_no_survivors();
}

#[test]
fn sigint_tears_everything_down() {
    let r = Run::new(
        "name: int\nsteps:\n  - {name: svc, run: 'sleep 300', service: true}\n  - {name: task, run: 'sleep 300 & sleep 300'}\n",
    );
    let bin = assert_cmd::cargo::cargo_bin("srt-graph");
    let mut child = std::process::Command::new(bin)
        .current_dir(&r.root)
        .args(["run", "recipe.yaml", "--run-dir"])
        .arg(&r.run_dir)
        .env_remove("SLURM_JOB_ID")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let spawned = journal::read(&r.run_dir.join("journal.jsonl"))
            .map(|j| {
                j.iter()
                    .filter(|e| matches!(e.event, Event::Spawned { .. }))
                    .count()
            })
            .unwrap_or(0);
        if spawned == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "steps never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .expect("kill");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("did not stop after SIGINT");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(130));
    assert!(r.journal().iter().any(|e| matches!(
        e,
        Event::RunFinished {
            status: journal::RunStatus::Interrupted,
            ..
        }
    )));
    r.assert_no_survivors();
}

#[test]
fn keep_up_leaves_services_and_down_stops_them() {
    let r = Run::new("name: up\nsteps:\n  - {name: svc, run: 'sleep 300', service: true}\n  - {name: t, run: 'true'}\n");
    let out = r.cmd(&["--keep-up"]).output().expect("run");
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("srt-graph down"), "{err}");
    let pgid = r
        .journal()
        .into_iter()
        .find_map(|e| match e {
            Event::Spawned { step, pgid, .. } if step == "svc" => Some(pgid),
            _ => None,
        })
        .expect("svc pgid");
    assert!(
        !live_group_members(pgid).is_empty(),
        "service should still be up"
    );
    let mut down = Command::cargo_bin("srt-graph").expect("bin");
    down.arg("down")
        .arg(&r.run_dir)
        .arg("--grace")
        .arg("2s")
        .timeout(Duration::from_secs(30))
        .assert()
        .success();
    r.assert_no_survivors();
}

#[test]
fn recipe_values_reach_the_process_verbatim() {
    let evil = "$(touch @DIR@/canary1); `touch @DIR@/canary2`; echo \"quoted\" 'single' && touch @DIR@/canary3\nnewline  two spaces";
    let recipe = format!(
        "name: safe\nsteps:\n  - name: show\n    run: 'printf %s \"$EVIL\" > @DIR@/out'\n    env:\n      EVIL: {}\n",
        serde_json::to_string(evil).expect("json string")
    );
    let r = Run::new(&recipe);
    r.cmd(&[]).assert().success();
    let got = std::fs::read_to_string(r.root.join("out")).expect("out");
    assert_eq!(got, evil.replace("@DIR@", &r.root.display().to_string()));
    for c in ["canary1", "canary2", "canary3"] {
        assert!(
            !r.root.join(c).exists(),
            "{c} was created: a recipe value was executed"
        );
    }
}

#[test]
fn an_existing_run_directory_is_not_overwritten() {
    let r = Run::new(TWO_STEPS);
    r.cmd(&["--jobs", "4"]).assert().success();
    let out = r.cmd(&[]).output().expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already holds a run"));
}

#[test]
fn a_second_sigint_skips_the_grace_period() {
    let r = Run::new(
        "name: int2\nsteps:\n  - {name: svc, run: \"trap '' TERM INT; sleep 300 & wait\", service: true}\n  - {name: hold, run: 'sleep 300'}\n",
    );
    let bin = assert_cmd::cargo::cargo_bin("srt-graph");
    let mut child = std::process::Command::new(bin)
        .current_dir(&r.root)
        .args(["run", "recipe.yaml", "--grace", "60s", "--run-dir"])
        .arg(&r.run_dir)
        .env_remove("SLURM_JOB_ID")
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !journal::read(&r.run_dir.join("journal.jsonl"))
        .is_ok_and(|j| j.iter().any(|e| matches!(e.event, Event::Spawned { .. })))
    {
        assert!(Instant::now() < deadline, "service never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Give bash time to install its trap, then interrupt twice.
    std::thread::sleep(Duration::from_millis(300));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).expect("kill");
    std::thread::sleep(Duration::from_millis(300));
    let first = Instant::now();
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).expect("kill");
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if first.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("a second SIGINT did not cut the 60 s grace short");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(130));
    assert!(first.elapsed() < Duration::from_secs(30));
    r.assert_no_survivors();
}
