//! Real containers: pyxis + enroot in the test Slurm cluster (`tests/env/slurm.sh up` builds them from
//! `../shared/vendor` with `tests/env/containers.sh`), every worker-side step inside the image. Every test
//! here has `container` in its name: `cargo test container` runs them all.
//!
//! Without root the tests say they are skipped; without `../shared/vendor` (or when enroot or pyxis did not
//! build) they print why, from `containers.skip`, and are skipped — loudly, never a silent pass.

mod common;

use common::slurm::{job_log, slurm_cmd, submit, wait_job};
use common::{assert_no_survivors, path_env};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One at a time: the runs use the cluster's four nodes and their addresses.
static CLUSTER: Mutex<()> = Mutex::new(());

struct Containers {
    env: PathBuf,
    /// Debian 12 with python3 and venv support.
    image: String,
    /// busybox-static alone: no C library.
    no_libc_image: String,
}

fn containers() -> Option<Containers> {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("SKIPPED: the container tests need root (slurmd, enroot)");
        return None;
    }
    let env = PathBuf::from(std::env::var_os("SRT_GRAPH_SLURM_ENV").unwrap_or_else(|| {
        panic!("SRT_GRAPH_SLURM_ENV is not set: bring the cluster up with `bash tests/env/slurm.sh up` (scripts/test.sh does)")
    }));
    if let Ok(why) = std::fs::read_to_string(env.join("containers.skip")) {
        eprintln!("SKIPPED (container tests): {}", why.trim());
        return None;
    }
    let vars = std::fs::read_to_string(env.join("containers.env"))
        .expect("containers.env: tests/env/containers.sh did not run");
    let get = |k: &str| {
        vars.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .unwrap_or_else(|| panic!("{k} missing in containers.env"))
            .to_string()
    };
    Some(Containers {
        image: get("IMAGE"),
        no_libc_image: get("NO_LIBC_IMAGE"),
        env,
    })
}

/// What every container test starts with: the cluster's containers, a static binary, the cluster to
/// itself. `None`: skipped (said why).
fn setup() -> Option<(Containers, std::sync::MutexGuard<'static, ()>)> {
    let c = containers()?;
    if !static_binary() {
        return None;
    }
    Some((c, CLUSTER.lock().unwrap_or_else(|p| p.into_inner())))
}

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_srt-graph")
}

/// The test binary's `srt-graph` is the static one the containers need (scripts/test.sh builds the suite
/// for the musl target); a dynamic build names its static twin in SRT_GRAPH_NODE_BINARY.
fn static_binary() -> bool {
    if let Ok(why) = std::env::var("SRT_GRAPH_NO_STATIC") {
        eprintln!("SKIPPED (container tests): no static srt-graph: {why}");
        return false;
    }
    let static_here = std::process::Command::new("file")
        .arg("-L")
        .arg(bin())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("static"))
        .unwrap_or(false);
    if !static_here && std::env::var_os("SRT_GRAPH_NODE_BINARY").is_none() {
        panic!(
            "{} is dynamically linked: run the container tests from a musl build \
             (`cargo test --target x86_64-unknown-linux-musl container`, as scripts/test.sh does) or set SRT_GRAPH_NODE_BINARY",
            bin()
        );
    }
    true
}

/// An srtslurm.yaml naming the test image `debian12-python`, and whatever else the test needs.
fn cluster_config(dir: &Path, c: &Containers, extra: &str) -> PathBuf {
    let p = dir.join("srtslurm.yaml");
    std::fs::write(
        &p,
        format!(
            "containers:\n  debian12-python: {}\n  no-libc: {}\n{extra}",
            c.image, c.no_libc_image
        ),
    )
    .expect("write srtslurm.yaml");
    p
}

/// enroot containers left on any node of the test cluster: `node:name`, sorted.
fn enroot_containers(env: &Path) -> Vec<String> {
    enroot_container_dirs(env)
        .into_iter()
        .map(|(n, _)| n)
        .collect()
}

