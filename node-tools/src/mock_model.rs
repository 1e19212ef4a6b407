//! A weightless model directory for Dynamo's GPU-less `dynamo.mocker` (and for the load generator's token
//! counts): a word-level `tokenizer.json`, a small `config.json`, a `tokenizer_config.json` with the chat
//! template the Dynamo frontend insists on, and `generation_config.json`. Written when a recipe's model
//! path does not exist on this machine.

use serde_json::json;
use std::path::Path;

/// Frequent English words first (the load generator builds prompts from alphabetic vocabulary), then
/// synthetic ones up to `VOCAB`.
const COMMON: [&str; 32] = [
    "the", "of", "and", "to", "in", "is", "that", "for", "it", "as", "was", "with", "be", "by",
    "on", "not", "he", "this", "are", "or", "his", "from", "at", "which", "but", "have", "an",
    "had", "they", "you", "were", "their",
];
// The mocker draws output token ids from a range above 1,000: the vocabulary must cover it.
const VOCAB: usize = 32_000;
const UNK: &str = "[UNK]";
const EOS: &str = "[EOS]";

/// Synthetic word `k`: letters only, distinct for every `k` (bijective base 26: a…z, aa, ab…).
fn word(mut k: usize) -> String {
    let mut out = Vec::new();
    loop {
        out.push(b'a' + (k % 26) as u8);
        if k < 26 {
            break;
        }
        k = k / 26 - 1;
    }
    out.reverse();
    // Prefixed so no synthetic word collides with a common one.
    format!("q{}", String::from_utf8_lossy(&out))
}

fn vocabulary() -> serde_json::Map<String, serde_json::Value> {
    let mut vocab = serde_json::Map::new();
    vocab.insert(UNK.into(), json!(0));
    vocab.insert(EOS.into(), json!(1));
    for w in COMMON {
        let id = vocab.len();
        vocab.insert(w.into(), json!(id));
    }
    let mut k = 0;
    while vocab.len() < VOCAB {
        let id = vocab.len();
        vocab.insert(word(k), json!(id));
        k += 1;
    }
    vocab
}

/// Writes the four files into `dir` (created if needed), each atomically.
pub fn write(dir: &Path, name: &str) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let tokenizer = json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": [
            {"id": 0, "content": UNK, "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
            {"id": 1, "content": EOS, "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}
        ],
        "normalizer": null,
        "pre_tokenizer": {"type": "Whitespace"},
        "post_processor": null,
        "decoder": null,
        "model": {"type": "WordLevel", "vocab": vocabulary(), "unk_token": UNK}
    });
    let config = json!({
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "_name_or_path": name,
        "vocab_size": VOCAB,
        "hidden_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "max_position_embeddings": 131072,
        "torch_dtype": "bfloat16",
        "bos_token_id": 1,
        "eos_token_id": 1
    });
    let tokenizer_config = json!({
        "tokenizer_class": "PreTrainedTokenizerFast",
        "unk_token": UNK,
        "eos_token": EOS,
        "bos_token": EOS,
        "model_max_length": 131072,
        "chat_template": "{% for m in messages %}{{ m['content'] }} {% endfor %}"
    });
    let generation = json!({"bos_token_id": 1, "eos_token_id": 1});
    for (file, value) in [
        ("tokenizer.json", tokenizer),
        ("config.json", config),
        ("tokenizer_config.json", tokenizer_config),
        ("generation_config.json", generation),
    ] {
        let tmp = dir.join(format!(".{file}.tmp"));
        std::fs::write(&tmp, serde_json::to_vec_pretty(&value)?)?;
        std::fs::rename(&tmp, dir.join(file))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tokenizer_loads_and_counts_words() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "m").unwrap();
        let t = tokenizers::Tokenizer::from_file(dir.path().join("tokenizer.json")).unwrap();
        assert_eq!(t.get_vocab_size(true), VOCAB);
        let enc = t.encode("the of qa qzz unknownword", false).unwrap();
        assert_eq!(enc.get_ids().len(), 5);
        assert_eq!(enc.get_ids()[4], 0, "unknown words are [UNK]");
        // Every synthetic word is distinct.
        assert_eq!(vocabulary().len(), VOCAB);
        assert_eq!(word(0), "qa");
        assert_eq!(word(26), "qaa");
    }
}
