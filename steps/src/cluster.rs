//! The cluster config `srtslurm.yaml`: site defaults and model/container aliases.

use crate::diag::{Reader, RecipeError};
use crate::recipe::RunDirAccess;
use crate::yaml::{self, Value};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default)]
pub struct ClusterConfig {
    /// Where it was read from, if anywhere.
    pub file: Option<PathBuf>,
    pub default_account: Option<String>,
    pub default_partition: Option<String>,
    pub default_time_limit: Option<String>,
    /// Overrides the recipe's `resources.gpus_per_node` (srt-slurm: the cluster wins).
    pub gpus_per_node: Option<u32>,
    pub network_interface: Option<String>,
    /// `#SBATCH --gpus-per-node` (srt-slurm's `use_gpus_per_node_directive`, default on).
    pub use_gpus_per_node_directive: Option<bool>,
    /// `#SBATCH --segment` (srt-slurm's `use_segment_sbatch_directive`, default on).
    pub use_segment_sbatch_directive: Option<bool>,
    /// `#SBATCH --key=value` lines every job gets unless the recipe sets the key.
    pub default_sbatch_directives: Vec<(String, String)>,
    /// Hosts for `--executor ssh` when the command line names none (srt-graph's own key).
    pub ssh_hosts: Vec<String>,
    pub model_paths: Vec<(String, String)>,
    pub containers: Vec<(String, String)>,
    /// srt-slurm's checkout: its benchmark scripts are under `src/srtctl/benchmarks/scripts/`.
    pub srtctl_root: Option<String>,
    /// `host_path: container_path` mounted into every job's containers (`$VAR`s expanded at load).
    pub default_mounts: Vec<(String, String)>,
    /// More environment variables to treat as secret (srt-graph's own key).
    pub secret_env: Vec<String>,
    /// Who may read run directories (srt-graph's own key; a recipe may set its own).
    pub run_dir_access: Option<crate::recipe::RunDirAccess>,
}

impl ClusterConfig {
    /// Exact-key, single-level alias lookup; unknown names pass through unchanged.
    pub fn resolve_model(&self, name: &str) -> String {
        lookup(&self.model_paths, name)
    }

    pub fn resolve_container(&self, name: &str) -> String {
        lookup(&self.containers, name)
    }

    /// srtctl's search: `$SRTSLURM_CONFIG` (if set, only it), else `./`, `../`, `../../srtslurm.yaml`.
    pub fn discover(cwd: &Path, env_value: Option<&str>) -> Option<PathBuf> {
        if let Some(p) = env_value {
            let p = PathBuf::from(p);
            return p.is_file().then_some(p);
        }
        ["srtslurm.yaml", "../srtslurm.yaml", "../../srtslurm.yaml"]
            .iter()
            .map(|rel| cwd.join(rel))
            .find(|p| p.is_file())
    }

    pub fn load(path: &Path) -> Result<ClusterConfig, RecipeError> {
        let file = path.display().to_string();
        let text = std::fs::read(path).map_err(|source| RecipeError::Io {
            file: file.clone(),
            source,
        })?;
        let text = String::from_utf8_lossy(&text);
        Self::parse(&text, &file).map(|mut c| {
            c.file = Some(path.to_path_buf());
            c
        })
    }

