#!/usr/bin/env bash
# The whole GPU measurement (BENCHMARKS.md), from the repo root of a CUDA machine:
#   bash tools/gpu/bench.sh OUT_DIR [quick]
# Random weights at real sizes, so no downloads. If diffusers is missing on a machine without a package
# index, the wheels in .whl/ are installed to /tmp/site first (DEVELOPERS.md says how to fetch them).
# `quick` skips torch.compile and the largest batches: a run of under 10 minutes.
set -uo pipefail
OUT=${1:-gpu-results}
mkdir -p "$OUT"
if ! python3 -c "import diffusers" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:${PYTHONPATH:-}
fi
export PYTHONPATH=$PWD:${PYTHONPATH:-} PYTHONUNBUFFERED=1
EXTRA=()
BATCHES=1,8,16,32,64
if [ "${2:-}" = quick ]; then EXTRA=(--no-compile); BATCHES=1,8,32; fi
nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1
# 1. CUDA vs CPU agreement, then real-size training steps (teacher b12 bf16 +/- checkpointing, B7 distil b24)
python3 -m tools.gpu.measure --only agreement,train --out "$OUT/train_agreement.json" 2>&1 | tee "$OUT/train.log"
# 2. model-only grid: batch x fp32/bf16 x eager/compile x channels_last
python3 -m tools.gpu.measure --only inference --batch-sizes "$BATCHES" "${EXTRA[@]}" \
  --out "$OUT/inference.json" 2>&1 | tee "$OUT/inference.log"
# 3. end-to-end from 1024x768 JPEGs (decode in workers) vs model-only vs naive, the scorer's own path
python3 -m dpiqa_cli bench --speed --device cuda --speed-models student,student-b7 --speed-batch-sizes 8,32,64 \
  --precisions fp32,bf16 --images 1024 --naive-images 32 --workers 14 --out "$OUT/e2e" 2>&1 | tee "$OUT/e2e.log"
