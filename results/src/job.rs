//! `job.json`: a run's metadata in srtctl's shape (`job_id`, `job_name`, `backend_type`, `resources`,
//! `benchmark`), so that srt-slurm's rollup and dashboards read srt-graph's runs, plus what srt-graph adds
//! under `srt_graph` (variant, executor, nodes, image and its digest).

use serde::{Deserialize, Serialize};
use std::path::Path;

pub const FILE: &str = "job.json";

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Resources {
    pub gpus_per_node: u32,
    pub prefill_nodes: u32,
    pub decode_nodes: u32,
    pub agg_nodes: u32,
    pub prefill_workers: u32,
    pub decode_workers: u32,
    pub agg_workers: u32,
    pub gpus_per_prefill: u32,
    pub gpus_per_decode: u32,
    pub gpus_per_agg: u32,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct BenchmarkInfo {
    #[serde(rename = "type")]
    pub kind: String,
    pub isl: Option<u32>,
    pub osl: Option<u32>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SrtGraphInfo {
    pub version: String,
    /// The commit the binary was built from.
    #[serde(default)]
    pub commit: Option<String>,
    pub recipe_file: Option<String>,
    pub variant: Option<String>,
    pub executor: String,
    pub mock_workers: bool,
    pub nodes: Vec<String>,
    pub container_image: Option<String>,
    /// `sha256:…` of a local image file; registry images are named, not resolved.
    pub container_image_digest: Option<String>,
    pub plan_steps: usize,
    /// The plan's fingerprint: equal plans, equal hash.
    pub plan_hash: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Job {
    pub job_id: String,
    pub job_name: String,
    pub backend_type: String,
    pub frontend_type: String,
    pub model_path: Option<String>,
    pub gpu_type: Option<String>,
    pub resources: Resources,
    pub benchmark: Option<BenchmarkInfo>,
    /// `--tags`, as srtctl stores them (absent when none), for `monitor --tag` and `report --tag`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    pub srt_graph: SrtGraphInfo,
}

/// Whether the run in `run_dir` carries any of `wanted` (every run when `wanted` is empty).
pub fn tagged(run_dir: &Path, wanted: &[String]) -> bool {
    wanted.is_empty() || Job::read(run_dir).is_ok_and(|j| j.tags.iter().any(|t| wanted.contains(t)))
}

impl Job {
    pub fn total_gpus(&self) -> u32 {
        let r = &self.resources;
        let working = r.prefill_workers * r.gpus_per_prefill
            + r.decode_workers * r.gpus_per_decode
            + r.agg_workers * r.gpus_per_agg;
        if working > 0 {
            working
        } else {
            (r.prefill_nodes + r.decode_nodes + r.agg_nodes).max(1) * r.gpus_per_node.max(1)
        }
    }

    pub fn write(&self, run_dir: &Path) -> Result<(), crate::ResultsError> {
        let bytes = serde_json::to_vec_pretty(self).unwrap_or_default();
        crate::write(&run_dir.join(FILE), &bytes)
    }

    pub fn read(run_dir: &Path) -> Result<Job, crate::ResultsError> {
        let path = run_dir.join(FILE);
        serde_json::from_slice(&crate::read(&path)?).map_err(|e| crate::ResultsError::Parse {
            path,
            message: e.to_string(),
        })
    }
}

/// `sha256:<hex>` of bytes.
pub fn bytes_digest(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    named(&Sha256::digest(bytes))
}

/// `sha256:<hex>`.
fn named(digest: &[u8]) -> String {
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// `sha256:<hex>` of a file, streamed (images are gigabytes).
pub fn file_digest(path: &Path) -> std::io::Result<String> {
    use sha2::{Digest, Sha256};
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h)?;
    Ok(named(&h.finalize()))
}
