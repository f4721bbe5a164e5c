#!/usr/bin/env bash
# Fidelity check: flowc's reading of every valid fixture's (and example's) step graph
# must match Metaflow's own (FlowGraph on the imported flow class).
#
#   tests/fidelity/run.sh                 # throwaway venv in $TMPDIR, metaflow pinned
#   FIDELITY_VENV=/path/to/venv run.sh    # reuse a venv that already has metaflow
#   FLOWC=/path/to/flowc run.sh           # use this binary instead of building one
#
# Prints every difference per file and ends with `fidelity: N passed, M failed`;
# exits 1 on any difference.
set -euo pipefail

METAFLOW_VERSION=2.19.39
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/flowc-fidelity.XXXXXX")"
trap 'rm -rf "$work"' EXIT

if [[ -n "${FIDELITY_VENV:-}" ]]; then
    python="$FIDELITY_VENV/bin/python"
else
    python3 -m venv "$work/venv"
    python="$work/venv/bin/python"
    "$python" -m pip install --quiet --disable-pip-version-check "metaflow==$METAFLOW_VERSION"
fi
"$python" -c 'import metaflow' || { echo "no metaflow in $python" >&2; exit 2; }

if [[ -n "${FLOWC:-}" ]]; then
    flowc="$FLOWC"
else
    (cd "$root" && cargo build --quiet -p flowc --bin flowc)
    flowc="$root/target/debug/flowc"
fi

# `file.py  reason` lines; blank lines and comments ignored.
declare -A skip=()
while read -r name reason; do
    [[ -z "$name" || "$name" == \#* ]] && continue
    [[ -n "$reason" ]] || { echo "skip.txt: $name has no reason" >&2; exit 2; }
    skip["$name"]="$reason"
done < "$here/skip.txt"

# Metaflow writes nothing when only its graph is built, but keep its config and any
# stray files away from the user's home and the checkout.
export METAFLOW_HOME="$work/metaflow-home" USERNAME="${USERNAME:-fidelity}"

passed=0
failed=0
# Examples are flows users copy: they must read the same in both tools, too.
for file in "$root"/fixtures/flows/valid/*.py "$root"/examples/*.py; do
    name="$(basename "$file")"
    if [[ -n "${skip[$name]:-}" ]]; then
        echo "skip $name: ${skip[$name]}"
        continue
    fi
    flow="$(sed -n 's/^# flowc: --flow \([A-Za-z_][A-Za-z0-9_]*\)$/\1/p' "$file" | head -n 1)"
    flow_args=()
    [[ -n "$flow" ]] && flow_args=(--flow "$flow")
    ours="$work/$name.flowc.json"
    theirs="$work/$name.metaflow.json"
    if ! "$flowc" graph --format json "${flow_args[@]}" "$file" > "$ours" 2> "$work/err"; then
        echo "FAIL $name: flowc graph failed"
        sed 's/^/  /' "$work/err"
        failed=$((failed + 1))
        continue
    fi
    if ! (cd "$(dirname "$file")" && "$python" "$here/metaflow_graph.py" "$file" $flow) \
        > "$theirs" 2> "$work/err"; then
        echo "FAIL $name: metaflow could not read it"
        sed 's/^/  /' "$work/err"
        failed=$((failed + 1))
        continue
    fi
    if "$python" "$here/compare.py" "$ours" "$theirs" > "$work/diff"; then
        echo "ok   $name"
        passed=$((passed + 1))
    else
        echo "FAIL $name"
        cat "$work/diff"
        failed=$((failed + 1))
    fi
done

echo "fidelity: $passed passed, $failed failed"
[[ "$failed" -eq 0 ]]
