#!/usr/bin/env bash
# A node's network cut under a live srt-graph run, on the peer cluster with pyxis containers (issue 27;
# benches/peer/node-loss.py says what is measured and checked). Not part of CI (~3 min a time).
#
#   bash benches/peer/node-loss.sh [N]
#
# Needs root and what scripts/test.sh installs. Five nodes, each in a network namespace (tests/env/slurm.sh
# with SLURM_NETNS=1, state in /tmp/srt-graph-peer-slurm; the test cluster must be down: same ports): the
# peer recipe takes four, and the resume takes the four that are not the lost one.
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${1:-1}
eval "$(bash benches/peer/setup.sh)"
mkdir -p "$WORK"
recipe=$WORK/peer.yaml
sed "s|@BIN_DIR@|$(dirname "$BIN")|" benches/peer/peer.yaml >"$recipe"
export SLURM_ENV=/tmp/srt-graph-peer-slurm SLURM_NETNS=1 SLURM_NODES=5
trap 'bash tests/env/slurm.sh down >/dev/null 2>&1 || true' EXIT
bash tests/env/slurm.sh up
export SLURM_CONF=$SLURM_ENV/slurm.conf SRTSLURM_CONFIG=$SRC/srtslurm.yaml
python3 benches/peer/node-loss.py -n "$n" --src "$SRC" --bin "$BIN" --recipe "$recipe" --work "$WORK" \
  --out "$WORK/node-loss-$(date -u +%Y%m%dT%H%M%SZ).json"