/// `(node:name, inode of its root filesystem)`: the same inode after a resume means it was reused.
fn enroot_container_dirs(env: &Path) -> Vec<(String, u64)> {
    use std::os::unix::fs::MetadataExt;
    let mut out = Vec::new();
    for node in std::fs::read_dir(env.join("enroot"))
        .into_iter()
        .flatten()
        .flatten()
    {
        for c in std::fs::read_dir(node.path().join("data"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let inode = c.metadata().map(|m| m.ino()).unwrap_or(0);
            let name = format!(
                "{}:{}",
                node.file_name().to_string_lossy(),
                c.file_name().to_string_lossy()
            );
            out.push((name, inode));
        }
    }
    out.sort();
    out
}

/// `submit` of `recipes/container-demo.yaml` in `dir`, with the test image and a 3 s grace.
fn submit_demo(c: &Containers, dir: &Path) -> (String, PathBuf) {
    let config = cluster_config(dir, c, "");
    let recipe = concat!(env!("CARGO_MANIFEST_DIR"), "/recipes/container-demo.yaml");
    submit(
        &c.env,
        dir,
        &[
            recipe,
            "--cluster-config",
            config.to_str().expect("utf-8"),
            "--",
            "--grace",
            "3s",
        ],
    )
}

fn bench_results(run_dir: &Path) -> usize {
    std::fs::read_dir(run_dir.join("sa-bench_isl_1024_osl_128"))
        .map(|d| {
            d.flatten()
                .filter(|f| f.path().extension().is_some_and(|e| e == "json"))
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn container_demo_runs_end_to_end_through_submit() {
    let Some((c, _cluster)) = setup() else { return };
    let dir = tempfile::tempdir().expect("tmp");
    let (job, run_dir) = submit_demo(&c, dir.path());
    let code = wait_job(&c.env, &job, Duration::from_secs(300));
    let log = job_log(&run_dir, &job);
    assert_eq!(code, "0:0", "{log}");
    assert_eq!(bench_results(&run_dir), 3, "{log}");
    // Every worker-side step ran in the image; the workers and the benchmark client are the static
    // binary at /srt-graph-bin, which exists only inside the container, so they could not have run
    // anywhere else. The router is the real sglang-router, installed inside, into a venv the image's
    // own Python made.
    let plan: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("plan.json")).expect("plan"))
            .expect("json");
    let steps = plan["steps"].as_array().expect("steps");
    let in_container = |id: &str| {
        let s = steps
            .iter()
            .find(|s| s["id"] == id)
            .unwrap_or_else(|| panic!("no step {id}"));
        (
            s["container"]["image"].as_str() == Some(c.image.as_str()),
            s["command"][0].clone(),
        )
    };
    for id in ["prefill-0", "decode-1", "sa-bench/c64"] {
        let (inside, program) = in_container(id);
        assert!(inside, "{id} not in the container");
        assert_eq!(program, "/srt-graph-bin/srt-graph", "{id}");
    }
    for id in [
        "venv/node1",
        "pip-router/node1",
        "router-3",
        "container/node4",
    ] {
        assert!(in_container(id).0, "{id} not in the container");
    }
    assert!(
        !in_container("nginx").0,
        "nginx runs on the host (no frontend.nginx_container)"
    );
    let check = std::fs::read_to_string(run_dir.join("logs/container_node2.log")).expect("log");
    assert!(
        check.contains("container image: Debian GNU/Linux 12"),
        "{check}"
    );
    let pip = std::fs::read_to_string(run_dir.join("logs/pip-router_node1.log")).expect("log");
    assert!(
        pip.contains("sglang-router") || pip.contains("sglang_router"),
        "{pip}"
    );
    // The agents in the container on all four nodes were started by one srun (its messages' log),
    // none by an srun of its own; and so were the host agents.
    let logs: Vec<String> = std::fs::read_dir(run_dir.join("logs"))
        .expect("logs")
        .flatten()
        .map(|f| f.file_name().to_string_lossy().into_owned())
        .filter(|f| f.starts_with("agent-"))
        .collect();
    let name = plan["steps"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["id"] == "prefill-0"))
        .and_then(|s| s["container"]["name"].as_str())
        .expect("a named container");
    let mut expected = vec![
        "agent-nodes.log".to_string(),
        format!("agent-nodes-{name}.log"),
    ];
    expected.sort();
    let mut logs = logs;
    logs.sort();
    let group_log =
        std::fs::read_to_string(run_dir.join("logs").join(&expected[1])).unwrap_or_default();
    assert_eq!(logs, expected, "{group_log}\n{log}");
    // Teardown removed the run's named containers from every node.
    assert!(log.contains("removed the run's containers"), "{log}");
    assert_eq!(enroot_containers(&c.env), Vec::<String>::new());
    assert_no_survivors(&run_dir);
}

#[test]
fn container_static_node_binary_runs_in_an_image_without_a_c_library() {
    let Some((c, _cluster)) = setup() else { return };
    let node_binary = std::env::var("SRT_GRAPH_NODE_BINARY").unwrap_or_else(|_| bin().to_string());
    let srun = |program: &str| {
        let path = Path::new(program);
        slurm_cmd(&c.env, "srun")
            .args(["-N1", "-w", "node3", "--no-container-mount-home"])
            .arg(format!("--container-image={}", c.no_libc_image))
            .arg(format!(
                "--container-mounts={}:/probe:ro",
                path.parent().expect("dir").display()
            ))
            .arg(format!(
                "/probe/{}",
                path.file_name().expect("file").to_string_lossy()
            ))
            .arg("--version")
            .output()
            .expect("srun")
    };
    let ok = srun(&node_binary);
    assert!(
        ok.status.success() && String::from_utf8_lossy(&ok.stdout).starts_with("srt-graph "),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    // The control: a dynamically linked program cannot even start there.
    let dynamic = srun("/usr/bin/env");
    assert!(!dynamic.status.success());
    assert!(String::from_utf8_lossy(&dynamic.stderr).contains("No such file or directory"));
}

/// A recipe of one step in the container, with the hardening tests' injection canaries as its value.
/// Everything the step touches is under the run directory, which the container sees at the same path: a
/// canary created inside would show on the host.
fn safety_recipe(dir: &Path, image: &str) -> PathBuf {
    let run = dir.join("run");
    let evil = format!(
        "$(touch {0}/canary1); `touch {0}/canary2`; echo \"q\" 'single' && touch {0}/canary3\nnewline  two spaces \\ back",
        run.display()
    );
    let text = format!(
        "name: safe\nmodel: {{container: {image}}}\nsteps:\n  - name: show\n    container: true\n    run: 'printf %s \"$EVIL\" > {}/out; test -d /srt-graph-bin'\n    env:\n      EVIL: {}\n",
        run.display(),
        serde_json::to_string(&evil).expect("json")
    );
    let p = dir.join("safe.yaml");
    std::fs::write(&p, text).expect("write");
    p
}

#[test]
fn container_recipe_values_arrive_verbatim_and_execute_nothing() {
    let Some((c, _cluster)) = setup() else { return };
    let dir = tempfile::tempdir().expect("tmp");
    let recipe = safety_recipe(dir.path(), "debian12-python");
    let config = cluster_config(dir.path(), &c, "");
    let (job, run_dir) = submit(
        &c.env,
        dir.path(),
        &[
            recipe.to_str().expect("utf-8"),
            "--cluster-config",
            config.to_str().expect("utf-8"),
        ],
    );
    let code = wait_job(&c.env, &job, Duration::from_secs(120));
    assert_eq!(code, "0:0", "{}", job_log(&run_dir, &job));
    let evil = format!(
        "$(touch {0}/canary1); `touch {0}/canary2`; echo \"q\" 'single' && touch {0}/canary3\nnewline  two spaces \\ back",
        run_dir.display()
    );
    // The step wrote through the run directory's mount (same path inside) and saw /srt-graph-bin.
    let out = std::fs::read_to_string(run_dir.join("out"))
        .unwrap_or_else(|e| panic!("{e}: {}", job_log(&run_dir, &job)));
    assert_eq!(out, evil);
    for canary in ["canary1", "canary2", "canary3"] {
        assert!(
            !run_dir.join(canary).exists(),
            "{canary}: a recipe value was executed"
        );
    }
}

/// Runs `srt-graph run` inside a fresh one-node allocation (as a batch job would) and returns its log.
fn run_in_job(
    c: &Containers,
    dir: &Path,
    recipe: &Path,
    config: &Path,
    path: Option<&Path>,
) -> (String, String) {
    let mut sbatch = slurm_cmd(&c.env, "sbatch");
    if let Some(p) = path {
        sbatch.env("PATH", format!("{}:{}", p.display(), path_env()));
    }
    let out = sbatch
        .current_dir(dir)
        .args(["--parsable", "-N", "1", "--output"])
        .arg(dir.join("job.out"))
        .arg("--wrap")
        .arg(format!(
            "{} run {} --cluster-config {} --executor slurm --run-dir {}",
            bin(),
            recipe.display(),
            config.display(),
            dir.join("run").display()
        ))
        .output()
        .expect("sbatch");
    let job = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let code = wait_job(&c.env, &job, Duration::from_secs(120));
    (
        code,
        std::fs::read_to_string(dir.join("job.out")).unwrap_or_default(),
    )
}

const BOXED: &str = "name: boxed\nmodel: {path: /tmp, container: @IMAGE@, precision: fp8}\nresources: {gpu_type: h100, gpus_per_node: 1, agg_nodes: 1, agg_workers: 1}\nfrontend: {type: sglang, enable_multiple_frontends: false}\nbackend:\n  sglang_config:\n    aggregated: {tp-size: 1}\nbenchmark: {type: manual}\n@EXTRA@";

fn boxed(dir: &Path, image: &str, extra: &str) -> PathBuf {
    let p = dir.join("boxed.yaml");
    std::fs::write(
        &p,
        BOXED.replace("@IMAGE@", image).replace("@EXTRA@", extra),
    )
    .expect("write");
    p
}

#[test]
fn container_faults_stop_the_run_before_anything_starts() {
    let Some((c, _cluster)) = setup() else { return };
    // A missing image and a missing mount source: refused before anything starts, naming the step,
    // the node and the fix.
    for (image, extra, expect) in [
        (
            "/images/missing.sqsh",
            "",
            "/images/missing.sqsh, which does not exist",
        ),
        (
            "debian12-python",
            "container_mounts:\n  /nonexistent/data: /data\n",
            "mounts /nonexistent/data into its container",
        ),
    ] {
        let dir = tempfile::tempdir().expect("tmp");
        let config = cluster_config(dir.path(), &c, "");
        let (code, log) = run_in_job(
            &c,
            dir.path(),
            &boxed(dir.path(), image, extra),
            &config,
            None,
        );
        assert_eq!(code, "1:0", "{log}");
        assert!(log.contains(expect), "{log}");
        assert!(log.contains("on node1") && log.contains("help:"), "{log}");
        assert!(log.contains("nothing was started"), "{log}");
        assert!(!dir.path().join("run/journal.jsonl").exists(), "{log}");
    }
    // An image without what the steps run (no python3, no flock): the first step in the container
    // says so, naming the node and the fix, and nothing else starts.
    let dir = tempfile::tempdir().expect("tmp");
    let config = cluster_config(dir.path(), &c, "");
    let (code, log) = run_in_job(
        &c,
        dir.path(),
        &boxed(dir.path(), "no-libc", ""),
        &config,
        None,
    );
    assert_ne!(code, "0:0", "{log}");
    assert!(
        log.contains("step `container/node1` (start_container) on node1 failed"),
        "{log}"
    );
    assert!(log.contains("has no python3"), "{log}");
    assert!(log.contains("use an image that has it"), "{log}");
    let journal = std::fs::read_to_string(dir.path().join("run/journal.jsonl")).expect("journal");
    let started: Vec<&str> = journal
        .lines()
        .filter(|l| l.contains("\"event\":\"step_started\""))
        .collect();
    assert!(
        started.iter().all(|l| l.contains("container/")),
        "{started:#?}"
    );
    // No pyxis on the cluster (its srun --help without the container options): refused up front.
    let dir = tempfile::tempdir().expect("tmp");
    let shim = dir.path().join("shim");
    std::fs::create_dir_all(&shim).expect("mkdir");
    let srun = shim.join("srun");
    std::fs::write(
        &srun,
        "#!/bin/sh\nif [ \"$1\" = --help ]; then /usr/bin/srun --help | grep -v container; exit 0; fi\nexec /usr/bin/srun \"$@\"\n",
    )
    .expect("shim");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&srun, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let config = cluster_config(dir.path(), &c, "");
    let recipe = boxed(dir.path(), "debian12-python", "");
    let (code, log) = run_in_job(&c, dir.path(), &recipe, &config, Some(&shim));
    assert_eq!(code, "1:0", "{log}");
    assert!(log.contains("has no pyxis"), "{log}");
    assert!(log.contains("nothing was started"), "{log}");
    assert_eq!(enroot_containers(&c.env), Vec::<String>::new());
}

#[test]
fn container_kill_9_then_resume_reuses_the_containers_and_down_removes_them() {
    let Some((c, _cluster)) = setup() else { return };
    let dir = tempfile::tempdir().expect("tmp");
    let config = cluster_config(dir.path(), &c, "");
    // A 4-node allocation the test holds; the orchestrator runs in it as a batch script would.
    let alloc = slurm_cmd(&c.env, "salloc")
        .args(["-N4", "--no-shell"])
        .output()
        .expect("salloc");
    let text = String::from_utf8_lossy(&alloc.stderr).to_string();
    let job = text
        .split_whitespace()
        .find_map(|w| w.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no job id in: {text}"))
        .to_string();
    // Released however the test ends (its steps with it).
    struct Allocation<'a>(&'a Path, String);
    impl Drop for Allocation<'_> {
        fn drop(&mut self) {
            let _ = slurm_cmd(self.0, "scancel").arg(&self.1).status();
        }
    }
    let _allocation = Allocation(&c.env, job.clone());
    let in_job = |args: &[&str]| {
        let mut cmd = slurm_cmd(&c.env, bin());
        cmd.current_dir(dir.path())
            .env("SLURM_JOB_ID", &job)
            .env("SLURM_JOB_NODELIST", "node[1-4]")
            .args(args);
        cmd
    };
    let run_dir = dir.path().join("run");
    let recipe = concat!(env!("CARGO_MANIFEST_DIR"), "/recipes/container-demo.yaml");
    let mut orchestrator = in_job(&[
        "run",
        recipe,
        "--cluster-config",
        config.to_str().expect("utf-8"),
        "--executor",
        "slurm",
        "-q",
        "--grace",
        "3s",
        "--run-dir",
        run_dir.to_str().expect("utf-8"),
    ])
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null())
    .spawn()
    .expect("run");
    common::wait_for_event(&run_dir, &mut orchestrator, "step_finished", "wait-healthy");
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(orchestrator.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    );
    let _ = orchestrator.wait();
    let containers_before = enroot_container_dirs(&c.env);
    assert_eq!(containers_before.len(), 4, "{containers_before:?}");
    // resume: the named containers are reused (not recreated), the services still up are adopted.
    let out = in_job(&[
        "resume",
        run_dir.to_str().expect("utf-8"),
        "--keep-up",
        "-q",
    ])
    .output()
    .expect("resume");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    common::assert_adopted(&err, &["prefill-0", "decode-1", "router-2"]);
    assert_eq!(bench_results(&run_dir), 3, "{err}");
    // The container steps ran again (a container is node state) and found the same containers.
    let check = std::fs::read_to_string(run_dir.join("logs/container_node1.log")).expect("log");
    assert_eq!(check.matches("container image:").count(), 2, "{check}");
    assert_eq!(enroot_container_dirs(&c.env), containers_before);
    // down: every process gone, no enroot container left on any node.
    let t = Instant::now();
    let down = in_job(&["down", run_dir.to_str().expect("utf-8"), "--grace", "3s"])
        .output()
        .expect("down");
    assert!(
        down.status.success(),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );
    assert!(t.elapsed() < Duration::from_secs(60));
    assert_no_survivors(&run_dir);
    assert_eq!(enroot_containers(&c.env), Vec::<String>::new());
}

