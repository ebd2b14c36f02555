#!/usr/bin/env bash
# KerasTuner grid over the distillation weight beta2 and the extra shots K' on synthetic data,
# scored by validation student accuracy (never the test split).
# Run from the repository root: bash examples/tuning/run.sh [OUTPUT_DIR]
set -euo pipefail
output=${1:-runs/tuning}
kerasrwm tune --data synthetic --beta2 0,1 --k-extra 1,5 --output "$output" \
  --n-way 5 --k-shot 5 --n-queries 4 --hidden-size 64 --num-layers 2 --num-heads 4 --ff-dim 128 \
  --backbone-channels 16 --batch-size 16 --learning-rate 0.001 --steps 1000 --steps-per-epoch 100 \
  --validation-episodes 128
