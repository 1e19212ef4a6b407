//! `srt-graph check-identity`: the recipe's `identity:` block (model repository and revision, container
//! image, framework versions) against what the worker nodes' fingerprints recorded. srtctl logs the
//! comparison; here a difference fails the run before the benchmark, naming each value.

use serde_json::Value;

/// What the recipe declares.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Declared {
    pub model_repo: Option<String>,
    pub model_revision: Option<String>,
    pub image: Option<String>,
    /// (srtctl's framework name, version).
    pub frameworks: Vec<(String, String)>,
}

/// One outcome: the field, whether it holds, and what was found.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub field: String,
    pub ok: bool,
    pub message: String,
}

fn outcome(field: &str, ok: bool, message: String) -> Outcome {
    Outcome {
        field: field.into(),
        ok,
        message,
    }
}

/// Compares `declared` with each `(node, fingerprint)`; every node must agree.
pub fn check(declared: &Declared, fingerprints: &[(String, Value)]) -> Vec<Outcome> {
    let mut out = Vec::new();
    for (node, fp) in fingerprints {
        if let Some(repo) = &declared.model_repo {
            out.push(match fp["model"]["hf_repo"].as_str() {
                Some(found) if found == repo => {
                    outcome("model.repo", true, format!("{node}: {found}"))
                }
                Some(found) => outcome(
                    "model.repo",
                    false,
                    format!("declared `{repo}`, {node} has `{found}`"),
                ),
                // A plain download does not record its repository: declared, not verifiable.
                None => outcome(
                    "model.repo",
                    true,
                    format!("{node}: `{repo}` declared, not recorded by the model directory"),
                ),
            });
        }
        if let Some(rev) = &declared.model_revision {
            out.push(match fp["model"]["hf_revision"].as_str() {
                Some(found) if found.starts_with(rev.as_str()) => {
                    outcome("model.revision", true, format!("{node}: {found}"))
                }
                Some(found) => outcome(
                    "model.revision",
                    false,
                    format!("declared `{rev}`, {node} has `{found}`"),
                ),
                None => {
                    let dir = fp["model"]["path"].as_str().unwrap_or("no model directory");
                    outcome(
                        "model.revision",
                        false,
                        format!("declared `{rev}`, {node}: no Hugging Face revision in {dir}"),
                    )
                }
            });
        }
        if let Some(image) = &declared.image {
            let ran = fp["container"]["image"].as_str();
            // A pinned digest (`name@sha256:…`) and its name are the same image as far as names go.
            let base = |s: &str| s.split('@').next().unwrap_or(s).to_string();
            out.push(match ran {
                Some(r) if r == image || base(r) == base(image) => {
                    outcome("container.image", true, format!("{node}: {r}"))
                }
                Some(r) => outcome(
                    "container.image",
                    false,
                    format!("declared `{image}`, {node} ran `{r}`"),
                ),
                None => outcome(
                    "container.image",
                    true,
                    format!("{node}: `{image}` declared; the workers ran without a container"),
                ),
            });
        }
        for (name, version) in &declared.frameworks {
            let field = format!("frameworks.{name}");
            out.push(match fp["frameworks"][name.as_str()].as_str() {
                Some(v) if v == version => outcome(&field, true, format!("{node}: {v}")),
                Some(v) => outcome(
                    &field,
                    false,
                    format!("declared `{version}`, {node} runs `{v}`"),
                ),
                None => outcome(
                    &field,
                    false,
                    format!("declared `{version}`, {node} has no {name} installed"),
                ),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn each_differing_value_is_named() {
        let declared = Declared {
            model_repo: Some("org/m".into()),
            model_revision: Some("abc1234".into()),
            image: Some("vllm/vllm-openai:v1@sha256:00".into()),
            frameworks: vec![
                ("vllm".into(), "0.20.0".into()),
                ("dynamo".into(), "1.2.0".into()),
            ],
        };
        let fp = json!({"model": {"path": "/model", "hf_revision": "abc1234ffff", "hf_repo": "org/m"},
            "container": {"image": "vllm/vllm-openai:v1"}, "frameworks": {"vllm": "0.19.1"}});
        let got = check(&declared, &[("node1".into(), fp)]);
        let bad: Vec<&str> = got
            .iter()
            .filter(|o| !o.ok)
            .map(|o| o.field.as_str())
            .collect();
        assert_eq!(bad, ["frameworks.vllm", "frameworks.dynamo"]);
        assert!(got
            .iter()
            .any(|o| o.message == "declared `0.20.0`, node1 runs `0.19.1`"));
        let no_rev = check(&declared, &[("n".into(), json!({"model": {"path": "/m"}}))]);
        assert!(no_rev
            .iter()
            .any(|o| o.field == "model.revision" && !o.ok && o.message.contains("/m")));
    }
}
