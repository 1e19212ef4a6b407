use crate::plan::Dag;

/// The plan as pretty JSON (the documented contract; see `Plan`), as stored and printed: secret values
/// redacted.
pub fn json(dag: &Dag) -> String {
    let mut s = serde_json::to_string_pretty(&dag.plan.redacted())
        .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
    s.push('\n');
    s
}
