#!/usr/bin/env bash
# Does bootstrapping help at every K_test? Omniglot 5-way, K=5, K'=5, 5 seeds per setting.
# Every stage resumes where it stopped and skips what has finished, so rerun it after an
# interruption. Run from the repository root:
#   bash examples/bootstrap_study/run.sh tune              # beta2 in {1, 5, 10} on the validation split
#   bash examples/bootstrap_study/run.sh train plain       # or no_bootstrap, bootstrap
#   bash examples/bootstrap_study/run.sh train k_extra     # Table-1 style: bootstrap with K' = 1 and 10, seed 0
#   bash examples/bootstrap_study/run.sh evaluate          # test split, K_test 1, 5, 10, 15
# or all stages in order: bash examples/bootstrap_study/run.sh
# Output goes to $STUDY_DIR (default runs/bootstrap_study); $SEEDS sets the seeds (default "0 1 2 3 4").
set -euo pipefail
config=examples/bootstrap_study/config.json
study=${STUDY_DIR:-runs/bootstrap_study}
read -r -a seeds <<< "${SEEDS:-0 1 2 3 4}"
k_extra_sweep=(1 10)

tune() {
  # The search uses its own seed so that the selection is independent of the final runs.
  kerasrwm tune --config "$config" --seed 100 --beta2 1,5,10 --k-extra 5 --output "$study/tune"
}

best_beta2() {
  python -c 'import json, sys; print(json.load(open(sys.argv[1]))["beta2"])' "$study/tune/best.json"
}

train() {
  local setting=$1 betas
  case $setting in
    plain) betas=(--beta1 1 --beta2 0 --beta3 0) ;;
    no_bootstrap) betas=(--beta1 1 --beta2 0 --beta3 1) ;;
    bootstrap) betas=(--beta1 1 --beta2 "$(best_beta2)" --beta3 1) ;;
    k_extra)
      for k_extra in "${k_extra_sweep[@]}"; do
        kerasrwm train --config "$config" --beta1 1 --beta2 "$(best_beta2)" --beta3 1 --k-extra "$k_extra" \
          --seed 0 --output "$study/bootstrap_k_extra$k_extra/seed0"
      done
      return ;;
    *) echo "unknown setting: $setting (plain, no_bootstrap, bootstrap, k_extra)" >&2; exit 2 ;;
  esac
  for seed in "${seeds[@]}"; do
    kerasrwm train --config "$config" "${betas[@]}" --seed "$seed" --output "$study/$setting/seed$seed"
  done
}

evaluate() {
  local runs=()
  for setting in plain no_bootstrap bootstrap; do
    for seed in "${seeds[@]}"; do runs+=("$setting=$study/$setting/seed$seed"); done
  done
  for k_extra in "${k_extra_sweep[@]}"; do
    if [[ -f $study/bootstrap_k_extra$k_extra/seed0/finished ]]; then
      runs+=("bootstrap_k_extra$k_extra=$study/bootstrap_k_extra$k_extra/seed0")
    fi
  done
  kerasrwm evaluate "${runs[@]}" --k-test 1,5,10,15 --runs 3 --episodes 128 --output "$study"
}

case ${1:-all} in
  tune) tune ;;
  train) train "$2" ;;
  evaluate) evaluate ;;
  all) tune; train plain; train no_bootstrap; train bootstrap; train k_extra; evaluate ;;
  *) echo "usage: $0 [tune | train SETTING | evaluate | all]" >&2; exit 2 ;;
esac
