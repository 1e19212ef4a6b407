//! `srt-graph diff RUN_A RUN_B`: what differs between two runs — the resolved recipe
//! (`recipe.lock.yaml`), the plan, each node's environment (`fingerprints/`), and the results per point
//! with the change in percent.

use crate::job::Job;
use crate::points::Point;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

pub const LOCK_FILE: &str = "recipe.lock.yaml";

/// Figures compared per point: (result key, label).
const FIGURES: [(&str, &str); 7] = [
    ("output_throughput", "output tok/s"),
    ("request_throughput", "req/s"),
    ("median_ttft_ms", "TTFT p50 ms"),
    ("p99_ttft_ms", "TTFT p99 ms"),
    ("median_tpot_ms", "TPOT p50 ms"),
    ("median_itl_ms", "ITL p50 ms"),
    ("failed", "failed requests"),
];

fn recipe(out: &mut String, a: &Path, b: &Path) {
    let read = |d: &Path| std::fs::read_to_string(d.join(LOCK_FILE)).ok();
    match (read(a), read(b)) {
        (Some(x), Some(y)) if x == y => out.push_str("recipe: identical\n"),
        (Some(x), Some(y)) => {
            out.push_str("recipe (recipe.lock.yaml):\n");
            let d = similar::TextDiff::from_lines(&x, &y);
            let text = d
                .unified_diff()
                .context_radius(1)
                .header(&a.display().to_string(), &b.display().to_string())
                .to_string();
            for line in text.lines() {
                let _ = writeln!(out, "  {line}");
            }
        }
        _ => out.push_str(
            "recipe: a run has no recipe.lock.yaml (made before srt-graph recorded one)\n",
        ),
    }
}

/// The plans: equal when their hashes are (the run directory and nodes are part of a plan).
fn plan(out: &mut String, a: &Path, b: &Path) {
    match (Job::read(a), Job::read(b)) {
        (Ok(x), Ok(y)) if x.srt_graph.plan_hash == y.srt_graph.plan_hash => {
            out.push_str("plan: identical\n");
        }
        (Ok(x), Ok(y)) => {
            let _ = writeln!(
                out,
                "plan: {} steps on {} → {} steps on {} (hash {} → {})",
                x.srt_graph.plan_steps,
                x.srt_graph.nodes.join(","),
                y.srt_graph.plan_steps,
                y.srt_graph.nodes.join(","),
                short(&x.srt_graph.plan_hash),
                short(&y.srt_graph.plan_hash)
            );
        }
        _ => out.push_str("plan: a run has no job.json\n"),
    }
}

fn short(hash: &str) -> &str {
    let h = hash.trim_start_matches("sha256:");
    &h[..h.len().min(12)]
}

/// A fingerprint's Python packages (`name==version` lines) by lower-cased name.
pub fn packages(f: &Value) -> BTreeMap<String, String> {
    f["python"]["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter_map(|p| p.split_once("=="))
        .map(|(n, v)| (n.to_lowercase(), v.to_string()))
        .collect()
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "–".into(),
        other => other.to_string(),
    }
}

fn environment(out: &mut String, a: &Path, b: &Path) {
    let mut lines = Vec::new();
    let (ja, jb) = (Job::read(a).ok(), Job::read(b).ok());
    if let (Some(x), Some(y)) = (&ja, &jb) {
        let pairs = [
            (
                "srt-graph",
                x.srt_graph.version.clone(),
                y.srt_graph.version.clone(),
            ),
            (
                "executor",
                x.srt_graph.executor.clone(),
                y.srt_graph.executor.clone(),
            ),
            (
                "container image",
                format!(
                    "{:?} {:?}",
                    x.srt_graph.container_image, x.srt_graph.container_image_digest
                ),
                format!(
                    "{:?} {:?}",
                    y.srt_graph.container_image, y.srt_graph.container_image_digest
                ),
            ),
        ];
        for (what, p, q) in pairs {
            if p != q {
                lines.push(format!("{what}: {p} → {q}"));
            }
        }
    }
    let (fa, fb) = (crate::fingerprints(a), crate::fingerprints(b));
    let nodes: std::collections::BTreeSet<&String> = fa.keys().chain(fb.keys()).collect();
    for node in nodes {
        let (Some(x), Some(y)) = (fa.get(node), fb.get(node)) else {
            lines.push(format!("{node}: fingerprinted in one run only"));
            continue;
        };
        for (what, path) in [
            ("os", &["os"][..]),
            ("kernel", &["kernel"]),
            ("hostname", &["hostname"]),
            ("python", &["python", "version"]),
            ("container", &["container", "image"]),
            ("gpus", &["gpus"]),
        ] {
            let get = |v: &Value| path.iter().fold(v.clone(), |v, k| v[*k].clone());
            let (p, q) = (get(x), get(y));
            if p != q {
                lines.push(format!("{node}: {what} {} → {}", text(&p), text(&q)));
            }
        }
        let (pa, pb) = (packages(x), packages(y));
        for (name, va) in &pa {
            match pb.get(name) {
                None => lines.push(format!("{node}: package {name} {va} removed")),
                Some(vb) if vb != va => lines.push(format!("{node}: package {name} {va} → {vb}")),
                Some(_) => {}
            }
        }
        for (name, vb) in &pb {
            if !pa.contains_key(name) {
                lines.push(format!("{node}: package {name} {vb} added"));
            }
        }
    }
    if lines.is_empty() {
        out.push_str("environment: identical\n");
    } else {
        out.push_str("environment:\n");
        for l in lines {
            let _ = writeln!(out, "  {l}");
        }
    }
}

