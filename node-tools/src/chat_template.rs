//! sa-bench's `--use-chat-template`: each random prompt is wrapped as one user message and rendered the
//! way the server will render it, so the tokens counted here are the tokens the model reads. The template
//! is the model's own (`chat_template` in `tokenizer_config.json`, Jinja, rendered by minijinja with
//! Python's string methods), or a `custom_tokenizer` adapter of srt-slurm's sa-bench re-implemented here.

use std::path::Path;

/// srt-slurm's sa-bench adapters that srt-graph renders itself: both encode DeepSeek-V4's chat format.
pub const CUSTOM_TOKENIZERS: &[&str] = &[
    "sa_bench_tokenizers.sglang_deepseek_v4.SGLangDeepseekV4Tokenizer",
    "sa_bench_tokenizers.vllm_deepseek_v4.VLLMDeepseekV4Tokenizer",
];

pub enum ChatTemplate {
    Jinja {
        /// The template compiled once, as `chat` (every prompt of a run renders through it).
        env: Box<minijinja::Environment<'static>>,
        bos_token: String,
        eos_token: String,
        /// Where the template came from, for the log.
        origin: String,
    },
    /// DeepSeek-V4's encoding (no Jinja template ships with the model): BOS, an empty system turn, the
    /// user turn, then the assistant tag and the end (chat) or start (thinking) of reasoning.
    DeepseekV4 { thinking: bool },
}

