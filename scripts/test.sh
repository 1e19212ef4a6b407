#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine with only Rust installed (run as root):
# installs what the tests need (graphviz, nginx, python3-venv; the tests' runs install sglang-router from
# PyPI into a cached venv themselves), then format check, clippy, and every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."

export PATH="$PATH:/usr/sbin"
missing=()
command -v dot >/dev/null 2>&1 || missing+=(graphviz)
command -v nginx >/dev/null 2>&1 || missing+=(nginx)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
command -v flock >/dev/null 2>&1 || missing+=(util-linux)
if ((${#missing[@]})); then
    echo "== installing: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
echo "== cargo test"
cargo test --workspace
