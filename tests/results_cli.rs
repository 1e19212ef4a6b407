//! What people look at after (and during) a run, checked as they see it: the rollup against srt-slurm's
//! own `rollup.py`, the HTML report's figures against the result files and its screenshot in headless
//! Chromium, `diff` of two real runs with one changed knob, the validity gate with the mock's fault
//! knobs, and the live monitor driven in tmux.

mod common;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_srt-graph"));
    c.env("PATH", common::path_env())
        .env_remove("SLURM_JOB_ID")
        .env_remove("SRTSLURM_CONFIG");
    c
}

/// Two prefill and two decode mock workers behind one router; `@DECODE_ENV@` and `@BENCH@` vary.
const RECIPE: &str = r#"name: results-demo
model: {path: mock-model, container: none, precision: bf16}
resources: {gpu_type: gb300, gpus_per_node: 4, prefill_nodes: 2, prefill_workers: 2, decode_nodes: 2, decode_workers: 2}
frontend: {type: sglang@FRONTEND@}
backend:
  type: sglang
  prefill_environment: {SRT_MOCK_LOAD_TIME: "0.2"}
  decode_environment: {SRT_MOCK_LOAD_TIME: "0.2"@DECODE_ENV@}
  sglang_config:
    prefill: {served-model-name: test-model, tensor-parallel-size: 4, disaggregation-mode: prefill, disaggregation-bootstrap-port: 30001}
    decode: {served-model-name: test-model, tensor-parallel-size: 4, disaggregation-mode: decode, disaggregation-bootstrap-port: 30001}
health_check: {max_attempts: 60, interval_seconds: 1}
benchmark: {type: sa-bench, isl: 64, osl: 16, concurrencies: "2x8", req_rate: inf, num_warmup_mult: 0@BENCH@}
"#;

fn recipe(decode_env: &str, bench: &str) -> String {
    RECIPE
        .replace("@DECODE_ENV@", decode_env)
        .replace("@BENCH@", bench)
        .replace("@FRONTEND@", "")
}

/// The recipe with the router's own retries off: each injected failure reaches the load generator (with
/// retries the router hides them by sending the request to another worker).
fn recipe_without_retries(decode_env: &str, bench: &str) -> String {
    RECIPE
        .replace("@DECODE_ENV@", decode_env)
        .replace("@BENCH@", bench)
        .replace("@FRONTEND@", ", args: {disable-retries: true}")
}

