#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine with only Rust installed (run as root):
# installs what the tests need (graphviz, nginx, python3-venv, OpenSSH, Slurm + munge, nats-server, chromium, tmux,
# etcd; the tests' runs install sglang-router and ai-dynamo from PyPI into a cached venv themselves),
# brings up the ssh hosts and the 4-node Slurm cluster once for the whole run (tests/env/*.sh; taken
# down on exit, whatever happens), then format check, clippy, and every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."

export PATH="$PATH:/usr/sbin"
missing=()
command -v dot >/dev/null 2>&1 || missing+=(graphviz)
command -v nginx >/dev/null 2>&1 || missing+=(nginx)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
command -v flock >/dev/null 2>&1 || missing+=(util-linux)
command -v ssh >/dev/null 2>&1 || missing+=(openssh-client)
[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
command -v slurmctld >/dev/null 2>&1 || missing+=(slurm-wlm)
command -v munged >/dev/null 2>&1 || [ -x /usr/sbin/munged ] || missing+=(munge)
command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] || missing+=(nats-server)
command -v etcd >/dev/null 2>&1 || missing+=(etcd-server)
# The report is checked as people see it (a screenshot in headless Chromium), the monitor in tmux.
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v tmux >/dev/null 2>&1 || missing+=(tmux)
if ((${#missing[@]})); then
    echo "== installing: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Each stage says when it started (the suite has a time budget: 25 minutes from a fresh machine).
stage() { printf '== [%dm%02ds] %s\n' $((SECONDS / 60)) $((SECONDS % 60)) "$*"; }

log=$(mktemp)
cleanup() {
    if [ -n "${cluster_lane_pid:-}" ]; then kill -TERM -- "-$cluster_lane_pid" 2>/dev/null || true; fi
    rm -f "$log" "$log".*
    # Environments still coming up finish first, so that `down` finds every daemon they started.
    if [ -n "${envs:-}" ]; then wait "$envs" 2>/dev/null || true; fi
    if [ -n "${SRT_GRAPH_SSH_ENV:-}" ]; then SSH_ENV=$SRT_GRAPH_SSH_ENV bash tests/env/ssh.sh down >/dev/null || true; fi
    if [ -n "${SRT_GRAPH_SLURM_ENV:-}" ]; then SLURM_ENV=$SRT_GRAPH_SLURM_ENV bash tests/env/slurm.sh down >/dev/null || true; fi
}
trap cleanup EXIT
# The test environments come up in the background while cargo compiles: the container images (Debian's
# debootstrap, ~1.5 min the first time, cached in /var/cache/srt-graph afterwards) are mostly waiting on
# the network and the disk, the build on the CPU.
envlog=$(mktemp)
if [ "$(id -u)" = 0 ]; then
    echo "== test environments (background): sshd on 127.0.1.1-4; Slurm cluster node1-4 with pyxis + enroot"
    (
        # A test environment that fails to come up fails its tests (they say why), not the whole suite.
        if ! SSH_ENV=/tmp/srt-graph-ssh bash tests/env/ssh.sh up; then
            echo "== the ssh test hosts did not come up: the ssh tests will fail"
            SSH_ENV=/tmp/srt-graph-ssh bash tests/env/ssh.sh down >/dev/null 2>&1 || true
        fi
        if ! SLURM_ENV=/tmp/srt-graph-slurm bash tests/env/slurm.sh up; then
            echo "== the Slurm test cluster did not come up: the Slurm tests will fail"
            SLURM_ENV=/tmp/srt-graph-slurm bash tests/env/slurm.sh down >/dev/null 2>&1 || true
        fi
    ) >"$envlog" 2>&1 &
    envs=$!
    # From here on, cleanup takes them down even if the suite stops early.
    export SRT_GRAPH_SSH_ENV=/tmp/srt-graph-ssh SRT_GRAPH_SLURM_ENV=/tmp/srt-graph-slurm
else
    echo "== not root: the ssh, Slurm and container tests are SKIPPED (sshd, slurmd, munged and enroot need root)"
fi

stage "cargo fmt --check"
cargo fmt --all -- --check
stage "cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings

# The suite runs as static (musl) binaries: the `srt-graph` the tests start is then also the node binary
# that container steps mount, which must run in any image. Without the target, the container tests skip
# and say why.
target_args=()
if rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-linux-musl \
    || rustup target add x86_64-unknown-linux-musl >/dev/null 2>&1; then
    target_args=(--target x86_64-unknown-linux-musl)
else
    echo "== the x86_64-unknown-linux-musl target could not be installed: the container tests will be SKIPPED"
    export SRT_GRAPH_NO_STATIC="rustup could not install the x86_64-unknown-linux-musl target"
fi
stage "cargo test --no-run ${target_args[*]}"
# Every test binary, as "package dir<TAB>binary<TAB>label" (what cargo test would run, in its order).
cargo test --workspace --no-run "${target_args[@]}" --quiet --message-format=json-render-diagnostics \
    | python3 -c '
import json, os, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["profile"]["test"]:
        t = m["target"]
        pkg = os.path.dirname(m["manifest_path"])
        kind = "unittests" if t["kind"][0] in ("lib", "bin") else t["kind"][0] + "s"
        src = os.path.relpath(t["src_path"], pkg)
        print(pkg, m["executable"], (kind + " " + src) if kind == "unittests" else src, sep="\t")
' | sort -t$'\t' -k3,3 >"$log.binaries"
[ -s "$log.binaries" ] || { echo "cargo listed no test binaries"; exit 1; }
if [ -n "${envs:-}" ]; then
    wait "$envs" || true
    cat "$envlog"
fi
rm -f "$envlog"
stage "cargo test"
# The property test over recipe parsing + compilation: 5,000 mutated recipes per CI run.
export PROPTEST_CASES=${PROPTEST_CASES:-5000}
# Simulated runs that test plumbing (routing, faults, resume, containers) keep the mock workers' fixed
# timing: seconds per run, not the minutes a paced DeepSeek-R1 would take. tests/perf_model_cli.rs (and
# the golden plans) ask for `--timing model` themselves and test the performance model end to end.
export SRT_GRAPH_TIMING=fixed
# Two lanes, then one binary alone. The tests that drive the ssh hosts and the Slurm cluster (and the one
# fault test that cuts an ssh connection: it would cut the other ssh tests' connections too) spend most of
# their time waiting on sshd, slurmd and pyxis, so they run in a lane of their own beside the rest: on 2
# cores the test phase keeps the CPU about a third busy. The Dynamo tests (Python frontends and mockers,
# the heaviest deployments) then run alone: beside the other lane a frontend once answered 503 for a
# minute (likely a `faults` run on the same address, before tests/common/loopback.rs). Each lane runs
# its binaries one after another, as cargo test does, from the package's directory. SRT_GRAPH_ONE_LANE=1
# runs everything in one lane.
cluster_lane='^tests/(remote_cli|containers_cli|faults|srtctl_cli|slurm_faults)[.]rs$'
alone='^tests/dynamo_cli[.]rs$'
awk -F'\t' -v re="$cluster_lane" '$3 ~ re' "$log.binaries" >"$log.cluster-list"
awk -F'\t' -v re="$alone" '$3 ~ re' "$log.binaries" >"$log.alone-list"
awk -F'\t' -v a="$cluster_lane" -v b="$alone" '$3 !~ a && $3 !~ b' "$log.binaries" >"$log.local-list"
set +e
if [ -n "${SRT_GRAPH_ONE_LANE:-}" ]; then
    cat "$log.local-list" "$log.cluster-list" "$log.alone-list" >"$log.all-list"
    bash scripts/test-lane.sh "$log.all-list" 2>&1 | tee "$log"
    status=${PIPESTATUS[0]}
else
    # In a session of its own, so that the cleanup can stop the whole lane if the suite is interrupted.
    setsid --wait bash scripts/test-lane.sh "$log.cluster-list" >"$log.cluster" 2>&1 &
    cluster_lane_pid=$!
    bash scripts/test-lane.sh "$log.local-list" 2>&1 | tee "$log"
    status=${PIPESTATUS[0]}
    wait "$cluster_lane_pid"
    cluster_status=$?
    cluster_lane_pid=
    ((status)) || status=$cluster_status
    echo "== the cluster lane (ran beside the tests above)"
    cat "$log.cluster"
    cat "$log.cluster" >>"$log"
    stage "alone: $(cut -f3 "$log.alone-list" | tr '\n' ' ')"
    bash scripts/test-lane.sh "$log.alone-list" 2>&1 | tee -a "$log"
    alone_status=${PIPESTATUS[0]}
    ((status)) || status=$alone_status
fi
cargo test --workspace --doc --no-fail-fast "${target_args[@]}" 2>&1 | tee -a "$log"
doc_status=${PIPESTATUS[0]}
((status)) || status=$doc_status
set -e
# One closing line over every test binary (the last one cargo prints is an empty doc-test run).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i == "passed;") p += $(i-1); if ($i == "failed;") f += $(i-1) } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log" > "$log.summary"

# cargo-fuzz over recipe parsing + validation + compilation, bounded in time (stable toolchain: no
# sanitizer). Seeds: fuzz/corpus/recipe (checked in) and the shared recipe corpus when present; new inputs
# go to a scratch directory, not into the checked-in corpus.
stage "cargo fuzz: recipe target, ${FUZZ_SECONDS:=25} s"
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked --quiet
scratch=$(mktemp -d)
seeds=(corpus/recipe)
for d in ../../shared/corpus/seed-era ../../shared/corpus/current; do [ -d "fuzz/$d" ] && seeds+=("$d"); done
set +e
(cd fuzz && cargo fuzz run -s none recipe "$scratch" "${seeds[@]}" -- \
    -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=2048 -print_final_stats=1) >"$log.fuzz" 2>&1
fuzz_status=$?
set -e
rm -rf "$scratch"
runs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$log.fuzz" | tail -1)
if [ "$fuzz_status" = 0 ]; then
    echo "fuzz: ${runs:-0} executions, 0 crashes"
else
    tail -40 "$log.fuzz"
    echo "fuzz: FAILED (a crash or an error above; the input is under fuzz/artifacts/recipe/)"
fi
# Where the time went: each test binary's wall time, slowest first.
awk '/Running / { name = $2 } /^test result:/ { t = $NF; sub(/s$/, "", t); if (t + 0 >= 5) printf "%7.1f s  %s\n", t, name }' "$log" | sort -rn
stage "done"
cat "$log.summary"
rm -f "$log.summary" "$log.fuzz"
if [ "$status" != 0 ]; then exit "$status"; fi
exit "$fuzz_status"
