#!/usr/bin/env bash
# srtctl and srt-graph side by side (issue 17): the same recipe (benches/peer/peer.yaml), the same four
# Slurm nodes, the same mock workers, N rounds alternating the tools. Not part of CI (~15 min a round).
#
#   [PEER_NODES=16] bash benches/peer/run.sh [N] [--only happy,cancel,worker,orch]
#
# Needs root and what scripts/test.sh installs. Brings up its own 4-node cluster with each node in a network
# namespace (tests/env/slurm.sh with SLURM_NETNS=1, state in /tmp/srt-graph-peer-slurm; the test cluster must be
# down: they share Slurm's ports) and takes it down at the end. Samples: $WORK/peer-<date>.json (setup.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${1:-3}
shift || true
eval "$(bash benches/peer/setup.sh)"
work=$WORK
mkdir -p "$work"
recipe=$work/peer.yaml
# PEER_NODES=N (even; default 4): the recipe scaled to N nodes, half prefill and half decode, a router
# on every node, on a cluster of N.
nodes=${PEER_NODES:-4}
sed -e "s|@BIN_DIR@|$(dirname "$BIN")|" \
  -e "s/^\(  \(prefill\|decode\)_\(nodes\|workers\)\): 2$/\1: $((nodes / 2))/" \
  -e "s/^\(  num_additional_frontends\): 3$/\1: $((nodes - 1))/" \
  -e "s/^name: peer-2p2d$/name: peer-$((nodes / 2))p$((nodes / 2))d/" benches/peer/peer.yaml >"$recipe"
export SLURM_ENV=/tmp/srt-graph-peer-slurm SLURM_NETNS=1 SLURM_NODES=$nodes PEER_NODES=$nodes
trap 'bash tests/env/slurm.sh down >/dev/null 2>&1 || true' EXIT
bash tests/env/slurm.sh up
export SLURM_CONF=$SLURM_ENV/slurm.conf SRTSLURM_CONFIG=$SRC/srtslurm.yaml
python3 benches/peer/run.py -n "$n" --src "$SRC" --bin "$BIN" --recipe "$recipe" --work "$work" \
  --out "$work/peer-$(date -u +%Y%m%dT%H%M%SZ).json" "$@"