/// Runs `text` with mock workers at `first`; returns (tempdir, run dir, exit ok, stderr).
fn run(text: &str, first: &str) -> (tempfile::TempDir, PathBuf, bool, String) {
    let dir = tempfile::tempdir().expect("tmp");
    let (mut c, run_dir) = common::mock_run(dir.path(), text, &["--first-address", first]);
    let out = c.output().expect("run");
    common::assert_no_survivors(&run_dir);
    (
        dir,
        run_dir,
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn json(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        .expect("json")
}

fn results(run_dir: &Path) -> Vec<Value> {
    let mut v: Vec<(u64, Value)> = std::fs::read_dir(run_dir.join("sa-bench_isl_64_osl_16"))
        .expect("results dir")
        .flatten()
        .filter(|f| f.file_name().to_string_lossy().starts_with("results_"))
        .map(|f| json(&f.path()))
        .map(|j| (j["max_concurrency"].as_u64().expect("c"), j))
        .collect();
    v.sort_by_key(|(c, _)| *c);
    v.into_iter().map(|(_, j)| j).collect()
}

/// srt-slurm's `rollup.py`, from the vendored source (skipped with a note when this checkout has none).
fn srt_slurm_rollup(work: &Path) -> Option<PathBuf> {
    let tarball = root().join("../shared/vendor/srt-slurm-c88ef731-src.tar.gz");
    if !tarball.is_file() {
        eprintln!(
            "note: {} not here; the rollup is not compared with srt-slurm's script",
            tarball.display()
        );
        return None;
    }
    let list = Command::new("tar")
        .arg("-tzf")
        .arg(&tarball)
        .output()
        .expect("tar");
    let member = String::from_utf8_lossy(&list.stdout)
        .lines()
        .find(|l| l.ends_with("benchmarks/scripts/sa-bench/rollup.py"))
        .map(str::to_string)?;
    let st = Command::new("tar")
        .arg("-xzf")
        .arg(&tarball)
        .arg("-C")
        .arg(work)
        .arg(&member)
        .status()
        .expect("tar");
    assert!(st.success());
    Some(work.join(member))
}

/// Every `<td data-key=K>` of the report's row for run `run` at concurrency `c`.
fn page_row(html: &str, run: usize, c: u64) -> Vec<(String, String)> {
    let start = html
        .find(&format!("<tr data-run={run} data-c={c}>"))
        .unwrap_or_else(|| panic!("no row for run {run} c={c}"));
    let row = &html[start..start + html[start..].find("</tr>").expect("row end")];
    row.split("<td data-key=")
        .skip(1)
        .map(|cell| {
            let (key, rest) = cell.split_once('>').expect("cell");
            let value = rest.split('<').next().unwrap_or("");
            (key.to_string(), value.to_string())
        })
        .collect()
}

/// Pixels of exactly `rgb` in a PNG.
fn pixels(png: &Path, rgb: [u8; 3]) -> usize {
    let decoder = png::Decoder::new(std::fs::File::open(png).expect("png"));
    let mut reader = decoder.read_info().expect("png header");
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).expect("png frame");
    let step = info.color_type.samples();
    buf[..info.buffer_size()]
        .chunks(step)
        .filter(|p| p[..3] == rgb)
        .count()
}

fn screenshot(html: &Path, png: &Path) {
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=1280,4200",
        ])
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", html.display()))
        .output()
        .expect("chromium (scripts/test.sh installs it)");
    assert!(
        png.is_file(),
        "no screenshot: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn rollup_report_and_diff_of_two_runs() {
    // Run B differs in one knob: its decode workers make tokens at a third of the speed.
    let (_a, run_a, ok, err) = run(&recipe("", ""), "127.0.71.1");
    assert!(ok, "{err}");
    let (_b, run_b, ok, err) = run(&recipe(", SRT_MOCK_TPS: \"150\"", ""), "127.0.72.1");
    assert!(ok, "{err}");
    assert!(
        err.contains(&format!("report: {}", run_b.join("report.html").display())),
        "{err}"
    );

    // The rollup is srt-slurm's, to the byte: its own script on a copy of the run writes the same.
    let rollup = json(&run_a.join("benchmark-rollup.json"));
    assert_eq!(rollup["runs"].as_array().map(Vec::len), Some(2));
    let work = tempfile::tempdir().expect("tmp");
    if let Some(script) = srt_slurm_rollup(work.path()) {
        let copy = work.path().join("copy");
        let st = Command::new("cp")
            .arg("-r")
            .arg(&run_a)
            .arg(&copy)
            .status()
            .expect("cp");
        assert!(st.success());
        let out = Command::new("python3")
            .arg(&script)
            .arg(&copy)
            .output()
            .expect("python3");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut theirs = json(&copy.join("benchmark-rollup.json"));
        let mut ours = rollup.clone();
        theirs["timestamp"] = Value::Null;
        ours["timestamp"] = Value::Null;
        // Ours is theirs plus the simulated marks (mock workers ran): present, then set aside.
        assert_eq!(ours["config"]["simulated"], Value::Bool(true));
        if let Some(config) = ours["config"].as_object_mut() {
            config.remove("simulated");
        }
        for run in ours["runs"].as_array_mut().into_iter().flatten() {
            let mark = run.as_object_mut().and_then(|r| r.remove("simulated"));
            assert!(
                mark.as_ref().is_some_and(|m| m["note"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("SIMULATED"))),
                "every simulated point is marked: {mark:?}"
            );
        }
        assert_eq!(ours, theirs);
        assert_eq!(
            std::fs::read_to_string(run_a.join("benchmark-rollup.csv")).expect("csv"),
            std::fs::read_to_string(copy.join("benchmark-rollup.csv")).expect("their csv")
        );
    }

    // Fingerprints and the lock.
    for node in ["node0", "node1", "node2", "node3"] {
        let f = json(&run_a.join(format!("fingerprints/{node}.json")));
        assert!(f["python"]["version"].as_str().is_some(), "{f}");
        let packages = f["python"]["packages"].as_array().expect("packages");
        assert!(
            packages
                .iter()
                .any(|p| p.as_str().is_some_and(|p| p.starts_with("sglang-router=="))),
            "{f}"
        );
    }
    let lock = std::fs::read_to_string(run_b.join("recipe.lock.yaml")).expect("lock");
    assert!(
        lock.contains("SRT_MOCK_TPS: '150'") || lock.contains("SRT_MOCK_TPS: \"150\""),
        "{lock}"
    );

    // `diff`: the changed knob, and output throughput per concurrency with its change in percent.
    let out = bin()
        .arg("diff")
        .arg(&run_a)
        .arg(&run_b)
        .output()
        .expect("diff");
    assert!(out.status.success());
    let diff = String::from_utf8_lossy(&out.stdout);
    assert!(
        diff.lines()
            .any(|l| l.trim_start().starts_with('+') && l.contains("SRT_MOCK_TPS: '150'")),
        "the changed knob, as an added line of the resolved recipe:\n{diff}"
    );
    assert!(diff.contains("environment: identical"), "{diff}");
    for c in [2, 8] {
        let (ra, rb) = (
            &results(&run_a)[usize::from(c == 8)],
            &results(&run_b)[usize::from(c == 8)],
        );
        let (x, y) = (
            ra["output_throughput"].as_f64().expect("a"),
            rb["output_throughput"].as_f64().expect("b"),
        );
        let line = format!("{:>12.2} → {:>12.2}  {:+.1} %", x, y, 100.0 * (y - x) / x);
        assert!(
            diff.contains(&format!("isl_64_osl_16 concurrency {c}:")),
            "{diff}"
        );
        assert!(diff.contains(&line), "{line}\n{diff}");
        assert!(
            y < x,
            "a third of the token rate gives less throughput: {x} → {y}"
        );
    }

    // One report over both runs: figures equal the result files, the page fetches nothing.
    let page = work.path().join("both.html");
    let out = bin()
        .arg("report")
        .arg(&run_a)
        .arg(&run_b)
        .arg("-o")
        .arg(&page)
        .output()
        .expect("report");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let html = std::fs::read_to_string(&page).expect("html");
    for bad in [
        "<script",
        "<link",
        "src=\"http",
        "href=\"http",
        "@import",
        "url(",
    ] {
        assert!(
            !html.contains(bad),
            "the page must open offline: found {bad}"
        );
    }
    for (run, dir) in [(0, &run_a), (1, &run_b)] {
        for r in results(dir) {
            let c = r["max_concurrency"].as_u64().expect("c");
            let row = page_row(&html, run, c);
            for (key, shown) in &row {
                let Some(want) = r.get(key).and_then(Value::as_f64) else {
                    continue;
                };
                let shown: f64 = shown.parse().unwrap_or_else(|_| panic!("{key}={shown}"));
                assert!(
                    (shown - want).abs() <= 0.005 + want.abs() * 1e-9,
                    "run {run} c={c} {key}: page {shown}, file {want}"
                );
            }
            let per_user = 1000.0 / r["median_tpot_ms"].as_f64().expect("tpot");
            let shown = &row
                .iter()
                .find(|(k, _)| k == "tokens_per_user")
                .expect("per user")
                .1;
            assert!((shown.parse::<f64>().expect("n") - per_user).abs() < 0.006);
        }
    }
    for chart in [
        "pareto",
        "ttft",
        "tpot",
        "itl",
        "throughput",
        "timeline-1",
        "timeline-2",
    ] {
        let svg = std::fs::read_to_string(work.path().join(format!("both-charts/{chart}.svg")))
            .expect(chart);
        assert!(
            svg.contains("<svg") && html.contains(&format!("id=\"chart-{chart}\"")),
            "{chart}"
        );
    }

    // As a person sees it: both runs' colours drawn in the charts, the timeline's worker bars.
    let png = work.path().join("both.png");
    screenshot(&page, &png);
    let blue = pixels(&png, [0x1f, 0x77, 0xb4]);
    let red = pixels(&png, [0xd6, 0x27, 0x28]);
    let workers = pixels(&png, [0x4c, 0x9a, 0x6a]);
    assert!(
        blue > 2000 && red > 2000,
        "run colours in the screenshot: {blue} blue, {red} red"
    );
    assert!(
        workers > 2000,
        "worker bars of the timeline in the screenshot: {workers}"
    );
    if std::env::var_os("SRT_GRAPH_SCREENSHOT").is_some() {
        let single = work.path().join("single.png");
        screenshot(&run_a.join("report.html"), &single);
        std::fs::copy(&single, root().join("docs/report.png")).expect("docs/report.png");
    }
}