impl ChatTemplate {
    /// The template for the model at `model_path` (a directory or its `tokenizer.json`). `Ok(None)`: the
    /// model has none, or there is no model directory here to read it from.
    pub fn load(
        model_path: Option<&str>,
        custom_tokenizer: Option<&str>,
    ) -> Result<Option<ChatTemplate>, String> {
        if let Some(name) = custom_tokenizer {
            if !CUSTOM_TOKENIZERS.contains(&name) {
                return Err(format!(
                    "custom tokenizer `{name}` is not one srt-graph renders; valid: {}",
                    CUSTOM_TOKENIZERS.join(", ")
                ));
            }
            // The adapters read SGLang's switch (and its older name) for the thinking mode.
            let on = |v: &str| {
                std::env::var(v).is_ok_and(|x| {
                    matches!(
                        x.trim().to_ascii_lowercase().as_str(),
                        "1" | "true" | "yes" | "on"
                    )
                })
            };
            let thinking = if std::env::var_os("SGLANG_DEFAULT_THINKING").is_some() {
                on("SGLANG_DEFAULT_THINKING")
            } else {
                on("SGLANG_ENABLE_THINKING")
            };
            return Ok(Some(ChatTemplate::DeepseekV4 { thinking }));
        }
        let Some(path) = model_path else {
            return Ok(None);
        };
        let p = Path::new(path);
        let dir = if p.is_dir() {
            p
        } else {
            p.parent().unwrap_or(p)
        };
        let file = dir.join("tokenizer_config.json");
        let Ok(text) = std::fs::read_to_string(&file) else {
            return Ok(None);
        };
        let config: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| format!("{}: not JSON: {e}", file.display()))?;
        let source = match &config["chat_template"] {
            serde_json::Value::String(s) => Some(s.clone()),
            // A list of named templates: the `default` one.
            serde_json::Value::Array(named) => named
                .iter()
                .find(|t| t["name"] == "default")
                .and_then(|t| t["template"].as_str())
                .map(str::to_string),
            _ => None,
        };
        // A standalone `chat_template.jinja` (newer Hugging Face layouts) when the config has none.
        let source =
            source.or_else(|| std::fs::read_to_string(dir.join("chat_template.jinja")).ok());
        let Some(source) = source else {
            return Ok(None);
        };
        // Special tokens are strings or `{"content": …}` objects.
        let token = |key: &str| match &config[key] {
            serde_json::Value::String(s) => s.clone(),
            v => v["content"].as_str().unwrap_or_default().to_string(),
        };
        let origin = file.display().to_string();
        let mut env = minijinja::Environment::new();
        minijinja_contrib::add_to_environment(&mut env);
        // Hugging Face templates call Python string methods (`.strip()`, `.startswith()`).
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function(
            "raise_exception",
            |msg: String| -> Result<String, minijinja::Error> {
                Err(minijinja::Error::new(
                    minijinja::ErrorKind::InvalidOperation,
                    msg,
                ))
            },
        );
        env.add_template_owned("chat", source)
            .map_err(|e| format!("{origin}: chat_template: {e}"))?;
        let t = ChatTemplate::Jinja {
            env: Box::new(env),
            bos_token: token("bos_token"),
            eos_token: token("eos_token"),
            origin,
        };
        // A template that does not render fails here, before any request.
        t.render("a")?;
        Ok(Some(t))
    }

    pub fn describe(&self) -> String {
        match self {
            ChatTemplate::Jinja { origin, .. } => format!("chat template: {origin}"),
            ChatTemplate::DeepseekV4 { thinking } => format!(
                "chat template: DeepSeek-V4 encoding ({} mode), as sa-bench's custom tokenizer",
                if *thinking { "thinking" } else { "chat" }
            ),
        }
    }

    /// `content` as the one user message of a conversation awaiting the assistant's reply.
    pub fn render(&self, content: &str) -> Result<String, String> {
        match self {
            ChatTemplate::DeepseekV4 { thinking } => Ok(format!(
                "<｜begin▁of▁sentence｜><｜User｜>{content}<｜Assistant｜>{}",
                if *thinking { "<think>" } else { "</think>" }
            )),
            ChatTemplate::Jinja {
                env,
                bos_token,
                eos_token,
                origin,
            } => {
                let ctx = minijinja::context! {
                    messages => vec![minijinja::context! { role => "user", content => content }],
                    add_generation_prompt => true,
                    bos_token => bos_token,
                    eos_token => eos_token,
                };
                env.get_template("chat")
                    .and_then(|t| t.render(ctx))
                    .map_err(|e| format!("{origin}: chat_template: {e}"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_models_jinja_template_wraps_the_prompt() {
        let d = tempfile::tempdir().unwrap();
        let template = "{{ bos_token }}{% for m in messages %}<|{{ m.role }}|>{{ m.content.strip() }}\n{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}";
        std::fs::write(
            d.path().join("tokenizer_config.json"),
            serde_json::json!({"chat_template": template, "bos_token": {"content": "<s>"}, "eos_token": "</s>"}).to_string(),
        )
        .unwrap();
        let t = ChatTemplate::load(d.path().to_str(), None)
            .unwrap()
            .unwrap();
        assert_eq!(t.render(" hi ").unwrap(), "<s><|user|>hi\n<|assistant|>");
    }

    #[test]
    fn no_template_is_none_and_an_unknown_adapter_names_the_valid_ones() {
        let d = tempfile::tempdir().unwrap();
        assert!(ChatTemplate::load(d.path().to_str(), None)
            .unwrap()
            .is_none());
        assert!(ChatTemplate::load(None, None).unwrap().is_none());
        let err = ChatTemplate::load(None, Some("my.Tokenizer"))
            .err()
            .unwrap();
        assert!(err.contains("SGLangDeepseekV4Tokenizer"), "{err}");
        let dsv4 = ChatTemplate::load(None, Some(CUSTOM_TOKENIZERS[0]))
            .unwrap()
            .unwrap();
        assert!(dsv4
            .render("x")
            .unwrap()
            .starts_with("<｜begin▁of▁sentence｜><｜User｜>x<｜Assistant｜>"));
    }

    #[test]
    fn a_template_that_raises_fails_at_load() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("tokenizer_config.json"),
            r#"{"chat_template": "{{ raise_exception('only system roles') }}"}"#,
        )
        .unwrap();
        let err = ChatTemplate::load(d.path().to_str(), None).err().unwrap();
        assert!(err.contains("only system roles"), "{err}");
    }
}
