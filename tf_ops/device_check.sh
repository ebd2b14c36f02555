#!/usr/bin/env bash
# The device check of the SRWM CUDA kernels, without TensorFlow. Run it as it is, at the repository
# root of a machine with an NVIDIA GPU, nvcc and Python with NumPy:
#
#     bash tf_ops/device_check.sh            # or: OUT=/some/folder bash tf_ops/device_check.sh
#
# It prints the GPU, the driver and nvcc, then runs tf_ops/cuda_harness.py, which builds the
# standalone kernels for this GPU (-arch=native) with ptxas's registers and spills, checks every
# case against the NumPy reference (each failure recorded, the run going on), checks the head_dim
# limits at the edge of the shared memory, prints the timing table and runs compute-sanitizer
# where it exists. Everything is written under $OUT when set (device_check.log, nvidia-smi.txt,
# harness.json), else under a temporary folder whose path is printed. It stops the harness after
# HARNESS_SECONDS (default 420), so the whole check takes under 8 minutes. Without a GPU it says
# "no GPU" and exits 0. Exit status: 0 when every check passed (or there is no GPU), 1 otherwise.
set -u

cd "$(dirname "$0")/.." || exit 1
OUT_DIR="${OUT:-$(mktemp -d -t kerasrwm-device-check-XXXXXX)}"
mkdir -p "$OUT_DIR"
exec > >(tee "$OUT_DIR/device_check.log") 2>&1
HARNESS_SECONDS="${HARNESS_SECONDS:-420}"
PYTHON="${PYTHON:-python3}"

echo "kerasrwm device check, $(date -u '+%Y-%m-%d %H:%M UTC'), git $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
echo "writing to $OUT_DIR"

if ! command -v nvidia-smi > /dev/null 2>&1; then
  echo "no GPU: nvidia-smi is not on PATH; nothing to check here."
  exit 0
fi
if ! gpus=$(nvidia-smi -L 2>&1) || [ -z "$gpus" ]; then
  echo "no GPU: nvidia-smi -L found none (${gpus:-no output}); nothing to check here."
  exit 0
fi

echo "== GPU and driver"
echo "$gpus"
nvidia-smi --query-gpu=name,compute_cap,driver_version,memory.total,clocks.max.sm --format=csv | tee "$OUT_DIR/nvidia-smi.txt"
nvidia-smi >> "$OUT_DIR/nvidia-smi.txt" 2>&1

echo "== nvcc"
NVCC="$(command -v nvcc || true)"
for candidate in "${CUDA_HOME:-}/bin/nvcc" /usr/local/cuda/bin/nvcc; do
  if [ -z "$NVCC" ] && [ -x "$candidate" ]; then NVCC="$candidate"; fi
done
if [ -z "$NVCC" ]; then
  echo "FAIL: no nvcc on PATH, in \$CUDA_HOME/bin or /usr/local/cuda/bin"
  exit 1
fi
CUDA_BIN="$(dirname "$(readlink -f "$NVCC")")"
export PATH="$CUDA_BIN:$CUDA_BIN/../compute-sanitizer:$PATH"  # nvcc and compute-sanitizer for the harness
"$NVCC" --version | tail -n 2
echo "compute-sanitizer: $(command -v compute-sanitizer || echo 'not found (skipped)')"

if ! "$PYTHON" -c "import numpy" 2> /dev/null; then
  echo "FAIL: $PYTHON cannot import numpy (set PYTHON to an interpreter that can)"
  exit 1
fi

echo "== harness (stopped after ${HARNESS_SECONDS} s)"
timeout --kill-after=20 "$HARNESS_SECONDS" "$PYTHON" tf_ops/cuda_harness.py --arch native --json "$OUT_DIR/harness.json"
status=$?
if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
  echo "FAIL: the harness did not finish in ${HARNESS_SECONDS} s"
fi
echo "== done: exit status $status; everything is in $OUT_DIR"
exit $((status == 0 ? 0 : 1))
