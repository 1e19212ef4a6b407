//! The seed pipeline for real on this machine: mock GPU workers, the real sglang-router (from PyPI, into
//! the run's cached venv), real nginx, the built-in sa-bench. Each test uses its own loopback range so the
//! tests can run in parallel.

mod common;

use assert_cmd::Command;
use common::{assert_no_survivors, path_env};
use serde_json::Value;
use srt_graph_engine::journal::{self, Event};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn srt_graph() -> Command {
    let mut c = Command::cargo_bin("srt-graph").expect("bin");
    c.env_remove("SLURM_JOB_ID").env_remove("SRTSLURM_CONFIG");
    c.env("PATH", path_env());
    c.timeout(Duration::from_secs(300));
    c
}

const SMALL_DEMO: &str = r#"name: small-demo
model: {path: mock-model, container: none, precision: bf16}
resources: {gpu_type: gb300, gpus_per_node: 4, prefill_nodes: 2, prefill_workers: 2, decode_nodes: 2, decode_workers: 2}
frontend: {type: sglang, enable_multiple_frontends: true, num_additional_frontends: 3}
backend:
  type: sglang
  prefill_environment: {SRT_MOCK_LOAD_TIME: "0.3"}
  decode_environment: {SRT_MOCK_LOAD_TIME: "0.3"@CRASH@}
  sglang_config:
    prefill: {served-model-name: test-model, tensor-parallel-size: 4, disaggregation-mode: prefill, disaggregation-bootstrap-port: 30001}
    decode: {served-model-name: test-model, tensor-parallel-size: 4, disaggregation-mode: decode, disaggregation-bootstrap-port: 30001}
health_check: {max_attempts: 60, interval_seconds: 1}
benchmark: {type: sa-bench, isl: 64, osl: 8, concurrencies: "2x8", req_rate: inf}
"#;

/// Runs `recipe` with mock workers, node 0 at `first`, plus `extra` flags. Returns the temporary
/// directory (keep it alive while reading the run), the run directory and the output.
fn run_recipe(
    recipe: &str,
    first: &str,
    extra: &[&str],
) -> (tempfile::TempDir, PathBuf, std::process::Output) {
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::write(dir.path().join("demo.yaml"), recipe).expect("write");
    let run_dir = dir.path().join("run");
    let out = srt_graph()
        .current_dir(dir.path())
        .args([
            "run",
            "demo.yaml",
            "--mock-workers",
            "--first-address",
            first,
        ])
        .args(extra)
        .arg("--run-dir")
        .arg(&run_dir)
        .output()
        .expect("run");
    (dir, run_dir, out)
}

