#!/usr/bin/env bash
# Training from a folder of class subfolders (mini-ImageNet layout), with the authors' settings.
# Usage: bash examples/image_folder/run.sh IMAGE_ROOT [OUTPUT_DIR] [STEPS]
set -euo pipefail
root=${1:?give the image folder: root/<class>/*.jpg or root/{train,val,test}/<class>/*.jpg}
output=${2:-runs/image_folder}
steps=${3:-600000}
kerasrwm train --config examples/image_folder/config.json --data "folder:$root" --steps "$steps" \
  --output "$output"
kerasrwm evaluate "$output" --k-test 1,5,10,15 --runs 10 --episodes 320
