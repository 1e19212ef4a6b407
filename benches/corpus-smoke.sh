#!/usr/bin/env bash
# Every recipe of the shared corpus (seed-era, current, backends), run as a new user would on a machine
# without GPUs: `srt-graph run RECIPE --mock-workers --smoke` (a file of several variants: its first). Reports how many plan, deploy, become
# healthy and serve, and groups the reasons for the rest. Not part of CI (441 recipes: about 2 h with SWEEP_JOBS=2 on 2 cores).
#
#   bash benches/corpus-smoke.sh [N]        # N: every N-th recipe (default 1: all)
#   SWEEP_FILES=list bash benches/corpus-smoke.sh   # only the recipes listed (one path per line)
#   SWEEP_JOBS=2 bash benches/corpus-smoke.sh       # two recipes at a time
#   SWEEP_OUT=table.tsv …                           # keep the table (recipe, outcome, reason, seconds)
#                                                   # and the failed runs (table.tsv.d/)
#
# Needs what `scripts/test.sh` installs (nginx, nats-server, etcd, python3-venv); runs SWEEP_JOBS recipes
# (default 1) at a time on 127.0.60.x–127.0.99.x, each in its own temporary run directory, and leaves nothing running.
set -uo pipefail
cd "$(dirname "$0")/.."
every=${1:-1}
corpus=../shared/corpus
[ -d "$corpus" ] || { echo "no corpus at $corpus"; exit 1; }
cargo build --release --quiet --bin srt-graph || exit 1
bin=$PWD/target/release/srt-graph
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# SWEEP_OUT keeps the per-recipe table (written as the sweep goes, so a cut-short sweep still counts).
results=${SWEEP_OUT:-$work/results.tsv}
: > "$results"
parallel=${SWEEP_JOBS:-1}
(( parallel >= 1 && parallel <= 8 )) || { echo "SWEEP_JOBS must be 1..8"; exit 1; }
# One recipe: run it, classify the outcome, append one line to the table (one short append per recipe,
# so parallel recipes do not interleave).
sweep_one() {
    local k=$1 f=$2 octet=$3 era run first log target first_variant status outcome reason step detail started
    started=$SECONDS
    era=$(echo "$f" | sed -E "s|$corpus/([^/]+)/.*|\1|")
    run=$work/run-$k
    first="127.0.$octet.1"
    log=$work/out-$k.txt
    # A file of several variants (a sweep, overrides) runs its first one: one point of the file's shape.
    target=$f
    first_variant=$("$bin" plan "$f" --cluster-config "$corpus/$era/srtslurm.yaml.example" --json 2>/dev/null \
        | python3 -c 'import json,sys; v=json.load(sys.stdin); print(v[0]["variant"] if isinstance(v, list) else "")' 2>/dev/null)
    [ -n "$first_variant" ] && target="$f:$first_variant"
    timeout 600 "$bin" run "$target" --cluster-config "$corpus/$era/srtslurm.yaml.example" \
        --mock-workers --smoke -q --grace 3s --first-address "$first" --run-dir "$run" >"$log" 2>&1
    status=$?
    if [ $status -eq 0 ]; then
        outcome="served"
        reason="-"
    elif [ $status -eq 2 ]; then
        outcome="refused by plan"
        reason=$(grep -m1 '^error:' "$log" | sed -E 's/^error: [^ ]+ //' | cut -c1-120 | head -1)
    else
        step=$(grep -m1 -oE "step \`[^\`]+\` \([a-z_]+\)|service \`[^\`]+\` \([a-z_]+\)" "$log" | sed -E 's/`[^`]+`/X/')
        if grep -q "wait-healthy" "$log" && grep -q "FAILED  wait-healthy" "$log"; then
            outcome="deployed, not healthy"
        elif [ -n "$step" ]; then
            outcome="deploy failed"
        else
            outcome="did not start"
        fi
        detail=$(grep -m1 -E "error:|Error|Unknown arguments|not found|No module" "$run"/logs/*.log "$log" 2>/dev/null \
            | head -1 | sed -E 's/^[^:]*:\[[0-9:.]+\] //; s/\x1b\[[0-9;]*m//g' | cut -c1-100)
        reason="${step:-?}: ${detail:-exit $status}"
    fi
    printf '%s\t%s\t%s\t%s\n' "$f" "$outcome" "$reason" "$((SECONDS - started))" >> "$results"
    printf '%4d %-24s %4ds %s\n' "$k" "$outcome" "$((SECONDS - started))" "${f#$corpus/}"
    # A served run is done with; a failed one stays for reading when the table is kept.
    if [ "$outcome" != served ] && [ -n "${SWEEP_OUT:-}" ]; then
        mkdir -p "$SWEEP_OUT.d" && mv "$run" "$log" "$SWEEP_OUT.d/" 2>/dev/null
    fi
    rm -rf "$run" "$log"
}

# SWEEP_JOBS slots; slot s owns the /24s 60+s, 60+s+SWEEP_JOBS, … below 100 and takes them in turn, so two
# recipes running at once never share an address however long either takes.
declare -a slot_pid slot_uses
per_slot=$((40 / parallel))
i=0
k=0
while IFS= read -r f; do
    i=$((i + 1))
    (( (i - 1) % every == 0 )) || continue
    k=$((k + 1))
    while :; do
        free=
        for ((s = 0; s < parallel; s++)); do
            if [ -z "${slot_pid[s]:-}" ] || ! kill -0 "${slot_pid[s]}" 2>/dev/null; then free=$s; break; fi
        done
        [ -n "$free" ] && break
        wait -n
    done
    uses=${slot_uses[free]:-0}
    slot_uses[free]=$((uses + 1))
    sweep_one "$k" "$f" "$((60 + free + parallel * (uses % per_slot)))" &
    slot_pid[free]=$!
done < <(if [ -n "${SWEEP_FILES:-}" ]; then cat "$SWEEP_FILES"; else find "$corpus" -name '*.yaml' ! -name 'srtslurm*' | sort; fi)
wait

total=$(wc -l < "$results")
echo
echo "== $total recipes (every ${every}th of the corpus), run with --mock-workers --smoke, $parallel at a time: $((SECONDS / 60)) min"
cut -f2 "$results" | sort | uniq -c | sort -rn
echo
echo "== reasons, grouped"
awk -F'\t' '$2 != "served" { print $2 " — " $3 }' "$results" | sort | uniq -c | sort -rn
