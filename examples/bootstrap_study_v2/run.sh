#!/usr/bin/env bash
# Table 2 (right half) of the bootstrapping paper on Omniglot: 5-way, K = 10, K' = 5,
# beta2 = 0 ("no bootstrap") against beta2 = 10, beta1 = beta3 = 1, 3 seeds per arm, 10,000 steps,
# best-validation models. Every stage resumes where it stopped and skips what has finished:
# rerun it after an interruption. From the repository root:
#   bash examples/bootstrap_study_v2/run.sh train       # the runs, paired by seed
#   bash examples/bootstrap_study_v2/run.sh evaluate    # test split, K_test 1, 5, 10, 15, 5 x 512 episodes;
#                                                       # validation learning curves
# or both: bash examples/bootstrap_study_v2/run.sh
# Output goes to $STUDY_DIR (default runs/bootstrap_study_v2; put it outside the checkout to keep it across
# fresh clones, e.g. STUDY_DIR=~/kerasrwm-runs/bootstrap_study_v2); $SEEDS sets the seeds (default "0 1 2").
set -euo pipefail
config=examples/bootstrap_study_v2/config.json
study=${STUDY_DIR:-runs/bootstrap_study_v2}
read -r -a seeds <<< "${SEEDS:-0 1 2}"
arms=(no_bootstrap:0 bootstrap:10)

train() {
  for seed in "${seeds[@]}"; do
    for arm in "${arms[@]}"; do
      kerasrwm train --config "$config" --beta2 "${arm#*:}" --seed "$seed" --output "$study/${arm%%:*}/seed$seed"
    done
  done
}

evaluate() {
  local runs=()
  for arm in "${arms[@]}"; do
    for seed in "${seeds[@]}"; do runs+=("${arm%%:*}=$study/${arm%%:*}/seed$seed"); done
  done
  kerasrwm evaluate "${runs[@]}" --k-test 1,5,10,15 --runs 5 --episodes 512 --output "$study"
  python examples/bootstrap_study_v2/learning_curves.py "$study"
}

case ${1:-all} in
  train) train ;;
  evaluate) evaluate ;;
  all) train; evaluate ;;
  *) echo "usage: $0 [train | evaluate | all]" >&2; exit 2 ;;
esac
