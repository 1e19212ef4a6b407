#!/usr/bin/env bash
# What srtctl (NVIDIA srt-slurm c88ef731, from ../shared/vendor) expects of a cluster, provided on this
# machine for benches/peer/run.sh — by this script, never by hand, and without editing srtctl:
#   - its checkout and its venv (`.venv-compute`, what its sbatch script runs the orchestrator from), with
#     its Python dependencies from PyPI;
#   - `bin/uv`: srtctl's sbatch script runs `uv sync --python 3.12` then `uv run --python 3.12 -m
#     srtctl.cli.do_sweep`. uv would download a Python 3.12 build from GitHub, which cannot be had here
#     (Debian 12 has 3.11; srtctl needs >= 3.10), so `bin/uv` (first on the script's PATH) runs the
#     prepared venv instead. It is the only stand-in on srtctl's side;
#   - `configs/nats-server` and `configs/etcd` (where its setup_head.py looks): Debian's binaries;
#   - `bin/tachometer-scraper`, which srtctl requires to exist: a stub that fails if started (telemetry is
#     off in the peer recipe; the real one is a GitHub download);
#   - an image (`peer-<hash>.sqsh`) derived from the test cluster's Debian 12 image: nginx, the real
#     sglang-router, what sa-bench's client imports (aiohttp, numpy, pandas, datasets, pillow, tqdm,
#     transformers, jinja2), and a small `sglang` package whose `sglang.launch_server` execs `srt-graph mock-worker`
#     (mounted at /peer-bin by the recipe) with srtctl's command line. srt-graph's own venv for this image is filled
#     at build time (the nodes of the peer cluster have no route out);
#   - a weightless model directory (tokenizer, config) both tools point at;
#   - `srtslurm.yaml` naming the model and the image.
# Idempotent; prints the paths as shell assignments for run.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
VENDOR=${SRT_GRAPH_VENDOR:-$ROOT/../shared/vendor}
PEER=${PEER_DIR:-/var/cache/srt-graph/peer}
SRC=$PEER/srt-slurm
TARBALL=$VENDOR/srt-slurm-c88ef731-src.tar.gz
CACHE=${SRT_GRAPH_CACHE:-$HOME/.cache/srt-graph}
CONTAINERS=/var/cache/srt-graph/containers
PACKAGES="sglang-router==0.3.2 aiohttp numpy pandas datasets pillow tqdm transformers huggingface_hub jinja2"
log() { echo "peer setup: $*" >&2; }

[ -f "$TARBALL" ] || { echo "no $TARBALL: srtctl comes from ../shared/vendor" >&2; exit 1; }
mkdir -p "$PEER"

# srtctl's checkout, keyed by the tarball.
sum=$(sha256sum "$TARBALL" | cut -c1-16)
if [ "$(cat "$SRC/.srt-graph-tarball" 2>/dev/null)" != "$sum" ]; then
  log "unpacking srt-slurm"
  rm -rf "$SRC" && mkdir -p "$SRC"
  tar -xzf "$TARBALL" -C "$SRC" --strip-components=1
  echo "$sum" >"$SRC/.srt-graph-tarball"
fi
if [ ! -x "$SRC/.venv-compute/bin/srtctl" ]; then
  log "installing srtctl and its dependencies (PyPI) into $SRC/.venv-compute"
  python3 -m venv "$SRC/.venv-compute"
  "$SRC/.venv-compute/bin/pip" install -q -e "$SRC"
fi

mkdir -p "$SRC/bin"
cat >"$SRC/bin/uv" <<'EOF'
#!/usr/bin/env bash
# Stand-in for uv in srtctl's sbatch script: the venv is already synced; `run` runs it (see setup.sh).
here=$(cd "$(dirname "$0")/.." && pwd)
case "${1:-}" in
  --version) echo "uv (srt-graph peer stand-in: $here/.venv-compute)"; exit 0 ;;
  sync) exit 0 ;;
  run) shift
    while [ $# -gt 0 ]; do
      case "$1" in
        --python|--with) shift 2 ;;
        --no-dev|--no-sync|--no-project) shift ;;
        python|python3) shift; exec "$here/.venv-compute/bin/python" "$@" ;;
        *) exec "$here/.venv-compute/bin/python" "$@" ;;
      esac
    done ;;
