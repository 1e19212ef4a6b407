//! Property test over parsing + validation + compilation: mutated real recipes (the shared corpus and
//! `recipes/` as seeds: bytes flipped, inserted, deleted, lines duplicated or dropped) never panic; they
//! plan or they are refused with located diagnostics. `PROPTEST_CASES` sets the number of cases.

use proptest::prelude::*;
use srt_graph_steps::{compile, load_str, ClusterConfig, RecipeError, Target};
use std::path::{Path, PathBuf};

fn seeds() -> &'static [String] {
    static SEEDS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    SEEDS.get_or_init(read_seeds)
}

fn read_seeds() -> Vec<String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "yaml") {
                out.push(p);
            }
        }
    }
    walk(&root.join("recipes"), &mut files);
    walk(&root.join("../shared/corpus"), &mut files);
    walk(&root.join("tests/bad"), &mut files);
    files.sort();
    files
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .collect()
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Insert(usize, u8),
    Delete(usize),
    DuplicateLine(usize),
    DropLine(usize),
}

fn apply(text: &str, muts: &[Mutation]) -> String {
    let mut bytes = text.as_bytes().to_vec();
    for m in muts {
        let n = bytes.len().max(1);
        match *m {
            Mutation::Flip(i, b) => {
                if let Some(x) = bytes.get_mut(i % n) {
                    *x ^= b;
                }
            }
            Mutation::Insert(i, b) => bytes.insert((i % n).min(bytes.len()), b),
            Mutation::Delete(i) => {
                if !bytes.is_empty() {
                    bytes.remove(i % n);
                }
            }
            Mutation::DuplicateLine(i) | Mutation::DropLine(i) => {
                let s = String::from_utf8_lossy(&bytes).into_owned();
                let mut lines: Vec<&str> = s.lines().collect();
                if !lines.is_empty() {
                    let k = i % lines.len();
                    if matches!(m, Mutation::DuplicateLine(_)) {
                        lines.insert(k, lines[k]);
                    } else {
                        lines.remove(k);
                    }
                }
                bytes = lines.join("\n").into_bytes();
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

fn mutation() -> impl Strategy<Value = Mutation> {
    // Bytes YAML cares about are likelier than random ones.
    let interesting = prop_oneof![
        Just(b':'),
        Just(b' '),
        Just(b'\t'),
        Just(b'-'),
        Just(b'['),
        Just(b'{'),
        Just(b'&'),
        Just(b'*'),
        Just(b'"'),
        Just(b'\n'),
        any::<u8>()
    ];
    prop_oneof![
        (any::<usize>(), 1u8..=255).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (any::<usize>(), interesting).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<usize>().prop_map(Mutation::Delete),
        any::<usize>().prop_map(Mutation::DuplicateLine),
        any::<usize>().prop_map(Mutation::DropLine),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(1000),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn mutated_recipes_never_panic(seed in any::<prop::sample::Index>(), muts in prop::collection::vec(mutation(), 1..6)) {
        let seeds = seeds();
        prop_assume!(!seeds.is_empty());
        let text = apply(&seeds[seed.index(seeds.len())], &muts);
        match load_str(&text, "fuzz.yaml", None, &ClusterConfig::default()) {
            Ok(variants) => {
                for v in variants {
                    match compile(&v.recipe, &Target::default()) {
                        Ok(plan) => prop_assert!(!plan.recipe.is_empty()),
                        Err(RecipeError::Invalid(d)) => prop_assert!(!d.is_empty()),
                        Err(e) => prop_assert!(false, "unexpected error kind: {e}"),
                    }
                }
            }
            Err(RecipeError::Invalid(d)) => {
                prop_assert!(!d.is_empty());
                for diag in d {
                    prop_assert!(diag.pos.line >= 1 && !diag.message.is_empty());
                }
            }
            Err(e) => prop_assert!(false, "unexpected error kind: {e}"),
        }
    }
}
