//! `benchmark:`: the type, its points (one, or a `sweep` of them), and sa-bench's knobs.

use crate::benchmarks;
use crate::diag::{join, Keys, Reader};
use crate::recipe::{BenchPoint, Benchmark};
use crate::yaml::{Node, Pos, Value};

const BENCHMARK: Keys = Keys {
    known: &[
        "type",
        "isl",
        "osl",
        "concurrencies",
        "req_rate",
        "random_range_ratio",
        "num_prompts_mult",
        "num_warmup_mult",
        "max_failed_percent",
        "sweep",
    ],
    ignored: &[
        "command",
        "itl_threshold_ms",
        "ttft_threshold_ms",
        "max_tokens",
        "mooncake_workload",
        "num_examples",
        "num_shots",
        "num_threads",
        "repeat",
        "temperature",
        "top_k",
        "top_p",
        "client_placement",
        "client_dedicated_node",
        "colocate_with_frontend",
        "dataset_name",
        "dataset_path",
        "trace_file",
        "reuse_http_connections",
        "container_image",
        "env",
        "max_context_length",
        "categories",
        "num_requests",
        "concurrency",
        "prefix_ratios",
        "custom_tokenizer",
        "use_chat_template",
        "export_node_metrics",
        "aiperf_args",
        "aiperf_package",
        "slow_down_factor",
        "slow_down_sleep_time",
        "slow_down_wait_time",
        "goodput",
    ],
};
const BENCH_SWEEP: Keys = Keys {
    known: &["mode", "parameters"],
    ignored: &[],
};

pub(super) fn read(r: &mut Reader, node: Option<&Node>) -> Option<Benchmark> {
    let node = node?;
    if !r.check_keys(node, "benchmark", &BENCHMARK) || matches!(node.value, Value::Null) {
        return None;
    }
    let named = r
        .string(node.get("type"), "benchmark.type")
        .unwrap_or_else(|| "manual".into());
    let kind = match benchmarks::find(&named) {
        Some(b) => {
            // What this type reads is not ignored.
            r.ignored.retain(|k| {
                k.strip_prefix("benchmark.")
                    .is_none_or(|key| !b.keys().contains(&key))
            });
            b.check(node, r);
            b.name().to_string()
        }
        None => {
            r.error(
                node.get("type").map_or(node.pos, |n| n.pos),
                "benchmark.type",
                format!("benchmark type `{named}` is not one srtctl runs"),
                Some(format!("valid: {}", benchmarks::names().join(", "))),
            );
            named
        }
    };
    // A type's points need isl/osl/concurrencies; an unknown type is noted by the caller.
    let needs_points = benchmarks::find(&kind).is_some_and(|b| b.needs_points());
    let required = needs_points.then_some(kind.as_str());
    let base = read_point(r, node, "benchmark", required);
    let points = match node.get("sweep") {
        Some(sweep) => sweep_points(r, node, sweep, required)?,
        None => base.into_iter().collect(),
    };
    let random_range_ratio = read_ratio(r, node);
    let max_failed_percent = read_number(r, node, "max_failed_percent", 0.0..=100.0).unwrap_or(5.0);
    Some(Benchmark {
        max_failed_percent,
        kind,
        points,
        random_range_ratio,
        num_prompts_mult: r
            .int(
                node.get("num_prompts_mult"),
                "benchmark.num_prompts_mult",
                1,
                10_000,
            )
            .unwrap_or(5) as u32,
        num_warmup_mult: r
            .int(
                node.get("num_warmup_mult"),
                "benchmark.num_warmup_mult",
                0,
                10_000,
            )
            .unwrap_or(1) as u32,
        options: node
            .as_map()
            .map(|m| m.iter().map(|e| (e.key.clone(), e.value.clone())).collect())
            .unwrap_or_default(),
        pos: node.pos,
    })
}

