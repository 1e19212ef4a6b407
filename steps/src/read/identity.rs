//! `identity:`: what the recipe says it runs — `model: {repo, revision}`, `container: {image}`,
//! `frameworks: {vllm|sglang|tensorrt_llm|dynamo: VERSION}` — checked against the workers'
//! fingerprints after the health gate (`kinds::check_identity`).

use crate::diag::{Keys, Reader};
use crate::recipe::Identity;
use crate::yaml::Node;

const TOP: Keys = Keys {
    known: &["model", "container", "frameworks"],
    ignored: &[],
};
const MODEL: Keys = Keys {
    known: &["repo", "revision"],
    ignored: &[],
};
const CONTAINER: Keys = Keys {
    known: &["image"],
    ignored: &[],
};
/// srtctl's framework names (its fingerprint's `FRAMEWORK_PACKAGES`).
pub const FRAMEWORKS: [&str; 4] = ["vllm", "sglang", "tensorrt_llm", "dynamo"];

pub fn read(doc: &Node, r: &mut Reader) -> Option<Identity> {
    let section = doc.get("identity")?;
    if !r.check_keys(section, "identity", &TOP) {
        return None;
    }
    let mut id = Identity::default();
    if let Some(model) = section.get("model") {
        if r.check_keys(model, "identity.model", &MODEL) {
            id.model_repo = r.string(model.get("repo"), "identity.model.repo");
            id.model_revision = r.string(model.get("revision"), "identity.model.revision");
            if let (Some(rev), Some(node)) = (&id.model_revision, model.get("revision")) {
                if rev.len() < 7 || !rev.bytes().all(|b| b.is_ascii_hexdigit()) {
                    r.error(
                        node.pos,
                        "identity.model.revision",
                        format!("`{rev}` is not a commit hash"),
                        Some(
                            "give the model's Hugging Face commit: at least 7 hexadecimal digits"
                                .into(),
                        ),
                    );
                }
            }
        }
    }
    if let Some(c) = section.get("container") {
        if r.check_keys(c, "identity.container", &CONTAINER) {
            id.image = r.string(c.get("image"), "identity.container.image");
        }
    }
    for (name, version) in r.string_map(section.get("frameworks"), "identity.frameworks") {
        if !FRAMEWORKS.contains(&name.as_str()) {
            let pos = section
                .get("frameworks")
                .and_then(|f| f.get(&name))
                .map_or(section.pos, |n| n.pos);
            r.error(
                pos,
                &format!("identity.frameworks.{name}"),
                format!("`{name}` is not a framework srt-graph can verify"),
                Some(format!("one of: {}", FRAMEWORKS.join(", "))),
            );
            continue;
        }
        id.frameworks.push((name, version));
    }
    Some(id)
}
