#!/usr/bin/env bash
# run.sh runs the experiments of docs/paper.md: trains the CNN
# (examples/paper/train.py), scores its data sets with vog and measures each
# of the paper's claims with vog eval and examples/paper/difficulty.
#
# Usage: examples/paper/run.sh [DIR]     (default /tmp/vog-paper)
#   QUICK=1   the tiny version (seconds; cmd/vog/paper_test.go runs it)
#   MEMORISE=1  the memorising regime (train.py --memorise: an MLP on 3,000
#             images trained until it fits its replaced labels; training
#             about 10 min on one core, scoring about 15 on two)
#   SEED=N    train.py --seed N (default 0)
#   VOG=...   the vog binary (default build/vog); PYTHON=... (default /usr/bin/python3);
#   GO=...    the go command (default go)
#
# What it writes under DIR: train.py's data sets, checkpoints and truth files;
# one vog result per scoring (DIR/<name>/, its log DIR/<name>.log); every
# measurement in DIR/<name>.<truth>.eval and DIR/<name>.difficulty, and all
# of them, in order, in DIR/results.txt. A step whose output exists is not
# run again (delete DIR/<name> to redo it).
set -euo pipefail
cd "$(dirname "$0")/../.."
dir=${1:-/tmp/vog-paper}
vog=${VOG:-build/vog}
python=${PYTHON:-/usr/bin/python3}
quick=()
[ -z "${QUICK:-}" ] || quick=(--quick)
[ -z "${MEMORISE:-}" ] || quick+=(--memorise)
[ -z "${SEED:-}" ] || quick+=(--seed "$SEED")
mkdir -p "$dir"
# Scoring and training share the machine with everything else: nice.
run() { nice -n 10 "$@"; }

[ -f "$dir/summary.json" ] || run "$python" examples/paper/train.py "$dir" "${quick[@]}"

# The checkpoints in training order: four in the first half epoch
# (ckpt_first/), then 16 spread evenly over training (ckpt/: 4 with QUICK;
# one every half epoch for the CNN, every 5 epochs with MEMORISE).
# Windows: first = the first half epoch's four, early = the first four of
# ckpt/ (the first quarter of training: the CNN's epochs 0.5-2), late = its
# last four (the last quarter: epochs 6.5-8), all = the 16 of ckpt/.
checkpoints=$(ls "$dir"/ckpt_first/first_*.pt | sort -V | paste -sd,),$(ls "$dir"/ckpt/ckpt_*.pt | sort -V | paste -sd,)
windows=first=0:4,early=4:8,late=-4:,all=4:

# score NAME DATASET FLAGS...: vog run into DIR/NAME.
score() {
  local name=$1 data=$2
  shift 2
  [ -f "$dir/$name/_SUCCESS" ] && return
  echo "vog run $name" >&2
  run "$vog" run --format idx --dataset "$dir/$data" --checkpoints "$checkpoints" \
    --windows "$windows" --threads 2 --state-dir "$dir/state" --out "$dir/$name" "$@" >"$dir/$name.log" 2>&1 ||
    { tail -20 "$dir/$name.log" >&2; return 1; }
}

# measure NAME TRUTH: vog eval of DIR/NAME against DIR/truth_TRUTH.csv.
measure() {
  run "$vog" eval --out "$dir/$1" --truth "$dir/truth_$2.csv" >"$dir/$1.$2.eval"
  { echo "== vog eval --out $1 --truth truth_$2.csv"; cat "$dir/$1.$2.eval"; echo; } >>"$dir/results.txt"
}

: >"$dir/results.txt"
{ echo "== train.py: summary.json"; cat "$dir/summary.json"; echo; echo; } >>"$dir/results.txt"

# Memorisation: the noisy training set, true (given) labels, each target;
# then the same with predicted labels.
score train-logit train --label true --target logit
measure train-logit replaced
score train-prob train --label true --target prob
measure train-prob replaced
score train-logit-pred train --label predicted --target logit
measure train-logit-pred replaced
score train-prob-pred train --label predicted --target prob
measure train-prob-pred replaced

# Test error by VoG decile, the class-level correlation, and the
# misclassified test examples, in each window (the early/late flip): true
# labels.
score test-logit test --label true --target logit
measure test-logit misclassified
score test-prob test --label true --target prob
measure test-prob misclassified
run "${GO:-go}" run ./examples/paper/difficulty --out "$dir/test-logit" >"$dir/test-logit.difficulty"
{ echo "== difficulty --out test-logit"; cat "$dir/test-logit.difficulty"; echo; } >>"$dir/results.txt"

# Out-of-distribution detection: in-distribution test images with unseen
# classes and inverted images, predicted labels (an OOD image has none the
# model knows).
score mixed-logit-pred mixed --label predicted --target logit
measure mixed-logit-pred ood_unseen
measure mixed-logit-pred ood_inverted
score mixed-prob-pred mixed --label predicted --target prob
measure mixed-prob-pred ood_unseen
measure mixed-prob-pred ood_inverted

echo "results: $dir/results.txt" >&2
