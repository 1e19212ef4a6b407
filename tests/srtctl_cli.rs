//! srtctl's verbs as an srt-slurm user and their CI drive them: `apply` (a directory on the test Slurm
//! cluster, one job per variant, `--json` lines, tags; `--mock` here), `dry-run`, `preflight`,
//! `resolve-override`, `check`; bad input; completions, man page and `--version`; and the pip wheel,
//! installed into a fresh venv with no cargo on PATH.

mod common;

use common::slurm::{job_log, slurm_cmd, wait_job};
use common::{loopback, path_env};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_srt-graph")
}

fn srt(dir: &Path, args: &[&str]) -> Output {
    Command::new(bin())
        .current_dir(dir)
        .args(args)
        .env("PATH", path_env())
        .env_remove("SLURM_JOB_ID")
        .env_remove("SRTSLURM_CONFIG")
        .output()
        .expect("srt-graph")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn json_lines(out: &Output) -> Vec<Value> {
    text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line: {l}: {e}")))
        .collect()
}

const STEPS: &str = "name: hello\nsteps:\n  - {name: a, run: \"echo a\"}\n  - {name: b, run: \"echo b\", after: [a]}\n";
const OVERRIDE: &str = "base:\n  name: greet\n  steps:\n    - {name: a, run: \"echo base\"}\noverride_en:\n  steps:\n    - {name: a, run: \"echo hello\"}\noverride_fr:\n  steps:\n    - {name: a, run: \"echo bonjour\"}\n";
const BAD: &str = "name: broken\nsteps:\n  - {name: a, rn: \"echo a\"}\n";

fn recipes(dir: &Path, with_bad: bool) -> PathBuf {
    let d = dir.join("recipes");
    std::fs::create_dir_all(d.join("more")).expect("mkdir");
    std::fs::write(d.join("hello.yaml"), STEPS).expect("write");
    std::fs::write(d.join("more/greet.yaml"), OVERRIDE).expect("write");
    if with_bad {
        std::fs::write(d.join("more/broken.yaml"), BAD).expect("write");
    }
    d
}

#[test]
fn a_directory_with_one_bad_recipe_submits_nothing_and_names_it() {
    let dir = tempfile::tempdir().expect("tmp");
    recipes(dir.path(), true);
    let out = srt(
        dir.path(),
        &["apply", "-f", "recipes", "--json", "-o", "out"],
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "srtctl exits 1: {}",
        text(&out.stderr)
    );
    let err = text(&out.stderr);
    assert!(err.contains("broken.yaml:3:"), "file and line: {err}");
    assert!(
        err.contains("steps[0].rn") || err.contains("rn"),
        "field: {err}"
    );
    assert!(err.contains("nothing was submitted"), "{err}");
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["status"], "error");
    assert!(!dir.path().join("out").exists(), "nothing was written");
    // dry-run refuses the same directory the same way.
    let dry = srt(dir.path(), &["dry-run", "-f", "recipes"]);
    assert_eq!(dry.status.code(), Some(1));
    assert!(text(&dry.stderr).contains("broken.yaml:3:"));
}

#[test]
fn srtctl_flags_without_meaning_here_are_named_with_the_equivalent() {
    let dir = tempfile::tempdir().expect("tmp");
    recipes(dir.path(), false);
    let bash = srt(dir.path(), &["apply", "-f", "recipes/hello.yaml", "--bash"]);
    assert_eq!(bash.status.code(), Some(1));
    let err = text(&bash.stderr);
    assert!(
        err.contains("--bash") && err.contains("srt-graph run"),
        "{err}"
    );
    let tick = srt(
        dir.path(),
        &["apply", "-f", "recipes/hello.yaml", "--mock-tick-s", "0.1"],
    );
    assert_eq!(tick.status.code(), Some(1));
    assert!(
        text(&tick.stderr).contains("--sim-speed"),
        "{}",
        text(&tick.stderr)
    );
    // Flags that change nothing are said to, not swallowed.
    let dry = srt(
        dir.path(),
        &["dry-run", "-f", "recipes/hello.yaml", "--sweep", "-y"],
    );
    assert!(dry.status.success(), "{}", text(&dry.stderr));
    let err = text(&dry.stderr);
    assert!(
        err.contains("--sweep changes nothing") && err.contains("-y/--yes changes nothing"),
        "{err}"
    );
    // A setup script is a name in configs/, never a path.
    let bad = srt(
        dir.path(),
        &[
            "apply",
            "-f",
            "recipes/hello.yaml",
            "--setup-script",
            "../x.sh",
        ],
    );
    assert_eq!(
        bad.status.code(),
        Some(2),
        "a command-line error is clap's: {}",
        text(&bad.stderr)
    );
    assert!(text(&bad.stderr).contains("not a setup script name"));
    let missing = srt(
        dir.path(),
        &["apply", "-f", "recipes/nothing.yaml", "--json"],
    );
    assert_eq!(missing.status.code(), Some(1));
    assert!(json_lines(&missing)[0]["error"]
        .as_str()
        .unwrap_or("")
        .contains("not found"));
}