fn change(a: f64, b: f64) -> String {
    if a == 0.0 && b == 0.0 {
        "±0 %".into()
    } else if a == 0.0 || !a.is_finite() || !b.is_finite() {
        "–".into()
    } else {
        format!("{:+.1} %", 100.0 * (b - a) / a)
    }
}

fn results(out: &mut String, a: &Path, b: &Path) {
    let index = |d: &Path| -> BTreeMap<(String, u64), Point> {
        crate::points::read(d)
            .0
            .into_iter()
            .map(|p| (p.key(), p))
            .collect()
    };
    let (pa, pb) = (index(a), index(b));
    if pa.is_empty() && pb.is_empty() {
        out.push_str("results: neither run has sa-bench results\n");
        return;
    }
    out.push_str("results (A → B, change):\n");
    let timing = |m: &BTreeMap<(String, u64), Point>| -> String {
        m.values()
            .find_map(|p| p.simulated().map(|t| format!("SIMULATED ({t})")))
            .unwrap_or_else(|| "measured".into())
    };
    let (ta, tb) = (timing(&pa), timing(&pb));
    let _ = writeln!(out, "  timing: A {ta}; B {tb}");
    if ta != tb {
        out.push_str("  (A and B were not timed alike: the changes below compare a simulation with something else)\n");
    }
    let keys: std::collections::BTreeSet<&(String, u64)> = pa.keys().chain(pb.keys()).collect();
    for key in keys {
        let (group, c) = key;
        let point = group.trim_start_matches("sa-bench_");
        match (pa.get(key), pb.get(key)) {
            (Some(x), Some(y)) => {
                let _ = writeln!(out, "  {point} concurrency {c}:");
                for (k, label) in FIGURES {
                    let (p, q) = (x.get(k), y.get(k));
                    if p.is_nan() && q.is_nan() {
                        continue;
                    }
                    let _ = writeln!(
                        out,
                        "    {label:<16} {p:>12.2} → {q:>12.2}  {}",
                        change(p, q)
                    );
                }
            }
            (Some(_), None) => {
                let _ = writeln!(out, "  {point} concurrency {c}: only in A");
            }
            _ => {
                let _ = writeln!(out, "  {point} concurrency {c}: only in B");
            }
        }
    }
}

/// The comparison as text.
pub fn diff(a: &Path, b: &Path) -> Result<String, crate::ResultsError> {
    for d in [a, b] {
        if !d.join("plan.json").is_file() {
            return Err(crate::ResultsError::NotARun(d.to_path_buf()));
        }
    }
    let mut out = format!("A: {}\nB: {}\n", a.display(), b.display());
    recipe(&mut out, a, b);
    plan(&mut out, a, b);
    environment(&mut out, a, b);
    results(&mut out, a, b);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn change_is_relative_to_a() {
        assert_eq!(change(100.0, 110.0), "+10.0 %");
        assert_eq!(change(200.0, 150.0), "-25.0 %");
        assert_eq!(change(0.0, 0.0), "±0 %");
        assert_eq!(change(0.0, 1.0), "–");
    }
}
