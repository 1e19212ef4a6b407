#!/usr/bin/env bash
# The mock worker at 8,192 concurrent streams, side by side in one run: the fixed timing (what every
# mock did before the performance model) and paced by aiconfigurator's table through the shared batch
# scheduler (Qwen3-8B on H100, max 8,192 running, simulated clock ×50 so that the scheduler, not the
# model, is what is measured). Prints requests/s and the worker's CPU seconds for each, and their ratio.
#
#   bash benches/mock-engine.sh        # needs python3-venv; installs aiconfigurator-core once (cached)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --bin srt-graph
bin=$PWD/target/release/srt-graph
work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT
cache=${SRT_GRAPH_CACHE:-$HOME/.cache/srt-graph}
python=$cache/venv-aiconfigurator-0.12.0/bin/python
[ -x "$python" ] || "$bin" predict recipes/h100-qwen3-8b-sim.yaml >/dev/null
input='[{"role":"agg","model":"Qwen/Qwen3-8B","system":"h100_sxm","backend":"sglang","backend_version":"0.5.14","version_note":null,"precision":"bf16","gemm_quant_mode":"bfloat16","moe_quant_mode":"bfloat16","kvcache_quant_mode":null,"fmha_quant_mode":null,"tp":1,"pp":1,"attention_dp":1,"moe_tp":1,"moe_ep":1,"nextn":0,"nextn_accept_rates":[],"max_batch":8192,"chunked_prefill":8192,"max_context":1024,"mem_fraction":0.85,"workers":1,"gpus_per_worker":1,"kv_link_gbps":40.0}]'
"$bin" perf-table --python "$python" --cache "$cache/perf-tables" --out-dir "$work/perf" --inputs "$input" >/dev/null
# The KV cache of one H100 holds ~350k tokens; at 8,192 streams the bench measures the scheduler, so
# the capacity is lifted (the table's other figures stay).
python3 - "$work/perf/agg.json" <<'PY'
import json, sys
t = json.load(open(sys.argv[1])); t["kv_capacity_tokens"] = None; json.dump(t, open(sys.argv[1], "w"))
PY
cpu() { awk '{print ($14 + $15) / 100}' "/proc/$1/stat"; }
measure() {
    local name=$1 port=$2; shift 2
    "$bin" mock-worker --port "$port" --mock-load-time 0 --mock-max-concurrent 16384 "$@" >"$work/$name.log" 2>&1 &
    local pid=$!; pids+=("$pid")
    for _ in $(seq 100); do "$bin" wait-ready tcp "127.0.0.1:$port" >/dev/null 2>&1 && break; sleep 0.1; done
    local c0; c0=$(cpu "$pid")
    "$bin" bench --url "http://127.0.0.1:$port" --model m --isl 128 --osl 64 --random-range-ratio 1 \
        --concurrency 8192 --prompts-per-concurrency 1 --request-timeout 600s >"$work/$name.bench" 2>&1
    local c1; c1=$(cpu "$pid")
    local rps; rps=$(grep -o '[0-9.]* req/s' "$work/$name.bench" | head -1 | cut -d' ' -f1)
    echo "$name $rps $(echo "$c1 - $c0" | bc -l)"
}
fixed=$(measure fixed 39301 --mock-tokens-per-sec 500 --mock-ttft 0.02)
model=$(measure model 39302 --mock-perf-table "$work/perf/agg.json" --mock-sim-speed 50)
echo "| timing | requests/s at 8,192 streams | worker CPU s |"
echo "|---|---:|---:|"
for r in "$fixed" "$model"; do set -- $r; echo "| $1 | $2 | $(printf %.2f "$3") |"; done
set -- $fixed; f_cpu=$3; set -- $model; m_cpu=$3
echo "worker CPU, paced / fixed: $(echo "$m_cpu / $f_cpu" | bc -l | xargs printf %.2f)×"