#[test]
fn dry_run_prints_the_job_script_and_srtctls_tables() {
    let dir = tempfile::tempdir().expect("tmp");
    let recipe = dir.path().join("r.yaml");
    let image = dir.path().join("image.sqsh");
    std::fs::write(&image, "").expect("image");
    std::fs::write(
        &recipe,
        format!(
            "name: tables\nmodel: {{path: /models/m, container: {}}}\nresources: {{gpu_type: h100, gpus_per_node: 8, agg_nodes: 1, agg_workers: 1}}\n\
             backend: {{type: sglang, aggregated_environment: {{NCCL_DEBUG: INFO}}}}\nenvironment: {{HF_TOKEN: s3cr3t-value}}\n\
             container_mounts: {{/data/cache: /cache}}\nsrun_options: {{cpu-bind: none}}\nbenchmark: {{type: manual}}\n",
            image.display()
        ),
    )
    .expect("recipe");
    let out = srt(dir.path(), &["dry-run", "-f", "r.yaml"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let o = text(&out.stdout);
    assert!(o.contains("#SBATCH --nodes=1"), "{o}");
    assert!(
        o.contains("# container mounts") && o.contains("recipe    /data/cache"),
        "{o}"
    );
    assert!(o.contains("built-in  /models/m"), "{o}");
    assert!(
        o.contains("agg workers") || o.contains("aggregated workers"),
        "{o}"
    );
    assert!(o.contains("NCCL_DEBUG"), "{o}");
    assert!(
        !o.contains("s3cr3t-value"),
        "a secret value is redacted: {o}"
    );
    assert!(o.contains("--cpu-bind=none"), "{o}");
    assert!(!dir.path().join("runs").exists(), "dry-run writes nothing");
}

#[test]
fn preflight_checks_each_variant() {
    let dir = tempfile::tempdir().expect("tmp");
    let model = dir.path().join("model");
    std::fs::create_dir(&model).expect("model dir");
    let image = dir.path().join("image.sqsh");
    std::fs::write(&image, "").expect("image");
    let body = |m: &str, i: &str| {
        format!("name: pf\nmodel: {{path: {m}, container: {i}}}\nresources: {{gpu_type: h100, gpus_per_node: 8, agg_nodes: 1, agg_workers: 1}}\nbackend: {{type: sglang}}\nbenchmark: {{type: manual}}\n")
    };
    std::fs::write(
        dir.path().join("good.yaml"),
        body(&model.display().to_string(), &image.display().to_string()),
    )
    .expect("w");
    std::fs::write(
        dir.path().join("bad.yaml"),
        body("/nonexistent/model", "/nonexistent/image.sqsh"),
    )
    .expect("w");
    let good = srt(dir.path(), &["preflight", "-f", "good.yaml"]);
    assert!(good.status.success(), "{}", text(&good.stderr));
    assert!(
        text(&good.stderr).contains("✓ base"),
        "{}",
        text(&good.stderr)
    );
    let bad = srt(dir.path(), &["preflight", "-f", "bad.yaml"]);
    assert_eq!(bad.status.code(), Some(1));
    let err = text(&bad.stderr);
    assert!(err.contains("✗ base"), "{err}");
    assert!(err.contains("/nonexistent/model does not exist"), "{err}");
    assert!(
        err.contains("/nonexistent/image.sqsh does not exist"),
        "{err}"
    );
    // apply preflights too (and --no-preflight would skip it): nothing reaches sbatch.
    let apply = srt(
        dir.path(),
        &["apply", "-f", "bad.yaml", "--json", "-o", "out"],
    );
    assert_eq!(apply.status.code(), Some(1));
    assert!(json_lines(&apply)[0]["error"]
        .as_str()
        .unwrap_or("")
        .contains("preflight"));
    assert!(!dir.path().join("out").exists());
}

#[test]
fn resolve_override_writes_variants_that_plan_as_the_selector_does() {
    let dir = tempfile::tempdir().expect("tmp");
    recipes(dir.path(), false);
    let out = srt(
        dir.path(),
        &["resolve-override", "-f", "recipes/more/greet.yaml"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    for v in ["en", "fr"] {
        let file = format!("recipes/more/greet_{v}.yaml");
        assert!(dir.path().join(&file).is_file(), "{file}");
        let steps = |spec: &str| {
            let p = srt(dir.path(), &["plan", spec, "--json"]);
            assert!(p.status.success(), "{spec}: {}", text(&p.stderr));
            let v: Value = serde_json::from_slice(&p.stdout).expect("plan json");
            v["steps"].clone()
        };
        assert_eq!(
            steps(&file),
            steps(&format!("recipes/more/greet.yaml:{v}")),
            "{v}"
        );
    }
    let stdout = srt(
        dir.path(),
        &[
            "resolve-override",
            "-f",
            "recipes/more/greet.yaml:fr",
            "--stdout",
        ],
    );
    let o = text(&stdout.stdout);
    assert!(o.contains("bonjour") && !o.contains("hello"), "{o}");
    let plain = srt(
        dir.path(),
        &["resolve-override", "-f", "recipes/hello.yaml"],
    );
    assert_eq!(plain.status.code(), Some(1));
    assert!(text(&plain.stderr).contains("not an override file"));
}

#[test]
fn completions_man_page_and_version() {
    let dir = tempfile::tempdir().expect("tmp");
    let bash = srt(dir.path(), &["completions", "bash"]);
    assert!(bash.status.success());
    let b = text(&bash.stdout);
    assert!(
        b.contains("complete") && b.contains("resolve-override") && b.contains("--tags"),
        "bash"
    );
    let man = srt(dir.path(), &["man"]);
    let m = text(&man.stdout);
    assert!(
        m.starts_with(".ie") || m.contains(".TH srt-graph"),
        "{}",
        &m[..m.len().min(200)]
    );
    assert!(m.contains("apply"), "the man page lists the commands");
    let version = srt(dir.path(), &["--version"]);
    let v = text(&version.stdout);
    assert!(
        v.starts_with("srt-graph 0.") && v.contains("(commit "),
        "{v}"
    );
}

#[test]
fn apply_mock_runs_here_with_tags_then_check_compares_fingerprints() {
    let dir = tempfile::tempdir().expect("tmp");
    let first = loopback::first(0);
    let out = Command::new(bin())
        .current_dir(dir.path())
        .args(["apply", "--mock", "-f"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("recipes/local-demo.yaml"))
        .args([
            "--json",
            "--tags",
            "ci, nightly",
            "-o",
            "runs",
            "--",
            "--first-address",
            &first,
            "-q",
        ])
        .env("PATH", path_env())
        .env("SRT_GRAPH_TIMING", "fixed")
        .env_remove("SLURM_JOB_ID")
        .env_remove("SRTSLURM_CONFIG")
        .output()
        .expect("apply");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 1, "only JSON on stdout: {}", text(&out.stdout));
    assert_eq!(lines[0]["status"], "completed");
    assert_eq!(lines[0]["tags"], serde_json::json!(["ci", "nightly"]));
    let run_dir = PathBuf::from(lines[0]["run_dir"].as_str().expect("run_dir"));
    let job: Value = serde_json::from_str(
        &std::fs::read_to_string(lines[0]["metadata_path"].as_str().expect("path"))
            .expect("job.json"),
    )
    .expect("json");
    assert_eq!(job["tags"], serde_json::json!(["ci", "nightly"]));
    // Tags select runs in monitor and report.
    let runs = run_dir.display().to_string();
    let mon = srt(dir.path(), &["monitor", "--once", "--tag", "nightly"]);
    assert!(
        mon.status.success() && text(&mon.stdout).contains("local-demo"),
        "{}",
        text(&mon.stderr)
    );
    let none = srt(dir.path(), &["monitor", "--once", "--tag", "weekly"]);
    assert_eq!(none.status.code(), Some(2));
    let rep = srt(dir.path(), &["report", &runs, "--tag", "weekly"]);
    assert!(!rep.status.success() && text(&rep.stderr).contains("weekly"));
    let status = srt(dir.path(), &["status", &runs, "--json"]);
    let s: Value = serde_json::from_slice(&status.stdout).expect("status json");
    assert_eq!(s["format"], 1);
    assert_eq!(s["tags"], serde_json::json!(["ci", "nightly"]));

    // `check`: this machine is where the run ran, so it matches; a changed package is named.
    let ok = srt(dir.path(), &["check", &runs, "--json"]);
    assert!(
        ok.status.success(),
        "{} {}",
        text(&ok.stdout),
        text(&ok.stderr)
    );
    assert_eq!(
        serde_json::from_slice::<Value>(&ok.stdout).expect("json"),
        serde_json::json!([])
    );
    let fp_dir = run_dir.join("fingerprints");
    let fp_file = std::fs::read_dir(&fp_dir)
        .expect("fingerprints")
        .flatten()
        .next()
        .expect("one")
        .path();
    let mut fp: Value =
        serde_json::from_str(&std::fs::read_to_string(&fp_file).expect("read")).expect("json");
    let pkgs = fp["python"]["packages"].as_array_mut().expect("packages");
    let first_pkg = pkgs[0].as_str().expect("pkg").to_string();
    let name = first_pkg.split("==").next().expect("name").to_lowercase();
    pkgs[0] = Value::String(format!(
        "{}==0.0.0-other",
        first_pkg.split("==").next().expect("name")
    ));
    std::fs::write(&fp_file, serde_json::to_vec(&fp).expect("json")).expect("write");
    let bad = srt(
        dir.path(),
        &[
            "check",
            &run_dir.join("recipe.lock.yaml").display().to_string(),
            "--json",
        ],
    );
    assert_eq!(bad.status.code(), Some(1));
    let diffs: Value = serde_json::from_slice(&bad.stdout).expect("json");
    assert!(
        diffs
            .as_array()
            .expect("array")
            .iter()
            .any(|d| d["field"] == format!("package {name}")
                && d["message"].as_str().unwrap_or("").contains("0.0.0-other")),
        "{diffs}"
    );
    common::assert_no_survivors(&run_dir);
}

#[test]
fn apply_submits_a_directory_one_job_per_variant_on_slurm() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("SKIPPED: this test needs root to run tests/env/slurm.sh");
        return;
    }
    let Some(env) = std::env::var_os("SRT_GRAPH_SLURM_ENV").map(PathBuf::from) else {
        panic!("SRT_GRAPH_SLURM_ENV is not set: bring the test cluster up with `bash tests/env/slurm.sh up` (scripts/test.sh does)");
    };
    let dir = tempfile::tempdir().expect("tmp");
    recipes(dir.path(), false);
    let out = slurm_cmd(&env, bin())
        .current_dir(dir.path())
        .args([
            "apply", "-f", "recipes", "--json", "--tags", "ci", "-o", "out", "-y",
        ])
        .output()
        .expect("apply");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines = json_lines(&out);
    // hello.yaml, then greet.yaml's two variants: one job each.
    assert_eq!(lines.len(), 3, "{}", text(&out.stdout));
    let names: Vec<&str> = lines
        .iter()
        .map(|l| l["job_name"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(names, ["hello", "greet", "greet"]);
    for l in &lines {
        assert_eq!(l["status"], "submitted");
        for key in [
            "slurm_job_id",
            "output_dir",
            "metadata_path",
            "config_path",
            "run_dir",
        ] {
            assert!(l[key].is_string(), "{key}: {l}");
        }
        assert_eq!(l["tags"], serde_json::json!(["ci"]));
        let job = l["slurm_job_id"].as_str().expect("id");
        assert!(job.parse::<u64>().is_ok(), "{job}");
        let run_dir = PathBuf::from(l["run_dir"].as_str().expect("dir"));
        assert!(
            run_dir.starts_with(dir.path().join("out")),
            "-o is the parent: {}",
            run_dir.display()
        );
        let code = wait_job(&env, job, Duration::from_secs(120));
        assert_eq!(code, "0:0", "{}", job_log(&run_dir, job));
        let meta: Value = serde_json::from_str(
            &std::fs::read_to_string(l["metadata_path"].as_str().expect("p")).expect("job.json"),
        )
        .expect("json");
        assert_eq!(meta["tags"], serde_json::json!(["ci"]));
        assert_eq!(meta["job_id"], job);
    }
    let fr = lines
        .iter()
        .filter_map(|l| l["run_dir"].as_str())
        .map(PathBuf::from)
        .find(|d| {
            std::fs::read_to_string(d.join("logs/a.log"))
                .unwrap_or_default()
                .contains("bonjour")
        });
    assert!(fr.is_some(), "the fr variant ran its own step");
}

#[test]
fn the_wheel_installs_and_runs_without_cargo() {
    if std::env::var_os("SRT_GRAPH_NO_STATIC").is_some() {
        eprintln!(
            "SKIPPED: the wheel holds the static (musl) binary: {}",
            std::env::var("SRT_GRAPH_NO_STATIC").unwrap_or_default()
        );
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let wheels = dir.path().join("wheels");
    let built = Command::new("bash")
        .arg(root.join("scripts/wheel.sh"))
        .arg(&wheels)
        .current_dir(root)
        .env("WHEEL_PROFILE", "dev")
        .output()
        .expect("wheel.sh");
    assert!(built.status.success(), "{}", text(&built.stderr));
    let wheel = PathBuf::from(text(&built.stdout).trim());
    let name = wheel
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    assert!(
        name.contains("manylinux") && name.contains("musllinux"),
        "{name}"
    );
    let venv = dir.path().join("venv");
    assert!(Command::new("python3")
        .arg("-m")
        .arg("venv")
        .arg(&venv)
        .status()
        .expect("venv")
        .success());
    let pip = Command::new(venv.join("bin/pip"))
        .args([
            "install",
            "--quiet",
            "--no-index",
            "--disable-pip-version-check",
        ])
        .arg(&wheel)
        .output()
        .expect("pip");
    assert!(pip.status.success(), "{}", text(&pip.stderr));
    // No cargo, no rustc, no target directory on PATH: only the venv and the system.
    let path = format!(
        "{}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
        venv.join("bin").display()
    );
    let which = Command::new("sh")
        .args(["-c", "command -v cargo || command -v rustc"])
        .env("PATH", &path)
        .output()
        .expect("sh");
    assert!(
        text(&which.stdout).trim().is_empty(),
        "cargo is on PATH: {}",
        text(&which.stdout)
    );
    let installed = |args: &[&str]| {
        Command::new(venv.join("bin/srt-graph"))
            .args(args)
            .current_dir(dir.path())
            .env("PATH", &path)
            .env("SRT_GRAPH_TIMING", "fixed")
            .env_remove("SRTSLURM_CONFIG")
            .env_remove("SLURM_JOB_ID")
            .output()
            .expect("installed srt-graph")
    };
    let v = installed(&["--version"]);
    assert!(text(&v.stdout).contains("(commit "), "{}", text(&v.stdout));
    assert!(
        venv.join("share/man/man1/srt-graph-apply.1").is_file(),
        "man pages installed"
    );
    assert!(
        venv.join("share/bash-completion/completions/srt-graph")
            .is_file(),
        "completions installed"
    );
    let plan = installed(&["plan"]);
    assert!(
        plan.status.success() && text(&plan.stdout).contains("start_router"),
        "{}",
        text(&plan.stderr)
    );
    let run_dir = dir.path().join("run");
    let first = loopback::first(1);
    let run = installed(&[
        "run",
        "--mock-workers",
        "-q",
        "--first-address",
        &first,
        "--run-dir",
        run_dir.to_str().expect("utf-8"),
    ]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    assert!(
        text(&run.stderr).contains("report: "),
        "{}",
        text(&run.stderr)
    );
    common::assert_no_survivors(&run_dir);
}