/// A mock worker answering every `every`-th request with 500 (or with no tokens), and `srt-graph bench`.
fn bench_against_mock(
    port: u16,
    knob: (&str, &str),
    max_failed: &str,
) -> (bool, String, PathBuf, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tmp");
    let mut worker = bin()
        .args([
            "mock-worker",
            "--host",
            "127.0.73.1",
            "--port",
            &port.to_string(),
            "--mock-load-time",
            "0",
        ])
        .env(knob.0, knob.1)
        .spawn()
        .expect("mock");
    // bench counts a refused connection as a failed request: start it only once the mock listens.
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.73.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "mock never listened"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = bin()
        .args([
            "bench",
            "--url",
            &format!("http://127.0.73.1:{port}"),
            "--model",
            "mock-model",
        ])
        .args([
            "--isl",
            "16",
            "--osl",
            "4",
            "--concurrency",
            "4",
            "--prompts-per-concurrency",
            "10",
        ])
        .args([
            "--max-failed-percent",
            max_failed,
            "--result-filename",
            "results_concurrency_4_gpus_1.json",
        ])
        .arg("--result-dir")
        .arg(dir.path())
        .output()
        .expect("bench");
    let _ = worker.kill();
    let _ = worker.wait();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text, dir.path().to_path_buf(), dir)
}