/// `benchmark.sweep`: `zip` (lists side by side) or `grid` (every combination) over point keys; each
/// combination is read as a point of its own.
fn sweep_points(
    r: &mut Reader,
    node: &Node,
    sweep: &Node,
    required: Option<&str>,
) -> Option<Vec<BenchPoint>> {
    let mut points = Vec::new();
    if !r.check_keys(sweep, "benchmark.sweep", &BENCH_SWEEP) {
        return Some(points);
    }
    let mode = r
        .string(sweep.get("mode"), "benchmark.sweep.mode")
        .unwrap_or_else(|| "zip".into());
    if mode != "zip" && mode != "grid" {
        r.error(
            sweep.get("mode").map_or(sweep.pos, |n| n.pos),
            "benchmark.sweep.mode",
            format!("`{mode}` is not a sweep mode"),
            Some("valid: zip, grid".into()),
        );
    }
    let params: Vec<(String, Vec<Node>)> = sweep
        .get("parameters")
        .and_then(Node::as_map)
        .map(|m| {
            m.iter()
                .map(|e| {
                    let vals = match &e.value.value {
                        Value::Seq(items) => items.clone(),
                        _ => vec![e.value.clone()],
                    };
                    (e.key.clone(), vals)
                })
                .collect()
        })
        .unwrap_or_default();
    let combos: Vec<Vec<(String, Node)>> = if mode == "grid" {
        let mut acc: Vec<Vec<(String, Node)>> = vec![vec![]];
        for (k, vals) in &params {
            acc = acc
                .into_iter()
                .flat_map(|c| {
                    vals.iter().map(move |v| {
                        let mut c = c.clone();
                        c.push((k.clone(), v.clone()));
                        c
                    })
                })
                .collect();
            if acc.len() > crate::variants::MAX_VARIANTS {
                r.error(
                    sweep.pos,
                    "benchmark.sweep",
                    "benchmark sweep expands to too many points",
                    None,
                );
                return None;
            }
        }
        acc
    } else {
        let n = params.iter().map(|(_, v)| v.len()).max().unwrap_or(0);
        if let Some((k, v)) = params.iter().find(|(_, v)| v.len() != n) {
            r.error(
                sweep.pos,
                &format!("benchmark.sweep.parameters.{k}"),
                format!(
                    "zip sweep lists must have equal length ({} vs {n})",
                    v.len()
                ),
                None,
            );
            return None;
        }
        (0..n)
            .map(|i| {
                params
                    .iter()
                    .map(|(k, v)| (k.clone(), v[i].clone()))
                    .collect()
            })
            .collect()
    };
    for combo in combos {
        let mut doc = node.clone();
        if let Value::Map(entries) = &mut doc.value {
            entries.retain(|e| e.key != "sweep");
            for (k, v) in combo {
                match entries.iter_mut().find(|e| e.key == k) {
                    Some(e) => e.value = v,
                    None => entries.push(crate::yaml::Entry {
                        key: k,
                        key_pos: v.pos,
                        value: v,
                    }),
                }
            }
        }
        if let Some(p) = read_point(r, &doc, "benchmark.sweep", required) {
            points.push(p);
        }
    }
    Some(points)
}

/// `random_range_ratio`: from 0 to 1 (sa-bench's default 0.8).
fn read_ratio(r: &mut Reader, node: &Node) -> f64 {
    let ratio_node = node.get("random_range_ratio");
    match ratio_node.map(|n| &n.value) {
        None | Some(Value::Null) => 0.8,
        Some(Value::Float(x)) if (0.0..=1.0).contains(x) => *x,
        Some(Value::Int(i)) if (0..=1).contains(i) => *i as f64,
        Some(_) => {
            let n = ratio_node.unwrap_or(node);
            r.error(
                n.pos,
                "benchmark.random_range_ratio",
                format!("expected a number from 0 to 1, found {}", n.describe()),
                None,
            );
            0.8
        }
    }
}

