use crate::plan::{Dag, Lifetime};
use std::fmt::Write;

/// Graphviz DOT: one cluster per node; services are boxes, tasks are rounded; kinds get colours.
pub fn dot(dag: &Dag) -> String {
    let plan = &dag.plan;
    let mut out = String::new();
    let _ = writeln!(out, "digraph {} {{", quote(&plan.recipe));
    let _ = writeln!(out, "  rankdir=LR;\n  compound=true;\n  node [fontname=\"Helvetica\", fontsize=10, style=filled];");
    for (n, name) in plan.nodes.iter().enumerate() {
        let _ = writeln!(out, "  subgraph cluster_{n} {{");
        let _ = writeln!(
            out,
            "    label={};\n    style=dashed;",
            quote(&format!("{name} ({})", plan.addresses[n]))
        );
        for &i in &dag.order {
            let s = dag.step(i);
            if s.node != n {
                continue;
            }
            let shape = match s.lifetime {
                Lifetime::Service => "box",
                Lifetime::Task => "box, style=\"rounded,filled\"",
            };
            let _ = writeln!(
                out,
                "    {} [label={}, shape={shape}, fillcolor={}];",
                quote(&s.id),
                quote(&format!("{}\\n{}", s.id, s.kind)),
                quote(colour(&s.kind))
            );
        }
        let _ = writeln!(out, "  }}");
    }
    for &i in &dag.order {
        let s = dag.step(i);
        for d in &s.depends_on {
            let _ = writeln!(out, "  {} -> {};", quote(d), quote(&s.id));
        }
    }
    out.push_str("}\n");
    out
}

fn colour(kind: &str) -> &'static str {
    match kind {
        "mount_source" | "pip_install" | "setup_script" => "#e8e8e8",
        "start_worker" => "#cfe2ff",
        "start_router" | "start_frontend" => "#d1e7dd",
        "start_nginx" => "#fff3cd",
        "start_nats" | "start_etcd" => "#e2d9f3",
        "wait_healthy" => "#f8d7da",
        "run_benchmark" => "#ffe5d0",
        _ => "#ffffff",
    }
}

/// DOT double-quoted ID: escape backslash-free quotes (labels use `\n` on purpose).
fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\\\""))
}