#[test]
fn the_validity_gate_refuses_failed_requests_and_empty_output() {
    // 10 of 40 requests fail (25 %): over the default 5 %.
    let (ok, text, dir, _t) = bench_against_mock(39201, ("SRT_MOCK_FAIL_EVERY", "4"), "5");
    assert!(!ok, "{text}");
    assert!(
        text.contains("10 of 40 requests failed (25.0 %), more than the 5.0 % allowed"),
        "{text}"
    );
    assert!(
        !dir.join("results_concurrency_4_gpus_1.json").exists(),
        "an invalid point is not a result"
    );
    let kept = json(&dir.join("invalid-results_concurrency_4_gpus_1.json"));
    assert_eq!(kept["failed"], 10);
    assert_eq!(kept["valid"], false);
    assert!(
        kept["error_samples"][0]
            .as_str()
            .is_some_and(|e| e.contains("injected fault")),
        "{kept}"
    );

    // Allowed up to 30 %: the same point is valid, and its failures are still recorded.
    let (ok, text, dir, _t) = bench_against_mock(39202, ("SRT_MOCK_FAIL_EVERY", "4"), "30");
    assert!(ok, "{text}");
    let r = json(&dir.join("results_concurrency_4_gpus_1.json"));
    assert_eq!(
        (r["failed"].as_u64(), r["completed"].as_u64(), &r["valid"]),
        (Some(10), Some(30), &Value::Bool(true))
    );

    // A worker that "succeeds" with no tokens: zero output is never a measurement, whatever the threshold.
    let (ok, text, _dir, _t) = bench_against_mock(39203, ("SRT_MOCK_EMPTY_OUTPUT", "1"), "100");
    assert!(!ok, "{text}");
    assert!(
        text.contains("zero output tokens from 40 requests"),
        "{text}"
    );
}

