//! Stamps the binary with the commit it was built from, for `srt-graph --version` and `job.json`:
//! `SRT_GRAPH_GIT_COMMIT` when set (a build from a source archive), else `git rev-parse` of this checkout.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=SRT_GRAPH_GIT_COMMIT");
    // HEAD changes on checkout; the branch's ref (named by HEAD) on commit: both are watched.
    for f in [".git/HEAD", ".git/refs/heads", ".git/packed-refs"] {
        if std::path::Path::new(f).exists() {
            println!("cargo:rerun-if-changed={f}");
        }
    }
    let commit = std::env::var("SRT_GRAPH_GIT_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(git_commit)
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=SRT_GRAPH_COMMIT={commit}");
}

fn git_commit() -> Option<String> {
    let out = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    out(&["rev-parse", "--short=12", "HEAD"]).filter(|h| !h.is_empty())
}
