#!/usr/bin/env bash
# When does bootstrapping help? Omniglot 28x28, Vinyals split with rotations, 5-way, K = 10, K' = 5,
# beta1 = beta3 = 1, best-validation models, test at K_test 1, 5, 10, 15 on 5 x 512 fixed episodes.
# Four stages (README.md), each resumable: rerun the same command after any interruption; finished
# runs are skipped, a killed run resumes from its last epoch. From the repository root:
#   bash examples/bootstrap_study_v3/run.sh train a      # beta2 dose-response {0, 0.3, 1, 3, 10}, 3,000 steps,
#                                                         # seed 0, diagnostics every 100 steps
#   bash examples/bootstrap_study_v3/run.sh train b      # beta2 = 10 switched on / ramped once the beta2 = 0
#                                                         # run of stage a has left the chance plateau
#   bash examples/bootstrap_study_v3/run.sh train c      # hand_off_gradient=reference, beta2 0 and 10, 3 seeds,
#                                                         # 10,000 steps (v2's setting otherwise)
#   bash examples/bootstrap_study_v3/run.sh train d      # the authors' recipe (authors_recipe.json), beta2 0
#                                                         # and 10, and beta2 10 with the reference gradient,
#                                                         # 3 seeds, 10,000 steps
#   bash examples/bootstrap_study_v3/run.sh evaluate a|b|c|d   # K_test sweep, tables, curves, diagnostics
# Output goes to $STUDY_DIR (required; keep it outside the checkout, e.g. ~/kerasrwm-runs/bootstrap_study_v3).
# $SEEDS sets the seeds of stages c and d (default "0 1 2"); seeds run in order, every arm of a seed
# before the next seed, so the first finished seed can be evaluated early.
set -euo pipefail
v2=examples/bootstrap_study_v2
v3=examples/bootstrap_study_v3
study=${STUDY_DIR:?set STUDY_DIR to a directory outside the checkout}
read -r -a seeds <<< "${SEEDS:-0 1 2}"
short=(--config "$v2/config.json" --steps 3000 --steps-per-epoch 250 --diagnostics-every 100 --seed 0)
ramp_steps=1000

# Stage a: the v2 setting (constant rate 1e-3, no dropout, width 64, 2 layers), one seed, validation every
# 250 steps; beta2 = 0 and 10 first (stage b needs the first), then the doses in between.
train_a() {
  for beta2 in 0 10 1 3 0.3; do
    kerasrwm train "${short[@]}" --beta2 "$beta2" --output "$study/a_dose_response/beta2_$beta2/seed0"
  done
}

# Stage b: the step at which stage a's beta2 = 0 run first reaches twice chance on validation, then beta2 = 10
# from that step on (switch) or rising linearly to 10 over $ramp_steps steps (ramp).
train_b() {
  local start
  start=$(python "$v3/plateau_exit.py" "$study/a_dose_response/beta2_0/seed0")
  echo "stage b: beta2 switched on at step $start"
  kerasrwm train "${short[@]}" --beta2 10 --beta2-start-step "$start" \
    --output "$study/b_schedule/switch/seed0"
  kerasrwm train "${short[@]}" --beta2 10 --beta2-start-step "$start" --beta2-ramp-steps "$ramp_steps" \
    --output "$study/b_schedule/ramp/seed0"
}

# Stages c and d: the arms of $2 (space-separated NAME:BETA2 or NAME:BETA2:FLAG=VALUE, one more flag of
# kerasrwm train), paired by seed: every arm of a seed before the next seed.
train_arms() {
  local dir=$1 arms=$2 arm name beta2 flag
  shift 2
  for seed in "${seeds[@]}"; do
    for arm in $arms; do
      IFS=: read -r name beta2 flag <<< "$arm"
      local extra=()
      [[ -n $flag ]] && extra=("${flag%%=*}" "${flag#*=}")
      kerasrwm train "$@" "${extra[@]}" --beta2 "$beta2" --seed "$seed" --output "$dir/$name/seed$seed"
    done
  done
}
pairs="no_bootstrap:0 bootstrap:10"

sweep() { kerasrwm evaluate "$@" --k-test 1,5,10,15 --runs 5 --episodes 512; }

# The finished runs of the arms under $1 as NAME=DIR arguments.
finished_runs() {
  local run
  for run in "$1"/*/seed*; do
    [[ -e $run/finished ]] && echo "$(basename "$(dirname "$run")")=$run"
  done
  return 0
}

evaluate_a() {
  local dir=$study/a_dose_response
  mapfile -t runs < <(finished_runs "$dir")
  sweep "${runs[@]}" --output "$dir"
  python "$v2/learning_curves.py" "$dir"
  python "$v3/diagnostics_summary.py" "$dir"
}

evaluate_b() {
  local dir=$study/b_schedule
  mapfile -t runs < <(finished_runs "$dir"; finished_runs "$study/a_dose_response" | grep -E '^beta2_(0|10)=')
  sweep "${runs[@]}" --output "$dir"
  python "$v2/learning_curves.py" "$dir"
  python "$v3/diagnostics_summary.py" "$dir"
}

# Paired differences (v2's script) of a two-arm stage; runs of unfinished seeds are left out.
evaluate_pairs() {
  local dir=$1
  mapfile -t runs < <(finished_runs "$dir")
  sweep "${runs[@]}" --output "$dir"
  python "$v2/paired_differences.py" "$dir"
  python "$v2/learning_curves.py" "$dir"
}

# Stage c against v2's exact-gradient runs (same seeds, episodes and test episodes; their evaluation is in
# docs/results): reference - exact per seed, for each arm.
evaluate_c() {
  local dir=$study/c_reference_gradient
  evaluate_pairs "$dir"
  mkdir -p "$dir/v2_exact"
  cp docs/results/table2_right_results.json "$dir/v2_exact/results.json"
  cp docs/results/table2_right_settings.json "$dir/v2_exact/settings.json"
  python "$v3/reference_minus_exact.py" "$dir" "$dir/v2_exact"
}

usage() { echo "usage: $0 train|evaluate a|b|c|d" >&2; exit 2; }

[[ $# -eq 2 ]] || usage
case $1:$2 in
  train:a) train_a ;;
  train:b) train_b ;;
  train:c) train_arms "$study/c_reference_gradient" "$pairs" --config "$v2/config.json" --hand-off-gradient reference ;;
  train:d) train_arms "$study/d_authors_recipe" "$pairs bootstrap_reference:10:--hand-off-gradient=reference" \
             --config "$v3/authors_recipe.json" ;;
  evaluate:a) evaluate_a ;;
  evaluate:b) evaluate_b ;;
  evaluate:c) evaluate_c ;;
  evaluate:d) evaluate_pairs "$study/d_authors_recipe" ;;
  *) usage ;;
esac
