#!/usr/bin/env bash
# The main job on the embedded default recipe (recipes/local-demo.yaml): a disaggregated deployment on
# four logical nodes of this machine (127.0.1.1-4) — 2 prefill + 2 decode mock workers, 4 real
# sglang-routers (installed from PyPI into a cached venv by the run itself) behind real nginx — then the
# sa-bench sweep, its mock workers paced by aiconfigurator's silicon-calibrated model (DeepSeek-R1 FP8 on
# GB300) with the simulated clock 4× faster (DEMO_SIM_SPEED=N to change; results are in model time).
# From a fresh Debian 12 machine with only Rust, as root.
# Arguments go to `srt-graph run`; the Dynamo twin: `bash scripts/demo.sh recipes/local-dynamo.yaml`
# (real NATS, etcd and Dynamo frontends, Dynamo's mocker as workers; the recipe declares its simulation),
# likewise recipes/local-trtllm.yaml, local-vllm.yaml and local-mocker.yaml.
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
command -v flock >/dev/null 2>&1 || missing+=(util-linux)
command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] || missing+=(nats-server)
command -v etcd >/dev/null 2>&1 || missing+=(etcd-server)
if ((${#missing[@]})); then
    echo "== installing: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
export PATH="$PATH:/usr/sbin"
cargo build --release --quiet
exec ./target/release/srt-graph run --sim-speed "${DEMO_SIM_SPEED:-4}" "$@"
