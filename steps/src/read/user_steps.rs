//! `steps:` and `policy:`: what the recipe adds to the compiled graph, and how each kind retries.

use crate::diag::{join, Keys, Reader};
use crate::recipe::{PolicyOverride, UserStep};
use crate::yaml::{Node, Value};

const STEP: Keys = Keys {
    known: &[
        "name",
        "run",
        "node",
        "after",
        "before",
        "service",
        "retries",
        "timeout",
        "env",
        "container",
    ],
    ignored: &[],
};
const POLICY: Keys = Keys {
    known: &["attempts", "retries", "backoff", "timeout", "retry_on_exit"],
    ignored: &[],
};

/// `steps:`: the recipe's own commands.
pub(super) fn read_steps(r: &mut Reader, node: Option<&Node>) -> Vec<UserStep> {
    let Some(node) = node else { return Vec::new() };
    let items = match &node.value {
        Value::Null => return Vec::new(),
        Value::Seq(items) => items,
        _ => {
            r.error(
                node.pos,
                "steps",
                format!("expected a list of steps, found {}", node.describe()),
                Some("e.g. steps: [{name: a, run: \"echo hi\"}]".into()),
            );
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let Some(step) = read_step(r, item, i) else {
            continue;
        };
        if let Some(prev) = out
            .iter()
            .find(|s: &&UserStep| s.name == step.name && !step.name.is_empty())
        {
            r.error(
                item.get("name").map_or(item.pos, |x| x.pos),
                &format!("steps[{i}].name"),
                format!(
                    "step name `{}` is already used by the step at line {}",
                    step.name, prev.pos.line
                ),
                None,
            );
        }
        out.push(step);
    }
    out
}

/// `policy:`: per step kind, attempts, backoff, timeout.
pub(super) fn read_policies(r: &mut Reader, node: Option<&Node>) -> Vec<PolicyOverride> {
    let Some(node) = node else { return Vec::new() };
    let Some(entries) = node.as_map() else {
        if !matches!(node.value, Value::Null) {
            r.error(
                node.pos,
                "policy",
                format!(
                    "expected a mapping of step kinds to policies, found {}",
                    node.describe()
                ),
                Some("e.g. policy: {pip_install: {attempts: 5, backoff: 2s}}".into()),
            );
        }
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in entries {
        let path = join("policy", &e.key);
        if !crate::kinds::names().any(|k| k == e.key) {
            let help = crate::diag::did_you_mean(&e.key, crate::kinds::names())
                .map(|k| format!("did you mean `{k}`?"))
                .unwrap_or_else(|| {
                    format!(
                        "step kinds: {}",
                        crate::kinds::names().collect::<Vec<_>>().join(", ")
                    )
                });
            r.error(
                e.key_pos,
                &path,
                format!("`{}` is not a step kind", e.key),
                Some(help),
            );
            continue;
        }
        r.check_keys(&e.value, &path, &POLICY);
        let dur = |r: &mut Reader, key: &str| {
            e.value.get(key).and_then(|t| {
                let text = t.scalar_text().unwrap_or_default();
                let v = srt_graph_engine::policy::parse_duration(&text);
                if v.is_none() {
                    r.error(
                        t.pos,
                        &join(&path, key),
                        format!("`{text}` is not a duration"),
                        Some("e.g. 90s, 500ms, 30m, 2h".into()),
                    );
                }
                v
            })
        };
        let attempts = r
            .int(e.value.get("attempts"), &join(&path, "attempts"), 1, 100)
            .or_else(|| {
                r.int(e.value.get("retries"), &join(&path, "retries"), 0, 99)
                    .map(|v| v + 1)
            })
            .map(|v| v as u32);
        out.push(PolicyOverride {
            kind: e.key.clone(),
            attempts,
            backoff_secs: dur(r, "backoff"),
            timeout_secs: dur(r, "timeout"),
            retry_on_exit: r.boolean(e.value.get("retry_on_exit"), &join(&path, "retry_on_exit")),
            pos: e.value.pos,
        });
    }
    out
}

/// One entry of `steps:`.
fn read_step(r: &mut Reader, item: &Node, i: usize) -> Option<UserStep> {
    let path = format!("steps[{i}]");
    if !matches!(item.value, Value::Map(_)) {
        r.error(
            item.pos,
            &path,
            format!(
                "expected a mapping with `name` and `run`, found {}",
                item.describe()
            ),
            None,
        );
        return None;
    }
    r.check_keys(item, &path, &STEP);
    let name = r.string(item.get("name"), &join(&path, "name"));
    let run = r.string(item.get("run"), &join(&path, "run"));
    if name.is_none() {
        r.error(
            item.pos,
            &join(&path, "name"),
            "missing `name` (the step's id)",
            None,
        );
    }
    if run.is_none() {
        r.error(
            item.pos,
            &join(&path, "run"),
            "missing `run` (the shell command)",
            None,
        );
    }
    if let Some(n) = &name {
        if n.is_empty() || n.chars().any(|c| c.is_whitespace() || c.is_control()) {
            r.error(
                item.get("name").map_or(item.pos, |x| x.pos),
                &join(&path, "name"),
                format!("step name {n:?} must be non-empty and contain no spaces"),
                None,
            );
        }
    }
    let node_sel = match item.get("node") {
        None => Some(0),
        Some(n) if n.value == Value::Str("all".into()) => None,
        Some(n) => r
            .int(Some(n), &join(&path, "node"), 0, super::MAX_COUNT)
            .map(|v| v as u32)
            .or(Some(0)),
    };
    let timeout_secs = item.get("timeout").and_then(|t| {
        let text = t.scalar_text().unwrap_or_default();
        let parsed = srt_graph_engine::policy::parse_duration(&text);
        if parsed.is_none() {
            r.error(
                t.pos,
                &join(&path, "timeout"),
                format!("`{text}` is not a duration"),
                Some("e.g. 90s, 500ms, 30m, 2h".into()),
            );
        }
        parsed
    });
    Some(UserStep {
        name: name.unwrap_or_default(),
        run: run.unwrap_or_default(),
        node: node_sel,
        after: r.string_list(item.get("after"), &join(&path, "after")),
        before: r.string_list(item.get("before"), &join(&path, "before")),
        service: r
            .boolean(item.get("service"), &join(&path, "service"))
            .unwrap_or(false),
        retries: r
            .int(item.get("retries"), &join(&path, "retries"), 0, 100)
            .map(|v| v as u32),
        timeout_secs,
        env: r.string_map(item.get("env"), &join(&path, "env")),
        container: r
            .boolean(item.get("container"), &join(&path, "container"))
            .unwrap_or(false),
        pos: item.pos,
        index: i,
    })
}
