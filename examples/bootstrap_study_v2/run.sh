#!/usr/bin/env bash
# Table 2 of the bootstrapping paper on Omniglot, 5-way, beta1 = beta3 = 1, 3 seeds per arm,
# 10,000 steps, best-validation models:
#   right half: K = 10, K' = 5,  beta2 = 0 ("no bootstrap") against beta2 = 10, in $STUDY_DIR;
#   left half:  K = 5,  K' = 10, beta2 = 0 against beta2 = 5, in $STUDY_DIR/left_half.
# Every stage resumes where it stopped and skips what has finished: rerun it after an
# interruption. From the repository root:
#   bash examples/bootstrap_study_v2/run.sh train [right | left]      # the runs, paired by seed (default: right)
#   bash examples/bootstrap_study_v2/run.sh evaluate [right | left]   # test split, K_test 1, 5, 10, 15, 5 x 512
#                                                                     # episodes; paired differences; validation
#                                                                     # learning curves; training accuracies at the end
#   bash examples/bootstrap_study_v2/run.sh learning-rate   # the rate check: both right-half arms, seed 0,
#                                                           # 2,000 steps at 5e-4 and 2e-3 (1e-3 is the study);
#                                                           # their validation curves
# or, for the right half, both: bash examples/bootstrap_study_v2/run.sh
# Output goes to $STUDY_DIR (default runs/bootstrap_study_v2; put it outside the checkout to keep it across
# fresh clones, e.g. STUDY_DIR=~/kerasrwm-runs/bootstrap_study_v2); $SEEDS sets the seeds (default "0 1 2").
set -euo pipefail
config=examples/bootstrap_study_v2/config.json
study=${STUDY_DIR:-runs/bootstrap_study_v2}
read -r -a seeds <<< "${SEEDS:-0 1 2}"

# The half of Table 2 named by $1: its directory, its K and K', and its arms as name:beta2.
select_half() {
  case ${1:-right} in
    right) half_dir=$study; shots=(--k-shot 10 --k-extra 5); arms=(no_bootstrap:0 bootstrap:10) ;;
    left) half_dir=$study/left_half; shots=(--k-shot 5 --k-extra 10); arms=(no_bootstrap:0 bootstrap:5) ;;
    *) echo "unknown half '$1': expected right or left" >&2; exit 2 ;;
  esac
}

train() {
  for seed in "${seeds[@]}"; do
    for arm in "${arms[@]}"; do
      kerasrwm train --config "$config" "${shots[@]}" --beta2 "${arm#*:}" --seed "$seed" \
        --output "$half_dir/${arm%%:*}/seed$seed"
    done
  done
}

evaluate() {
  local runs=()
  for arm in "${arms[@]}"; do
    for seed in "${seeds[@]}"; do runs+=("${arm%%:*}=$half_dir/${arm%%:*}/seed$seed"); done
  done
  kerasrwm evaluate "${runs[@]}" --k-test 1,5,10,15 --runs 5 --episodes 512 --output "$half_dir"
  python examples/bootstrap_study_v2/paired_differences.py "$half_dir"
  python examples/bootstrap_study_v2/learning_curves.py "$half_dir"
}

# The constant rate 1e-3 against half and twice that, on the validation split: the first 2,000 steps
# of seed 0 of each right-half arm (at a constant rate these are the study's own runs' first 2,000 steps).
learning_rate() {
  for rate in 5e-4 2e-3; do
    for arm in "${arms[@]}"; do
      kerasrwm train --config "$config" "${shots[@]}" --beta2 "${arm#*:}" --seed 0 --steps 2000 \
        --learning-rate "$rate" --output "$study/learning_rate/${arm%%:*}_lr$rate/seed0"
    done
  done
  python examples/bootstrap_study_v2/learning_curves.py "$study/learning_rate"
}

usage() { echo "usage: $0 [train | evaluate | all] [right | left]  or  $0 learning-rate" >&2; exit 2; }

case ${1:-all} in
  train) select_half "${2:-right}"; train ;;
  evaluate) select_half "${2:-right}"; evaluate ;;
  all) select_half "${2:-right}"; train; evaluate ;;
  learning-rate) [[ $# -le 1 ]] || usage; select_half right; learning_rate ;;
  *) usage ;;
esac
