//! srtctl's DCGM power artifacts (`<storage_subdir>/samples.csv`, `manifest.json`, `windows/*.json`):
//! the one definition of their shape, read by the collector's audit (`srt-graph collect-power`) and by
//! the report, which integrates each covered benchmark window into energy and energy per output token.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

pub const SCHEMA_VERSION: u32 = 1;
pub const SAMPLES_FILE: &str = "samples.csv";
pub const MANIFEST_FILE: &str = "manifest.json";
pub const WINDOWS_DIR: &str = "windows";
pub const SAMPLES_HEADER: &str =
    "schema_version,timestamp_unix,scrape_seq,hostname,gpu_index,gpu_uuid,power_w";
/// srtctl's audit: a longer gap between two samples of a GPU leaves a window uncovered.
pub const MAX_SAMPLE_GAP_SECS: f64 = 3.0;

/// One observation of one GPU, on the collector's clock.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleRow {
    pub timestamp_unix: f64,
    pub scrape_seq: u64,
    pub hostname: String,
    pub gpu_index: u32,
    pub gpu_uuid: String,
    pub power_w: f64,
}

impl SampleRow {
    pub fn to_csv(&self) -> String {
        format!(
            "{SCHEMA_VERSION},{},{},{},{},{},{}",
            self.timestamp_unix,
            self.scrape_seq,
            self.hostname,
            self.gpu_index,
            self.gpu_uuid,
            self.power_w
        )
    }

    fn parse(line: &str) -> Option<SampleRow> {
        let f: Vec<&str> = line.trim_end().split(',').collect();
        let [schema, t, seq, host, gpu, uuid, watts] = f.as_slice() else {
            return None;
        };
        let row = SampleRow {
            timestamp_unix: t.parse().ok().filter(|v: &f64| v.is_finite())?,
            scrape_seq: seq.parse().ok()?,
            hostname: (*host).to_string(),
            gpu_index: gpu.parse().ok()?,
            gpu_uuid: (*uuid).to_string(),
            power_w: watts
                .parse()
                .ok()
                .filter(|v: &f64| v.is_finite() && *v >= 0.0)?,
        };
        (schema.parse::<u32>().ok() == Some(SCHEMA_VERSION)
            && !row.hostname.is_empty()
            && !row.gpu_uuid.is_empty())
        .then_some(row)
    }

    pub fn device(&self) -> (String, u32) {
        (self.hostname.clone(), self.gpu_index)
    }
}

/// The rows of a `samples.csv` (malformed lines skipped, and counted), or `None` without the file or
/// its header.
pub fn read_samples(path: &Path) -> Option<(Vec<SampleRow>, usize)> {
    let text = std::fs::read_to_string(path).ok()?;
    let mut lines = text.lines();
    if lines.next()? != SAMPLES_HEADER {
        return None;
    }
    let (mut rows, mut bad) = (Vec::new(), 0);
    for l in lines.filter(|l| !l.is_empty()) {
        match SampleRow::parse(l) {
            Some(r) => rows.push(r),
            None => bad += 1,
        }
    }
    Some((rows, bad))
}

/// A GPU the plan expects to report, and the role its watts count for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    pub hostname: String,
    pub gpu_index: u32,
    pub role: String,
}

/// A measured point expected to write a window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpectedWindow {
    pub benchmark_type: String,
    pub isl: u32,
    pub osl: u32,
    pub concurrency: u32,
}

/// A measurement window as the load generator writes it (sa-bench's `measurement_window.py` fields,
/// plus the point's `isl`/`osl`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Window {
    pub schema_version: u32,
    pub benchmark_type: String,
    /// The result file, relative to the run directory.
    pub result_path: String,
    pub concurrency: u32,
    #[serde(default)]
    pub isl: Option<u32>,
    #[serde(default)]
    pub osl: Option<u32>,
    pub benchmark_start_time_unix: f64,
    pub benchmark_end_time_unix: Option<f64>,
    pub duration: Option<f64>,
    pub clock_source: String,
    /// `running`, `completed`, `failed`, `interrupted`.
    pub status: String,
    pub reason: Option<String>,
}

