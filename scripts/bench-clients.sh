#!/usr/bin/env bash
# `srt-graph bench` side by side with aiperf (NVIDIA's Python load generator, from PyPI), in one run, on
# the same mock SGLang worker: directly, and through real nginx + real sglang-routers. Concurrency 1, 64,
# 1,024 and 8,192. Figures: requests per second and client CPU per request (user+sys of the client's whole
# process tree, from GNU time). Writes target/bench-clients.txt.
#
# aiperf, not guidellm or inference-perf: it installs from PyPI alone and runs offline given a local
# tokenizer directory (made here with the `tokenizers` library it already depends on); its "builtin"
# tokenizer downloads tiktoken data and fails without network.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/sbin"
command -v /usr/bin/time >/dev/null 2>&1 || { apt-get update -qq; apt-get install -y -qq time >/dev/null; }
cargo build --release --quiet
BIN=$PWD/target/release/srt-graph
CACHE=${SRT_GRAPH_CACHE:-$HOME/.cache/srt-graph}
VENV=$CACHE/aiperf-venv
[ -x "$VENV/bin/aiperf" ] || { python3 -m venv "$VENV"; "$VENV/bin/pip" install -q --disable-pip-version-check aiperf; }
TOK=$CACHE/mock-tokenizer
"$VENV/bin/python" - "$TOK" <<'PY'
import json, os, sys
from tokenizers import Tokenizer, models, pre_tokenizers
d = sys.argv[1]
os.makedirs(d, exist_ok=True)
vocab = {"[UNK]": 0}
for w in "the of and to in is that for it as was with be by on not he this are or his from at which but have an had they you were their alpha beta gamma delta epsilon zeta eta theta".split():
    vocab.setdefault(w, len(vocab))
for i in range(2000):
    vocab.setdefault(f"w{i}", len(vocab))
t = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
t.pre_tokenizer = pre_tokenizers.Whitespace()
t.save(f"{d}/tokenizer.json")
json.dump({"tokenizer_class": "PreTrainedTokenizerFast", "unk_token": "[UNK]", "model_max_length": 10**6}, open(f"{d}/tokenizer_config.json", "w"))
json.dump({"model_type": "llama", "vocab_size": len(vocab)}, open(f"{d}/config.json", "w"))
PY
WORK=$(mktemp -d)
OUT=target/bench-clients.txt
ISL=128 OSL=16
cleanup() {
    [ -n "${MOCK_PID:-}" ] && kill -- "-$MOCK_PID" 2>/dev/null || true
    [ -d "$WORK/serve" ] && "$BIN" down "$WORK/serve" --grace 2s >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# A fast mock: the server must not be the bottleneck when comparing clients.
export SRT_MOCK_TTFT=0 SRT_MOCK_TPS=1000000 SRT_MOCK_LOAD_TIME=0
setsid "$BIN" mock-worker --host 127.0.40.1 --port 30000 --served-model-name m >"$WORK/mock.log" 2>&1 &
MOCK_PID=$!
"$BIN" run benches/serve.yaml --mock-workers --keep-up --first-address 127.0.41.1 --run-dir "$WORK/serve" -q >"$WORK/serve.log" 2>&1
"$BIN" wait-ready http http://127.0.40.1:30000/health >/dev/null

measure() { # label url concurrency
    local label=$1 url=$2 c=$3 n=$(( $3 * 2 > 400 ? $3 * 2 : 400 ))
    local t0 t1 ours theirs ocpu tcpu
    /usr/bin/time -f "%U %S" -o "$WORK/ours.time" "$BIN" bench --url "$url" --model m --isl $ISL --osl $OSL \
        --concurrency "$c" --prompts-per-concurrency $(( n / c )) --result-dir "$WORK/ours" \
        --result-filename "c$c.json" >/dev/null 2>&1
    ours=$(python3 -c "import json;d=json.load(open('$WORK/ours/c$c.json'));print(round(d['request_throughput'],1), d['completed'], round(d['mean_ttft_ms'],2))")
    ocpu=$(awk -v n="$n" '{printf "%.3f", ($1+$2)*1000/n}' "$WORK/ours.time")
    rm -rf "$WORK/aiperf"
    /usr/bin/time -f "%U %S" -o "$WORK/theirs.time" timeout 600 "$VENV/bin/aiperf" profile --model m --url "$url" \
        --endpoint-type completions --streaming --concurrency "$c" --request-count "$n" --isl $ISL --osl $OSL \
        --tokenizer "$TOK" --ui-type none --artifact-dir "$WORK/aiperf" >"$WORK/aiperf.log" 2>&1 || true
    theirs=$(python3 -c "import json;d=json.load(open('$WORK/aiperf/profile_export_aiperf.json'));print(round(d['request_throughput']['avg'],1), int(d['request_count']['avg']))" 2>/dev/null || echo "failed 0")
    tcpu=$(awk -v n="$n" '{printf "%.3f", ($1+$2)*1000/n}' "$WORK/theirs.time")
    read -r ours_rps ours_done ours_ttft <<<"$ours"
    read -r their_rps their_done <<<"$theirs"
    ratio=$(python3 -c "print(round($ours_rps/$their_rps,1) if '$their_rps' not in ('failed','0') and float('$their_rps')>0 else 'n/a')" 2>/dev/null || echo n/a)
    printf "%-16s %7d %7d %12s %12s %7s %14s %14s %10s\n" "$label" "$c" "$n" "$ours_rps" "$their_rps" "$ratio" "$ocpu" "$tcpu" "$ours_ttft" | tee -a "$OUT"
}

{
    echo "# $(date -u +%FT%TZ), $(nproc) cores; isl $ISL, osl $OSL, streaming /v1/completions; aiperf $("$VENV/bin/pip" show aiperf 2>/dev/null | awk '/^Version/{print $2}')"
    printf "%-16s %7s %7s %12s %12s %7s %14s %14s %10s\n" target conc requests "ours req/s" "aiperf req/s" ratio "ours CPU ms/r" "aiperf ms/r" "our TTFT ms"
} | tee "$OUT"
for c in 1 64 1024 8192; do
    measure mock-direct http://127.0.40.1:30000 "$c"
    measure nginx+routers http://127.0.41.1:8000 "$c"
done
echo "written: $OUT"
