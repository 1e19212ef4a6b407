//! Which environment variables of a recipe are secret: those whose names say so, and those a recipe or
//! the cluster config lists under `secret_env`. The engine keeps their values out of what a run shows
//! and stores (`srt_graph_engine::secret`); this module only decides which they are.

use srt_graph_engine::Plan;
use std::borrow::Cow;

/// Whether a variable named `name` holds a secret, by its name or because `listed` names it. Names that
/// say so: containing `SECRET`, `PASSWORD` or `API_KEY`, ending in `_KEY`, or with `TOKEN` as a word
/// (`HF_TOKEN`, `GITHUB_TOKEN`) — not `MAX_TOKENS` or `TOKENIZER_PATH`, which engines are full of.
pub fn is_secret_name(name: &str, listed: &[String]) -> bool {
    let upper = name.to_ascii_uppercase();
    ["SECRET", "PASSWORD", "API_KEY"]
        .iter()
        .any(|m| upper.contains(m))
        || upper.ends_with("_KEY")
        || upper.split('_').any(|word| word == "TOKEN")
        || listed.iter().any(|l| l == name)
}

/// Marks every secret variable the plan's steps carry (see `Plan::mark_secret`) and notes where a
/// secret value also sits in a command line, which every user of a node can read.
pub fn mark(plan: &mut Plan, listed: &[String]) {
    let names: Vec<String> = plan
        .steps
        .iter()
        .flat_map(|s| s.env.keys())
        .filter(|k| is_secret_name(k, listed))
        .cloned()
        .collect();
    if names.is_empty() {
        return;
    }
    plan.mark_secret(names);
    let redact = plan.redactor();
    let mut exposed: Vec<&str> = plan
        .steps
        .iter()
        .filter(|s| s.command.iter().flatten().any(|a| redact.finds_in(a)))
        .map(|s| s.id.as_str())
        .collect();
    exposed.truncate(5);
    let note = (!exposed.is_empty()).then(|| {
        format!(
            "a secret value is in the command line of {}: command lines are visible to every user of a node (`ps`); pass it through the environment instead",
            exposed.join(", ")
        )
    });
    plan.notes.extend(note);
    plan.notes.push(format!(
        "secret: {} (shown and stored as <redacted>; kept out of command lines and logs)",
        plan.secret_env.join(", ")
    ));
}

/// A recipe source line quoted in an error, with the value of a secret-named key hidden.
pub fn redact_source_line(line: &str) -> Cow<'_, str> {
    let Some((key, value)) = line.split_once(':') else {
        return Cow::Borrowed(line);
    };
    let name = key
        .trim()
        .trim_start_matches("- ")
        .trim_matches(['"', '\'']);
    if value.trim().is_empty() || name.is_empty() || !is_secret_name(name, &[]) {
        return Cow::Borrowed(line);
    }
    Cow::Owned(format!("{key}: {}", srt_graph_engine::secret::REDACTED))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_say_secret() {
        for n in [
            "HF_TOKEN",
            "hf_token",
            "AWS_SECRET_ACCESS_KEY",
            "DB_PASSWORD",
            "OPENAI_API_KEY",
            "S3_KEY",
            "HUGGING_FACE_HUB_TOKEN",
        ] {
            assert!(is_secret_name(n, &[]), "{n}");
        }
        for n in [
            "CUDA_VISIBLE_DEVICES",
            "KEYBOARD",
            "SGLANG_ENABLE_X",
            "MONKEY",
            "VLLM_MAX_TOKENS_PER_EXPERT_FP4_MOE",
            "TOKENIZER_PATH",
        ] {
            assert!(!is_secret_name(n, &[]), "{n}");
        }
        assert!(is_secret_name("WANDB_ENTITY", &["WANDB_ENTITY".into()]));
    }

    #[test]
    fn source_lines_hide_secret_values() {
        assert_eq!(
            redact_source_line("    HF_TOKEN: hf_abc"),
            "    HF_TOKEN: <redacted>"
        );
        assert_eq!(
            redact_source_line("  \"API_KEY\": 'x'"),
            "  \"API_KEY\": <redacted>"
        );
        assert_eq!(redact_source_line("  model: x"), "  model: x");
        assert_eq!(redact_source_line("  HF_TOKEN:"), "  HF_TOKEN:");
    }
}
