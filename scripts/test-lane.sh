#!/usr/bin/env bash
# One lane of scripts/test.sh: runs each test binary of LIST ("package dir<TAB>binary<TAB>label" lines) one
# after another from its package's directory, as cargo test does, printing cargo's "Running" header before
# each. Exit status: the last failing binary's, 0 when all pass.
set -uo pipefail
rc=0
while IFS=$'\t' read -r dir exe label; do
    echo "     Running $label ($exe)"
    (cd "$dir" && "$exe") || rc=$?
done <"$1"
exit "$rc"
