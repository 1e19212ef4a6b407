#!/usr/bin/env bash
# The main job on the embedded default recipe (recipes/local-demo.yaml): build, then print its plan in text
# and render its DOT graph to SVG. (The local run of this plan — mock workers, real sglang-router, real
# nginx, sa-bench — lands with the executor; see README "Status".)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v dot >/dev/null 2>&1 || {
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends graphviz >/dev/null
}
cargo build --release --quiet
./target/release/srt-graph plan --mock-workers
mkdir -p runs
./target/release/srt-graph plan --mock-workers --dot | dot -Tsvg -o runs/local-demo-plan.svg
echo "graph: runs/local-demo-plan.svg"