esac
echo "uv stand-in: unsupported: $*" >&2
exit 2
EOF
chmod +x "$SRC/bin/uv"
# srtctl's submit refuses to run without bin/tachometer-scraper (`make setup` downloads it from GitHub
# releases; its Rust source is not in the snapshot). It only runs with `observability.tachometer` on, which
# the peer recipe leaves off: this one says so and fails if ever started.
cat >"$SRC/bin/tachometer-scraper" <<'EOF'
#!/bin/sh
echo "tachometer-scraper is not available on this machine (srt-graph benches/peer); turn observability.tachometer off" >&2
exit 1
EOF
chmod +x "$SRC/bin/tachometer-scraper"

for tool in nats-server etcd; do
  path=$(PATH="$PATH:/usr/sbin" command -v "$tool" || true)
  [ -n "$path" ] || { echo "no $tool here (apt-get install nats-server etcd-server)" >&2; exit 1; }
  cp -f "$path" "$SRC/configs/$tool"
done

cargo build --release --quiet --bin srt-graph --target x86_64-unknown-linux-musl
BIN=$ROOT/target/x86_64-unknown-linux-musl/release/srt-graph
MODEL=$PEER/model
[ -s "$MODEL/tokenizer.json" ] || "$BIN" mock-model "$MODEL" --name peer-model >/dev/null

# The image: the test cluster's Debian 12 image plus what both tools' processes import.
base=$(ls -t "$CONTAINERS"/images/debian12-python-*.sqsh 2>/dev/null | head -1)
[ -n "$base" ] || { echo "no base image: run tests/env/slurm.sh up once (it builds $CONTAINERS/images)" >&2; exit 1; }
recipe="$(basename "$base"); nginx python-is-python3 curl; pip $PACKAGES; sglang shim v1; srt-graph venv"
IMAGE=$PEER/peer-$(echo "$recipe" | sha256sum | cut -c1-12).sqsh
tag=$(basename "$IMAGE" .sqsh)
if [ ! -s "$IMAGE" ]; then
  log "building $IMAGE (a few minutes, once)"
  root=$PEER/rootfs
  rm -rf "$root" && unsquashfs -q -d "$root" "$base" >/dev/null
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  for d in proc dev sys; do mount --bind "/$d" "$root/$d"; done
  mkdir -p "$root$CACHE"
  mount --bind "$CACHE" "$root$CACHE"
  trap 'for d in proc dev sys; do umount -l "$root/$d" 2>/dev/null || true; done; umount -l "$root$CACHE" 2>/dev/null || true' EXIT
  chroot "$root" bash -c "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx python3-pip python-is-python3 procps curl >/dev/null"
  chroot "$root" env PIP_DISABLE_PIP_VERSION_CHECK=1 python3 -m pip install -q --break-system-packages $PACKAGES
  site=$(chroot "$root" python3 -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  mkdir -p "$root$site/sglang"
  echo '"""srt-graph peer bench: SGLang stand-in; the engine is srt-graph mock-worker."""' >"$root$site/sglang/__init__.py"
  cat >"$root$site/sglang/launch_server.py" <<'EOF'
"""`python3 -m sglang.launch_server ARGS`: exec srt-graph's GPU-less SGLang worker with the same ARGS."""
import os
import sys

os.execv("/peer-bin/srt-graph", ["srt-graph", "mock-worker", *sys.argv[1:]])
EOF
  # srt-graph's venv for this image (what its venv and pip-router steps find in place).
  chroot "$root" bash -c "python3 -m venv '$CACHE/venv-$tag' && '$CACHE/venv-$tag/bin/python' -m pip install -q sglang-router==0.3.2"
  for d in proc dev sys; do umount -l "$root/$d"; done
  umount -l "$root$CACHE"
  trap - EXIT
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/archives/*.deb
  mksquashfs "$root" "$IMAGE.tmp" -comp zstd -noappend -quiet >/dev/null && mv "$IMAGE.tmp" "$IMAGE"
  rm -rf "$root"
fi

cat >"$SRC/srtslurm.yaml" <<EOF
# Written by srt-graph benches/peer/setup.sh for the peer cluster on this machine.
default_account: "root"
default_partition: "debug"
default_time_limit: "00:30:00"
use_gpus_per_node_directive: false
use_segment_sbatch_directive: false
use_exclusive_sbatch_directive: false
containers:
  peer: "$IMAGE"
model_paths:
  peer-model: "$MODEL"
# The runs' directories live under $PEER, seen at the same path inside containers (as a shared file system
# is on a real cluster: srtctl hands host paths such as its log directory to what runs in the container).
default_mounts:
  "$PEER": "$PEER"
EOF

echo "SRC=$SRC"
echo "IMAGE=$IMAGE"
echo "MODEL=$MODEL"
echo "BIN=$BIN"
echo "WORK=$PEER/runs"
