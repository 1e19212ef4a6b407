#!/usr/bin/env bash
# Builds the pip wheel of srt-graph: the static x86_64-unknown-linux-musl binary (no C library needed
# at run time) in a `bin` wheel tagged for both manylinux and musllinux, with its man pages and shell
# completions. maturin comes from PyPI into a cached venv.
#   bash scripts/wheel.sh [OUT_DIR]        (default target/wheels; WHEEL_PROFILE=dev for a debug build)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-target/wheels}
profile=${WHEEL_PROFILE:-release}
dir=$([ "$profile" = dev ] && echo debug || echo "$profile")
target=x86_64-unknown-linux-musl
cache=${SRT_GRAPH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/srt-graph}
venv=$cache/venv-maturin
if ! rustup target list --installed 2>/dev/null | grep -qx "$target"; then
    rustup target add "$target" || { echo "wheel: the $target target is not installed and cannot be fetched" >&2; exit 1; }
fi
if [ ! -x "$venv/bin/maturin" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "maturin>=1.9,<2"
fi
cargo build --quiet --profile "$profile" --target "$target" --bin srt-graph
bin=target/$target/$dir/srt-graph
share=target/wheel-data/data/share
rm -rf target/wheel-data
mkdir -p "$share/man/man1" "$share/bash-completion/completions" "$share/zsh/site-functions" \
    "$share/fish/vendor_completions.d"
"$bin" man --out-dir "$share/man/man1" 2>/dev/null
"$bin" completions bash >"$share/bash-completion/completions/srt-graph"
"$bin" completions zsh >"$share/zsh/site-functions/_srt-graph"
"$bin" completions fish >"$share/fish/vendor_completions.d/srt-graph.fish"
# A static binary runs on glibc and musl systems alike: both tags (pip on Debian takes manylinux).
"$venv/bin/maturin" build --quiet --profile "$profile" --target "$target" \
    --compatibility manylinux2014 musllinux_1_2 --out "$out" >&2
ls -t "$out"/srt_graph-*.whl | head -1
