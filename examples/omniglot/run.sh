#!/usr/bin/env bash
# Bootstrapped SRWM learner on Omniglot: train, evaluate at several K_test, export.
# Run from the repository root: bash examples/omniglot/run.sh [OUTPUT_DIR]
set -euo pipefail
output=${1:-runs/omniglot}
kerasrwm train --config examples/omniglot/config.json --output "$output"
kerasrwm evaluate "$output" --k-test 1,5,10,15 --runs 3 --episodes 128
kerasrwm export "$output" --output "$output/saved_model"
