//! Startup, recipe start → first successful request (the health gate's smoke request through nginx), for
//! SGLang router mode (`recipes/local-demo.yaml`) and Dynamo mode (`recipes/local-dynamo.yaml`) on the same
//! local demo sizes (2 prefill + 2 decode mocked workers, 4 nodes), side by side in one run; and the share of
//! it lost to health polling. A poll can only miss readiness by the pause before it, so the loss is bounded
//! by the sum of each gate's last pause (printed by the gates); target < 5 %. Needs nginx, nats-server, etcd
//! and PyPI (first run fills the venv). Writes `target/bench-startup.txt`.

use std::path::{Path, PathBuf};

const RUNS: usize = 3;

struct Sample {
    startup_s: f64,
    poll_loss_s: f64,
    install_s: f64,
}

fn span_end(trace: &serde_json::Value, name: &str) -> Option<f64> {
    trace["traceEvents"]
        .as_array()?
        .iter()
        .filter(|e| e["name"] == name)
        .map(|e| (e["ts"].as_f64().unwrap_or(0.0) + e["dur"].as_f64().unwrap_or(0.0)) / 1e6)
        .reduce(f64::max)
}

fn span_sum(trace: &serde_json::Value, prefix: &str) -> f64 {
    trace["traceEvents"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|e| e["name"].as_str().is_some_and(|n| n.starts_with(prefix)))
                .map(|e| e["dur"].as_f64().unwrap_or(0.0) / 1e6)
                .sum()
        })
        .unwrap_or(0.0)
}

/// The last pause each readiness gate made before it saw the service ready.
fn poll_loss(run_dir: &Path) -> f64 {
    let mut total = 0.0;
    for log in ["wait-healthy", "nats_ready", "etcd_ready"] {
        let text =
            std::fs::read_to_string(run_dir.join(format!("logs/{log}.log"))).unwrap_or_default();
        if let Some(ms) = text
            .rsplit("last pause ")
            .next()
            .filter(|_| text.contains("last pause "))
            .and_then(|t| t.split_whitespace().next())
            .and_then(|n| n.parse::<f64>().ok())
        {
            total += ms / 1e3;
        }
    }
    total
}

fn run(recipe: &Path, first: &str, dir: &Path, k: usize) -> Sample {
    // The deployment only, up to its first successful request.
    let text = std::fs::read_to_string(recipe).expect("recipe");
    let body = text
        .split("\nbenchmark:")
        .next()
        .expect("recipe text")
        .to_string()
        + "\nbenchmark:\n  type: manual\n";
    let file = dir.join(format!("recipe-{k}.yaml"));
    std::fs::write(&file, body).expect("write");
    let run_dir = dir.join(format!("run-{k}"));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_srt-graph"))
        .args([
            "run",
            "--mock-workers",
            "-q",
            "--grace",
            "3s",
            "--first-address",
            first,
        ])
        .arg(&file)
        .arg("--run-dir")
        .arg(&run_dir)
        .env(
            "PATH",
            format!("{}:/usr/sbin", std::env::var("PATH").unwrap_or_default()),
        )
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let trace: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("trace.json")).expect("trace"))
            .expect("json");
    Sample {
        startup_s: span_end(&trace, "wait-healthy").expect("wait-healthy span"),
        poll_loss_s: poll_loss(&run_dir),
        install_s: span_sum(&trace, "venv/") + span_sum(&trace, "pip-"),
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().expect("tmp");
    let modes = [
        (
            "SGLang router",
            root.join("recipes/local-demo.yaml"),
            "127.0.41.1",
        ),
        (
            "Dynamo",
            root.join("recipes/local-dynamo.yaml"),
            "127.0.42.1",
        ),
    ];
    // One unmeasured run each fills the package cache; then the modes alternate.
    for (k, (_, recipe, first)) in modes.iter().enumerate() {
        run(recipe, first, dir.path(), 100 + k);
    }
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(), Vec::new()];
    for r in 0..RUNS {
        for (k, (_, recipe, first)) in modes.iter().enumerate() {
            samples[k].push(run(recipe, first, dir.path(), r * 10 + k));
        }
    }
    let mut report = format!(
        "startup = recipe start → first successful request (median of {RUNS}, warm package cache)\n\
         mode            startup s   of which installs s   health-poll loss s   loss / startup\n"
    );
    for (k, (name, _, _)) in modes.iter().enumerate() {
        let s = &samples[k];
        let startup = median(s.iter().map(|x| x.startup_s).collect());
        let install = median(s.iter().map(|x| x.install_s).collect());
        let loss = median(s.iter().map(|x| x.poll_loss_s).collect());
        report.push_str(&format!(
            "{name:<15} {startup:>9.2} {install:>21.2} {loss:>20.3} {:>15.1} %\n",
            100.0 * loss / startup
        ));
    }
    print!("{report}");
    let _ = std::fs::write(root.join("target/bench-startup.txt"), &report);
}
