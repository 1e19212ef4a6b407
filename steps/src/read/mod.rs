//! Reading one recipe document (already override- and sweep-expanded) into a `Recipe`: a short driver
//! over one reader per section, each in its own file. Every mistake becomes a diagnostic that names the
//! file, line, column and field and says what would be valid.

mod backend;
mod benchmark;
mod frontend;
mod identity;
mod ignored;
mod model;
mod observability;
mod platform;
mod profiling;
mod resources;
mod roles;
mod telemetry;
mod user_steps;

use crate::cluster::ClusterConfig;
use crate::diag::{Keys, Reader};
use crate::recipe::Recipe;
use crate::yaml::{Node, Value};

const MAX_COUNT: i64 = 100_000;
const MAX_GPUS_PER_NODE: i64 = 1024;

const TOP: Keys = Keys {
    known: &[
        "name",
        "model",
        "resources",
        "backend",
        "frontend",
        "benchmark",
        "slurm",
        "health_check",
        "dynamo",
        "environment",
        "setup_script",
        "container_mounts",
        "extra_mount",
        "srun_options",
        "sbatch_directives",
        "steps",
        "policy",
        "infra",
        "mock_workers",
        "secret_env",
        "run_dir_access",
        "observability",
        "identity",
        "profiling",
        "telemetry",
    ],
    ignored: &["output", "reporting", "enable_config_dump"],
};

pub fn read(doc: &Node, cluster: &ClusterConfig, r: &mut Reader) -> Option<Recipe> {
    if matches!(doc.value, Value::Null) {
        r.error(doc.pos, "", "the recipe is empty", Some("a recipe is a mapping with at least `name` and either `resources`+`backend` or `steps`".into()));
        return None;
    }
    if !r.check_keys(doc, "", &TOP) {
        return None;
    }
    let name = read_name(doc, r);
    let empty = Node::new(Value::Null, doc.pos);
    let section = |key: &str| doc.get(key).unwrap_or(&empty);

    let model = model::read(section("model"), cluster, r);
    let resources = resources::read(section("resources"), cluster, r);
    let backend_node = section("backend");
    let backend = backend::read(backend_node, r);
    let mut frontend = frontend::read(section("frontend"), backend_node, r);
    frontend.nginx_container = frontend
        .nginx_container
        .map(|n| cluster.resolve_container(&n));
    check_pairing(doc, backend, &frontend, r);
    let resources_pos = doc.get("resources").map_or(doc.pos, |n| n.pos);
    let roles = roles::read(&resources, backend, backend_node, resources_pos, r);
    backend.check_roles(&roles, r);
    let sglang_src_dir = backend::sglang_src_dir(backend_node, &frontend, r);
    let benchmark = benchmark::read(r, doc.get("benchmark"));
    let platform = platform::read(doc, &section, cluster, r);
    let steps = user_steps::read_steps(r, doc.get("steps"));
    let policies = user_steps::read_policies(r, doc.get("policy"));

    if roles.is_empty() && steps.is_empty() && r.diagnostics.is_empty() {
        r.error(
            doc.pos,
            "resources",
            "nothing to run: the recipe has neither workers (`resources` with prefill/decode or agg nodes) nor `steps`",
            Some("add `resources:` and `backend:` sections, or a `steps:` list".into()),
        );
    }
    let mut notes = Vec::new();
    if let Some(named) = doc
        .get("benchmark")
        .and_then(|b| b.get("type"))
        .and_then(|t| t.scalar_text())
        .filter(|n| benchmark.as_ref().is_some_and(|b| &b.kind != n))
    {
        notes.push(format!(
            "benchmark type `{named}` is read as `{}` (its older name)",
            benchmark.as_ref().map_or("", |b| b.kind.as_str())
        ));
    }
    Some(Recipe {
        resolved: doc.to_json(),
        file: r.file.clone(),
        name: name?,
        backend: backend.name(),
        mock_workers: r
            .boolean(doc.get("mock_workers"), "mock_workers")
            .unwrap_or(false),
        backend_options: backend::options(backend_node, backend),
        srtctl_root: cluster.srtctl_root.clone(),
        model_path: model.path,
        container: model.container,
        precision: model.precision,
        gpu_type: resources.gpu_type.clone(),
        gpus_per_node: resources.gpus_per_node,
        roles,
        frontend,
        sglang_src_dir,
        benchmark: benchmark.clone(),
        health_max_attempts: platform.health_max_attempts,
        health_interval_secs: platform.health_interval_secs,
        dynamo: platform.dynamo,
        infra_dedicated_node: platform.infra_dedicated_node,
        environment: platform.environment,
        setup_script: platform.setup_script,
        container_mounts: platform.container_mounts,
        srun_options: platform.srun_options,
        sbatch_directives: platform.sbatch_directives,
        secret_env: platform.secret_env,
        run_dir_access: platform.run_dir_access,
        slurm_account: platform.slurm_account,
        slurm_partition: platform.slurm_partition,
        slurm_time_limit: platform.slurm_time_limit,
        steps,
        policies,
        scrape: observability::read(doc, r),
        identity: identity::read(doc, r),
        profiling: profiling::read(doc, benchmark.as_ref(), r),
        telemetry: telemetry::read(doc, cluster, r),
        ignored: std::mem::take(&mut r.ignored)
            .iter()
            .map(|k| ignored::with_reason(k))
            .collect(),
        notes,
        root_pos: doc.pos,
        resources_pos,
    })
}

/// The frontend type must be one the backend serves behind (srtctl's pairings).
fn check_pairing(
    doc: &Node,
    backend: &dyn crate::backends::Backend,
    frontend: &crate::recipe::Frontend,
    r: &mut Reader,
) {
    if backend.frontends().contains(&frontend.kind) {
        return;
    }
    let at = doc
        .get("frontend")
        .and_then(|f| f.get("type"))
        .or_else(|| doc.get("backend").and_then(|b| b.get("type")))
        .map_or(doc.pos, |n| n.pos);
    r.error(
        at,
        "frontend.type",
        format!(
            "backend `{}` does not run behind frontend `{}`",
            backend.name(),
            frontend.kind
        ),
        Some(format!(
            "valid with `{}`: {}",
            backend.name(),
            backend.frontends().join(", ")
        )),
    );
}

/// `name`: required, non-empty.
fn read_name(doc: &Node, r: &mut Reader) -> Option<String> {
    let Some(n) = doc.get("name") else {
        r.error(
            doc.pos,
            "name",
            "missing required key `name`",
            Some("add `name: my-benchmark` at the top level".into()),
        );
        return None;
    };
    let name = r.string(Some(n), "name").filter(|s| !s.trim().is_empty());
    if name.is_none() && !matches!(n.value, Value::Map(_) | Value::Seq(_)) {
        r.error(n.pos, "name", "`name` must not be empty", None);
    }
    name
}
