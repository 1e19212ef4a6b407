//! Per-node host samples (`host_samples/<node>.jsonl`, one line per scrape interval): CPU busy,
//! memory, open files and load, as series over the run (the step timeline's clock) and a summary per
//! node. Lines that cannot be read are skipped, as the scrape is best effort.

use serde_json::Value;
use std::path::Path;

/// One node's samples over the run.
#[derive(Debug, Default, Clone)]
pub struct HostSeries {
    pub node: String,
    /// (seconds since the run started, fraction of CPU time busy since the previous sample).
    pub cpu_busy: Vec<(f64, f64)>,
    /// (seconds since the run started, fraction of memory in use).
    pub mem_used: Vec<(f64, f64)>,
    pub samples: usize,
    pub open_files_peak: Option<f64>,
    pub load1_peak: Option<f64>,
    pub mem_total_bytes: Option<u64>,
}

impl HostSeries {
    pub fn cpu_busy_peak(&self) -> Option<f64> {
        self.cpu_busy.iter().map(|s| s.1).reduce(f64::max)
    }
    pub fn mem_used_peak(&self) -> Option<f64> {
        self.mem_used.iter().map(|s| s.1).reduce(f64::max)
    }
}

/// Every node's samples, by node name.
pub fn read(run_dir: &Path) -> Vec<HostSeries> {
    let Some(t0) = crate::metrics::run_start(run_dir) else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir(run_dir.join("host_samples")) else {
        return Vec::new();
    };
    let mut files: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    files
        .iter()
        .filter_map(|p| {
            let node = p.file_stem()?.to_string_lossy().into_owned();
            let text = std::fs::read_to_string(p).ok()?;
            Some(series(node, &text, t0))
        })
        .filter(|h| h.samples > 0)
        .collect()
}

/// Each node's latest sample (for `monitor`): node, CPU busy, memory in use, open files.
pub fn latest(run_dir: &Path) -> Vec<HostNow> {
    let Ok(entries) = std::fs::read_dir(run_dir.join("host_samples")) else {
        return Vec::new();
    };
    let mut out: Vec<HostNow> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let p = e.path();
            let node = p.file_stem()?.to_string_lossy().into_owned();
            let v: Value = serde_json::from_str(last_line(&p)?.as_str()).ok()?;
            let used = match (
                v["mem_total_bytes"].as_f64(),
                v["mem_available_bytes"].as_f64(),
            ) {
                (Some(t), Some(a)) if t > 0.0 => Some(1.0 - a.min(t) / t),
                _ => None,
            };
            Some(HostNow {
                node,
                cpu_busy: v["cpu_busy"].as_f64(),
                mem_used: used,
                open_files: v["open_files"].as_f64(),
            })
        })
        .collect();
    out.sort_by(|a, b| a.node.cmp(&b.node));
    out
}

/// One node's latest host sample.
#[derive(Debug, Clone, PartialEq)]
pub struct HostNow {
    pub node: String,
    pub cpu_busy: Option<f64>,
    pub mem_used: Option<f64>,
    pub open_files: Option<f64>,
}

/// The last complete line of a file that grows for hours, read from its tail only.
fn last_line(path: &Path) -> Option<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path).ok()?;
    let len = f.metadata().ok()?.len();
    f.seek(SeekFrom::Start(len.saturating_sub(8192))).ok()?;
    let mut tail = String::new();
    f.read_to_string(&mut tail).ok()?;
    tail.lines()
        .rev()
        .find(|l| l.ends_with('}'))
        .map(str::to_string)
}

fn series(node: String, text: &str, t0: f64) -> HostSeries {
    let mut h = HostSeries {
        node,
        ..HostSeries::default()
    };
    let peak = |slot: &mut Option<f64>, v: Option<f64>| {
        if let Some(v) = v {
            *slot = Some(slot.map_or(v, |p| p.max(v)));
        }
    };
    for v in text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
    {
        let Some(ns) = v["timestamp_ns"].as_f64() else {
            continue;
        };
        let t = ns / 1e9 - t0;
        h.samples += 1;
        if let Some(b) = v["cpu_busy"].as_f64() {
            h.cpu_busy.push((t, b));
        }
        let total = v["mem_total_bytes"].as_u64();
        if let (Some(total), Some(avail)) = (total, v["mem_available_bytes"].as_u64()) {
            if total > 0 {
                h.mem_used
                    .push((t, 1.0 - avail.min(total) as f64 / total as f64));
            }
        }
        h.mem_total_bytes = total.or(h.mem_total_bytes);
        peak(&mut h.open_files_peak, v["open_files"].as_f64());
        peak(&mut h.load1_peak, v["load1"].as_f64());
    }
    h
}

#[cfg(test)]
mod tests {
    #[test]
    fn samples_become_series_and_peaks_and_bad_lines_are_skipped() {
        let text = concat!(
            r#"{"timestamp_ns":10000000000,"host":"n","cpu_busy":null,"mem_total_bytes":1000,"mem_available_bytes":750,"open_files":12,"load1":0.5}"#,
            "\nnot json\n",
            r#"{"timestamp_ns":11000000000,"host":"n","cpu_busy":0.9,"mem_total_bytes":1000,"mem_available_bytes":500,"open_files":40,"load1":0.2}"#,
            "\n"
        );
        let h = super::series("node1".into(), text, 9.0);
        assert_eq!(h.samples, 2);
        assert_eq!(h.cpu_busy, vec![(2.0, 0.9)]);
        assert_eq!(h.mem_used, vec![(1.0, 0.25), (2.0, 0.5)]);
        assert_eq!(h.open_files_peak, Some(40.0));
        assert_eq!(h.load1_peak, Some(0.5));
        assert_eq!(h.cpu_busy_peak(), Some(0.9));
    }
}
