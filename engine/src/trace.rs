//! Chrome trace (`trace.json`, opens in Perfetto): one span per step attempt, one track (pid) per node.

use serde_json::json;

#[derive(Debug, Clone)]
pub struct Span {
    pub step: String,
    pub kind: String,
    pub node: usize,
    pub attempt: u32,
    /// Microseconds since the run started.
    pub start_us: u64,
    pub end_us: u64,
    pub outcome: String,
}

/// Renders spans; steps overlapping on one node get separate lanes (tid) so they never stack.
pub fn render(nodes: &[String], spans: &[Span]) -> String {
    let mut events = Vec::with_capacity(spans.len() + nodes.len());
    for (k, name) in nodes.iter().enumerate() {
        events.push(json!({"ph": "M", "name": "process_name", "pid": k, "args": {"name": name}}));
    }
    let mut order: Vec<&Span> = spans.iter().collect();
    order.sort_by_key(|s| (s.node, s.start_us));
    let mut lanes: Vec<Vec<u64>> = vec![Vec::new(); nodes.len()];
    for s in order {
        let Some(node_lanes) = lanes.get_mut(s.node) else {
            continue;
        };
        let lane = match node_lanes.iter().position(|&end| end <= s.start_us) {
            Some(i) => {
                node_lanes[i] = s.end_us;
                i
            }
            None => {
                node_lanes.push(s.end_us);
                node_lanes.len() - 1
            }
        };
        events.push(json!({
            "ph": "X", "name": s.step, "cat": s.kind, "pid": s.node, "tid": lane,
            "ts": s.start_us, "dur": s.end_us.saturating_sub(s.start_us),
            "args": {"attempt": s.attempt, "outcome": s.outcome},
        }));
    }
    serde_json::to_string(&json!({"traceEvents": events, "displayTimeUnit": "ms"}))
        .unwrap_or_default()
}
