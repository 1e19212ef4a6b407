//! Which loopback /24s (`127.0.B.0/24`) each test binary's runs may put their nodes on.
//!
//! `scripts/test.sh` runs test binaries side by side, and every run's mock workers, routers and
//! frontends listen on the same ports of whatever node addresses it was given: two binaries in one /24
//! race for a port (a resumed run in `faults` once found its workers' port held by a `resume_cli` run).
//! One table, checked disjoint when the tests compile; `plan_cli` checks every address written in
//! `tests/` against it.

use std::ops::Range;

/// `(test binary, third octets it owns)`.
pub const BLOCKS: &[(&str, Range<u8>)] = &[
    // The ssh hosts and Slurm nodes of tests/env (127.0.1.K, slurmctld on 127.0.0.1) and
    // `--first-address`'s default: only the binaries that drive those environments name them.
    ("remote_cli", 0..2),
    ("local_pipeline", 20..30),
    ("dynamo_cli", 30..50),
    ("secrets_cli", 50..51),
    ("faults", 51..60),
    ("perf_model_cli", 60..70),
    ("results_cli", 70..80),
    ("resume_cli", 80..90),
    ("srtctl_cli", 90..95),
    ("observe_cli", 95..102),
    ("kill_points", 102..250),
];

const fn disjoint(blocks: &[(&str, Range<u8>)]) -> bool {
    let mut i = 0;
    while i < blocks.len() {
        let mut j = i + 1;
        while j < blocks.len() {
            let (a, b) = (&blocks[i].1, &blocks[j].1);
            if a.start < b.end && b.start < a.end {
                return false;
            }
            j += 1;
        }
        i += 1;
    }
    true
}
const _: () = assert!(disjoint(BLOCKS), "two test binaries share a loopback block");

/// The octets `binary` owns (empty if it owns none).
pub fn block(binary: &str) -> Range<u8> {
    BLOCKS
        .iter()
        .find(|(b, _)| *b == binary)
        .map_or(0..0, |(_, r)| r.clone())
}

/// How many /24s this binary owns.
pub fn count() -> usize {
    block(env!("CARGO_CRATE_NAME")).len()
}

/// Node 0's address for this binary's `i`-th block (node k is `.1 + k`).
pub fn first(i: usize) -> String {
    let own = block(env!("CARGO_CRATE_NAME"));
    let octet = own.start as usize + i;
    assert!(
        octet < own.end as usize,
        "{} has no loopback block {i} (owns {own:?}; see tests/common/loopback.rs)",
        env!("CARGO_CRATE_NAME")
    );
    format!("127.0.{octet}.1")
}