/// A number (integer or not) within `range`, or a located error.
fn read_number(
    r: &mut Reader,
    node: &Node,
    key: &str,
    range: std::ops::RangeInclusive<f64>,
) -> Option<f64> {
    let n = node.get(key)?;
    let value = match &n.value {
        Value::Null => return None,
        Value::Float(x) => Some(*x),
        Value::Int(i) => Some(*i as f64),
        _ => None,
    };
    match value {
        Some(x) if range.contains(&x) => Some(x),
        _ => {
            r.error(
                n.pos,
                &join("benchmark", key),
                format!(
                    "expected a number from {} to {}, found {}",
                    range.start(),
                    range.end(),
                    n.describe()
                ),
                None,
            );
            None
        }
    }
}

/// One `(isl, osl, concurrencies, req_rate)` point; `required` names the benchmark type that needs it.
fn read_point(
    r: &mut Reader,
    node: &Node,
    path: &str,
    required: Option<&str>,
) -> Option<BenchPoint> {
    let isl = r.int(node.get("isl"), &join(path, "isl"), 1, 10_000_000);
    let osl = r.int(node.get("osl"), &join(path, "osl"), 1, 10_000_000);
    let conc = node.get("concurrencies");
    let mut concurrencies = Vec::new();
    let cpath = join(path, "concurrencies");
    if let Some(c) = conc {
        let items: Vec<(String, Pos)> = match &c.value {
            Value::Str(s) => s
                .split('x')
                .map(|p| (p.trim().to_string(), c.pos))
                .collect(),
            Value::Int(i) => vec![(i.to_string(), c.pos)],
            Value::Seq(items) => items
                .iter()
                .map(|n| (n.scalar_text().unwrap_or_default(), n.pos))
                .collect(),
            _ => {
                r.error(
                    c.pos,
                    &cpath,
                    format!(
                        "expected \"AxBxC\" or a list of integers, found {}",
                        c.describe()
                    ),
                    None,
                );
                vec![]
            }
        };
        for (text, pos) in items {
            match text.parse::<u32>() {
                Ok(v) if (1..=1_000_000).contains(&v) => concurrencies.push(v),
                _ => r.error(
                    pos,
                    &cpath,
                    format!("`{text}` is not a concurrency"),
                    Some(
                        "concurrencies are positive integers joined by `x`, e.g. \"4x16x64\""
                            .into(),
                    ),
                ),
            }
        }
    }
    let req_rate = match node.get("req_rate") {
        None => None,
        Some(n) => {
            match &n.value {
                Value::Null => None,
                Value::Str(s) if s == "inf" => None,
                Value::Float(x) if x.is_infinite() && *x > 0.0 => None,
                Value::Int(i) if *i > 0 => Some(*i as f64),
                Value::Float(x) if *x > 0.0 && x.is_finite() => Some(*x),
                Value::Str(s) if s.parse::<f64>().is_ok_and(|x| x > 0.0 && x.is_finite()) => {
                    s.parse().ok()
                }
                _ => {
                    r.error(n.pos, &join(path, "req_rate"), format!("expected \"inf\" or a positive number of requests per second, found {}", n.describe()), None);
                    None
                }
            }
        }
    };
    let kind = required?;
    let missing: Vec<&str> = [
        ("isl", isl.is_none()),
        ("osl", osl.is_none()),
        ("concurrencies", concurrencies.is_empty() && conc.is_none()),
    ]
    .iter()
    .filter(|(_, m)| *m)
    .map(|(k, _)| *k)
    .collect();
    if !missing.is_empty() {
        if node.get("isl").is_none() || node.get("osl").is_none() || conc.is_none() {
            r.error(
                node.pos,
                path,
                format!("{kind} needs {}", missing.join(", ")),
                Some("e.g. isl: 1024, osl: 128, concurrencies: \"4x16\"".into()),
            );
        }
        return None;
    }
    Some(BenchPoint {
        isl: isl? as u32,
        osl: osl? as u32,
        concurrencies,
        req_rate,
    })
}