    pub fn parse(text: &str, file: &str) -> Result<ClusterConfig, RecipeError> {
        let mut r = Reader::new(file);
        let root = match yaml::parse(text) {
            Ok(n) => n,
            Err(e) => {
                r.error(e.pos, "", e.message, None);
                return Err(RecipeError::Invalid(r.diagnostics));
            }
        };
        if matches!(root.value, Value::Null) {
            return Ok(ClusterConfig::default());
        }
        if !matches!(root.value, Value::Map(_)) {
            r.error(
                root.pos,
                "",
                format!("a cluster config is a mapping, found {}", root.describe()),
                None,
            );
            return Err(RecipeError::Invalid(r.diagnostics));
        }
        // srtslurm.yaml allows extra keys (it carries site settings this tool does not need).
        let get = |k: &str| root.get(k);
        let cfg = ClusterConfig {
            file: None,
            default_account: r.string(get("default_account"), "default_account"),
            default_partition: r.string(get("default_partition"), "default_partition"),
            default_time_limit: r.string(get("default_time_limit"), "default_time_limit"),
            gpus_per_node: r
                .int(get("gpus_per_node"), "gpus_per_node", 1, 1024)
                .map(|v| v as u32),
            network_interface: r.string(get("network_interface"), "network_interface"),
            use_gpus_per_node_directive: r.boolean(
                get("use_gpus_per_node_directive"),
                "use_gpus_per_node_directive",
            ),
            use_segment_sbatch_directive: r.boolean(
                get("use_segment_sbatch_directive"),
                "use_segment_sbatch_directive",
            ),
            default_sbatch_directives: r.string_map(
                get("default_sbatch_directives"),
                "default_sbatch_directives",
            ),
            ssh_hosts: r.string_list(get("ssh_hosts"), "ssh_hosts"),
            model_paths: r.string_map(get("model_paths"), "model_paths"),
            containers: r.string_map(get("containers"), "containers"),
            srtctl_root: r.string(get("srtctl_root"), "srtctl_root"),
            default_mounts: r
                .string_map(get("default_mounts"), "default_mounts")
                .into_iter()
                .map(|(h, c)| (expand_vars(&h), c))
                .collect(),
            secret_env: r.string_list(get("secret_env"), "secret_env"),
            run_dir_access: read_access(get("run_dir_access"), "run_dir_access", &mut r),
        };
        if r.diagnostics.is_empty() {
            Ok(cfg)
        } else {
            Err(RecipeError::Invalid(r.diagnostics))
        }
    }
}

/// `$VAR` and `${VAR}` from this process's environment, as srtctl's `os.path.expandvars` (unknown ones
/// are left as written).
fn expand_vars(text: &str) -> String {
    shellexpand::env_with_context_no_errors(text, |v| std::env::var(v).ok()).into_owned()
}

/// `run_dir_access: owner | group` (srt-graph's own key, in a recipe or srtslurm.yaml).
pub(crate) fn read_access(
    node: Option<&crate::yaml::Node>,
    path: &str,
    r: &mut Reader,
) -> Option<RunDirAccess> {
    let node = node?;
    match r.string(Some(node), path)?.as_str() {
        "owner" => Some(RunDirAccess::Owner),
        "group" => Some(RunDirAccess::Group),
        other => {
            r.error(
                node.pos,
                path,
                format!("`{other}` is not a run directory access"),
                Some("`owner` (the default: only you can read the run) or `group` (your group may read it, for shared results)".into()),
            );
            None
        }
    }
}

fn lookup(table: &[(String, String)], name: &str) -> String {
    table
        .iter()
        .find(|(k, _)| k == name)
        .map_or_else(|| name.to_string(), |(_, v)| v.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_resolve_once() {
        let c = ClusterConfig::parse(
            "model_paths:\n  a: b\n  b: /x\ncontainers: {c: /c.sqsh}\n",
            "s",
        )
        .unwrap();
        assert_eq!(c.resolve_model("a"), "b");
        assert_eq!(c.resolve_model("zz"), "zz");
        assert_eq!(c.resolve_container("c"), "/c.sqsh");
    }

    #[test]
    fn discovery_order() {
        let d = tempfile::tempdir().unwrap();
        let sub = d.path().join("x/y");
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(d.path().join("x/srtslurm.yaml"), "{}").unwrap();
        assert_eq!(
            ClusterConfig::discover(&sub, None),
            Some(sub.join("../srtslurm.yaml"))
        );
        assert_eq!(ClusterConfig::discover(&sub, Some("/nonexistent")), None);
    }
}
