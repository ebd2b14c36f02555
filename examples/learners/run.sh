#!/usr/bin/env bash
# SRWM, DeltaNet and LSTM, each with and without bootstrapping: Omniglot 5-way, K=5, K'=5, same budget.
# Every stage resumes where it stopped and skips finished runs, so rerun it after an interruption.
# Run from the repository root:
#   bash examples/learners/run.sh train            # all 12 runs: seed 0 of every arm first, then seed 1
#   bash examples/learners/run.sh train lstm       # or one sequence layer: srwm | deltanet | lstm
#   bash examples/learners/run.sh evaluate         # test split, K_test 1, 5, 10, 15, finished runs only
# or both stages in order: bash examples/learners/run.sh
# Output goes to $STUDY_DIR (default runs/learners); $SEEDS sets the seeds (default "0 1").
set -euo pipefail
config=examples/learners/config.json
study=${STUDY_DIR:-runs/learners}
read -r -a seeds <<< "${SEEDS:-0 1}"
all_layers=(srwm deltanet lstm)
settings=(no_bootstrap bootstrap)

betas() {
  case $1 in
    no_bootstrap) echo --beta1 1 --beta2 0 --beta3 1 ;;
    bootstrap) echo --beta1 1 --beta2 1 --beta3 1 ;;
  esac
}

train() {
  local layers=("${all_layers[@]}")
  if [[ $# -gt 0 ]]; then
    case $1 in
      srwm | deltanet | lstm) layers=("$1") ;;
      *) echo "unknown sequence layer: $1 (srwm, deltanet, lstm)" >&2; exit 2 ;;
    esac
  fi
  for seed in "${seeds[@]}"; do
    for layer in "${layers[@]}"; do
      for setting in "${settings[@]}"; do
        local run_dir=$study/${layer}_$setting/seed$seed
        if [[ -f $run_dir/finished ]]; then continue; fi
        local start=$SECONDS
        # shellcheck disable=SC2046  # betas is a list of flags
        kerasrwm train --config "$config" --sequence-layer "$layer" $(betas "$setting") --seed "$seed" \
          --output "$run_dir"
        echo "${layer}_$setting seed$seed: $((SECONDS - start)) s" >> "$study/wall_times.txt"
      done
    done
  done
}

evaluate() {
  local runs=() missing=()
  for layer in "${all_layers[@]}"; do
    for setting in "${settings[@]}"; do
      for seed in "${seeds[@]}"; do
        local run_dir=$study/${layer}_$setting/seed$seed
        if [[ -f $run_dir/finished ]]; then runs+=("${layer}_$setting=$run_dir"); else missing+=("$run_dir"); fi
      done
    done
  done
  if [[ ${#missing[@]} -gt 0 ]]; then echo "not finished, left out: ${missing[*]}" >&2; fi
  kerasrwm evaluate "${runs[@]}" --k-test 1,5,10,15 --runs 3 --episodes 256 --output "$study"
}

case ${1:-all} in
  train) shift; train "$@" ;;
  evaluate) evaluate ;;
  all) train; evaluate ;;
  *) echo "usage: $0 [train [LAYER] | evaluate | all]" >&2; exit 2 ;;
esac
