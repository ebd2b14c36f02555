#!/usr/bin/env bash
# mini-ImageNet from your ILSVRC-2012 training set, then the authors' bootstrapping run and a K_test sweep.
# Usage: bash examples/mini_imagenet/run.sh IMAGENET_TRAIN [DATA_DIR] [OUTPUT_DIR] [STEPS]
#   IMAGENET_TRAIN: the training folder (class folders or class tars) or ILSVRC2012_img_train.tar
set -euo pipefail
imagenet=${1:?give the ILSVRC-2012 training folder or ILSVRC2012_img_train.tar}
data=${2:-data/mini-imagenet}
output=${3:-runs/mini_imagenet}
steps=${4:-600000}
kerasrwm prepare mini-imagenet --source "$imagenet" --output "$data"
kerasrwm train --config examples/mini_imagenet/config.json --data "folder:$data" --steps "$steps" --output "$output"
kerasrwm evaluate "$output" --k-test 1,5,10,15 --runs 10 --episodes 320
