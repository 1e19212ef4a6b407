#!/usr/bin/env bash
# What a container costs a step: N one-node steps of `true` in one allocation of the test cluster, side by
# side in one run, each way srt-graph starts a step on Slurm:
#   bare srun                 srun --overlap -N1 -n1 -w node2 true
#   pyxis, fresh container    + --container-image=IMAGE (enroot unpacks the squashfs every time)
#   pyxis, named container    + --container-name=NAME (what srt-graph does: unpacked once per node and run,
#                               then reused by every later step on that node)
# Prints the median and p90 wall time of each and the ratios to bare srun. Not part of CI.
#
#   bash benches/containers.sh [N]      # N steps each (default 20); needs `tests/env/slurm.sh up` as root
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-20}
env_dir=${SRT_GRAPH_SLURM_ENV:-/tmp/srt-graph-slurm}
[ -s "$env_dir/containers.env" ] || { echo "no containers in $env_dir: run tests/env/slurm.sh up"; exit 1; }
# shellcheck disable=SC1091
source "$env_dir/containers.env"
export SLURM_CONF=$env_dir/slurm.conf
job=$(salloc -N1 -w node2 --no-shell 2>&1 | grep -oE '[0-9]+' | head -1)
name=bench-$$
trap 'SLURM_STEP_NODELIST=node2 enroot remove -f "pyxis_$name" >/dev/null 2>&1 || true; scancel "$job"' EXIT
export SLURM_JOB_ID=$job

time_one() { local t0 t1; t0=$(date +%s%N); "$@" >/dev/null 2>&1; t1=$(date +%s%N); echo $(( (t1 - t0) / 1000000 )); }
stats() { sort -n | awk '{ a[NR] = $1 } END { printf "%d %d\n", a[int((NR + 1) / 2)], a[int(NR * 0.9 + 0.5)] }'; }

bare=() fresh=() named=()
# The first named start unpacks the image: measured apart, as a run pays it once per node.
first_named=$(time_one srun --overlap -N1 -n1 -w node2 --container-image="$IMAGE" --container-name="$name" \
    --no-container-mount-home true)
for _ in $(seq "$n"); do
    # Interleaved, so that any drift of the machine hits all three alike.
    bare+=("$(time_one srun --overlap -N1 -n1 -w node2 true)")
    fresh+=("$(time_one srun --overlap -N1 -n1 -w node2 --container-image="$IMAGE" --no-container-mount-home true)")
    named+=("$(time_one srun --overlap -N1 -n1 -w node2 --container-image="$IMAGE" --container-name="$name" \
        --no-container-mount-home true)")
done
read -r b50 b90 < <(printf '%s\n' "${bare[@]}" | stats)
read -r f50 f90 < <(printf '%s\n' "${fresh[@]}" | stats)
read -r n50 n90 < <(printf '%s\n' "${named[@]}" | stats)
echo "container start cost per step, $n steps each, one allocation, $(date -u +%F) on $(nproc) cores"
printf '%-34s %8s %8s %10s\n' "how" "p50 ms" "p90 ms" "p50 ratio"
printf '%-34s %8d %8d %10s\n' "bare srun" "$b50" "$b90" "1.0x"
printf '%-34s %8d %8d %10s\n' "pyxis, fresh container" "$f50" "$f90" "$(awk "BEGIN { printf \"%.1fx\", $f50 / $b50 }")"
printf '%-34s %8d %8d %10s\n' "pyxis, named container (reused)" "$n50" "$n90" "$(awk "BEGIN { printf \"%.1fx\", $n50 / $b50 }")"
printf '%-34s %8d\n' "pyxis, named container, first start" "$first_named"