#[test]
fn container_a_node_lost_in_the_gate_or_the_benchmark_is_named_and_resume_completes() {
    let Some((c, _cluster)) = setup() else { return };
    // node3 holds decode-0 and router-2 (and its host sampler); the gate and the benchmark run on node1.
    // Points kept by the resume: none after a loss in the gate; after one in the benchmark (drained as
    // its warm-up starts, seconds before its last point ends, so that Slurm's next poll falls inside
    // it), those that finished before the loss was seen, never all three.
    for (phase, kept) in [("wait-healthy", 0..=0), ("sa-bench/warmup", 0..=2)] {
        let dir = tempfile::tempdir().expect("tmp");
        let (job, run_dir) = submit_demo(&c, dir.path());
        let started = format!(r#""event":"step_started","step":"{phase}""#);
        let deadline = Instant::now() + Duration::from_secs(240);
        while !std::fs::read_to_string(run_dir.join("journal.jsonl"))
            .unwrap_or_default()
            .contains(&started)
        {
            assert!(
                Instant::now() < deadline,
                "{phase} never started: {}",
                job_log(&run_dir, &job)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        common::slurm::set_node_state(&c.env, "node3", "drain");
        let drained = Instant::now();
        let code = wait_job(&c.env, &job, Duration::from_secs(120));
        let took = drained.elapsed();
        common::slurm::set_node_state(&c.env, "node3", "resume");
        let log = job_log(&run_dir, &job);
        eprintln!("node3 drained in {phase} → job ended: {took:?}");
        assert_ne!(code, "0:0", "{log}");
        assert!(took < Duration::from_secs(30), "{phase}: {took:?}\n{log}");
        let line = log
            .lines()
            .find(|l| l.starts_with("node node3 lost (drained: srt-graph test): "))
            .unwrap_or_else(|| panic!("{phase}: the loss is not named: {log}"));
        for step in ["decode-0", "router-2"] {
            assert!(line.contains(step), "{phase}: {line}\n{log}");
        }
        let lost = common::journal_events(&run_dir, "node_lost");
        assert_eq!(lost.len(), 1, "{lost:?}");
        // Nothing left: no process on any node, no container.
        assert_no_survivors(&run_dir);
        assert_eq!(enroot_containers(&c.env), Vec::<String>::new(), "{log}");
        // The node is back: resume in a new allocation keeps the points that finished.
        let (_, code, log) =
            common::slurm::resume_in_new_allocation(&c.env, dir.path(), &run_dir, 4);
        assert_eq!(code, "0:0", "{log}");
        assert_eq!(bench_results(&run_dir), 3, "{log}");
        let kept_points = log
            .lines()
            .filter(|l| l.trim_start().starts_with("keep") && l.contains("sa-bench/c"))
            .count();
        assert!(
            kept.contains(&kept_points),
            "{phase}: {kept_points} kept: {log}"
        );
        assert_no_survivors(&run_dir);
        assert_eq!(enroot_containers(&c.env), Vec::<String>::new(), "{log}");
    }
}

#[test]
fn container_an_image_removed_while_the_job_waits_is_refused_before_anything_starts() {
    let Some((c, _cluster)) = setup() else { return };
    let dir = tempfile::tempdir().expect("tmp");
    let image = dir.path().join("image.sqsh");
    std::fs::copy(&c.image, &image).expect("copy the image");
    let config = dir.path().join("srtslurm.yaml");
    // Real (not mock) workers: mock ones run on the host when the image is not there. The job waits
    // in the queue (`begin`) while the image goes; it would never get to start a GPU-less worker.
    std::fs::write(
        &config,
        "use_gpus_per_node_directive: false\ndefault_sbatch_directives:\n  begin: now+60\n",
    )
    .expect("config");
    let recipe = boxed(dir.path(), image.to_str().expect("utf-8"), "");
    let (job, run_dir) = submit(
        &c.env,
        dir.path(),
        &[
            recipe.to_str().expect("utf-8"),
            "--cluster-config",
            config.to_str().expect("utf-8"),
        ],
    );
    std::fs::remove_file(&image).expect("remove the image");
    let held = slurm_cmd(&c.env, "scontrol")
        .args(["update", &format!("jobid={job}"), "starttime=now"])
        .status()
        .expect("scontrol");
    assert!(held.success());
    let code = wait_job(&c.env, &job, Duration::from_secs(120));
    let log = job_log(&run_dir, &job);
    assert_ne!(code, "0:0", "{log}");
    assert!(
        log.contains(&format!("{}, which does not exist", image.display()))
            && log.contains("nothing was started"),
        "{log}"
    );
    assert_eq!(enroot_containers(&c.env), Vec::<String>::new(), "{log}");
    assert!(
        common::journal_events(&run_dir, "spawned").is_empty(),
        "{log}"
    );
}

/// A small ext4 file system on a loop device, mounted for a test (unmounted however it ends).
/// `None`: this machine does not let root mount one (said why).
fn loop_disk(dir: &Path, mib: u64) -> Option<common::Mounted> {
    let image = dir.join("disk.img");
    let mnt = dir.join("disk");
    std::fs::create_dir_all(&mnt).expect("mkdir");
    std::fs::File::create(&image)
        .and_then(|f| f.set_len(mib << 20))
        .expect("disk image");
    // No blocks reserved for root: the orchestrator here is root, and it must run out as a user would.
    let made = std::process::Command::new("mkfs.ext4")
        .args(["-q", "-F", "-m", "0"])
        .arg(&image)
        .status()
        .is_ok_and(|s| s.success());
    let mounted = made
        && std::process::Command::new("mount")
            .args(["-o", "loop"])
            .arg(&image)
            .arg(&mnt)
            .status()
            .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("SKIPPED: no loop-mounted file system here (mkfs.ext4 or mount -o loop failed)");
        return None;
    }
    Some(common::Mounted(mnt))
}

#[test]
fn container_a_full_run_directory_disk_fails_the_run_truthfully_and_resume_completes() {
    let Some((c, _cluster)) = setup() else { return };
    let dir = tempfile::tempdir().expect("tmp");
    let Some(disk) = loop_disk(dir.path(), 256) else {
        return;
    };
    let (job, run_dir) = submit_demo(&c, &disk.0);
    let healthy = r#""event":"step_finished","step":"wait-healthy""#;
    let deadline = Instant::now() + Duration::from_secs(240);
    while !std::fs::read_to_string(run_dir.join("journal.jsonl"))
        .unwrap_or_default()
        .contains(healthy)
    {
        assert!(
            Instant::now() < deadline,
            "never healthy: {}",
            job_log(&run_dir, &job)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let filled = Instant::now();
    let filler = common::fill_disk(&disk.0);
    let code = wait_job(&c.env, &job, Duration::from_secs(120));
    let took = filled.elapsed();
    eprintln!("run directory's disk full → job ended: {took:?}");
    // The job's own output is on the full disk too: the journal and `status` are what tell.
    assert_ne!(code, "0:0", "{}", job_log(&run_dir, &job));
    common::assert_full_disk_recorded(&run_dir);
    assert_no_survivors(&run_dir);
    assert_eq!(enroot_containers(&c.env), Vec::<String>::new());
    std::fs::remove_file(&filler).expect("free the disk");
    let (_, code, log) = common::slurm::resume_in_new_allocation(&c.env, &disk.0, &run_dir, 4);
    assert_eq!(code, "0:0", "{log}");
    assert_eq!(bench_results(&run_dir), 3, "{log}");
    assert_no_survivors(&run_dir);
    assert_eq!(enroot_containers(&c.env), Vec::<String>::new(), "{log}");
}

/// The kill-point harness on Slurm with pyxis containers: the container demo is submitted, its
/// orchestrator `kill -9`ed once its journal holds a chosen number of events (spread over the run by
/// a seeded generator), and the run resumed in a new allocation, each time. Every resumed run must
/// complete with all its results, and leave no process and no container on any node.
/// `KILL_POINTS_SLURM` (default 2) points, `KILL_SEED` shifts them; figures in
/// `target/kill-points-slurm.txt`.
#[test]
fn container_kill_9_at_random_points_then_resume_in_a_new_allocation() {
    let Some((c, _cluster)) = setup() else { return };
    let points: u64 = std::env::var("KILL_POINTS_SLURM")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let mut state: u64 = std::env::var("KILL_SEED")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0)
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut next = |below: u64| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) % below.max(1)
    };
    let mut report = String::new();
    let (mut hit, mut completed) = (0, 0);
    for k in 0..points {
        let dir = tempfile::tempdir().expect("tmp");
        let (job, run_dir) = submit_demo(&c, dir.path());
        // A whole run writes about three events per step (started, spawned, finished) and two more.
        let deadline = Instant::now() + Duration::from_secs(120);
        let plan = loop {
            if let Some(p) = std::fs::read(run_dir.join("plan.json"))
                .ok()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            {
                break p;
            }
            assert!(
                Instant::now() < deadline,
                "no plan: {}",
                job_log(&run_dir, &job)
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        let total = 3 * plan["steps"].as_array().map_or(0, Vec::len) as u64 + 2;
        let at = 2 + next(total - 3) as usize;
        let events = |run_dir: &Path| {
            std::fs::read_to_string(run_dir.join("journal.jsonl"))
                .unwrap_or_default()
                .lines()
                .count()
        };
        while events(&run_dir) < at && Instant::now() < deadline + Duration::from_secs(120) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let orchestrator = common::journal_events(&run_dir, "run_started")
            .first()
            .and_then(|r| r["orchestrator_pid"].as_i64());
        let killed = orchestrator.is_some_and(|pid| {
            nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            )
            .is_ok()
        });
        let _ = wait_job(&c.env, &job, Duration::from_secs(120));
        let ended_alone = common::journal_events(&run_dir, "run_finished").len() == 1;
        if !killed || ended_alone {
            report.push_str(&format!(
                "point {k}: event {at}/{total}: the run had ended\n"
            ));
            continue;
        }
        hit += 1;
        let (_, code, log) =
            common::slurm::resume_in_new_allocation(&c.env, dir.path(), &run_dir, 4);
        assert_eq!(code, "0:0", "point {k} (event {at}/{total}): {log}");
        assert_eq!(bench_results(&run_dir), 3, "point {k}: {log}");
        assert_no_survivors(&run_dir);
        assert_eq!(
            enroot_containers(&c.env),
            Vec::<String>::new(),
            "point {k}: {log}"
        );
        completed += 1;
        report.push_str(&format!(
            "point {k}: killed at event {at}/{total}; resumed, completed\n"
        ));
    }
    report.push_str(&format!(
        "{points} points, {hit} hit a live run, {completed} resumed and completed, 0 processes and 0 containers left\n"
    ));
    eprint!("{report}");
    let _ = std::fs::write(
        concat!(env!("CARGO_MANIFEST_DIR"), "/target/kill-points-slurm.txt"),
        &report,
    );
}
