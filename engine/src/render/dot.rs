//! Graphviz DOT: one cluster per node; services are boxes, tasks are rounded; the fill colour of each
//! step comes from the caller's palette (the step kinds own their colours, the engine knows none).

use crate::plan::{Dag, Lifetime, Step};
use std::fmt::Write;

/// Fill colour of a step (`#rrggbb` or a Graphviz colour name).
pub type Palette<'a> = &'a dyn Fn(&Step) -> &'static str;

pub fn dot(dag: &Dag, palette: Palette<'_>) -> String {
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
                quote(palette(s))
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

/// DOT double-quoted ID: escape backslash-free quotes (labels use `\n` on purpose).
fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\\\""))
}
