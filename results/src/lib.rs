//! What srt-graph makes of a run directory once steps have written into it: srt-slurm's benchmark
//! rollup (`rollup`), the comparison of two runs (`diff`), the charts and the self-contained HTML report
//! (`charts`, `report`), and the live monitor's snapshot (`snapshot`). Reads only files; starts nothing.

pub mod breakdown;
pub mod charts;
pub mod diff;
pub mod hosts;
pub mod job;
pub mod metrics;
pub mod points;
pub mod power;
pub mod report;
pub mod rollup;
pub mod snapshot;

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{0} is not a run directory (it has no plan.json)")]
    NotARun(PathBuf),
}

pub(crate) fn read(path: &Path) -> Result<Vec<u8>, ResultsError> {
    std::fs::read(path).map_err(|source| ResultsError::Io {
        path: path.to_path_buf(),
        source,
    })
}

pub(crate) fn read_json(path: &Path) -> Result<serde_json::Value, ResultsError> {
    serde_json::from_slice(&read(path)?).map_err(|e| ResultsError::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// Every `fingerprints/<node>.json` of a run, by node (unreadable files are left out).
pub fn fingerprints(run_dir: &Path) -> std::collections::BTreeMap<String, serde_json::Value> {
    std::fs::read_dir(run_dir.join("fingerprints"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|f| read_json(&f.path()).ok())
        .map(|v| (v["node"].as_str().unwrap_or("?").to_string(), v))
        .collect()
}

pub(crate) fn write(path: &Path, bytes: &[u8]) -> Result<(), ResultsError> {
    srt_graph_engine::rundir::write_atomic(path, bytes).map_err(|source| ResultsError::Io {
        path: path.to_path_buf(),
        source,
    })
}
