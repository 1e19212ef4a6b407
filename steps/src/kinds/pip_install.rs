//! `pip_install`: install Python packages into a node's environment, once per node.

use srt_graph_engine::{Lifetime, Policy, RetryOn, Step};

pub const KIND: &str = "pip_install";
pub const SPEC: super::Kind = super::Kind {
    name: KIND,
    fill: "#e8e8e8",
    policy,
    on_resume: srt_graph_engine::OnResume::Recheck,
    in_worker_container: true,
};

/// Package indexes flake; installs are idempotent, so non-zero exits are retried.
pub fn policy() -> Policy {
    Policy {
        attempts: 3,
        backoff_ms: 2000,
        backoff_max_ms: 30_000,
        timeout_secs: Some(1800.0),
        retry_on: vec![RetryOn::Spawn, RetryOn::Exit, RetryOn::Timeout],
    }
}

/// `pip install -e . --no-deps` in the mounted SGLang source (the seed's debugging flow).
pub fn editable(node: usize, node_name: &str, python: &str, dir: &str) -> Step {
    let mut s = SPEC.step(format!("pip-sglang-src/{node_name}"), node, Lifetime::Task);
    s.command = Some(vec![
        python.into(),
        "-m".into(),
        "pip".into(),
        "install".into(),
        "-e".into(),
        ".".into(),
        "--no-deps".into(),
    ]);
    s.cwd = Some(dir.into());
    s.summary = "install the mounted SGLang checkout in editable mode".into();
    s
}

/// `pip install PKG…` under an id of the caller's choosing (`pip-dynamo/node0`, `pip-router/node0`).
pub fn packages(id: String, node: usize, python: &str, packages: &[String], summary: &str) -> Step {
    let mut s = SPEC.step(id, node, Lifetime::Task);
    let mut argv = vec![
        python.to_string(),
        "-m".into(),
        "pip".into(),
        "install".into(),
    ];
    argv.extend(packages.iter().cloned());
    s.command = Some(argv);
    s.summary = summary.into();
    s
}

/// `python3 -m venv DIR`, reusing a cached venv whose pip runs. One whose creation was cut short (an
/// orchestrator killed mid-way: found by the Slurm kill-point harness) is made again: `venv` over
/// it fails in `ensurepip` every time.
pub fn venv(node: usize, node_name: &str, dir: &str) -> Step {
    venv_with_id(format!("venv/{node_name}"), node, dir)
}

/// The same, under an id of the caller's choosing (a second venv on the node).
pub fn venv_with_id(id: String, node: usize, dir: &str) -> Step {
    let mut s = SPEC.step(id, node, Lifetime::Task);
    s.command = Some(locked(
        dir,
        vec![
            "sh".into(),
            "-c".into(),
            MAKE_VENV.into(),
            "make-venv".into(),
            dir.into(),
        ],
    ));
    s.summary = format!("create (or reuse) the virtualenv {dir}");
    s
}

/// The venv is `$1` (an argument: a recipe value never reaches the script's text).
const MAKE_VENV: &str = concat!(
    r#"if "$1/bin/python3" -m pip --version >/dev/null 2>&1; then echo "reusing $1"; exit 0; fi; "#,
    r#"if [ -e "$1" ]; then echo "$1 is incomplete (no working pip): making it again"; rm -rf "$1"; fi; "#,
    r#"exec python3 -m venv "$1""#
);

/// Wraps a pip command in `flock` on the venv: concurrent installs into one environment corrupt it
/// (srt-slurm had to add the same lock).
pub fn locked(venv: &str, argv: Vec<String>) -> Vec<String> {
    let mut out = vec![
        "flock".to_string(),
        // Beside the venv, so that it also guards the venv's creation.
        format!("{}.lock", venv.trim_end_matches('/')),
    ];
    out.extend(argv);
    out
}

/// Installs what installed distributions declare they need (their metadata's `Requires-Dist`, extras and
/// markers evaluated for this interpreter), leaving out the named ones, each with its reason printed.
/// Arguments: the distributions, `--`, then `name reason` pairs to leave out. Recipe values never reach
/// the script's text.
const FROM_METADATA: &str = r#"import importlib.metadata as md, subprocess, sys
from pip._vendor.packaging.requirements import Requirement
args = sys.argv[1:]
cut = args.index("--") if "--" in args else len(args)
dists, rest = args[:cut], args[cut + 1:]
skip = dict(zip(rest[0::2], rest[1::2]))
have = {d.lower() for d in dists}
wanted = []
for dist in dists:
    for text in md.requires(dist) or []:
        req = Requirement(text)
        if req.marker and not req.marker.evaluate({"extra": ""}):
            continue
        name = req.name.lower()
        if name in have:
            continue
        if name in skip:
            print(f"leaving out {req.name} (needed by {dist}): {skip[name]}")
            continue
        req.marker = None
        wanted.append(str(req))
print("installing what " + ", ".join(dists) + " declare: " + " ".join(wanted))
if wanted:
    sys.exit(subprocess.call([sys.executable, "-m", "pip", "install", *wanted]))
"#;

/// See `FROM_METADATA`: `id` installs what `dists` (already installed) declare, but `leave_out`.
pub fn from_metadata(
    id: String,
    node: usize,
    python: &str,
    dists: &[&str],
    leave_out: &[(&str, &str)],
    summary: &str,
) -> Step {
    let mut s = SPEC.step(id, node, Lifetime::Task);
    let mut argv = vec![python.to_string(), "-c".into(), FROM_METADATA.into()];
    argv.extend(dists.iter().map(|d| d.to_string()));
    argv.push("--".into());
    for (name, why) in leave_out {
        argv.extend([name.to_string(), why.to_string()]);
    }
    s.command = Some(argv);
    s.summary = summary.into();
    s
}
