#!/usr/bin/env bash
# srt-graph at 4, 16 and 64 Slurm nodes on this machine (issue 26): one slurmd per node
# (tests/env/slurm.sh with SLURM_NODES=N, no containers), benches/scale/scale.yaml (a mock worker per
# node, 10 routers, nginx), each size run with the node agents and with one srun per process
# (SRT_GRAPH_NODE_AGENT=0), side by side. Not part of CI (~15 min).
#
#   bash benches/scale/run.sh [SIZES…]        (default: 4 16 64)
#
# Needs root and what scripts/test.sh installs; the test cluster must be down (same ports). Prints a
# table and writes target/bench-scale.json.
set -euo pipefail
cd "$(dirname "$0")/../.."
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(4 16 64)
cargo build --release --quiet --bin srt-graph --target x86_64-unknown-linux-musl
bin=$PWD/target/x86_64-unknown-linux-musl/release/srt-graph
work=$(mktemp -d /tmp/srt-graph-scale.XXXXXX)
export SLURM_ENV=$work/slurm SRT_GRAPH_CONTAINERS=0 SRT_GRAPH_TIMING=fixed
trap 'bash tests/env/slurm.sh down >/dev/null 2>&1 || true' EXIT
for n in "${sizes[@]}"; do
  SLURM_NODES=$n bash tests/env/slurm.sh up >"$work/up-$n.log" 2>&1 || { cat "$work/up-$n.log"; exit 1; }
  SLURM_CONF=$SLURM_ENV/slurm.conf python3 benches/scale/run.py --bin "$bin" --nodes "$n" \
    --recipe benches/scale/scale.yaml --work "$work" --out target/bench-scale.json
  SLURM_NODES=$n bash tests/env/slurm.sh down >/dev/null 2>&1
  rm -rf "$SLURM_ENV"
done
python3 benches/scale/run.py --report target/bench-scale.json
