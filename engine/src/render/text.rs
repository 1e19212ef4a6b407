use super::{display_command, levels};
use crate::plan::Dag;
use std::fmt::Write;

/// The human view: steps grouped by node with their command lines, then the dependency order.
pub fn text(dag: &Dag) -> String {
    let plan = &dag.plan;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "plan {}: {} node(s), {} step(s)",
        plan.recipe,
        plan.nodes.len(),
        plan.steps.len()
    );
    if let Some(e) = &plan.endpoint {
        let _ = writeln!(out, "endpoint: {e}");
    }
    for note in &plan.notes {
        let _ = writeln!(out, "note: {note}");
    }
    for key in &plan.ignored {
        let _ = writeln!(out, "ignored: {key}");
    }
    for (n, name) in plan.nodes.iter().enumerate() {
        let _ = writeln!(out, "\n{name} ({})", plan.addresses[n]);
        for &i in &dag.order {
            let s = dag.step(i);
            if s.node != n {
                continue;
            }
            let role = s
                .role
                .as_deref()
                .map(|r| format!("/{r}"))
                .unwrap_or_default();
            let _ = writeln!(out, "  {} [{}{role}, {:?}]", s.id, s.kind, s.lifetime);
            if !s.summary.is_empty() {
                let _ = writeln!(out, "      {}", s.summary);
            }
            if !s.depends_on.is_empty() {
                let _ = writeln!(out, "      after: {}", s.depends_on.join(", "));
            }
            if let Some(cmd) = &s.command {
                let _ = writeln!(out, "      $ {}", display_command(cmd));
            }
            if let Some(cwd) = &s.cwd {
                let _ = writeln!(out, "      cwd: {cwd}");
            }
            if !s.env.is_empty() {
                let env: Vec<String> = s.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
                let _ = writeln!(out, "      env: {}", env.join(" "));
            }
            if !s.ports.is_empty() {
                let ports: Vec<String> = s.ports.iter().map(u16::to_string).collect();
                let _ = writeln!(out, "      ports: {}", ports.join(" "));
            }
            for f in &s.files {
                let _ = writeln!(out, "      writes: {} ({} bytes)", f.path, f.content.len());
            }
            if let Some(m) = &s.mpi {
                let nodes: Vec<&str> = m
                    .nodes
                    .iter()
                    .filter_map(|&k| plan.nodes.get(k).map(String::as_str))
                    .collect();
                let _ = writeln!(
                    out,
                    "      mpi: one {} job of {} tasks over {}",
                    m.plugin,
                    m.tasks,
                    nodes.join(", ")
                );
            }
            if let Some(c) = &s.container {
                let name = c
                    .name
                    .as_deref()
                    .map(|n| format!(" as `{n}`"))
                    .unwrap_or_default();
                let _ = writeln!(out, "      in container {}{name}", c.image);
            }
            if s.on_resume == crate::plan::OnResume::Recheck {
                let _ = writeln!(
                    out,
                    "      node-local: does nothing where it is already in place (a cached venv, an install)"
                );
            }
            for r in &s.requires {
                let _ = writeln!(out, "      needs: {}", r.what);
            }
            let _ = writeln!(out, "      policy: {}", s.policy.describe());
        }
    }
    let level = levels(dag);
    let depth = level.iter().copied().max().map_or(0, |m| m + 1);
    let _ = writeln!(
        out,
        "\norder ({depth} wave(s); a step starts as soon as its own dependencies are done):"
    );
    for l in 0..depth {
        let ids: Vec<&str> = dag
            .order
            .iter()
            .filter(|&&i| level[i] == l)
            .map(|&i| dag.step(i).id.as_str())
            .collect();
        let _ = writeln!(out, "  {}. {}", l + 1, ids.join(", "));
    }
    out
}