impl Window {
    pub fn matches(&self, e: &ExpectedWindow) -> bool {
        self.benchmark_type == e.benchmark_type
            && self.concurrency == e.concurrency
            && self.isl.is_none_or(|i| i == e.isl)
            && self.osl.is_none_or(|o| o == e.osl)
    }
}

/// Every readable window file (file name, window), by name.
pub fn read_windows(power_dir: &Path) -> Vec<(String, Window)> {
    let Ok(entries) = std::fs::read_dir(power_dir.join(WINDOWS_DIR)) else {
        return Vec::new();
    };
    let mut out: Vec<(String, Window)> = entries
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .filter_map(|e| {
            let text = std::fs::read_to_string(e.path()).ok()?;
            let w = serde_json::from_str::<Window>(&text).ok()?;
            Some((e.file_name().to_string_lossy().into_owned(), w))
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// The audit of one expected window: covered when it completed and every expected GPU has a sample at
/// or before its start, one at or after its end, and no gap longer than `MAX_SAMPLE_GAP_SECS` between.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowValidation {
    #[serde(flatten)]
    pub expected: ExpectedWindow,
    pub window_file: Option<String>,
    pub power_coverage_valid: bool,
    pub reason_codes: Vec<String>,
    pub per_device_max_sample_gap_seconds: BTreeMap<String, f64>,
}

fn device_key(host: &str, gpu: u32) -> String {
    format!("{host}/gpu{gpu}")
}

/// Per device, its samples in time order.
pub fn by_device(rows: &[SampleRow]) -> BTreeMap<(String, u32), Vec<&SampleRow>> {
    let mut out: BTreeMap<(String, u32), Vec<&SampleRow>> = BTreeMap::new();
    for r in rows {
        out.entry(r.device()).or_default().push(r);
    }
    for v in out.values_mut() {
        v.sort_by(|a, b| a.timestamp_unix.total_cmp(&b.timestamp_unix));
    }
    out
}

pub fn audit(
    expected: &[ExpectedWindow],
    devices: &[Device],
    windows: &[(String, Window)],
    rows: &[SampleRow],
) -> Vec<WindowValidation> {
    let series = by_device(rows);
    expected
        .iter()
        .map(|e| {
            let mut v = WindowValidation {
                expected: e.clone(),
                window_file: None,
                power_coverage_valid: false,
                reason_codes: Vec::new(),
                per_device_max_sample_gap_seconds: BTreeMap::new(),
            };
            let found: Vec<&(String, Window)> =
                windows.iter().filter(|(_, w)| w.matches(e)).collect();
            let (name, w) = match found.as_slice() {
                [] => {
                    v.reason_codes.push("measurement_window_missing".into());
                    return v;
                }
                [one] => (&one.0, &one.1),
                _ => {
                    v.reason_codes.push("measurement_window_duplicate".into());
                    return v;
                }
            };
            v.window_file = Some(format!("{WINDOWS_DIR}/{name}"));
            let (start, Some(end)) = (w.benchmark_start_time_unix, w.benchmark_end_time_unix)
            else {
                v.reason_codes.push("measurement_window_incomplete".into());
                return v;
            };
            if w.status != "completed" {
                v.reason_codes.push("measurement_window_incomplete".into());
                return v;
            }
            for d in devices {
                let key = device_key(&d.hostname, d.gpu_index);
                let Some(s) = series.get(&(d.hostname.clone(), d.gpu_index)) else {
                    v.reason_codes.push("expected_device_missing".into());
                    continue;
                };
                let first = s.iter().rposition(|r| r.timestamp_unix <= start);
                let last = s.iter().position(|r| r.timestamp_unix >= end);
                let (Some(first), Some(last)) = (first, last) else {
                    v.reason_codes
                        .push("measurement_window_not_bracketed".into());
                    continue;
                };
                let gap = s[first..=last]
                    .windows(2)
                    .map(|p| p[1].timestamp_unix - p[0].timestamp_unix)
                    .fold(0.0, f64::max);
                v.per_device_max_sample_gap_seconds.insert(key, gap);
                if gap > MAX_SAMPLE_GAP_SECS {
                    v.reason_codes.push("sample_gap_exceeded".into());
                }
            }
            v.reason_codes.dedup();
            v.power_coverage_valid = v.reason_codes.is_empty();
            v
        })
        .collect()
}

/// A device's power at `t`, linear between its samples (`None` outside them).
fn power_at(s: &[&SampleRow], t: f64) -> Option<f64> {
    let i = s.iter().position(|r| r.timestamp_unix >= t)?;
    if s[i].timestamp_unix == t || i == 0 {
        return (s[i].timestamp_unix == t).then_some(s[i].power_w);
    }
    let (a, b) = (s[i - 1], s[i]);
    let f = (t - a.timestamp_unix) / (b.timestamp_unix - a.timestamp_unix);
    Some(a.power_w + f * (b.power_w - a.power_w))
}

/// Joules one device used over `[start, end]`: the trapezoid rule over its samples, with the power at
/// both ends interpolated. `None` when its samples do not bracket the window.
pub fn energy_j(s: &[&SampleRow], start: f64, end: f64) -> Option<f64> {
    let (p0, p1) = (power_at(s, start)?, power_at(s, end)?);
    let mut points = vec![(start, p0)];
    points.extend(
        s.iter()
            .filter(|r| r.timestamp_unix > start && r.timestamp_unix < end)
            .map(|r| (r.timestamp_unix, r.power_w)),
    );
    points.push((end, p1));
    Some(
        points
            .windows(2)
            .map(|w| (w[1].0 - w[0].0) * (w[0].1 + w[1].1) / 2.0)
            .sum(),
    )
}

/// One benchmark window's power, as the report shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowEnergy {
    pub window: Window,
    pub seconds: f64,
    pub gpus: usize,
    /// Joules over all GPUs, and per role.
    pub energy_j: f64,
    pub by_role: BTreeMap<String, f64>,
    pub output_tokens: Option<u64>,
    pub covered: bool,
}

impl WindowEnergy {
    pub fn mean_power_w(&self) -> f64 {
        self.energy_j / self.seconds.max(1e-9)
    }
    pub fn joules_per_output_token(&self) -> Option<f64> {
        self.output_tokens
            .filter(|&n| n > 0)
            .map(|n| self.energy_j / n as f64)
    }
}

/// The run's power artifacts, read back: what the manifest said and each completed window's energy.
#[derive(Debug, Clone, Default)]
pub struct PowerRun {
    pub manifest: serde_json::Value,
    pub samples: usize,
    pub windows: Vec<WindowEnergy>,
}

/// Reads `power_dir` (where `manifest.json` is) of the run at `run_dir`; `None` without a manifest.
pub fn read_run(run_dir: &Path, power_dir: &Path) -> Option<PowerRun> {
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(power_dir.join(MANIFEST_FILE)).ok()?).ok()?;
    let devices: Vec<Device> =
        serde_json::from_value(manifest["expected_devices"].clone()).unwrap_or_default();
    let role_of: BTreeMap<(String, u32), String> = devices
        .iter()
        .map(|d| ((d.hostname.clone(), d.gpu_index), d.role.clone()))
        .collect();
    let rows = read_samples(&power_dir.join(SAMPLES_FILE)).map_or_else(Vec::new, |r| r.0);
    let series = by_device(&rows);
    let validations: Vec<WindowValidation> =
        serde_json::from_value(manifest["window_validations"].clone()).unwrap_or_default();
    let windows = read_windows(power_dir)
        .into_iter()
        .filter(|(_, w)| w.status == "completed")
        .filter_map(|(name, w)| {
            let end = w.benchmark_end_time_unix?;
            let start = w.benchmark_start_time_unix;
            let (mut total, mut by_role, mut gpus) = (0.0, BTreeMap::new(), 0);
            for (device, s) in &series {
                if let Some(e) = energy_j(s, start, end) {
                    total += e;
                    gpus += 1;
                    let role = role_of
                        .get(device)
                        .cloned()
                        .unwrap_or_else(|| "other".into());
                    *by_role.entry(role).or_insert(0.0) += e;
                }
            }
            let output_tokens = std::fs::read_to_string(run_dir.join(&w.result_path))
                .ok()
                .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
                .and_then(|v| v["total_output_tokens"].as_u64());
            let file = format!("{WINDOWS_DIR}/{name}");
            let covered = validations
                .iter()
                .any(|v| v.window_file.as_deref() == Some(&file) && v.power_coverage_valid);
            Some(WindowEnergy {
                seconds: end - start,
                window: w,
                gpus,
                energy_j: total,
                by_role,
                output_tokens,
                covered,
            })
        })
        .collect();
    Some(PowerRun {
        manifest,
        samples: rows.len(),
        windows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(t: f64, seq: u64, gpu: u32, w: f64) -> SampleRow {
        SampleRow {
            timestamp_unix: t,
            scrape_seq: seq,
            hostname: "n0".into(),
            gpu_index: gpu,
            gpu_uuid: format!("GPU-{gpu}"),
            power_w: w,
        }
    }

    #[test]
    fn rows_round_trip_through_csv_and_bad_lines_are_counted() {
        let r = row(1700000000.25, 3, 1, 412.5);
        assert_eq!(SampleRow::parse(&r.to_csv()), Some(r.clone()));
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(SAMPLES_FILE);
        std::fs::write(
            &p,
            format!(
                "{SAMPLES_HEADER}\n{}\n1,x,1,n0,0,u,5\n1,1,1,n0,0,u,-5\n",
                r.to_csv()
            ),
        )
        .unwrap();
        let (rows, bad) = read_samples(&p).unwrap();
        assert_eq!((rows, bad), (vec![r], 2));
    }

    #[test]
    fn energy_integrates_between_interpolated_ends() {
        // 100 W → 300 W linearly over 0..2 s: the window 0.5..1.5 averages 200 W → 200 J.
        let rows = [
            row(0.0, 0, 0, 100.0),
            row(1.0, 1, 0, 200.0),
            row(2.0, 2, 0, 300.0),
        ];
        let s: Vec<&SampleRow> = rows.iter().collect();
        let e = energy_j(&s, 0.5, 1.5).unwrap();
        assert!((e - 200.0).abs() < 1e-9, "{e}");
        assert_eq!(energy_j(&s, -1.0, 1.0), None, "not bracketed");
    }

    #[test]
    fn the_audit_names_each_gap() {
        let devices = [Device {
            hostname: "n0".into(),
            gpu_index: 0,
            role: "decode".into(),
        }];
        let expected = [ExpectedWindow {
            benchmark_type: "sa-bench".into(),
            isl: 8,
            osl: 8,
            concurrency: 4,
        }];
        let window = |start: f64, end: f64, status: &str| Window {
            schema_version: 1,
            benchmark_type: "sa-bench".into(),
            result_path: "r.json".into(),
            concurrency: 4,
            isl: Some(8),
            osl: Some(8),
            benchmark_start_time_unix: start,
            benchmark_end_time_unix: Some(end),
            duration: Some(end - start),
            clock_source: "head_node_unix_clock".into(),
            status: status.into(),
            reason: None,
        };
        let rows = [
            row(0.0, 0, 0, 1.0),
            row(1.0, 1, 0, 1.0),
            row(5.0, 2, 0, 1.0),
        ];
        let audit1 = |w: Option<Window>| {
            let ws: Vec<(String, Window)> = w.into_iter().map(|w| ("w.json".into(), w)).collect();
            audit(&expected, &devices, &ws, &rows).remove(0)
        };
        assert!(audit1(Some(window(0.5, 0.9, "completed"))).power_coverage_valid);
        assert_eq!(
            audit1(Some(window(0.5, 4.0, "completed"))).reason_codes,
            ["sample_gap_exceeded"]
        );
        assert_eq!(
            audit1(Some(window(0.5, 9.0, "completed"))).reason_codes,
            ["measurement_window_not_bracketed"]
        );
        assert_eq!(
            audit1(Some(window(0.5, 0.9, "running"))).reason_codes,
            ["measurement_window_incomplete"]
        );
        assert_eq!(audit1(None).reason_codes, ["measurement_window_missing"]);
    }
}