#[test]
fn disaggregated_demo_end_to_end() {
    let (_dir, run_dir, out) = run_recipe(&SMALL_DEMO.replace("@CRASH@", ""), "127.0.21.1", &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");

    // Every router saw every worker.
    let gate = std::fs::read_to_string(run_dir.join("logs/wait-healthy.log")).expect("gate log");
    for k in 1..=4 {
        assert!(
            gate.contains(&format!(
                "http://127.0.21.{k}:30080: 2/2 prefill, 2/2 decode"
            )),
            "{gate}"
        );
    }
    assert!(
        gate.contains("Model is ready.") && gate.contains("smoke request"),
        "{gate}"
    );

    // `plan` with the same options shows the graph the run executed: the same steps, installs included.
    let dir = run_dir.parent().expect("dir");
    let planned = srt_graph()
        .current_dir(dir)
        .args(["plan", "demo.yaml", "--mock-workers", "--json"])
        .output()
        .expect("plan");
    let ids = |v: &serde_json::Value| -> Vec<String> {
        v["steps"]
            .as_array()
            .map(|s| {
                s.iter()
                    .filter_map(|s| s["id"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    let planned: serde_json::Value = serde_json::from_slice(&planned.stdout).expect("plan json");
    let ran: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("plan.json")).expect("plan.json"))
            .expect("json");
    assert_eq!(ids(&planned), ids(&ran));
    assert!(ids(&ran).contains(&"pip-router/node0".to_string()));

    // nginx spread the benchmark over all four routers.
    let access = std::fs::read_to_string(run_dir.join("nginx/access.log")).expect("access log");
    let mut per_router = std::collections::BTreeMap::new();
    for line in access.lines() {
        if let Some(upstream) = line.split_whitespace().nth(2) {
            *per_router.entry(upstream.to_string()).or_insert(0) += 1;
        }
    }
    assert_eq!(per_router.len(), 4, "{per_router:?}");
    assert!(per_router.values().all(|&n| n >= 5), "{per_router:?}");

    // sa-bench result files, named and keyed as sa-bench's, with sane values.
    let results = run_dir.join("sa-bench_isl_64_osl_8");
    for c in [2, 8] {
        let f = results.join(format!("results_concurrency_{c}_gpus_16_ctx_8_gen_8.json"));
        let v: Value = serde_json::from_slice(&std::fs::read(&f).expect("result")).expect("json");
        for key in [
            "date",
            "backend",
            "model_id",
            "tokenizer_id",
            "best_of",
            "num_prompts",
            "request_rate",
            "burstiness",
            "max_concurrency",
            "duration",
            "completed",
            "total_input_tokens",
            "total_output_tokens",
            "request_throughput",
            "request_goodput:",
            "output_throughput",
            "total_token_throughput",
            "input_lens",
            "output_lens",
            "ttfts",
            "itls",
            "generated_texts",
            "errors",
            "mean_ttft_ms",
            "median_ttft_ms",
            "std_ttft_ms",
            "p99_ttft_ms",
            "mean_tpot_ms",
            "median_tpot_ms",
            "std_tpot_ms",
            "p99_tpot_ms",
            "mean_itl_ms",
            "median_itl_ms",
            "std_itl_ms",
            "p99_itl_ms",
            "mean_e2el_ms",
            "median_e2el_ms",
            "std_e2el_ms",
            "p99_e2el_ms",
        ] {
            assert!(v.get(key).is_some(), "{} lacks {key}", f.display());
        }
        assert_eq!(v["completed"], 5 * c);
        assert_eq!(v["max_concurrency"], c);
        assert_eq!(v["request_rate"], "inf");
        let out_lens = v["output_lens"].as_array().expect("lens");
        assert!(out_lens
            .iter()
            .all(|l| (6..=8).contains(&l.as_u64().expect("len"))));
        let ttft = v["mean_ttft_ms"].as_f64().expect("ttft");
        assert!(ttft > 0.0 && ttft < 5000.0, "ttft {ttft}");
        assert!(v["output_throughput"].as_f64().expect("tput") > 0.0);
    }
    assert!(stderr.contains("sa-bench results"), "{stderr}");
    assert_no_survivors(&run_dir);
}

#[test]
fn a_worker_crash_during_the_benchmark_fails_the_run_with_its_name_and_log() {
    let recipe = SMALL_DEMO
        .replace("@CRASH@", ", SRT_MOCK_CRASH_AFTER: \"6\"")
        .replace("\"2x8\"", "\"8x16\"");
    let (_dir, run_dir, out) = run_recipe(&recipe, "127.0.22.1", &["-q"]);
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("service `decode-0` (start_worker) on node2 exited while the run was live")
            || stderr.contains(
                "service `decode-1` (start_worker) on node3 exited while the run was live"
            ),
        "{stderr}"
    );
    assert!(
        stderr.contains("crash injected after 6 request(s)"),
        "log tail shown: {stderr}"
    );
    assert_no_survivors(&run_dir);
}

#[test]
fn sglang_src_dir_is_mounted_and_installed_before_the_workers() {
    let dir = tempfile::tempdir().expect("tmp");
    let run_dir = dir.path().join("run");
    let out = srt_graph()
        .args([
            "run",
            "recipes/local-sglang-src.yaml",
            "--mock-workers",
            "--first-address",
            "127.0.23.1",
            "-q",
            "--run-dir",
        ])
        .arg(&run_dir)
        .current_dir(root())
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for node in ["node0", "node1"] {
        let link = run_dir.join(node).join("ext-sglang-src");
        assert_eq!(
            std::fs::read_link(&link).expect("symlink"),
            root().join("recipes/fake-sglang")
        );
        let log = std::fs::read_to_string(run_dir.join(format!("logs/pip-sglang-src_{node}.log")))
            .expect("pip log");
        assert!(log.contains("Successfully installed fake-sglang"), "{log}");
    }
    // Each worker started only after the install on its own node finished.
    let records = journal::read(&run_dir.join("journal.jsonl")).expect("journal");
    let when = |pred: &dyn Fn(&Event) -> bool| {
        records
            .iter()
            .find(|r| pred(&r.event))
            .map(|r| r.t)
            .expect("event")
    };
    for (worker, node) in [("prefill-0", "node0"), ("decode-0", "node1")] {
        let pip = format!("pip-sglang-src/{node}");
        let installed = when(&|e| matches!(e, Event::StepFinished { step, .. } if *step == pip));
        let started = when(&|e| matches!(e, Event::StepStarted { step, .. } if step == worker));
        assert!(
            installed <= started,
            "{worker} started before {pip} finished"
        );
    }
    // The editable install points at the mounted checkout, not a copy.
    let venv = std::env::var("SRT_GRAPH_CACHE").map_or_else(
        |_| PathBuf::from(std::env::var("HOME").expect("HOME")).join(".cache/srt-graph/venv"),
        |c| PathBuf::from(c).join("venv"),
    );
    let py = std::process::Command::new(venv.join("bin/python"))
        .args(["-c", "import fake_sglang; print(fake_sglang.SOURCE)"])
        .output()
        .expect("python");
    assert!(
        String::from_utf8_lossy(&py.stdout).contains("recipes/fake-sglang/fake_sglang/__init__.py")
    );
    assert_no_survivors(&run_dir);
}

#[test]
fn single_router_and_aggregated_variants_run() {
    // single router: on :8000, no nginx; aggregated: 4 workers sharing a node, one router behind nginx.
    for (recipe, first, check, nginx) in [
        (
            "recipes/single-router.yaml",
            "127.0.24.1",
            "http://127.0.24.1:8000: 1/1 prefill, 1/1 decode",
            false,
        ),
        (
            "recipes/aggregated.yaml",
            "127.0.25.1",
            "http://127.0.25.1:30080: 0/0 prefill, 4/4 decode",
            true,
        ),
    ] {
        let dir = tempfile::tempdir().expect("tmp");
        let run_dir = dir.path().join("run");
        let mut cmd = srt_graph();
        cmd.args([
            "run",
            recipe,
            "--mock-workers",
            "--first-address",
            first,
            "-q",
            "--run-dir",
        ])
        .arg(&run_dir)
        .current_dir(root());
        // Shorten the sweeps: these recipes are written for GPUs.
        let out = cmd
            .env("SRT_MOCK_TPS", "5000")
            .env("SRT_MOCK_LOAD_TIME", "0.2")
            .output()
            .expect("run");
        assert!(
            out.status.success(),
            "{recipe}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let gate = std::fs::read_to_string(run_dir.join("logs/wait-healthy.log")).expect("gate");
        assert!(gate.contains(check), "{recipe}: {gate}");
        let plan: Value =
            serde_json::from_slice(&std::fs::read(run_dir.join("plan.json")).expect("plan"))
                .expect("json");
        let has_nginx = plan["steps"]
            .as_array()
            .expect("steps")
            .iter()
            .any(|s| s["kind"] == "start_nginx");
        assert_eq!(has_nginx, nginx, "{recipe}");
        assert_no_survivors(&run_dir);
    }
}

/// Minimal HTTP/1.1 client for the direct API test (Connection: close).
fn http(method: &str, addr: &str, path: &str, body: Option<&str>) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let body = body.unwrap_or("");
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).expect("write");
    let mut resp = String::new();
    s.read_to_string(&mut resp).expect("read");
    let status = resp
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, resp)
}

/// Kills a spawned process group when the test ends, pass or fail.
struct Group(std::process::Child);

impl Drop for Group {
    fn drop(&mut self) {
        let pgid = nix::unistd::Pid::from_raw(self.0.id() as i32);
        let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
        let _ = self.0.wait();
    }
}

fn spawn_group(program: &Path, args: &[&str], log: &Path) -> Group {
    use std::os::unix::process::CommandExt;
    let out = std::fs::File::create(log).expect("log");
    let child = std::process::Command::new(program)
        .args(args)
        .stdout(out.try_clone().expect("dup"))
        .stderr(out)
        .process_group(0)
        .spawn()
        .expect("spawn");
    Group(child)
}

fn wait_for(addr: &str, path: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(addr).is_err() || http("GET", addr, path, None).0 != 200 {
        assert!(Instant::now() < deadline, "{addr}{path} never answered 200");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The venv with the real sglang-router, created the way runs create it (and shared with them).
fn router_python() -> PathBuf {
    let venv = std::env::var("SRT_GRAPH_CACHE").map_or_else(
        |_| PathBuf::from(std::env::var("HOME").expect("HOME")).join(".cache/srt-graph/venv"),
        |c| PathBuf::from(c).join("venv"),
    );
    std::fs::create_dir_all(venv.parent().expect("parent")).expect("cache dir");
    let lock = format!("{}.lock", venv.display());
    let venv_s = venv.display().to_string();
    let py = format!("{venv_s}/bin/python");
    for argv in [
        vec!["flock", &lock, "python3", "-m", "venv", &venv_s],
        vec![
            "flock",
            &lock,
            &py,
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            "sglang-router==0.3.2",
        ],
    ] {
        let ok = std::process::Command::new(argv[0])
            .args(&argv[1..])
            .status()
            .expect("install")
            .success();
        assert!(ok, "{argv:?} failed");
    }
    PathBuf::from(py)
}

#[test]
fn the_mock_speaks_sglang_to_the_real_router() {
    let py = router_python();
    let bin = assert_cmd::cargo::cargo_bin("srt-graph");
    let dir = tempfile::tempdir().expect("tmp");
    let log = |n: &str| dir.path().join(n);
    let _prefill = spawn_group(
        &bin,
        &[
            "mock-worker",
            "--disaggregation-mode",
            "prefill",
            "--host",
            "127.0.26.1",
            "--port",
            "30000",
            "--disaggregation-bootstrap-port",
            "30001",
            "--served-model-name",
            "m",
            "--mock-load-time",
            "0.2",
            "--trust-remote-code",
            "--cuda-graph-bs",
            "1",
            "2",
            "4",
        ],
        &log("prefill.log"),
    );
    let _decode = spawn_group(
        &bin,
        &[
            "mock-worker",
            "--disaggregation-mode",
            "decode",
            "--host",
            "127.0.26.2",
            "--port",
            "30000",
            "--served-model-name",
            "m",
            "--mock-load-time",
            "0.2",
            "--mock-bootstrap-timeout",
            "1",
        ],
        &log("decode.log"),
    );
    wait_for("127.0.26.1:30000", "/health");
    wait_for("127.0.26.2:30000", "/health");
    for path in [
        "/server_info",
        "/get_server_info",
        "/model_info",
        "/get_model_info",
        "/v1/models",
    ] {
        let (status, body) = http("GET", "127.0.26.1:30000", path, None);
        assert_eq!(status, 200, "{path}: {body}");
    }
    let (_, models) = http("GET", "127.0.26.2:30000", "/v1/models", None);
    assert!(models.contains("\"id\":\"m\""), "{models}");

    let _router = spawn_group(
        &py,
        &[
            "-m",
            "sglang_router.launch_router",
            "--pd-disaggregation",
            "--prefill",
            "http://127.0.26.1:30000",
            "30001",
            "--decode",
            "http://127.0.26.2:30000",
            "--host",
            "127.0.26.3",
            "--port",
            "30080",
            "--prometheus-host",
            "127.0.26.3",
        ],
        &log("router.log"),
    );
    wait_for("127.0.26.3:30080", "/workers");
    // The router answers before it has probed and registered the workers: wait for both.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, workers) = http("GET", "127.0.26.3:30080", "/workers", None);
        if workers.contains("\"prefill_count\":1") && workers.contains("\"decode_count\":1") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "router never registered both workers: {workers}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    let cases = [
        (
            "/v1/completions",
            r#"{"model":"m","prompt":"a b c","max_tokens":3,"stream":false}"#,
            "\"finish_reason\":\"length\"",
        ),
        (
            "/v1/completions",
            r#"{"model":"m","prompt":"a b c","max_tokens":3,"stream":true}"#,
            "data: [DONE]",
        ),
        (
            "/v1/chat/completions",
            r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":2,"stream":true}"#,
            "chat.completion.chunk",
        ),
        (
            "/v1/chat/completions",
            r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":2}"#,
            "\"role\":\"assistant\"",
        ),
        (
            "/generate",
            r#"{"text":"hello there","sampling_params":{"max_new_tokens":3}}"#,
            "\"completion_tokens\":3",
        ),
    ];
    for (path, body, expect) in cases {
        let (status, resp) = http("POST", "127.0.26.3:30080", path, Some(body));
        assert_eq!(status, 200, "{path}: {resp}");
        assert!(resp.contains(expect), "{path}: {resp}");
    }
    // The router injected the bootstrap fields and the decode side fetched the prefilled room.
    // Without a prefill partner, decode fails as a real one would.
    let (status, resp) = http(
        "POST",
        "127.0.26.2:30000",
        "/v1/completions",
        Some(
            r#"{"model":"m","prompt":"x","max_tokens":2,"bootstrap_host":"127.0.26.1","bootstrap_port":30001,"bootstrap_room":42}"#,
        ),
    );
    assert_eq!(status, 500, "{resp}");
    assert!(resp.contains("KV transfer failed"), "{resp}");
    let (status, _) = http(
        "POST",
        "127.0.26.2:30000",
        "/v1/completions",
        Some(r#"{"model":"m","prompt":"x","max_tokens":2}"#),
    );
    assert_eq!(status, 400);
}

#[test]
fn bench_counts_tokens_with_the_models_tokenizer() {
    let bin = assert_cmd::cargo::cargo_bin("srt-graph");
    let dir = tempfile::tempdir().expect("tmp");
    let model = dir.path().join("model");
    std::fs::create_dir(&model).expect("model dir");
    // A real (WordLevel) tokenizer.json: every word is one token, punctuation another.
    let tokenizer = serde_json::json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": [], "normalizer": null,
        "pre_tokenizer": {"type": "Whitespace"}, "post_processor": null, "decoder": null,
        "model": {"type": "WordLevel", "vocab": {"[UNK]": 0, "the": 1, "of": 2}, "unk_token": "[UNK]"},
    });
    std::fs::write(model.join("tokenizer.json"), tokenizer.to_string()).expect("tokenizer");
    let _mock = spawn_group(
        &bin,
        &[
            "mock-worker",
            "--host",
            "127.0.27.1",
            "--port",
            "30000",
            "--served-model-name",
            "m",
            "--mock-load-time",
            "0",
        ],
        &dir.path().join("mock.log"),
    );
    wait_for("127.0.27.1:30000", "/health");
    let out = srt_graph()
        .args([
            "bench",
            "--url",
            "http://127.0.27.1:30000",
            "--model",
            "m",
            "--isl",
            "40",
            "--osl",
            "4",
        ])
        .args([
            "--random-range-ratio",
            "1",
            "--concurrency",
            "2",
            "--prompts-per-concurrency",
            "3",
            "--result-dir",
        ])
        .arg(dir.path().join("res"))
        .arg("--tokenizer")
        .arg(&model)
        .output()
        .expect("bench");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("token counts: ") && stdout.contains("tokenizer.json"),
        "{stdout}"
    );
    let v = first_result(&dir.path().join("res"));
    assert_eq!(v["input_lens"], serde_json::json!([40, 40, 40, 40, 40, 40]));
    assert_eq!(v["tokenizer_id"], model.display().to_string());
    // srtctl's default (`auto`): a model without a chat template gets raw prompts, and the log says so.
    assert!(stdout.contains("prompts are sent raw"), "{stdout}");

    // `use_chat_template: true` without a template fails before any request, with sa-bench's advice.
    let bench = |extra: &[&str], res: &str| {
        srt_graph()
            .args(["bench", "--url", "http://127.0.27.1:30000", "--model", "m"])
            .args(["--isl", "40", "--osl", "4", "--random-range-ratio", "1"])
            .args(["--concurrency", "2", "--prompts-per-concurrency", "3"])
            .arg("--result-dir")
            .arg(dir.path().join(res))
            .arg("--tokenizer")
            .arg(&model)
            .args(extra)
            .output()
            .expect("bench")
    };
    let out = bench(&["--chat-template", "on"], "res-on");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("has no chat template") && stderr.contains("custom_tokenizer"),
        "{stderr}"
    );

    // With the model's template, the template's tokens count towards the input length, as sa-bench's.
    std::fs::write(
        model.join("tokenizer_config.json"),
        r#"{"chat_template": "<|user|> {{ messages[0].content }} {% if add_generation_prompt %}<|assistant|>{% endif %}"}"#,
    )
    .expect("tokenizer_config");
    let prompt_tokens = || {
        let (_, text) = http("GET", "127.0.27.1:30000", "/metrics", None);
        text.lines()
            .find_map(|l| l.strip_prefix("sglang:prompt_tokens_total"))
            .and_then(|v| v.split_whitespace().last()?.parse::<f64>().ok())
            .expect("sglang:prompt_tokens_total")
    };
    let before = prompt_tokens();
    let out = bench(&["--chat-template", "on"], "res-template");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The worker read the wrapped prompts: 34 words of body between `<|user|>` and `<|assistant|>`
    // (the mock counts whitespace-separated words; the tokenizer counted 6 template tokens).
    assert_eq!(prompt_tokens() - before, 6.0 * 36.0);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("chat template: ") && stdout.contains("tokenizer_config.json"),
        "{stdout}"
    );
    let v = first_result(&dir.path().join("res-template"));
    assert_eq!(v["input_lens"], serde_json::json!([40, 40, 40, 40, 40, 40]));
}

/// The one result file a bench wrote into `dir`.
fn first_result(dir: &Path) -> Value {
    let f = std::fs::read_dir(dir)
        .expect("results")
        .flatten()
        .next()
        .expect("a result file");
    serde_json::from_slice(&std::fs::read(f.path()).expect("read")).expect("json")
}

#[test]
fn nginx_refused_by_a_taken_port_names_the_process_holding_it() {
    // The seed's own troubleshooting case: something already listens on :8000.
    let holder = std::net::TcpListener::bind("127.0.28.1:8000").expect("bind");
    let (_dir, run_dir, out) =
        run_recipe(&SMALL_DEMO.replace("@CRASH@", ""), "127.0.28.1", &["-q"]);
    drop(holder);
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("service `nginx` (start_nginx) on node0 exited while the run was live"),
        "{stderr}"
    );
    assert!(stderr.contains("Address already in use"), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "port 8000 is held by pid {} (",
            std::process::id()
        )),
        "{stderr}"
    );
    assert_no_survivors(&run_dir);
}
