//! Token counting for the load generator: the model's own `tokenizer.json` when there is one (the
//! `tokenizers` crate), else the documented approximation of one whitespace-separated word per token.

use std::path::Path;

/// Words of generated prompts without a tokenizer (common English words).
const WORDS: [&str; 32] = [
    "the", "of", "and", "to", "in", "is", "that", "for", "it", "as", "was", "with", "be", "by",
    "on", "not", "he", "this", "are", "or", "his", "from", "at", "which", "but", "have", "an",
    "had", "they", "you", "were", "their",
];

pub enum TokenCounter {
    /// One whitespace-separated word = one token.
    Words,
    Hf {
        tokenizer: Box<tokenizers::Tokenizer>,
        path: String,
        /// Ids of plain alphabetic vocabulary entries, the material of generated prompts.
        ids: Vec<u32>,
    },
}

impl TokenCounter {
    /// `path` is a model directory (containing `tokenizer.json`) or the file itself. A path without one
    /// falls back to words; a `tokenizer.json` that does not load is an error.
    pub fn from_model_path(path: Option<&str>) -> Result<TokenCounter, String> {
        let Some(path) = path else {
            return Ok(TokenCounter::Words);
        };
        let p = Path::new(path);
        let file = if p.is_dir() {
            p.join("tokenizer.json")
        } else {
            p.to_path_buf()
        };
        if !file.is_file() || file.file_name().is_none_or(|n| n != "tokenizer.json") {
            return Ok(TokenCounter::Words);
        }
        let tokenizer = tokenizers::Tokenizer::from_file(&file)
            .map_err(|e| format!("{}: {e}", file.display()))?;
        let mut vocab: Vec<(String, u32)> = tokenizer
            .get_vocab(false)
            .into_iter()
            .filter(|(t, _)| t.len() > 1 && t.bytes().all(|b| b.is_ascii_alphabetic()))
            .collect();
        vocab.sort();
        let ids: Vec<u32> = vocab.into_iter().map(|(_, id)| id).take(4096).collect();
        if ids.is_empty() {
            return Err(format!(
                "{}: no plain-word tokens in the vocabulary to build prompts from",
                file.display()
            ));
        }
        Ok(TokenCounter::Hf {
            tokenizer: Box::new(tokenizer),
            path: file.display().to_string(),
            ids,
        })
    }

    pub fn describe(&self) -> String {
        match self {
            TokenCounter::Words => {
                "token counts: 1 whitespace-separated word = 1 token (no tokenizer.json)".into()
            }
            TokenCounter::Hf { path, .. } => format!("token counts: {path}"),
        }
    }

    pub fn count(&self, text: &str) -> usize {
        match self {
            TokenCounter::Words => text.split_whitespace().count(),
            TokenCounter::Hf { tokenizer, .. } => tokenizer
                .encode(text, false)
                .map_or_else(|_| text.split_whitespace().count(), |e| e.get_ids().len()),
        }
    }

    /// A prompt of about `len` tokens that differs from its neighbours (`offset` varies per request), built
    /// as sa-bench does: token ids → text, re-encoded and cut to `len` tokens. Returns the text and its
    /// token count.
    pub fn prompt(&self, offset: usize, len: usize) -> (String, usize) {
        match self {
            TokenCounter::Words => {
                let text: Vec<&str> = (0..len)
                    .map(|j| WORDS[(offset + j) % WORDS.len()])
                    .collect();
                (text.join(" "), len)
            }
            TokenCounter::Hf { tokenizer, ids, .. } => {
                let chosen: Vec<u32> = (0..len).map(|j| ids[(offset + j) % ids.len()]).collect();
                let text = tokenizer.decode(&chosen, true).unwrap_or_default();
                let cut = match tokenizer.encode(text.as_str(), false) {
                    Ok(enc) if enc.get_ids().len() > len => tokenizer
                        .decode(&enc.get_ids()[..len], true)
                        .unwrap_or(text),
                    _ => text,
                };
                let n = self.count(&cut);
                (cut, n)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A WordLevel tokenizer.json, the smallest real one.
    pub fn write_tokenizer(dir: &Path, words: &[&str]) {
        let mut vocab = serde_json::Map::new();
        vocab.insert("[UNK]".into(), 0.into());
        for (i, w) in words.iter().enumerate() {
            vocab.insert((*w).into(), (i + 1).into());
        }
        let json = serde_json::json!({
            "version": "1.0", "truncation": null, "padding": null, "added_tokens": [], "normalizer": null,
            "pre_tokenizer": {"type": "Whitespace"}, "post_processor": null, "decoder": null,
            "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "[UNK]"},
        });
        std::fs::write(dir.join("tokenizer.json"), json.to_string()).unwrap();
    }

    #[test]
    fn counts_with_a_real_tokenizer_and_falls_back_to_words() {
        let d = tempfile::tempdir().unwrap();
        assert!(matches!(
            TokenCounter::from_model_path(Some(d.path().to_str().unwrap())).unwrap(),
            TokenCounter::Words
        ));
        write_tokenizer(d.path(), &["the", "of", "and"]);
        let t = TokenCounter::from_model_path(Some(d.path().to_str().unwrap())).unwrap();
        assert!(t.describe().contains("tokenizer.json"));
        // Punctuation is a token of its own under the Whitespace pre-tokenizer: 3 tokens, 2 words.
        assert_eq!(t.count("the, of"), 3);
        let (text, n) = t.prompt(0, 3);
        assert_eq!((text.as_str(), n), ("and of the", 3));
        std::fs::write(d.path().join("tokenizer.json"), "{not json").unwrap();
        assert!(TokenCounter::from_model_path(Some(d.path().to_str().unwrap())).is_err());
    }
}
