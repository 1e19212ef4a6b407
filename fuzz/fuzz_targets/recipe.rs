//! Recipe parsing + validation + compilation on arbitrary bytes: it must plan or refuse with a located
//! diagnostic, never panic. Seed corpus: `fuzz/corpus/recipe` (copies of the shared recipe corpus).
#![no_main]

use libfuzzer_sys::fuzz_target;
use srt_graph_steps::{compile, load_str, ClusterConfig, Target};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(variants) = load_str(&text, "fuzz.yaml", None, &ClusterConfig::default()) {
        for v in variants.iter().take(8) {
            let _ = compile(&v.recipe, &Target::default());
        }
    }
});
