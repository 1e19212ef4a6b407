//! `profiling:` (srtctl's `ProfilingConfig`): `type` torch, nsys or nsys-time; per role a window of
//! forward steps (`prefill`/`decode`/`aggregated`: `start_step`, `stop_step`); for nsys-time a window in
//! seconds from the workers' start (`delay_secs`, `duration_secs`) inside `benchmark_duration_secs`;
//! `extra_nsys_args` before nsys's `-o`.

use crate::diag::{join, Keys, Reader};
use crate::recipe::{BenchPoint, Benchmark, Profiling, ProfilingKind, Role, StepWindow};
use crate::yaml::Node;

const PROFILING: Keys = Keys {
    known: &[
        "type",
        "extra_nsys_args",
        "prefill",
        "decode",
        "aggregated",
        "delay_secs",
        "duration_secs",
        "benchmark_duration_secs",
    ],
    ignored: &[],
};
const PHASE: Keys = Keys {
    // The seed era's profiling load of its own (`isl`, `osl`, `concurrency`), run when nothing else is.
    known: &["start_step", "stop_step", "isl", "osl", "concurrency"],
    ignored: &[],
};
/// srtctl's window when a role names none.
const DEFAULT_WINDOW: StepWindow = StepWindow { start: 0, stop: 50 };

/// The profiling setup, or `None` without one (or `type: none`).
pub fn read(doc: &Node, benchmark: Option<&Benchmark>, r: &mut Reader) -> Option<Profiling> {
    let section = doc.get("profiling")?;
    if !r.check_keys(section, "profiling", &PROFILING) {
        return None;
    }
    let kind = match r.string(section.get("type"), "profiling.type").as_deref() {
        None | Some("none") => return None,
        Some("torch") => ProfilingKind::Torch,
        Some("nsys") => ProfilingKind::Nsys,
        Some("nsys-time") => ProfilingKind::NsysTime,
        Some(other) => {
            let pos = section.get("type").map_or(section.pos, |n| n.pos);
            r.error(
                pos,
                "profiling.type",
                format!("`{other}` is not a profiler srtctl runs"),
                Some("valid: none, torch, nsys, nsys-time".into()),
            );
            return None;
        }
    };
    let mut windows = Vec::new();
    let mut load = None;
    for (key, role) in [
        ("prefill", Role::Prefill),
        ("decode", Role::Decode),
        ("aggregated", Role::Aggregated),
    ] {
        let Some(phase) = section.get(key) else {
            windows.push((role, DEFAULT_WINDOW));
            continue;
        };
        let path = join("profiling", key);
        r.check_keys(phase, &path, &PHASE);
        if load.is_none() && phase.get("isl").is_some() {
            let mut n = |k: &str, max: i64| {
                r.int(phase.get(k), &join(&path, k), 1, max).unwrap_or(1) as u32
            };
            load = Some(BenchPoint {
                isl: n("isl", 1 << 24),
                osl: n("osl", 1 << 24),
                concurrencies: vec![n("concurrency", 1 << 20)],
                req_rate: None,
            });
        }
        let start = r
            .int(
                phase.get("start_step"),
                &join(&path, "start_step"),
                0,
                1 << 40,
            )
            .unwrap_or(DEFAULT_WINDOW.start as i64) as u64;
        let stop = r
            .int(
                phase.get("stop_step"),
                &join(&path, "stop_step"),
                0,
                1 << 40,
            )
            .unwrap_or(DEFAULT_WINDOW.stop as i64) as u64;
        if stop <= start {
            let pos = phase.get("stop_step").map_or(phase.pos, |n| n.pos);
            r.error(
                pos,
                &join(&path, "stop_step"),
                format!("the window ends (step {stop}) before it starts (step {start})"),
                Some("stop_step must be greater than start_step".into()),
            );
        }
        if let Some(bound) = benchmark.and_then(step_bound).filter(|b| start >= *b) {
            let pos = phase.get("start_step").map_or(phase.pos, |n| n.pos);
            r.error(
                pos,
                &join(&path, "start_step"),
                format!("the window starts at step {start}, past the benchmark's end: its requests make at most {bound} forward steps"),
                Some("lower start_step (srtctl's default window is 0..50)".into()),
            );
        }
        windows.push((role, StepWindow { start, stop }));
    }
    let secs = |r: &mut Reader, key: &str| {
        r.int(section.get(key), &join("profiling", key), 0, 1 << 31)
            .map(|v| v as u64)
    };
    let delay_secs = secs(r, "delay_secs");
    let duration_secs = secs(r, "duration_secs");
    let benchmark_duration_secs = secs(r, "benchmark_duration_secs").unwrap_or(300);
    if kind == ProfilingKind::NsysTime {
        check_time_window(
            section,
            r,
            delay_secs,
            duration_secs,
            benchmark_duration_secs,
        );
    }
    Some(Profiling {
        kind,
        windows,
        delay_secs: delay_secs.unwrap_or(0),
        duration_secs: duration_secs.unwrap_or(0),
        benchmark_duration_secs,
        extra_nsys_args: r.string_list(section.get("extra_nsys_args"), "profiling.extra_nsys_args"),
        load,
        pos: section.pos,
    })
}

/// More forward steps than any worker can make over the benchmark: every step advances at least one
/// token (prompt or output) of at least one request, warm-up included.
fn step_bound(b: &Benchmark) -> Option<u64> {
    let mut tokens = 0u64;
    for p in &b.points {
        for &c in &p.concurrencies {
            let requests = u64::from(c) * u64::from(b.num_prompts_mult + b.num_warmup_mult);
            tokens += requests * u64::from(p.isl + p.osl);
        }
    }
    (tokens > 0).then_some(tokens)
}

/// nsys-time captures `duration_secs` after `delay_secs`: both given, and inside the benchmark's traffic.
fn check_time_window(
    section: &Node,
    r: &mut Reader,
    delay: Option<u64>,
    duration: Option<u64>,
    benchmark: u64,
) {
    let (Some(delay), Some(duration)) = (delay, duration) else {
        r.error(
            section.pos,
            "profiling.duration_secs",
            "nsys-time needs `delay_secs` and `duration_secs`",
            Some(
                "e.g. `delay_secs: 60`, `duration_secs: 30` (seconds from the workers' start)"
                    .into(),
            ),
        );
        return;
    };
    if duration == 0 || delay + duration > benchmark {
        let pos = section.get("duration_secs").map_or(section.pos, |n| n.pos);
        r.error(
            pos,
            "profiling.duration_secs",
            format!(
                "the capture window ({delay} s + {duration} s) ends past the benchmark's traffic ({benchmark} s, `benchmark_duration_secs`)"
            ),
            Some("shorten `delay_secs`/`duration_secs`, or raise `benchmark_duration_secs` (default 300)".into()),
        );
    }
}
