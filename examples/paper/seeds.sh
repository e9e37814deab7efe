#!/usr/bin/env bash
# seeds.sh runs the recipes of docs/paper.md's "Which score finds what" for
# several seeds of training and prints the table: run.sh with MEMORISE=1
# (the MLP that fits its replaced labels) into DIR/memorise-SEED, and, with
# CNN=1, run.sh (the CNN that does not) into DIR/cnn-SEED; then
# examples/paper/table over them. A run whose directory is complete is not
# run again (run.sh skips the steps whose outputs exist).
#
# Usage: examples/paper/seeds.sh [DIR]      (default /tmp/vog-seeds)
#   SEEDS="0 1 2"  the seeds (default 0 1 2)
#   CNN=1          the CNN recipe too (about 25 min a seed on an idle
#                  2-core machine; a MEMORISE=1 run took 25 on the busy one)
#   VOG, PYTHON, GO  as for run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
dir=${1:-/tmp/vog-seeds}
seeds=${SEEDS:-0 1 2}
mkdir -p "$dir"
mem=() cnn=()
for s in $seeds; do
  MEMORISE=1 SEED=$s examples/paper/run.sh "$dir/memorise-$s"
  mem+=("$dir/memorise-$s")
  if [ -n "${CNN:-}" ]; then
    SEED=$s examples/paper/run.sh "$dir/cnn-$s"
    cnn+=("$dir/cnn-$s")
  fi
done
join() { local IFS=,; echo "$*"; }
args=(--memorise "$(join "${mem[@]}")")
[ ${#cnn[@]} -eq 0 ] || args+=(--cnn "$(join "${cnn[@]}")")
"${GO:-go}" run ./examples/paper/table "${args[@]}" | tee "$dir/table.md"
for d in "${mem[@]}" "${cnn[@]}"; do
  /usr/bin/python3 -c 'import json, sys; s = json.load(open(sys.argv[1])); print(sys.argv[1], "replaced labels fitted:", s["replaced_memorised"], "by checkpoint:", s.get("replaced_memorised_by_checkpoint"))' "$d/summary.json"
done | tee -a "$dir/table.md"