#[test]
fn a_run_whose_point_fails_the_gate_does_not_succeed() {
    let (_d, run_dir, ok, err) = run(
        &recipe_without_retries(", SRT_MOCK_FAIL_EVERY: \"3\"", ""),
        "127.0.74.1",
    );
    assert!(!ok, "{err}");
    assert!(
        err.contains("more than the 5.0 % allowed (benchmark.max_failed_percent)"),
        "{err}"
    );
    let summary = json(&run_dir.join("summary.json"));
    assert_eq!(summary["status"], "failed");
    // The report shows the failure with its step and log tail.
    let html = std::fs::read_to_string(run_dir.join("report.html")).expect("report");
    assert!(
        html.contains("sa-bench/c2") && html.contains("requests failed"),
        "report lacks the failure"
    );
    assert!(
        html.contains("class=bad data-status>failed"),
        "report status"
    );

    // Settable in the recipe: the key reaches the load generator (the bench test above shows the flag's
    // effect on the same faults).
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("r.yaml");
    std::fs::write(
        &path,
        recipe_without_retries("", ", max_failed_percent: 50"),
    )
    .expect("write");
    let plan = bin()
        .arg("plan")
        .arg(&path)
        .arg("--mock-workers")
        .output()
        .expect("plan");
    let text = String::from_utf8_lossy(&plan.stdout);
    assert!(
        text.matches("--max-failed-percent 50").count() == 2,
        "{text}"
    );
}

fn tmux(args: &[&str]) -> String {
    let out = Command::new("tmux")
        .args(args)
        .output()
        .expect("tmux (scripts/test.sh installs it)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Kills the tmux session however the test ends.
struct Session(String);
impl Drop for Session {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.0])
            .status();
    }
}

#[test]
fn the_monitor_in_tmux_shows_a_live_run() {
    // A slow benchmark (decode at 40 tokens/s) so the monitor sees it running.
    let dir = tempfile::tempdir().expect("tmp");
    let text = recipe(", SRT_MOCK_TPS: \"40\"", "")
        .replace("osl: 16", "osl: 120")
        .replace("\"2x8\"", "\"8\"");
    let (mut c, run_dir) = common::mock_run(dir.path(), &text, &["--first-address", "127.0.76.1"]);
    let mut child = c.spawn().expect("run");
    let name = format!("srt-graph-monitor-{}", std::process::id());
    let session = Session(name.clone());
    let start = Instant::now();
    while !run_dir.join("plan.json").is_file() && start.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let monitor = format!(
        "{} monitor {} --log-lines 6",
        env!("CARGO_BIN_EXE_srt-graph"),
        run_dir.display()
    );
    tmux(&[
        "new-session",
        "-d",
        "-s",
        &session.0,
        "-x",
        "160",
        "-y",
        "48",
        &monitor,
    ]);
    let mut screen = String::new();
    while start.elapsed() < Duration::from_secs(90) {
        screen = tmux(&["capture-pane", "-p", "-t", &name]);
        if screen.contains("benchmark sa-bench/c8") && screen.contains("output tok/s") {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(screen.contains("srt-graph monitor"), "{screen}");
    assert!(screen.contains("results-demo"), "{screen}");
    assert!(
        screen.contains("benchmark sa-bench/c8"),
        "the current point:\n{screen}"
    );
    assert!(screen.contains("workers: 4/4 healthy"), "{screen}");
    assert!(
        screen.contains("output tok/s"),
        "live tokens/s in the log pane:\n{screen}"
    );
    assert!(screen.contains("remaining by the plan"), "{screen}");
    assert!(
        screen.contains("prefill-0") && screen.contains("up"),
        "{screen}"
    );

    // `--once` while it runs, for scripts.
    let once = bin()
        .args(["monitor", "--once"])
        .arg(&run_dir)
        .output()
        .expect("once");
    let once = String::from_utf8_lossy(&once.stdout);
    assert!(
        once.contains("steps: ") && once.contains("running"),
        "{once}"
    );

    // q quits the UI; the run finishes on its own.
    tmux(&["send-keys", "-t", &name, "q"]);
    let quit = Instant::now();
    while tmux(&["list-sessions"]).contains(&name) && quit.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        !tmux(&["list-sessions"]).contains(&name),
        "q did not quit the monitor"
    );
    drop(session);
    let status = child.wait().expect("run");
    assert!(status.success());
    common::assert_no_survivors(&run_dir);
    let once = bin()
        .args(["monitor", "--once"])
        .arg(&run_dir)
        .output()
        .expect("once");
    let once = String::from_utf8_lossy(&once.stdout);
    assert!(once.contains("— succeeded —"), "{once}");
}
