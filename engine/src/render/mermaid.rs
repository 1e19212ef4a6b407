use crate::plan::{Dag, Lifetime};
use std::fmt::Write;

/// Mermaid flowchart: one subgraph per node; services as rectangles, tasks as rounded boxes.
pub fn mermaid(dag: &Dag) -> String {
    let plan = &dag.plan;
    let mut out = String::from("flowchart LR\n");
    let id = |i: usize| format!("s{i}");
    for (n, name) in plan.nodes.iter().enumerate() {
        let _ = writeln!(out, "  subgraph n{n}[\"{}\"]", escape(name));
        for &i in &dag.order {
            let s = dag.step(i);
            if s.node != n {
                continue;
            }
            let label = escape(&format!("{}<br/>{}", s.id, s.kind));
            match s.lifetime {
                Lifetime::Service => {
                    let _ = writeln!(out, "    {}[\"{label}\"]", id(i));
                }
                Lifetime::Task => {
                    let _ = writeln!(out, "    {}(\"{label}\")", id(i));
                }
            }
        }
        out.push_str("  end\n");
    }
    for &i in &dag.order {
        for d in dag.dependencies_sorted(i) {
            let _ = writeln!(out, "  {} --> {}", id(d), id(i));
        }
    }
    out
}

fn escape(s: &str) -> String {
    s.replace('"', "#quot;")
}
