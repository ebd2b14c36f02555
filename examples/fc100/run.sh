#!/usr/bin/env bash
# FC100 from your CIFAR-100 copy, then the authors' 5-shot SRWM run (no bootstrapping) and a K_test sweep.
# Usage: bash examples/fc100/run.sh CIFAR100 [DATA_DIR] [OUTPUT_DIR] [STEPS]
#   CIFAR100: cifar-100-python.tar.gz, its cifar-100-python folder, or tfds:cifar100
set -euo pipefail
cifar=${1:?give cifar-100-python.tar.gz, its folder, or tfds:cifar100}
data=${2:-data/fc100}
output=${3:-runs/fc100}
steps=${4:-600000}
kerasrwm prepare fc100 --source "$cifar" --output "$data"
kerasrwm train --config examples/fc100/config.json --data "npz:$data/fc100.npz" --steps "$steps" --output "$output"
kerasrwm evaluate "$output" --k-test 1,5,10 --runs 10 --episodes 320
